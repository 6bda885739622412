"""Second and higher order on generated and hand-written `.dad` programs.

`tests/test_higher_order.py` covers Rosenbrock, one fixed loop program and `exp(sin(x))`;
this file goes wider:

1. Hypothesis-generated programs `f(x: f64[n], c: f64) -> f64`
   (`generators.second_order_programs`) with `for` loops (nested up to three deep,
   `step 2`), `while` loops whose trip count depends on the data, `if`/`else` (also inside
   loops), `break`, early `return`s, a local array updated in place, and calls of helpers
   (one with a branch and early return, one with a loop and `break`, one with its own local
   array and a `while`). Each program is checked for
   - `hvp` (forward over reverse) against central differences of the gradient along `v`;
   - `hvp` forward-over-reverse against reverse-over-forward (`derive_kernel(route=...)`);
   - `hessian` symmetric and `hessian @ v == hvp(v)`.
   (Compile time, ~1-4 s a program with its Hessian, limits the number of examples.)
2. Third order on scalar functions with analytic derivatives (`x**3 sin x`, `log1p(x²)`,
   `sigmoid`): `grad(grad(grad(f)))`, `jvp(grad(grad(f)))`; `jacobian(grad(f)) == hessian(f)`
   on a loop program; `grad` of a function that calls `hvp` of another (also in a loop).
3. Custom rules at second order: `hvp` and `hessian` through a function that calls a
   custom-vjp function in a loop, directly and through a helper call; a rule that differs
   from its implementation shows that forward over reverse differentiates the rule.
4. Bugs found once, kept fixed: the zero guard of the derivative rules dropped higher-order
   terms where a first-order derivative is exactly 0; forward over reverse of a function that
   calls a Hessian was wrong (and could crash).

Tolerances are argued next to each assertion.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import dad
from dad.runtime.transforms import derive_kernel
from generators import difference, second_order_programs

N = 4  # length of the array parameter (the Hessian is N x N)


def fd_hvp(g, x, v, h=1e-3):
    """Central differences D(h) of the gradient `g` along `v`, Richardson-extrapolated twice:
    R1 = (4 D(h/2) - D(h)) / 3 and R2 = (4 D(h/4) - D(h/2)) / 3 have errors O(h^4 g^(5)), so
    |R1 - R2| is about 15 times the truncation error of R2. Returns (R2, |R1 - R2|). A
    branch or trip count that changes within `x ± h v` (the difference quotient then spans
    two programs) shows up as a large |R1 - R2|. Rounding: eps |g| / (h/4) ~ 1e-12 |g|,
    times a few hundred operations' worth of error in g."""
    d = [difference(g, x, v, h / 2**k) for k in range(3)]
    r1, r2 = (4 * d[1] - d[0]) / 3, (4 * d[2] - d[1]) / 3
    return r2, np.abs(r1 - r2)


