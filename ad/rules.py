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
    "math.floor", "math.ceil", "math.sign", "math.absi", "memref.dim", "dad.undef", "dad.check",
}
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


def mul(b, d, factor):
    """d * factor, where `factor` is finite and nonzero wherever it is used (sin', cos'):
    an infinite tangent or adjoint times a zero factor would be NaN here, where `scale`
    gives 0."""
    return None if d is None else b.mulf(d, factor)


def scale(b, d, factor):
    """d * factor, but exactly 0 when d == 0 or factor == 0 (the other may be inf or NaN
    there): `dad.mulz`, whose own derivative keeps the guard and every term (a `select` would
    lose the terms of higher order where d is 0). Zero on either side, so that forward and
    reverse mode agree: a path through a local derivative that is exactly 0 contributes 0
    whichever end its product starts from (an overflowed tangent times a zero partial too)."""
    if d is None:
        return None
    op = factor.op
    if op is not None and op.name == "arith.constant" and math.isfinite(op.attrs["value"]) \
            and op.attrs["value"] != 0:
        return b.mulf(d, factor)  # a finite nonzero factor: only d == 0 gives a zero
    return b.one("dad.mulz", [d, factor], d.type)


def unary(tangent_factor: Callable, safe: bool = False):
    """A rule for y = f(x) whose derivative is `tangent_factor(b, x, y)`, where `x()` gives the
    operand (fetched only when the factor uses it)."""
    def make(b, args, y):
        f = tangent_factor(b, lambda: args[0], y)
        apply = scale if safe else mul
        return Rule(tangent=lambda dots: apply(b, dots[0], f),
                    adjoint=lambda ybar: [apply(b, ybar, f)])
    return make


def _sqrt1m(b, x):
    """sqrt(1 - x²): as written for |x| < 1/2, as sqrt((1 - x)(1 + x)) above (1 ± x is exact
    near ±1, where 1 - x*x cancels); each form's own derivative is accurate in its range."""
    one = const(b, x, 1.0)
    small = b.cmpf("olt", b.math("absf", x), const(b, x, 0.5))
    near_one = b.mulf(b.subf(one, x), b.addf(one, x))
    return b.math("sqrt", b.select(small, b.subf(one, b.mulf(x, x)), near_one))


def _branch(b, cond, like, then, other):
    """`then(b')` if `cond` else `other(b')` (values of `like`'s type), as an scf.if: the rare
    branch's exp is not paid for where it is not taken (a select would compute both)."""
    op, tb, eb = b.if_(cond, [like.type])
    for blk, fn in ((tb, then), (eb, other)):
        inner = Builder(blk)
        inner.yield_([fn(inner)])
    return op.results[0]


def _tanh_factor(b, x, y):
    """tanh' = 1 - y² for |x| <= 1, 4 e² / (1 + e²)² with e = exp(-|x|) above: `1 - y²` loses
    ~eps cosh²(x) (0 from |x| ~ 19, where the exact value is a normal number up to ~354). Both
    forms and their own derivatives are free of cancellation in their ranges, and at ±inf every
    intermediate is finite (so forward and reverse mode agree there at every order)."""
    def tail(c):
        one = const(c, x, 1.0)
        e = c.math("exp", c.negf(c.math("absf", x)))
        q = c.divf(e, c.addf(one, c.mulf(e, e)))
        return c.mulf(const(c, x, 4.0), c.mulf(q, q))
    return _branch(b, b.cmpf("ogt", b.math("absf", x), const(b, x, 1.0)), x, tail,
                   lambda c: c.subf(const(c, y, 1.0), c.mulf(y, y)))


# sech²(u) = sum_k SECH2[k] u^(2k) (to 1e-19 for |u| <= 1/8)
SECH2 = [1.0, -1.0, 0.6666666666666666, -0.37777777777777777, 0.19682539682539682,
         -0.09749559082892416, 0.046697664475442255, -0.021837515805769776,
         0.010030466496074962, -0.004543453170627497]


def _sigmoid_factor(b, x, y):
    """sigmoid' = y (1 - y) for 1/4 <= |x|, x <= 1 (y is accurate and 1 - y >= 0.27 there);
    e / (1 + e)² with e = exp(-x) above 1 (where 1 - y loses ~eps e^x, and is 0 for x > 37
    while the exact value is a normal number up to ~708; at +inf every intermediate is
    finite); for |x| < 1/4, sech²(x/2)/4 by its Taylor polynomial (the derivative of y (1 - y)
    cancels near 0, in 1 - 2y; the polynomial's does not)."""
    def tail(c):
        one = const(c, x, 1.0)
        e = c.math("exp", c.negf(c.math("absf", x)))
        q = c.divf(one, c.addf(one, e))
        return c.mulf(e, c.mulf(q, q))

    def near(c):
        w = c.mulf(c.mulf(x, x), const(c, x, 0.25))
        acc = const(c, x, SECH2[-1])
        for k in reversed(SECH2[:-1]):
            acc = c.addf(const(c, x, k), c.mulf(w, acc))
        return c.mulf(const(c, x, 0.25), acc)

    def middle(c):
        return _branch(c, c.cmpf("olt", c.math("absf", x), const(c, x, 0.25)), x, near,
                       lambda d: d.mulf(y, d.subf(const(d, y, 1.0), y)))
    return _branch(b, b.cmpf("ogt", x, const(b, x, 1.0)), x, tail, middle)


def _atan_factor(b, x):
    """atan' = 1/(1 + x²) for |x| <= 1, u (u / (1 + u²)) with u = 1/x above: no overflow of
    x² (the value is subnormal at |x| ~ 1e155, not 0), and at ±inf every intermediate is
    finite, so all derivative routes give 0 there."""
    one = const(b, x, 1.0)
    u = b.divf(one, x)
    big = b.mulf(u, b.divf(u, b.addf(one, b.mulf(u, u))))
    small = b.divf(one, b.addf(one, b.mulf(x, x)))
    return b.select(b.cmpf("ole", b.math("absf", x), one), small, big)


