"""Array literals `[a, b, c]` and `[[...], [...]]` (LANGUAGE.md, additions of December 2026)
in every mode, and negative literal indices refused at compile time. Values against NumPy,
derivatives against analytic formulas."""
from __future__ import annotations

import numpy as np
import pytest

import dad
from dad.frontend import CompileError

SRC = """
fn rhs(y: f64[2], a: f64, b: f64) -> f64[2] { return [a * y[0] - b, y[1] * y[0]]; }
fn lit() -> f64[2, 2] { return [[1.0, 2], [3, 4.0]]; }
fn stack(x: f64[n], y: f64[n]) -> f64[2, n] { return [x, y * 2.0]; }
fn ints() -> i64[3] { return [1, 2, 3]; }
fn f32s(a: f32) -> f32[2] { return [a, 2.0]; }
fn flags(a: f64) -> bool[2] { return [a > 0.0, true]; }
fn f(x: f64[n], y: f64[n]) -> f64 { let s = [x, y]; let v = [sum(x), dot(x, y), 1.0]; return sum(s * s) + v[0] * v[1]; }
fn fg = grad(f);
fn fj = jvp(f);
fn fh = hvp(f, wrt=x);
fn rj = jacobian(rhs, wrt=y);
fn in_loop(x: f64[n]) -> f64 { var s = 0.0; for i in 0..len(x) { let p = [x[i], x[i] * x[i]]; s += p[0] * p[1]; } return s; }
fn lg = grad(in_loop);
"""


@pytest.fixture(scope="module")
def m():
    return dad.compile(SRC, filename="lit.dad")


def test_values(m):
    assert m.rhs(np.array([1.0, 2.0]), 3.0, 0.5).tolist() == [2.5, 2.0]
    assert m.lit().tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert m.stack(np.array([1.0, 2.0]), np.array([3.0, 4.0])).tolist() == [[1.0, 2.0], [6.0, 8.0]]
    assert m.ints().tolist() == [1, 2, 3] and m.ints().dtype == np.int64
    assert m.f32s(1.5).dtype == np.float32 and m.f32s(1.5).tolist() == [1.5, 2.0]
    assert m.flags(-1.0).tolist() == [False, True]


def test_derivatives_in_every_mode(m):
    x, y, t = np.array([1.0, 2.0]), np.array([0.5, -1.0]), np.array([0.3, -0.7])
    v0, v1 = x.sum(), x @ y                           # f = |x|² + |y|² + v0 v1
    assert m.f(x, y) == pytest.approx(x @ x + y @ y + v0 * v1, rel=1e-15)
    gx, gy = m.fg(x, y)
    assert gx.tolist() == pytest.approx(2 * x + v1 + v0 * y, rel=1e-15)
    assert gy.tolist() == pytest.approx(2 * y + v0 * x, rel=1e-15)
    value, jv = m.fj(x, y, t, t)
    assert jv == pytest.approx(gx @ t + gy @ t, rel=1e-14)
    # d²f/dx² = 2 I + 1 yᵀ + y 1ᵀ
    H = 2 * np.eye(2) + np.outer(np.ones(2), y) + np.outer(y, np.ones(2))
    assert m.fh(x, y, t) == pytest.approx(H @ t, rel=1e-14)
    assert m.rj(np.array([1.0, 2.0]), 3.0, 0.5).tolist() == [[3.0, 0.0], [2.0, 1.0]]
    xs = np.array([0.5, -2.0, 1.5])
    assert m.lg(xs) == pytest.approx(3 * xs ** 2, rel=1e-15)          # d(x³)/dx


@pytest.mark.parametrize("src,message", [
    ("fn f() -> f64[0] { return []; }", "an empty array literal has no element type"),
    ("fn f(a: f64) -> f64[2] { return [a, true]; }", "array literal elements of different types"),
    ("fn f(a: f64, b: i64) -> f64[2] { return [a, b]; }", "type mismatch in an array literal"),
    ("fn f(x: f64[n], a: f64) -> f64 { return sum([x, a]); }", "all be scalars or all arrays"),
    ("fn f(x: f64[n]) -> f64 { return x[-1]; }", "negative index -1"),
    ("fn f(A: f64[n, m]) -> f64[m] { return A[-2]; }", "negative index -2"),
    ("fn f(x: f64[n]) -> f64 { return sum(x[0..-1]); }", "negative index -1"),
])
def test_errors_point_at_the_place(src, message):
    with pytest.raises(CompileError) as err:
        dad.compile(src, filename="bad.dad")
    assert message in str(err.value) and "bad.dad:1:" in str(err.value) and "^" in str(err.value)


def test_elements_of_different_shapes_are_a_run_time_error_naming_the_sizes():
    m = dad.compile("fn g(x: f64[n], y: f64[k]) -> f64[2, n] { return [x, y[1..k]]; }", filename="r.dad")
    with pytest.raises(ValueError) as err:
        m.g(np.ones(2), np.ones(4))
    assert "r.dad:1:" in str(err.value) and "element 1 has size 3 on axis 0, element 0 2" in str(err.value)
    with pytest.raises(CompileError) as err:       # two different size variables
        dad.compile("fn g(x: f64[n], y: f64[k]) -> f64 { return sum([x, y]); }", filename="c.dad")
    assert "c.dad:1:" in str(err.value) and "one type and shape: f64[n] and f64[k]" in str(err.value)


def test_literal_arrays_take_an_f32_context():
    """Found by review: a literal array indexed, or stacked, in an f32 expression stayed f64
    (the compiler crashed mixing f64 and f32)."""
    m = dad.compile("""
fn p(x: f32[2]) -> f32 { return [1.0, 2.0][1] * x[0]; }
fn q(x: f32[2]) -> f32[2] { return [[1.0, 2.0]][0] * x; }
fn s(x: f32[2]) -> f32[2, 2] { return stack([1.0, 2.0], [3.0, 4.0]) * x; }
""", filename="f32.dad")
    x = np.array([3.0, 1.0], dtype=np.float32)
    assert m.p(x) == np.float32(6.0)
    assert m.q(x).dtype == np.float32 and m.q(x).tolist() == [3.0, 2.0]
    assert m.s(x).tolist() == [[3.0, 2.0], [9.0, 4.0]]
