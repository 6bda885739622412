"""hvp and hessian with several wrt parameters (LANGUAGE.md, additions of December 2026):
`hvp(f, wrt=[a, b])` takes `a_v`, `b_v` and returns `(Hv_a, Hv_b)`; `hessian(f, wrt=[a, b])`
returns the blocks `(H_aa, H_ab, H_ba, H_bb)`, each shaped p.shape + q.shape. Checked against
the analytic Hessian of a polynomial, and the blocks against the hvp (H v = blocks times v)."""
from __future__ import annotations

import numpy as np
import pytest

import dad

SRC = """
fn f(a: f64[n], b: f64[m], s: f64) -> f64 { return sum(a * a) * sum(b) + s * dot(a, a) + s * s * sum(b * b * b); }
fn hv = hvp(f, wrt=[a, b]);
fn hv3 = hvp(f, wrt=[a, b, s]);
fn H = hessian(f, wrt=[a, b, s]);
fn H1 = hessian(f, wrt=a);
"""


@pytest.fixture(scope="module")
def m():
    return dad.compile(SRC, filename="mw.dad")


def analytic(a, b, s):
    n, k = len(a), len(b)
    Haa = (2 * b.sum() + 2 * s) * np.eye(n)
    Hab = 2 * np.outer(a, np.ones(k))
    Has = 2 * a
    Hbb = 6 * s * s * np.diag(b)
    Hbs = 6 * s * b * b
    Hss = 2 * np.sum(b ** 3)
    return [[Haa, Hab, Has], [Hab.T, Hbb, Hbs], [Has, Hbs, Hss]]


def test_hessian_blocks_are_analytic(m):
    a, b, s = np.array([1.0, 2.0]), np.array([0.5, -1.0, 3.0]), 0.7
    want = analytic(a, b, s)
    got = m.H(a, b, s)
    assert len(got) == 9
    for k, blk in enumerate(got):
        assert np.shape(blk) == np.shape(want[k // 3][k % 3])
        assert np.allclose(blk, want[k // 3][k % 3], rtol=1e-14, atol=1e-14), k
    assert np.allclose(m.H1(a, b, s), want[0][0], rtol=1e-14)


def test_hvp_is_the_blocks_times_the_tangents(m):
    a, b, s = np.array([1.0, 2.0]), np.array([0.5, -1.0, 3.0]), 0.7
    W = analytic(a, b, s)
    va, vb, vs = np.array([0.1, 0.2]), np.array([1.0, 0.0, -1.0]), 0.3
    ha, hb = m.hv(a, b, s, va, vb)
    assert np.allclose(ha, W[0][0] @ va + W[0][1] @ vb, rtol=1e-14)
    assert np.allclose(hb, W[1][0] @ va + W[1][1] @ vb, rtol=1e-14)
    ha, hb, hs = m.hv3(a, b, s, va, vb, vs)
    assert np.allclose(ha, W[0][0] @ va + W[0][1] @ vb + W[0][2] * vs, rtol=1e-14)
    assert np.allclose(hb, W[1][0] @ va + W[1][1] @ vb + W[1][2] * vs, rtol=1e-14)
    assert hs == pytest.approx(W[2][0] @ va + W[2][1] @ vb + W[2][2] * vs, rel=1e-14)


def test_names_of_the_tangents_and_the_python_transforms(m):
    assert str(m.hv.signature) == ("(a: f64[n], b: f64[m], s: f64, a_v: f64[n], b_v: f64[m]) "
                                   "-> (f64[n], f64[m])")
    h = dad.hvp(m.f, wrt=["a", "s"])
    a, b, s = np.array([1.0, 2.0]), np.array([0.5, -1.0, 3.0]), 0.7
    W = analytic(a, b, s)
    ha, hs = h(a, b, s, np.array([1.0, 0.0]), 1.0)
    assert np.allclose(ha, W[0][0] @ [1.0, 0.0] + W[0][2], rtol=1e-14)
    assert hs == pytest.approx(W[2][0] @ [1.0, 0.0] + W[2][2], rel=1e-14)
    blocks = dad.hessian(m.f, wrt=["b", "s"])(a, b, s)
    assert np.allclose(blocks[0], W[1][1]) and np.allclose(blocks[1], W[1][2]) and blocks[3] == pytest.approx(W[2][2])