def _erf_factor(b, x):
    """erf' = 2/sqrt(pi) exp(-x²), exactly 0 for |x| >= 30 (where exp(-x²) is 0 in f64 and
    f32): at ±inf the tangent of -x² is infinite, and inf * 0 would be NaN in forward mode."""
    val = b.mulf(const(b, x, 2.0 / math.sqrt(math.pi)), b.math("exp", b.negf(b.mulf(x, x))))
    far = b.cmpf("oge", b.math("absf", x), const(b, x, 30.0))
    return b.select(far, const(b, x, 0.0), val)


USES_RESULT = {"arith.divf", "math.tan", "math.tanh", "math.exp", "math.sqrt", "math.powf",
               "math.sigmoid"}


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
derivative("math.sin")(unary(lambda b, x, y: b.math("cos", x())))
derivative("math.cos")(unary(lambda b, x, y: b.negf(b.math("sin", x()))))
derivative("math.tan")(unary(lambda b, x, y: b.addf(const(b, y, 1.0), b.mulf(y, y)), safe=True))
derivative("math.asin")(unary(lambda b, x, y: b.divf(const(b, x(), 1.0), _sqrt1m(b, x())), safe=True))
derivative("math.acos")(unary(lambda b, x, y: b.divf(const(b, x(), -1.0), _sqrt1m(b, x())), safe=True))
derivative("math.atan")(unary(lambda b, x, y: _atan_factor(b, x()), safe=True))
derivative("math.sinh")(unary(lambda b, x, y: b.math("cosh", x()), safe=True))
derivative("math.cosh")(unary(lambda b, x, y: b.math("sinh", x()), safe=True))
derivative("math.tanh")(unary(lambda b, x, y: _tanh_factor(b, x(), y), safe=True))
derivative("math.exp")(unary(lambda b, x, y: y, safe=True))
# exp(x), not y + 1: that is 0 below x ~ -37, where exp(x) is still a normal number
derivative("math.expm1")(unary(lambda b, x, y: b.math("exp", x()), safe=True))
derivative("math.log")(unary(lambda b, x, y: b.divf(const(b, x(), 1.0), x()), safe=True))
derivative("math.log1p")(unary(lambda b, x, y: b.divf(const(b, x(), 1.0), b.addf(x(), const(b, x(), 1.0))),
                               safe=True))
# 0.5 / (y + 0): +inf at x = -0.0 too (sqrt(-0.0) = -0.0), as at +0.0
derivative("math.sqrt")(unary(lambda b, x, y: b.divf(const(b, y, 0.5), b.addf(y, const(b, y, 0.0))),
                              safe=True))
derivative("math.absf")(unary(lambda b, x, y: b.math("sign", x()), safe=True))  # abs'(0) = sign(0) = 0
derivative("math.erf")(unary(lambda b, x, y: _erf_factor(b, x()), safe=True))
derivative("math.sigmoid")(unary(lambda b, x, y: _sigmoid_factor(b, x(), y), safe=True))
# digamma and trigamma carry `of`, the builtin the user wrote, for the refusal at trigamma
derivative("math.lgamma")(unary(lambda b, x, y: b.math("digamma", x(), of="lgamma"), safe=True))
derivative("math.digamma")(unary(lambda b, x, y: b.math("trigamma", x(), of=_written(b, y, "digamma")),
                                 safe=True))


@derivative("math.atan2")
def _atan2(b, args, y):
    # y = atan2(a, c): dy/da = c / (a² + c²), dy/dc = -a / (a² + c²), computed with a and c
    # scaled by s = max(|a|, |c|) (as hypot does), so that a² + c² neither overflows nor
    # underflows: (c/s) / ((a/s)² + (c/s)²) / s. At an infinite operand the other's partial is
    # 0 (and this one's -0/+0); at (0, 0) both are NaN (0/0), as documented.
    a, c = args
    aa, ac = b.math("absf", a), b.math("absf", c)
    s = b.select(b.cmpf("oge", aa, ac), aa, ac)
    inf = const(b, a, math.inf)

    def scaled(v, av):  # v / s, and ±1 for v = ±inf (not inf / inf)
        return b.select(b.cmpf("oeq", av, inf), b.math("sign", v), b.divf(v, s))
    sa, sc = scaled(a, aa), scaled(c, ac)
    r2 = b.addf(b.mulf(sa, sa), b.mulf(sc, sc))
    da = b.divf(b.divf(sc, r2), s)
    dc = b.negf(b.divf(b.divf(sa, r2), s))
    return Rule(tangent=lambda d: add(b, scale(b, d[0], da), scale(b, d[1], dc)),
                adjoint=lambda g: [scale(b, g, da), scale(b, g, dc)])


@derivative("math.powf")
def _powf(b, args, y):
    x, p = args
    one = const(b, x, 1.0)
    # p x^(p-1), exactly 0 when p = 0 (x^0 = 1 everywhere, even where x^-1 is inf): so
    # every derivative of x^k at x = 0 is finite (the factor k(k-1)...(k-j) reaches 0 first)
    dx = b.one("dad.mulz", [p, b.math("powf", x, b.subf(p, one))], x.type)
    zero = const(b, x, 0.0)
    dp = b.select(b.cmpf("oeq", x, zero), zero, b.mulf(y, b.math("log", x)))  # 0 at x = 0
    return Rule(tangent=lambda d: add(b, scale(b, d[0], dx), scale(b, d[1], dp)),
                adjoint=lambda g: [scale(b, g, dx), scale(b, g, dp)])


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
