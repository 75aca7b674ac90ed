"""Ingest's redaction of an export's tables, before the spool."""

from __future__ import annotations

import orjson
import pyarrow as pa

from tokentrace.canonical import CONTENT_SCHEMA, SCORE_SCHEMA, SPAN_SCHEMA, Tables
from tokentrace.ingest.redact import redact

CARD = "4111 1111 1111 1111"  # passes the Luhn check


def _spans(**columns: list) -> pa.Table:
    rows = len(next(iter(columns.values())))
    arrays = [
        pa.array(columns[f.name], f.type) if f.name in columns else pa.nulls(rows, f.type)
        for f in SPAN_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=SPAN_SCHEMA)


def _tables(spans: pa.Table) -> Tables:
    return Tables(spans, CONTENT_SCHEMA.empty_table(), SCORE_SCHEMA.empty_table())


def test_json_strings_are_redacted_and_numbers_and_validity_are_kept():
    attributes = {
        "note": f"card {CARD}, mail a.b@example.com",
        "time_unix_nano": 4111111111111111,
        "n": [1.5],
    }
    out = redact(_tables(_spans(attributes=[orjson.dumps(attributes).decode(), None, "{}"])))
    first, second, third = out.spans.column("attributes").to_pylist()
    assert orjson.loads(first) == {
        "note": "card [CARD], mail [EMAIL]",
        "time_unix_nano": 4111111111111111,  # a number is never a card
        "n": [1.5],
    }
    assert (second, third) == (None, "{}")


def test_text_columns_are_redacted_and_text_without_hits_kept():
    spans = _spans(name=["call", "call"], status_message=["Bearer abcdefghij0123456789xyz failed", None])
    out = redact(_tables(spans))
    assert out.spans.column("status_message").to_pylist() == ["Bearer [API_KEY] failed", None]
    assert out.spans.column("name").to_pylist() == ["call", "call"]


def test_text_that_is_not_json_in_a_json_column_is_redacted_as_text():
    content = pa.Table.from_pylist(
        [
            {
                "project_id": "p",
                "trace_id": "t",
                "span_id": "s",
                "input_messages": "not json sk-ant-api03-" + "x" * 30,
            }
        ],
        schema=CONTENT_SCHEMA,
    )
    out = redact(Tables(SPAN_SCHEMA.empty_table(), content, SCORE_SCHEMA.empty_table()))
    assert out.content.column("input_messages").to_pylist() == ["not json [API_KEY]"]


def test_hits_in_every_table_at_once_land_on_their_own_rows():
    """The candidates are searched in every column at once: each hit must go back to its row."""
    spans = pa.concat_tables(  # two chunks per column
        [_spans(name=["a", "mail x@example.com"]), _spans(name=["b", "c"], status_message=[None, CARD])]
    )
    content = pa.Table.from_pylist(
        [
            {
                "project_id": "p",
                "trace_id": "t",
                "span_id": "s",
                "output_messages": '["key sk-' + "y" * 24 + '"]',
            }
        ],
        schema=CONTENT_SCHEMA,
    )
    scores = pa.Table.from_pylist(
        [{"comment": "fine"}, {"comment": "reach me at q@example.org"}], schema=SCORE_SCHEMA
    )
    out = redact(Tables(spans, content, scores))
    assert out.spans.column("name").to_pylist() == ["a", "mail [EMAIL]", "b", "c"]
    assert out.spans.column("status_message").to_pylist() == [None, None, None, "[CARD]"]
    assert out.content.column("output_messages").to_pylist() == ['["key [API_KEY]"]']
    assert out.scores.column("comment").to_pylist() == ["fine", "reach me at [EMAIL]"]


SECRETS = [
    "mail jane.doe+tag@corp.example.co.uk now",
    "key sk-proj-abcdefghijklmnopqrstuvwx1234",
    "key sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUVWX_yz",
    "(sk-svcacct-" + "Z" * 24 + ")",
    "aws AKIAIOSFODNN7EXAMPLE",
    "gh ghp_" + "a" * 36 + " and gho_" + "b" * 36,
    "slack xoxb-1234567890-abcdefghij",
    "google AIza" + "x" * 35,
    "stripe sk_live_" + "c" * 24 + ", rk_test_" + "d" * 16,
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "authorization: BEARER\tabcdefghijklmnopqrstuvwxyz",
    f"card {CARD} ok",
    "card 4111-1111-1111-1111",
    "amex 378282246310005",
    "19 digits 4111111111111111112 fail Luhn as cards but are candidates",
]


def test_the_candidate_pattern_finds_every_secret_the_rules_replace():
    """RE2 looks for a cheaper pattern than the rules: it must still find every value a rule
    changes, or that value would be stored unredacted."""
    import re

    from tokentrace.redaction import CANDIDATE, redact_defaults

    changed = [text for text in SECRETS if redact_defaults(text) != text]
    assert len(changed) == len(SECRETS) - 1  # every sample but the last is a secret
    found = pa.compute.match_substring_regex(pa.array(SECRETS), CANDIDATE).to_pylist()
    assert all(found), [text for text, hit in zip(SECRETS, found, strict=True) if not hit]
    assert all(re.search(CANDIDATE, text) for text in SECRETS)  # Python's re reads it the same
    ordinary = ["call 555-1234 in 2026, ticket #123456", "the user@ symbol alone", "sk-short is fine"]
    ordinary = [text for text in ordinary if not re.search(CANDIDATE, text)]
    assert not any(pa.compute.match_substring_regex(pa.array(ordinary), CANDIDATE).to_pylist())
    assert len(ordinary) == 2  # "sk-short" is a candidate (a key's prefix), redaction keeps it


def test_a_candidate_that_is_no_secret_is_kept_as_sent():
    spans = _spans(name=["the bearer of news", "id 4111111111111111112"])
    out = redact(_tables(spans))
    assert out.spans.column("name").to_pylist() == ["the bearer of news", "id 4111111111111111112"]


def test_a_key_after_an_escaped_character_in_json_is_found():
    """JSON text escapes a newline (or a dash kept as \\u2014) before a key: no word boundary in
    the text RE2 searches, one in the string the rules redact."""
    key = "sk-proj-" + "A" * 24
    attributes = [
        orjson.dumps({"note": f"key:\n{key}"}).decode(),
        '{"note": "key:\\u2014' + key + '"}',
    ]
    out = redact(_tables(_spans(attributes=attributes)))
    for text in out.spans.column("attributes").to_pylist():
        assert key not in text and "[API_KEY]" in orjson.loads(text)["note"]
