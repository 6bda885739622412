"""Reverse mode (`grad`, `value_and_grad`, `vjp`) on hand-written programs: gradients
against central differences and analytic derivatives, the derivative rules at special points
(NaN safety), several `wrt` parameters, tuple outputs, f32.

Tolerances:
- Central differences `(f(x + h e) - f(x - h e)) / 2h` with h = 1e-6 in f64: truncation
  `h^2/6 |f'''|` ~ 1e-13 and rounding `eps |f| / h` ~ 2e-10 |f|, so for O(1) inputs away
  from kinks `|g - fd| <= 1e-6 (1 + max |g|)`. Long products / loops with large |f| use a
  relative scale (`rtol` on |f|). A wrong rule, a value read from the wrong iteration, or an
  adjoint dropped is off by O(1) relative, far above these bounds.
- f32: h = 1e-2 (rounding eps32 |f| / h ~ 6e-6 |f|) on functions at most quadratic in the
  perturbed input (truncation 0 or tiny), so `1e-3 (1 + |g|)`.
- Analytic derivatives computed by NumPy in the same precision: `rtol` 1e-12 (the reverse
  sweep sums adjoints in a different order from the formula).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import dad

H, TOL = 1e-6, 1e-6


def fd_grad(f, args, i, h=H):
    """Central-difference gradient of scalar f with respect to argument i."""
    a = args[i]
    if np.ndim(a) == 0:
        up, dn = list(args), list(args)
        up[i], dn[i] = type(a)(a + h), type(a)(a - h)
        return (float(f(*up)) - float(f(*dn))) / (2 * h)
    g = np.zeros(np.shape(a))
    for k in range(a.size):
        up, dn = list(args), list(args)
        up[i], dn[i] = a.copy(), a.copy()
        up[i].flat[k] += h
        dn[i].flat[k] -= h
        g.flat[k] = (float(f(*up)) - float(f(*dn))) / (2 * h)
    return g


def check_fd(f, g, args, i, h=H, tol=TOL):
    fd = fd_grad(f, args, i, h)
    g = np.asarray(g, dtype=float)
    err = float(np.max(np.abs(g - fd)))
    assert err <= tol * (1.0 + float(np.max(np.abs(g)))), f"grad {g}\n  fd {fd}"


def rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- loops
LOOPS = r"""
fn rosen(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    return s;
}
fn rosen_g = grad(rosen);

fn rosen_gradient_by_hand(x: f64[n]) -> f64[n] {
    var g = zeros(n);
    for i in 0..n - 1 {
        let a = x[i + 1] - x[i] * x[i];
        g[i] -= 400.0 * x[i] * a + 2.0 * (1.0 - x[i]);
        g[i + 1] += 200.0 * a;
    }
    return g;
}

# carried value: the adjoint of x[i] needs the p of iteration i (recorded)
fn prod_loop(x: f64[n]) -> f64 {
    var p = 1.0;
    for i in 0..n { p = p * x[i]; }
    return p;
}
fn prod_loop_g = grad(prod_loop);

# exp/log/sin of carried values: their adjoints read recorded values
fn transc(x: f64[n]) -> f64 {
    var s = 0.5;
    for i in 0..n {
        s = sin(s + x[i]) + 0.1 * exp(s * x[i]);
        s = s + log(1.5 + s * s);
    }
    return s;
}
fn transc_g = grad(transc);

fn nested(x: f64[n], A: f64[m, n]) -> f64 {
    var s = 0.0;
    for i in 0..m {
        var t = 1.0;
        for j in 0..n {
            t = t * cos(A[i, j] * x[j]) + x[j] * t;
            for k in 0..2 { t = t + 0.1 * sin(t * float(k + 1)); }
        }
        s += t * t;
    }
    return s;
}
fn nested_g = grad(nested);

fn branches(x: f64[n], c: f64) -> f64 {
    var s = 0.0;
    for i in 0..n {
        if x[i] > c {
            s = s * 0.5 + exp(x[i] - c);
        } else if x[i] < -c {
            s = s - x[i] * x[i] * s;
        } else {
            s = sin(s) + c * x[i];
        }
    }
    return s;
}
fn branches_g = grad(branches);

