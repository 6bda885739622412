"""forward_stores (lowering_pipeline only): carried values replace the reload of the element
stored in the previous iteration; stores overwritten by the next iteration leave the loop.
Results must be bit for bit those of the program as written: Python ports doing the same
float operations in the same order, and the same IR compiled without the pass."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dad
import dad.lang.passes as passes
from dad.frontend import compile_to_ir
from dad.lang.irparser import parse_module
from dad.lang.passes import PassManager, default_pipeline, forward_stores, lowering_pipeline
from dad.lang.printer import print_function, print_module
from dad.runtime.compiler import CompiledModule, compile_module, machine_ir, derive_all

ROSEN = (pathlib.Path(__file__).resolve().parent.parent / "examples" / "rosenbrock.dad").read_text()
SRC = ROSEN + """
fn stencil3(x: f64[n]) -> f64[n] { var g = copy(x);
    for i in 0..n - 2 { g[i] += x[i + 1] * 0.5; g[i + 1] -= g[i] * 0.25; g[i + 2] += x[i] * 3.0; } return g; }
fn shift(x: f64[n]) -> f64[n] { var a = copy(x); for i in 0..n - 1 { a[i + 1] = a[i]; } return a; }
fn stepped(x: f64[n]) -> f64[n] { var g = copy(x);
    for i in 0..n - 2 step 2 { g[i] -= x[i + 1]; g[i + 1] += g[i] * 0.5; g[i + 2] += g[i + 1] * 0.25; } return g; }
fn fib(x: f64[n]) -> f64[n] { var f = copy(x); for i in 2..n { f[i] = f[i - 1] + 0.5 * f[i - 2] - f[i]; } return f; }
fn reread(x: f64[n]) -> f64 { var g = zeros(n); var s = 0.0;
    for i in 0..n - 1 { g[i] -= x[i]; g[i + 1] += x[i + 1] * 2.0; s = s * 0.5 + g[i + 1]; } return s; }
fn guarded(x: f64[n]) -> f64[n] { var g = copy(x);
    for i in 0..n - 1 { g[i + 1] += g[i] * 0.5; if x[i] > 0.0 { g[i + 1] = -g[i + 1]; } } return g; }
fn iscan(x: i64[n]) -> i64[n] { var s = copy(x); for i in 1..n { s[i] += s[i - 1] * 3; } return s; }
fn reverse(x: f64[n]) -> f64[n] { var g = copy(x);
    for i in 0..n - 1 { let j = n - 2 - i; g[j + 1] += x[j] * 2.0; g[j] -= g[j + 1] * x[j + 1]; } return g; }
fn suffix(x: f64[n]) -> f64[n] { var s = copy(x);
    for i in 1..n { let j = n - 1 - i; s[j] = s[j] * 0.75 + s[j + 1]; } return s; }
fn strided(x: f64[n]) -> f64[n] { var g = copy(x);
    for i in 0..(n - 1) / 2 { g[2 * i + 1] += g[2 * i] * 0.5; g[2 * i + 2] -= g[2 * i + 1]; } return g; }
fn blocks(x: f64[n], m: i64) -> f64[n] {
    var g = zeros(n);
    for r in 0..n / m {
        let base = r * m;
        for i in 0..m - 1 { g[base + i] -= x[base + i + 1]; g[base + i + 1] += x[base + i] * 2.0; }
    }
    return g;
}
fn viewed(x: f64[n]) -> f64 { var g = zeros(n);
    for i in 0..n - 1 { g[i] -= x[i]; g[i + 1] += x[i + 1] * 3.0; } return sum(g[0..n]); }
fn reads(x: f64[n]) -> f64 { var s = 0.0; for i in 0..n - 1 { s += x[i] * x[i + 1]; } return s; }
fn energy(x: f64[n]) -> f64 { let g = rosen_gradient_by_hand(x); var s = 0.0;
    for i in 0..n { s += g[i] * g[i]; } return s; }
