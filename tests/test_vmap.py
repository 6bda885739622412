"""vmap(f, wrt=[...]) (LANGUAGE.md, additions of December 2026): the named parameters get a
new leading axis of size `batch`, the others are shared, every result gets the axis; against
a Python loop over the batch calling f, and composed with the other transforms (vjp of a
vmap, vmap of a grad, grad through a call of a vmap, jacobian inside vmap) against analytic
derivatives."""
from __future__ import annotations

import numpy as np
import pytest

import dad
from dad.frontend import CompileError

SRC = """
fn f(x: f64[n], w: f64, k: i64) -> f64 { return sum(x * x) * w + float(k); }
fn g(x: f64[n], A: f64[n, n]) -> (f64[n], f64) { return (matvec(A, x), sum(x)); }
fn h(x: f64[2]) -> f64[2] { return [x[0] * x[1], sin(x[0])]; }
fn fv = vmap(f, wrt=[x, w]);
fn fall = vmap(f);
fn gv = vmap(g, wrt=x);
fn fvj = vjp(vmap(f, wrt=[x]), wrt=x);
fn vgf = vmap(grad(f, wrt=x), wrt=x);
fn hj = vmap(jacobian(h));
fn loss(X: f64[b, n], w: f64) -> f64 { return sum(fv(X, ones(rows(X)) * w, 2)); }
fn lg = grad(loss);
fn lh = hvp(loss, wrt=X);
"""


@pytest.fixture(scope="module")
def m():
    return dad.compile(SRC, filename="vm.dad")


def test_against_a_loop(m):
    rng = np.random.default_rng(0)
    X, w, A = rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=(3, 3))
    assert m.fv(X, w, 1).tolist() == [m.f(X[i], w[i], 1) for i in range(4)]
    assert m.fall(X, w, np.array([1, 2, 3, 4])).tolist() == [m.f(X[i], w[i], i + 1) for i in range(4)]
    r, s = m.gv(X, A)
    for i in range(4):
        ri, si = m.g(X[i], A)
        assert r[i].tolist() == ri.tolist() and s[i] == si
    assert m.fv(np.zeros((0, 3)), np.zeros(0), 1).shape == (0,)


def test_composition_with_the_other_transforms(m):
    rng = np.random.default_rng(1)
    X, bar = rng.normal(size=(3, 2)), np.array([1.0, 0.5, 2.0])
    value, gX = m.fvj(X, 2.0, 1, bar)
    assert value.tolist() == [m.f(X[i], 2.0, 1) for i in range(3)]
    assert np.allclose(gX, 4.0 * X * bar[:, None], rtol=1e-15)          # d(2|x|²)/dx = 4x
    assert np.allclose(m.vgf(X, 2.0, 1), 4.0 * X, rtol=1e-15)
    J = m.hj(X)
    for i in range(3):
        x0, x1 = X[i]
        assert np.allclose(J[i], [[x1, x0], [np.cos(x0), 0.0]], rtol=1e-15)
    gX, gw = m.lg(X, 1.5)                                                 # sum_i (|X_i|² w + 2)
    assert np.allclose(gX, 3.0 * X, rtol=1e-15) and gw == pytest.approx(np.sum(X * X), rel=1e-15)
    V = rng.normal(size=X.shape)
    assert np.allclose(m.lh(X, 1.5, V), 3.0 * V, rtol=1e-15)


def test_batch_sizes_that_differ_are_refused(m):
    with pytest.raises(ValueError) as err:
        m.fv(np.ones((3, 2)), np.ones(2), 1)
    assert "'w' has size 2" in str(err.value) and "batch = 3" in str(err.value)


@pytest.mark.parametrize("src,message", [
    ("fn f(x: f64) -> f64 { return x; }\nfn g = vmap(f, wrt=y);", "wrt names 'y'"),
    ("fn f(x: f64) -> f64 { return x; }\nfn g = vmap(f, wrt=[x, x]);", "named twice"),
])
def test_errors(src, message):
    with pytest.raises(CompileError) as err:
        dad.compile(src, filename="bad.dad")
    assert message in str(err.value) and "bad.dad:2:" in str(err.value)


def test_the_output_is_written_once_not_zero_filled_first(tmp_path, capsys):
    """vmap's loop stores each result into its row of the output over the output's own
    sizes, as the hand-written loop does, so the output is allocated without a zero fill
    (skip_zero_fill): vmap costs what the loop costs."""
    from dad.cli import main
    path = tmp_path / "v.dad"
    path.write_text(SRC)
    for fn in ("gv", "vgf", "hj"):
        assert main(["emit", "--stage", "opt-ir", str(path), "-f", fn]) == 0
        ir = capsys.readouterr().out
        outs = [ln for ln in ir.splitlines() if "memref.alloc" in ln and "?x" in ln.split(":")[-1]]
        assert outs and all("zeroed = false" in ln for ln in outs), (fn, ir)


def test_the_forms_benchmark_runs(capsys):
    """benchmarks/forms.py (vmap(grad(f)) against a loop of grad(f), a broadcasting layer
    against loops) checks that each pair agrees before timing it."""
    from benchmarks.forms import main
    assert main(["--quick", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "vmap(grad(f)) vs loop of grad(f)" in out and "layer tanh(X @ W + c) vs loops" in out
