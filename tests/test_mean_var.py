"""mean(x) and var(x) (population variance), any rank, in every mode: values against NumPy,
derivatives against the analytic gradient and Hessian."""
from __future__ import annotations

import numpy as np
import pytest

import dad

SRC = """
fn mv(x: f64[n]) -> (f64, f64) { return (mean(x), var(x)); }
fn mA(A: f64[n, k]) -> f64 { return mean(A) + var(A); }
fn s(x: f64[n]) -> f64 { return var(x) * 2.0 + mean(x * x); }
fn sg = grad(s);
fn sj = jvp(s);
fn sh = hessian(s);
fn m32(x: f32[n]) -> (f32, f32) { return (mean(x), var(x)); }
fn stable(x: f64[n]) -> f64 { return var(x + 1e9); }
"""


@pytest.fixture(scope="module")
def m():
    return dad.compile(SRC, filename="mv.dad")


def test_values(m):
    rng = np.random.default_rng(0)
    x, A = rng.standard_normal(7), rng.standard_normal((2, 3))
    mu, v = m.mv(x)
    assert mu == pytest.approx(x.mean(), rel=1e-15) and v == pytest.approx(x.var(), rel=1e-14)
    assert m.mA(A) == pytest.approx(A.mean() + A.var(), rel=1e-14)
    a, b = m.m32(x.astype(np.float32))
    assert a.dtype == np.float32 and b == pytest.approx(np.var(x.astype(np.float32)), rel=1e-6)
    # two passes: the variance of values near 1e9 keeps its digits (one pass loses all)
    assert m.stable(x) == pytest.approx(x.var(), rel=1e-6)
    mu, v = m.mv(np.zeros(0))
    assert np.isnan(mu) and np.isnan(v)


def test_derivatives(m):
    x = np.random.default_rng(1).standard_normal(6)
    n = len(x)
    g = 4 * (x - x.mean()) / n + 2 * x / n              # d/dx of 2 var + mean(x²)
    assert m.sg(x) == pytest.approx(g, rel=1e-13, abs=1e-16)
    t = np.linspace(-1.0, 1.0, n)
    value, jv = m.sj(x, t)
    assert value == m.s(x) and jv == pytest.approx(g @ t, rel=1e-13, abs=1e-15)
    H = 4 * (np.eye(n) - 1.0 / n) / n + 2 * np.eye(n) / n
    assert m.sh(x) == pytest.approx(H, rel=1e-13, abs=1e-15)


def test_a_files_own_function_named_like_a_new_builtin_is_called():
    """Programs written before the additions of December 2026 may define mean, relu,
    softmax, ...: their own function is called (an old builtin still cannot be redefined)."""
    m = dad.compile("""
fn mean(x: f64[n]) -> f64 { return x[0]; }
fn relu(x: f64) -> f64 { return 7.0; }
fn f(x: f64[n]) -> f64 { return mean(x) + relu(x[1]) + max(x); }
fn fg = grad(f);
""", filename="own.dad")
    x = np.array([1.0, 2.0, 3.0])
    assert m.f(x) == 1.0 + 7.0 + 3.0 and m.fg(x).tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(dad.CompileError) as err:
        dad.compile("fn sum(x: f64[n]) -> f64 { return 0.0; }", filename="old.dad")
    assert "'sum' is a builtin function and cannot be redefined" in str(err.value)
