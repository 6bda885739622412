"""Accuracy of the derivative rules and of the run-time special functions, against mpmath.

Each builtin is differentiated by every route (`grad`, `jvp`, `hessian`, `grad(grad)`,
`jvp(grad)`) at points where a naive formula loses: near the edges of a domain (asin near
±1), in the tails (tanh, sigmoid, expm1), near poles (digamma near negative integers), at
huge, tiny and infinite arguments, at signed zeros. The reference is the analytic derivative
evaluated in mpmath at 250 bits, at the same (exactly representable) input.

How the numbers are judged: the inputs are exact, so the only errors are the roundings inside
the compiled formula (a handful of ops, each within half an ulp, amplified only by the
cancellation-free formulas the rules use): `|got - exact| <= ULPS * eps * |exact|` with
`ULPS = 8` (f64 and f32), plus half the smallest subnormal for results in the subnormal
range. A formula that cancels (1 - x*x near x = 1, y(1 - y) in the tails) is off by 1e3 to
1e16 ulps, so the checks cannot pass by luck. Where the exact value is 0 or infinite the check
is `==`. Special-point derivatives the contract fixes (a limit at ±inf, a one-hot at an
infinite entry) are checked exactly.
"""
from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

import dad

mp.mp.prec = 250
ULPS = 8
EPS = {"f64": 2.0 ** -52, "f32": 2.0 ** -23}
TINY = {"f64": 2.0 ** -1074, "f32": 2.0 ** -149}
BIG = {"f64": 1.7976931348623157e308, "f32": 3.4028234663852886e38}


def close(got, exact, dtype="f64", ulps=ULPS, sub=0.5):
    """`got` (a float) is `exact` (an mpmath number, or a float 0/inf) within `ulps` ulps, plus
    `sub` times the smallest subnormal (a result, or an intermediate, in the subnormal range
    has fewer significant bits)."""
    got = float(got)
    exact = mp.mpf(exact)
    if mp.isinf(exact) or abs(exact) > BIG[dtype]:
        return math.isinf(got) and (got > 0) == (exact > 0)
    if not math.isfinite(got):
        return False
    err = abs(mp.mpf(got) - exact)
    return err <= ulps * EPS[dtype] * abs(exact) + sub * mp.mpf(TINY[dtype])


def rounded(x, dtype):
    return float(np.float32(x)) if dtype == "f32" else float(x)


ROUTES = ["grad", "jvp", "gg", "jg", "hess"]


def unary_source(names, dtype):
    out = []
    for name in names:
        out.append(f"fn {name}_f(x: {dtype}) -> {dtype} {{ return {name}(x); }}\n"
                   f"fn {name}_grad = grad({name}_f);\nfn {name}_jvp = jvp({name}_f);\n"
                   f"fn {name}_gg = grad(grad({name}_f));\nfn {name}_jg = jvp(grad({name}_f));\n"
                   f"fn {name}_hess = hessian({name}_f);\n")
    return "\n".join(out)


def derivatives(m, name, x):
    """(value, [first derivative by grad, jvp], [second by grad(grad), jvp(grad), hessian])."""
    y = float(getattr(m, f"{name}_f")(x))
    d1 = [float(getattr(m, f"{name}_grad")(x)), float(getattr(m, f"{name}_jvp")(x, 1.0)[1])]
    d2 = [float(getattr(m, f"{name}_gg")(x)), float(getattr(m, f"{name}_jg")(x, 1.0)[1]),
          float(np.asarray(getattr(m, f"{name}_hess")(x)).ravel()[0])]
    return y, d1, d2


def sigmoid(x):
    return 1 / (1 + mp.exp(-x))


