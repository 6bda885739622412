"""ravel, reshape, concat and stack (LANGUAGE.md, additions of December 2026), in every mode.
Values against NumPy; gradients against analytic formulas; element-count and shape errors."""
from __future__ import annotations

import numpy as np
import pytest

import dad
from dad.frontend import CompileError

SRC = """
fn rv(A: f64[n, m]) -> f64 { let r = ravel(A); return r[len(r) - 1] + r[1]; }
fn rs(x: f64[k], B: f64[n, m]) -> f64[n, m] { return reshape(x, rows(B), cols(B)); }
fn cc(a: f64[p, m], b: f64[q, m]) -> f64 { let c = concat(a, b, a); return c[rows(a), 0] + sum(c); }
fn cv(x: f64[n], y: f64[k]) -> f64 { let c = concat(x, y); return c[len(x)] * 10.0 + sum(c); }
fn st(x: f64[n], y: f64[n]) -> f64[2, n] { return stack(x, y); }
fn loss(A: f64[n, m], x: f64[k]) -> f64 {
    let B = reshape(x, 2, 3);
    let C = concat(A, B * B);
    return sum(ravel(C) * ravel(C)) + sum(stack(x, x * 2.0));
}
fn lg = grad(loss);
fn lj = jvp(loss);
"""


@pytest.fixture(scope="module")
def m():
    return dad.compile(SRC, filename="sh.dad")


def test_values(m):
    A, x = np.arange(6.0).reshape(2, 3), np.linspace(0.1, 0.6, 6)
    assert m.rv(A) == 5.0 + 1.0
    assert m.rs(x, np.zeros((3, 2))).tolist() == x.reshape(3, 2).tolist()
    b = A[:1] + 10.0
    assert m.cc(A, b) == 10.0 + np.concatenate([A, b, A]).sum()
    assert m.cv(np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])) == 30.0 + 15.0
    assert m.st(x, 2 * x).tolist() == np.stack([x, 2 * x]).tolist()


def test_derivatives(m):
    A, x = np.arange(6.0).reshape(2, 3), np.linspace(0.1, 0.6, 6)
    gA, gx = m.lg(A, x)          # loss = |A|² + |x²|² + 3 sum(x)
    assert np.allclose(gA, 2 * A, rtol=1e-15) and np.allclose(gx, 4 * x ** 3 + 3, rtol=1e-14)
    vA, vx = np.ones_like(A), np.linspace(-1.0, 1.0, 6)
    assert m.lj(A, x, vA, vx)[1] == pytest.approx(np.sum(gA * vA) + gx @ vx, rel=1e-14)


def test_run_time_errors(m):
    with pytest.raises(ValueError) as err:
        m.rs(np.ones(6), np.zeros((4, 2)))
    assert "sh.dad:3:" in str(err.value) and "'reshape' of an array of 6 elements to 8 elements" in str(err.value)
    c = dad.compile("fn f(a: f64[p, m], b: f64[q, k]) -> f64 { return sum(concat(a, b[0..q, 1..k])); }",
                    filename="c.dad")
    with pytest.raises(ValueError) as err:
        c.f(np.ones((2, 3)), np.ones((1, 3)))
    assert "c.dad:1:" in str(err.value) and "size 2 on axis 1, the first array's 3" in str(err.value)


@pytest.mark.parametrize("src,message", [
    ("fn f(A: f64[2, 3]) -> f64 { return sum(reshape(A, 4, 2)); }", "(6 elements) to 8 elements"),
    ("fn f(a: f64[n, 2], b: f64[n, 3]) -> f64 { return sum(concat(a, b)); }", "one type and shape"),
    ("fn f(a: f64[n], b: f64[n, 3]) -> f64 { return sum(concat(a, b)); }", "one type and shape"),
    ("fn f(a: f64, b: f64) -> f64 { return sum(stack(a, b)); }", "'stack' joins arrays"),
])
def test_compile_time_errors(src, message):
    with pytest.raises(CompileError) as err:
        dad.compile(src, filename="bad.dad")
    assert message in str(err.value) and "bad.dad:1:" in str(err.value)