fn inplace(x: f64[n]) -> f64 {
    var a = copy(x);
    for i in 1..n { a[i] = a[i] * a[i - 1] + sin(a[i]); }
    var b = zeros(n);
    for i in 0..n { b[i] += a[i]; b[i] *= a[n - 1 - i]; b[i] += 0.5 * b[i] * b[i]; }
    return sum(b) + a[n - 1];
}
fn inplace_g = grad(inplace);

# step > 1, empty ranges, while with a data-dependent count
fn strided(x: f64[n]) -> f64 {
    var s = 1.0;
    for i in 1..n step 3 { s = s * x[i] + x[i - 1]; }
    for i in n..0 { s = s * 100.0; }
    var k = 0;
    var t = s;
    while t * t > 1e-3 and k < 50 { t = 0.5 * t + 0.1 * sin(t); k += 1; }
    return t + s;
}
fn strided_g = grad(strided);

fn early(x: f64[n], c: f64) -> f64 {
    var s = 0.0;
    for i in 0..n {
        s = s * c + x[i] * x[i];
        if s > 4.0 {
            return s * c;
        }
        if x[i] < -1.5 { break; }
    }
    return exp(0.1 * s);
}
fn early_g = grad(early);
"""


@pytest.fixture(scope="module")
def loops():
    return dad.compile(LOOPS, filename="loops.dad")


def test_rosenbrock(loops):
    for n in (2, 3, 10):
        x = rng(n).normal(size=n)
        g = loops.rosen_g(x)
        np.testing.assert_allclose(g, loops.rosen_gradient_by_hand(x), rtol=1e-12, atol=1e-12)
        check_fd(loops.rosen, g, [x], 0)
    np.testing.assert_array_equal(loops.rosen_g(np.array([1.0, 1.0, 1.0])), 0.0)
    assert loops.rosen_g(np.array([0.7])).tolist() == [0.0]  # no iteration
    assert dad.grad(loops.rosen)(np.array([0.7, 0.2])).tolist() == \
        pytest.approx(loops.rosen_g(np.array([0.7, 0.2])).tolist(), rel=0, abs=0)


def test_product_loop_needs_recorded_carried_values(loops):
    x = rng(1).uniform(0.5, 1.5, 12)
    g = loops.prod_loop_g(x)
    expect = np.array([np.prod(np.delete(x, i)) for i in range(len(x))])
    np.testing.assert_allclose(g, expect, rtol=1e-13)
    check_fd(loops.prod_loop, g, [x], 0)
    # a zero factor: the gradient is the product of the others there, 0 elsewhere (no 0/0)
    x[4] = 0.0
    g = loops.prod_loop_g(x)
    expect = np.array([np.prod(np.delete(x, i)) for i in range(len(x))])
    np.testing.assert_allclose(g, expect, rtol=1e-13)


def test_transcendental_loop(loops):
    x = rng(2).uniform(-1, 1, 8)
    check_fd(loops.transc, loops.transc_g(x), [x], 0)


def test_nested_loops(loops):
    r = rng(3)
    x, A = r.uniform(-1, 1, 4), r.uniform(-1, 1, (3, 4))
    gx, gA = loops.nested_g(x, A)
    check_fd(loops.nested, gx, [x, A], 0)
    check_fd(loops.nested, gA, [x, A], 1)


@pytest.mark.parametrize("seed", range(3))
def test_branches_inside_loops(loops, seed):
    r = rng(10 + seed)
    x = r.uniform(-2, 2, 9)
    c = 0.6
    x[np.abs(np.abs(x) - c) < 0.05] += 0.1  # away from the switching points
    gx, gc = loops.branches_g(x, c)
    check_fd(loops.branches, gx, [x, c], 0)
    check_fd(loops.branches, gc, [x, c], 1)


def test_in_place_updates(loops):
    x = rng(4).uniform(-1, 1, 7)
    check_fd(loops.inplace, loops.inplace_g(x), [x], 0)


def test_strided_empty_and_while(loops):
    x = rng(5).uniform(-1, 1, 10)
    check_fd(loops.strided, loops.strided_g(x), [x], 0)


@pytest.mark.parametrize("x,c", [
    ([0.5, 0.7, 1.9, 0.3], 1.1),    # returns early from inside the loop
    ([0.5, -1.7, 1.9, 0.3], 0.9),   # breaks
    ([0.3, 0.2, 0.4, 0.1], 0.8),    # runs to the end
])
def test_early_return_and_break(loops, x, c):
    x = np.array(x)
    gx, gc = loops.early_g(x, c)
    check_fd(loops.early, gx, [x, c], 0)
    check_fd(loops.early, gc, [x, c], 1)


# ----------------------------------------------------------------------------- while loops
NEWTON = r"""
fn newton_sqrt(a: f64, tol: f64) -> f64 {
    var x = select(a > 1.0, a, 1.0);
    var it = 0;
    while true {
        let dx = (x * x - a) / (2.0 * x);
        x -= dx;
        it += 1;
        if abs(dx) <= tol * x or it >= 100 { break; }
    }
    return x;
}
fn newton_sqrt_g = grad(newton_sqrt, wrt=a);

