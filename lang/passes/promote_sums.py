"""promote_sums: a sum a loop keeps in one array element is kept in a register instead.

Why: reverse mode adds an adjoint into its shadow element by element; when the element does
not change with the loop (`means.bar[j, a] -= l * qx.bar[b, i]` in a loop over the points
`i`), every iteration loads, adds and stores the same element. As a loop-carried sum it is
a reduction like any other: the loop stores nothing, so the vectoriser keeps partial sums
and `speculate_zero_safe` and `ascend_loops` apply to it.

Contract: at the top level of the body of an `scf.for`, `%l = memref.load %A[idx]` and a
later `memref.store (arith.addf %l, %y), %A[idx]` (or `%y + %l`) with
- the same array value and index values, all defined outside the loop;
- both unchecked, the add with `reassoc` (or `fast`) in its `fastmath` (its order is
  free), `%l` used only by the add and the add's result only by the store;
- `%A` a `memref.alloc` of the function, not used anywhere else in the loop, and every
  other array the loop uses reached (through `memref.row`/`slice`/`collapse`) from a
  parameter or another `memref.alloc` (so nothing else in the loop reaches `%A`'s memory)
becomes a carried sum that starts at +0.0 (-0.0 without `nsz`: the exact identity) and
adds `%y` in place of the add; after the
loop, under `scf.if lb < ub` (the indices are known to be in bounds only when the loop
runs), the element is loaded, the sum added with the same flags, and stored.
The element ends as its old value plus the same terms, in another order (reassoc).
"""
from __future__ import annotations

from ..ir import Block, Function, Op, Value
from .util import allows, defined_inside, for_each_function, guarded, separate, use_counts
from ..ops import isa, ARITH_ADDF, MEMREF_LOAD, MEMREF_STORE, SCF_FOR


def _pairs(loop: Op, counts: dict, f: Function) -> list:
    body = loop.regions[0].block
    inside = defined_inside(body)
    out = []
    for st in body.ops:
        if not isa(st, MEMREF_STORE) or st.attrs.get("checked", False):
            continue
        add, a, idx = st.operands[0].op, st.operands[1], st.operands[2:]
        if add is None or not isa(add, ARITH_ADDF) or add.parent is not body or \
                not allows(add, "reassoc") or \
                counts.get(add.results[0]) != 1:
            continue
        for k, l in enumerate(add.operands):
            ld = l.op
            if ld is None or not isa(ld, MEMREF_LOAD) or ld.parent is not body or \
                    ld.operands[0] is not a or ld.operands[1:] != idx or \
                    ld.attrs.get("checked", False) or counts.get(l) != 1:
                continue
            uses_a = sum(v is a for o in body.walk() for v in o.operands)
            if uses_a == 2 and a not in inside and not any(v in inside for v in idx) and \
                    separate(loop, a, f):
                out.append((ld, add, st, add.operands[1 - k]))
            break
    return out


def _promote(loop: Op, ld: Op, add: Op, st: Op, y: Value) -> tuple[list, list]:
    """Rewrite one pair; return the ops to insert before the loop and after it."""
    body = loop.regions[0].block
    t = ld.results[0].type
    # -0.0 is the exact identity of +; +0.0 only where the sign of a zero is free (nsz), and
    # then preferred: a sum that starts at +0.0 is never -0.0 (speculate_zero_safe's exact sums)
    zero = Op("arith.constant", [], [t], {"value": 0.0 if allows(add, "nsz") else -0.0})
    acc = body.add_arg(t, "sum")
    loop.operands.append(zero.result)
    out = Value(t, None, loop, len(loop.results))
    loop.results.append(out)
    add.operands = [acc, y]
    body.terminator.operands.append(add.results[0])
    body.ops.remove(ld)
    body.ops.remove(st)
    a, idx = st.operands[1], st.operands[2:]
    then = Block()
    old = then.append(Op("memref.load", [a, *idx], [t], {"checked": False}))
    new = then.append(Op("arith.addf", [old.results[0], out], [t], dict(add.attrs)))
    then.append(Op("memref.store", [new.results[0], a, *idx], [], {"checked": False}))
    then.append(Op("scf.yield", []))
    return [zero], guarded(loop.operands[0], loop.operands[1], then, [])


def _function(f: Function) -> None:
    for loop in [o for o in f.body.walk() if isa(o, SCF_FOR)]:
        while True:
            pairs = _pairs(loop, use_counts(f.body), f)
            if not pairs:
                break
            before, after = _promote(loop, *pairs[0])
            block = loop.parent
            pos = block.ops.index(loop)
            for o in before + after:
                o.parent = block
            block.ops[pos + 1:pos + 1] = after
            block.ops[pos:pos] = before


promote_sums = for_each_function(_function, "promote_sums")
