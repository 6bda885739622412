"""Broadcasting as NumPy's, on trailing dimensions (LANGUAGE.md, additions of December 2026):
arithmetic, max/min, where and comparisons between arrays of different ranks, in every mode.
Values against NumPy; derivatives against analytic formulas (a dense layer: the bias gradient
is the column sum of the upstream gradient)."""
from __future__ import annotations

import numpy as np
import pytest

import dad
from dad.frontend import CompileError

SRC = """
fn lin(X: f64[n, d], W: f64[h, d], b: f64[h]) -> f64[n, h] { return matmul(X, transpose(W)) + b; }
fn t3(T: f64[a, b, c], M: f64[b, c], v: f64[c]) -> f64[a, b, c] { return T * M - v + 1.0; }
fn left(v: f64[m], A: f64[n, m]) -> f64[n, m] { return v / A; }
fn mx(A: f64[n, m], v: f64[m]) -> f64[n, m] { return max(A, v); }
fn wh(A: f64[n, m], v: f64[m]) -> f64[n, m] { return where(A > v, A, v); }
fn loss(X: f64[n, d], W: f64[h, d], b: f64[h]) -> f64 { return sum(tanh(X @ transpose(W) + b)); }
fn lg = grad(loss);
fn lj = jvp(loss, wrt=b);
fn lh = hvp(loss, wrt=b);
fn lit(A: f64[n, 2]) -> f64[n, 2] { return A * [2.0, 3.0]; }
"""


@pytest.fixture(scope="module")
def m():
    return dad.compile(SRC, filename="bc.dad")


def test_values_against_numpy(m):
    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    T, M, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    A = rng.uniform(1.0, 2.0, (3, 4))
    close = dict(rtol=1e-14, atol=1e-14)
    assert np.allclose(m.lin(X, W, b), X @ W.T + b, **close)
    assert m.t3(T, M, v).tolist() == (T * M - v + 1.0).tolist()
    assert m.left(v, A).tolist() == (v / A).tolist()
    assert m.mx(T[0], v).tolist() == np.maximum(T[0], v).tolist()
    assert m.wh(T[0], v).tolist() == np.where(T[0] > v, T[0], v).tolist()
    assert m.lit(A[:, :2].copy()).tolist() == (A[:, :2] * [2.0, 3.0]).tolist()