# a cube root by a fixed-point loop whose trip count depends on the data
fn cbrt_fp(a: f64) -> f64 {
    var x = 1.0;
    var dx = 1.0;
    while abs(dx) > 1e-15 * abs(x) {
        let nx = x - (x * x * x - a) / (3.0 * x * x);
        dx = nx - x;
        x = nx;
    }
    return x;
}
fn cbrt_fp_g = grad(cbrt_fp);

# Newton for sqrt over an array of inputs
fn sqrt_all(a: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n { s += newton_sqrt(a[i], 1e-15); }
    return s;
}
fn sqrt_all_g = grad(sqrt_all);
"""


@pytest.fixture(scope="module")
def newton():
    return dad.compile(NEWTON, filename="newton.dad")


@pytest.mark.parametrize("a", [0.3, 1.0, 2.0, 9.0, 1234.5])
def test_newton_while_loop_gradient_is_that_of_the_fixed_point(newton, a):
    """d sqrt(a) / da = 1 / (2 sqrt(a)): differentiating the converged iteration gives the
    derivative of the fixed point up to the last step's error (quadratic convergence:
    relative ~ tol), so rel 1e-10 with tol = 1e-14."""
    x = newton.newton_sqrt(a, 1e-14)
    assert x == pytest.approx(math.sqrt(a), rel=1e-14)
    assert newton.newton_sqrt_g(a, 1e-14) == pytest.approx(0.5 / math.sqrt(a), rel=1e-10)
    assert newton.cbrt_fp_g(a) == pytest.approx(a ** (-2 / 3) / 3, rel=1e-10)


def test_newton_over_an_array(newton):
    a = rng(6).uniform(0.1, 10.0, 7)
    np.testing.assert_allclose(newton.sqrt_all_g(a), 0.5 / np.sqrt(a), rtol=1e-10)


# ----------------------------------------------------------------------------- builtins
BUILTINS = r"""
fn reductions(x: f64[n], y: f64[n]) -> f64 {
    return sum(x * y) + 0.1 * prod(x) + dot(x, sin(y)) + max(x) - 2.0 * min(y)
        + logsumexp(x - y) + norm(x) * norm(y);
}
fn reductions_g = grad(reductions);

fn linalg(A: f64[m, n], B: f64[n, k], x: f64[n], u: f64[m]) -> f64 {
    let y = matvec(A, x);
    let C = matmul(A, B);
    let At = transpose(A);
    let O = outer(u, x);
    return dot(y, u) + sum(C * C) + sum(matvec(At, u) * x) + sum(O * A);
}
fn linalg_g = grad(linalg);

fn views(A: f64[m, n], x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..m {
        let r = A[i];
        s += dot(r, x) * sum(r[1..n]) + norm(x[0..i + 1]);
    }
    return s + sum(x[1..n - 1] * x[0..n - 2]);
}
fn views_g = grad(views);

