"""Elementwise comparisons of arrays, `where`, `any`, `all` (LANGUAGE.md, additions of
December 2026), in every mode. Values against NumPy; derivatives against the analytic
derivative of the branch each element takes, and forward against reverse."""
from __future__ import annotations

import numpy as np
import pytest

import dad
from dad.frontend import CompileError

SRC = """
fn relu_mask(x: f64[n]) -> f64[n] { return where(x > 0.0, x, 0.0); }
fn clip(x: f64[n], lo: f64[n]) -> f64[n] { return where(x < lo, lo, x * 2.0); }
fn mask(x: f64[n]) -> bool[n] { return x >= 1; }
fn cmp2(A: f64[n, m], B: f64[n, m]) -> bool[n, m] { return A != B; }
fn cnt(x: f64[n], y: f64[n]) -> i64 { var c = 0; if any(x > y) { c += 1; } if all(x > -10.0) { c += 10; } return c; }
fn loss(x: f64[n], w: f64) -> f64 { return sum(where(x > 0.5, w * x * x, -x)); }
fn lg = grad(loss);
fn lj = jvp(loss);
fn lh = hvp(loss, wrt=x);
fn wmat(A: f64[n, m], c: bool) -> f64[n, m] { return where(c, A, A * 3.0); }
fn ints(k: i64[n]) -> i64[n] { return where(k > 2, k, 0); }
"""


@pytest.fixture(scope="module")
def m():
    return dad.compile(SRC, filename="wc.dad")


def test_values_against_numpy(m):
    rng = np.random.default_rng(2)
    x, lo = rng.standard_normal(9), rng.standard_normal(9)
    assert m.relu_mask(x).tolist() == np.where(x > 0.0, x, 0.0).tolist()
    assert m.clip(x, lo).tolist() == np.where(x < lo, lo, x * 2.0).tolist()
    assert m.mask(x).tolist() == (x >= 1).tolist() and m.mask(x).dtype == np.bool_
    A = rng.standard_normal((3, 4))
    B = A.copy()
    B[1, 2] = 0.0
    assert m.cmp2(A, B).tolist() == (A != B).tolist()
    assert m.cnt(x, x) == 10 and m.cnt(x + 1, x) == 11 and m.cnt(np.array([-20.0]), np.array([0.0])) == 0
    assert m.cnt(np.zeros(0), np.zeros(0)) == 10              # all() of nothing is true, any() false
    assert m.wmat(A, False).tolist() == (A * 3.0).tolist() and m.wmat(A, True).tolist() == A.tolist()
    assert m.ints(np.array([1, 3, 5])).tolist() == [0, 3, 5]


def test_derivatives_follow_the_chosen_branch(m):
    x, w = np.array([-1.0, 0.2, 1.0, 3.0]), 1.5
    taken = x > 0.5
    gx, gw = m.lg(x, w)
    assert gx.tolist() == np.where(taken, 2 * w * x, -1.0).tolist()
    assert gw == float(np.sum(np.where(taken, x * x, 0.0)))
    t = np.array([0.3, -0.2, 1.0, 0.5])
    value, jv = m.lj(x, w, t, 0.7)
    assert value == m.loss(x, w) and jv == pytest.approx(gx @ t + gw * 0.7, rel=1e-15)
    assert m.lh(x, w, t).tolist() == np.where(taken, 2 * w * t, 0.0).tolist()


@pytest.mark.parametrize("src,message", [
    ("fn f(x: f64[n]) -> f64[n] { return where(x, x, 0.0); }", "condition of 'where' must be bool"),
    ("fn f(x: f64[n], b: bool[n]) -> bool[n] { return b == b; }", "of arrays needs numbers"),
    ("fn f(x: f64[n]) -> bool { return any(x); }", "'any' expects a bool array"),
    ("fn f(x: f64[2], y: f64[n, 3]) -> bool[n, 3] { return x < y; }", "broadcasting matches the trailing"),
    ("fn f(x: f64[n]) -> f64 { if x > 0.0 { return 1.0; } return 0.0; }", "bool"),
])
def test_errors(src, message):
    with pytest.raises(CompileError) as err:
        dad.compile(src, filename="bad.dad")
    assert message in str(err.value) and "bad.dad:1:" in str(err.value)


def test_shape_mismatch_at_run_time_names_the_place():
    m = dad.compile("fn f(x: f64[n], y: f64[k]) -> f64[n] { return where(x > y[1..k], x, 0.0); }",
                    filename="r.dad")
    with pytest.raises(ValueError) as err:
        m.f(np.ones(2), np.ones(4))
    assert "r.dad:1:" in str(err.value) and "shape mismatch" in str(err.value)
