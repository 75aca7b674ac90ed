"""Causes of a change: the slices that explain it (*where*), each slice's change split into its
mechanisms (*how*: mechanisms.py) and said in words; for latency, the slices with the excess slow
calls; for errors, the slices with the calls that fail more (or less) often."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tokentrace.canonical import DERIVED_FIELDS, INPUT_BUCKETS
from tokentrace.query.triage.checks import ratio, rounded
from tokentrace.query.triage.evidence import (
    changed_value,
    example_traces,
    failed_traces,
    milliseconds,
    money,
    sender,
    slice_label,
    slowest_traces,
)
from tokentrace.query.triage.mechanisms import OUTPUT_WEIGHT, cost_per_hour, mechanisms, weighted_tokens
from tokentrace.query.triage.periods import DIMENSIONS, VARIANTS, Period, Slice, Totals

_MAX_CAUSES = 6


_MIN_CALLS = 5  # a slice with fewer calls on its changed side is noise, not a cause


_SUFFICIENT = 0.8  # a slice explaining this share of the change explains it by itself


_ORDER = {dimension: n for n, dimension in enumerate(DIMENSIONS)}


#: The HTTP status an error type is known by, where it has one.
_STATUS = {
    "rate_limit": "429",
    "server_error": "5xx",
    "auth": "401/403",
    "budget": "429 from a budget",
    "context_length": "400",
}


_MIN_MECHANISM_SHARE = 0.2  # a mechanism is its own cause when it carries this much of its slice's change


@dataclass(slots=True)
class Cause:
    """A cause of the change: the slice (`dimension`=`value` inside `filters`), the metric that
    moved there (before → after), its `contribution` in `unit` (USD per hour, ms of p95, or the
    share of all calls that fail), the
    evidence in words and example traces. Cost causes name their `mechanism` (traffic,
    calls_per_request, retries, tokens_per_call, cost_per_token, or session: one session's
    calls); latency causes have none."""

    dimension: str
    value: str
    filters: dict[str, str]
    metric: str
    before: float | None
    after: float | None
    contribution: float | None
    unit: str
    evidence: str
    example_trace_ids: list[str] = field(default_factory=list)
    mechanism: str | None = None


# --- where: the slices that explain the change --------------------------------------------------
def _parent(key: Slice) -> Slice | None:
    return key[:1] if len(key) == 2 else None


def _reference(before: Period, key: Slice) -> Slice:
    """What the slice is compared with: itself, or its parent when it is (mostly) new."""
    parent = _parent(key)
    if parent is not None and key[-1][0] in VARIANTS and before.of(key).cost < 0.5 * before.of(parent).cost:
        return parent
    return key


def _replaced(before: Period, after: Period, key: Slice) -> bool:
    """Whether the slice is a variant (a prompt version or template, a model) that left the
    window while its parent went on: its calls moved to a successor, whose own slice (compared
    with the parent: _reference) says what changed; its fall is no fall in traffic."""
    parent = _parent(key)
    if parent is None or key[-1][0] not in VARIANTS:
        return False
    gone = after.rate(after.of(key).requests) < 0.5 * before.rate(before.of(key).requests)
    return gone and after.rate(after.of(parent).requests) >= 0.5 * before.rate(before.of(parent).requests)


def _outside(period: Period, key: Slice, chosen: list[Slice], measure) -> float:
    """`measure` of the slice's calls that no chosen slice holds."""
    return measure(period, period.outside(key, chosen))


def _by_chance(before: Period, after: Period, then: Totals, now: Totals) -> bool:
    """Whether a slice's cost in the window is one the baseline itself shows: the baseline cut
    into windows of the window's length, the slice's cost in the window within three standard
    deviations of its cost in those. A user whose calls come and go moved by chance; a feature
    whose every call now costs sixteen times as much did not. Undecided (False) when the
    baseline holds fewer than three windows."""
    part, parts = before.windows(after.until - after.since)
    if parts < 3:
        return False
    rows = then.rows
    costs = np.bincount(part[rows], weights=before.calls.cost[rows], minlength=parts + 1)[1:]
    return abs(now.cost - costs.mean()) <= 3 * costs.std(ddof=1)


