"""Budgets: spend limits enforced before a call starts (gateway and SDK), with counters in
this process or in Redis shared by every gateway."""

from tokentrace.budgets.counters import Admission, Counters, Entry, MemoryCounters
from tokentrace.budgets.decisions import Decision, Usage, decide, decide_async, estimate, settlement
from tokentrace.budgets.policy import Budget, BudgetError, Policy, load_policy, parse_budgets, parse_policy

__all__ = [
    "Admission",
    "Budget",
    "BudgetError",
    "Counters",
    "Decision",
    "Entry",
    "MemoryCounters",
    "Policy",
    "Usage",
    "decide",
    "decide_async",
    "estimate",
    "load_policy",
    "parse_budgets",
    "parse_policy",
    "settlement",
]
