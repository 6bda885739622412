"""hoist_allocs: an array a loop iteration allocates and frees is allocated once, before the
loop, and reused by every iteration.

Why: a temporary per iteration (`let xc = x[i] - means[j];` in a loop over points and
components, the way users write GMM) is a `malloc` and a `free` per iteration, often costing
more than the arithmetic on its few elements, and a call the vectoriser cannot see through.

Contract: in the body block of an `scf.for`, `%a = memref.alloc(dims)` with
- every dimension defined outside the loop, or by pure ops of the body block whose operands
  are (recursively; they move out with the alloc, as `licm` would move them);
- exactly one `memref.dealloc %a`, later in the same body block, after which `%a` is not
  used;
- `%a` used only to read, write, measure or view it (`memref.load`, `memref.store`,
  `memref.dim`, views, `memref.copy`, `dad.zero_range`, a `func.call` argument, at any depth
  of the body): not yielded, returned or recorded on a tape, so no reference to it outlives
  the iteration (a callee keeps nothing: results are fresh arrays; a call that `records`,
  half of a recursion's split adjoint, may tape it and does not count);
moves before the loop and its dealloc after it. The hoisted alloc raises nothing the loop
would not have raised: each dimension becomes `select(lb < ub, d, 0)` (a loop that runs no
iteration allocates nothing, so no MemoryError either), with `max(d, 0)` and, where the
alloc was, a `dad.check d >= 0` raising the alloc's own ValueError ("negative array
dimension") for a dimension not known to be non-negative. A zero-filled alloc (no `zeroed = false`:
`skip_zero_fill` found no first writer covering it) is zeroed again where it was, by
`dad.zero_range` over all its elements, so every iteration still starts from zeros. Innermost
loops first, repeated, so an array can leave several loops. Machine pipeline, after
`zero_loads` and `skip_zero_fill` (which reason about a fresh array per iteration).
"""
from __future__ import annotations

from ..ir import BOOL, I64, Block, Function, Op, Value
from ..ops import (has_trait, is_pure, isa, ARITH_ADDI, ARITH_CMPI, ARITH_CONSTANT, ARITH_MAXSI,
                   ARITH_MULI, ARITH_SELECT, DAD_CHECK, DAD_ZERO_RANGE, FUNC_CALL, MEMREF_ALLOC,
                   MEMREF_COPY, MEMREF_DEALLOC, MEMREF_DIM, MEMREF_LOAD, MEMREF_STORE, SCF_FOR)
from .util import defined_inside, for_each_function

_USES = (MEMREF_LOAD, MEMREF_STORE, MEMREF_DIM, MEMREF_COPY, DAD_ZERO_RANGE, MEMREF_DEALLOC)


def _not_negative(v: Value) -> bool:
    op = v.op
    if op is None:
        return False
    if isa(op, MEMREF_DIM):
        return True
    if isa(op, ARITH_CONSTANT):
        return isinstance(op.attrs.get("value"), int) and op.attrs["value"] >= 0
    if isa(op, ARITH_MULI, ARITH_ADDI):      # may wrap, but only past 2^63: no alloc fits
        return all(_not_negative(o) for o in op.operands)
    if isa(op, ARITH_MAXSI):
        return any(_not_negative(o) for o in op.operands)
    if isa(op, ARITH_SELECT):
        return all(_not_negative(o) for o in op.operands[1:])
    return False


def _local(a: Value, body: Block) -> bool:
    """Is `a` only read, written, measured or viewed inside `body` (views included)?"""
    arrays, users = {a}, []
    for o in body.walk():
        users.append(o)
    changed = True
    while changed:
        changed = False
        for o in users:
            if has_trait(o, "view") and o.operands[0] in arrays and o.results[0] not in arrays:
                arrays.add(o.results[0])
                changed = True
    for o in users:
        if not any(v in arrays for v in o.operands):
            continue
        if has_trait(o, "view") and o.operands[0] in arrays and \
                not any(v in arrays for v in o.operands[1:]):
            continue
        if isa(o, FUNC_CALL) and not o.attrs.get("records"):
            continue
        if not isa(o, *_USES):
            return False
        if isa(o, MEMREF_STORE) and o.operands[0] in arrays:   # stored as a value: no
            return False
    return True