fn energy_grad = grad(energy);
fn energy_hess = hessian(energy);
fn rosen_grad = grad(rosen);
"""
# Python ports, (g's initial value, the range of i, the loop body): the same IEEE operations
# in the same order (`g[i] += e` is `g[i] = g[i] + e` in both languages). `reread` keeps s in g[n].
PORTS = {
    "rosen_gradient_by_hand": ("[0.0] * n", "range(n - 1)", "a = x[i + 1] - x[i] * x[i]; "
                               "g[i] -= 400.0 * x[i] * a + 2.0 * (1.0 - x[i]); g[i + 1] += 200.0 * a"),
    "stencil3": ("list(x)", "range(n - 2)", "g[i] += x[i + 1] * 0.5; g[i + 1] -= g[i] * 0.25; g[i + 2] += x[i] * 3.0"),
    "shift": ("list(x)", "range(n - 1)", "g[i + 1] = g[i]"),
    "stepped": ("list(x)", "range(0, n - 2, 2)", "g[i] -= x[i + 1]; g[i + 1] += g[i] * 0.5; g[i + 2] += g[i + 1] * 0.25"),
    "fib": ("list(x)", "range(2, n)", "g[i] = g[i - 1] + 0.5 * g[i - 2] - g[i]"),
    "reread": ("[0.0] * (n + 1)", "range(n - 1)", "g[i] -= x[i]; g[i + 1] += x[i + 1] * 2.0; g[n] = g[n] * 0.5 + g[i + 1]"),
    "guarded": ("list(x)", "range(n - 1)", "g[i + 1] += g[i] * 0.5; g[i + 1] = -g[i + 1] if x[i] > 0.0 else g[i + 1]"),
}
UNCHECKED = {  # compiled from IR with the bounds checks off (see `unchecked`)
    "reverse": ("list(x)", "range(n - 1)", "j = n - 2 - i; g[j + 1] += x[j] * 2.0; g[j] -= g[j + 1] * x[j + 1]"),
    "suffix": ("list(x)", "range(1, n)", "j = n - 1 - i; g[j] = g[j] * 0.75 + g[j + 1]"),
    "strided": ("list(x)", "range((n - 1) // 2)", "g[2 * i + 1] += g[2 * i] * 0.5; g[2 * i + 2] -= g[2 * i + 1]"),
    "blocks": ("[0.0] * n", "(i for r in range(n // m) for i in range(r * m, r * m + m - 1))",
               "g[i] -= x[i + 1]; g[i + 1] += x[i] * 2.0"),
}


def port(spec, x, m=1):
    init, rng, body = spec
    env = {"x": list(x), "n": len(x), "m": m}
    exec(f"g = {init}\nfor i in {rng}:\n    {body}", env)
    return env["g"][-1] if init.endswith("(n + 1)") else env["g"]


SIZES = [0, 1, 2, 3, 4, 5, 8, 17]
_jit: dict = {}


def optimised(src: str, pipeline=None):
    m = compile_to_ir(src, "t.dad")
    derive_all(m)
    return PassManager(lowering_pipeline() if pipeline is None else pipeline, verify=True).run(m)


def jit(src: str, pipeline: list):
    """Machine code for `src` after `pipeline`, without the compile cache (once per session)."""
    key = (src, tuple(p.__name__ for p in pipeline))
    if key not in _jit:
        m = optimised(src, pipeline)
        saved = passes.machine_pipeline  # CompiledModule lowers machine_ir(m): keep "off" off
        if forward_stores not in pipeline:
            passes.machine_pipeline = lambda: []
        try:
            _jit[key] = CompiledModule(m, print_module(m), filename="t.dad")
        finally:
            passes.machine_pipeline = saved
    return _jit[key]


def unchecked(src: str) -> str:
    """`src`'s clean IR with every bounds check off (sound: the inputs keep indices in range),
    so the pass also meets reverse (`c = -1`), strided (`c = 2`) and nested (`inv`) indices."""
    return print_module(optimised(src, default_pipeline())).replace("checked = true", "checked = false")


def carried(f) -> bool:
    return any((a.name or "").startswith("fwd") for op in f.walk() if op.name == "scf.for"
               for a in op.regions[0].block.args)


def rand(n, seed=0):
    return np.random.default_rng(seed * 100 + n).normal(size=n)


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SRC, filename="t.dad")


@pytest.mark.parametrize("n", SIZES)
def test_matches_python_ports_bit_for_bit(mod, n):
    x = rand(n)
    for name, spec in PORTS.items():
        assert np.asarray(getattr(mod, name)(x)).tolist() == port(spec, x.tolist()), name
    k = np.arange(1, n + 1, dtype=np.int64)
    assert mod.iscan(k).tolist() == port(("list(x)", "range(1, n)", "g[i] += g[i - 1] * 3"), k.tolist())
    assert mod.reads(x) == sum((x[i] * x[i + 1] for i in range(n - 1)), 0.0)
    g = port(("[0.0] * n", "range(n - 1)", "g[i] -= x[i]; g[i + 1] += x[i + 1] * 3.0"), x.tolist())
    assert mod.viewed(x) == pytest.approx(sum(g), rel=1e-12, abs=1e-300)  # sum() may reorder


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), max_size=24))
def test_property_python_ports(mod, xs):
    for name, spec in PORTS.items():
        assert np.asarray(getattr(mod, name)(np.array(xs, dtype=np.float64))).tolist() == port(spec, xs), name


def test_reverse_strided_and_nested_indices_are_forwarded_and_exact():
    cm = compile_module(parse_module(unchecked(SRC)), filename="t.dad")
    for name in UNCHECKED:
        assert carried(machine_ir(cm.ir_module)[name]), name + " was not rewritten: the test lost its point"
    for n in SIZES:
        x = rand(n, 1)
        for name in ("reverse", "suffix", "strided"):
            assert getattr(cm, name)(x).tolist() == port(UNCHECKED[name], x), (name, n)
        for m in (1, 2, 3, 5):
            assert cm.blocks(x, m).tolist() == port(UNCHECKED["blocks"], x, m), (m, n)


def _in_order(m):
    """Drops every `fastmath` flag: LLVM may sum a `reassoc` sum (AD's adjoint and tangent
    sums) in any order, and picks the order per loop shape, so with the flags two pipelines'
    derivatives may differ in the last bit for reasons that are not forward_stores'."""
    for f in m:
        for op in f.walk():
            op.attrs.pop("fastmath", None)
    return m


