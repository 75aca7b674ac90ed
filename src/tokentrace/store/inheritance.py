"""Tag inheritance inside one batch, as columns.

A span inherits each attribution tag it lacks (and its agent) from its nearest ancestor that has
it. Most of a trace's spans arrive together, so most of the walk up a trace is done here, on the
batch alone: every span takes what its ancestors in the batch carry, and the spans still lacking a
tag are told where their chain leaves the batch (the `exit`: the first ancestor not in it). Only
those few go to the stored spans; a store never walks stored traces to write a batch.

The walk is pointer jumping: each round, a span takes the tags of the ancestor it points at and
then points at that ancestor's target, so the reach doubles and 9 rounds cover 256 generations
(deeper chains, and parent cycles in bad data, stop there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import INHERITED_FIELDS

_ROUNDS = 9  # 2**9 = 512 > 256 generations


@dataclass(frozen=True)
class Resolved:
    """The batch's spans with the tags their ancestors in the batch lend them, and for each span
    still lacking a tag the span id of its exit (null for the others, for spans whose chain ends
    at a root in the batch, and for a cycle)."""

    spans: pa.Table
    exits: pa.Array

    @property
    def exiting(self) -> pa.Array:
        """A mask of the spans with an exit: those that must look further, among the stored."""
        return pc.is_valid(self.exits)


def lacking(spans: pa.Table) -> pa.Array:
    """A mask of the spans missing at least one inherited tag."""
    masks = [pc.is_null(spans[name]) for name in INHERITED_FIELDS]
    out = masks[0]
    for mask in masks[1:]:
        out = pc.or_(out, mask)
    return out


def resolve(spans: pa.Table) -> Resolved:
    """Lend each span of the batch the tags its ancestors in the batch carry, nearest first."""
    n = spans.num_rows
    if n == 0 or not pc.any(lacking(spans)).as_py():
        return Resolved(spans, pa.nulls(n, pa.string()))
    project, trace = spans["project_id"], spans["trace_id"]
    keys = pc.binary_join_element_wise(project, trace, spans["span_id"], ":")
    has_parent = pc.not_equal(spans["parent_span_id"], "")
    parent_keys = pc.if_else(
        has_parent, pc.binary_join_element_wise(project, trace, spans["parent_span_id"], ":"), None
    )
    up = pc.index_in(parent_keys, value_set=keys)  # the parent's row, null when not in the batch
    tags = {name: spans[name].combine_chunks() for name in INHERITED_FIELDS}
    top = row_numbers(n)  # the furthest ancestor reached in the batch
    jump = up
    for _ in range(_ROUNDS):
        if jump.null_count == n:
            break
        tags = {name: pc.coalesce(values, pc.take(values, jump)) for name, values in tags.items()}
        top = pc.coalesce(pc.take(top, jump), top)
        jump = pc.take(jump, jump)
    for name, values in tags.items():
        spans = spans.set_column(spans.schema.get_field_index(name), name, values)
    # The chain leaves the batch above its furthest ancestor here, unless that is a root or the
    # chain went round (its parent is in the batch).
    leaves = pc.and_(pc.is_null(pc.take(up, top)), pc.take(has_parent, top))
    exits = pc.if_else(pc.and_(leaves, lacking(spans)), pc.take(spans["parent_span_id"], top), None)
    return Resolved(spans, exits)


def row_numbers(n: int) -> pa.Array:
    """0 … n-1 as int64, built from a buffer: `pa.array` on a Python or numpy value imports
    pandas (~0.9 s), which nothing here needs."""
    return pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(np.arange(n, dtype=np.int64))])


def lend(
    spans: pa.Table,
    rows: pa.Array | pa.ChunkedArray,
    found: pa.Table,
    names: tuple[str, ...] = INHERITED_FIELDS,
) -> pa.Table:
    """`spans` with the tags (`names`) they lack taken from `found`: one row per entry of
    `rows`, the row of `spans` it is for."""
    at = pc.index_in(row_numbers(spans.num_rows), value_set=pc.cast(rows, pa.int64()))
    for name in names:
        index = spans.schema.get_field_index(name)
        spans = spans.set_column(index, name, pc.coalesce(spans[name], pc.take(found[name], at)))
    return spans
