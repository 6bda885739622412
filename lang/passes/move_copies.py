"""move_copies: a copy of a local array into a fresh array of the same shape, after which
the source is only freed, becomes the source itself.

Why: returning a `var` array (`return (jac, wjac);`) copies it into a fresh array and frees
the original: a pass over the whole array, and a second buffer whose pages the system must
clear, for nothing.

Contract: in one block, `%b = memref.alloc(dims)`, later `memref.copy %a, %b`, later
`memref.dealloc %a`, where `%a = memref.alloc(dims)` (the same dimension values, the same
type) in the same block, and:
- `%b` is not used between its allocation and the copy;
- `%a` is not used after the copy except by that dealloc (views of it included);
- every use of `%a` or of a view of it is a load, store, dim, view, copy, dealloc or a call
  that returns no array (it never escapes: no tape record, yield, return or array result
  can hold it).
Then the copy, `%b`'s allocation and `%a`'s dealloc are deleted and `%b` is replaced by `%a`:
`%b` would have held exactly `%a`'s elements, and nothing reads `%a` afterwards.
"""
from __future__ import annotations

from ..ir import Block, Function, MemRefType
from ..ops import (has_trait, isa, ops_with, FUNC_CALL, MEMREF_ALLOC, MEMREF_COPY, MEMREF_DEALLOC,
                   MEMREF_DIM, MEMREF_LOAD, MEMREF_STORE)
from .util import for_each_function, uses

_QUIET = (MEMREF_LOAD, MEMREF_STORE, MEMREF_DIM, MEMREF_COPY, MEMREF_DEALLOC) + tuple(ops_with("view"))


def _views(f: Function, a) -> set:
    """`a` and every view of it, transitively."""
    out, changed = {a}, True
    while changed:
        changed = False
        for o in f.body.walk():
            if has_trait(o, "view") and o.operands[0] in out and o.results[0] not in out:
                out.add(o.results[0])
                changed = True
    return out


def _quiet(op) -> bool:
    """Can `op` use an array without letting it escape? (A call that returns no array cannot
    keep it: functions have no state.)"""
    return isa(op, *_QUIET) or (isa(op, FUNC_CALL) and
                                  not any(isinstance(r.type, MemRefType) for r in op.results))


def _try(f: Function, block: Block, i: int) -> bool:
    copy = block.ops[i]
    a, b = copy.operands
    ao, bo = a.op, b.op
    if ao is None or bo is None or not isa(ao, MEMREF_ALLOC) or not isa(bo, MEMREF_ALLOC):
        return False
    if ao.parent is not block or bo.parent is not block or a.type != b.type or \
            ao.operands != bo.operands:
        return False
    ops = block.ops
    ib = ops.index(bo)
    if any(uses(o, {b}) for o in ops[ib + 1:i]):
        return False
    alias = _views(f, a)
    if not all(_quiet(o) for o in f.body.walk() if any(v in alias for v in o.operands)):
        return False
    after = ops[i + 1:]
    frees = [o for o in after if isa(o, MEMREF_DEALLOC) and o.operands[0] is a]
    if len(frees) != 1 or any(uses(o, alias) for o in after if o is not frees[0]):
        return False
    for o in after:
        for sub in o.walk():
            sub.operands = [a if v is b else v for v in sub.operands]
    block.ops.remove(frees[0])
    block.ops.remove(copy)
    block.ops.remove(bo)
    return True


def _block(f: Function, block: Block) -> None:
    i = 0
    while i < len(block.ops):
        op = block.ops[i]
        if isa(op, MEMREF_COPY) and _try(f, block, i):
            i = 0
            continue
        for r in op.regions:
            _block(f, r.block)
        i += 1


def _function(f: Function) -> None:
    _block(f, f.body)


move_copies = for_each_function(_function, "move_copies")