# No shrinking: each example compiles for seconds, so shrinking a failure takes many
# minutes; the assertion messages print the whole failing program instead.
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=12, **SETTINGS)
@given(second_order_programs(N), st.integers(0, 2**31 - 1))
def test_random_programs_hvp_against_differences_and_other_route(src, seed):
    m = dad.compile(src + "fn f_grad = grad(f, wrt=x);\nfn f_hvp = hvp(f, wrt=x);\n",
                    filename="gen.dad")
    rof = derive_kernel(m.f, "hvp", wrt="x", route="reverse-over-forward")
    rng = np.random.default_rng(seed)
    checked_fd = 0
    for _ in range(3):
        x, c = rng.uniform(-1.2, 1.2, N), float(rng.uniform(-1.2, 1.2))
        v = rng.normal(size=N)
        assert np.isfinite(m.f(x, c)), src
        hv = m.f_hvp(x, c, v)
        # |H| |v| bounds every term of H v: the size of what both routes compute (H from the
        # other route's columns would do as well; central differences of the gradient along
        # each axis give it to ~1e-6, plenty for a scale)
        Habs = np.abs(np.array([difference(lambda y: m.f_grad(y, c), x, e, 1e-5)
                                for e in np.eye(N)]))
        size = float(np.max(Habs @ np.abs(v))) + 1e-300
        # forward over reverse vs reverse over forward: the same bilinear form of the executed
        # program in two operation orders, a few hundred roundings each (observed <= 1e-15
        # relative); a missing or misplaced second-order term is O(1) relative
        np.testing.assert_allclose(rof(x, c, v), hv, rtol=0, atol=1e-12 * size, err_msg=src)

        g = m.f_grad(x, c)
        ref, err = fd_hvp(lambda y: m.f_grad(y, c), x, v)
        scale = 1.0 + float(np.max(np.abs(g))) + float(np.max(np.abs(hv)))
        if np.max(err) > 1e-5 * scale:  # a kink within x ± h v: differences don't converge
            continue
        checked_fd += 1
        # |R1 - R2| is ~15x R2's truncation error; 1e-9 scale covers the rounding of the
        # differences with ~10x headroom. A dropped or misplaced term is >= 1e-3 relative.
        np.testing.assert_array_less(np.abs(hv - ref), 1e-9 * scale + err,
                                     err_msg=f"hvp {hv} vs differences {ref}\n{src}")
    assert checked_fd >= 1, "every point was at a kink: the generator's values are too rough"


@settings(max_examples=8, **SETTINGS)
@given(second_order_programs(N), st.integers(0, 2**31 - 1))
def test_random_programs_hessian_symmetric_and_consistent_with_hvp(src, seed):
    m = dad.compile(src + "fn f_hvp = hvp(f, wrt=x);\nfn f_hess = hessian(f, wrt=x);\n",
                    filename="gen.dad")
    rng = np.random.default_rng(seed)
    for _ in range(3):
        x, c = rng.uniform(-1.2, 1.2, N), float(rng.uniform(-1.2, 1.2))
        v = rng.normal(size=N)
        H = m.f_hess(x, c)
        assert np.all(np.isfinite(H)), src
        # symmetric up to rounding: H[i, j] and H[j, i] come from different tangent sweeps
        # (observed <= 1e-15 max|H|; a missing cross term is O(1) relative)
        np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-12 * np.max(np.abs(H)), err_msg=src)
        # H v from the Hessian's columns vs one tangent sweep along v: the tangent sweep is
        # linear in the seed, so equal up to the rounding of the combination (observed
        # <= 5e-16 of max(|H| |v|))
        size = float(np.max(np.abs(H) @ np.abs(v))) + 1e-300
        np.testing.assert_allclose(H @ v, m.f_hvp(x, c, v), rtol=0, atol=1e-12 * size,
                                   err_msg=src)


# ------------------------------------------------------------------------------ third order
THIRD = r"""
fn p(x: f64) -> f64 { return x ** 3 * sin(x); }
fn r(x: f64) -> f64 { return log1p(x * x); }
fn sg(x: f64) -> f64 { return sigmoid(x); }
fn p3 = grad(grad(grad(p)));
fn r3 = grad(grad(grad(r)));
fn sg3 = grad(grad(grad(sg)));
fn p_j2 = jvp(grad(grad(p)));
fn r_j2 = jvp(grad(grad(r)));
fn sg_j2 = jvp(grad(grad(sg)));

# a coupled loop function; its Hessian two ways, and functions of its hvp
fn e(x: f64[n]) -> f64 {
    var s = 0.0;
    var a = copy(x);
    for k in 0..3 {
        for i in 0..n {
            a[i] = a[i] + 0.3 * sin(a[(i + 1) % n] * a[i]) + 0.1 * s;
            s = 0.8 * s + 0.2 * tanh(a[i]);
        }
    }
    var w = 1.0 + 0.5 * tanh(s);
    while w > 0.1 { w = w * (0.5 + 0.3 * sigmoid(a[0])); s += 0.1 * w * a[1]; }
    return s + 0.1 * dot(a, a);
}
fn e_hess = hessian(e, wrt=x);
fn e_jg = jacobian(grad(e, wrt=x), wrt=x);
fn e_hvp = hvp(e, wrt=x);
fn q(x: f64[n], v: f64[n]) -> f64 {
    let hv = e_hvp(x, v);
    return dot(hv, hv);
}
fn q_gx = grad(q, wrt=x);
fn q_gv = grad(q, wrt=v);
# hvp called in a loop (a few damped Newton-like steps), then differentiated
fn steps(x: f64[n], v: f64[n]) -> f64 {
    var y = copy(x);
    for k in 0..3 {
        y = y - 0.05 * e_hvp(y, v);
    }
    return e(y);
}
fn steps_g = grad(steps, wrt=x);
"""


