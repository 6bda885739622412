"""promote_sums (machine IR only): a loop's `reassoc` sum into one array element that does not
change with the loop becomes a loop-carried value, added to the element after the loop under
`scf.if lb < ub`.

Structure is checked on hand-written IR: the loop gains one carried value starting at +0.0,
its body no longer loads or stores the element, and right after it `cmpi slt lb, ub` guards
`load; addf (same flags); store`. Every negative (a checked access, an add without
`reassoc`, an index that is not loop-invariant, the array used elsewhere in the loop, read
through a view, passed to a call, carried by the loop or possibly reached through an array
whose root is not a parameter or an alloc, a parameter instead of an alloc, the load or the
sum used twice, the accumulation under an `scf.if`) is a twin of a positive one that differs
in that one respect.

Values: every twin, compiled with the machine pipeline, against the reference interpreter
run on the IR before the pass (the sum order may change: close to rounding), for loops of 0,
1 and many iterations; in the interpreter after the pass, with out-of-range unchecked
accesses as errors, a zero-trip loop whose index is valid only when the loop runs (`A[m]`,
`A[-1]`) must not touch the element (a mutant without the guard does). From `.dad`: the
gradient of a double loop wrt the vector of the outer loop (its shadow element is the inner
reversed loop's sum) against the analytic gradient and the build without the pass, and the
GMM gradient (`means.bar[j, a]` in the reversed loops over the points).
"""
from __future__ import annotations

import math
import pathlib
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import dad.lang.passes as passes
from dad.api import compile_jit
from dad.frontend import compile_to_ir
from dad.lang.irparser import parse_module
from dad.lang.passes import PassManager, promote_sums
from dad.lang.passes.util import const_of
from dad.runtime.compiler import CompiledModule, derive_all, machine_ir, optimize_ir
from test_passes_semantics import BoundsBug, Skip
from test_tidy_stores import Machine, increment_adjoints
from machine_pipelines import MACHINE, machine_pipeline, reverse_pipeline, upto, without

ROOT = pathlib.Path(__file__).resolve().parent.parent
EPS = np.finfo(float).eps

PIPELINES = {"on": MACHINE, "off": without(promote_sums)}


# ----------------------------------------------------------------------------- helpers
def only(text: str):
    return PassManager([promote_sums], verify=True).run(parse_module(text))


def body_ops(loop):
    return loop.regions[0].block.ops


def interp(module, name, args, strict=True):
    """(results or exception name, the array arguments after the call), raw NumPy values."""
    args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    try:
        out = Machine(module, strict).call(name, args)
    except (IndexError, ZeroDivisionError, ValueError) as e:
        out = type(e).__name__
    return out, [a for a in args if isinstance(a, np.ndarray)]


def close(got, want, scale):
    got, want = np.asarray(got, float), np.asarray(want, float)
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= 16 * EPS * scale + 1e-300), (got, want)


def same_outcome(a, b, scale):
    (ra, arrs_a), (rb, arrs_b) = a, b
    assert isinstance(ra, str) == isinstance(rb, str), (ra, rb)
    if isinstance(ra, str):
        assert ra == rb
    else:
        assert len(ra) == len(rb)
        for u, v in zip(ra, rb):
            close(u, v, scale)
    for u, v in zip(arrs_a, arrs_b):
        close(u, v, scale)