def _where(
    before: Period, after: Period, measure, direction: float, floor: float, noise=None
) -> list[tuple[Slice, float, float]]:
    """The slices that explain the change, best first (see the module's *Where*): (slice,
    explained, score).

    `measure(period, totals)` is the quantity being explained (cost per hour, slow or failed
    calls); a
    change under `floor` is no change, and a slice for which `noise(before, after, then, now)`
    holds of its totals explains nothing."""
    change = (measure(after, after.total) - measure(before, before.total)) * direction
    base_total = measure(before, before.total)
    if change <= max(floor, 1e-12):
        return []
    scored = []
    # Only the slices with calls enough on the side that changed can be causes: a week of
    # sessions is tens of thousands of slices, most of them a few calls.
    changed = after.slices if direction > 0 else before.slices
    for key in [key for key, totals in changed.items() if totals.calls >= _MIN_CALLS]:
        explained = (measure(after, after.of(key)) - measure(before, before.of(key))) * direction
        if explained <= 0.1 * change:
            continue  # (first: it leaves out nearly every slice)
        parent = _parent(key)
        if parent is not None and all(p.of(key).calls == p.of(parent).calls for p in (before, after)):
            continue  # the only value inside its parent: the parent says the same, more plainly
        if parent is None and all(p.of(key).calls == p.total.calls for p in (before, after)):
            continue  # every call (the one service, a filter's feature): the totals say it already
        if _replaced(before, after, key):
            continue
        if noise is not None and noise(before, after, before.of(key), after.of(key)):
            continue
        share = measure(before, before.of(key)) / base_total if base_total > 0 else 0.0
        explains = min(explained, change) / change
        # A slice that explains the change by itself beats any that explains part of it; among
        # those, the one that held the least before is the most specific (a new version, a new
        # user). A change spread evenly over a dominant feature still names that feature.
        score = 2 - share if explains >= _SUFFICIENT else explains - share
        scored.append((key, explained, score))
    # Ties (the same change seen through two slices) go to the more specific slice: the one with
    # fewer calls in the window (a session inside its user), the nested one, then the dimension
    # listed first.
    scored.sort(
        key=lambda item: (
            -round(item[2], 6),
            after.of(item[0]).calls,
            -len(item[0]),
            _ORDER[item[0][0][0]],
            item[0],
        )
    )

    def left(key: Slice, taken: list[Slice]) -> float:
        """What is left of the slice's change once the `taken` slices' calls are out of it."""
        return (_outside(after, key, taken, measure) - _outside(before, key, taken, measure)) * direction

    chosen: list[tuple[Slice, float, float]] = []
    queue = list(scored)
    while queue and len(chosen) < _MAX_CAUSES:
        key, explained, score = queue.pop(0)
        keys = [other for other, _, _ in chosen]
        if left(key, keys) < 0.4 * explained:
            continue
        wider = _wider(key, explained, keys, scored, after, left)
        if wider is not None:  # (not one chosen already: nothing of its change would be left)
            key, explained, score = wider
        if key[-1][0] in DERIVED_FIELDS:
            # A derived bucket (long inputs) is a symptom: the actors and configurations that
            # explain the same change, one or several together, are named before it, and the
            # bucket then only for what they leave.
            covering = _covering(key, explained, keys, queue, after, left)
            if covering:
                queue = [*covering, (key, explained, score), *(i for i in queue if i not in covering)]
                continue
        chosen.append((key, explained, score))
    return chosen


def _wider(key: Slice, explained: float, taken: list[Slice], scored: list, after: Period, left):
    """A slice holding `key` (one of its dimensions alone) that the change spreads over evenly, to
    name in its place: with a quarter more change than `key`, the `taken` causes' calls left out
    (answers grown longer for every tenant of a feature are the feature's, not its biggest
    tenant's, when another cause outweighs them and no slice explains the whole change; the
    feature's cause is then measured without the calls of the causes named before it). The one
    with the fewest calls; None when there is none."""
    holding = {(pair,) for pair in key} - {key}
    wider = [
        item
        for item in scored
        if item[0] in holding and left(item[0], taken) >= 1.25 * explained  # the causes named aside
    ]
    return min(wider, key=lambda item: (after.of(item[0]).calls, _ORDER[item[0][0][0]]), default=None)


