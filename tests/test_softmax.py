"""softmax and log_softmax, along the last axis or `axis=` (LANGUAGE.md, additions of
December 2026): stable for every input, in every mode. Values against a NumPy reference
(shifted by the maximum); the cross-entropy gradient p·sum(y) - y and Hessian
sum(y)(diag(p) - p pᵀ) analytically."""
from __future__ import annotations

import numpy as np
import pytest

import dad

SRC = """
fn sm(x: f64[n]) -> f64[n] { return softmax(x); }
fn lsm(A: f64[n, m]) -> f64[n, m] { return log_softmax(A); }
fn sm0(A: f64[n, m]) -> f64[n, m] { return softmax(A, axis=0); }
fn xent(z: f64[n], y: f64[n]) -> f64 { return -sum(y * log_softmax(z)); }
fn xg = grad(xent, wrt=z);
fn xj = jvp(xent, wrt=z);
fn xh = hessian(xent, wrt=z);
"""


def np_softmax(v, axis=-1):
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.fixture(scope="module")
def m():
    return dad.compile(SRC, filename="sm.dad")


def test_values_and_stability(m):
    x = np.array([1.0, 2.0, 3.0, 1000.0, -1000.0])
    assert np.allclose(m.sm(x), np_softmax(x), rtol=1e-15, atol=0.0)
    A = np.random.default_rng(0).standard_normal((2, 3)) * 50
    assert np.allclose(m.lsm(A), A - A.max(1, keepdims=True)
                       - np.log(np.exp(A - A.max(1, keepdims=True)).sum(1, keepdims=True)), rtol=1e-14)
    assert np.allclose(m.sm0(A), np_softmax(A, 0), rtol=1e-14, atol=1e-300)
    assert np.all(np.isfinite(m.lsm(A)))


def test_cross_entropy_derivatives(m):
    z, y = np.array([0.5, -1.0, 2.0]), np.array([0.2, 0.3, 0.5])
    p = np_softmax(z)
    g = m.xg(z, y)
    assert np.allclose(g, p * y.sum() - y, rtol=1e-14, atol=1e-16)
    t = np.array([1.0, -2.0, 0.5])
    assert m.xj(z, y, t)[1] == pytest.approx(g @ t, rel=1e-14)
    assert np.allclose(m.xh(z, y), y.sum() * (np.diag(p) - np.outer(p, p)), rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("call, arg", [("softmax(x)", "f64[n]"), ("log_softmax(x, axis=1)", "f64[n, m]"),
                                       ("logsumexp(x)", "f64[n]")])
def test_an_empty_line_is_an_error_naming_the_call_written(call, arg):
    """softmax is computed through logsumexp, but its error names softmax, at its call."""
    ret = "f64" if call.startswith("logsumexp") else arg
    m = dad.compile(f"fn f(x: {arg}) -> {ret} {{\n    return {call};\n}}\n")
    shape = (0,) if arg == "f64[n]" else (2, 0)
    with pytest.raises(ValueError, match=rf"^<string>:2:12: {call.split('(')[0]}\(\) of an empty array"):
        m.f(np.zeros(shape))
