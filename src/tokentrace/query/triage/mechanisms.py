"""How a slice's cost per hour changed: the log-mean Divisia (LMDI) split of the change into
traffic, calls per request, tokens per call and cost per token, with what retries' resends added
carved out of tokens per call."""

from __future__ import annotations

import math

import numpy as np

from tokentrace.query.triage.checks import ratio
from tokentrace.query.triage.periods import Period, Totals

_MIN_CALLS = 5  # fewer first tries of a kind of call are no mean to weigh a resend against


def cost_per_hour(period: Period, totals: Totals) -> float:
    """What the calls cost per hour of their period."""
    return period.rate(totals.cost)


def _log_mean(a: float, b: float) -> float:
    if a <= 0 or b <= 0:
        return 0.0
    return a if math.isclose(a, b) else (a - b) / (math.log(a) - math.log(b))


#: What an output token weighs against an input token in the factors below: about what it costs
#: (OpenAI's models 4x, Anthropic's 5x, Gemini's 4-8x). Unweighted, answers grown longer on the
#: same model read as dearer tokens (the mix moving to the pricier kind), not as longer answers.
OUTPUT_WEIGHT = 4


def weighted_tokens(totals: Totals) -> float:
    """Input tokens plus output tokens at OUTPUT_WEIGHT: the tokens the cost factors count."""
    return totals.input_tokens + OUTPUT_WEIGHT * totals.output_tokens


def _factors(period: Period, totals: Totals) -> dict[str, float]:
    """cost/h = requests/h * answered calls per request * tokens per answered call * cost per
    token, tokens weighed by what they cost (OUTPUT_WEIGHT), so the last factor moves with prices
    (a model, a tier, the cache) and not with the answers' length. Failed attempts carry no
    usage, so they are not a factor of cost by themselves."""
    requests = totals.requests
    tokens = weighted_tokens(totals)
    return {
        "traffic": period.rate(requests),
        "calls_per_request": ratio(totals.answered, requests) or 0.0,
        "tokens_per_call": ratio(tokens, totals.answered) or 0.0,
        "cost_per_token": ratio(totals.cost, tokens) or 0.0,
    }


def _kinds(period: Period, rows: np.ndarray) -> tuple[np.ndarray, list[tuple[str | None, str | None]]]:
    """Each call's kind (operation and model) as a number, and each number's (operation, model):
    the numbers are the period's own, the names compare across periods."""
    calls = period.calls
    operation, model = calls.coded["operation"], calls.coded["request_model"]
    numbers = (operation.codes[rows] + 1) * (model.size + 1) + model.codes[rows] + 1
    found, inverse = np.unique(numbers, return_inverse=True)
    names = list(
        zip(
            operation.texts(found // (model.size + 1) - 1),
            model.texts(found % (model.size + 1) - 1),
            strict=True,
        )
    )
    return inverse.reshape(-1), names


def _first_try_costs(period: Period, totals: Totals) -> dict[tuple[str | None, str | None], float]:
    """Mean cost of an answered first try, per kind of call (operation and model), where there
    are enough of them."""
    rows = totals.rows
    first = rows[~period.calls.error[rows] & ~period.calls.resent[rows]]
    kinds, names = _kinds(period, first)
    counts = np.bincount(kinds, minlength=len(names))
    sums = np.bincount(kinds, weights=period.calls.cost[first], minlength=len(names))
    return {name: float(s / n) for name, s, n in zip(names, sums, counts, strict=True) if n >= _MIN_CALLS}


def _resend_cost(period: Period, totals: Totals, usual: dict[tuple[str | None, str | None], float]) -> float:
    """Per hour, what answered retries cost beyond a first try of the same operation and model:
    the conversation an app resends after a failure, and what it added on the way."""
    rows = totals.rows[period.calls.resent[totals.rows]]
    costs = period.calls.cost[rows]
    kinds, names = _kinds(period, rows)
    first_try = np.array([usual.get(names[k], c) for k, c in zip(kinds.tolist(), costs, strict=True)])
    extra = float((costs - first_try).sum()) if len(rows) else 0.0
    return period.rate(max(extra, 0.0))


def mechanisms(before: Period, after: Period, now: Totals, then: Totals) -> dict[str, float]:
    """A slice's change in cost per hour (its calls `now` in the window, `then` in the
    baseline), split exactly among the four factors (LMDI), with what retries' resends added
    carved out of the tokens-per-call share as `retries`."""
    c_now, c_then = cost_per_hour(after, now), cost_per_hour(before, then)
    if c_then <= 0 or c_now <= 0:  # nothing to compare with: all of it is new (or gone) traffic
        return {"traffic": c_now - c_then}
    f_now, f_then = _factors(after, now), _factors(before, then)
    weight = _log_mean(c_now, c_then)
    split = {}
    for name in f_now:
        if f_now[name] > 0 and f_then[name] > 0:
            split[name] = weight * math.log(f_now[name] / f_then[name])
    usual_then = _first_try_costs(before, then)
    usual_now = usual_then | _first_try_costs(after, now)  # the window's own first tries where it has them
    retries = _resend_cost(after, now, usual_now) - _resend_cost(before, then, usual_then)
    carved = min(retries, split.get("tokens_per_call", 0.0))
    if carved > 0:
        split["tokens_per_call"] -= carved
        split["retries"] = carved
    return split