def test_derivatives_of_a_dense_layer(m):
    rng = np.random.default_rng(1)
    X, W, b = rng.standard_normal((5, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    s = 1 - np.tanh(X @ W.T + b) ** 2                       # tanh' at each output
    gX, gW, gb = m.lg(X, W, b)
    assert np.allclose(gb, s.sum(0), rtol=1e-13) and np.allclose(gW, s.T @ X, rtol=1e-13)
    assert np.allclose(gX, s @ W, rtol=1e-13)
    t = np.array([0.5, -1.0])
    assert m.lj(X, W, b, t)[1] == pytest.approx(s.sum(0) @ t, rel=1e-13)
    y = np.tanh(X @ W.T + b)
    assert np.allclose(m.lh(X, W, b, t), (-2 * y * s * t).sum(0), rtol=1e-12)   # tanh'' = -2 y (1 - y²)


@pytest.mark.parametrize("src,message", [
    ("fn f(A: f64[n, 3], v: f64[2]) -> f64[n, 3] { return A + v; }", "broadcasting matches the trailing"),
    ("fn f(A: f64[n, m], v: f64[m]) -> f64 { return dot(A, v); }", "different ranks"),
])
def test_compile_time_errors(src, message):
    with pytest.raises(CompileError) as err:
        dad.compile(src, filename="bad.dad")
    assert message in str(err.value) and "bad.dad:1:" in str(err.value)


def test_sizes_that_do_not_agree_at_run_time_are_named():
    m = dad.compile("fn f(A: f64[n, m], v: f64[k]) -> f64[n, m] { return A + v[1..k]; }", filename="r.dad")
    assert m.f(np.ones((2, 3)), np.arange(4.0)).tolist() == [[2.0, 3.0, 4.0]] * 2
    with pytest.raises(ValueError) as err:
        m.f(np.ones((2, 3)), np.ones(3))
    assert "r.dad:1:" in str(err.value) and "(sizes 3 and 2)" in str(err.value)
    with pytest.raises(CompileError) as err:       # two different size variables
        dad.compile("fn f(A: f64[n, m], v: f64[n]) -> f64[n, m] { return A + v; }", filename="c.dad")
    assert "c.dad:1:" in str(err.value) and "shape mismatch in '+'" in str(err.value)


# ----------------------------------------------------------------------------- generated shapes
from hypothesis import given, settings, strategies as st  # noqa: E402

GEN = """
fn b21(A: f64[a, b], v: f64[b]) -> f64[a, b] { return A * v - v / (1.0 + A * A); }
fn b12(v: f64[b], A: f64[a, b]) -> f64[a, b] { return max(v, A) + where(A > v, v, A); }
fn b32(T: f64[a, b, c], M: f64[b, c]) -> f64[a, b, c] { return T - M * 2.0 + min(M, T); }
fn b31(T: f64[a, b, c], v: f64[c]) -> bool[a, b, c] { return T >= v; }
fn b321(T: f64[a, b, c], M: f64[b, c], v: f64[c]) -> f64[a, b, c] { return T * M + v; }
"""


@pytest.fixture(scope="module")
def gen():
    return dad.compile(GEN, filename="gen.dad")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=3, max_size=3), st.integers(0, 2**32 - 1))
def test_generated_shapes_against_numpy(gen, dims, seed):
    rng = np.random.default_rng(seed)
    a, b, c = dims
    A, v = rng.normal(size=(a, b)), rng.normal(size=b)
    T, M, w = rng.normal(size=(a, b, c)), rng.normal(size=(b, c)), rng.normal(size=c)
    assert gen.b21(A, v).tolist() == (A * v - v / (1.0 + A * A)).tolist()
    assert gen.b12(v, A).tolist() == (np.maximum(v, A) + np.where(A > v, v, A)).tolist()
    assert gen.b32(T, M).tolist() == (T - M * 2.0 + np.minimum(M, T)).tolist()
    assert gen.b31(T, w).tolist() == (T >= w).tolist()
    assert gen.b321(T, M, w).tolist() == (T * M + w).tolist()


def test_every_operand_is_checked_against_the_result_shape():
    """Found by review: the per-operation checks compare operands on trailing axes only, so
    the leading size of a second full-rank operand was never checked and the loop read past
    its end. Every operand is now checked against the result's shape."""
    m = dad.compile("""
fn g(c: bool[m], A: f64[n, m], k: i64) -> f64[n, m] { let B = zeros(k, m); return where(c, A, B); }
fn h(v: f64[m], A: f64[n, m], k: i64) -> f64[n, m] { let B = zeros(k, m); return (v + A) + B; }
fn f(A: f64[3, m], v: f64[3]) -> f64[3, m] { return hypot(A, v); }
""", filename="chk.dad")
    for call in (lambda: m.g(np.array([False, False]), np.ones((3, 2)), 1),
                 lambda: m.g(np.array([False, False]), np.ones((3, 2)), 5)):
        with pytest.raises(ValueError) as err:
            call()
        assert "chk.dad:" in str(err.value) and "on axis 0, the result 3" in str(err.value)
    with pytest.raises(ValueError) as err:   # (v + A) against B on both axes, at the '+'
        m.h(np.ones(2), np.ones((3, 2)), 1)
    assert "chk.dad:3:" in str(err.value) and "(sizes 3 and 1)" in str(err.value)
    with pytest.raises(ValueError) as err:
        m.f(np.ones((3, 6)), np.ones(3))
    assert "shape mismatch in 'hypot'" in str(err.value) and "(sizes 6 and 3)" in str(err.value)
    assert m.g(np.array([False, True]), np.ones((3, 2)), 3).tolist() == [[0.0, 1.0]] * 3


