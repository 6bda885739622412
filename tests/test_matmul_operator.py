"""`a @ b`: matmul, matvec or dot by the operands' ranks (and x @ A = transpose(A) @ x), with
Python's precedence (that of `*`), in every mode. Values against NumPy's `@`, derivatives
against analytic formulas."""
from __future__ import annotations

import numpy as np
import pytest

import dad
from dad.frontend import CompileError

SRC = """
fn mm(A: f64[n, k], B: f64[k, m]) -> f64[n, m] { return A @ B; }
fn mv(A: f64[n, k], x: f64[k]) -> f64[n] { return A @ x + 1.0; }
fn vm(x: f64[n], A: f64[n, k]) -> f64[k] { return x @ A; }
fn d(x: f64[n], y: f64[n]) -> f64 { return 2.0 * x @ y - x @ y * 3.0; }
fn chain(A: f64[n, n], x: f64[n]) -> f64[n] { return A @ A @ x; }
fn loss(A: f64[n, k], x: f64[k]) -> f64 { let r = A @ x; return r @ r; }
fn lg = grad(loss);
fn lj = jvp(loss, wrt=x);
fn lh = hessian(loss, wrt=x);
"""


@pytest.fixture(scope="module")
def m():
    return dad.compile(SRC, filename="at.dad")


def test_values_match_numpy(m):
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    x, y, S = rng.standard_normal(4), rng.standard_normal(3), rng.standard_normal((3, 3))
    assert np.allclose(m.mm(A, B), A @ B, rtol=1e-14, atol=1e-14)
    assert np.allclose(m.mv(A, x), A @ x + 1.0, rtol=1e-14, atol=1e-14)
    assert np.allclose(m.vm(y, A), y @ A, rtol=1e-14, atol=1e-14)
    assert m.d(y, y) == pytest.approx(2.0 * y @ y - (y @ y) * 3.0, rel=1e-14)
    assert np.allclose(m.chain(S, y), S @ S @ y, rtol=1e-13, atol=1e-13)


def test_derivatives_are_analytic(m):
    rng = np.random.default_rng(1)
    A, x, v = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(4)
    gA, gx = m.lg(A, x)
    r = A @ x
    assert np.allclose(gx, 2 * A.T @ r, rtol=1e-13) and np.allclose(gA, 2 * np.outer(r, x), rtol=1e-13)
    value, jv = m.lj(A, x, v)
    assert value == pytest.approx(r @ r, rel=1e-14) and jv == pytest.approx(2 * r @ (A @ v), rel=1e-12)
    assert np.allclose(m.lh(A, x), 2 * A.T @ A, rtol=1e-13)


def test_operands_that_are_not_matrices_or_vectors_are_refused():
    with pytest.raises(CompileError) as err:
        dad.compile("fn f(x: f64, A: f64[n, n]) -> f64 { return sum(x @ A); }", filename="bad.dad")
    text = str(err.value)
    assert "bad.dad:1:" in text and "'@' needs arrays of rank 1 or 2" in text and "found f64" in text
    assert "^" in text


def test_size_mismatch_is_refused_naming_the_sizes(m):
    with pytest.raises(ValueError) as err:
        m.mv(np.ones((2, 3)), np.ones(2))
    assert "'x' has size 2" in str(err.value) and "k = 3" in str(err.value)
    with pytest.raises(ValueError) as err:     # a size known only at run time (a slice)
        dad.compile("fn f(A: f64[n, m], x: f64[k]) -> f64[n] { return A @ x[1..k]; }").f(np.ones((2, 3)), np.ones(3))
    assert "shape mismatch in 'matvec'" in str(err.value) and "the inner sizes are 3 and 2" in str(err.value)


def test_different_size_variables_are_a_compile_time_error():
    """LANGUAGE.md: `matvec(A, x)` with `A: f64[n, m]`, `x: f64[n]` is a compile-time error."""
    with pytest.raises(CompileError) as err:
        dad.compile("fn h(A: f64[n, m], x: f64[n]) -> f64[m] { return A @ x; }", filename="h.dad")
    assert "h.dad:1:50: error: shape mismatch in 'matvec': f64[n, m] and f64[n] (the inner sizes m and n differ)" \
        in str(err.value)
