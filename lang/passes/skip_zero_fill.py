"""skip_zero_fill: a fresh array whose first writer overwrites every element is allocated
without zero-filling it.

Why: `memref.alloc` gives zeros (calloc), which costs a pass over the array's memory. The
adjoint shadow of Rosenbrock's gradient (8 MB at n = 10^6) is zero-filled and then written
once more, element by element, by the reversed loop: the fill is a third of the memory
traffic of the whole gradient. A copy into a fresh array (`var y = x`) is the same.

Contract: `%a = memref.alloc(dims)` in block B is marked `{zeroed = false}` (its elements
start undefined) when the first op after it in B that uses `%a` other than by `memref.dim`
(nothing before it touches `%a`) covers it: an `scf.if` (not on `%a`) whose branches each
cover it in the same sense (the two copies `version_checks` makes of a loop), or
- `memref.copy %src, %a` with `%src` of the same rank and each `dims[k]` a
  `memref.dim %src {index = k}` (the copy writes every element); or
- a nest of `scf.for` (from 0, step 1) and `scf.if` ops, any rank, that uses `%a` only as
  the array of `memref.store`s and has a group of stores at the top of one block that
  writes a whole slice per iteration: each dimension is indexed, in every store of the
  group, by the iv of one enclosing loop whose bound is that dimension (the same value, or
  equal constants), or by constants that together make every combination of that
  (constant) dimension's indices; every enclosing loop's iv indexes a dimension; an
  `scf.if` in the nest needs such a group in every branch, fixing the same dimensions by
  the same outer ivs (so whichever branch runs writes the same slice). BA's 3-D Jacobian
  (`jac[i, r, 0..14]` for `i`, `r` over its first two dimensions) is one; or
- an `scf.for` with step 1, rank-1 `%a`, in which `%a` is used only by `memref.store` ops
  at the top of the body (they run in every iteration, before the loop is left) and by
  `memref.dim`, all indexed `c * iv + inv + k` (`lang.passes.affine`) with one `c` in
  {1, -1}, one `inv`, and offsets `k` forming a run of consecutive integers. When the loop
  runs, it writes exactly the elements `lo..hi` between the extreme offsets at the first
  and last iterations; `dad.zero_range %a, lo', hi'` ops placed before the loop zero the
  rest (`0..lo` and `hi + 1..n`, clamped to the array; the whole array when the loop runs
  no iteration). No load of `%a` is in the loop, so no element is read before it is set.
Memory after the covering op holds what it held before the pass, bit for bit. It runs on
the machine IR after `zero_loads` (which turns reads of never-written elements into 0.0,
leaving reversed accumulation loops with stores only).
"""
from __future__ import annotations

from ..ir import BOOL, I64, Function, Op
from .affine import affine, materialise
from .util import NOT_CONST, const_of, defined_inside, for_each_function
from ..ops import isa, MEMREF_ALLOC, MEMREF_COPY, MEMREF_DIM, MEMREF_STORE, SCF_FOR, SCF_IF


def _touches(op: Op, a) -> bool:
    return any(v is a and not isa(o, MEMREF_DIM) for o in op.walk() for v in o.operands)


def _copy_covers(op: Op, alloc: Op) -> bool:
    if not isa(op, MEMREF_COPY) or op.operands[1] is not alloc.results[0]:
        return False
    src = op.operands[0]
    if src is alloc.results[0] or src.type.rank != alloc.results[0].type.rank:
        return False
    for k, d in enumerate(alloc.operands):
        o = d.op
        if o is None or not isa(o, MEMREF_DIM) or o.operands[0] is not src or \
                o.attrs.get("index") != k:
            return False
    return True


def _loop_cover(loop: Op, a):
    """(c, inv, kmin, kmax) of the stores that cover `loop`'s run, or None."""
    if not isa(loop, SCF_FOR) or a.type.rank != 1 or const_of(loop.operands[2]) != 1 or \
            any(v is a for v in loop.operands):
        return None
    body = loop.regions[0].block
    iv = body.args[0]
    inside, memo = defined_inside(body), {}
    forms = []
    for o in body.walk():
        for k, v in enumerate(o.operands):
            if v is not a or isa(o, MEMREF_DIM):
                continue
            if not isa(o, MEMREF_STORE) or k != 1 or o.parent is not body:
                return None
            f = affine(o.operands[2], iv, inside, memo)
            if f is None or f[0] not in (1, -1):
                return None
            forms.append(f)
    if not forms or any(f[:2] != forms[0][:2] for f in forms):
        return None
    ks = sorted({f[2] for f in forms})
    if ks[-1] - ks[0] != len(ks) - 1:
        return None
    return forms[0][0], forms[0][1], ks[0], ks[-1]


def _fills(loop: Op, a, cover) -> list:
    """The ops zeroing what `loop` does not write (see the module docstring)."""
    c, inv, kmin, kmax = cover
    lb, ub = loop.operands[0], loop.operands[1]
    ops: list = []

    def op(name, operands, type=I64, **attrs):
        o = Op(name, operands, [type] if type else [], attrs)
        ops.append(o)
        return o.result if type else None

    zero, one = op("arith.constant", [], value=0), op("arith.constant", [], value=1)
    n = op("memref.dim", [a], index=0)
    first_at, last_at = (lb, op("arith.subi", [ub, one]))[::c]
    lo = materialise(ops, (c, inv, kmin), first_at)
    hi = op("arith.addi", [materialise(ops, (c, inv, kmax), last_at), one])
    runs = op("arith.cmpi", [lb, ub], BOOL, pred="slt")
    lo = op("arith.minsi", [op("arith.maxsi", [lo, zero]), n])
    lo = op("arith.select", [runs, lo, n])
    hi = op("arith.minsi", [op("arith.maxsi", [hi, lo]), n])
    hi = op("arith.select", [runs, hi, n])
    op("dad.zero_range", [a, zero, lo], None)
    op("dad.zero_range", [a, hi, n], None)
    return ops


