"""The elementary functions of `.dad`: one declaration each, read by every layer.

Contract: `MATH` lists a `MathFn` per `math.*` op: the op (`math.NAME`), the builtin a
program calls it by (None for an op only the compiler makes), its arity, how it lowers
(`"llvm.NAME"`: an LLVM intrinsic; `"libm"`: the C function NAME, NAMEf for f32; `""`: a
lowering rule of its own in lowering/rules.py, or `expand(b, x)`: the IR of its value built
from other ops, which the machine pass `expand_math` puts in its place, so that AD still sees
one op with an exact rule), and for a unary function its derivative
`factor(b, x, y)`: IR built with `b` for dy/dx, where `x()` gives the operand (fetched only
when read) and `y` the result (passed only when `uses_result`); for a binary function
`partials(b, a, c, y) -> (dy/da, dy/dc)`. AD multiplies every factor and partial zero-safely
(`dad.mulz`): each can be 0, inf or NaN at some input (cos(inf) is NaN); `nondiff` marks a
derivative of 0 (floor, ceil, sign); a derivative with neither and not `nondiff` has a rule of
its own in ad/rules.py (the polygamma chain). `fold` evaluates it on
constants when that is exact (IEEE-correctly-rounded: sqrt, abs, floor, ceil).

The front end's builtin table, the op catalogue and verifier, the lowering, the AD rule table
and constant folding are all built from `MATH`: adding a function is one row here plus its
tests (tests/test_mathops.py runs every row through each layer).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .ir import Builder, Value


@dataclass(frozen=True)
class MathFn:
    op: str
    builtin: str | None
    arity: int = 1
    lower: str = ""
    factor: Callable | None = None
    partials: Callable | None = None
    uses_result: bool = False
    nondiff: bool = False
    fold: Callable | None = None
    expand: Callable | None = None


def _c(b: Builder, like: Value, c: float) -> Value:
    return b.const(c, like.type)


def _sqrt1m(b, x):
    """sqrt(1 - x²): as written for |x| < 1/2, as sqrt((1 - x)(1 + x)) above (1 ± x is exact
    near ±1, where 1 - x*x cancels); each form's own derivative is accurate in its range."""
    one = _c(b, x, 1.0)
    small = b.cmpf("olt", b.math("absf", x), _c(b, x, 0.5))
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
        one = _c(c, x, 1.0)
        e = c.math("exp", c.negf(c.math("absf", x)))
        q = c.divf(e, c.addf(one, c.mulf(e, e)))
        return c.mulf(_c(c, x, 4.0), c.mulf(q, q))
    return _branch(b, b.cmpf("ogt", b.math("absf", x), _c(b, x, 1.0)), x, tail,
                   lambda c: c.subf(_c(c, y, 1.0), c.mulf(y, y)))


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
        one = _c(c, x, 1.0)
        e = c.math("exp", c.negf(c.math("absf", x)))
        q = c.divf(one, c.addf(one, e))
        return c.mulf(e, c.mulf(q, q))

    def near(c):
        w = c.mulf(c.mulf(x, x), _c(c, x, 0.25))
        acc = _c(c, x, SECH2[-1])
        for k in reversed(SECH2[:-1]):
            acc = c.addf(_c(c, x, k), c.mulf(w, acc))
        return c.mulf(_c(c, x, 0.25), acc)

    def middle(c):
        return _branch(c, c.cmpf("olt", c.math("absf", x), _c(c, x, 0.25)), x, near,
                       lambda d: d.mulf(y, d.subf(_c(d, y, 1.0), y)))
    return _branch(b, b.cmpf("ogt", x, _c(b, x, 1.0)), x, tail, middle)


def _atan_factor(b, x):
    """atan' = 1/(1 + x²) for |x| <= 1, u (u / (1 + u²)) with u = 1/x above: no overflow of
    x² (the value is subnormal at |x| ~ 1e155, not 0), and at ±inf every intermediate is
    finite, so all derivative routes give 0 there."""
    one = _c(b, x, 1.0)
    u = b.divf(one, x)
    big = b.mulf(u, b.divf(u, b.addf(one, b.mulf(u, u))))
    small = b.divf(one, b.addf(one, b.mulf(x, x)))
    return b.select(b.cmpf("ole", b.math("absf", x), one), small, big)


def _erf_factor(b, x):
    """erf' = 2/sqrt(pi) exp(-x²), exactly 0 for |x| >= 30 (where exp(-x²) is 0 in f64 and
    f32): at ±inf the tangent of -x² is infinite, and inf * 0 would be NaN in forward mode."""
    val = b.mulf(_c(b, x, 2.0 / math.sqrt(math.pi)), b.math("exp", b.negf(b.mulf(x, x))))
    far = b.cmpf("oge", b.math("absf", x), _c(b, x, 30.0))
    return b.select(far, _c(b, x, 0.0), val)