@pytest.mark.parametrize("n", SIZES)
def test_same_bits_with_and_without_the_pass(n):
    # off: every other pass still runs; both keep every IEEE operation in its written order
    on = jit(SRC, lowering_pipeline() + [_in_order])
    off = jit(SRC, [p for p in lowering_pipeline() if p is not forward_stores] + [_in_order])
    x = rand(n, 2)
    for name in [*PORTS, "viewed", "energy", "energy_grad", "energy_hess", "rosen_grad"]:
        np.testing.assert_array_equal(getattr(on, name)(x), getattr(off, name)(x), err_msg=name)


def test_rosen_gradient(mod):
    for n in (0, 1, 2, 3, 10, 33):
        x = rand(n, 3)
        by_hand = mod.rosen_gradient_by_hand(x)
        want = np.zeros(n)
        if n > 1:
            a = x[1:] - x[:-1] ** 2
            want[:-1] += -400.0 * x[:-1] * a - 2.0 * (1.0 - x[:-1])
            want[1:] += 200.0 * a
        tol = 1e-12 * (1.0 + np.abs(want) + 400.0 * np.abs(x) ** 3)
        for got in (dad.grad(mod.rosen)(x), mod.rosen_grad(x)):
            assert np.all(np.abs(got - by_hand) <= tol) and np.all(np.abs(got - want) <= tol)
    for n in (0, 1, 2, 6):  # dad.grad derives from the module's IR, after forward_stores
        np.testing.assert_array_equal(dad.grad(mod.energy)(rand(n, 4)), mod.energy_grad(rand(n, 4)))


