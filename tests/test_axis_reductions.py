"""Reductions along an axis: sum prod max min logsumexp mean with `axis=` (LANGUAGE.md,
additions of December 2026), any rank, negative axes counting from the end, in every mode.
Values against NumPy; derivatives against central differences (smooth functions of O(1)
inputs: h = 1e-6, truncation ~1e-12, rounding ~1e-10), the dot-product test between forward and
reverse mode, and the tie rule (max along an axis splits a tie evenly)."""
from __future__ import annotations

import numpy as np
import pytest

import dad
from dad.frontend import CompileError

SRC = """
fn s0(A: f64[n, m]) -> f64[m] { return sum(A, axis=0); }
fn s1(A: f64[n, m]) -> f64[n] { return sum(A, axis=-1); }
fn mx(A: f64[n, m]) -> f64[m] { return max(A, axis=0); }
fn mn(A: f64[n, m]) -> f64[n] { return min(A, axis=1); }
fn lse(A: f64[n, m]) -> f64[n] { return logsumexp(A, axis=1); }
fn me(T: f64[a, b, c]) -> f64[a, c] { return mean(T, axis=1); }
fn pr(A: i64[n, m]) -> i64[m] { return prod(A, axis=0); }
fn v0(x: f64[n]) -> f64 { return sum(x, axis=0); }
fn loss(A: f64[n, m]) -> f64 { return sum(logsumexp(A, axis=1)) + sum(max(A, axis=0) * mean(A, axis=0)) + sum(prod(A, axis=1)); }
fn lg = grad(loss);
fn lj = jvp(loss);
fn col_max(A: f64[n, m]) -> f64 { return sum(max(A, axis=0)); }
fn cg = grad(col_max);
"""


def np_lse(A, axis):
    mx = A.max(axis=axis, keepdims=True)
    return (mx + np.log(np.exp(A - mx).sum(axis=axis, keepdims=True))).squeeze(axis)


@pytest.fixture(scope="module")
def m():
    return dad.compile(SRC, filename="ax.dad")


def test_values_against_numpy(m):
    rng = np.random.default_rng(0)
    A, T = rng.standard_normal((3, 4)), rng.standard_normal((2, 3, 4))
    close = dict(rtol=1e-14, atol=1e-14)
    assert np.allclose(m.s0(A), A.sum(0), **close) and np.allclose(m.s1(A), A.sum(1), **close)
    assert m.mx(A).tolist() == A.max(0).tolist() and m.mn(A).tolist() == A.min(1).tolist()
    assert np.allclose(m.lse(A), np_lse(A, 1), **close)
    assert np.allclose(m.me(T), T.mean(1), **close)
    assert m.pr(np.array([[1, 2], [3, 4]])).tolist() == [3, 8]
    assert m.v0(A[0]) == pytest.approx(A[0].sum(), rel=1e-15)


def test_derivatives(m):
    rng = np.random.default_rng(3)
    A = rng.uniform(0.2, 1.0, (3, 4))
    g = m.lg(A)
    h = 1e-6
    fd = np.zeros_like(A)
    for idx in np.ndindex(*A.shape):
        E = np.zeros_like(A)
        E[idx] = h
        fd[idx] = (m.loss(A + E) - m.loss(A - E)) / (2 * h)
    assert np.allclose(g, fd, rtol=1e-7, atol=1e-8)
    V = rng.standard_normal(A.shape)
    value, jv = m.lj(A, V)
    assert value == m.loss(A) and abs(jv - np.sum(g * V)) <= 1e-12 * np.sum(np.abs(g * V))


def test_ties_along_an_axis_split_evenly(m):
    A = np.array([[1.0, 5.0], [1.0, 2.0], [0.0, 5.0]])     # column 0: a tie of two; column 1 too
    assert m.cg(A).tolist() == [[0.5, 0.5], [0.5, 0.0], [0.0, 0.5]]


@pytest.mark.parametrize("src,message", [
    ("fn f(A: f64[n, m]) -> f64[n] { return sum(A, axis=2); }", "axis 2 is out of range"),
    ("fn f(A: f64[n, m], k: i64) -> f64[n] { return sum(A, axis=k); }", "must be an integer literal"),
    ("fn f(A: f64[n, m]) -> f64 { return norm(A, axis=0); }", "no keyword argument 'axis'"),
    ("fn f(x: f64[n]) -> f64[n] { return max(x, x, axis=0); }", "'axis' goes with one array"),
    ("fn f(A: f64[n, m]) -> f64 { return sum(A, axis=0); }", "f64[m]"),
])
def test_errors(src, message):
    with pytest.raises(CompileError) as err:
        dad.compile(src, filename="bad.dad")
    assert message in str(err.value) and "bad.dad:1:" in str(err.value)


def test_max_along_an_empty_axis_is_a_value_error(m):
    with pytest.raises(ValueError) as err:
        m.mx(np.zeros((0, 3)))
    assert "ax.dad:4:" in str(err.value) and "max() of an empty array" in str(err.value)
