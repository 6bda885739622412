"""Derivatives of recursive programs (`ad.recursive`): a call between functions of one
call-graph cycle reverses through the callee's augmented forward and reverse functions.

Oracles: analytic derivatives where the program has a closed form; central finite
differences (step 1e-6, tolerance 1e-6 relative to the gradient's scale: the programs are
smooth, of size O(1), so truncation and rounding errors are ~1e-9); and the dot-product test
<jvp(v), w> = <v, vjp(w)> between forward and reverse mode (both are the derivative of the
same executed program: tolerance 1e-12 relative). Every mode is exercised: grad, vjp,
value_and_grad, jvp, hvp (forward over reverse), hessian and checkpoint=true.
"""
from __future__ import annotations

import numpy as np
import pytest

import dad
from dad.frontend import compile_to_ir
from dad.runtime.compiler import derive_all
from generators import fd_gradient

RSUM = """
fn rsum(x: f64[n], i: i64) -> f64 {
    if i >= n { return 0.0; }
    return x[i] * x[i] + rsum(x, i + 1);
}
fn f(x: f64[n]) -> f64 { return rsum(x, 0); }
"""

# a product down the array; a scalar power by recursion (an active scalar passed down)
RPROD = """
fn rprod(x: f64[n], i: i64) -> f64 {
    if i >= n { return 1.0; }
    return x[i] * rprod(x, i + 1);
}
fn f(x: f64[n]) -> f64 { return rprod(x, 0); }
fn pw(a: f64, k: i64) -> f64 {
    if k == 0 { return 1.0; }
    return a * pw(a, k - 1);
}
fn h(a: f64) -> f64 { return pw(sin(a), 7); }
"""

# mutual recursion, with a scalar that is carried down and changed on the way
MUTUAL = """
fn ev(x: f64[n], i: i64, s: f64) -> f64 {
    if i >= n { return s; }
    return sin(x[i]) * s + od(x, i + 1, s * 0.9 + x[i]);
}
fn od(x: f64[n], i: i64, s: f64) -> f64 {
    if i >= n { return s * s; }
    return x[i] * cos(s) + ev(x, i + 1, tanh(s + x[i]));
}
fn f(x: f64[n]) -> f64 { return ev(x, 0, 0.5); }
"""

# an array result built level by level (each level returns a fresh array)
ARRAY_RESULT = """
fn cum(x: f64[n], i: i64) -> f64[n] {
    if i >= n { return zeros(n); }
    var y = cum(x, i + 1);
    let t = sin(x[i]) * 0.5;
    for j in i..n {
        y[j] = y[j] * cos(x[i]) + t * x[j];
    }
    return y;
}
fn f(x: f64[n]) -> f64 {
    let y = cum(x, 0);
    var s = 0.0;
    for j in 0..n { s += y[j] * y[j] * float(j + 1); }
    return s;
}
"""

# binary recursion with loops at the leaves (records inside the callee's loops) and a local
# array per level; called from a loop of the caller
TREE = """
fn tree(x: f64[n], lo: i64, hi: i64, c: f64) -> f64 {
    if hi - lo <= 3 {
        var s = c;
        for j in lo..hi { s = s * 0.7 + sin(x[j] * s); }
        return s;
    }
    let mid = (lo + hi) / 2;
    var w = zeros(hi - lo);
    for j in lo..hi { w[j - lo] = x[j] * c; }
    let a = tree(x, lo, mid, c + w[0]);
    let b = tree(x, mid, hi, a * 0.5);
    return a * b + 0.1 * w[hi - lo - 1];
}
fn f(x: f64[n]) -> f64 {
    var s = 0.0;
    for k in 0..3 { s += tree(x, 0, n, 0.3 + float(k) * s * 0.1); }
    return s;
}
"""

DERIVED = """
fn g = grad(f);
fn vg = value_and_grad(f);
fn gv = vjp(f);
fn gc = grad(f, checkpoint=true);
fn fj = jvp(f);
fn hv = hvp(f);
fn he = hessian(f);
"""