def test_ir_shape_of_rosen_gradient_by_hand():
    m = optimised(ROSEN, default_pipeline())
    assert "fwd" not in print_function(m["rosen_gradient_by_hand"])
    PassManager([forward_stores], verify=True).run(m)
    f = m["rosen_gradient_by_hand"]
    g = next(op for op in f.body.ops if op.name == "memref.alloc").results[0]
    (loop,) = [op for op in f.body.ops if op.name == "scf.for"]
    body = loop.regions[0].block
    assert [a.name for a in body.args[1:]] == ["fwd"]
    stores = [op for op in body.walk() if op.name == "memref.store" and op.operands[1] is g]
    loads = [op for op in body.walk() if op.name == "memref.load" and op.operands[0] is g]
    assert len(stores) == 1 and len(loads) == 1 and body.ops[-2] is stores[0]  # sunk to the end
    after = f.body.ops[f.body.ops.index(loop) + 1:]
    assert sum(op.name == "memref.store" and op.operands[1] is g for o in after for op in o.walk()) == 1
    PassManager(lowering_pipeline(), verify=True).run(parse_module(unchecked(SRC)))


@pytest.mark.parametrize("fn", ["reads", "viewed", "rosen"])
def test_left_alone_without_a_local_unviewed_array(fn):
    m = optimised(SRC, default_pipeline())
    before = print_function(m[fn])
    PassManager([forward_stores], verify=True).run(m)
    assert print_function(m[fn]) == before


IR = """func.func @p(%x: memref<?xf64>{PARAM}) -> memref<?xf64> attributes {sig = "{SIG}"} {
  %n = memref.dim %x {index = 0} : i64{ALLOC}
  %0 = arith.constant {value = 0} : i64
  %1 = arith.constant {value = 1} : i64
  %2 = arith.subi %n, %1 : i64
  scf.for %0, %2, %1 : () {
  ^(%i: i64):
    %3 = arith.addi %i, %1 : i64
    %4 = memref.load %g, %i {checked = true, loc = "t.dad:1:1"} : f64
    %5 = memref.load %x, %i {checked = false} : f64
    %6 = memref.load %g, %i {checked = false} : f64
    %7 = arith.subf %4, %5 : f64
    %8 = arith.addf %7, %6 : f64
    memref.store %8, %g, %i {checked = false} : ()
    %9 = memref.load %g, %3 {checked = false} : f64
    %10 = arith.addf %9, %5 : f64
    memref.store %10, %g, %3 {checked = false} : ()
    scf.yield : ()
  }
  func.return %g : ()
}
"""


def test_parameter_array_left_alone_and_a_checked_reload_still_sees_the_store():
    param = IR.replace("{PARAM}", ", %g: memref<?xf64>").replace("{ALLOC}", "") \
        .replace("{SIG}", "(x: f64[n], g: f64[n]) -> f64[n]")
    m = PassManager([forward_stores], verify=True).run(parse_module(param))
    assert print_module(m) == print_module(parse_module(param))
    local = IR.replace("{PARAM}", "").replace("{SIG}", "(x: f64[n]) -> f64[n]") \
        .replace("{ALLOC}", "\n  %g = memref.alloc %n : memref<?xf64>")
    m = PassManager([forward_stores], verify=True).run(parse_module(local))
    assert carried(m["p"])  # the unchecked reload of g[i] is forwarded, the checked one is not
    cm = CompiledModule(m, local, filename="t.dad")
    for n in SIZES:
        x = rand(n, 5)
        assert cm.p(x).tolist() == port(("[0.0] * n", "range(n - 1)", "g[i] = (g[i] - x[i]) + g[i]; g[i + 1] += x[i]"), x)


@pytest.mark.parametrize("with_pass", [True, False])
def test_gradient_loops_vectorise_only_with_the_pass(monkeypatch, with_pass):
    if not with_pass:
        monkeypatch.setattr(passes, "machine_pipeline", lambda: [])  # what machine_ir runs
    cm = compile_module(compile_to_ir(ROSEN + "fn rosen_grad = grad(rosen);\n", "t.dad"), filename="t.dad")
    for name in ("rosen_grad", "rosen_gradient_by_hand"):
        text = cm.function_llvm_ir(name)
        assert ("vector.body" in text and "x double>" in text) == with_pass, name
