"""Triage: what changed between a window and the baseline just before it, and why.

The on-call playbook, automated. First the checks an engineer runs by hand (token rate,
calls per request, model mix, errors by model, template versions, tenant and user mix, cache
hit rate, tokens per request), then the change in cost per hour decomposed into causes:

1. *Where*: every slice of LLM calls by one attribution dimension (feature, template, version,
   model, tenant, user, …) or by a child inside its parent (a version inside its feature, a
   model inside its feature, a user inside its tenant) is scored by how much of the change it
   explains. Slices that explain it by themselves come first, the most specific first (the one
   with the least baseline cost: a new prompt version over its whole feature, a new user over
   their tenant); then slices explaining part of it, by explained share minus baseline share.
   A slice whose change is mostly inside better slices is dropped.
2. *How*: each chosen slice's change is split (log-mean Divisia, exact) into traffic
   (requests per hour), calls per request (retries, loops), tokens per call (prompt growth)
   and cost per token (model tier, cache misses). A slice new in the window is compared
   with its parent's baseline: v4 against the v3 it replaced.

p95 latency gets the same *where*, measured in excess slow calls: calls slower than the
baseline's p95, beyond the 5% the baseline itself had; and so do errors, measured in failed
calls, each slice said with its errors by type (a feature whose prompts now pass the model's
context window fails without costing more: no cost cause would name it).
"""

from tokentrace.query.triage.report import triage

__all__ = ["triage"]