# ----------------------------------------------------------------------------- size-1 axes
ONES = """
fn col(A: f64[n, m], c: f64[n, 1]) -> f64[n, m] { return A - c; }
fn row(A: f64[n, m], r: f64[1, m]) -> f64[n, m] { return r * A + r; }
fn outer1(a: f64[n, 1], b: f64[1, m]) -> f64[n, m] { return a * b + 1.0; }
fn cmp1(A: f64[n, m], r: f64[1, m]) -> bool[n, m] { return A > r; }
fn t1(T: f64[a, b, c], M: f64[1, c], v: f64[b, 1]) -> f64[a, b, c] { return T * M - v; }
fn mw(A: f64[n, m], r: f64[1, m], c: f64[n, 1]) -> f64[n, m] {
    return max(A, r) + where(A > c, A, r) + hypot(A, c);
}
fn energy(A: f64[n, m], r: f64[1, m], c: f64[n, 1]) -> f64 { return sum(tanh((A - c) * r)); }
fn eg = grad(energy);
fn ej = jvp(energy);
"""


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=3, max_size=3), st.integers(0, 2**32 - 1))
def test_axes_of_size_one_stretch_as_numpy(ones, dims, seed):
    """NumPy stretches an axis of size 1 to the other operand's size; with the 1 written in
    the type (`f64[1, m]`) dad does the same, in any position, on both sides."""
    rng = np.random.default_rng(seed)
    n, m_, k = dims
    A, c, r = rng.normal(size=(n, m_)), rng.normal(size=(n, 1)), rng.normal(size=(1, m_))
    a, b = rng.normal(size=(n, 1)), rng.normal(size=(1, m_))
    T, M, v = rng.normal(size=(k, n, m_)), rng.normal(size=(1, m_)), rng.normal(size=(n, 1))
    assert ones.col(A, c).tolist() == (A - c).tolist()
    assert ones.row(A, r).tolist() == (r * A + r).tolist()
    assert ones.outer1(a, b).tolist() == (a * b + 1.0).tolist()
    assert ones.cmp1(A, r).tolist() == (A > r).tolist()
    assert ones.t1(T, M, v).tolist() == (T * M - v).tolist()
    assert ones.mw(A, r, c).tolist() == (np.maximum(A, r) + np.where(A > c, A, r) + np.hypot(A, c)).tolist()


@pytest.fixture(scope="module")
def ones():
    return dad.compile(ONES, filename="ones.dad")


def test_derivatives_through_a_stretched_axis(ones):
    """The adjoint of a stretched operand sums over the axis it was stretched along."""
    rng = np.random.default_rng(5)
    A, r, c = rng.normal(size=(3, 4)), rng.normal(size=(1, 4)), rng.normal(size=(3, 1))
    s = 1.0 - np.tanh((A - c) * r) ** 2   # (dad's tanh' is not this formula: a few e-14)
    gA, gr, gc = ones.eg(A, r, c)
    np.testing.assert_allclose(gA, s * r, rtol=1e-12)
    np.testing.assert_allclose(gr, np.sum(s * (A - c), axis=0, keepdims=True), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gc, -np.sum(s * r, axis=1, keepdims=True), rtol=1e-12, atol=1e-14)
    tA, tr, tc = rng.normal(size=(3, 4)), rng.normal(size=(1, 4)), rng.normal(size=(3, 1))
    jv = ones.ej(A, r, c, tA, tr, tc)[1]
    assert jv == pytest.approx(np.sum(gA * tA) + np.sum(gr * tr) + np.sum(gc * tc), rel=1e-12)
    with pytest.raises(ValueError) as err:         # a size other than 1 is still checked
        ones.col(A, np.ones((3, 2)))
    assert "size 1 along axis 1" in str(err.value)
