"""Second and third order by composition, and custom derivative rules."""
import math
from pathlib import Path

import numpy as np
import pytest

import dad
from dad.runtime.transforms import derive_kernel

ROOT = Path(__file__).resolve().parent.parent

SOURCE = """
fn rosen(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    return s;
}
fn loopy(x: f64[n], m: i64) -> f64 {
    var p = 1.0;
    var s = 0.0;
    for k in 0..m {
        let i = k % n;
        if x[i] > 0.5 { p = p * (1.0 + 0.1 * sin(x[i] * p)); } else { p = p + 0.01 * x[i] * x[i]; }
        s += exp(0.1 * x[i]) * p;
    }
    return s;
}
fn es(x: f64) -> f64 { return exp(sin(x)); }
fn rosen_hvp = hvp(rosen, wrt=x);
fn rosen_hess = hessian(rosen, wrt=x);
fn rosen_jac_grad = jacobian(grad(rosen), wrt=x);
fn loopy_hvp = hvp(loopy, wrt=x);
fn es_1 = grad(es);
fn es_2 = grad(grad(es));
fn es_3 = grad(grad(grad(es)));
fn es_jvp_grad = jvp(grad(es));
fn loopy_grad = grad(loopy, wrt=x);
fn gnorm(x: f64[n], m: i64) -> f64 { let g = loopy_grad(x, m); return dot(g, g); }
fn gnorm_grad = grad(gnorm, wrt=x);
"""


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SOURCE, filename="higher.dad")


def fd_grad(f, x, h):
    """Central differences; callers choose h for their problem (see each comment)."""
    out = []
    for e in np.eye(len(x)):
        out.append((f(x + h * e) - f(x - h * e)) / (2 * h))
    return np.array(out)


def test_hvp_matches_dense_hessian_and_finite_differences(mod):
    rng = np.random.default_rng(0)
    x, v = rng.uniform(-1, 1, 7), rng.normal(size=7)
    H = mod.rosen_hess(x)
    np.testing.assert_allclose(mod.rosen_hvp(x, v), H @ v, rtol=1e-13, atol=1e-10)
    np.testing.assert_array_equal(H, H.T)  # Rosenbrock's Hessian is symmetric, exactly here
    g = dad.grad(mod.rosen)
    # the gradient is a cubic polynomial: central differences are exact up to rounding,
    # eps * |g| / h ~ 1e-16 * 1e3 / 1e-4 = 1e-9
    np.testing.assert_allclose(H, fd_grad(g, x, 1e-4), rtol=1e-7, atol=1e-6)
    np.testing.assert_array_equal(mod.rosen_jac_grad(x), H)


def test_hvp_through_recorded_loops_and_branches(mod):
    rng = np.random.default_rng(1)
    x, v = rng.uniform(0.1, 1.0, 6), rng.normal(size=6)
    g = dad.grad(mod.loopy, wrt="x")
    h = 1e-5
    fd = (g(x + h * v, 40) - g(x - h * v, 40)) / (2 * h)
    # truncation h^2 |g'''| ~ 1e-10 and rounding eps |g| / h ~ 1e-10 at |g| ~ 10
    np.testing.assert_allclose(mod.loopy_hvp(x, 40, v), fd, rtol=1e-7, atol=1e-8)


def test_forward_over_reverse_and_reverse_over_forward_agree(mod):
    rng = np.random.default_rng(2)
    x, v = rng.uniform(0.1, 1.0, 6), rng.normal(size=6)
    for f, args in ((mod.rosen, (x,)), (mod.loopy, (x, 25))):
        fr = derive_kernel(f, "hvp", wrt="x")
        rf = derive_kernel(f, "hvp", wrt="x", route="reverse-over-forward")
        np.testing.assert_allclose(fr(*args, v), rf(*args, v), rtol=1e-12, atol=1e-12)


def _es_derivatives(t):
    s, c, e = math.sin(t), math.cos(t), math.exp(math.sin(t))
    return (c * e, (c * c - s) * e, (c ** 3 - 3 * s * c - c) * e)


@pytest.mark.parametrize("t", [-1.3, 0.0, 0.4, 2.2])
def test_first_second_third_derivatives_of_exp_sin(mod, t):
    d1, d2, d3 = _es_derivatives(t)
    assert mod.es_1(t) == pytest.approx(d1, rel=1e-14, abs=1e-14)
    assert mod.es_2(t) == pytest.approx(d2, rel=1e-13, abs=1e-13)
    assert mod.es_3(t) == pytest.approx(d3, rel=1e-12, abs=1e-12)
    assert mod.es_jvp_grad(t, 1.0) == pytest.approx((d1, d2), rel=1e-13, abs=1e-13)


def test_grad_of_a_function_calling_a_gradient(mod):
    rng = np.random.default_rng(3)
    x = rng.uniform(0.1, 1.0, 5)
    got = mod.gnorm_grad(x, 30)
    # |gnorm| ~ 100: rounding eps * 100 / h = 2e-9 at h = 1e-5; truncation ~1e-10
    np.testing.assert_allclose(got, fd_grad(lambda y: mod.gnorm(y, 30), x, 1e-5), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- custom rules
@pytest.fixture(scope="module")
def custom():
    return dad.compile_file(ROOT / "examples" / "custom_rules.dad")


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def test_custom_vjp_is_used_and_stable(custom):
    z = np.array([1000.0, 1001.0, 999.0])  # exp overflows: only the rule can give this
    onehot = np.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(custom.xent_grad(z, 1), _softmax(z) - onehot, rtol=1e-14, atol=1e-16)


def test_forward_mode_over_a_custom_reverse_rule(custom):
    rng = np.random.default_rng(4)
    z, v = rng.normal(size=5), rng.normal(size=5)
    p = _softmax(z)
    H = np.diag(p) - np.outer(p, p)  # the Hessian of logsumexp
    np.testing.assert_allclose(custom.xent_hvp(z, 2, v), H @ v, rtol=1e-13, atol=1e-15)


def test_custom_jvp_gives_the_implicit_derivative(custom):
    for a in (0.25, 2.0, 1e6):
        r, d = custom.newton_sqrt_d(a, 1.0)
        assert r == pytest.approx(math.sqrt(a), rel=1e-15)
        assert d == pytest.approx(0.5 / math.sqrt(a), rel=1e-15)
    assert custom.hypot_newton_d(3.0, 4.0, 1.0, 0.0) == pytest.approx((5.0, 0.6), rel=1e-15)


def test_reverse_mode_without_a_custom_vjp_differentiates_the_implementation(custom):
    g = dad.grad(custom.newton_sqrt)
    assert g(2.0) == pytest.approx(0.5 / math.sqrt(2.0), rel=1e-12)


@pytest.mark.parametrize("decl, msg", [
    ("fn h = custom(f);", "needs jvp=NAME, vjp=NAME or both"),
    ("fn h = custom(f, vjp=bad);", "must have the signature of vjp(f)"),
    ("fn h = custom(f, jvp=nothere);", "unknown function 'nothere'"),
    ("fn h = custom(f, wrt=x);", "unknown option 'wrt' for 'custom'"),
])
def test_custom_rule_mistakes_are_reported(decl, msg):
    src = ("fn f(x: f64) -> f64 { return x * x; }\n"
           "fn bad(x: f64) -> f64 { return x; }\n" + decl + "\n")
    with pytest.raises(dad.CompileError) as err:
        dad.compile(src, filename="c.dad")
    assert msg in str(err.value)
    assert "c.dad:3:" in str(err.value)
