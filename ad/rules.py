"""The derivative-rule table: for each differentiable op, its tangent and adjoint side by side.

`RULES[name](b, args, y) -> Rule` is called with a builder positioned where derivative code
goes, the op's primal operands `args` and its primal result `y` (all valid at that point).
Reverse mode passes `args` as a lazy sequence (an operand is fetched from the tape or
recomputed only when a rule reads it) and `y` only for ops in `USES_RESULT`; rules read
nothing else, so what the reverse sweep needs is exactly what the rules touch.
`Rule.tangent(dots)` maps operand tangents (None = zero) to the result tangent (None = zero);
`Rule.adjoint(ybar)` maps the result adjoint to one adjoint per operand (None = zero).

Zero is exact: where a local derivative can be infinite or NaN (sqrt at 0, log at 0, a pole),
the product with the incoming tangent or adjoint goes through `scale`, which gives exactly 0
when the incoming derivative is 0 — a zero never turns into NaN.

`NONDIFF` lists ops whose result has derivative 0 (comparisons, integer arithmetic, floor,
...); `STRUCTURAL` lists the ops the transformations handle themselves (control flow, memory,
calls). `tests/test_ad_rules.py` fails when an op of the catalogue is in none of the three.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..lang.ir import F32, F64, Builder, Value
from ..lang.mathops import BY_OP
from ..lang.ops import isa, ARITH_CONSTANT

RULES: dict[str, Callable] = {}


@dataclass
class Rule:
    tangent: Callable
    adjoint: Callable


def derivative(*names):
    def deco(fn):
        for n in names:
            RULES[n] = fn
        return fn
    return deco


NONDIFF = {
    "arith.constant", "arith.addi", "arith.subi", "arith.muli", "arith.maxsi", "arith.minsi",
    "arith.floordivsi", "arith.floormodsi", "arith.andi", "arith.ori", "arith.xori",
    "arith.cmpf", "arith.cmpi", "arith.sitofp", "arith.fptosi", "arith.extui",
    "math.absi", "memref.dim", "dad.undef", "dad.check",
} | {n for n, m in BY_OP.items() if m.nondiff}
STRUCTURAL = {
    "memref.alloc", "memref.dealloc", "memref.load", "memref.store", "memref.row",
    "memref.slice", "memref.collapse", "memref.copy", "func.call", "func.return",
    "scf.for", "scf.while", "scf.if", "scf.yield", "scf.condition",
    "dad.tape_push", "dad.tape_pop", "dad.tape_reserve", "dad.tape_put", "dad.tape_commit",
    "dad.zero_range",
}


# ----------------------------------------------------------------------------- helpers
def const(b: Builder, like: Value, c: float) -> Value:
    return b.const(c, like.type)


def add(b, x, y):
    if x is None:
        return y
    if y is None:
        return x
    return b.addf(x, y)


def neg(b, x):
    return None if x is None else b.negf(x)


def scale(b, d, factor):
    """d * factor, but exactly 0 when d == 0 or factor == 0 (the other may be inf or NaN
    there): `dad.mulz`, whose own derivative keeps the guard and every term (a `select` would
    lose the terms of higher order where d is 0). Zero on either side, so that forward and
    reverse mode agree: a path through a local derivative that is exactly 0 contributes 0
    whichever end its product starts from (an overflowed tangent times a zero partial too)."""
    if d is None:
        return None
    op = factor.op
    if op is not None and isa(op, ARITH_CONSTANT) and math.isfinite(op.attrs["value"]) \
            and op.attrs["value"] != 0:
        return b.mulf(d, factor)  # a finite nonzero factor: only d == 0 gives a zero
    return b.one("dad.mulz", [d, factor], d.type)


def unary(tangent_factor: Callable):
    """A rule for y = f(x) whose derivative is `tangent_factor(b, x, y)`, where `x()` gives the
    operand (fetched only when the factor uses it). Every factor can be 0, inf or NaN at some
    input (cos(inf) is NaN), so it is always applied with `scale`."""
    def make(b, args, y):
        f = tangent_factor(b, lambda: args[0], y)
        return Rule(tangent=lambda dots: scale(b, dots[0], f),
                    adjoint=lambda ybar: [scale(b, ybar, f)])
    return make


USES_RESULT = {"arith.divf"} | {n for n, m in BY_OP.items() if m.uses_result}


# ----------------------------------------------------------------------------- arithmetic
@derivative("arith.addf")
def _addf(b, args, y):
    return Rule(tangent=lambda d: add(b, d[0], d[1]), adjoint=lambda g: [g, g])


@derivative("arith.subf")
def _subf(b, args, y):
    return Rule(tangent=lambda d: add(b, d[0], neg(b, d[1])), adjoint=lambda g: [g, neg(b, g)])


@derivative("arith.mulf")
def _mulf(b, args, y):
    # `scale`: a zero adjoint (say, from the branch a select did not take) times an infinite
    # factor must give 0, not NaN
    x1, x2 = args
    return Rule(tangent=lambda d: add(b, scale(b, d[0], x2), scale(b, d[1], x1)),
                adjoint=lambda g: [scale(b, g, x2), scale(b, g, x1)])


@derivative("arith.divf")
def _divf(b, args, y):
    x2 = args[1]
    inv = b.divf(const(b, x2, 1.0), x2)
    dy2 = b.negf(b.mulf(y, inv))  # dy/dx2 = -y / x2
    return Rule(tangent=lambda d: add(b, scale(b, d[0], inv), scale(b, d[1], dy2)),
                adjoint=lambda g: [scale(b, g, inv), scale(b, g, dy2)])


@derivative("arith.remf")
def _remf(b, args, y):
    x1, x2 = args
    q = b.divf(x1, x2)
    trunc = b.mulf(b.math("sign", q), b.math("floor", b.math("absf", q)))
    return Rule(tangent=lambda d: add(b, d[0], neg(b, scale(b, d[1], trunc))),
                adjoint=lambda g: [g, b.negf(scale(b, g, trunc))])


@derivative("dad.mulz")
def _mulz(b, args, y):
    # y = a * b guarded at a == 0 or b == 0: dy = mulz(da, b) + mulz(a, db)
    a, f = args
    return Rule(tangent=lambda d: add(b, scale(b, d[0], f), scale(b, a, d[1]) if d[1] is not None else None),
                adjoint=lambda g: [scale(b, g, f), scale(b, g, a)])


@derivative("arith.negf")
def _negf(b, args, y):
    return Rule(tangent=lambda d: neg(b, d[0]), adjoint=lambda g: [b.negf(g)])


@derivative("arith.select")
def _select(b, args, y):
    """select(c, p, q): the chosen operand's derivative. A select with `tie = "split"` is a
    two-argument max/min (`c` is p >= q, or p <= q): where p == q the derivative is split,
    half to each operand (LANGUAGE.md, "Derivative semantics at special points")."""
    c = args[0]
    split = _attr(b, y, "tie") == "split"

    def tangent(d):
        if d[1] is None and d[2] is None:
            return None
        zero = const(b, d[1] if d[1] is not None else d[2], 0.0)
        p, q = (d[1] if d[1] is not None else zero), (d[2] if d[2] is not None else zero)
        chosen = b.select(c, p, q)
        if not split:
            return chosen
        mean = b.mulf(b.addf(p, q), const(b, p, 0.5))
        return b.select(b.cmpf("oeq", args[1], args[2]), mean, chosen)

    def adjoint(g):
        zero = const(b, g, 0.0)
        if not split:
            return [None, b.select(c, g, zero), b.select(c, zero, g)]
        # the operand not chosen gets exactly 0 (g * 0 would be NaN for an infinite g)
        tie = b.cmpf("oeq", args[1], args[2])
        half = b.mulf(g, const(b, g, 0.5))
        return [None, b.select(c, b.select(tie, half, g), zero), b.select(c, b.select(tie, half, zero), g)]
    return Rule(tangent=tangent, adjoint=adjoint)


@derivative("arith.extf")
def _extf(b, args, y):  # f32 -> f64
    return Rule(tangent=lambda d: None if d[0] is None else b.cast("arith.extf", d[0], F64),
                adjoint=lambda g: [b.cast("arith.truncf", g, F32)])


@derivative("arith.truncf")
def _truncf(b, args, y):  # f64 -> f32
    return Rule(tangent=lambda d: None if d[0] is None else b.cast("arith.truncf", d[0], F32),
                adjoint=lambda g: [b.cast("arith.extf", g, F64)])


# ----------------------------------------------------------------------------- elementary functions
# the unary functions' derivatives are declared with them (lang/mathops.py)
for _name, _m in BY_OP.items():
    if _m.factor is not None:
        derivative(_name)(unary(_m.factor))
# digamma and trigamma carry `of`, the builtin the user wrote, for the refusal at trigamma
derivative("math.lgamma")(unary(lambda b, x, y: b.math("digamma", x(), of="lgamma")))
derivative("math.digamma")(unary(lambda b, x, y: b.math("trigamma", x(), of=_written(b, y, "digamma"))))


def binary(partials: Callable):
    """A rule for y = f(a, c) whose partial derivatives are `partials(b, a, c, y)`."""
    def make(b, args, y):
        da, dc = partials(b, args[0], args[1], y)
        return Rule(tangent=lambda d: add(b, scale(b, d[0], da), scale(b, d[1], dc)),
                    adjoint=lambda g: [scale(b, g, da), scale(b, g, dc)])
    return make


for _name, _m in BY_OP.items():
    if _m.partials is not None:
        derivative(_name)(binary(_m.partials))


class HigherOrderError(Exception):
    """A derivative the rule table deliberately does not provide."""


def _attr(b, y, name: str, default=None):
    """Attribute `name` of the op being differentiated: `y`'s op in forward mode, the reverse
    builder's `of` in reverse mode."""
    op = y.op if y is not None and y.op is not None else getattr(b, "of", None)
    return op.attrs.get(name, default) if op is not None else default


def _written(b, y, default: str) -> str:
    """The builtin the user wrote that the op being differentiated derives from (its `of`)."""
    return _attr(b, y, "of", default)


@derivative("math.trigamma")
def _trigamma(b, args, y):
    if _written(b, y, "digamma") == "lgamma":
        raise HigherOrderError("lgamma is differentiable to second order only "
                               "(its third derivative, tetragamma, is not provided)")
    raise HigherOrderError("digamma is differentiable to first order only "
                           "(its second derivative, tetragamma, is not provided)")
