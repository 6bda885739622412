"""The examples written with the language's new forms (examples/logreg.dad, rk4.dad, mlp.dad),
used as a user would: a logistic regression fitted by SciPy from zeros, the gradient of an RK4
integrator, an MLP's Hessian-vector product over all its parameters. Oracles: NumPy
implementations of the same formulas, analytic derivatives, central differences (smooth,
O(1): h = 1e-6, tolerance 1e-6 relative)."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import dad

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_logistic_regression_fitted_by_scipy_from_zeros():
    optimize = pytest.importorskip("scipy.optimize")
    m = dad.compile_file(str(EXAMPLES / "logreg.dad"))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X @ [1.5, -2.0, 0.5] + 0.3 * rng.normal(size=200) > 0).astype(float)
    lam, w0 = 1e-3, np.zeros(3)
    # at zeros every z is 0, the kink of the stable softplus: the derivative there is 0.5
    value, g = m.nll_vg(w0, X, y, lam)
    assert value == pytest.approx(np.log(2.0), rel=1e-15)
    assert np.allclose(g, X.T @ (0.5 - y) / len(y), rtol=1e-13, atol=1e-16)
    res = optimize.minimize(lambda w: m.nll_vg(w, X, y, lam), w0, jac=True, method="BFGS")
    assert res.success, res.message
    assert res.nit > 3 and np.linalg.norm(res.jac) < 1e-5
    w = res.x
    z = X @ w
    assert res.fun == pytest.approx(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * lam * w @ w, rel=1e-12)
    assert np.corrcoef(w, [1.5, -2.0, 0.5])[0, 1] > 0.95
    v = rng.normal(size=3)
    s = sigmoid(z)
    H = X.T @ (X * (s * (1 - s))[:, None]) / len(y) + lam * np.eye(3)
    assert np.allclose(m.nll_hvp(w, X, y, lam, v), H @ v, rtol=1e-10)


def rk4_numpy(y0, a, b, h, steps):
    def rhs(y):
        return np.array([y[1], -a * y[0] - b * y[1]])
    y = np.array(y0, dtype=float)
    for _ in range(steps):
        k1 = rhs(y)
        k2 = rhs(y + 0.5 * h * k1)
        k3 = rhs(y + 0.5 * h * k2)
        k4 = rhs(y + h * k3)
        y = y + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return y[0]


def test_rk4_on_a_small_array_state_and_its_gradient():
    m = dad.compile_file(str(EXAMPLES / "rk4.dad"))
    y0, a, b, h, steps = np.array([1.0, 0.0]), 1.3, 0.2, 0.01, 500
    assert m.rk4(y0, a, b, h, steps) == pytest.approx(rk4_numpy(y0, a, b, h, steps), rel=1e-13)
    gy, ga, gb = m.rk4_grad(y0, a, b, h, steps)
    eps = 1e-6
    fd_y = [(rk4_numpy(y0 + eps * e, a, b, h, steps) - rk4_numpy(y0 - eps * e, a, b, h, steps)) / (2 * eps)
            for e in np.eye(2)]
    fd_a = (rk4_numpy(y0, a + eps, b, h, steps) - rk4_numpy(y0, a - eps, b, h, steps)) / (2 * eps)
    fd_b = (rk4_numpy(y0, a, b + eps, h, steps) - rk4_numpy(y0, a, b - eps, h, steps)) / (2 * eps)
    assert np.allclose(gy, fd_y, rtol=1e-6, atol=1e-9)
    assert ga == pytest.approx(fd_a, rel=1e-6, abs=1e-9) and gb == pytest.approx(fd_b, rel=1e-6, abs=1e-9)
    # linear in y0: the gradient with respect to y0 is exact, y(T) = gy . y0
    assert m.rk4(y0 * 3.0, a, b, h, steps) == pytest.approx(3.0 * (gy @ y0), rel=1e-12)


def test_mlp_hessian_vector_product_over_all_parameters():
    m = dad.compile_file(str(EXAMPLES / "mlp.dad"))
    rng = np.random.default_rng(1)
    P = [rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=(2, 4)), rng.normal(size=2)]
    X, Y = rng.normal(size=(6, 3)), np.eye(2)[rng.integers(0, 2, 6)]
    V = [rng.normal(size=p.shape) for p in P]
    hv = m.mlp_hvp(*P, X, Y, *V)
    eps = 1e-6
    plus = m.mlp_grad(*[p + eps * v for p, v in zip(P, V)], X, Y)
    minus = m.mlp_grad(*[p - eps * v for p, v in zip(P, V)], X, Y)
    for got, gp, gm in zip(hv, plus, minus):
        assert np.allclose(got, (gp - gm) / (2 * eps), rtol=1e-6, atol=1e-8)
    # the loss itself against NumPy
    W1, b1, W2, b2 = P
    Z = np.logaddexp(0.0, X @ W1.T + b1) @ W2.T + b2
    logp = Z - np.logaddexp.reduce(Z, axis=1, keepdims=True)
    want = -np.sum(Y * logp) / len(X) + 0.001 * (np.sum(W1 * W1) + np.sum(W2 * W2))
    assert m.mlp_loss(*P, X, Y) == pytest.approx(want, rel=1e-13)
