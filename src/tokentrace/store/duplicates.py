"""Which LLM spans record the same provider call (stacked instrumentations), and which one counts.

Two instrumentations around one call each emit an LLM span: the anthropic SDK's own span plus
OpenInference's, Traceloop's or Logfire's; Logfire's streams add a usage-carrying log span
beside the request span. Tokens and cost must count once. Spans of one call:

- share a provider response id (in any trace: an instrumentation that does not make its span
  current starts a second trace) and agree on the rest (provider, model, input tokens, time
  within `SAME_ANSWER_NS`): some OpenAI-compatible servers reuse short ids (`chatcmpl-0..999`),
  so an id alone is no identity; or
- are twins in two traces: one is the root of its own trace (a provider SDK's span when the
  framework around it did not make its span current), the other is part of a run and its time
  contains the root's, and they agree on service, provider, model and token counts; or
- in one trace, with the same provider and no conflicting response id or request model, are
  parent and child overlapping in time, or are a request span without usage and the sibling
  that reports its usage (`tokentrace.usage_report`, set by a family such as Logfire's streams)
  within `ADJACENT_NS` of it (each pairs with its nearest such partner, and that one with it:
  parallel calls stay apart), or are siblings from two instrumentations that failed alike with
  no usage and no answer, one inside the other's time (a 429 seen by a library and by the
  provider SDK beside it; an app's own retries come from one instrumentation and stay apart).

In each group a span inside a tree counts before a root whose twin is in another trace (the
call belongs to the run that made it); then the span with the most complete usage (then the
one with more details; then the shorter one, nearer the wire; then the larger span id, to be
deterministic); the
others name it in `duplicate_of`, and lend it the attribution tags it lacks (a library may
put the user on its own span only). The decision depends only on the spans, never on their
arrival order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial

ADJACENT_NS = 50_000_000  # 50 ms
SAME_ANSWER_NS = 1_000_000_000  # spans of one answer overlap; 1 s for clocks of two processes


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str  # the store's identity of the span, as text
    project_id: str
    trace_id: str
    span_id: str
    parent_span_id: str
    provider: str
    request_model: str | None
    response_id: str | None
    start_ns: int
    end_ns: int
    usage_fields: int  # how many token kinds the span reports
    details: int  # how many of response id, response model and finish reason it reports
    usage_report: bool  # a span that only reports the usage of its request sibling
    duplicate_of: str | None  # as stored now
    service_name: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error_type: str | None = None
    scope: str | None = None  # the instrumentation that recorded it (otel.scope.name)


class _Groups:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        root = key
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while key != root:  # path compression
            key, self.parent[key] = self.parent.get(key, key), root
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _compatible(a: Candidate, b: Candidate) -> bool:
    if a.provider != b.provider:
        return False
    if a.response_id and b.response_id and a.response_id != b.response_id:
        return False
    return not (a.request_model and b.request_model and a.request_model != b.request_model)


def _same_answer(a: Candidate, b: Candidate) -> bool:
    """Two spans with one response id record one answer only if the other facts agree too."""
    if not _compatible(a, b) or _gap(a, b) > SAME_ANSWER_NS:
        return False
    return a.input_tokens is None or b.input_tokens is None or a.input_tokens == b.input_tokens


def _twins(a: Candidate, b: Candidate) -> bool:
    """A lone root inside the time of a span that is part of a run in another trace, with the
    same facts: one call whose provider SDK did not see the framework's span as its parent."""
    if a.trace_id == b.trace_id or bool(a.parent_span_id) == bool(b.parent_span_id):
        return False
    if a.service_name != b.service_name or not _compatible(a, b) or a.input_tokens is None:
        return False
    if (a.input_tokens, a.output_tokens) != (b.input_tokens, b.output_tokens):
        return False
    inner, outer = (a, b) if not a.parent_span_id else (b, a)
    return outer.start_ns <= inner.start_ns and inner.end_ns <= outer.end_ns


