"""skip_zero_fill (machine IR only): a fresh array whose first writer overwrites it is
allocated without zero-filling (`{zeroed = false}`, malloc), and `dad.zero_range` ops zero
exactly what a covering loop leaves unwritten.

Checked on the machine IR (which allocs are marked, which `dad.zero_range` ops appear) and on
values against NumPy / the analytic Rosenbrock gradient, elements nothing writes being exactly
0.0. Memory from malloc is often zero already, so before each call the heap is dirtied: a
function that fills and frees an array of the same size with 12345.0 runs first, and the
freed block is what malloc hands out next. A mutant pipeline that drops the `dad.zero_range`
ops shows that this exposes missing zeros (so the value tests can fail).

Covering loops written in `.dad` with a descending or offset index (`y[n - 1 - i]`, a store
into `zeros(n + 2)`) are wrapped by `version_checks` in an `scf.if`, which is then the first
op touching the array: those are exercised through hand-written IR (the property test) and
through the reversed loop of a taped gradient (descending, c = -1).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import dad.lang.passes as passes
from dad.api import compile_jit
from dad.frontend import compile_to_ir
from dad.lang.irparser import parse_module
from dad.lang.passes import PassManager, skip_zero_fill
from dad.lang.passes.util import clone_module
from dad.lang.printer import print_function
from dad.runtime.compiler import CompiledModule, derive_all, machine_ir, optimize_ir
from example_inputs import EXAMPLES, ROSEN, rosen_gradient
from machine_pipelines import MACHINE, machine_pipeline, with_after, without



def drop_zero_range(module):
    """Mutant: skip_zero_fill without its fills."""
    for f in module:
        for op in list(f.walk()):
            if op.name == "dad.zero_range":
                op.parent.ops.remove(op)
    return module


drop_zero_range.__name__ = drop_zero_range.pass_name = "drop_zero_range"

PIPELINES = {
    "on": MACHINE,
    "off": without(skip_zero_fill),
    "mutant": with_after(skip_zero_fill, drop_zero_range),
}

SRC = ROSEN + """
fn rg = grad(rosen);

fn rec(x: f64[n]) -> f64 {
    var s = 1.0;
    for i in 0..n { s = sin(s * x[i] + 0.5); }
    return s;
}
fn recg = grad(rec);

fn cp(x: f64[n]) -> f64[n] { var y = x; y[0] = 1.0; return y; }
fn cp2(A: f64[n, m]) -> f64[n, m] { var B = copy(A); B[0, 0] = 1.0; return B; }
fn cp3(x: f64[n]) -> f64[n] { var y = zeros(n); y = x; y[0] = 1.0; return y; }

fn full_loop(x: f64[n]) -> f64[n] { var y = zeros(n); for i in 0..n { y[i] = 2.0 * x[i]; } return y; }
fn rmw(x: f64[n]) -> f64[n] { var y = zeros(n); for i in 0..n { y[i] += x[i]; } return y; }
fn part(x: f64[n]) -> f64[n] { var y = zeros(n); for i in 2..n - 1 { y[i] = x[i] + 1.0; } return y; }
fn adj(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n - 1 { y[i] = x[i]; y[i + 1] = 2.0 * x[i]; }
    return y;
}