def check_promoted(loop_before_results: int, loop, arr: str | tuple, c_name: str | None = None):
    """`loop` carries one more value per promoted sum, starting at +0.0 (-0.0, the exact
    identity, when its add lacks `nsz`), and does not touch the array(s) `arr`; after it
    come the guards, one per sum."""
    arrs = (arr,) if isinstance(arr, str) else arr
    block = loop.parent
    pos = block.ops.index(loop)
    added = len(loop.results) - loop_before_results
    assert added >= 1
    yields = loop.regions[0].block.terminator.operands
    for j, init in enumerate(loop.operands[len(loop.operands) - added:]):
        assert init.op.name == "arith.constant" and const_of(init) == 0.0
        fm = yields[len(yields) - added + j].op.attrs.get("fastmath", "")
        sign = 1.0 if fm in ("reassoc nsz", "fast") else -1.0
        assert math.copysign(1.0, const_of(init)) == sign, fm
        assert block.ops.index(init.op) < pos
    assert not any(o.name in ("memref.load", "memref.store") and set(arrs) & {v.name for v in o.operands}
                   for o in loop.walk())
    guards = []
    for k in range(added):
        cmp, guard = block.ops[pos + 1 + 2 * k], block.ops[pos + 2 + 2 * k]
        assert cmp.name == "arith.cmpi" and cmp.attrs["pred"] == "slt"
        assert cmp.operands == loop.operands[:2]
        assert guard.name == "scf.if" and guard.operands == [cmp.results[0]] and not guard.results
        ld, add, st, y = guard.regions[0].block.ops
        assert [o.name for o in (ld, add, st, y)] == ["memref.load", "arith.addf", "memref.store", "scf.yield"]
        assert [o.name for o in guard.regions[1].block.ops] == ["scf.yield"]
        assert not ld.attrs["checked"] and not st.attrs["checked"]
        assert add.operands[0] is ld.results[0] and add.operands[1].owner is loop
        assert st.operands[0] is add.results[0] and st.operands[1:] == ld.operands
        assert ld.operands[0].name in arrs
        if c_name is not None:
            assert [v.name for v in ld.operands[1:]] == [c_name]
        guards.append((ld, add, st))
    return guards


# ----------------------------------------------------------------------------- pipeline
def test_pass_is_machine_only_and_placed():
    names = [p.__name__ for p in MACHINE()]
    assert promote_sums not in passes.default_pipeline()
    assert names.index("tidy_stores") < names.index("promote_sums") < names.index("ascend_loops")
    assert names.index("promote_sums") < names.index("speculate_zero_safe")


# ----------------------------------------------------------------------------- hand-written twins
HELPERS = """func.func @h(%a: memref<?xf64>) -> f64 attributes {sig = "(a: f64[n]) -> f64"} {
  %z = arith.constant {value = 0} : i64
  %r = memref.load %a, %z {checked = true} : f64
  func.return %r : ()
}
func.func @dup(%a: memref<?xf64>) -> memref<?xf64> attributes {sig = "(a: f64[n]) -> f64[n]"} {
  %n = memref.dim %a {index = 0} : i64
  %b = memref.alloc %n : memref<?xf64>
  memref.copy %a, %b : ()
  func.return %b : ()
}
"""
BASE = """func.func @NAME(%x: memref<?xf64>, %p: memref<?xf64>, %lb: i64, %ub: i64, %c: i64) -> memref<?xf64> attributes {sig = "(x: f64[n], p: f64[m], lb: i64, ub: i64, c: i64) -> f64[m]"} {
  %m = memref.dim %p {index = 0} : i64
  %n = memref.dim %x {index = 0} : i64
  %z = arith.constant {value = 0} : i64
  %one = arith.constant {value = 1} : i64
  %twoi = arith.constant {value = 2} : i64
  %two = arith.constant {value = 2.0} : f64
  %t = arith.cmpi %lb, %z {pred = "sge"} : i1
  %A = memref.alloc %m : memref<?xf64>
  memref.copy %p, %A : ()
  %E = memref.alloc %m : memref<?xf64>
  scf.for %lb, %ub, %one : () {
  ^(%i: i64):
    %l = memref.load %A, %c {checked = false} : f64
    %xi = memref.load %x, %i {checked = false} : f64
    %y = arith.mulf %xi, %two : f64
    %s = arith.addf %l, %y {fastmath = "reassoc nsz"} : f64
    memref.store %s, %A, %c {checked = false} : ()
    scf.yield : ()
  }
  memref.dealloc %E : ()
  func.return %A : ()
}
"""
LOOP = "  scf.for %lb, %ub, %one : () {\n  ^(%i: i64):\n"
LOAD = "    %l = memref.load %A, %c {checked = false} : f64\n"
Y = "    %y = arith.mulf %xi, %two : f64\n"
ADD = '    %s = arith.addf %l, %y {fastmath = "reassoc nsz"} : f64\n'
STORE = "    memref.store %s, %A, %c {checked = false} : ()\n"
ALLOC_E = "  %E = memref.alloc %m : memref<?xf64>\n"


