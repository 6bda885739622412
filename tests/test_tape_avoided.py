"""Values reverse mode gets without a tape: a branch's scalars exported by the forward
`scf.if`, a cos(x) the program computes beside sin(x), and loads from an array that nothing
stores into after the loop reading it. Each is checked for what the derived IR holds and
for the derivative against an analytic formula."""
import importlib
import math

import numpy as np
import pytest

import dad
from dad.cli import main
from dad.frontend import compile_to_ir
from dad.lang.printer import print_function
from dad.runtime.compiler import derive_all, optimize_ir

inline_calls = importlib.import_module("dad.lang.passes.inline_calls")  # the module

SOURCE = """
fn rot(r: f64, x: f64) -> f64 {
    var y = 0.0;
    if r != 0.0 {
        let t = sqrt(r * r + 1.0);
        let c = cos(t);
        let s = sin(t);
        y = s * x + c * x * x;
    } else {
        y = x;
    }
    return y;
}
fn rot_g = grad(rot);

fn filled(x: f64[n]) -> f64 {
    var q = zeros(n);
    for i in 0..n {
        q[i] = exp(x[i]);
    }
    var s = 0.0;
    for i in 0..n {
        s += q[i] * x[i];
    }
    return s;
}
fn filled_g = grad(filled);
"""


def _derived_ir(name: str) -> str:
    m = optimize_ir(derive_all(compile_to_ir(SOURCE, "t.dad")))
    return "\n".join(print_function(f) for f in m if f.name.startswith(name))


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SOURCE, filename="t.dad")


def test_branch_values_are_exported_not_recorded():
    text = _derived_ir("rot.vjp")
    assert "dad.tape_push" not in text and "dad.tape_pop" not in text
    # the forward branch computes cos and sin once; the reverse reuses them
    assert text.count("math.cos") == 1 and text.count("math.sin") == 1


@pytest.mark.parametrize("r,x", [(0.7, 1.3), (-2.0, 0.4), (0.0, 2.5)])
def test_branch_gradient_is_analytic(mod, r, x):
    gr, gx = mod.rot_g(r, x)
    if r == 0.0:
        assert (gr, gx) == (0.0, 1.0)
        return
    t = math.sqrt(r * r + 1.0)
    dt = r / t
    assert gx == pytest.approx(math.sin(t) + 2.0 * math.cos(t) * x, rel=1e-14)
    assert gr == pytest.approx((math.cos(t) * x - math.sin(t) * x * x) * dt, rel=1e-14)


def test_loads_of_an_array_filled_before_the_loop_are_not_recorded(tmp_path, capsys):
    path = tmp_path / "t.dad"
    path.write_text(SOURCE)
    assert main(["emit", "--stage", "tape", str(path), "-f", "filled_g"]) == 0
    out = capsys.readouterr().out
    # the fill loop records exp's result (its adjoint reads it); the reading loop nothing
    assert out.count("records nothing") == 1 and out.count("8 bytes per iteration") == 1, out


def test_filled_gradient_is_analytic(mod):
    x = np.random.default_rng(4).normal(size=9)
    np.testing.assert_allclose(mod.filled_g(x), np.exp(x) * (x + 1.0), rtol=1e-14)


def test_array_stored_after_the_loop_is_still_recorded():
    src = """
fn later(x: f64[n]) -> f64 {
    var q = zeros(n);
    for i in 0..n { q[i] = x[i] * x[i]; }
    var s = 0.0;
    for i in 0..n { s += q[i] * x[i]; }
    for i in 0..n { q[i] = 0.0; }
    return s;
}
fn later_g = grad(later);
"""
    m = dad.compile(src, filename="later.dad")
    x = np.random.default_rng(5).normal(size=7)
    # q is zeroed after the reading loop: its loads there must come from the tape
    np.testing.assert_allclose(m.later_g(x), 3.0 * x * x, rtol=1e-14)


ROWS = """
fn rowsq(v: f64[k]) -> f64 {
    var s = 0.0;
    for j in 0..k { s += v[j] * v[j]; }
    return s;
}
fn byrow(x: f64[n, k]) -> f64 {
    var y = zeros(n, k);
    for i in 0..n { for j in 0..k { y[i, j] = sin(x[i, j]); } }
    var s = 0.0;
    for i in 0..n { s += rowsq(y[i]); }
    return s;
}
fn byrow_g = grad(byrow);
fn rows_later(x: f64[n, k]) -> f64 {
    var y = zeros(n, k);
    for i in 0..n { for j in 0..k { y[i, j] = sin(x[i, j]); } }
    var s = 0.0;
    for i in 0..n {
        s += rowsq(y[i]);
        y[i, 0] = 0.0;
    }
    return s;
}
fn rows_later_g = grad(rows_later);
"""


def test_a_call_on_an_array_filled_before_its_loop_copies_nothing(monkeypatch):
    # helpers are inlined before AD; with inlining off, the adjoint call is what is tested
    monkeypatch.setattr(inline_calls, "INLINE_OPS", 0)
    m = optimize_ir(derive_all(compile_to_ir(ROWS, "rows.dad")))
    text = print_function(m.functions["byrow.vjp.x"])
    assert "memref.copy" not in text and "dad.tape_push" not in text
    # written after the call in the same loop: the adjoint call needs the row as it was
    later = print_function(m.functions["rows_later.vjp.x"])
    assert "memref.copy" in later


def test_gradients_through_calls_on_rows_are_analytic():
    m = dad.compile(ROWS, filename="rows.dad")
    x = np.random.default_rng(6).normal(size=(5, 4))
    # d/dx sum(sin(x)^2) = sin(2x); with y[i, 0] zeroed after its use, the same
    np.testing.assert_allclose(m.byrow_g(x), np.sin(2.0 * x), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(m.rows_later_g(x), np.sin(2.0 * x), rtol=1e-14, atol=1e-15)