fn elementwise(x: f64[n]) -> f64 {
    let y = tanh(x) * exp(-x * x) + sqrt(1.0 + x * x) + atan(x) + sigmoid(x) + erf(x)
        + pow(1.0 + x * x, 0.3) + abs(x) * max(x, 0.2) + min(x, -0.3) + log1p(x * x);
    return sum(y * y);
}
fn elementwise_g = grad(elementwise);
"""


@pytest.fixture(scope="module")
def builtins():
    return dad.compile(BUILTINS, filename="builtins.dad")


def test_reductions(builtins):
    r = rng(7)
    x, y = r.uniform(0.5, 1.5, 6) * np.array([1, -1, 1, -1, 1, 1]), r.normal(size=6)
    gx, gy = builtins.reductions_g(x, y)
    check_fd(builtins.reductions, gx, [x, y], 0)
    check_fd(builtins.reductions, gy, [x, y], 1)


def test_linear_algebra(builtins):
    r = rng(8)
    args = [r.normal(size=(3, 4)), r.normal(size=(4, 2)), r.normal(size=4), r.normal(size=3)]
    gs = builtins.linalg_g(*args)
    assert len(gs) == 4
    for i, g in enumerate(gs):
        assert g.shape == args[i].shape
        check_fd(builtins.linalg, g, args, i)


def test_rows_and_slices(builtins):
    r = rng(9)
    A, x = r.normal(size=(3, 5)), r.normal(size=5)
    gA, gx = builtins.views_g(A, x)
    check_fd(builtins.views, gA, [A, x], 0)
    check_fd(builtins.views, gx, [A, x], 1)


def test_elementwise_math(builtins):
    x = rng(10).uniform(-1.5, 1.5, 8)
    x[np.abs(x) < 0.05] = 0.4
    x[np.abs(x - 0.2) < 0.05] = 0.7
    x[np.abs(x + 0.3) < 0.05] = -0.7
    check_fd(builtins.elementwise, builtins.elementwise_g(x), [x], 0)


# ----------------------------------------------------------------------------- calls, wrt, tuples
CALLS = r"""
fn inner(x: f64, y: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n { s = s * 0.5 + sin(x * y[i]); }
    return s;
}
fn pair(a: f64, b: f64) -> (f64, f64) { return (a * b, exp(a) - b); }
fn outerf(x: f64, y: f64[n], c: f64) -> f64 {
    var t = 0.0;
    for k in 0..3 {
        let (p, q) = pair(inner(x + float(k), y), c);
        t += p * q;
    }
    return t + inner(c, y * x);
}
fn outerf_g = grad(outerf);
fn outerf_gxy = grad(outerf, wrt=[x, y]);
fn outerf_gc = grad(outerf, wrt=c);
fn outerf_vg = value_and_grad(outerf);
fn outerf_vg_y = value_and_grad(outerf, wrt=y);

