"""induction: an integer a loop steps by a fixed amount becomes a closed form of the loop index.

Contract: for `scf.for %lb, %ub, %s` with a constant step `s > 0`, a carried `i64` value `v`
(init `v0`) whose yielded value is `v + c`, `c + v` or `v - c`, computed directly in the
loop body from `c` defined outside the loop or constant, is replaced inside the body by
`v0 ± k * c`, with `k` the iteration number, and after the loop by `v0 ± trips * c`
(`lang/loops.py` counts both without overflow; i64 arithmetic wraps, so the closed form
equals the repeated sum bit for bit). The carried value is then unused and `dce` removes it. What this buys: the
loop no longer carries the counter (`idx += 1` beside `for b in ...`), so its iterations
are independent — reverse mode recomputes the counter instead of recording it per
iteration, and the loop vectorises (the index of `icf[idx]` is affine in `b`).
"""
from __future__ import annotations

from ..ir import I64, Block, Builder, Op, Value
from ..loops import iteration, trip_count
from ..ops import isa, ARITH_ADDI, ARITH_SUBI, SCF_FOR
from ..rewrite import Patterns, Rewriter, greedy_pass
from .util import NOT_CONST, const_of

INDUCTION = Patterns()


def _inside(v: Value, loop: Op) -> bool:
    """Is `v` defined by an op nested in `loop`, or an argument of one of its blocks?"""
    block = v.op.parent if v.op is not None else v.owner
    while block is not None:
        holder = block.parent.parent if block.parent is not None else None
        if holder is loop:
            return True
        block = holder.parent if holder is not None else None
    return False


def _invariant(v: Value, loop: Op) -> bool:
    return const_of(v) is not NOT_CONST or not _inside(v, loop)


def _step_of(arg: Value, body: Block, loop: Op, j: int) -> tuple[Value, bool] | None:
    """(c, negated) when carried value j steps by a loop-invariant `c` each iteration."""
    nxt = body.terminator.operands[j]
    d = nxt.op
    if d is None or d.parent is not body or not isa(d, ARITH_ADDI, ARITH_SUBI):
        return None
    a, b = d.operands
    if a is arg and _invariant(b, loop):
        return b, isa(d, ARITH_SUBI)
    if isa(d, ARITH_ADDI) and b is arg and _invariant(a, loop):
        return a, False
    return None


def _closed_form(b: Builder, v0: Value, count: Value, c: Value, negated: bool) -> Value:
    """v0 ± count * c (a constant `c` made afresh: it may be defined inside the loop)."""
    k = const_of(c)
    m = b.muli(count, c if k is NOT_CONST else b.i(k))
    return b.subi(v0, m) if negated else b.addi(v0, m)


@INDUCTION.add(SCF_FOR)
def _carried_counter(op: Op, rw: Rewriter) -> bool:
    lb, ub, step = op.operands[:3]
    s = const_of(step)
    if s is NOT_CONST or s <= 0:
        return False
    body = op.regions[0].block
    iv = body.args[0]
    for j, arg in enumerate(body.args[1:]):
        if arg.type != I64 or not (rw.uses.used(arg) or rw.uses.used(op.results[j])):
            continue
        found = _step_of(arg, body, op, j)
        if found is None:
            continue
        c, negated = found
        v0 = op.operands[3 + j]
        if rw.uses.used(arg):
            inner = Builder(Block())
            value = _closed_form(inner, v0, iteration(inner, iv, lb, step), c, negated)
            rw.insert_before(body.ops[0], inner.block.ops)
            rw.replace_uses(arg, value)
        if rw.uses.used(op.results[j]):
            outer = Builder(Block())
            final = _closed_form(outer, v0, trip_count(outer, lb, ub, step), c, negated)
            rw.insert_before(op, outer.block.ops)
            rw.replace_uses(op.results[j], final)
        return True
    return False


induction = greedy_pass(INDUCTION, "induction", __name__)