def read(expr: str) -> str:
    """Y with %y also depending on `expr` (a load)."""
    return f"    %q = {expr} : f64\n    %y0 = arith.mulf %xi, %two : f64\n    %y = arith.addf %y0, %q : f64\n"


# name -> (replacements of BASE, sums promoted); each negative differs from a positive in
# the one respect its name gives
TWINS = {
    "base": ([], 1),
    "swapped": ([(ADD, ADD.replace("%l, %y", "%y, %l"))], 1),
    "reassoc_only": ([(ADD, ADD.replace("reassoc nsz", "reassoc"))], 1),
    "step_two": ([(LOOP, LOOP.replace("%ub, %one", "%ub, %twoi"))], 1),
    "reads_a_parameter_view": ([(ALLOC_E, ALLOC_E + "  %P = memref.slice %p, %z, %m : memref<?xf64>\n"),
                                (Y, read("memref.load %P, %c {checked = false}"))], 1),
    "reads_another_alloc": ([(Y, read("memref.load %E, %c {checked = false}"))], 1),
    "calls_with_another_array": ([(Y, read('func.call %x {callee = "h"}'))], 1),
    "another_alloc_by_iv": ([(STORE, STORE + "    %e = memref.load %E, %i {checked = false} : f64\n"
                              '    %e1 = arith.addf %e, %y {fastmath = "reassoc nsz"} : f64\n'
                              "    memref.store %e1, %E, %i {checked = false} : ()\n")], 1),
    "two_sums": ([(STORE, STORE + "    %e = memref.load %E, %c {checked = false} : f64\n"
                   '    %e1 = arith.addf %e, %xi {fastmath = "reassoc nsz"} : f64\n'
                   "    memref.store %e1, %E, %c {checked = false} : ()\n")], 2),
    # negatives
    "plain_add": ([(ADD, ADD.replace(' {fastmath = "reassoc nsz"}', ""))], 0),
    "checked_load": ([(LOAD, LOAD.replace("false", "true"))], 0),
    "checked_store": ([(STORE, STORE.replace("false", "true"))], 0),
    "index_is_iv": ([(LOAD, LOAD.replace("%c", "%i")), (STORE, STORE.replace("%c", "%i"))], 0),
    "index_made_inside": ([(LOAD, "    %ci = arith.addi %c, %z : i64\n" + LOAD.replace("%c ", "%ci ")),
                           (STORE, STORE.replace("%c ", "%ci "))], 0),
    "second_load_of_A": ([(Y, read("memref.load %A, %z {checked = false}"))], 0),
    "second_sum_into_A": ([(STORE, STORE + "    %e = memref.load %A, %z {checked = false} : f64\n"
                            '    %e1 = arith.addf %e, %xi {fastmath = "reassoc nsz"} : f64\n'
                            "    memref.store %e1, %A, %z {checked = false} : ()\n")], 0),
    "view_made_before": ([(ALLOC_E, ALLOC_E + "  %V = memref.slice %A, %z, %m : memref<?xf64>\n"),
                          (Y, read("memref.load %V, %c {checked = false}"))], 0),
    "collapse_made_before": ([(ALLOC_E, ALLOC_E + "  %V = memref.collapse %A : memref<?xf64>\n"),
                              (Y, read("memref.load %V, %z {checked = false}"))], 0),
    "view_made_inside": ([(Y, "    %V = memref.slice %A, %z, %m : memref<?xf64>\n" +
                           read("memref.load %V, %c {checked = false}"))], 0),
    "calls_with_A": ([(Y, read('func.call %A {callee = "h"}'))], 0),
    "parameter": ([(LOAD, LOAD.replace("%A", "%p")), (STORE, STORE.replace("%A", "%p"))], 0),
    "load_used_twice": ([(Y, "    %y = arith.mulf %xi, %l : f64\n")], 0),
    "sum_used_twice": ([(STORE, STORE + "    memref.store %s, %E, %c {checked = false} : ()\n")], 0),
    "under_if": ([(LOAD, "    scf.if %t : () {\n    ^():\n  " + LOAD),
                  (STORE, "  " + STORE + "      scf.yield : ()\n    } {\n    ^():\n      scf.yield : ()\n    }\n"),
                  (ADD, "  " + ADD)], 0),
    "reads_through_if_result": ([(ALLOC_E, ALLOC_E + "  %W = scf.if %t : memref<?xf64> {\n  ^():\n"
                                  "    scf.yield %A : ()\n  } {\n  ^():\n    scf.yield %p : ()\n  }\n"),
                                 (Y, read("memref.load %W, %c {checked = false}"))], 0),
    "reads_through_call_result": ([(ALLOC_E, ALLOC_E + '  %W = func.call %p {callee = "dup"} : memref<?xf64>\n'),
                                   (Y, read("memref.load %W, %c {checked = false}")),
                                   ("  memref.dealloc %E : ()\n", "  memref.dealloc %E : ()\n  memref.dealloc %W : ()\n")],
                                  0),
    "carried_array": ([(LOOP, "  %Af = scf.for %lb, %ub, %one, %A : memref<?xf64> {\n  ^(%i: i64, %b: memref<?xf64>):\n"),
                       (Y, read("memref.load %b, %c {checked = false}")),
                       ("    scf.yield : ()\n  }\n", "    scf.yield %b : ()\n  }\n")], 0),
}