# a local array overwritten after the recursive call that reads it (the call's adjoint gets a
# copy), a `while` loop with a `break`, and rows of a matrix (views) passed to a recursion
# called from another recursion
MUTATE = """
fn rec(y: f64[n], i: i64, s: f64) -> f64 {
    if i >= n { return s; }
    var z = y * 1.0;
    var k = 0;
    var t = 0.0;
    while k < n - i {
        t = t + sin(z[k] * s);
        if t > 2.0 { break; }
        k += 1;
    }
    let a = rec(z, i + 1, s * 0.8 + t * 0.1);
    z[i] = z[i] * a;
    return a + z[i] * z[0] + t;
}
fn rrows(A: f64[m, n], r: i64) -> f64 {
    if r >= m { return 0.0; }
    return rec(A[r], 0, 0.5) * 0.3 + cos(rrows(A, r + 1));
}
fn f(x: f64[n]) -> f64 {
    var A = zeros(3, n);
    for r in 0..3 { for j in 0..n { A[r, j] = x[j] * float(r + 1) * 0.5; } }
    return rrows(A, 0);
}
"""

PROGRAMS = {"rsum": RSUM, "rprod": RPROD, "mutual": MUTUAL, "array_result": ARRAY_RESULT,
            "tree": TREE, "mutate": MUTATE}
CYCLES = {"rsum": [{"rsum"}], "rprod": [{"rprod"}, {"pw"}], "mutual": [{"ev", "od"}],
          "array_result": [{"cum"}], "tree": [{"tree"}], "mutate": [{"rec"}, {"rrows"}]}


@pytest.fixture(scope="module")
def mods():
    return {k: dad.compile(src + DERIVED) for k, src in PROGRAMS.items()}


@pytest.mark.parametrize("name", list(PROGRAMS))
@pytest.mark.parametrize("n", [1, 2, 7, 16])
def test_every_mode_against_finite_differences(mods, name, n):
    m = mods[name]
    rng = np.random.default_rng(n)
    x = rng.uniform(-1.0, 1.0, n)
    fd = fd_gradient(m.f, x)
    g = m.g(x)
    scale = 1.0 + np.abs(fd).max()
    assert np.allclose(g, fd, rtol=0, atol=1e-6 * scale), (g, fd)
    v, g2 = m.vg(x)
    assert v == m.f(x) and np.array_equal(g2, g)
    val, g3 = m.gv(x, 2.0)
    assert val == m.f(x) and np.allclose(g3, 2 * g, rtol=1e-14, atol=0)
    assert np.allclose(m.gc(x), g, rtol=1e-13, atol=1e-14 * scale)
    # the dot-product test between forward and reverse mode
    u = rng.uniform(-1.0, 1.0, n)
    _, jv = m.fj(x, u)
    assert abs(jv - float(u @ g)) <= 1e-12 * (abs(jv) + float(np.abs(u * g).sum()) + 1e-300)
    # second order: hvp (forward over reverse) and the hessian against differences of grad
    fdh = np.column_stack([(m.g(x + 1e-5 * e) - m.g(x - 1e-5 * e)) / 2e-5 for e in np.eye(n)])
    H = m.he(x)
    hscale = 1.0 + np.abs(fdh).max()
    assert np.allclose(H, fdh, rtol=0, atol=1e-5 * hscale), (H, fdh)
    assert np.allclose(m.hv(x, u), H @ u, rtol=1e-12, atol=1e-12 * hscale)


def test_analytic_values(mods):
    x = np.linspace(-1.0, 1.0, 300)
    assert np.allclose(mods["rsum"].g(x), 2 * x, rtol=1e-15, atol=0)
    assert np.allclose(mods["rsum"].hv(x, x), 2 * x, rtol=1e-15, atol=0)
    assert np.allclose(mods["rsum"].he(x[:20]), 2 * np.eye(20), rtol=0, atol=0)
    y = np.linspace(0.5, 1.5, 40)
    p = float(np.prod(y))
    assert np.allclose(mods["rprod"].g(y), p / y, rtol=1e-13, atol=0)
    m = dad.compile(RPROD + "fn dh = grad(h);\nfn hh = hvp(h);\n")
    for a in (-0.7, 0.2, 1.3):
        assert m.dh(a) == pytest.approx(7 * np.sin(a) ** 6 * np.cos(a), rel=1e-14)
        d2 = 42 * np.sin(a) ** 5 * np.cos(a) ** 2 - 7 * np.sin(a) ** 7
        assert m.hh(a, 1.0) == pytest.approx(d2, rel=1e-13)


def test_deep_recursion_gradient():
    m = dad.compile(RSUM + "fn g = grad(f);\nfn gc = grad(f, checkpoint=true);\n")
    x = np.linspace(-1.0, 1.0, 20000)   # 20000 nested calls fit in the main thread's stack
    assert np.array_equal(m.g(x), 2 * x)
    assert np.array_equal(m.gc(x), 2 * x)