# (f, f', f'') in mpmath
EXACT = {
    "asin": (mp.asin, lambda x: 1 / mp.sqrt(1 - x * x), lambda x: x / (1 - x * x) ** 1.5),
    "acos": (mp.acos, lambda x: -1 / mp.sqrt(1 - x * x), lambda x: -x / (1 - x * x) ** 1.5),
    "atan": (mp.atan, lambda x: 1 / (1 + x * x), lambda x: -2 * x / (1 + x * x) ** 2),
    "tanh": (mp.tanh, lambda x: mp.sech(x) ** 2, lambda x: -2 * mp.tanh(x) * mp.sech(x) ** 2),
    "sigmoid": (sigmoid, lambda x: mp.exp(-abs(x)) / (1 + mp.exp(-abs(x))) ** 2,
                lambda x: sigmoid(x) * sigmoid(-x) * mp.tanh(-x / 2)),
    "expm1": (mp.expm1, mp.exp, mp.exp),
    "erf": (mp.erf, lambda x: 2 / mp.sqrt(mp.pi) * mp.exp(-x * x),
            lambda x: -4 * x / mp.sqrt(mp.pi) * mp.exp(-x * x)),
    "lgamma": (lambda x: mp.log(abs(mp.gamma(x))), mp.digamma, lambda x: mp.psi(1, x)),
    "sqrt": (mp.sqrt, lambda x: 1 / (2 * mp.sqrt(x)), lambda x: -1 / (4 * x * mp.sqrt(x))),
    # the real cube root: sign(x) |x|^(1/3)
    "cbrt": (lambda x: mp.sign(x) * mp.cbrt(abs(x)), lambda x: 1 / (3 * mp.cbrt(abs(x)) ** 2),
             lambda x: -2 * mp.sign(x) / (9 * mp.cbrt(abs(x)) ** 5)),
    "exp2": (lambda x: mp.power(2, x), lambda x: mp.log(2) * mp.power(2, x),
             lambda x: mp.log(2) ** 2 * mp.power(2, x)),
    "log2": (lambda x: mp.log(x) / mp.log(2), lambda x: 1 / (x * mp.log(2)),
             lambda x: -1 / (x * x * mp.log(2))),
    "log10": (lambda x: mp.log10(x), lambda x: 1 / (x * mp.log(10)),
              lambda x: -1 / (x * x * mp.log(10))),
    "softplus": (lambda x: mp.log1p(mp.exp(x)), sigmoid, lambda x: sigmoid(x) * sigmoid(-x)),
    "log_sigmoid": (lambda x: -mp.log1p(mp.exp(-x)), lambda x: sigmoid(-x),
                    lambda x: -sigmoid(x) * sigmoid(-x)),
}

