"""Agents' runs: how many turns (LLM calls) each run of an agent takes, and the runs that loop.

A run is an agent's part of one trace: its turns are the chat and completion calls that inherited
its name (`agent_name`, the nearest agent ancestor); embeddings it made are not turns. A run
loops when it takes far more turns than the agent usually does, or when one tool runs again and
again in it (with the same arguments, where the spans say them).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

import orjson

from tokentrace.query.records import records
from tokentrace.query.traces import same_tool_run
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

#: A run loops past max(LOOP_FACTOR times the agent's usual turns, LOOP_MIN_TURNS) turns…
LOOP_FACTOR = 3.0
LOOP_MIN_TURNS = 10
#: …or when one tool runs this many times in it.
TOOL_REPEATS = 5
#: The calls that are an agent's turns (an embedding of the query is not one).
TURN_OPERATIONS = ("chat", "text_completion")
_ARGUMENTS = ("gen_ai.tool.call.arguments", "input.value", "traceloop.entity.input")


@dataclass(frozen=True)
class Run:
    agent: str
    trace_id: str
    turns: int


@dataclass(frozen=True)
class Loop:
    agent: str
    trace_id: str
    turns: int
    usual: float | None  # the agent's median turns per run before, if known
    tool: str | None = None  # the tool that repeated, if that is the finding
    tool_runs: int = 0
    same_arguments: bool = False

    def describe(self) -> str:
        """The finding in words, e.g. `weather_agent: 31 turns in trace 4bf9… (usually 4)`."""
        usual = f" (usually {self.usual:g})" if self.usual is not None else ""
        text = f"{self.agent}: {self.turns} turns in trace {self.trace_id}{usual}"
        if self.tool:
            same = " with the same arguments" if self.same_arguments else ""
            text += f"; {self.tool} ran {self.tool_runs} times{same}"
        return text


def runs(store: Store, f: SpanFilter) -> list[Run]:
    """Every agent run with calls in the filter's range: turns per (trace, agent)."""
    turns = replace(f, equals={**f.equals, "operation": TURN_OPERATIONS})
    table = store.aggregate(turns, ("trace_id", "agent_name"), None, distinct=False)
    return [
        Run(r["agent_name"], r["trace_id"], r["requests"])
        for r in records(table)
        if r["agent_name"] and r["requests"]
    ]


def turns_by_agent(runs: Iterable[Run]) -> dict[str, list[int]]:
    """Each agent's turns, run by run."""
    by_agent: dict[str, list[int]] = defaultdict(list)
    for run in runs:
        by_agent[run.agent].append(run.turns)
    return by_agent


def usual_turns(history: Iterable[Run]) -> dict[str, float]:
    """Each agent's median turns per run."""
    return {agent: statistics.median(turns) for agent, turns in turns_by_agent(history).items()}


def mean_turns(current: Iterable[Run]) -> dict[str, float]:
    """Each agent's mean turns per run: one looping run moves it, as it moves the bill."""
    return {agent: sum(turns) / len(turns) for agent, turns in turns_by_agent(current).items()}


def _tool_repeats(store: Store, f: SpanFilter) -> dict[tuple[str, str], tuple[str, int]]:
    """(agent, trace) → the tool that ran most in that run and how often, where it is ≥ TOOL_REPEATS."""
    table = store.aggregate(f, ("trace_id", "agent_name", "tool_name"), None, distinct=False)
    found: dict[tuple[str, str], tuple[str, int]] = {}
    for r in records(table):
        if r["tool_name"] and r["agent_name"] and r["spans"] >= TOOL_REPEATS:
            key = (r["agent_name"], r["trace_id"])
            if key not in found or r["spans"] > found[key][1]:
                found[key] = (r["tool_name"], r["spans"])
    return found


def _tool_runs(store: Store, project_id: str, trace_id: str, agent: str, tool: str) -> tuple[int, bool]:
    """How often `agent` ran `tool` in the trace (a tool span directly inside one of the same tool
    is the same run, seen twice), and whether every run was given the same arguments."""
    spans = records(store.trace_spans(project_id, trace_id))
    by_id = {span["span_id"]: span for span in spans}
    count, seen, said = 0, set(), True
    for span in spans:
        if span["tool_name"] != tool or span["agent_name"] != agent or span["operation"] != "execute_tool":
            continue
        if same_tool_run(span, by_id.get(span["parent_span_id"])):
            continue
        count += 1
        attributes = orjson.loads(span["attributes"]) if span["attributes"] else {}
        arguments = next((attributes[k] for k in _ARGUMENTS if k in attributes), None)
        if arguments is None:
            said = False
        else:
            seen.add(orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS))
    return count, said and len(seen) == 1


def loops(
    store: Store,
    f: SpanFilter,
    current: Iterable[Run],
    usual: dict[str, float],
    factor: float = LOOP_FACTOR,
    min_turns: int = LOOP_MIN_TURNS,
    limit: int = 10,
) -> list[Loop]:
    """Of the runs in `f` (`current`, already counted), those that loop, the longest first: far
    past the agent's usual turns (or `min_turns` where no usual is known), or with one tool run
    TOOL_REPEATS times or more."""
    repeats = _tool_repeats(store, f)
    found: list[tuple[Loop, bool]] = []  # each with whether its turns alone make it a loop
    for run in current:
        known = usual.get(run.agent)
        bound = max(factor * known, min_turns) if known is not None else min_turns
        tool, tool_runs = repeats.get((run.agent, run.trace_id), (None, 0))
        if run.turns >= bound or tool:
            found.append(
                (Loop(run.agent, run.trace_id, run.turns, known, tool, tool_runs), run.turns >= bound)
            )
    found.sort(key=lambda item: (-item[0].turns, -item[0].tool_runs, item[0].trace_id))
    kept = []
    for loop, long in found:
        if len(kept) == limit:
            break
        if loop.tool:
            # the store counted tool spans; the trace says which of them are one run
            runs, same = _tool_runs(store, f.project_id, loop.trace_id, loop.agent, loop.tool)
            if runs >= TOOL_REPEATS:
                loop = replace(loop, tool_runs=runs, same_arguments=same)
            elif long:
                loop = replace(loop, tool=None, tool_runs=0)
            else:
                continue
        kept.append(loop)
    return kept