def twin(name: str, fn: str | None = None) -> str:
    text = BASE
    for old, new in TWINS[name][0]:
        assert text.count(old) == 1, (name, old)
        text = text.replace(old, new)
    return text.replace("@NAME", "@" + (fn or "k"))


def twin_module(name: str) -> str:
    return HELPERS + twin(name)


def outer_loop(f):
    [lp] = [o for o in f.body.ops if o.name == "scf.for"]
    return lp


@pytest.mark.parametrize("name", sorted(TWINS))
def test_twin_structure(name):
    before = outer_loop(parse_module(twin_module(name))["k"])
    n_before = len(before.results)
    f = only(twin_module(name))["k"]
    lp = outer_loop(f)
    promoted = TWINS[name][1]
    assert len(lp.results) - n_before == promoted, name
    if promoted:
        guards = check_promoted(n_before, lp, ("A", "E") if name == "two_sums" else "A", "c")
        for ld, add, st in guards:   # the add after the loop has the flags of the one in it
            assert add.attrs == {"fastmath": "reassoc" if name == "reassoc_only" else "reassoc nsz"}
        # the body's add now sums the carried value and what was added to the element
        body = lp.regions[0].block
        sums = body.args[len(body.args) - promoted:]
        adds = [o for o in body.ops if o.name == "arith.addf" and o.operands[0] in sums]
        assert len(adds) == promoted
        assert [v for v in body.terminator.operands[-promoted:]] == [a.results[0] for a in adds]
        assert not any(o.name == "memref.load" and o.operands[0].name == "A" for o in lp.walk())
    else:
        assert sum(o.name == "memref.store" for o in lp.walk()) == \
            sum(o.name == "memref.store" for o in before.walk())


def test_two_sums_are_two_carried_values():
    f = only(twin_module("two_sums"))["k"]
    lp = outer_loop(f)
    arrays = [o.operands[0 if o.name == "memref.load" else 1].name
              for o in lp.walk() if o.name in ("memref.load", "memref.store")]
    assert "A" not in arrays and "E" not in arrays
    names = sorted(g.regions[0].block.ops[0].operands[0].name for g in f.body.ops if g.name == "scf.if")
    assert names == ["A", "E"]


# ----------------------------------------------------------------------------- values
CASES = [  # (lb, ub, c): zero-trip loops with an index valid only when the loop runs first
    (0, 0, 6), (0, 0, -1), (4, 1, 6), (5, 5, -7), (0, 1, 2), (5, 6, 0), (0, 6, 5), (2, 5, 0), (1, 6, 3)]


def inputs(seed=0, n=6):
    rng = np.random.default_rng(seed)
    return rng.uniform(-2.0, 2.0, n), rng.uniform(-2.0, 2.0, n)