# points where the rule as first written lost accuracy (each comment: the old formula's failure)
POINTS = {
    # 1 - x*x cancels near ±1: 1e3..1e5 ulps
    "asin": [0.9999999, -0.9999999, 1 - 2.0 ** -40, -(1 - 2.0 ** -40), -0.9999999999, 0.3, 1e-8],
    "acos": [0.9999999, -0.9999999, 1 - 2.0 ** -40, -(1 - 2.0 ** -40), 0.3, -1e-10],
    # x*x overflows at 1e155 (the derivative is a subnormal number there, not 0)
    "atan": [1e155, -1e155, 1e200, 3.0, 0.5, 1e-200],
    # 1 - y*y is 0 from |x| ~ 19; its value is still a normal number up to |x| ~ 354
    "tanh": [20.0, -20.0, 30.0, -50.0, 300.0, -3.7, 0.3, 1e-100],
    # y (1 - y) rounds to 0 for x > 37; its second derivative cancels near 0 (1 - 2y)
    "sigmoid": [30.0, 50.0, 700.0, -30.0, -700.0, 0.5, 2.0, -3.5, 1e-8, -1e-10, 0.2, -0.2499],
    # y + 1 is 0 below x ~ -37
    "expm1": [-20.0, -30.0, -50.0, -700.0, 0.5, 3.0],
    # reflection at pi * x lost the distance to the pole (3e9 ulps at -0.9999999999)
    "lgamma": [-0.9999999999, -2.0000000001, -0.9999999, -3.0000001, -10.5 + 1e-9, 2.5, 0.25],
    "sqrt": [1e-300, 2.0, 1e300],
    # functions declared in lang/mathops.py alone: the row is the whole of their support
    "cbrt": [-8.0, 27.0, 0.3, -0.3, 1e-300, -1e-300, 1e300, 5e-324],
    "exp2": [-1020.0, 0.5, -0.5, 10.25, 1023.5],
    "log2": [1e-300, 0.5, 3.0, 1 + 2.0 ** -40, 1e300],
    "log10": [1e-300, 0.5, 3.0, 1 + 2.0 ** -40, 1e300],
    # log(1 + e^x) overflows from x ~ 709 and loses everything below x ~ -37
    "softplus": [0.0, 1e-10, -1e-10, 0.7, -0.7, 30.0, -30.0, 700.0, 800.0, -700.0, -745.0],
    "log_sigmoid": [0.0, 1e-10, 0.7, -0.7, 30.0, -30.0, 700.0, -800.0, 745.0],
}
F32_POINTS = {
    "asin": [0.9999, -0.9999, 1 - 2.0 ** -20, 0.3],
    "acos": [0.9999, -0.9999, 1 - 2.0 ** -20, 0.3],
    "atan": [1e19, -1e30, 3.0],
    "tanh": [10.0, -12.0, 40.0, 0.3],
    "sigmoid": [20.0, 60.0, -60.0, 0.5, 1e-4, -0.2],
    "expm1": [-20.0, -60.0, 0.5],
    "lgamma": [-0.999, -2.001, 2.5],
    "sqrt": [1e-30, 2.0],
    "cbrt": [-8.0, 1e-30, 0.3],
    "exp2": [-120.0, 0.5, 100.0],
    "log2": [1e-30, 3.0, 0.75],
    "log10": [1e-30, 3.0, 0.75],
    "softplus": [0.0, 0.7, -20.0, 20.0, 100.0],
    "log_sigmoid": [0.0, 0.7, -20.0, 20.0, -100.0],
}

_mods: dict = {}


def unary_module(dtype):
    if dtype not in _mods:
        _mods[dtype] = dad.compile(unary_source(list(EXACT), dtype), filename=f"acc_{dtype}.dad")
    return _mods[dtype]


CASES = [(d, n, x) for d, pts in (("f64", POINTS), ("f32", F32_POINTS)) for n in pts for x in pts[n]]


@pytest.mark.parametrize("dtype,name,x", CASES, ids=[f"{d}-{n}-{x!r}" for d, n, x in CASES])
def test_value_and_derivatives_against_mpmath(dtype, name, x):
    x = rounded(x, dtype)
    y, d1, d2 = derivatives(unary_module(dtype), name, x)
    f, f1, f2 = EXACT[name]
    xm = mp.mpf(x)
    assert close(y, f(xm), dtype), (y, f(xm))
    for route, v in zip(ROUTES[:2], d1):
        assert close(v, f1(xm), dtype), (route, v, mp.nstr(f1(xm), 17))
    # the second derivative through the rule's own IR: one rounding more per op
    for route, v in zip(ROUTES[2:], d2):
        assert close(v, f2(xm), dtype, ulps=2 * ULPS), (route, v, mp.nstr(f2(xm), 17))


# ----------------------------------------------------------------------------- special points
@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_derivatives_at_infinity_agree_by_every_route(dtype):
    """The limits at ±inf of the first and second derivatives are 0 for these functions; each
    route gets 0 (forward mode once multiplied an infinite tangent of x*x by exp(-x*x) = 0)."""
    m = unary_module(dtype)
    for name in ("atan", "erf", "tanh", "sigmoid"):
        for x in (math.inf, -math.inf):
            _, d1, d2 = derivatives(m, name, x)
            assert d1 == [0.0, 0.0] and d2 == [0.0, 0.0, 0.0], (name, x, d1, d2)


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_sqrt_derivative_at_signed_zero_is_plus_inf(dtype):
    m = unary_module(dtype)
    for x in (0.0, -0.0):
        _, d1, _ = derivatives(m, "sqrt", x)
        assert d1 == [math.inf, math.inf], (x, d1)