def _chain(values, body: Block, inside: set) -> list[Op] | None:
    """The pure ops of `body` (in order) that compute `values` from values defined outside
    the loop, or None when some value depends on the iteration."""
    ops, seen = [], set()

    def visit(v) -> bool:
        if v not in inside:
            return True
        op = v.op
        if op is None or op.parent is not body or not is_pure(op.name) or op.regions:
            return False
        if id(op) not in seen:
            if not all(visit(o) for o in op.operands):
                return False
            seen.add(id(op))
            ops.append(op)
        return True
    return ops if all(visit(v) for v in values) else None


def _candidates(loop: Op) -> list[tuple[Op, Op, list]]:
    body = loop.regions[0].block
    inside = defined_inside(body)
    out = []
    for k, op in enumerate(body.ops):
        chain = _chain(op.operands, body, inside) if isa(op, MEMREF_ALLOC) and op.operands else None
        if chain is None:
            continue
        a = op.results[0]
        frees = [o for o in body.ops[k + 1:] if isa(o, MEMREF_DEALLOC) and o.operands[0] is a]
        if len(frees) != 1 or any(isa(o, MEMREF_DEALLOC) and o.operands[0] is a and o.parent is not body
                                  for o in body.walk()):
            continue
        after = body.ops[body.ops.index(frees[0]) + 1:]
        if any(v is a for o in after for p in o.walk() for v in p.operands):
            continue
        if _local(a, body):
            out.append((op, frees[0], chain))
    return out


def _hoist(loop: Op) -> bool:
    block = loop.parent
    body = loop.regions[0].block
    moved = False
    gone: set[int] = set()       # chain ops already moved out (two allocs may share one)
    for alloc, free, chain in _candidates(loop):
        a = alloc.results[0]
        chain = [o for o in chain if id(o) not in gone]
        for o in chain:          # what the sizes are computed from leaves the loop first
            body.ops.remove(o)
            gone.add(id(o))
        pos = body.ops.index(alloc)
        pre, stay = list(chain), []      # ops before the loop; ops where the alloc was
        zero = _op(pre, ARITH_CONSTANT, [], I64, value=0)
        runs = _op(pre, ARITH_CMPI, loop.operands[:2], BOOL, pred="slt")
        dims = []
        for d in alloc.operands:
            if not _not_negative(d):
                ok = _op(stay, ARITH_CMPI, [d, zero], BOOL, pred="sge")
                stay.append(Op(DAD_CHECK, [ok, d], [], {
                    "kind": "ValueError", "msg": "negative array dimension {d0}",
                    "loc": alloc.attrs.get("loc", "")}))
                d = _op(pre, ARITH_MAXSI, [d, zero], I64)
            dims.append(_op(pre, ARITH_SELECT, [runs, d, zero], I64))
        if alloc.attrs.get("zeroed", True):   # every iteration starts from zeros again
            n = alloc.operands[0]
            for d in alloc.operands[1:]:
                n = _op(stay, ARITH_MULI, [n, d], I64)
            stay.append(Op(DAD_ZERO_RANGE, [a, zero, n]))
        alloc.operands = dims
        body.ops[pos:pos + 1] = stay
        body.ops.remove(free)
        for o in stay:
            o.parent = body
        at = block.ops.index(loop)
        block.ops[at:at + 1] = [*pre, alloc, loop, free]
        for o in (*pre, alloc, free):
            o.parent = block
        moved = True
    return moved


def _op(out: list, name, operands, rtype, **attrs) -> Value:
    op = Op(name, operands, [rtype], attrs)
    out.append(op)
    return op.results[0]


def _loops_innermost_first(block: Block) -> list[Op]:
    out = []
    for op in block.ops:
        for r in op.regions:
            out += _loops_innermost_first(r.block)
        if isa(op, SCF_FOR):
            out.append(op)
    return out


def _function(f: Function) -> None:
    changed = True
    while changed:
        changed = False
        for loop in _loops_innermost_first(f.body):
            changed |= _hoist(loop)


hoist_allocs = for_each_function(_function, "hoist_allocs")
