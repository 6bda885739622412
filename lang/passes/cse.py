"""cse: common-subexpression elimination of pure ops with scoped hash tables.

Contract: a pure op (`lang.ops.is_pure`, no regions) whose name, operands (by identity),
attributes and result types equal those of an earlier op in the same block or in an
enclosing block (earlier than the region holding it) is removed and its results replaced by
the earlier op's. Attributes are compared by their printed form, so `0.0` and `-0.0`, or
`1` and `1.0`, are never merged, and NaN constants are. Non-pure ops (loads, calls, division
that may raise, allocation) are never merged.
"""
from __future__ import annotations

from collections import ChainMap

from ..ir import Block, Function, Op
from ..ops import is_pure
from ..printer import format_attr
from .util import Subst, for_each_function


def _key(op: Op):
    attrs = tuple((k, format_attr(op.attrs[k])) for k in sorted(op.attrs))
    return (op.name, tuple(map(id, op.operands)), attrs, tuple(str(r.type) for r in op.results))


def _cse_block(block: Block, table: ChainMap, subst: Subst) -> None:
    kept = []
    for op in block.ops:
        subst.apply(op)
        if is_pure(op.name) and not op.regions:
            key = _key(op)
            prev = table.get(key)
            if prev is not None:
                for r, p in zip(op.results, prev.results):
                    subst[r] = p
                continue
            table[key] = op
        for region in op.regions:
            _cse_block(region.block, table.new_child(), subst)
        kept.append(op)
    block.ops[:] = kept


def _cse_function(f: Function) -> None:
    _cse_block(f.body, ChainMap(), Subst())


cse = for_each_function(_cse_function, "cse")