POW_SRC = """
fn p0(x: T) -> T { return x ** 0; }
fn p2(x: T) -> T { return x ** 2; }
fn p3(x: T) -> T { return x ** 3; }
fn pm1(x: T) -> T { return x ** -1; }
fn pm2(x: T) -> T { return x ** -2; }
fn pxy(x: T, y: T) -> T { return pow(x, y); }
fn pa(x: T[n]) -> T[n] { return x ** 0 + x ** 2 - x ** 3; }
fn pa_sum(x: T[n]) -> T { return sum(x ** 0 + x ** 3); }
fn pa_jvp = jvp(pa);
fn pa_grad = grad(pa_sum);
fn pa_hess = hessian(pa_sum);
fn pxy_grad = grad(pxy);
fn pxy_jvp = jvp(pxy);
fn pxy_hess = hessian(pxy, wrt=x);
"""
for _p in ("p0", "p2", "p3", "pm1", "pm2"):
    POW_SRC += (f"fn {_p}_grad = grad({_p});\nfn {_p}_jvp = jvp({_p});\nfn {_p}_hess = hessian({_p});\n"
                f"fn {_p}_gg = grad(grad({_p}));\nfn {_p}_jg = jvp(grad({_p}));\n"
                f"fn {_p}_3 = grad(grad(grad({_p})));\n")


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_integer_literal_powers_are_exact(dtype):
    """x ** k for literal k in -4..4: exact products (1/product for k < 0, the constant 1 for
    k = 0), so every derivative is exact, at x = 0 too (pow(x, 0.0) gave 0 * 0^-1 = NaN)."""
    m = dad.compile(POW_SRC.replace("T", dtype), filename=f"pow_{dtype}.dad")
    exact = {  # (f, f', f'', f''') as functions of an mpmath x
        "p0": (lambda x: 1, lambda x: 0, lambda x: 0, lambda x: 0),
        "p2": (lambda x: x * x, lambda x: 2 * x, lambda x: 2, lambda x: 0),
        "p3": (lambda x: x ** 3, lambda x: 3 * x * x, lambda x: 6 * x, lambda x: 6),
        "pm1": (lambda x: 1 / x, lambda x: -1 / x ** 2, lambda x: 2 / x ** 3, lambda x: -6 / x ** 4),
        "pm2": (lambda x: 1 / x ** 2, lambda x: -2 / x ** 3, lambda x: 6 / x ** 4, lambda x: -24 / x ** 5),
    }
    for name, fs in exact.items():
        for x in (0.0, -0.0, 1.5, -3.25, 0.1, 1e-3, 7.0):
            if name.startswith("pm") and x == 0.0:
                continue
            x = rounded(x, dtype)
            xm = mp.mpf(x)
            got = [getattr(m, name)(x), getattr(m, f"{name}_grad")(x), getattr(m, f"{name}_jvp")(x, 1.0)[1],
                   getattr(m, f"{name}_gg")(x), getattr(m, f"{name}_jg")(x, 1.0)[1],
                   np.asarray(getattr(m, f"{name}_hess")(x)).ravel()[0], getattr(m, f"{name}_3")(x)]
            want = [fs[0], fs[1], fs[1], fs[2], fs[2], fs[2], fs[3]]
            for k, (g, w) in enumerate(zip(got, want)):
                assert close(g, w(xm), dtype, ulps=4), (name, x, k, g, w(xm))
    x = np.array([0.0, -0.0, 2.0, -1.5], dtype=np.float64 if dtype == "f64" else np.float32)
    y, d = m.pa_jvp(x, np.ones_like(x))
    np.testing.assert_array_equal(y, 1 + x * x - x ** 3)
    np.testing.assert_array_equal(d, 2 * x - 3 * x * x)
    np.testing.assert_array_equal(m.pa_grad(x), 3 * x * x)
    np.testing.assert_array_equal(m.pa_hess(x), np.diag(6 * x))
    # pow(x, y) at y = 0, x = 0: d/dx is 0 (x^0 = 1 for every x), not 0 * inf
    assert m.pxy_grad(0.0, 0.0)[0] == 0.0 and m.pxy_jvp(0.0, 0.0, 1.0, 0.0)[1] == 0.0
    assert m.pxy_hess(0.0, 1.0) == 0.0  # x^1: second derivative 1 * 0 * x^-1 = 0