@pytest.fixture(scope="module")
def twins_on():
    text = HELPERS + "".join(twin(name, "k_" + name) for name in TWINS)
    with machine_pipeline(PIPELINES["on"]):
        return CompiledModule(parse_module(text), "", filename="k.ir")


@pytest.mark.parametrize("name", sorted(TWINS))
def test_twin_values(twins_on, name):
    ref = parse_module(twin_module(name))
    after = only(twin_module(name))
    x, p = inputs(1)
    scale = 2.0 * float(np.sum(np.abs(x))) + float(np.max(np.abs(p)))
    for lb, ub, c in CASES:
        if name == "index_is_iv" and lb < ub:
            c = 0
        args = [x, p, lb, ub, c]
        want = interp(ref, "k", args)
        # after the pass, nothing is read or written out of range (strict), and the values agree
        same_outcome(interp(after, "k", args, strict=True), want, scale)
        got_p = p.copy()
        got = getattr(twins_on, "k_" + name)(x, got_p, lb, ub, c)
        same_outcome(([got], [x, got_p]), want, scale)


@pytest.mark.parametrize("n", [0, 1, 2, 9, 200])
def test_base_values_against_numpy(twins_on, n):
    x, p = inputs(n, n)
    for lb, ub, c in ((0, n, n - 1), (0, n, 0), (n, 0, n), (0, 0, n - 1), (min(1, n), n, n // 2)):
        want = p.copy()
        if lb < ub:
            want[c] += 2.0 * float(np.sum(x[lb:ub]))
        for name in ("base", "swapped", "reassoc_only"):
            got = getattr(twins_on, "k_" + name)(x, p, lb, ub, c)
            close(got, want, 2.0 * float(np.sum(np.abs(x))) + float(np.max(np.abs(p), initial=0.0)))
            assert np.array_equal(got[np.arange(n) != c], p[np.arange(n) != c])


_after_cache: dict = {}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(TWINS)), st.integers(-3, 7), st.integers(-3, 7), st.integers(-8, 8),
       st.integers(0, 2 ** 32))
def test_property_twins_in_the_interpreter(name, lb, span, c, seed):
    """Random bounds and indices (in range whenever the loop runs): after the pass, no access
    out of range and the same values."""
    ub = lb + span
    if lb < ub:
        assume(0 <= lb and ub <= 6 and 0 <= c < 6)
    if name not in _after_cache:
        _after_cache[name] = (parse_module(twin_module(name)), only(twin_module(name)))
    ref, after = _after_cache[name]
    x, p = inputs(seed)
    args = [x, p, lb, ub, c]
    try:
        want = interp(ref, "k", args, strict=False)
    except Skip:
        assume(False)
    same_outcome(interp(after, "k", args, strict=True), want, 2.0 * float(np.sum(np.abs(x))) + 2.0)


def test_empty_arrays_zero_trip():
    """`A[m - 1]` inside `for i in 0..m` with m = 0: the index is -1 and must not be touched."""
    x = p = np.zeros(0)
    text = twin_module("base")
    after = only(text)
    assert interp(after, "k", [x, p, 0, 0, -1])[0][0].shape == (0,)
    with machine_pipeline(PIPELINES["on"]):
        mod = CompiledModule(parse_module(text), "", filename="k.ir")
    assert mod.k(x, p, 0, 0, -1).shape == (0,)


def unguard(module):
    """Mutant: the guard after a promoted loop always holds."""
    for f in module:
        for op in list(f.walk()):
            if op.name == "arith.cmpi" and op.attrs.get("pred") == "slt":
                op.attrs["pred"] = "sle"
                op.operands = [op.operands[0], op.operands[0]]
    return module


def test_unguarded_mutant_touches_the_element_of_a_zero_trip_loop():
    text = twin_module("base")
    m = PassManager([promote_sums, unguard], verify=True).run(parse_module(text))
    x, p = inputs(2)
    with pytest.raises(BoundsBug):
        interp(m, "k", [x, p, 0, 0, 6])
    assert interp(only(text), "k", [x, p, 0, 0, 6])[1][1].tolist() == p.tolist()