fn multi(x: f64[n], s: f64) -> (f64, f64[n], f64) {
    var y = zeros(n);
    for i in 0..n { y[i] = s * x[i] * x[i]; }
    return (sum(x) * s, y, s * s);
}
fn multi_vjp = vjp(multi);
fn multi_vjp_s = vjp(multi, wrt=s);
"""


@pytest.fixture(scope="module")
def calls():
    return dad.compile(CALLS, filename="calls.dad")


def test_calls_and_several_wrt(calls):
    r = rng(11)
    x, y, c = 0.3, r.normal(size=4), 0.7
    gx, gy, gc = calls.outerf_g(x, y, c)
    check_fd(calls.outerf, gx, [x, y, c], 0)
    check_fd(calls.outerf, gy, [x, y, c], 1)
    check_fd(calls.outerf, gc, [x, y, c], 2)
    # A derived function with fewer wrt is another program: the language lets it sum an
    # adjoint's contributions in another order (docs/LANGUAGE.md, Floating point; e.g.
    # grad(inner, wrt=x) and grad(inner)'s x part differ by 2 ulps), so across derived
    # functions the numbers agree to rounding: within 8 ulps of the value at this point,
    # where the sums do not cancel (where they do, the bound scales with their terms).
    gx2, gy2 = calls.outerf_gxy(x, y, c)
    gc2 = calls.outerf_gc(x, y, c)
    ulps = 8 * np.finfo(float).eps
    assert abs(gx2 - gx) <= ulps * abs(gx) and np.allclose(gy2, gy, rtol=ulps, atol=0)
    assert abs(gc2 - gc) <= ulps * abs(gc)
    # from Python: the same derived functions, so the same numbers bit for bit
    gp = dad.grad(calls.outerf, wrt=["x", "y"])(x, y, c)
    assert gp[0] == gx2 and np.array_equal(gp[1], gy2)
    assert dad.grad(calls.outerf, wrt="c")(x, y, c) == gc2
    assert dad.grad(calls.outerf)(x, y, c)[2] == gc


def test_value_and_grad_is_f_and_grad(calls):
    r = rng(12)
    x, y, c = -0.4, r.normal(size=3), 1.3
    v, gx, gy, gc = calls.outerf_vg(x, y, c)
    assert v == calls.outerf(x, y, c)
    g = calls.outerf_g(x, y, c)
    assert (gx, gc) == (g[0], g[2]) and np.array_equal(gy, g[1])
    v2, gy2 = calls.outerf_vg_y(x, y, c)
    assert v2 == v and np.array_equal(gy2, gy)
    v3, *g3 = dad.value_and_grad(calls.outerf)(x, y, c)
    assert v3 == v and g3[0] == gx and np.array_equal(g3[1], gy) and g3[2] == gc


def test_vjp_with_tuple_outputs(calls):
    r = rng(13)
    x, s = r.normal(size=5), 0.8
    w0, w1, w2 = 0.7, r.normal(size=5), -1.1
    o0, o1, o2, xb, sb = calls.multi_vjp(x, s, w0, w1, w2)
    e0, e1, e2 = calls.multi(x, s)
    assert o0 == e0 and o2 == e2 and np.array_equal(o1, e1)
    np.testing.assert_allclose(xb, w0 * s + w1 * 2 * s * x, rtol=1e-14)
    assert sb == pytest.approx(w0 * x.sum() + np.dot(w1, x * x) + w2 * 2 * s, rel=1e-13)
    assert calls.multi_vjp_s(x, s, w0, w1, w2)[3] == sb
    py = dad.vjp(calls.multi)(x, s, w0, w1, w2)
    assert np.array_equal(py[3], xb) and py[4] == sb
    # zero cotangents for all but one output select that output's row of the Jacobian
    assert calls.multi_vjp(x, s, 0.0, np.zeros(5), 1.0)[4] == 2 * s


# ----------------------------------------------------------------------------- f32
F32_SRC = r"""
fn f32_loop(x: f32[n], a: f32) -> f32 {
    var s = f32(0.0);
    for i in 0..n { s += a * x[i] * x[i] + 0.5 * x[i]; }
    return s / f32(n);
}
fn f32_loop_g = grad(f32_loop);
fn f32_mixed(x: f32[n], y: f64) -> f64 {
    var s = 0.0;
    for i in 0..n { s += f64(x[i]) * y; }
    return s * y;
}
fn f32_mixed_g = grad(f32_mixed);
"""


def test_f32_gradients():
    m = dad.compile(F32_SRC, filename="f32.dad")
    r = rng(14)
    x, a = r.normal(size=6).astype(np.float32), np.float32(1.3)
    gx, ga = m.f32_loop_g(x, a)
    assert gx.dtype == np.float32 and isinstance(ga, np.float32)
    # analytic, computed in f64 from the f32 inputs: f32 rounding of a 6-term sum, 1e-5 rel
    np.testing.assert_allclose(gx, (2 * float(a) * x.astype(float) + 0.5) / 6, rtol=1e-5)
    assert float(ga) == pytest.approx(float(np.sum(x.astype(float) ** 2)) / 6, rel=1e-5)
    check_fd(m.f32_loop, gx, [x, a], 0, h=1e-2, tol=1e-3)
    check_fd(m.f32_loop, ga, [x, a], 1, h=1e-2, tol=1e-3)
    gx, gy = m.f32_mixed_g(x, 0.9)
    assert gx.dtype == np.float32
    np.testing.assert_allclose(gx, np.full(6, 0.81, dtype=np.float32), rtol=1e-6)
    assert gy == pytest.approx(2 * 0.9 * float(np.sum(x.astype(float))), rel=1e-12)


# ----------------------------------------------------------------------------- NaN safety
SPECIAL = r"""
fn sel_sqrt(x: f64) -> f64 { return select(x > 0.0, sqrt(x), 0.0); }
fn sel_sqrt_g = grad(sel_sqrt);
fn if_sqrt(x: f64) -> f64 { if x > 0.0 { return sqrt(x); } else { return 0.0; } }
fn if_sqrt_g = grad(if_sqrt);
fn sel_log(x: f64) -> f64 { return select(x > 0.0, x * log(x), 0.0); }
fn sel_log_g = grad(sel_log);
fn nrm(x: f64[n]) -> f64 { return norm(x); }
fn nrm_g = grad(nrm);
fn ab(x: f64) -> f64 { return abs(x); }
fn ab_g = grad(ab);
fn mx(a: f64, b: f64) -> f64 { return max(a, b); }
fn mx_g = grad(mx);
fn mn(a: f64, b: f64) -> f64 { return min(a, b); }
fn mn_g = grad(mn);
fn rmax(x: f64[n]) -> f64 { return max(x); }
fn rmax_g = grad(rmax);
fn rmin(x: f64[n]) -> f64 { return min(x); }
fn rmin_g = grad(rmin);
fn sq(x: f64) -> f64 { return sqrt(x); }
fn sq_g = grad(sq);
fn pw(x: f64, y: f64) -> f64 { return pow(x, y); }
fn pw_g = grad(pw);
fn loop_sel(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n { s += select(x[i] > 0.0, sqrt(x[i]), 0.0) + select(x[i] != 0.0, 1.0 / x[i], 0.0); }
    return s;
}
fn loop_sel_g = grad(loop_sel);
fn loop_if(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n {
        if x[i] > 0.0 { s += sqrt(x[i]) * log(x[i]); } else { s += x[i]; }
    }
    return s;
}
fn loop_if_g = grad(loop_if);
"""


@pytest.fixture(scope="module")
def special():
    return dad.compile(SPECIAL, filename="special.dad")


def test_select_does_not_turn_zero_into_nan(special):
    assert special.sel_sqrt_g(0.0) == 0.0
    assert special.sel_sqrt_g(-1.0) == 0.0
    assert special.sel_sqrt_g(4.0) == 0.25
    g = special.loop_sel_g(np.array([0.0, 4.0, -1.0, 0.0]))
    np.testing.assert_array_equal(g, [0.0, 0.25 - 1 / 16, -1.0, 0.0])


def test_if_does_not_turn_zero_into_nan(special):
    assert special.if_sqrt_g(0.0) == 0.0
    assert special.if_sqrt_g(-2.0) == 0.0
    assert special.if_sqrt_g(4.0) == 0.25
    g = special.loop_if_g(np.array([0.0, 1.0, -3.0]))
    np.testing.assert_array_equal(g, [1.0, 1.0, 1.0])


def test_select_zero_times_inf_from_the_unchosen_branch(special):
    """Regression (found by this file, fixed in 4dd43c0): mulf's adjoint multiplied the 0 that select gives its unchosen operand by log(0) = -inf."""
    assert special.sel_log_g(0.0) == 0.0


