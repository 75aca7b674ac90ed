"""Batch APIs, simulated: OpenAI's (a JSONL file uploaded, a batch over it, the results as an
output file and an error file) and Anthropic's Message Batches (requests in the body, results as
JSONL at the batch's `results_url`).

Each request of a batch is answered by the same handler as a direct call (so it is in the ledger
like any answer) when the batch is created; the batch reports itself in progress when created
and finished from the first time it is asked, as a real one does some minutes or hours later.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.simulate import anthropic_api, openai_api
from tokentrace.simulate.state import ProviderState

#: What an OpenAI batch may call.
OPENAI_ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings")
_SUB_HEADERS = (b"authorization", b"x-api-key", b"anthropic-version", b"x-simulate")


async def _answer(request: Request, path: str, body: Any) -> tuple[int, Any]:
    """The provider's own answer to `body` at `path`, as a direct call would get it."""
    headers = {k.decode(): v.decode("latin-1") for k, v in request.headers.raw if k in _SUB_HEADERS}
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://simulated") as client:
        answer = await client.post(path, json=body, headers=headers)
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, {"error": {"message": answer.text}}


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


# --- OpenAI: files -------------------------------------------------------------------------
def _file_object(file_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": len(stored["data"]),
        "created_at": stored["created_at"],
        "filename": stored["filename"],
        "purpose": stored["purpose"],
        "status": "processed",
    }


def _store_file(state: ProviderState, data: bytes, filename: str, purpose: str) -> str:
    file_id = state.response_id("file-")
    state.files[file_id] = {
        "data": data,
        "filename": filename,
        "purpose": purpose,
        "created_at": int(time.time()),
    }
    return file_id


async def upload_file(request: Request) -> Response:
    state: ProviderState = request.app.state.sim
    raw = await request.body()
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        return openai_api.error(400, "files are uploaded as multipart/form-data")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + kind.encode() + b"\r\n\r\n" + raw)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    if "file" not in fields or "purpose" not in fields:
        return openai_api.error(400, "file and purpose are required")
    filename, data = fields["file"]
    purpose = fields["purpose"][1].decode()
    file_id = _store_file(state, data, filename or "upload.jsonl", purpose)
    return _json(_file_object(file_id, state.files[file_id]))


async def file_object(request: Request) -> Response:
    state: ProviderState = request.app.state.sim
    file_id = request.path_params["file_id"]
    if file_id not in state.files:
        return openai_api.error(404, f"No such File object: {file_id}")
    return _json(_file_object(file_id, state.files[file_id]))


async def file_content(request: Request) -> Response:
    state: ProviderState = request.app.state.sim
    stored = state.files.get(request.path_params["file_id"])
    if stored is None:
        return openai_api.error(404, f"No such File object: {request.path_params['file_id']}")
    return Response(stored["data"], media_type="application/octet-stream")