def test_a_wrong_start_of_the_sum_is_seen():
    """Mutant: the carried sum starts at 1.0 instead of +0.0; the interpreter's values show
    it (so the value tests can fail)."""
    text = twin_module("base")
    m = only(text)
    lp = outer_loop(m["k"])
    init = lp.operands[-1].op
    init.attrs["value"] = 1.0
    x, p = inputs(3)
    got = interp(m, "k", [x, p, 0, 6, 2])[0][0]
    want = interp(parse_module(text), "k", [x, p, 0, 6, 2])[0][0]
    assert abs(got[2] - want[2] - 1.0) < 1e-12


# ----------------------------------------------------------------------------- nested loops
NESTED = """func.func @k(%x: memref<?xf64>, %p: memref<?xf64>) -> memref<?xf64> attributes {sig = "(x: f64[n], p: f64[m]) -> f64[m]"} {
  %m = memref.dim %p {index = 0} : i64
  %n = memref.dim %x {index = 0} : i64
  %z = arith.constant {value = 0} : i64
  %one = arith.constant {value = 1} : i64
  %A = memref.alloc %m : memref<?xf64>
  memref.copy %p, %A : ()
  scf.for %z, %m, %one : () {
  ^(%j: i64):
    %pj = memref.load %p, %j {checked = false} : f64
    scf.for %z, %n, %one : () {
    ^(%i: i64):
      %l = memref.load %A, %j {checked = false} : f64
      %xi = memref.load %x, %i {checked = false} : f64
      %d = arith.subf %xi, %pj : f64
      %s = arith.addf %l, %d {fastmath = "reassoc nsz"} : f64
      memref.store %s, %A, %j {checked = false} : ()
      scf.yield : ()
    }
    scf.yield : ()
  }
  func.return %A : ()
}
"""


def test_nested_inner_loop_is_promoted_inside_the_outer_body():
    f = only(NESTED)["k"]
    outer = outer_loop(f)
    [inner] = [o for o in body_ops(outer) if o.name == "scf.for"]
    check_promoted(0, inner, "A", "j")
    assert len(outer.results) == 0           # the outer loop keeps its (now guarded) store
    with machine_pipeline(PIPELINES["on"]):
        mod = CompiledModule(parse_module(NESTED), "", filename="k.ir")
    for n, mm in ((0, 3), (1, 1), (7, 4), (100, 5), (3, 0)):
        x, p = inputs(n + mm, n)[0], inputs(mm, mm)[1]
        want = p + (float(np.sum(x)) - n * p)
        scale = float(np.sum(np.abs(x))) + n * float(np.max(np.abs(p), initial=0.0))
        close(mod.k(x, p), want, scale)
        same_outcome(interp(only(NESTED), "k", [x, p]), interp(parse_module(NESTED), "k", [x, p]), scale)


# ----------------------------------------------------------------------------- from .dad
SRC = """
fn f(x: f64[n], m: f64[k]) -> f64 {
    var s = 0.0;
    for j in 0..k { for i in 0..n { s += (x[i] - m[j]) * (x[i] - m[j]); } }
    return s;
}
fn fg = grad(f, wrt=m);
fn fgx = grad(f);
"""


# m[j] read in every iteration of the loop over i: reverse mode's hoist_loads would record
# it once per j and carry its adjoint as a scalar itself, the work promote_sums does on the
# machine IR; these tests see the adjoint as AD makes it without that
NO_HOIST = ("induction", "canonicalize")


@pytest.fixture(scope="module")
def clean():
    with reverse_pipeline(NO_HOIST):
        return optimize_ir(derive_all(compile_to_ir(SRC, "t.dad")))


def shadow_stores_in_loops(f, name):
    """Stores into `name` directly in an scf.for body (not under the guard's scf.if)."""
    return [o for o in f.walk() if o.name == "memref.store" and o.operands[1].name == name
            and o.parent.parent is not None and o.parent.parent.parent.name == "scf.for"]