def test_norm_gradient_at_zero_is_zero(special):
    """Regression (found by this file, fixed in 4dd43c0): norm reaches AD as sqrt(sum x*x); the adjoint inf * 0 was NaN."""
    g = special.nrm_g(np.zeros(4))
    assert not np.any(np.isnan(g))
    np.testing.assert_array_equal(g, 0.0)


def test_norm_abs_at_zero(special):
    np.testing.assert_allclose(special.nrm_g(np.array([3.0, 4.0])), [0.6, 0.8], rtol=1e-15)
    assert special.ab_g(0.0) == 0.0
    assert special.ab_g(-0.0) == 0.0
    assert special.ab_g(-2.0) == -1.0 and special.ab_g(2.0) == 1.0


def test_max_min_ties_split_evenly(special):
    assert special.mx_g(1.0, 1.0) == (0.5, 0.5)
    assert special.mn_g(1.0, 1.0) == (0.5, 0.5)
    assert special.mx_g(1.0, 2.0) == (0.0, 1.0)
    assert special.mn_g(1.0, 2.0) == (1.0, 0.0)
    np.testing.assert_array_equal(special.rmax_g(np.array([1.0, 3.0, 2.0, 3.0])), [0, 0.5, 0, 0.5])
    np.testing.assert_array_equal(special.rmin_g(np.array([1.0, 0.5, 0.5, 3.0])), [0, 0.5, 0.5, 0])
    np.testing.assert_array_equal(special.rmax_g(np.array([1.0, 3.0, 2.0])), [0, 1, 0])