def _covering(key: Slice, explained: float, taken: list[Slice], queue: list, after: Period, left) -> list:
    """The actor and configuration slices (best first) that together explain most of a derived
    bucket's change, each a material part of it; empty when they do not."""
    covering: list = []
    rest = left(key, taken)
    for item in queue:
        other, holds = item[0], item[1]
        if other[-1][0] in DERIVED_FIELDS or after.of(other).calls >= 0.9 * after.total.calls:
            continue  # another symptom, or everyone's calls: names no one
        if holds < _MIN_MECHANISM_SHARE * explained:
            continue  # not a material part of this change
        remaining = left(key, [*taken, *(c[0] for c in covering), other])
        if rest - remaining >= _MIN_MECHANISM_SHARE * explained:  # it takes a real part of it
            covering.append(item)
            rest = remaining
        if rest < (1 - _SUFFICIENT) * explained:
            break
    else:
        return []
    # The calls they leave must carry well under their share of the change: slices that cut the
    # traffic up (both features, or one feature and a tenant) explain a change spread over
    # everyone in proportion to their calls, and name no one; the bucket names it better.
    outside = after.outside((), [item[0] for item in covering]).calls / max(after.total.calls, 1)
    if rest > 0.5 * outside * explained:
        return []
    return covering


def excess_slow(period: Period, totals: Totals) -> float:
    # Slow calls as a share of all the period's calls: a partition's shares add up.
    return totals.slow / period.total.calls if period.total.calls else 0.0


def failed(period: Period, totals: Totals) -> float:
    """Failed calls as a share of all the period's calls (a partition's shares add up)."""
    return totals.errors / period.total.calls if period.total.calls else 0.0


# --- how: the mechanisms inside a slice -------------------------------------------------------
def _held(period: Period, field: str, rows: np.ndarray) -> tuple[str | None, float]:
    """The value most of `rows` hold in `field` (None: no value) and its share of them."""
    column = period.calls.coded[field]
    if not len(rows):
        return None, 0.0
    counts = np.bincount(column.codes[rows] + 1, minlength=column.size + 1)
    code = int(counts.argmax())
    return (column.values[code - 1] if code else None), float(counts[code] / len(rows))


def _moved_setting(
    before: Period, after: Period, now: Totals, then: Totals, field: str
) -> tuple[str | None, str] | None:
    """(was, is) when the slice's calls moved together to another value of a setting: nearly
    all of the window's (90%) on a value few of the baseline's had (under 10%), as a tier
    switched or a deploy does (`was` None: the baseline's calls had none). None otherwise."""
    value, share = _held(after, field, now.rows)
    if value is None or share < 0.9:
        return None
    was = before.calls.coded[field]
    held_then = np.count_nonzero(was.codes[then.rows] == was.index.get(value, -2))
    if then.rows.size and held_then >= 0.1 * then.rows.size:
        return None
    previous, _ = _held(before, field, then.rows)
    return previous, value


