"""zero_loads: a load of an element of a fresh (zero-filled) array that nothing has stored
into yet is the constant 0.0.

Why: reverse mode accumulates an array's adjoint into a zero-filled shadow (`x.bar[i] +=
...`). When a loop is the shadow's first writer and each iteration reads an element no
earlier iteration wrote (Rosenbrock's reversed loop reads `x.bar[i]` after writing
`x.bar[i + 1]`), the read always gives 0: a whole pass over the array's memory for nothing.

Contract: for `%a = memref.alloc` (rank 1) in block B, all of whose uses are
`memref.load`, `memref.store` (as the array), `memref.dim`, `memref.dealloc`,
`func.return` or the source of `memref.copy` (no views, calls or tape records), an
unchecked float `memref.load %a[idx]` becomes `0.0` when either
- it is in B or nested in `scf.if`s of B, with no store into `%a` from the alloc to it; or
- it is at the top of the body of an `scf.for` in B or in `scf.if`s of B (constant step >
  0) with no store into `%a` between the alloc and the loop, every store into `%a` inside the loop is at the top
  of that body with an index `c * iv + inv + ks` and the load's is `c * iv + inv + kl`
  (`lang.passes.affine`, the same `c` in {1, -1} and `inv`), and no earlier iteration (nor
  this one, before the load) stores the loaded element: `c * (kl - ks) >= 0`, and when
  `kl == ks` the stores come after the load.
"""
from __future__ import annotations

from ..ir import Function, Op, replace_all_uses
from .affine import affine
from .util import NOT_CONST, const_of, defined_inside, for_each_function
from ..ops import isa, FUNC_RETURN, MEMREF_ALLOC, MEMREF_COPY, MEMREF_DEALLOC, MEMREF_DIM, MEMREF_LOAD, MEMREF_STORE, SCF_FOR, SCF_IF

_QUIET = (MEMREF_LOAD, MEMREF_DIM, MEMREF_DEALLOC, FUNC_RETURN)


def _uses_ok(f: Function, a) -> bool:
    for o in f.body.walk():
        for k, v in enumerate(o.operands):
            if v is not a:
                continue
            if isa(o, *_QUIET) or (isa(o, MEMREF_STORE) and k == 1) or \
                    (isa(o, MEMREF_COPY) and k == 0):
                continue
            return False
    return True


def _stores(op: Op, a) -> list:
    return [o for o in op.walk() if isa(o, MEMREF_STORE) and o.operands[1] is a]


def _zero(f: Function, load: Op) -> None:
    c = Op("arith.constant", [], [load.results[0].type], {"value": 0.0})
    c.parent = load.parent
    pos = load.parent.ops.index(load)
    load.parent.ops[pos] = c
    replace_all_uses(f.body, load.results[0], c.results[0])


def _candidate(o: Op, a) -> bool:
    return isa(o, MEMREF_LOAD) and o.operands[0] is a and len(o.operands) == 2 and \
        not o.attrs.get("checked", False) and o.results[0].type.is_float


def _in_loop(loop: Op, a) -> list:
    """The loads at the top of `loop`'s body that read elements no store has written."""
    s = const_of(loop.operands[2])
    if s is NOT_CONST or s <= 0:
        return []
    body = loop.regions[0].block
    iv = body.args[0]
    inside, memo = defined_inside(body), {}
    stores = []
    for pos, o in enumerate(body.ops):
        for st in _stores(o, a):
            if st is not o:
                return []               # a store nested deeper: not analysed
            form = affine(st.operands[2], iv, inside, memo)
            if form is None or form[0] not in (1, -1):
                return []
            stores.append((pos, form))
    found = []
    for pos, o in enumerate(body.ops):
        if not _candidate(o, a):
            continue
        lf = affine(o.operands[1], iv, inside, memo)
        if lf is None:
            continue
        ok = True
        for spos, sf in stores:
            if sf[0] != lf[0] or sf[1] != lf[1] or lf[0] * (lf[2] - sf[2]) < 0 or \
                    (lf[2] == sf[2] and spos < pos):
                ok = False
                break
        if ok:
            found.append(o)
    return found


def _scan(ops: list, a, hits: list) -> bool:
    """Collect in `hits` the zero loads among `ops` (in order, from a point where `a` is all
    zeros); True once an op that stores into `a` is passed."""
    for o in ops:
        if _candidate(o, a):
            hits.append(o)
        elif isa(o, SCF_IF):      # each branch goes on from the same state
            for r in o.regions:
                _scan(r.block.ops, a, hits)
        elif isa(o, SCF_FOR):
            hits += _in_loop(o, a)
        if _stores(o, a):
            return True
    return False


def _function(f: Function) -> None:
    for alloc in [o for o in f.body.walk() if isa(o, MEMREF_ALLOC)]:
        a = alloc.results[0]
        if a.type.rank != 1 or not a.type.elem.is_float or not _uses_ok(f, a):
            continue
        block = alloc.parent
        hits: list = []
        _scan(block.ops[block.ops.index(alloc) + 1:], a, hits)
        for load in hits:
            _zero(f, load)


zero_loads = for_each_function(_function, "zero_loads")