@pytest.fixture(scope="module")
def third():
    return dad.compile(THIRD, filename="third.dad")


def _p(x):
    s, c = math.sin(x), math.cos(x)
    return (6 * x * s + 6 * x * x * c - x ** 3 * s,
            6 * s + 18 * x * c - 9 * x * x * s - x ** 3 * c)


def _r(x):
    return 2 * (1 - x * x) / (1 + x * x) ** 2, 4 * x * (x * x - 3) / (1 + x * x) ** 3


def _sg(x):
    s = 1 / (1 + math.exp(-x))
    return s * (1 - s) * (1 - 2 * s), s * (1 - s) * (1 - 6 * s + 6 * s * s)


@pytest.mark.parametrize("name, exact", [("p", _p), ("r", _r), ("sg", _sg)])
@pytest.mark.parametrize("t", [-2.5, -0.3, 0.0, 0.7, 3.1])
def test_third_derivatives_against_closed_forms(third, name, exact, t):
    d2, d3 = exact(t)
    # the derivative programs evaluate a handful of terms: a few ulp of the largest term,
    # ~|x|^3 for p at |x| = 3 (rel 1e-12, abs 1e-12 for the zeros at 0)
    assert getattr(third, name + "3")(t) == pytest.approx(d3, rel=1e-12, abs=1e-12)
    got2, got3 = getattr(third, name + "_j2")(t, 1.0)
    assert got2 == pytest.approx(d2, rel=1e-12, abs=1e-12)
    assert got3 == pytest.approx(d3, rel=1e-12, abs=1e-12)
    # jvp is linear in the tangent: seeding 2.5 scales the third derivative by 2.5 (the
    # tangent passes through a few roundings more)
    assert getattr(third, name + "_j2")(t, 2.5)[1] == pytest.approx(2.5 * got3, rel=1e-13,
                                                                     abs=1e-300)


def test_jacobian_of_grad_is_the_hessian_and_grad_through_hvp(third):
    rng = np.random.default_rng(7)
    x, v = rng.uniform(-1, 1, 5), rng.normal(size=5)
    H = third.e_hess(x)
    # jacobian(grad(e)) is the same forward vector sweeps over the same gradient program
    np.testing.assert_array_equal(third.e_jg(x), H)
    # d/dv |H v|^2 = 2 H^T H v: exact, except rounding (a product of two Hessians, entries ~1)
    np.testing.assert_allclose(third.q_gv(x, v), 2 * H.T @ (H @ v), rtol=1e-12, atol=1e-12)
    # d/dx |H(x) v|^2 is a third derivative; against Richardson differences of q itself
    # (q is a smooth second-derivative program: error estimate as in fd_hvp)
    gx = third.q_gx(x, v)
    for j, ej in enumerate(np.eye(5)):
        ref, err = fd_hvp(lambda y: np.array([third.q(y, v)]), x, ej)
        assert abs(gx[j] - ref[0]) <= 1e-9 * (1 + abs(gx[j])) + err[0], (j, gx[j], ref[0])
    # hvp inside a loop, differentiated: third order through loop-carried arrays
    gs = third.steps_g(x, v)
    for j, ej in enumerate(np.eye(5)):
        ref, err = fd_hvp(lambda y: np.array([third.steps(y, v)]), x, ej)
        assert abs(gs[j] - ref[0]) <= 1e-9 * (1 + abs(gs[j])) + err[0], (j, gs[j], ref[0])