def test_dad_inner_reversed_loop_carries_the_shadow_sum(clean):
    before, after = upto(clean, promote_sums, False)["f.vjp.m"], upto(clean, promote_sums, True)["f.vjp.m"]
    assert len(shadow_stores_in_loops(before, "m.bar")) == 1
    assert not shadow_stores_in_loops(after, "m.bar")
    [guard] = [o for o in after.walk() if o.name == "scf.if" and
               any(q.name == "memref.store" and q.operands[1].name == "m.bar" for q in o.walk())]
    block = guard.parent
    loop = block.ops[block.ops.index(guard) - 2]
    assert loop.name == "scf.for"
    check_promoted(len(loop.results) - 1, loop, "m.bar")
    # wrt x too: x.bar[i] changes with the inner loop, m.bar[j] does not
    both = upto(clean, promote_sums, True)["f.vjp.x_m"]
    assert len(shadow_stores_in_loops(both, "x.bar")) == 1
    assert not shadow_stores_in_loops(both, "m.bar")
    # the final machine IR and the clean IR
    assert not shadow_stores_in_loops(machine_ir(clean)["f.vjp.m"], "m.bar")
    assert len(shadow_stores_in_loops(clean["f.vjp.m"], "m.bar")) == 1


@pytest.fixture(scope="module")
def builds():
    out = {}
    for which in ("on", "off"):
        with machine_pipeline(PIPELINES[which]), reverse_pipeline(NO_HOIST):
            mod = compile_jit(SRC, filename="t.dad")
            stores = shadow_stores_in_loops(machine_ir(mod.ir_module)["f.vjp.m"], "m.bar")
        assert bool(stores) == (which == "off")        # the patch took
        out[which] = mod
    return out


@pytest.mark.parametrize("n,k", [(0, 3), (1, 1), (7, 0), (7, 3), (200, 5), (1000, 2)])
def test_dad_gradient_values(builds, n, k):
    rng = np.random.default_rng(10 * n + k)
    x, m = rng.uniform(-2.0, 2.0, n), rng.uniform(-2.0, 2.0, k)
    want_m = -2.0 * (float(np.sum(x)) - n * m)
    want_x = 2.0 * (k * x - float(np.sum(m)))
    scale = 2.0 * float(np.sum(np.abs(x))) + 2.0 * n * float(np.max(np.abs(m), initial=0.0))
    got = builds["on"].fg(x, m)
    off = builds["off"].fg(x, m)
    assert got.shape == (k,)
    np.testing.assert_allclose(got, want_m, rtol=0, atol=8 * n * EPS * scale + 1e-300)
    close(got, off, n * scale)                  # another order of the same terms
    gx, gm = builds["on"].fgx(x, m)
    np.testing.assert_allclose(gm, want_m, rtol=0, atol=8 * n * EPS * scale + 1e-300)
    np.testing.assert_allclose(gx, want_x, rtol=0, atol=8 * k * EPS * scale + 1e-300)
    if n == 0:
        assert np.array_equal(got, np.zeros(k))


# ----------------------------------------------------------------------------- GMM
GMM_GRAD = "gmm_objective.vjp.alphas_means_icf"


@pytest.fixture(scope="module")
def gmm_clean():
    src = (ROOT / "examples" / "gmm.dad").read_text()
    with reverse_pipeline(NO_HOIST):
        return optimize_ir(derive_all(compile_to_ir(src, "gmm.dad")))


def test_gmm_means_shadow_is_a_carried_sum(gmm_clean):
    before = increment_adjoints(upto(gmm_clean, promote_sums, False)[GMM_GRAD])
    after = increment_adjoints(upto(gmm_clean, promote_sums, True)[GMM_GRAD])
    assert before and len(before) == len(after)
    for lp in before:
        assert any(o.name == "memref.store" and o.operands[1].name == "means.bar" for o in lp.walk())
    for lp in after:      # tidy_stores removed qx.bar's stores, promote_sums means.bar's
        assert not any(o.name == "memref.store" for o in lp.walk())
        assert not any(o.name == "memref.load" and o.operands[0].name == "means.bar" for o in lp.walk())
        check_promoted(len(lp.results) - 1, lp, "means.bar")
    final = increment_adjoints(machine_ir(gmm_clean)[GMM_GRAD])
    assert final and not any(o.name == "memref.store" for lp in final for o in lp.walk())