fn step2(x: f64[n]) -> f64[n] { var y = zeros(n); for i in 0..n step 2 { y[i] = x[i] + 1.0; } return y; }
fn under_if(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n { if x[i] > 0.0 { y[i] = x[i]; } }
    return y;
}
fn reads(x: f64[n]) -> f64[n] { var y = zeros(n); for i in 0..n { y[i] = x[i] + y[i / 2]; } return y; }
fn gap(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n - 2 { y[i] = x[i] + 1.0; y[i + 2] = 2.0 * x[i] + 1.0; }
    return y;
}
fn total(v: f64[n]) -> f64 { var s = 0.0; for i in 0..n { s += v[i]; } return s; }
fn call_first(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    let s = total(y);
    for i in 0..n { y[i] = x[i] + s; }
    return y;
}
fn view_first(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    let s = sum(y[0..n]);
    for i in 0..n { y[i] = x[i] + s; }
    return y;
}
"""

DIRTY_SRC = """
fn dirty(x: f64[n]) -> f64 {
    var y = full(n, 12345.0);
    var s = 0.0;
    for i in 0..n { s += y[i] * x[i]; }
    return s;
}
fn dirty2(A: f64[n, m]) -> f64 {
    var B = full(n, m, 12345.0);
    var s = 0.0;
    for i in 0..n { for j in 0..m { s += B[i, j] * A[i, j]; } }
    return s;
}
"""


# ----------------------------------------------------------------------------- helpers
def build(src: str, which: str):
    with machine_pipeline(PIPELINES[which]):
        mod = compile_jit(src, filename="t.dad")
        text = "".join(print_function(f) for f in machine_ir(mod.ir_module))
    assert ("zeroed = false" in text) == (which != "off")      # the patch took
    return mod


@pytest.fixture(scope="module")
def dirty():
    return build(DIRTY_SRC, "on")


@pytest.fixture(scope="module")
def on():
    return build(SRC, "on")


@pytest.fixture(scope="module")
def off():
    return build(SRC, "off")


@pytest.fixture(scope="module")
def mutant():
    return build(SRC, "mutant")


@pytest.fixture(scope="module")
def mach():
    return machine_ir(optimize_ir(derive_all(compile_to_ir(SRC, "z.dad"))))


def call(dirty, fn, *args):
    """`fn(*args)` on a dirty heap (a freed array of the size of the first argument, full of
    12345.0, is what malloc gives next)."""
    a = np.asarray(args[0])
    if a.ndim == 2:
        dirty.dirty2(np.ones_like(a))
    else:
        dirty.dirty(np.ones(len(a)))
    return fn(*args)


def alloc(f, name: str):
    [op] = [o for o in f.walk() if o.name == "memref.alloc" and o.results[0].name == name]
    return op


def zeroed(f, name: str) -> bool:
    return alloc(f, name).attrs.get("zeroed", True)


def fills(f, name: str) -> list:
    a = alloc(f, name).results[0]
    return [o for o in f.walk() if o.name == "dad.zero_range" and o.operands[0] is a]


def first_toucher(f, name: str):
    op = alloc(f, name)
    a, block = op.results[0], op.parent
    for o in block.ops[block.ops.index(op) + 1:]:
        if any(v is a and q.name not in ("memref.dim", "dad.zero_range")
               for q in o.walk() for v in q.operands):
            return o
    return None


def rng_x(n, seed=0):
    return np.random.default_rng(seed + 1000 * n).uniform(-2.0, 2.0, n)


# ----------------------------------------------------------------------------- rosen
def test_pass_is_machine_only():
    assert skip_zero_fill in MACHINE() and skip_zero_fill not in passes.default_pipeline()
    names = [p.__name__ for p in MACHINE()]
    assert names.index("zero_loads") < names.index("skip_zero_fill")


def test_rosen_gradient_shadow_is_not_zero_filled(mach):
    f = mach["rosen.vjp.x"]
    assert zeroed(f, "x.bar") is False
    assert len(fills(f, "x.bar")) == 2
    loop = first_toucher(f, "x.bar")
    assert loop.name == "scf.for"
    body = f.body.ops
    assert all(body.index(z) < body.index(loop) for z in fills(f, "x.bar"))
    text = print_function(f)
    assert "{zeroed = false}" in text and text.count("dad.zero_range %x.bar") == 2


def test_clean_ir_keeps_zero_fill():
    """The module derivations start from has no trace of the pass."""
    m = optimize_ir(derive_all(compile_to_ir(SRC, "z.dad")))
    text = "".join(print_function(f) for f in m)
    assert "zeroed" not in text and "dad.zero_range" not in text


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 1000])
def test_rosen_gradient_values(on, off, dirty, n):
    x = rng_x(n)
    g = call(dirty, on.rg, x)
    assert g.shape == (n,)
    if n <= 1:   # the loop runs no iteration: every element comes from the fill
        assert np.array_equal(g, np.zeros(n)) and not np.signbit(g).any()
        x = np.full(n, 7.0)
        assert np.array_equal(call(dirty, on.rg, x), np.zeros(n))
    else:
        want = rosen_gradient(x)
        np.testing.assert_allclose(g, want, rtol=1e-13, atol=1e-13 * np.abs(want).max())
    assert np.array_equal(g, call(dirty, off.rg, x))


def test_mutant_without_fills_shows_garbage(mutant, dirty):
    """The dirty heap does expose a missing fill: without its zero_range ops the n = 1
    gradient is not 0 (so the zero checks above can fail)."""
    assert any(not np.array_equal(call(dirty, mutant.rg, np.full(1, 0.5)), np.zeros(1)) for _ in range(3))
    x = np.arange(8.0)
    want = np.where((x >= 2.0) & (x < 7.0), x + 1.0, 0.0)
    assert not np.array_equal(call(dirty, mutant.part, x), want)


# ----------------------------------------------------------------------------- descending (taped gradient)
def rec_grad(x):
    """d rec / dx by hand: s_{i+1} = sin(s_i x_i + 0.5), so ds_{i+1} = c_i (x_i ds_i + s_i dx_i)."""
    n = len(x)
    s = np.empty(n + 1)
    s[0] = 1.0
    for i in range(n):
        s[i + 1] = math.sin(s[i] * x[i] + 0.5)
    g, sbar = np.zeros(n), 1.0
    for i in reversed(range(n)):
        c = math.cos(s[i] * x[i] + 0.5)
        g[i] = sbar * c * s[i]
        sbar = sbar * c * x[i]
    return g


def test_taped_reversed_loop_covers_descending(mach):
    f = mach["rec.vjp.x"]
    assert zeroed(f, "x.bar") is False and len(fills(f, "x.bar")) == 2
    loop = first_toucher(f, "x.bar")
    assert loop.name == "scf.for" and any(o.name == "dad.tape_pop" for o in loop.walk())
    # the store index descends: it is `C - it`
    [st_] = [o for o in loop.regions[0].block.ops if o.name == "memref.store"]
    idx = st_.operands[2].op
    assert idx.name == "arith.subi" and idx.operands[1] is loop.regions[0].block.args[0]


@pytest.mark.parametrize("n", [0, 1, 2, 5, 40])
def test_taped_gradient_values(on, off, dirty, n):
    x = rng_x(n, 3)
    g = call(dirty, on.recg, x)
    want = rec_grad(x)
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-14)
    assert np.array_equal(g, call(dirty, off.recg, x))


# ----------------------------------------------------------------------------- copies
def test_copy_targets_not_zero_filled(mach):
    for name, arr in (("cp", "y"), ("cp2", "B"), ("cp3", "y")):
        f = mach[name]
        assert zeroed(f, arr) is False, name
        assert first_toucher(f, arr).name == "memref.copy", name
        assert not fills(f, arr), name


@pytest.mark.parametrize("n", [1, 2, 9, 300])
def test_copy_values(on, dirty, n):
    x = rng_x(n, 5)
    want = x.copy()
    want[0] = 1.0
    assert np.array_equal(call(dirty, on.cp, x), want)
    assert np.array_equal(call(dirty, on.cp3, x), want)
    A = rng_x(n * 3, 6).reshape(n, 3)
    B = A.copy()
    B[0, 0] = 1.0
    assert np.array_equal(call(dirty, on.cp2, A), B)


# ----------------------------------------------------------------------------- covering loops
def test_full_loop_is_not_zero_filled(mach):
    # for i in 0..n { y[i] = ... } writes all of y: no fill at all (the loop-nest rule)
    f = mach["full_loop"]
    assert zeroed(f, "y") is False and len(fills(f, "y")) == 0


def test_read_of_unwritten_element_became_zero_then_skipped(mach):
    """`y[i] += x[i]` reads only elements nothing wrote yet: zero_loads makes those reads 0.0,
    which leaves a store-only loop."""
    f = mach["rmw"]
    assert zeroed(f, "y") is False
    assert not any(o.name == "memref.load" and o.operands[0] is alloc(f, "y").results[0] for o in f.walk())


def test_partial_loop_fills_head_and_tail(mach):
    f = mach["part"]
    assert zeroed(f, "y") is False
    lo, hi = fills(f, "y")
    assert lo.operands[1].op.attrs.get("value") == 0          # [0, lo)
    assert hi.operands[2].op.name == "memref.dim"              # [hi, n)
    f = mach["adj"]
    assert zeroed(f, "y") is False and len(fills(f, "y")) == 2


@pytest.mark.parametrize("n", list(range(0, 9)) + [64, 1001])
def test_covering_loop_values(on, off, dirty, n):
    x = rng_x(n, 7) + 3.0       # no zero among the written values
    k = np.arange(n)
    cases = {
        "full_loop": 2.0 * x,
        "rmw": x.copy(),
        "part": np.where((k >= 2) & (k < n - 1), x + 1.0, 0.0),
    }
    adj = np.zeros(n)
    for i in range(n - 1):
        adj[i], adj[i + 1] = x[i], 2.0 * x[i]
    cases["adj"] = adj
    for name, want in cases.items():
        got = call(dirty, getattr(on, name), x)
        assert np.array_equal(got, want), (name, n, got, want)
        assert not np.signbit(got[want == 0.0]).any()
        assert np.array_equal(got, call(dirty, getattr(off, name), x))


# ----------------------------------------------------------------------------- left zero-filled
NEGATIVE = {
    "step2": "a loop with step 2",
    "under_if": "the store is under an if",
    "reads": "the loop reads y (y[i / 2]) before all of it is written",
    "gap": "stores at offsets 0 and 2 leave a gap",
    "call_first": "a call reads y first",
    "view_first": "a view of y is made first",
}


@pytest.fixture(scope="module")
def mach_calls():
    """The machine pipeline without inline_calls: `call_first` keeps its call (inlined, the
    sum over the fresh y reads zeros, zero_loads makes them 0.0, and the loop that follows
    does cover y)."""
    from dad.lang.passes import PassManager, machine_pipeline
    from dad.lang.passes.util import clone_module
    m = optimize_ir(derive_all(compile_to_ir(SRC, "z.dad")))
    return PassManager([p for p in machine_pipeline()
                        if getattr(p, "pass_name", "") != "inline_calls"]).run(clone_module(m))


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_not_applied(mach, mach_calls, name):
    f = (mach_calls if name == "call_first" else mach)[name]
    assert zeroed(f, "y") is True, NEGATIVE[name]
    assert not fills(f, "y")
    assert "zeroed = false" not in print_function(f)


def negative_oracle(name, x):
    n = len(x)
    y = np.zeros(n)
    if name == "step2":
        y[::2] = x[::2] + 1.0
    elif name == "under_if":
        y[x > 0.0] = x[x > 0.0]
    elif name == "reads":
        for i in range(n):
            y[i] = x[i] + y[i // 2]
    elif name == "gap":
        for i in range(n - 2):
            y[i], y[i + 2] = x[i] + 1.0, 2.0 * x[i] + 1.0
    else:
        y = x + 0.0
    return y


@pytest.mark.parametrize("name", sorted(NEGATIVE))
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 7, 50])
def test_not_applied_values(on, dirty, name, n):
    x = rng_x(n, 11)
    got = call(dirty, getattr(on, name), x)
    want = negative_oracle(name, x)
    assert np.array_equal(got, want), (name, got, want)


# ----------------------------------------------------------------------------- hand-written IR
def loop_ir(c: int, ks: tuple, cond: bool = False) -> str:
    """y = zeros(n); for i in lb..ub { y[c * i + off + k] = 10 i + k + 0.5 for k in ks };
    return y. Unchecked stores: the caller keeps them in range."""
    lines = []
    if c == 1:
        lines.append("%b = arith.addi %i, %off : i64")
    else:
        lines.append(f"%ci = arith.muli %i, %cc : i64")
        lines.append("%b = arith.addi %ci, %off : i64")
    lines.append("%fi = arith.sitofp %i : f64")
    lines.append("%v = arith.mulf %fi, %ten : f64")
    for j, k in enumerate(ks):
        lines.append(f"%k{j} = arith.constant {{value = {k}}} : i64")
        lines.append(f"%kf{j} = arith.constant {{value = {k + 0.5}}} : f64")
        lines.append(f"%ix{j} = arith.addi %b, %k{j} : i64")
        lines.append(f"%v{j} = arith.addf %v, %kf{j} : f64")
        store = f"memref.store %v{j}, %y, %ix{j} {{checked = false}} : ()"
        if cond and j == 0:
            lines.append(f"scf.if %t : () {{\n    ^():\n      {store}\n      scf.yield : ()\n    }} {{\n"
                         f"    ^():\n      scf.yield : ()\n    }}")
        else:
            lines.append(store)
    body = "\n    ".join(lines)
    return f"""func.func @f(%x: memref<?xf64>, %lb: i64, %ub: i64, %off: i64) -> memref<?xf64> attributes {{sig = "(x: f64[n], lb: i64, ub: i64, off: i64) -> f64[n]"}} {{
  %n = memref.dim %x {{index = 0}} : i64
  %one = arith.constant {{value = 1}} : i64
  %cc = arith.constant {{value = {c}}} : i64
  %ten = arith.constant {{value = 10.0}} : f64
  %t = arith.cmpi %lb, %ub {{pred = "slt"}} : i1
  %y = memref.alloc %n : memref<?xf64>
  scf.for %lb, %ub, %one : () {{
  ^(%i: i64):
    {body}
    scf.yield : ()
  }}
  func.return %y : ()
}}
"""


def loop_model(n, c, ks, lb, ub, off):
    y = np.zeros(n)
    for i in range(lb, ub):
        for k in ks:
            y[c * i + off + k] = 10.0 * i + k + 0.5
    return y


_hand: dict = {}


def hand(c, ks, cond=False, which="on"):
    key = (c, ks, cond, which)
    if key not in _hand:
        text = loop_ir(c, ks, cond)
        with machine_pipeline(PIPELINES[which]):
            mod = CompiledModule(parse_module(text), "", filename="k.ir")
            mm = machine_ir(parse_module(text))
        _hand[key] = (mod, mm["f"])
    return _hand[key]


def covers(c, ks):
    s = sorted(ks)
    return c in (1, -1) and s[-1] - s[0] == len(set(s)) - 1


STRUCTURES = [(1, (0,)), (-1, (0,)), (1, (0, 1)), (1, (1, 0)), (-1, (0, 1)), (-1, (-1, 1, 0)),
              (1, (-1, 0, 1, 2)), (1, (0, 2)), (-1, (0, 2)), (2, (0,)), (-2, (0, 1)), (1, (0, 0))]


@pytest.mark.parametrize("c,ks", STRUCTURES)
def test_hand_ir_marks_exactly_covering_loops(c, ks):
    _, f = hand(c, ks)
    assert zeroed(f, "y") is (not covers(c, ks))
    assert len(fills(f, "y")) == (2 if covers(c, ks) else 0)
    _, f = hand(c, ks, cond=True)          # one store under an scf.if: never a cover
    assert zeroed(f, "y") is True and not fills(f, "y")


@st.composite
def loop_case(draw):
    c, ks = draw(st.sampled_from(STRUCTURES))
    cond = draw(st.booleans())
    n = draw(st.integers(0, 12))
    lb = draw(st.integers(-6, 12))
    ub = lb + draw(st.integers(-3, 8))
    if ub <= lb:   # no iteration: any offset
        return c, ks, cond, n, lb, ub, draw(st.integers(-20, 20))
    ends = (c * lb, c * (ub - 1))
    lo, hi = -min(ks) - min(ends), n - 1 - max(ks) - max(ends)
    assume(lo <= hi)
    return c, ks, cond, n, lb, ub, draw(st.integers(lo, hi))


@settings(max_examples=150, deadline=None)
@given(loop_case())
def test_property_hand_loops_match_numpy(dirty, case):
    c, ks, cond, n, lb, ub, off = case
    mod, _ = hand(c, ks, cond)
    x = np.ones(n)
    got = call(dirty, mod.f, x, lb, ub, off)
    want = loop_model(n, c, ks, lb, ub, off)
    assert np.array_equal(got, want), (case, got, want)
    assert not np.signbit(got[want == 0.0]).any()


def test_hand_mutant_fails_somewhere(dirty):
    """Without its fills the pass leaves garbage where the loop does not write."""
    mod, _ = hand(1, (0, 1), which="mutant")
    wrong = 0
    for lb, ub, off in ((0, 0, 0), (2, 4, 0), (0, 3, 1), (5, 2, 0)):
        x = np.ones(8)
        if not np.array_equal(call(dirty, mod.f, x, lb, ub, off), loop_model(8, 1, (0, 1), lb, ub, off)):
            wrong += 1
    assert wrong >= 2


# ----------------------------------------------------------------------------- known bug
ITER_ARG = """func.func @f(%x: memref<?xf64>) -> memref<?xf64> attributes {sig = "(x: f64[n]) -> f64[n]"} {
  %n = memref.dim %x {index = 0} : i64
  %z = arith.constant {value = 0} : i64
  %one = arith.constant {value = 1} : i64
  %y = memref.alloc %n : memref<?xf64>
  %r = scf.for %z, %n, %one, %y : memref<?xf64> {
  ^(%i: i64, %b: memref<?xf64>):
    %old = memref.load %b, %i {checked = false} : f64
    %xi = memref.load %x, %i {checked = false} : f64
    %s = arith.addf %old, %xi : f64
    memref.store %s, %y, %i {checked = false} : ()
    scf.yield %b : ()
  }
  func.return %r : ()
}
"""


def test_array_carried_into_the_loop_is_still_zero_filled():
    m = PassManager(MACHINE(), verify=True).run(clone_module(parse_module(ITER_ARG)))
    assert zeroed(m["f"], "y") is True


# ----------------------------------------------------------------------------- versioned loops
VERSIONED = """
fn shifted(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n - 1 {
        y[i] = x[i + 1] * 2.0;
    }
    return y;
}
fn gathered(x: f64[n], k: i64) -> f64[n] {
    var y = zeros(n);
    for i in 0..n {
        y[n - 1 - i] = x[(i * k) % n];
    }
    return y;
}
"""


def test_both_versions_of_a_checked_loop_cover():
    """`version_checks` puts the loop in an `scf.if` (checked and unchecked copies): each
    copy covers y, so the alloc skips its fill and each copy zeroes what it leaves out."""
    m = machine_ir(optimize_ir(derive_all(compile_to_ir(VERSIONED, "v.dad"))))
    f = m["gathered"]
    assert zeroed(f, "y") is False
    branch = first_toucher(f, "y")
    assert branch.name == "scf.if"
    for region in branch.regions:
        ops = region.block.ops
        assert any(o.name == "dad.zero_range" for o in ops)
        assert any(o.name == "scf.for" for o in ops)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 8, 33])
def test_versioned_loop_values(dirty, n):
    on, off = build(VERSIONED, "on"), build(VERSIONED, "off")
    x = rng_x(n, 5)
    want = np.zeros(n)
    want[:max(n - 1, 0)] = 2.0 * x[1:]
    assert np.array_equal(call(dirty, on.shifted, x), want)
    for k in (1, 2, 3, 7):
        want = np.zeros(n)
        for i in range(n):
            want[n - 1 - i] = x[(i * k) % n]
        assert np.array_equal(call(dirty, on.gathered, x, k), want)
        assert np.array_equal(call(dirty, off.gathered, x, k), want)


# ----------------------------------------------------------------------------- loop nests, any rank
NESTS = """
fn grid(x: f64[n], y: f64[m]) -> f64[n, m] {
    var B = zeros(n, m);
    for i in 0..n {
        for j in 0..m {
            B[i, j] = x[i] * y[j];
        }
    }
    return B;
}
fn blocks(x: f64[n]) -> f64[n, 2, 3] {
    var J = zeros(n, 2, 3);
    for i in 0..n {
        for r in 0..2 {
            J[i, r, 0] = x[i];
            J[i, r, 1] = x[i] * float(r);
            J[i, r, 2] = 1.0;
        }
    }
    return J;
}
# not covered: the last column is left out
fn partial(x: f64[n], y: f64[m]) -> f64[n, m] {
    var B = zeros(n, m);
    for i in 0..n {
        for j in 0..m - 1 {
            B[i, j] = x[i];
        }
    }
    return B;
}
# not covered: constants 0 and 2 of a dimension of 3
fn gaps(x: f64[n]) -> f64[n, 3] {
    var J = zeros(n, 3);
    for i in 0..n {
        J[i, 0] = x[i];
        J[i, 2] = x[i];
    }
    return J;
}
# not covered when t = 0: the outer loop's iv indexes nothing
fn repeat(x: f64[n], t: i64) -> f64[n, 2] {
    var J = zeros(n, 2);
    for s in 0..t {
        for i in 0..n {
            J[i, 0] = x[i];
            J[i, 1] = x[i];
        }
    }
    return J;
}
# not covered: the branches write different slices for the same (i, j)
fn crossed(x: f64[n]) -> f64[n, n] {
    var B = zeros(n, n);
    for i in 0..n {
        for j in 0..n {
            if x[i] > x[j] { B[i, j] = 1.0; } else { B[j, i] = 2.0; }
        }
    }
    return B;
}
"""


def _nest_machine():
    return machine_ir(optimize_ir(derive_all(compile_to_ir(NESTS, "nests.dad"))))


def test_loop_nests_that_write_everything_skip_the_fill():
    m = _nest_machine()
    assert zeroed(m["grid"], "B") is False
    assert zeroed(m["blocks"], "J") is False
    for name, arr in (("partial", "B"), ("gaps", "J"), ("repeat", "J"), ("crossed", "B")):
        assert zeroed(m[name], arr) is True, name


def test_bundle_adjustment_jacobian_is_not_zero_filled():
    src = (EXAMPLES / "ba.dad").read_text()
    m = machine_ir(optimize_ir(derive_all(compile_to_ir(src, "ba.dad"))))
    assert zeroed(m["ba_jacobian"], "jac") is False


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_loop_nest_values(dirty, n):
    mod = build(NESTS, "on")
    x = rng_x(n, 7)
    for m in (0, 1, 3):
        y = rng_x(m, 8)
        dirty.dirty(np.ones(max(n * m, 1)))
        assert np.array_equal(mod.grid(x, y), x[:, None] * y[None, :])
        want = np.zeros((n, m))
        if m > 1:
            want[:, :m - 1] = x[:, None]
        dirty.dirty(np.ones(max(n * m, 1)))
        assert np.array_equal(mod.partial(x, y), want)
    J = np.zeros((n, 2, 3))
    J[:, :, 0] = x[:, None]
    J[:, 1, 1] = x
    J[:, :, 2] = 1.0
    dirty.dirty(np.ones(max(6 * n, 1)))
    assert np.array_equal(mod.blocks(x), J)
    G = np.zeros((n, 3))
    G[:, 0] = G[:, 2] = x
    dirty.dirty(np.ones(max(3 * n, 1)))
    assert np.array_equal(mod.gaps(x), G)
    for t in (0, 2):
        R = np.zeros((n, 2)) if t == 0 else np.stack([x, x], axis=1)
        dirty.dirty(np.ones(max(2 * n, 1)))
        assert np.array_equal(mod.repeat(x, t), R)
    C = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if x[i] > x[j]:
                C[i, j] = 1.0
            else:
                C[j, i] = 2.0
    dirty.dirty(np.ones(max(n * n, 1)))
    assert np.array_equal(mod.crossed(x), C)
