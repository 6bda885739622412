"""Checkpointing: bounded tape memory for long loops, by recomputing segments.

`segment(fn, indices)` returns a copy of `fn` in which each top-level `scf.for` at one of
`indices` (positions in the body) runs as ⌈n/K⌉ segments of K = ⌊√n⌋ + 1 iterations: an
outer loop over segments whose body runs one segment as an inner loop marked
`checkpoint = true`. Reverse mode then records, per segment, only the loop-carried values
at its start (the checkpoint); the inner loop runs without recording in the forward sweep
and is replayed, recording, just before its reverse — so the tape holds one segment at a
time: O(√n) instead of O(n) records, for about one extra forward sweep.

`eligible(fn, op, stable)` says whether a loop may be replayed: it must not read an array
that anything writes (the replay would read the new values), nor carry arrays.
"""
from __future__ import annotations

from ..lang.ir import F64, I64, Block, Builder, Function, MemRefType, Op, Region, replace_all_uses
from ..lang.irparser import parse_function
from ..lang.printer import print_function


def eligible(op: Op, stable) -> bool:
    if op.name != "scf.for" or any(isinstance(r.type, MemRefType) for r in op.results):
        return False
    return all(o.name != "memref.load" or stable(o.operands[0]) for o in op.walk())


def segment(fn: Function, indices: set[int]) -> Function:
    copy = parse_function(print_function(fn))
    copy.attrs = dict(fn.attrs)
    body = copy.body
    for k in sorted(indices, reverse=True):
        _segment_loop(body, body.ops[k])
    return copy


def _segment_loop(parent: Block, op: Op) -> None:
    lb, ub, st, *inits = op.operands
    pos = parent.ops.index(op)
    head = Block()
    b = Builder(head)
    trips = b.one("arith.floordivsi", [b.addi(b.subi(ub, lb), b.subi(st, b.i(1))), st], I64)
    trips = b.one("arith.maxsi", [trips, b.i(0)], I64)
    k = b.addi(b.cast("arith.fptosi", b.math("sqrt", b.cast("arith.sitofp", trips, F64)), I64), b.i(1))
    nseg = b.one("arith.floordivsi", [b.addi(trips, b.subi(k, b.i(1))), k], I64)
    span = b.muli(k, st)
    outer, obody = b.for_(b.i(0), nseg, b.i(1), inits, "segment",
                          [a.name for a in op.regions[0].block.args[1:]],
                          [r.name for r in op.results])
    ob = Builder(obody)
    slb = ob.addi(lb, ob.muli(obody.args[0], span))
    sub = ob.one("arith.minsi", [ub, ob.addi(slb, span)], I64)
    inner = ob.op("scf.for", [slb, sub, st, *obody.args[1:]], [r.type for r in op.results],
                  regions=[Region(op.regions[0].block)], names=[r.name for r in op.results],
                  checkpoint=True)
    ob.yield_(list(inner.results))
    for old, new in zip(op.results, outer.results):
        replace_all_uses(parent, old, new)
    parent.ops[pos:pos + 1] = []
    for o in reversed(head.ops):
        o.parent = parent
        parent.ops.insert(pos, o)