def test_polygamma_refusal_names_the_builtin_written():
    with pytest.raises(dad.CompileError, match="digamma is differentiable to first order only") as info:
        dad.compile("fn f(x: f64) -> f64 { return digamma(x); }\nfn h = hessian(f);\n", filename="dg.dad")
    assert "lgamma" not in str(info.value)
    with pytest.raises(dad.CompileError, match="lgamma is differentiable to second order only"):
        dad.compile("fn f(x: f64) -> f64 { return lgamma(x); }\nfn h = grad(hessian(f));\n", filename="lg.dad")
    # digamma's first derivative is there, by every route
    m = dad.compile("fn f(x: f64) -> f64 { return digamma(x); }\nfn g = grad(f);\nfn j = jvp(f);\n")
    for x in (-0.9999999999, 0.3, 4.5):
        want = mp.psi(1, mp.mpf(x))
        assert close(m.g(x), want) and close(m.j(x, 1.0)[1], want)


# ----------------------------------------------------------------------------- ties and infinities
TIES_SRC = """
fn mx(a: T, b: T) -> T { return max(a, b); }
fn mn(a: T, b: T) -> T { return min(a, b); }
fn sp(z: T) -> T { return max(z, 0.0) + log1p(exp(-abs(z))); }
fn ew(x: T[n], y: T[n]) -> T[n] { return max(x, y) + min(x, 1.0); }
fn ew_sum(x: T[n]) -> T { return sum(max(x, 1.0) * max(x, 1.0)); }
fn rmax(x: T[n]) -> T { return max(x); }
fn rmin(x: T[n]) -> T { return min(x); }
fn rsq(x: T[n]) -> T { return max(x) * max(x); }
fn lse(x: T[n]) -> T { return logsumexp(x); }
fn imax(a: i64, b: i64) -> i64 { return max(a, b) + min(a, b); }
fn mx_grad = grad(mx);
fn mx_jvp = jvp(mx);
fn mn_grad = grad(mn);
fn mn_jvp = jvp(mn);
fn sp_grad = grad(sp);
fn sp_jvp = jvp(sp);
fn sp_hvp = hvp(sp);
fn ew_jvp = jvp(ew);
fn ew_hess = hessian(ew_sum);
fn ew_grad = grad(ew_sum);
fn rmax_grad = grad(rmax);
fn rmax_jvp = jvp(rmax);
fn rmin_grad = grad(rmin);
fn rsq_hess = hessian(rsq);
fn rsq_hvp = hvp(rsq);
fn lse_grad = grad(lse);
fn lse_jvp = jvp(lse);
fn lse_hvp = hvp(lse);
fn lse_hess = hessian(lse);
"""


@pytest.fixture(scope="module", params=["f64", "f32"])
def ties(request):
    dt = request.param
    return dt, np.float64 if dt == "f64" else np.float32, dad.compile(TIES_SRC.replace("T", dt),
                                                                       filename=f"ties_{dt}.dad")


