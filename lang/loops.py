"""The iteration space of `scf.for lb, ub, step` (step > 0), computed without i64 overflow.

Contract: `trip_count(b, lb, ub, step)` emits (with builder `b`) how many times the loop runs
its body, `iteration(b, iv, lb, step)` which iteration (from 0) has induction variable `iv`.
Every pass that counts iterations (reverse mode, checkpointing, `induction`, `unit_steps`)
uses these two, so that a loop near the ends of i64 is counted the same way everywhere.

Why not `⌈(ub - lb) / s⌉`: `ub - lb` wraps when the bounds are more than 2^63 apart, which a
loop with a large step can be and still run a few iterations (`for i in lb..ub step 2^62`
over the whole of i64 runs 4). The forms here use `⌊·/s⌋` of each bound, whose difference
fits for s >= 2 except for s = 2 over the whole of i64 (2^63 iterations). A count that does
not fit (more than 2^63 - 1 iterations: a loop that can end only by raising an error)
saturates at 2^63 - 1, so that room made for its records before it starts
(`tape_reserve`) is refused (MemoryError), never too small; `ub <= lb` is 0 whatever
`ub - lb` wraps to.
"""
from __future__ import annotations

from .ir import I64, Builder, Value
from .ops import isa, ARITH_CONSTANT


def _is_one(v: Value) -> bool:
    op = v.op
    return isa(op, ARITH_CONSTANT) and op.attrs.get("value") == 1


def trip_count(b: Builder, lb: Value, ub: Value, step: Value) -> Value:
    """0 when `ub <= lb`, else `⌊ub/s⌋ - ⌊lb/s⌋ + (ub mod s > lb mod s)` (`ub - lb` for s = 1),
    saturated at 2^63 - 1 where it does not fit in i64."""
    if _is_one(step):
        span = b.subi(ub, lb)
    else:
        q = b.subi(b.one("arith.floordivsi", [ub, step], I64),
                   b.one("arith.floordivsi", [lb, step], I64))
        up = b.cmpi("sgt", b.one("arith.floormodsi", [ub, step], I64),
                    b.one("arith.floormodsi", [lb, step], I64))
        span = b.addi(q, b.select(up, b.i(1), b.i(0)))
    # with ub > lb the true count is positive: a negative span wrapped
    big = b.select(b.cmpi("slt", span, b.i(0)), b.i((1 << 63) - 1), span)
    return b.select(b.cmpi("sgt", ub, lb), big, b.i(0))


def iteration(b: Builder, iv: Value, lb: Value, step: Value) -> Value:
    """`⌊iv/s⌋ - ⌊lb/s⌋` (`iv - lb` for s = 1): exact, because iv ≡ lb (mod s)."""
    if _is_one(step):
        return b.subi(iv, lb)
    return b.subi(b.one("arith.floordivsi", [iv, step], I64),
                  b.one("arith.floordivsi", [lb, step], I64))


def induction_value(b: Builder, lb: Value, k: Value, step: Value) -> Value:
    """The induction variable of iteration `k`: `lb + k * s` (in range, so no wrap is seen)."""
    return b.addi(lb, k if _is_one(step) else b.muli(k, step))