def _failed_alike(a: Candidate, b: Candidate) -> bool:
    """Siblings from two instrumentations that both failed with the same error, neither with usage
    or an answer id, one inside the other's time: what is left to know one failed call by."""
    if a.error_type is None or a.error_type != b.error_type or a.usage_fields or b.usage_fields:
        return False
    if a.scope == b.scope:
        return False
    if a.response_id or b.response_id:
        return False
    outer, inner = (a, b) if a.start_ns <= b.start_ns else (b, a)
    return inner.end_ns <= outer.end_ns


def _rank(c: Candidate, across: bool) -> tuple[bool, int, int, int, str]:
    """Which span of a group counts: the highest rank. A root beside its twin in another trace
    ranks last; then more usage, more details, the shorter span, the larger id."""
    lone = across and not c.parent_span_id
    return (not lone, c.usage_fields, c.details, c.start_ns - c.end_ns, c.span_id)


def _reports_for(a: Candidate, b: Candidate) -> bool:
    """One of the two is a usage report and the other a request span without usage."""
    return (a.usage_report and not b.usage_report and b.usage_fields == 0) or (
        b.usage_report and not a.usage_report and a.usage_fields == 0
    )


def _gap(a: Candidate, b: Candidate) -> int:
    """Nanoseconds between two intervals; 0 when they overlap."""
    return max(a.start_ns - b.end_ns, b.start_ns - a.end_ns, 0)


@dataclass
class Resolution:
    changes: dict[str, str | None] = field(default_factory=dict)  # key → new duplicate_of
    counted_by: dict[str, str] = field(default_factory=dict)  # duplicate's key → counted span's key


def resolve(candidates: list[Candidate]) -> Resolution:
    """The duplicate_of values that must change, and which span counts for each duplicate."""
    groups = _Groups()
    by_response: dict[tuple[str, str, str], list[Candidate]] = defaultdict(list)
    by_trace: dict[tuple[str, str], list[Candidate]] = defaultdict(list)
    for c in candidates:
        if c.response_id:
            by_response[(c.project_id, c.provider, c.response_id)].append(c)
        by_trace[(c.project_id, c.trace_id)].append(c)
    for same in by_response.values():
        for i, a in enumerate(same):
            for b in same[i + 1 :]:
                if _same_answer(a, b):
                    groups.union(a.key, b.key)
    by_usage: dict[tuple[str, str, int, int | None], list[Candidate]] = defaultdict(list)
    for c in candidates:
        if c.input_tokens is not None:
            by_usage[(c.project_id, c.provider, c.input_tokens, c.output_tokens)].append(c)
    for same in by_usage.values():
        for i, a in enumerate(same):
            for b in same[i + 1 :]:
                if _twins(a, b):
                    groups.union(a.key, b.key)

    for spans in by_trace.values():
        nearest: dict[str, tuple[int, str]] = {}  # key → (gap, partner key), usage-less ↔ usage
        for i, a in enumerate(spans):
            for b in spans[i + 1 :]:
                if not _compatible(a, b):
                    continue
                if a.parent_span_id == b.span_id or b.parent_span_id == a.span_id:
                    if _gap(a, b) == 0:
                        groups.union(a.key, b.key)
                elif a.parent_span_id == b.parent_span_id and _failed_alike(a, b):
                    groups.union(a.key, b.key)
                elif a.parent_span_id == b.parent_span_id and _reports_for(a, b):
                    gap = _gap(a, b)
                    if gap <= ADJACENT_NS:
                        for x, y in ((a, b), (b, a)):
                            if x.key not in nearest or gap < nearest[x.key][0]:
                                nearest[x.key] = (gap, y.key)
        for key, (_, partner) in nearest.items():
            if nearest.get(partner, (0, None))[1] == key:
                groups.union(key, partner)

    members: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        members[groups.find(c.key)].append(c)
    resolution = Resolution()
    for group in members.values():
        if len(group) == 1:
            if group[0].duplicate_of is not None:
                resolution.changes[group[0].key] = None
            continue
        winner = max(group, key=partial(_rank, across=len({c.trace_id for c in group}) > 1))
        for c in group:
            wanted = None if c is winner else winner.span_id
            if wanted != c.duplicate_of:
                resolution.changes[c.key] = wanted
            if c is not winner:
                resolution.counted_by[c.key] = winner.key
    return resolution