# --- OpenAI: batches -------------------------------------------------------------------------
async def create_batch(request: Request) -> Response:
    state: ProviderState = request.app.state.sim
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return openai_api.error(400, "the body must be a JSON object")
    stored = state.files.get(str(body.get("input_file_id")))
    if stored is None:
        return openai_api.error(400, f"input_file_id: no such file {body.get('input_file_id')!r}")
    endpoint = body.get("endpoint")
    if endpoint not in OPENAI_ENDPOINTS:
        return openai_api.error(400, f"endpoint must be one of {', '.join(OPENAI_ENDPOINTS)}")
    batch_id = state.response_id("batch_")
    done, failed = [], []
    for n, line in enumerate(stored["data"].splitlines()):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
            custom_id, url, payload = item["custom_id"], item["url"], item["body"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return openai_api.error(400, f"line {n + 1} of the input file is not a batch request")
        if url != endpoint:
            return openai_api.error(400, f"line {n + 1}: url {url!r} is not the batch's endpoint {endpoint}")
        status, answer = await _answer(request, url, payload)
        request_id = "req_" + hashlib.sha256(f"{batch_id}:{custom_id}".encode()).hexdigest()[:24]
        out = {
            "id": state.response_id("batch_req_"),
            "custom_id": custom_id,
            "response": {"status_code": status, "request_id": request_id, "body": answer},
            "error": None,
        }
        (done if status == 200 else failed).append(out)
    now = int(time.time())
    batch = {
        "id": batch_id,
        "object": "batch",
        "endpoint": endpoint,
        "errors": None,
        "input_file_id": body["input_file_id"],
        "completion_window": body.get("completion_window", "24h"),
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": None,
        "expires_at": now + 86400,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": len(done) + len(failed), "completed": 0, "failed": 0},
        "metadata": body.get("metadata"),
    }
    finished = {
        **batch,
        "status": "completed",
        "output_file_id": _store_file(state, _jsonl(done), f"{batch_id}_output.jsonl", "batch_output")
        if done
        else None,
        "error_file_id": _store_file(state, _jsonl(failed), f"{batch_id}_error.jsonl", "batch_output")
        if failed
        else None,
        "in_progress_at": now,
        "finalizing_at": now,
        "completed_at": now,
        "request_counts": {"total": len(done) + len(failed), "completed": len(done), "failed": len(failed)},
    }
    state.batches[batch_id] = finished
    return _json(batch)


async def retrieve_batch(request: Request) -> Response:
    state: ProviderState = request.app.state.sim
    batch = state.batches.get(request.path_params["batch_id"])
    if batch is None or batch.get("object") != "batch":
        return openai_api.error(404, f"No such batch: {request.path_params['batch_id']}")
    return _json(batch)


# --- Anthropic: message batches --------------------------------------------------------------
def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


async def create_message_batch(request: Request) -> Response:
    state: ProviderState = request.app.state.sim
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return anthropic_api.error(400, "request body is not valid JSON")
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return anthropic_api.error(400, "requests: a non-empty list is required")
    batch_id = state.response_id("msgbatch_")
    results, counts = [], {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    for n, item in enumerate(requests):
        params = item.get("params") if isinstance(item, dict) else None
        if not isinstance(params, dict) or not item.get("custom_id"):
            return anthropic_api.error(400, f"requests.{n}: custom_id and params are required")
        status, answer = await _answer(request, "/v1/messages", params)
        if status == 200:
            answer.get("usage", {})["service_tier"] = "batch"  # as Anthropic bills it
            result = {"type": "succeeded", "message": answer}
        else:
            result = {"type": "errored", "error": answer}
        counts[result["type"]] += 1
        results.append({"custom_id": item["custom_id"], "result": result})
    now = time.time()
    batch = {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": "in_progress",
        "request_counts": {**dict.fromkeys(counts, 0), "processing": len(results)},
        "ended_at": None,
        "created_at": _iso(now),
        "expires_at": _iso(now + 86400),
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": None,
    }
    results_url = f"{str(request.base_url).rstrip('/')}/v1/messages/batches/{batch_id}/results"
    state.batches[batch_id] = {
        **batch,
        "processing_status": "ended",
        "request_counts": counts,
        "ended_at": _iso(now),
        "results_url": results_url,
        "_results": _jsonl(results),
    }
    return _json(batch)


def _message_batch(request: Request) -> dict[str, Any] | None:
    state: ProviderState = request.app.state.sim
    batch = state.batches.get(request.path_params["batch_id"])
    return batch if batch is not None and batch.get("type") == "message_batch" else None


async def retrieve_message_batch(request: Request) -> Response:
    batch = _message_batch(request)
    if batch is None:
        return anthropic_api.error(404, f"no message batch {request.path_params['batch_id']}")
    return _json({k: v for k, v in batch.items() if not k.startswith("_")})


async def message_batch_results(request: Request) -> Response:
    batch = _message_batch(request)
    if batch is None:
        return anthropic_api.error(404, f"no message batch {request.path_params['batch_id']}")
    return Response(batch["_results"], media_type="application/binary")


routes = [
    Route("/v1/files", upload_file, methods=["POST"]),
    Route("/v1/files/{file_id}", file_object, methods=["GET"]),
    Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
    Route("/v1/batches", create_batch, methods=["POST"]),
    Route("/v1/batches/{batch_id}", retrieve_batch, methods=["GET"]),
    Route("/v1/messages/batches", create_message_batch, methods=["POST"]),
    Route("/v1/messages/batches/{batch_id}", retrieve_message_batch, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}/results", message_batch_results, methods=["GET"]),
]
