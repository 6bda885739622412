"""hoist_allocs end to end: programs with a temporary array per loop iteration, written as
users write them, give the values NumPy gives and the derivatives finite differences give,
with the temporaries allocated before their loops (tests/ir/hoist_allocs/ holds the golden
IR). Includes arrays that rely on starting from zeros in every iteration."""
from __future__ import annotations

import numpy as np
import pytest

import dad
from golden import allocs_in_loops
from generators import fd_gradient
from dad.frontend import compile_to_ir
from dad.lang.passes import pipeline
from dad.lang.passes import PassManager
from dad.lang.printer import print_function
from dad.runtime.compiler import derive_all

SRC = """
fn gmm_like(x: f64[n, d], means: f64[k, d]) -> f64 {
    var s = 0.0;
    for i in 0..n {
        for j in 0..k {
            let xc = x[i] - means[j];
            s += dot(xc, xc);
        }
    }
    return s;
}
fn counts(x: f64[n], k: i64) -> f64 {
    var s = 0.0;
    for i in 0..n {
        var h = zeros(k);          # starts from zeros in every iteration
        h[i % k] += x[i];
        h[(i + 1) % k] += 2.0 * x[i];
        s += h[0] * h[0] + h[k - 1];
    }
    return s;
}
fn softrows(A: f64[n, m], w: f64[m]) -> f64 {
    var s = 0.0;
    for i in 0..n {
        let r = A[i] * w + 1.0;
        let q = exp(r) / sum(exp(r));
        s += dot(q, A[i]);
    }
    return s;
}
fn gmm_like_g = grad(gmm_like, wrt=means);
fn counts_g = grad(counts, wrt=x);
fn softrows_g = grad(softrows);
fn softrows_j = jvp(softrows);
"""


@pytest.fixture(scope="module")
def m():
    return dad.compile(SRC)


def _ref_counts(x, k):
    s = 0.0
    for i in range(len(x)):
        h = np.zeros(k)
        h[i % k] += x[i]
        h[(i + 1) % k] += 2.0 * x[i]
        s += h[0] * h[0] + h[k - 1]
    return s


def _ref_rows(A, w):
    s = 0.0
    for i in range(A.shape[0]):
        r = A[i] * w + 1.0
        q = np.exp(r) / np.exp(r).sum()
        s += q @ A[i]
    return s


def test_no_allocation_left_in_the_loops():
    ir = compile_to_ir(SRC, "h.dad")
    derive_all(ir)
    PassManager(pipeline("lowering"), verify=True).run(ir)
    for name in ("gmm_like", "counts", "softrows", "gmm_like.vjp.means"):
        assert not allocs_in_loops(ir[name]), print_function(ir[name])


def test_values(m):
    rng = np.random.default_rng(1)
    x, mu = rng.standard_normal((30, 4)), rng.standard_normal((5, 4))
    assert np.isclose(m.gmm_like(x, mu), sum(((x[i] - mu[j]) ** 2).sum()
                                            for i in range(30) for j in range(5)), rtol=1e-13)
    v = rng.standard_normal(17)
    for k in (1, 3, 8):
        assert np.isclose(m.counts(v, k), _ref_counts(v, k), rtol=1e-13)
    A, w = rng.standard_normal((9, 6)), rng.standard_normal(6)
    assert np.isclose(m.softrows(A, w), _ref_rows(A, w), rtol=1e-12)


def test_a_negative_size_raises_as_before_and_only_when_the_loop_runs(m):
    v = np.ones(4)
    assert m.counts(np.ones(0), -3) == 0.0            # no iteration: no error, as before
    with pytest.raises(ValueError, match=r"<string>:15:17: negative array dimension -3"):
        m.counts(v, -3)


def test_derivatives_against_finite_differences_and_each_other(m):
    rng = np.random.default_rng(2)
    x, mu = rng.standard_normal((12, 3)), rng.standard_normal((4, 3))
    assert np.allclose(m.gmm_like_g(x, mu), fd_gradient(lambda q: m.gmm_like(x, q), mu), rtol=1e-6, atol=1e-6)
    v = rng.standard_normal(11)
    assert np.allclose(m.counts_g(v, 3), fd_gradient(lambda q: m.counts(q, 3), v), rtol=1e-6, atol=1e-6)
    A, w = rng.standard_normal((7, 5)), rng.standard_normal(5)
    gA, gw = m.softrows_g(A, w)
    assert np.allclose(gA, fd_gradient(lambda q: m.softrows(q, w), A), rtol=1e-6, atol=1e-7)
    assert np.allclose(gw, fd_gradient(lambda q: m.softrows(A, q), w), rtol=1e-6, atol=1e-7)
    tA, tw = rng.standard_normal(A.shape), rng.standard_normal(w.shape)
    _, jv = m.softrows_j(A, w, tA, tw)
    assert np.isclose(jv, (gA * tA).sum() + gw @ tw, rtol=1e-10)
