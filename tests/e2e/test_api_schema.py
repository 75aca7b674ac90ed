"""schemathesis against a real server with the REST API's OpenAPI document: generated calls to
every operation (valid and invalid parameters and bodies) never end in a 5xx.

(schemathesis' own pytest plugin does not run on this pytest, so its operations' hypothesis
strategies are driven here directly.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from starlette.routing import Route

from tests.builders.otlp import chat, new_trace_id, protobuf, span
from tests.builders.processes import ServerProcess
from tokentrace.server.api.openapi import document
from tokentrace.server.app import create_app

SCHEMA = schemathesis.openapi.from_dict(document())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("schema") / "data").start()
    spans = []
    for tenant in ("acme", "globex"):
        trace_id = new_trace_id()
        root = span(trace_id, name="request", attributes={"tenant.id": tenant, "session.id": "s-1"})
        spans += [root, chat(trace_id, parent=root["span_id"], input_tokens=100, output_tokens=20)]
    assert server.post_traces(protobuf(spans)).status_code == 200
    server.wait_for_spans(len(spans))
    yield server
    server.stop()


def test_the_document_describes_every_api_route_and_only_those():
    def is_api(path: str) -> bool:
        return (path.startswith("/api/v1/") and path != "/api/v1/openapi.json") or path in (
            "/metrics",
            "/healthz",
        )

    served = {
        (route.path.replace(":path}", "}"), method)
        for route in create_app(None).routes  # the routing table only: no state is needed
        if isinstance(route, Route) and is_api(route.path)
        for method in route.methods - {"HEAD"}
    }
    documented = {(path, method.upper()) for path, ops in document()["paths"].items() for method in ops}
    assert served == documented


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_generated_call_ends_in_a_server_error(api, label):
    operation = OPERATIONS[label]
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    cases = st.one_of(*(operation.as_strategy(generation_mode=m) for m in modes))

    @given(case=cases)
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def call(case):
        case.call_and_validate(base_url=api.url, checks=[not_a_server_error])

    call()