def _cause(
    before: Period,
    after: Period,
    key: Slice,
    reference: Slice,
    mechanism: str,
    contribution: float,
    sides: tuple[Totals, Totals],
    besides: list[Slice],
) -> Cause:
    now, then = sides  # (the slice's calls, and its reference's, the `besides` causes' left out)
    dimension, value = key[-1]
    filters = dict(key[:-1])
    aside = f", besides {'; '.join(slice_label(other) for other in besides)}" if besides else ""
    where = slice_label(key) + aside
    changed = changed_value(before, key, reference)
    if mechanism == "traffic":
        metric, b, a = (
            "requests_per_hour",
            before.rate(before.outside(key, besides).requests if besides else before.of(key).requests),
            after.rate(now.requests),
        )
        evidence = f"{where}: requests per hour {b:.0f}→{a:.0f} ({money(contribution)})"
    elif mechanism in ("calls_per_request", "retries"):
        metric = "llm_calls_per_request"
        b, a = ratio(then.calls, then.requests), ratio(now.calls, now.requests)
        models = sorted(after.calls.distinct("request_model", now.rows))
        on = f" on {', '.join(models)}" if models else ""
        evidence = f"{where}: LLM calls per request (attempts) {b:.1f}→{a:.1f}{on}"
        rises = {
            kind: count / now.calls - then.errors_by_type.get(kind, 0) / max(then.calls, 1)
            for kind, count in now.errors_by_type.items()
        }
        kind = max(rises, key=rises.__getitem__, default=None)
        if kind is not None and rises[kind] > 0.05:
            share_b = then.errors_by_type.get(kind, 0) / max(then.calls, 1)
            status = f" ({_STATUS[kind]})" if kind in _STATUS else ""
            evidence += (
                f", {kind} errors{status} {share_b:.0%}→{now.errors_by_type[kind] / now.calls:.0%} of calls"
            )
            filters[dimension] = value
            dimension, value = "error_type", kind
        if mechanism == "retries":
            evidence += ": retries resend the conversation, each answer costs more"
        evidence += f" ({money(contribution)})"
    elif mechanism == "tokens_per_call":
        # Per answered call: failed attempts carry no usage and would dilute the change.
        metric = "input_tokens_per_call"
        b, a = ratio(then.input_tokens, then.answered) or 0.0, ratio(now.input_tokens, now.answered) or 0.0
        out_b = ratio(then.output_tokens, then.answered) or 0.0
        out_a = ratio(now.output_tokens, now.answered) or 0.0
        sign = 1 if contribution >= 0 else -1
        if OUTPUT_WEIGHT * (out_a - out_b) * sign > (a - b) * sign:
            metric, b, a = "output_tokens_per_call", out_b, out_a
        what = "input" if metric.startswith("input") else "output"
        evidence = (
            f"{_changed_label(key, changed)}{aside}: {what} tokens per "
            f"call {b:,.0f}→{a:,.0f} ({(a / b - 1) if b else 0:+.0%}, {money(contribution)})"
        )
        if what == "output":
            # Reasoning is billed as output but never seen in the answer: say when it is most
            # of the move (a reasoning model, or a higher effort), and measure it.
            thought_b = ratio(then.reasoning, then.answered) or 0.0
            thought_a = ratio(now.reasoning, now.answered) or 0.0
            if (thought_a - thought_b) * sign > (a - b) * sign / 2:
                metric, b, a = "reasoning_tokens_per_call", thought_b, thought_a
                evidence += f", of them hidden reasoning {b:,.0f}→{a:,.0f}"
    else:  # cost_per_token
        hit_b, hit_a = ratio(then.cache_read, then.input_tokens), ratio(now.cache_read, now.input_tokens)
        if hit_b is not None and hit_a is not None and hit_b - hit_a > 0.1:
            metric, b, a = "cache_hit_rate", hit_b, hit_a
            evidence = f"{where}: cache hit rate {b:.0%}→{a:.0%} ({money(contribution)})"
        else:
            # The price the factor measured: per 1k tokens, an output token counted as the
            # OUTPUT_WEIGHT input ones it costs (unweighted, a mix grown richer in output would
            # read as a dearer price too).
            metric = "cost_per_1k_tokens"
            b = (ratio(then.cost, weighted_tokens(then)) or 0.0) * 1000
            a = (ratio(now.cost, weighted_tokens(now)) or 0.0) * 1000
            label = _changed_label(key, changed) + aside
            tier = _moved_setting(before, after, now, then, "service_tier")
            if tier is not None:  # the same tokens at another tier's price (priority, flex, batch)
                label += f", service tier {tier[0] or 'default'}→{tier[1]}"
            evidence = (
                f"{label}: cost per 1k tokens (an output token as {OUTPUT_WEIGHT}) "
                f"${b:.4f}→${a:.4f} ({money(contribution)})"
            )
    if mechanism != "traffic":
        # A change in how the calls are made that came with a deploy: name the release.
        release = _moved_setting(before, after, now, then, "service_version")
        if release is not None:
            service, _ = _held(after, "service_name", now.rows)
            was = f"{release[0]}→" if release[0] else ""
            evidence += f", since {service or 'the service'} {was}{release[1]}"
    return Cause(
        dimension=dimension,
        value=value,
        filters=filters,
        metric=metric,
        before=rounded(b),
        after=rounded(a),
        contribution=rounded(contribution),
        unit="usd_per_hour",
        evidence=evidence,
        example_trace_ids=example_traces(after, now),
        mechanism=mechanism,
    )