def test_binary_max_min_split_ties_in_every_mode(ties):
    _, np_t, m = ties
    for f, g, j in ((m.mx, m.mx_grad, m.mx_jvp), (m.mn, m.mn_grad, m.mn_jvp)):
        assert f(2.0, 2.0) == 2.0 and tuple(g(2.0, 2.0)) == (0.5, 0.5)
        assert j(2.0, 2.0, 1.0, 3.0)[1] == 2.0
    assert tuple(m.mx_grad(1.0, 2.0)) == (0.0, 1.0) and tuple(m.mn_grad(1.0, 2.0)) == (1.0, 0.0)
    # values as before: ties give a (sign of zero included), NaN gives b
    assert math.copysign(1.0, m.mx(-0.0, 0.0)) == -1.0 and m.mx(float("nan"), 1.0) == 1.0
    # the stable softplus: derivative 1/2 at its kink, as the function it stands for
    assert m.sp_grad(0.0) == 0.5 and m.sp_jvp(0.0, 1.0)[1] == 0.5
    assert m.sp_grad(1.0) == pytest.approx(float(sigmoid(mp.mpf(1))), rel=1e-6)
    assert m.sp_hvp(0.0, 1.0) == 0.0  # abs'' and max'' are 0 there: the executed program's
    x = np.array([1.0, 2.0, 0.5, 3.0], dtype=np_t)
    y = np.array([1.0, 5.0, 0.5, 0.0], dtype=np_t)
    _, d = m.ew_jvp(x, y, np.full(4, 10.0, np_t), np.full(4, 20.0, np_t))
    np.testing.assert_array_equal(d, [15.0 + 5.0, 20.0, 15.0 + 10.0, 10.0])
    x = np.array([1.0, 2.0, 0.5], dtype=np_t)
    np.testing.assert_array_equal(m.ew_grad(x), [1.0, 4.0, 0.0])   # d max(x,1)^2 = 2 max · ½ at x = 1
    # second derivative of max(x, 1)²: 2 (max')² + 2 max · max'' = 2 (1/2)² at the tie
    np.testing.assert_array_equal(m.ew_hess(x), np.diag([0.5, 2.0, 0.0]))
    assert m.imax(3, 3) == 6 and m.imax(2, 5) == 7