# --------------------------------------------------------------- custom rules at second order
CUSTOM = r"""
# softplus with a stable value-and-adjoint rule (the exact derivative)
fn sp_impl(u: f64) -> f64 { return log1p(exp(u)); }
fn sp_vjp(u: f64, out_bar: f64) -> (f64, f64) {
    return (max(u, 0.0) + log1p(exp(-abs(u))), out_bar * sigmoid(u));
}
fn sp = custom(sp_impl, vjp=sp_vjp);

# a rule that is deliberately NOT the implementation's derivative: reverse mode must use it,
# and forward over reverse must differentiate it (d/du cos(u) = -sin(u))
fn odd_impl(u: f64) -> f64 { return u * u * u; }
fn odd_vjp(u: f64, out_bar: f64) -> (f64, f64) { return (u * u * u, out_bar * cos(u)); }
fn odd = custom(odd_impl, vjp=odd_vjp);

fn body(x: f64[n], c: f64, use_rule: bool) -> f64 {
    var s = 0.0;
    var a = copy(x);
    for k in 0..3 {
        for i in 0..n {
            let z = a[(i + 1) % n] * c + s;
            if use_rule { a[i] = 0.5 * a[i] + 0.3 * sp(z); } else { a[i] = 0.5 * a[i] + 0.3 * sp_impl(z); }
            s = 0.7 * s + 0.1 * a[i] * a[i];
        }
    }
    return s + dot(a, a);
}
fn top(x: f64[n], c: f64, use_rule: bool) -> f64 {
    return body(x, c, use_rule) * 0.5 + body(x * 0.5, c, use_rule) + sp(x[0]);
}
fn top_hvp = hvp(top, wrt=x);
fn top_grad = grad(top, wrt=x);
fn top_hess = hessian(top, wrt=x);

fn wsum(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n { s += float(i + 1) * odd(x[i]); }
    return s;
}
fn calls_wsum(x: f64[n]) -> f64 { return 2.0 * wsum(x); }
fn odd_hvp = hvp(calls_wsum, wrt=x);
fn odd_grad = grad(calls_wsum, wrt=x);
"""


@pytest.fixture(scope="module")
def cust():
    return dad.compile(CUSTOM, filename="custom2.dad")


def test_hvp_through_custom_vjp_in_loops_and_calls(cust):
    rng = np.random.default_rng(11)
    x, v, c = rng.uniform(-1, 1, 5), rng.normal(size=5), 0.8
    with_rule = cust.top_hvp(x, c, True, v)
    without = cust.top_hvp(x, c, False, v)
    H = cust.top_hess(x, c, True)
    size = float(np.max(np.abs(H) @ np.abs(v)))
    # the rule is the exact derivative, so forward over the rule (sigmoid') and forward over
    # the implementation's adjoint (exp / (1 + exp)) differ only by rounding in sp'' (a few ulp)
    np.testing.assert_allclose(with_rule, without, rtol=0, atol=1e-12 * size)
    np.testing.assert_allclose(H @ v, with_rule, rtol=0, atol=1e-12 * size)
    np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-12 * np.max(np.abs(H)))
    # and against differences of the (rule-based) gradient, as in the generated programs
    ref, err = fd_hvp(lambda y: cust.top_grad(y, c, True), x, v)
    assert np.all(np.abs(with_rule - ref) <= 1e-9 * (1 + np.max(np.abs(ref))) + err)
    # reverse over forward: no jvp rule, so forward mode differentiates sp_impl; the same H v
    rof = derive_kernel(cust.top, "hvp", wrt="x", route="reverse-over-forward")
    np.testing.assert_allclose(rof(x, c, True, v), with_rule, rtol=0, atol=1e-12 * size)