def _changed_label(key: Slice, changed: str) -> str:
    """The slice said with its own value as it changed: `feature refund-chat, version v3→v4`."""
    return slice_label((*key[:-1], (key[-1][0], changed)))


def _past(tokens: int) -> str:
    """The largest input-length bound `tokens` reached: `16k`; empty under the first."""
    reached = [bound for bound, _ in INPUT_BUCKETS if bound is not None and tokens >= bound]
    return f"{max(reached) // 1000}k" if reached else ""


def _session_cause(before: Period, after: Period, key: Slice, contribution: float) -> Cause:
    """One session's calls as the cause (an agent or a script looping): who sent them, how many,
    in how many requests, and how its inputs grew."""
    now, then = after.of(key), before.of(key)
    session = key[-1][1]
    who = sender(after, now)
    # The conversation's growth: chat calls only (an embedding of the question is not a turn).
    rows = now.rows
    chats = ~after.calls.coded["operation"].equals("embeddings")[rows]
    turns = rows[chats & after.calls.input_known[rows]]
    turns = turns[np.argsort(after.calls.start[turns], kind="stable")]  # oldest first
    inputs = [int(tokens) for tokens in after.calls.input_tokens[turns]]
    requests = now.requests
    evidence = f"{who + ': ' if who else ''}{now.calls} LLM calls in session {session}"
    evidence += f" ({requests} request{'' if requests == 1 else 's'}"
    evidence += f"; {then.calls} in the baseline)" if then.calls else ")"
    if len(inputs) >= 2 and max(inputs) >= 2 * max(inputs[0], 1):
        past = _past(max(inputs))
        evidence += f", inputs growing {inputs[0]:,}→{max(inputs):,} tokens"
        evidence += f" (past {past})" if past else ""
    filters = dict(key[:-1])
    for dimension in ("tenant_id", "user_id"):  # where its traces are found
        values = set(after.calls.texts(dimension, now.rows))
        if len(values) == 1 and None not in values and "" not in values:
            filters[dimension] = next(iter(values))
    return Cause(
        dimension="session_id",
        value=session,
        filters=filters,
        metric="llm_calls",
        before=then.calls,
        after=now.calls,
        contribution=rounded(contribution),
        unit="usd_per_hour",
        evidence=f"{evidence} ({money(contribution)})",
        example_trace_ids=example_traces(after, now),
        mechanism="session",
    )


def _sides(
    before: Period, after: Period, key: Slice, reference: Slice, besides: list[Slice]
) -> tuple[Totals, Totals]:
    """The slice's calls in the window and its reference's in the baseline, those of the
    `besides` slices left out."""
    if not besides:
        return after.of(key), before.of(reference)
    return after.outside(key, besides), before.outside(reference, besides)


def _shared(before: Period, after: Period, key: Slice, other: Slice) -> bool:
    """Whether a tenth or more of the slice's calls in either period are `other`'s too (a cause
    of a fall may hold calls of the baseline only: a script that stopped)."""
    for period in (before, after):
        rows = period.of(key).rows  # (the slice's own rows: no mask over a week of calls)
        inside = np.ones(len(rows), bool)
        for dimension, value in other:
            column = period.calls.coded[dimension]
            inside &= column.codes[rows] == column.index.get(value, -2)
        if len(rows) and np.count_nonzero(inside) >= 0.1 * len(rows):
            return True
    return False


def cost_causes(before: Period, after: Period) -> list[Cause]:
    """The change in cost per hour as ranked causes: slices in the order they explain the change,
    each slice's mechanisms by contribution."""
    change = cost_per_hour(after, after.total) - cost_per_hour(before, before.total)
    direction = 1.0 if change >= 0 else -1.0
    causes = []
    # Under 2% of the baseline's cost per hour is noise, not an incident.
    floor = 0.02 * cost_per_hour(before, before.total)
    named: list[Slice] = []
    for key, explained, _score in _where(before, after, cost_per_hour, direction, floor, _by_chance):
        if key[-1][0] == "session_id":
            causes.append(_session_cause(before, after, key, explained * direction))
            named.append(key)
            continue
        reference = _reference(before, key)
        # The calls of causes named before it are theirs: measured without them, a feature
        # whose answers grew is not also charged with a script's loop inside it.
        besides = [other for other in named if _shared(before, after, key, other)]
        sides = _sides(before, after, key, reference, besides)
        split = mechanisms(before, after, *sides)
        moved = sum(v for v in split.values() if v * direction > 0)
        if moved * direction <= 0:
            continue
        named.append(key)
        found = [
            _cause(before, after, key, reference, mechanism, contribution, sides, besides)
            for mechanism, contribution in split.items()
            if contribution * direction >= _MIN_MECHANISM_SHARE * abs(moved)
        ]
        # A slice's two largest mechanisms: room stays for every other slice that explains a share.
        causes.extend(sorted(found, key=lambda cause: -abs(cause.contribution or 0.0))[:2])
    return causes[:_MAX_CAUSES]


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"  # n/a: the slice had no calls then


