"""cache_invariants (machine IR only): an expensive value an inner loop nest computes in every
iteration of an outer loop, though it depends only on the inner loops' indices, is computed
in the outer loop's first iteration, kept, and read back in the others.

Every program is compiled with the pass and with it left out of the machine pipeline, and
the two must agree bit for bit (values, gradients, and the error raised with its message);
values are also checked against NumPy. The IR shows whether the pass applied (a `%cache`
array), so that each case where it must apply, or must not, can fail."""
from __future__ import annotations

import numpy as np
import pytest

from dad.api import compile_jit
from dad.cli import main
from dad.lang.passes import cache_invariants
from generators import fd_gradient
from machine_pipelines import MACHINE, machine_pipeline, without

PIPELINES = {"on": MACHINE, "off": without(cache_invariants)}

SRC = """
fn basis(x: f64[n], c: f64[k, d]) -> f64 {
    var s = 0.0;
    for i in 0..n {
        for j in 0..k {
            for a in 0..d {
                s += exp(c[j, a]) * x[i] + sin(c[j, a] * 0.5);
            }
        }
    }
    return s;
}
fn basis_grad = grad(basis, wrt=[x, c]);

fn stepped(x: f64[n], c: f64[k, d]) -> f64 {
    var s = 0.0;
    for i in 0..n step 2 {
        for j in 1..k step 3 {
            let e = log1p(c[j] * c[j]);     # a temporary per (i, j): its elements are cached
            s += x[i] * sum(e);
        }
    }
    return s;
}

fn written(x: f64[n], c: f64[k, d]) -> f64 {
    var w = copy(c);
    var s = 0.0;
    for i in 0..n {
        for j in 0..k {
            for a in 0..d {
                s += exp(w[j, a]) * x[i];
            }
        }
        if k > 0 and d > 0 {
            w[0, 0] = x[i];                 # the loop writes what the exp reads: not cached
        }
    }
    return s;
}

fn branchy(x: f64[n], c: f64[k, d]) -> f64 {
    var s = 0.0;
    for i in 0..n {
        if x[i] > 0.0 {                     # the inner loop does not run in every iteration
            for j in 0..k {
                for a in 0..d {
                    s += exp(c[j, a]) * x[i];
                }
            }
        }
    }
    return s;
}

fn shifted(x: f64[n], c: f64[k, d], off: i64) -> f64 {
    var s = 0.0;
    for i in 0..n {
        s += x[i];
        for j in 0..k {
            s += exp(c[j, off]) * x[i];     # off out of range: the same error, same place
        }
    }
    return s;
}
"""


def _compile(which):
    return _compile_src(SRC, which)


@pytest.fixture(scope="module")
def mods():
    return {w: _compile(w) for w in PIPELINES}


def _ir(path, fn, capsys) -> str:
    assert main(["emit", "--stage", "opt-ir", str(path), "-f", fn]) == 0
    return capsys.readouterr().out


def _inputs(n, k, d, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n), 0.5 * rng.standard_normal((k, d))


def _same(a, b):
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


@pytest.mark.parametrize("n,k,d", [(0, 3, 2), (1, 3, 2), (2, 3, 2), (5, 4, 3), (7, 0, 2), (4, 3, 0)])
def test_values_and_gradients_agree_bit_for_bit(mods, n, k, d):
    x, c = _inputs(n, k, d)
    on, off = mods["on"], mods["off"]
    for name in ("basis", "stepped", "written", "branchy"):
        assert _same(getattr(on, name)(x, c), getattr(off, name)(x, c)), name
    assert _same(on.basis_grad(x, c), off.basis_grad(x, c))
    want = sum(np.exp(c[j, a]) * x[i] + np.sin(c[j, a] * 0.5)
               for i in range(n) for j in range(k) for a in range(d))
    assert on.basis(x, c) == pytest.approx(want, rel=1e-12, abs=1e-12)
    want = sum(x[i] * np.sum(np.log1p(c[j] * c[j])) for i in range(0, n, 2) for j in range(1, k, 3))
    assert on.stepped(x, c) == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_gradient_against_finite_differences(mods):
    x, c = _inputs(4, 3, 2, seed=3)
    gx, gc = mods["on"].basis_grad(x, c)
    np.testing.assert_allclose(gx, fd_gradient(lambda z: mods["on"].basis(z, c), x, 1e-6), rtol=1e-6)
    np.testing.assert_allclose(gc.ravel(), fd_gradient(
        lambda z: mods["on"].basis(x, z.reshape(c.shape)), c.ravel(), 1e-6), rtol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_an_error_is_raised_where_and_as_it_was(mods, n):
    x, c = _inputs(n, 3, 2)
    msgs = []
    for which in ("on", "off"):
        with pytest.raises(IndexError) as e:
            mods[which].shifted(x, c, 7)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1] and "7" in msgs[0]
    assert _same(mods["on"].shifted(x, c, 1), mods["off"].shifted(x, c, 1))


def test_where_it_applies_and_where_it_must_not(tmp_path, capsys):
    path = tmp_path / "cache.dad"
    path.write_text(SRC)
    for fn in ("basis", "stepped"):
        assert "%cache = memref.alloc" in _ir(path, fn, capsys), fn
    # an adjoint's forward sweep, which records on the tape in the outer loop, is left as it
    # is (measured slower with the cache)
    ir = _ir(path, "basis_grad", capsys)
    assert "%cache" not in ir and "dad.tape_p" in ir
    for fn in ("written", "branchy"):
        assert "%cache" not in _ir(path, fn, capsys), fn


def test_an_f32_value_is_cached_as_f32():
    """Found by review: the cache was always f64, and an f32 value stored in it failed to
    compile (llvmlite: operands of different types)."""
    src = """
fn f(x: f32[k], n: i64) -> f32 {
    var s: f32 = 0.0;
    for i in 0..n { for j in 0..k { s += exp(x[j]); } }
    return s;
}
"""
    x = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    got = {w: _compile_src(src, w).f(x, 4) for w in PIPELINES}
    assert got["on"] == got["off"]
    assert got["on"] == pytest.approx(4 * float(np.sum(np.exp(x.astype(np.float64)))), rel=1e-6)


def test_a_value_cached_in_a_loop_nested_in_another_ones():
    """Found by review: with one cached value in the loop over j and another in a loop
    nested in it, the outer one was versioned first, and the nested one's caches were filled
    and read only in the copy that runs when caches are not used."""
    src = """
fn nest(x: f64[n], c: f64[k, d]) -> f64 {
    var s = 0.0;
    for i in 0..n {
        for j in 0..k {
            let t = exp(c[j, 0]);
            var u = 0.0;
            for a in 0..d { u += sin(c[j, a] * 0.5); }
            s += u * x[i] + t;
        }
    }
    return s;
}
"""
    x, c = _inputs(5, 3, 4, seed=7)
    mods = {w: _compile_src(src, w) for w in PIPELINES}
    assert _same(mods["on"].nest(x, c), mods["off"].nest(x, c))
    with machine_pipeline(PIPELINES["on"]):
        from dad.runtime.compiler import machine_ir, optimize_ir
        from dad.frontend import compile_to_ir
        ir = machine_ir(optimize_ir(compile_to_ir(src, "nest.dad")))
    sins = [o for o in ir["nest"].walk() if o.name == "math.sin"]
    # sin runs in the fill copy and in the copy for unused caches, never where caches are read
    assert len(sins) == 2 * 3, len(sins)


def _compile_src(src, which):
    with machine_pipeline(PIPELINES[which]):
        return compile_jit(src, filename="cache.dad")