def test_reductions_split_ties_among_extreme_elements(ties):
    dt, np_t, m = ties
    x = np.array([1.0, 3.0, -2.0, 3.0, 3.0, -2.0], dtype=np_t)
    # m + (sum of ties' x_i - m) / 3: one rounding of 1/3 per share
    np.testing.assert_allclose(m.rmax_grad(x), [0, 1 / 3, 0, 1 / 3, 1 / 3, 0], rtol=4 * EPS[dt], atol=0)
    np.testing.assert_array_equal(m.rmin_grad(x), [0, 0, 0.5, 0, 0, 0.5])
    assert m.rmax_jvp(x, np.arange(6, dtype=np_t))[1] == pytest.approx(8 / 3, rel=8 * EPS[dt])
    np.testing.assert_array_equal(m.rsq_hess(np.array([2.0, 2.0], np_t)), [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_array_equal(m.rsq_hvp(np.array([2.0, 2.0], np_t), np.array([1.0, 0.0], np_t)),
                                  [0.5, 0.5])
    inf = np.array([np.inf, 1.0, np.inf], np_t)
    assert m.rmax(inf) == np.inf
    np.testing.assert_array_equal(m.rmax_grad(inf), [0.5, 0, 0.5])
    assert math.copysign(1.0, m.rmax(np.array([-0.0, -0.0], np_t))) == -1.0
    np.testing.assert_array_equal(m.rmax_grad(np.array([1.0, 3.0, 2.0], np_t)), [0, 1, 0])


def test_logsumexp_at_infinite_entries_is_the_softmax_limit_in_every_mode(ties):
    """grad gave [0, 0] and jvp NaN at [inf, 0]; now both (and hvp, hessian) use the limit of
    softmax: one-hot on the +inf entry, split evenly among several, 1/n each when all are -inf."""
    _, np_t, m = ties
    for x, want in (([np.inf, 0.0], [1.0, 0.0]), ([np.inf, 1.0, np.inf], [0.5, 0.0, 0.5]),
                    ([-np.inf, -np.inf], [0.5, 0.5]), ([3.0, -np.inf], [1.0, 0.0])):
        x = np.array(x, np_t)
        np.testing.assert_array_equal(m.lse_grad(x), want)
        for k in range(len(x)):
            v = np.zeros(len(x), np_t)
            v[k] = 1.0
            assert m.lse_jvp(x, v)[1] == want[k], (x, k)
            np.testing.assert_array_equal(m.lse_hvp(x, v), np.zeros(len(x)))
        np.testing.assert_array_equal(m.lse_hess(x), np.zeros((len(x), len(x))))
    x = np.array([0.5, -1.0, 2.0], np_t)
    sm = np.exp(x.astype(np.float64) - 2.0) / np.exp(x.astype(np.float64) - 2.0).sum()
    np.testing.assert_allclose(m.lse_grad(x), sm, rtol=1e-6)


# ----------------------------------------------------------------------------- atan2 and norm
ATAN2_SRC = """
fn f(a: T, c: T) -> T { return atan2(a, c); }
fn f_grad = grad(f);
fn f_jvp = jvp(f);
fn f_ha = hessian(f, wrt=a);
fn f_hc = hessian(f, wrt=c);
"""
ATAN2_POINTS = {
    # a² + c² overflowed (partials 0) or underflowed (partials inf) before
    "f64": [(3.0, 4.0), (1e300, 1e300), (-1e300, 2e299), (1e-300, 3e-300), (1e150, -1e150),
            (-2.0, 1e-310), (1e200, 1.0), (1e-170, 1e-170)],
    "f32": [(3.0, 4.0), (1e30, 1e30), (-1e25, 3e25), (1e-30, 3e-30), (2e19, -2e19)],
}


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_atan2_partials_are_scaled(dtype):
    m = dad.compile(ATAN2_SRC.replace("T", dtype), filename=f"atan2_{dtype}.dad")
    for a, c in ATAN2_POINTS[dtype]:
        a, c = rounded(a, dtype), rounded(c, dtype)
        A, C = mp.mpf(a), mp.mpf(c)
        r2 = A * A + C * C
        da, dc, daa, dcc = C / r2, -A / r2, -2 * A * C / r2 ** 2, 2 * A * C / r2 ** 2
        ga, gc = m.f_grad(a, c)
        assert close(ga, da, dtype) and close(gc, dc, dtype), (a, c, ga, gc)
        assert close(m.f_jvp(a, c, 1.0, 0.0)[1], da, dtype) and close(m.f_jvp(a, c, 0.0, 1.0)[1], dc, dtype)
        # second derivatives through the scaled formula: c/s is subnormal at (-2, 1e-310)
        assert close(m.f_ha(a, c), daa, dtype, ulps=4 * ULPS, sub=8), (a, c, m.f_ha(a, c), daa)
        assert close(m.f_hc(a, c), dcc, dtype, ulps=4 * ULPS, sub=8), (a, c, m.f_hc(a, c), dcc)
    # at an infinite operand the partials are 0 (NaN before: inf / inf)
    for a, c in ((math.inf, 1.0), (2.0, -math.inf), (-math.inf, 0.5)):
        assert [abs(v) for v in m.f_grad(a, c)] == [0.0, 0.0]
        assert abs(m.f_jvp(a, c, 1.0, 1.0)[1]) == 0.0 and abs(m.f_ha(a, c)) == 0.0


NORM_POINTS = {
    # the sum of squares overflowed (norm inf, gradient 0) or underflowed (norm and gradient 0)
    "f64": [[3.0, 4.0], [1e200, 1e200], [-1e300, 3e299, 1.0], [1e-200, -3e-200], [1e-170, 2e-170, 0.0],
            [1e300, 1e-300], [0.5, -1e-200], [1e-310, 2e-310]],
    "f32": [[3.0, 4.0], [1e30, 1e30], [-2e25, 1e25], [1e-30, 2e-30], [1e-40, 0.0], [1e20, 1.0]],
}


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_norm_is_scaled_in_value_and_derivatives(dtype):
    m = dad.compile(f"fn f(x: {dtype}[n]) -> {dtype} {{ return norm(x); }}\nfn f_grad = grad(f);\n"
                    f"fn f_jvp = jvp(f);\nfn f_hess = hessian(f);\n", filename=f"norm_{dtype}.dad")
    np_t = np.float64 if dtype == "f64" else np.float32
    for x in NORM_POINTS[dtype]:
        x = np.array(x, np_t)
        xm = [mp.mpf(float(v)) for v in x]
        r = mp.sqrt(sum(v * v for v in xm))
        assert close(m.f(x), r, dtype), (x, m.f(x))
        g = m.f_grad(x)
        for k, v in enumerate(xm):
            assert close(g[k], v / r, dtype), (x, k, g[k])
        v = np.linspace(1.0, 2.0, len(x)).astype(np_t)
        assert close(m.f_jvp(x, v)[1], sum(a * float(b) for a, b in zip(xm, v)) / r, dtype, ulps=4 * ULPS)
        if min(abs(float(a)) for a in x if a != 0) < (1e-300 if dtype == "f64" else 1e-37):
            continue  # the Hessian 1/r overflows
        # Hessian (I - u uᵀ) / r: its entries cancel (1 - u²), so the check is relative to 1/r
        h = m.f_hess(x)
        for i in range(len(x)):
            for j in range(len(x)):
                want = ((1 if i == j else 0) - xm[i] * xm[j] / r ** 2) / r
                assert abs(mp.mpf(float(h[i, j])) - want) <= 8 * ULPS * EPS[dtype] / r, (x, i, j, h[i, j], want)
    assert m.f(np.zeros(3, np_t)) == 0.0 and m.f_grad(np.zeros(3, np_t)).tolist() == [0.0] * 3
    assert m.f_jvp(np.zeros(2, np_t), np.ones(2, np_t))[1] == 0.0
    assert m.f(np.array([np.inf, 1.0], np_t)) == math.inf and math.isnan(m.f(np.array([np.nan, 1.0], np_t)))
    assert math.isnan(m.f(np.array([np.nan, np.inf], np_t)))
    # at infinite elements: the limit of x / |x| along x = t (±1, ..., ±1, finite), every mode
    # (the gradient was 0 and the JVP NaN)
    for x, want in (([np.inf, 1.0], [1.0, 0.0]), ([-np.inf, 2.0, np.inf], [-0.5 ** 0.5, 0.0, 0.5 ** 0.5])):
        x = np.array(x, np_t)
        np.testing.assert_allclose(m.f_grad(x), want, rtol=2 * EPS[dtype], atol=0)
        for k in range(len(x)):
            v = np.zeros(len(x), np_t)
            v[k] = 1.0
            assert m.f_jvp(x, v)[1] == pytest.approx(want[k], rel=2 * EPS[dtype], abs=0)
        assert np.all(m.f_hess(x) == 0.0)


def test_max_adjoint_of_the_operand_not_chosen_is_exactly_zero():
    """An infinite adjoint reaching max(a, b) gives the operand not chosen 0, not inf * 0."""
    m = dad.compile("fn f(a: f64, b: f64) -> f64 { return exp(1000.0 * max(a, b)); }\nfn g = grad(f);\n"
                    "fn e(x: f64[n]) -> f64 { return exp(1000.0 * max(x)); }\nfn eg = grad(e);\n")
    ga, gb = m.g(2.0, 1.0)
    assert ga == math.inf and gb == 0.0
    ga, gb = m.g(2.0, 2.0)
    assert ga == math.inf and gb == math.inf
    np.testing.assert_array_equal(m.eg(np.array([2.0, 1.0, 3.0])), [0.0, 0.0, math.inf])