def _calls(fn):
    return [op.attrs["callee"] for op in fn.walk() if op.name == "func.call"]


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_reverse_of_a_recursive_call_does_not_recompute(name):
    """Structure of the derived IR: inside the adjoint of a recursive function, a recursive
    call goes forward through an `.aug` function and back through a `.rev` function; neither
    calls a primal function of the cycle nor a whole adjoint again, and `.rev` allocates no
    array but the zero shadows of arrays the function itself allocates (made where their
    adjoints are summed, not recorded by `.aug`): array cotangents are accumulated in place."""
    m = compile_to_ir(PROGRAMS[name] + "fn g = grad(f);\n", "<test>")
    derive_all(m)
    cycle_of = {f: c for c in CYCLES[name] for f in c}
    augs = [f for f in m if f.name.endswith(".aug")]
    revs = [f for f in m if f.name.endswith(".rev")]
    assert augs and revs
    for fn in m:
        base = fn.name.split(".")[0]
        if base not in cycle_of or fn.name == base:
            continue
        for callee in _calls(fn):
            # an adjoint of a cycle's function calls the primal of no function of the cycle,
            # and no whole adjoint: only the split halves
            assert callee.split(".")[0] not in cycle_of[base] or callee.endswith((".aug", ".rev")), \
                (fn.name, callee)
    def same_cycle(fn, callee):
        return callee.split(".")[0] in cycle_of[fn.name.split(".")[0]]

    for fn in revs:
        local = {op.results[0].name for f in m if f.name == fn.name.split(".")[0]
                 for op in f.walk() if op.name == "memref.alloc"}
        made = [op.results[0].name for op in fn.walk() if op.name == "memref.alloc"]
        assert all(n and n.endswith(".bar") and n[:-4] in local for n in made) \
            or name == "array_result", (fn.name, made)
        assert all(c.endswith(".rev") for c in _calls(fn) if same_cycle(fn, c)), fn.name
    for fn in augs:
        assert all(c.endswith(".aug") for c in _calls(fn) if same_cycle(fn, c)), fn.name


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_reverse_over_forward_and_sparsity(mods, name):
    """Reverse-over-forward hvp agrees with the hessian (itself checked against differences
    of the gradient); the sparsity pattern of the gradient covers the hessian's nonzeros."""
    from dad.runtime.transforms import derive_kernel
    m = mods[name]
    rng = np.random.default_rng(11)
    x = rng.uniform(-1.0, 1.0, 9)
    u = rng.uniform(-1.0, 1.0, 9)
    H = m.he(x)
    fdh = np.column_stack([(m.g(x + 1e-5 * e) - m.g(x - 1e-5 * e)) / 2e-5 for e in np.eye(9)])
    scale = 1.0 + np.abs(fdh).max()
    assert np.allclose(H, fdh, rtol=0, atol=1e-5 * scale)
    hv = derive_kernel(m.f, "hvp", route="reverse-over-forward")
    assert np.allclose(hv(x, u), H @ u, rtol=1e-12, atol=1e-12 * scale)
    sp = derive_kernel(m.g, "sparsity")
    masks = sp(x, (1 << np.arange(9)).astype(np.int64))[-1]
    pattern = np.array([[(int(mk) >> j) & 1 for j in range(9)] for mk in masks], dtype=bool)
    assert np.all((H != 0) <= pattern)


@pytest.mark.parametrize("name", PROGRAMS)
def test_reverse_over_reverse(mods, name):
    """A reverse-mode Jacobian of the gradient (reverse mode over the split adjoint, which it
    undoes: `ad.recursive.unsplit`) agrees with the hessian."""
    from dad.runtime.transforms import derive_kernel
    m = mods[name]
    x = np.random.default_rng(11).uniform(-1.0, 1.0, 9)
    H = m.he(x)
    fdh = np.column_stack([(m.g(x + 1e-5 * e) - m.g(x - 1e-5 * e)) / 2e-5 for e in np.eye(9)])
    scale = 1.0 + np.abs(fdh).max()
    assert np.allclose(H, fdh, rtol=0, atol=1e-5 * scale)
    jr = derive_kernel(m.g, "jacobian", mode="reverse")
    assert np.allclose(jr(x), H, rtol=1e-12, atol=1e-12 * scale)