def _scaled_pair(b, a, c):
    """(a/s, c/s, s) with s = max(|a|, |c|), and ±1 in place of ±inf/inf: the operands of
    a² + c² brought near 1, so that it neither overflows nor underflows."""
    aa, ac = b.math("absf", a), b.math("absf", c)
    s = b.select(b.cmpf("oge", aa, ac), aa, ac)
    inf = _c(b, a, math.inf)

    def scaled(v, av):
        return b.select(b.cmpf("oeq", av, inf), b.math("sign", v), b.divf(v, s))
    return scaled(a, aa), scaled(c, ac), s


def _atan2_partials(b, a, c, y):
    """y = atan2(a, c): dy/da = c / (a² + c²), dy/dc = -a / (a² + c²), as (c/s) / ((a/s)² +
    (c/s)²) / s. At an infinite operand the other's partial is 0 (and this one's -0/+0); at
    (0, 0) both are NaN (0/0), as documented."""
    sa, sc, s = _scaled_pair(b, a, c)
    r2 = b.addf(b.mulf(sa, sa), b.mulf(sc, sc))
    return b.divf(b.divf(sc, r2), s), b.negf(b.divf(b.divf(sa, r2), s))


def _hypot_partials(b, a, c, y):
    """y = hypot(a, c): dy/da = a / y, dy/dc = c / y, as (a/s) / sqrt((a/s)² + (c/s)²): no
    overflow or underflow of a² + c²; at an infinite operand its partial is ±1 and the
    other's 0 (both infinite: ±1/√2 each, the limit along the diagonal); 0 at (0, 0) (as
    `norm`'s gradient at 0)."""
    sa, sc, s = _scaled_pair(b, a, c)
    r = b.math("sqrt", b.addf(b.mulf(sa, sa), b.mulf(sc, sc)))
    zero = b.cmpf("oeq", s, _c(b, a, 0.0))
    z = _c(b, a, 0.0)
    return b.select(zero, z, b.divf(sa, r)), b.select(zero, z, b.divf(sc, r))


def _pow_partials(b, x, p, y):
    """p x^(p-1), exactly 0 when p = 0 (x^0 = 1 everywhere, even where x^-1 is inf): so every
    derivative of x^k at x = 0 is finite (the factor k(k-1)...(k-j) reaches 0 first); and
    y log x, 0 at x = 0."""
    one = _c(b, x, 1.0)
    dx = b.one("dad.mulz", [p, b.math("powf", x, b.subf(p, one))], x.type)
    zero = _c(b, x, 0.0)
    return dx, b.select(b.cmpf("oeq", x, zero), zero, b.mulf(y, b.math("log", x)))



def _softplus(b, x):
    zero = _c(b, x, 0.0)
    pos = b.select(b.cmpf("ogt", x, zero), x, zero)   # NaN: 0, and the log1p term gives NaN
    return b.addf(pos, b.math("log1p", b.math("exp", b.negf(b.math("absf", x)))))


LN2, LN10 = math.log(2.0), math.log(10.0)