def _full_range(loop: Op):
    """`loop`'s (iv, ub) when it runs iv = 0, 1, ..., ub - 1; else None."""
    if not isa(loop, SCF_FOR) or const_of(loop.operands[0]) != 0 or \
            const_of(loop.operands[2]) != 1:
        return None
    return loop.regions[0].block.args[0], loop.operands[1]


def _same_extent(ub, dim) -> bool:
    c = const_of(dim)
    return ub is dim or (c is not NOT_CONST and const_of(ub) == c)


def _group_covers(stores: list, loops: list, alloc: Op):
    """`{iv: dim}` when `stores` (together, unconditional in the body of the full-range
    `loops`) write a whole slice per iteration: each dimension indexed, in every store, by
    the iv of one loop whose extent is that dimension, or by constants that together make
    every combination of the constant dimensions; every loop's iv indexes one dimension (a
    loop that may run no iteration writes nothing). Else None."""
    dims = alloc.operands
    extent = dict(loops)
    by_iv, const_dims = {}, []
    for k, d in enumerate(dims):
        idx = [s.operands[2 + k] for s in stores]
        if idx[0] in extent and all(v is idx[0] for v in idx):
            if not _same_extent(extent[idx[0]], d) or idx[0] in by_iv:
                return None
            by_iv[idx[0]] = k
        elif const_of(d) is not NOT_CONST and all(const_of(v) is not NOT_CONST for v in idx):
            const_dims.append(k)
        else:
            return None
    if len(by_iv) != len(extent):
        return None
    want = 1
    for k in const_dims:
        want *= const_of(dims[k])
    got = {tuple(const_of(s.operands[2 + k]) for k in const_dims) for s in stores}
    ok = len(got) == want and all(0 <= c < const_of(dims[k])
                                  for t in got for c, k in zip(t, const_dims))
    return by_iv if ok else None


def _block_covers(block, a, alloc: Op, loops: list):
    """`{iv: dim}` of the ivs of `loops` when running `block` in every iteration of them
    writes the whole slice those ivs fix (`_group_covers`); else None."""
    stores = [o for o in block.ops if isa(o, MEMREF_STORE) and o.operands[1] is a]
    if stores:
        m = _group_covers(stores, loops, alloc)
        if m is not None:
            return m
    for o in block.ops:
        if isa(o, SCF_FOR, SCF_IF) and _touches(o, a):
            m = _nest_covers(o, a, alloc, loops)
            if m is not None:
                return m
    return None


def _nest_covers(op: Op, a, alloc: Op, loops: list):
    """The same for one `scf.for` (full range) or `scf.if` (every branch, with the same
    map of the outer ivs: whichever branch runs, it writes the same slice)."""
    outer = {iv for iv, _ in loops}
    if isa(op, SCF_IF):
        maps = [_block_covers(r.block, a, alloc, loops) for r in op.regions]
        if any(m is None for m in maps):
            return None
        maps = [{iv: k for iv, k in m.items() if iv in outer} for m in maps]
        return maps[0] if all(m == maps[0] for m in maps) else None
    rng = _full_range(op)
    m = None if rng is None else _block_covers(op.regions[0].block, a, alloc, loops + [rng])
    return None if m is None else {iv: k for iv, k in m.items() if iv in outer}


def _nest_writes_all(first: Op, a, alloc: Op) -> bool:
    """A loop nest that only stores into `a` (no other use of it at any depth, nor as an
    operand of a loop or branch) and writes every element of it."""
    for o in first.walk():
        for k, v in enumerate(o.operands):
            if v is a and not (isa(o, MEMREF_STORE) and k == 1) and not isa(o, MEMREF_DIM):
                return False
    return _nest_covers(first, a, alloc, []) is not None


def _covers(block, start: int, a, alloc: Op, found: list) -> bool:
    """Does the first op from `block.ops[start]` on that touches `a` write all of it before
    anything reads it? Each covering loop goes into `found` with its block."""
    first = next((o for o in block.ops[start:] if _touches(o, a)), None)
    if first is None:
        return False
    if _copy_covers(first, alloc) or (isa(first, SCF_FOR, SCF_IF) and
                                      _nest_writes_all(first, a, alloc)):
        return True
    if isa(first, SCF_IF) and not any(v is a for v in first.operands):
        return all(_covers(r.block, 0, a, alloc, found) for r in first.regions)
    cover = _loop_cover(first, a)
    if cover is not None:
        found.append((block, first, cover))
    return cover is not None


def _function(f: Function) -> None:
    for alloc in [o for o in f.body.walk() if isa(o, MEMREF_ALLOC)]:
        if alloc.attrs.get("zeroed", True) is False:
            continue
        a = alloc.results[0]
        block, found = alloc.parent, []
        if not _covers(block, block.ops.index(alloc) + 1, a, alloc, found):
            continue
        alloc.attrs["zeroed"] = False
        for blk, loop, cover in found:
            pos = blk.ops.index(loop)
            new = _fills(loop, a, cover)
            for o in new:
                o.parent = blk
            blk.ops[pos:pos] = new


skip_zero_fill = for_each_function(_function, "skip_zero_fill")
