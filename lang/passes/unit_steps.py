"""unit_steps: a loop whose step is not 1 counts its iterations instead, so that no increment wraps.

Contract: `scf.for %lb, %ub, %s` with `s` not the constant 1 becomes `scf.for 0, %trips, 1`
(`trips` from `lang/loops.py`, computed just before the loop) whose body first recomputes
the induction variable as `lb + k * s` from the count `k`; the body is otherwise unchanged.
Why: the machine loop steps `iv += s` and tests `iv < ub`, and after the last iteration of
`for i in lb..ub step s` with `ub` within `s` of 2^63 the step passes the end of i64 (it
wraps to a value below `ub` and the loop would go on); the count `k + 1 <= trips` never
wraps. Runs on the way to machine code only, after the passes that reason about the
original induction variable (`elide_bounds_checks`, `version_checks`).
"""
from __future__ import annotations

from ..ir import Block, Builder, Function, Op
from ..loops import induction_value, trip_count
from ..ops import isa, SCF_FOR
from .util import const_of, for_each_function


def _count(loop: Op) -> list[Op]:
    """Rewrite `loop` in place; return the ops to insert before it."""
    lb, ub, step = loop.operands[:3]
    head = Builder(Block())
    trips = trip_count(head, lb, ub, step)
    zero, one = head.i(0), head.i(1)
    body = loop.regions[0].block
    k = body.args[0]
    k.name = "k"
    inner = Builder(Block())
    iv = induction_value(inner, lb, k, step)
    iv.name = "iv"
    for op in body.walk():
        op.operands = [iv if v is k else v for v in op.operands]
    for op in inner.block.ops:
        op.parent = body
    body.ops[:0] = inner.block.ops
    loop.operands[:3] = [zero, trips, one]
    return head.block.ops


def _block(block: Block) -> None:
    out = []
    for op in block.ops:
        for r in op.regions:
            _block(r.block)
        if isa(op, SCF_FOR) and const_of(op.operands[2]) != 1:
            out += _count(op)
        out.append(op)
    for op in out:
        op.parent = block
    block.ops[:] = out


def _function(f: Function) -> None:
    _block(f.body)


unit_steps = for_each_function(_function, "unit_steps")