MATH: list[MathFn] = [
    MathFn("sin", "sin", lower="llvm.sin", factor=lambda b, x, y: b.math("cos", x())),
    MathFn("cos", "cos", lower="llvm.cos", factor=lambda b, x, y: b.negf(b.math("sin", x()))),
    MathFn("tan", "tan", lower="libm", uses_result=True,
           factor=lambda b, x, y: b.addf(_c(b, y, 1.0), b.mulf(y, y))),
    MathFn("asin", "asin", lower="libm",
           factor=lambda b, x, y: b.divf(_c(b, x(), 1.0), _sqrt1m(b, x()))),
    MathFn("acos", "acos", lower="libm",
           factor=lambda b, x, y: b.divf(_c(b, x(), -1.0), _sqrt1m(b, x()))),
    MathFn("atan", "atan", lower="libm", factor=lambda b, x, y: _atan_factor(b, x())),
    MathFn("sinh", "sinh", lower="libm", factor=lambda b, x, y: b.math("cosh", x())),
    MathFn("cosh", "cosh", lower="libm", factor=lambda b, x, y: b.math("sinh", x())),
    MathFn("tanh", "tanh", lower="libm", uses_result=True,
           factor=lambda b, x, y: _tanh_factor(b, x(), y)),
    MathFn("exp", "exp", lower="llvm.exp", uses_result=True, factor=lambda b, x, y: y),
    # exp(x), not y + 1: that is 0 below x ~ -37, where exp(x) is still a normal number
    MathFn("expm1", "expm1", lower="libm", factor=lambda b, x, y: b.math("exp", x())),
    # y ln 2: inf where y overflows, as exp's
    MathFn("exp2", "exp2", lower="llvm.exp2", uses_result=True,
           factor=lambda b, x, y: b.mulf(y, _c(b, y, LN2))),
    MathFn("log", "log", lower="llvm.log", factor=lambda b, x, y: b.divf(_c(b, x(), 1.0), x())),
    # 1 / (x ln b): one rounding more than 1/x, and no overflow of x ln b (|x| <= max/ln 10)
    MathFn("log2", "log2", lower="llvm.log2",
           factor=lambda b, x, y: b.divf(_c(b, x(), 1.0 / LN2), x())),
    MathFn("log10", "log10", lower="llvm.log10",
           factor=lambda b, x, y: b.divf(_c(b, x(), 1.0 / LN10), x())),
    MathFn("log1p", "log1p", lower="libm",
           factor=lambda b, x, y: b.divf(_c(b, x(), 1.0), b.addf(x(), _c(b, x(), 1.0)))),
    # 0.5 / (y + 0): +inf at x = -0.0 too (sqrt(-0.0) = -0.0), as at +0.0
    MathFn("sqrt", "sqrt", lower="llvm.sqrt", uses_result=True, fold=np.sqrt,
           factor=lambda b, x, y: b.divf(_c(b, y, 0.5), b.addf(y, _c(b, y, 0.0)))),
    # 1 / (3 y²), y = cbrt(x): +inf at x = ±0 (as sqrt's), and y² neither overflows nor
    # underflows for any finite x (|y| is within 1e-108..6e102)
    MathFn("cbrt", "cbrt", lower="libm", uses_result=True,
           factor=lambda b, x, y: b.divf(_c(b, y, 1.0), b.mulf(_c(b, y, 3.0), b.mulf(y, y)))),
    # abs'(0) = sign(0) = 0
    MathFn("absf", "abs", lower="llvm.fabs", fold=np.abs,
           factor=lambda b, x, y: b.math("sign", x())),
    MathFn("floor", "floor", lower="llvm.floor", nondiff=True, fold=np.floor),
    MathFn("ceil", "ceil", lower="llvm.ceil", nondiff=True, fold=np.ceil),
    MathFn("erf", "erf", lower="libm", factor=lambda b, x, y: _erf_factor(b, x())),
    MathFn("lgamma", "lgamma"),
    MathFn("digamma", "digamma"),
    MathFn("trigamma", None),
    MathFn("sigmoid", "sigmoid", uses_result=True,
           factor=lambda b, x, y: _sigmoid_factor(b, x(), y)),
    MathFn("sign", "sign", nondiff=True),
    # the value of x, derivative 0 in every mode (at every order)
    MathFn("stop_gradient", "stop_gradient", nondiff=True, expand=lambda b, x: x),
    # relu'(0) = 0 (the contract); relu(NaN) = NaN
    MathFn("relu", "relu", expand=lambda b, x: b.select(b.cmpf("ole", x, _c(b, x, 0.0)), _c(b, x, 0.0), x),
           factor=lambda b, x, y: b.select(b.cmpf("ogt", x(), _c(b, x(), 0.0)), _c(b, x(), 1.0),
                                           _c(b, x(), 0.0))),
    # log(1 + e^x) as max(x, 0) + log1p(e^-|x|): no overflow, no cancellation; derivative
    # sigmoid(x), smooth at 0 at every order (the formula's kinks cancel)
    MathFn("softplus", "softplus", expand=lambda b, x: _softplus(b, x),
           factor=lambda b, x, y: b.math("sigmoid", x())),
    # log(sigmoid(x)) = -softplus(-x); derivative sigmoid(-x)
    MathFn("log_sigmoid", "log_sigmoid", expand=lambda b, x: b.negf(_softplus(b, b.negf(x))),
           factor=lambda b, x, y: b.math("sigmoid", b.negf(x()))),
    MathFn("atan2", "atan2", arity=2, lower="libm", partials=_atan2_partials),
    MathFn("hypot", "hypot", arity=2, lower="libm", partials=_hypot_partials),
    MathFn("powf", "pow", arity=2, lower="llvm.pow", uses_result=True, partials=_pow_partials),
]
BY_OP: dict[str, MathFn] = {"math." + m.op: m for m in MATH}