def test_hvp_differentiates_the_custom_rule_not_the_implementation(cust):
    rng = np.random.default_rng(12)
    x, v = rng.uniform(-2, 2, 4), rng.normal(size=4)
    w = 2.0 * np.arange(1, 5)
    # gradient by the rule: w * cos(x) (the implementation would give 3 w x^2)
    np.testing.assert_allclose(cust.odd_grad(x), w * np.cos(x), rtol=1e-15, atol=0)
    # forward over reverse differentiates the rule: diag(-w sin x) v, a few roundings
    np.testing.assert_allclose(cust.odd_hvp(x, v), -w * np.sin(x) * v, rtol=1e-14, atol=1e-15)


# ------------------------------------------------------------------- bugs found once (regressions)
def test_second_and_third_order_at_points_where_a_first_derivative_is_exactly_zero():
    m = dad.compile("""
fn g(x: f64[n]) -> f64 { return x[0] * x[0] * x[1]; }
fn g_hess = hessian(g, wrt=x);
fn g_hvp = hvp(g, wrt=x);
fn e(x: f64[n]) -> f64 { return exp(x[0]) * x[1]; }
fn e_hvp = hvp(e, wrt=x);
fn cube(x: f64) -> f64 { return x * x * x; }
fn cube3 = grad(grad(grad(cube)));
""", filename="zero_guard.dad")
    x = np.array([0.5, 0.0])
    # d2/dx0 dx1 (x0^2 x1) = 2 x0 = 1
    np.testing.assert_array_equal(m.g_hess(x), [[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(m.g_hvp(x, np.array([0.0, 1.0])), [1.0, 0.0])
    assert m.e_hvp(np.array([0.3, 0.0]), np.array([0.0, 1.0]))[0] == pytest.approx(math.exp(0.3))
    assert m.cube3(0.0) == 6.0


_FOR_OVER_CALLED_HESSIAN = r"""
import sys, numpy as np, dad
m = dad.compile('''
fn f(x: f64[n]) -> f64 { var s = 0.0; for i in 0..n { s += exp(x[i]); } return s; }
fn h = hessian(f, wrt=x);
fn t(x: f64[n]) -> f64 { let H = h(x); return H[0, 0]; }
fn t_hvp = hvp(t, wrt=x);
''')
x = np.array([0.4, 0.7, 1.1])
got = m.t_hvp(x, np.ones(3))   # t = exp(x0): H_t v = [exp(x0), 0, 0]
ok = np.allclose(got, [np.exp(0.4), 0.0, 0.0], rtol=1e-14, atol=0)
print(repr(got))
sys.exit(0 if ok else 3)
"""


_CRASH_N9 = r"""
import sys, numpy as np, dad
m = dad.compile('''
fn f(x: f64[n]) -> f64 { var s = 0.0; for i in 0..n { s += exp(0.3 * x[i] * x[(i + 1) % n]); } return s; }
fn h = hessian(f, wrt=x);
fn t(x: f64[n]) -> f64 { let H = h(x); var s = 0.0; for i in 0..n { s += H[i, i]; } return s; }
fn t_hvp = hvp(t, wrt=x);
fn t_grad = grad(t, wrt=x);
''')
x = np.linspace(0.4, 1.1, 9)
v = np.ones(9)
got = m.t_hvp(x, v)            # segmentation fault here (exit -11)
ref = (m.t_grad(x + 1e-5 * v) - m.t_grad(x - 1e-5 * v)) / 2e-5
print(repr(got))
sys.exit(0 if np.allclose(got, ref, rtol=1e-6, atol=1e-8) else 3)
"""


@pytest.mark.parametrize("script", [_FOR_OVER_CALLED_HESSIAN, _CRASH_N9], ids=["wrong", "segfault"])
def test_hvp_of_a_function_that_calls_a_hessian(script):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stdout.strip()} {r.stderr[-500:]}"