def test_gmm_gradient_values():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks.adbench import io, reference as R
    src = (ROOT / "examples" / "gmm.dad").read_text()
    mods = {}
    for which in ("on", "off"):
        with machine_pipeline(PIPELINES[which]):
            mods[which] = compile_jit(src, filename="gmm.dad")
    for d, k, n, seed in ((2, 3, 30, 4), (3, 2, 100, 5), (1, 1, 1, 6)):
        g = io.generate_gmm(d, k, n, seed=seed)
        on, off = mods["on"].gmm_grad(*g.args()), mods["off"].gmm_grad(*g.args())
        for a, b in zip(on, off):
            assert np.all(np.abs(a - b) <= 1e-12 * max(float(np.max(np.abs(b))), 1.0))
        f = lambda mu: R.gmm_objective(g.alphas, mu, g.icf, g.x, g.gamma, g.m)  # noqa: E731
        scale = max(float(np.max(np.abs(on[1]))), 1.0)
        for idx in ((0, 0), (k - 1, d - 1)):
            h = 1e-5 * max(1.0, abs(g.means[idx]))
            plus, minus = g.means.copy(), g.means.copy()
            plus[idx] += h
            minus[idx] -= h
            assert abs(on[1][idx] - (f(plus) - f(minus)) / (2 * h)) <= 1e-6 * scale


# ----------------------------------------------------------------------------- signs of zero, scopes
SIGNED = twin_module("reassoc_only")


def test_reassoc_nsz_sum_of_negative_zeros_may_lose_the_sign():
    """With nsz the sign of a zero sum is free: no requirement (the values agree as numbers)."""
    x, p = np.full(4, -0.0), np.full(4, -0.0)
    text = twin_module("base")
    (a,), _ = interp(only(text), "k", [x, p, 0, 4, 1])
    (b,), _ = interp(parse_module(text), "k", [x, p, 0, 4, 1])
    assert np.array_equal(a, b)


def test_reassoc_only_sum_of_negative_zeros_keeps_its_sign():
    x, p = np.full(4, -0.0), np.full(4, -0.0)
    (want,), _ = interp(parse_module(SIGNED), "k", [x, p, 0, 4, 1])
    assert math.copysign(1.0, want[1]) == -1.0
    (got,), _ = interp(only(SIGNED), "k", [x, p, 0, 4, 1])
    assert math.copysign(1.0, got[1]) == -1.0


ALLOC_IN_LOOP = """func.func @k(%x: memref<?xf64>) -> f64 attributes {sig = "(x: f64[n]) -> f64"} {
  %n = memref.dim %x {index = 0} : i64
  %z = arith.constant {value = 0} : i64
  %one = arith.constant {value = 1} : i64
  %f0 = arith.constant {value = 0.0} : f64
  scf.for %z, %n, %one : () {
  ^(%i: i64):
    %T = memref.alloc %one : memref<?xf64>
    %xi = memref.load %x, %i {checked = false} : f64
    %l = memref.load %T, %z {checked = false} : f64
    %s = arith.addf %l, %xi {fastmath = "reassoc nsz"} : f64
    memref.store %s, %T, %z {checked = false} : ()
    scf.yield : ()
  }
  func.return %f0 : ()
}
"""


def test_alloc_inside_the_loop_is_not_promoted():
    """An array allocated in the body is not defined after the loop, where the guarded
    load/store would go (a fresh array per iteration besides)."""
    f = only(ALLOC_IN_LOOP)["k"]
    assert any(o.name == "memref.store" for o in outer_loop(f).walk())
    hoisted = ALLOC_IN_LOOP.replace("    %T = memref.alloc %one : memref<?xf64>\n", "").replace(
        "  scf.for %z", "  %T = memref.alloc %one : memref<?xf64>\n  scf.for %z")
    assert not any(o.name == "memref.store" for o in outer_loop(only(hoisted)["k"]).walk())


def test_alloc_inside_the_loop_freed_there_is_not_promoted():
    """The front end frees a loop's temporaries in the loop: a third use, so not promoted."""
    text = ALLOC_IN_LOOP.replace("    scf.yield : ()\n  }", "    memref.dealloc %T : ()\n    scf.yield : ()\n  }")
    f = only(text)["k"]
    assert any(o.name == "memref.store" for o in outer_loop(f).walk())
