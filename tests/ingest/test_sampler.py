"""Sampling policies: parsed from TOML or JSON with clear errors, and the API's policy before
the file's."""

from __future__ import annotations

import math
from datetime import timedelta

import orjson
import pytest

from tokentrace.jobs.sampler import PolicyError, Sampler, load, parse_policy, policy_spec
from tokentrace.store.duckdb import DuckDBStore
from tokentrace.store.filters import ScoreCondition
from tokentrace.store.sampling import SamplingPolicy

FILE = """
recent = "24h"
base_rate = 0.05
keep_cost_above_usd = 0.25
keep_slower_than_percentile = false
keep_scores = ["helpful<0.5", "refusal=true"]
keep_tenants = ["acme"]
keep_for = "30d"

[projects.internal]
base_rate = 1.0
keep_for = false
"""


def test_a_policy_file_reads_with_its_per_project_tables(tmp_path):
    path = tmp_path / "sampling.toml"
    path.write_text(FILE)
    found = load(path)
    assert found.default == SamplingPolicy(
        recent=timedelta(hours=24),
        base_rate=0.05,
        keep_cost_above_usd=0.25,
        keep_slower_than_percentile=None,
        keep_scores=(ScoreCondition("helpful", "<", 0.5), ScoreCondition("refusal", "=", 1.0)),
        keep_tenants=("acme",),
        keep_for=timedelta(days=30),
    )
    assert found.projects["internal"] == SamplingPolicy(base_rate=1.0)  # kept until deleted
    # the API's JSON of a policy reads back as the same policy
    assert parse_policy(orjson.loads(orjson.dumps(policy_spec(found.default)))) == found.default


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"base_rate": 2}, "between 0 and 1"),
        ({"recent": "two days"}, "not a duration"),
        ({"recent": "7d", "max_open": "1d"}, "max_open at least recent"),
        ({"keep_scores": ["helpful"]}, "must look like"),
        ({"keep_scores": ["helpful<nan"]}, "a text score value can only be compared with = or !="),
        ({"keep_scores": "helpful<1"}, "list of strings"),
        ({"keep_errors": "yes"}, "true or false"),
        ({"base_rate": False}, "must be a number"),
        ({"keep_cost_above_usd": "1"}, "must be a number"),
        ({"keep_cost_above_usd": math.nan}, "keep_cost_above_usd must be a number, got nan"),
        ({"base_rate": math.inf}, "base_rate must be a number, got inf"),
        ({"keep_slower_than_percentile": 100}, "between 0 and 100"),
        ({"keep_for": "1h"}, "keep_for must be at least recent"),
        ({"keep_for": 30}, "not a duration"),
        ({"sample_rate": 0.1}, "unknown sampling settings"),
    ],
)
def test_bad_settings_are_named(spec, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(spec)


def test_a_bad_file_names_itself(tmp_path):
    path = tmp_path / "sampling.toml"
    path.write_text('[projects.x]\nrecent = "soon"\n')
    with pytest.raises(PolicyError, match=r"sampling\.toml"):
        load(path)


def test_the_api_policy_comes_before_the_file(tmp_path):
    path = tmp_path / "sampling.toml"
    path.write_text(FILE)
    store = DuckDBStore(tmp_path / "t.duckdb")
    sampler = Sampler(store, load(path), timedelta(minutes=10))
    assert sampler.policy_for("default") == (load(path).default, "file")
    assert sampler.policy_for("internal")[0].base_rate == 1.0
    store.put_sampling_policy("default", orjson.dumps(policy_spec(SamplingPolicy(base_rate=0.5))).decode())
    assert sampler.policy_for("default") == (SamplingPolicy(base_rate=0.5), "api")
    store.put_sampling_policy("default", None)
    assert sampler.policy_for("default")[1] == "file"
    assert Sampler(store, None, timedelta(minutes=10)).policy_for("default") == (None, "none")
    store.close()


def test_a_score_condition_reads_nan_and_inf_as_labels():
    """float() reads them, and a NaN bound would keep no trace, silently: they are labels."""
    assert ScoreCondition.parse("verdict=nan") == ScoreCondition("verdict", "=", "nan")
    assert ScoreCondition.parse("speed!=inf") == ScoreCondition("speed", "!=", "inf")
    assert ScoreCondition.parse("helpful>=0.5") == ScoreCondition("helpful", ">=", 0.5)
