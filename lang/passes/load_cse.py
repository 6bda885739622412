"""load_cse: a load of the same array element as an earlier load, with no write in between,
reuses the earlier value.

Contract: within a block, and from an enclosing block into nested ones, `memref.load %a,
idx...` is replaced by an earlier load of the same array value and index values when no op
that may write memory (the `writes` trait: a store, copy, dealloc, call or tape op) ran in
between clears everything known (no alias analysis: views of one array are different values). An op with
regions first sees a copy of what is known; afterwards, if anything inside may write, all is
forgotten. The earlier load did any bounds check the later one would have done.
"""
from __future__ import annotations

from ..ir import Block, Function
from ..ops import has_trait, isa, MEMREF_LOAD
from .util import Subst, for_each_function, writes

def _block(block: Block, known: dict, subst: Subst) -> None:
    kept = []
    for op in block.ops:
        subst.apply(op)
        if isa(op, MEMREF_LOAD):
            key = tuple(map(id, op.operands))
            prev = known.get(key)
            if prev is not None:
                subst[op.results[0]] = prev
                continue
            known[key] = op.results[0]
        elif op.regions:
            for region in op.regions:
                _block(region.block, dict(known), subst)
            if writes(op):
                known.clear()
        elif has_trait(op, "writes"):
            known.clear()
        kept.append(op)
    block.ops[:] = kept


def _function(f: Function) -> None:
    _block(f.body, {}, Subst())


load_cse = for_each_function(_function, "load_cse")