def latency_causes(before: Period, after: Period) -> list[Cause]:
    """Where the window's excess slow calls (above the baseline p95) come from."""
    p95_b, p95_a = before.total.p95(), after.total.p95()
    if p95_b is None or p95_a is None:
        return []
    direction = 1.0 if p95_a >= p95_b else -1.0
    excess = excess_slow(after, after.total) - excess_slow(before, before.total)
    causes = []
    # One call in a hundred more (or fewer) over the baseline p95 is noise.
    for key, explained, _score in _where(before, after, excess_slow, direction, 0.01):
        dimension, value = key[-1]
        now, then = after.of(key), before.of(key)
        b, a = then.p95(), now.p95()
        # A slice can hold more excess slow calls than the whole (others got faster): all of it.
        share = min(explained / abs(excess), 1.0) if excess else 0.0
        slow_then = then.slow / then.calls if then.calls else None
        slow_now = now.slow / now.calls if now.calls else 0.0
        evidence = (
            f"{slice_label(key)}: p95 {milliseconds(b)}→{milliseconds(a)}, "
            f"calls over the baseline p95 ({p95_b:,.0f} ms) "
            f"{_percent(slow_then)}→{slow_now:.0%}; "
            f"{share:.0%} of the excess slow calls"
        )
        causes.append(
            Cause(
                dimension=dimension,
                value=value,
                filters=dict(key[:-1]),
                metric="p95_latency_ms",
                before=rounded(b, 1),
                after=rounded(a, 1),
                contribution=rounded((p95_a - p95_b) * share, 1),
                unit="ms",
                evidence=evidence,
                example_trace_ids=slowest_traces(after, now),
            )
        )
    return causes


def error_causes(before: Period, after: Period) -> list[Cause]:
    """Where the change in the share of calls that fail comes from: each slice's error rate
    before and after, its errors by type (in the window, or in the baseline when they fell) and
    its share of the change. A cost cause names errors only when their retries cost; a request
    that now fails for good (a prompt past the model's context window) costs nothing more."""
    change = failed(after, after.total) - failed(before, before.total)
    direction = 1.0 if change >= 0 else -1.0
    causes = []
    # One call in a hundred more (or fewer) failing is noise.
    for key, explained, _score in _where(before, after, failed, direction, 0.01):
        dimension, value = key[-1]
        now, then = after.of(key), before.of(key)
        failing, totals = (after, now) if direction > 0 else (before, then)
        if totals.errors < _MIN_CALLS:
            continue  # a few stray errors in a small window are noise, not a cause
        rate_before, rate_after = ratio(then.errors, then.calls), ratio(now.errors, now.calls)
        share = min(explained / abs(change), 1.0)
        kinds = sorted(totals.errors_by_type.items(), key=lambda item: (-item[1], item[0]))
        named = ", ".join(
            f"{kind} ({_STATUS[kind]}) {count:,}" if kind in _STATUS else f"{kind} {count:,}"
            for kind, count in kinds
        )
        evidence = (
            f"{slice_label(key)}: errors {_percent(rate_before)}→{_percent(rate_after)} of its calls "
            f"({named}); {share:.0%} of the change in failed calls"
        )
        causes.append(
            Cause(
                dimension=dimension,
                value=value,
                filters=dict(key[:-1]),
                metric="error_rate",
                before=rounded(rate_before),
                after=rounded(rate_after),
                contribution=rounded(change * share),
                unit="error_rate",
                evidence=evidence,
                example_trace_ids=failed_traces(failing, totals),
            )
        )
    return causes