def test_sqrt_and_pow_at_zero(special):
    assert special.sq_g(0.0) == math.inf
    gx, gy = special.pw_g(0.0, 2.0)
    assert gy == 0.0 and gx == 0.0


# ----------------------------------------------------------------------------- arrays and calls
ARRAY_CALLS = r"""
fn st(p: f64[n]) -> f64 { return sum(sin(p)); }
fn call_then_overwrite(x: f64[n]) -> f64 {
    var p = copy(x);
    let q = st(p);
    p[0] = 5.0;
    return q + p[1];
}
fn call_then_overwrite_g = grad(call_then_overwrite);

fn sn(p: f64[n]) -> f64[n] { return sin(p); }
fn iterate_calls(x: f64[n], steps: i64) -> f64 {
    var p = copy(x);
    for s in 0..steps { p = sn(p); }
    return sum(p);
}
fn iterate_calls_g = grad(iterate_calls);

fn sq2(p: f64[n, 3]) -> f64[n, 3] { return p * p; }
fn call_result_2d(pos: f64[n, 3], vel: f64[n, 3], dt: f64) -> f64[n, 3] {
    var v = vel;
    v = v + dt * sq2(pos);
    return v;
}
fn call_result_2d_vjp = vjp(call_result_2d, wrt=dt);

fn call_read_then_written(x: f64[n]) -> f64 {
    var p = copy(x);
    let q = st(p);
    return q + sum(p);
}
fn call_read_then_written_g = grad(call_read_then_written);
"""


@pytest.fixture(scope="module")
def array_calls():
    return dad.compile(ARRAY_CALLS, filename="array_calls.dad")


def test_call_with_array_argument(array_calls):
    x = np.array([0.3, -0.7, 1.1])
    np.testing.assert_allclose(array_calls.call_read_then_written_g(x), np.cos(x) + 1.0,
                               rtol=1e-15)


def test_call_argument_overwritten_after_the_call(array_calls):
    """Regression (found by this file, fixed in 4dd43c0): the callee's adjoint saw the array as it was at the end of the forward sweep, not at the call."""
    x = np.array([0.3, -0.7, 1.1])
    g = array_calls.call_then_overwrite_g(x)
    np.testing.assert_allclose(g, [math.cos(0.3), math.cos(-0.7) + 1.0, math.cos(1.1)],
                               rtol=1e-14)


def test_call_argument_overwritten_in_a_loop(array_calls):
    """Regression (found by this file, fixed in 4dd43c0): as above, in a loop (p = sn(p))."""
    x = np.array([0.3, -0.7, 1.1])
    for steps in (1, 3):
        g = array_calls.iterate_calls_g(x, steps)
        check_fd(lambda x: array_calls.iterate_calls(x, steps), g, [x], 0)


def test_reverse_reads_view_of_freed_call_result(array_calls):
    """Regression (found by this file, fixed in 4dd43c0): the reverse sweep read a 2-D call result through a memref.collapse view after the forward sweep had freed it."""
    r = rng(15)
    pos, vel, dt, w = r.normal(size=(4, 3)), r.normal(size=(4, 3)), 0.3, r.normal(size=(4, 3))
    for _ in range(3):
        g = array_calls.call_result_2d_vjp(pos, vel, dt, w)[1]
        assert g == pytest.approx(np.sum(pos * pos * w), rel=1e-13)


# ----------------------------------------------------------------------------- loop inits
INIT_SRC = r"""
fn for_init(c: f64) -> f64 { var s = c; for i in 0..3 { s = s + c; } return s; }
fn for_init_g = grad(for_init);
fn while_init(c: f64) -> f64 { var s = c; var k = 0; while k < 3 { s = s + c; k += 1; } return s; }
fn while_init_g = grad(while_init);
fn scaled_init(c: f64) -> f64 { var s = 2.0 * c; for i in 0..3 { s = s + c; } return s; }
fn scaled_init_g = grad(scaled_init);
"""


def test_loop_init_distinct_from_the_outer_scalar():
    m = dad.compile(INIT_SRC, filename="init.dad")
    assert m.scaled_init_g(0.4) == 5.0


def test_loop_init_that_is_also_used_inside_the_loop():
    m = dad.compile(INIT_SRC, filename="init.dad")
    assert m.for_init_g(0.4) == 4.0
    assert m.while_init_g(0.4) == 4.0
