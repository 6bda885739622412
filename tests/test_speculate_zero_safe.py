"""speculate_zero_safe (machine IR only): a loop of scalars with `dad.mulz` runs first with plain
products, and as written only when a result it taints came out NaN.

Oracles: the same program compiled with the pass left out of `machine_pipeline` (bit for bit,
up to the sign of a zero derivative), Python ports of the primal functions (same IEEE operations
in the same order, so bit for bit), closed-form derivatives, and central finite differences with
error bounds worked out per function. A mutant of the pass without its fallback shows that the
inputs of the fallback tests do produce NaN on the fast path (so those tests can fail).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dad
from dad.api import compile_jit
from dad.frontend import compile_to_ir
from dad.lang.ir import BOOL, Op
from dad.lang.irparser import parse_module
from dad.lang.passes import PassManager, default_pipeline, speculate_zero_safe
from dad.lang.passes.util import clone_module
from dad.lang.printer import print_function, print_module
from dad.runtime.compiler import CompiledModule, derive_all, machine_ir, optimize_ir
from example_inputs import rosen_gradient, rosen_loop
from machine_pipelines import MACHINE, loops, machine_pipeline, with_after, without

EPS = np.finfo(float).eps
INF, NAN = math.inf, math.nan

ROSEN = """
fn rosen(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n - 1 { let a = x[i + 1] - x[i] * x[i]; let b = 1.0 - x[i]; s += 100.0 * a * a + b * b; }
    return s;
}
fn rj = jvp(rosen, wrt=x);
"""
SRC = ROSEN + """
fn rg = grad(rosen);
fn sq(x: f64[n]) -> f64 { var s = 0.0; for i in 0..n { s += sqrt(x[i]); } return s; }
fn sj = jvp(sq, wrt=x);
fn mix(x: f64[n]) -> f64 {
    var s = 0.0;
    var p = 0.0;
    for i in 0..n { s += sqrt(x[i]) + x[i] * log(x[i]); p += 0.5 * x[i] * x[i]; }
    return s * p + s;
}
fn mj = jvp(mix, wrt=x);
"""
STORES = """
fn st(x: f64[n]) -> f64[n] { var g = zeros(n); for i in 0..n { g[i] = sqrt(x[i]); } return g; }
fn stj = jvp(st, wrt=x);
"""


# ----------------------------------------------------------------------------- helpers
def no_fallback(module):
    """Mutant: every `scf.if` the pass made (condition a NaN test) always takes the fast copy."""
    for f in module:
        for block in [f.body] + [r.block for op in f.walk() for r in op.regions]:
            for op in list(block.ops):
                cond = op.operands[0].op if op.name == "scf.if" else None
                if cond is not None and (cond.name == "arith.ori" or cond.attrs.get("pred") == "uno"):
                    false = Op("arith.constant", [], [BOOL], {"value": False})
                    false.parent = block
                    block.ops.insert(block.ops.index(op), false)
                    op.operands[0] = false.result
    return module


PIPELINES = {
    "on": MACHINE,
    "off": without(speculate_zero_safe),
    "mutant": with_after(speculate_zero_safe, no_fallback),
}


def clean_ir(src: str, fast_math: bool = False):
    """What `dad.compile` keeps as `ir_module`: front end, derivations, default pipeline."""
    return optimize_ir(derive_all(compile_to_ir(src, "t.dad", fast_math=fast_math)))


def lowered(m, which: str = "on"):
    """`m`'s machine IR after one of PIPELINES (verified after every pass); `m` is untouched."""
    return PassManager(PIPELINES[which](), verify=True).run(clone_module(m))


class Build:
    """`src` compiled without the cache with one of PIPELINES as `machine_pipeline`, plus the
    run-time derived kernels (made while the same pipeline is in place)."""

    def __init__(self, src: str, which: str, jvps=(), grads=()):
        with machine_pipeline(PIPELINES[which]):
            self.mod = compile_jit(src, filename="t.dad")
            self.jvp = {n: dad.jvp(getattr(self.mod, n), wrt="x") for n in jvps}
            self.grad = {n: dad.grad(getattr(self.mod, n)) for n in grads}
            self.machine_text = print_module(machine_ir(self.mod.ir_module))
            self.derived_text = "".join(print_module(machine_ir(k.module.ir_module))
                                        for k in list(self.jvp.values()) + list(self.grad.values()))
        if which == "off":   # the patch took: nothing rewritten, here or at run time
            assert "uno" not in self.machine_text and "uno" not in self.derived_text

    def __getattr__(self, name):
        return getattr(self.mod, name)


def same(a, b) -> bool:
    """Equal up to the sign of a zero (so inf == inf), NaN where the other is NaN."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def bits(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def identical(a, b) -> bool:
    """Bit for bit, except that any NaN matches any NaN (payloads are not the program's)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return same(a, b) and bits(np.where(np.isnan(a), 0.0, a), np.where(np.isnan(b), 0.0, b))



def rosen_hess_py(x) -> np.ndarray:
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200.0 * x[i] ** 2 - 400.0 * x[i + 1] + 2.0
        h[i, i + 1] += -400.0 * x[i]
        h[i + 1, i] += -400.0 * x[i]
        h[i + 1, i + 1] += 200.0
    return h


def sq_py(x) -> float:
    s = 0.0
    for xi in x:
        s += math.sqrt(xi)
    return s


def sq_tangent_oracle(x, v) -> float:
    """d/dt sum(sqrt(x + t v)): the sum of v_i / (2 sqrt(x_i)) over the i with v_i != 0 (an
    index the direction does not move contributes exactly 0, whatever sqrt' is there);
    sqrt'(-0.0) is +inf as at +0.0 (LANGUAGE.md), hence the `+ 0.0`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(sum((np.float64(vi) / (2.0 * (np.sqrt(np.float64(xi)) + 0.0)) for xi, vi in zip(x, v) if vi != 0),
                         np.float64(0.0)))


def close_to_oracle(t, x, v):
    """The sqrt-sum tangent against `sq_tangent_oracle`: the same where that is not finite,
    else within the rounding of n products, quotients and sums (4 n eps of the magnitudes)."""
    want = sq_tangent_oracle(x, v)
    if not math.isfinite(want):
        assert same(t, want), (t, want)
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        mags = [abs(vi) / (2 * math.sqrt(xi)) if xi > 0 else 0.0 for xi, vi in zip(x, v) if vi != 0]
    assert abs(t - want) <= 4 * len(x) * EPS * sum(mags), (t, want)


def shape(loop):
    """The loop's ops as (name, attrs, operands), operands numbered by where they are defined
    inside the loop, or kept as the very value when defined outside it."""
    num = {}
    for a in loop.regions[0].block.args:
        num[a] = len(num)
    out = []
    for op in loop.walk():
        for r in op.regions:
            for a in r.block.args:
                num.setdefault(a, len(num))
        out.append((op.name, sorted(op.attrs.items()),
                    [("in", num[v]) if v in num else ("out", id(v)) for v in op.operands]))
        for r in op.results:
            num[r] = len(num)
    return out


@pytest.fixture(scope="module")
def on():
    return Build(SRC, "on", jvps=("rosen", "sq", "mix"), grads=("rosen", "sq"))


@pytest.fixture(scope="module")
def off():
    return Build(SRC, "off", jvps=("rosen", "sq", "mix"), grads=("rosen", "sq"))


@pytest.fixture(scope="module")
def mutant():
    return Build(SRC, "mutant", jvps=("sq",))


# ----------------------------------------------------------------------------- 1. structure
def test_pass_is_machine_only():
    assert speculate_zero_safe in MACHINE()
    assert speculate_zero_safe not in default_pipeline()


def test_rosen_jvp_structure():
    m = clean_ir(ROSEN)
    before = print_module(m)
    mm = machine_ir(m)
    assert print_module(m) == before                      # the module derivations start from
    assert "dad.mulz" in print_function(m["rj"]) and "uno" not in before
    assert "scf.if" not in print_function(m["rj"]) and len(loops(m["rj"])) == 1
    # no mulz in the primal: the same as without the pass
    assert print_function(mm["rosen"]) == print_function(lowered(m, "off")["rosen"])

    f = mm["rj"]
    fors = loops(f)
    assert len(fors) == 2
    fast = [lp for lp in fors if not any(o.name == "dad.mulz" for o in lp.walk())]
    slow = [lp for lp in fors if any(o.name == "dad.mulz" for o in lp.walk())]
    assert len(fast) == 1 and len(slow) == 1
    fast, slow = fast[0], slow[0]
    # the copy is the loop as it was, with arith.mulf in place of every dad.mulz
    assert fast.parent is f.body
    n_mulz = sum(o.name == "dad.mulz" for o in slow.walk())
    assert n_mulz >= 3
    want = [("arith.mulf" if name == "dad.mulz" else name, attrs, ops) for name, attrs, ops in shape(slow)]
    assert shape(fast) == want
    # scf.if (fast tangent is NaN) { the original loop } else { the copy }; only the tangent
    # (result 1) is tested: the primal `s` never meets a mulz product
    choice = slow.parent.parent.parent
    assert choice.name == "scf.if" and choice.parent is f.body
    assert slow.parent is choice.regions[0].block
    nan = choice.operands[0].op
    assert nan.name == "arith.cmpf" and nan.attrs["pred"] == "uno"
    assert nan.operands == [fast.results[1], fast.results[1]]
    assert sum(o.name == "arith.cmpf" and o.attrs.get("pred") == "uno" for o in f.walk()) == 1
    assert choice.regions[0].block.ops[-1].operands == slow.results
    assert choice.regions[1].block.ops[-1].operands == fast.results
    ret = f.body.ops[-1]
    assert ret.name == "func.return" and ret.operands == choice.results
    assert f.body.ops.index(fast) < f.body.ops.index(nan) < f.body.ops.index(choice)


def test_compiled_module_keeps_clean_ir(on):
    """`ir_module` (what run-time derivations start from) has no copies; the machine IR has."""
    ir = on.mod.ir
    assert "uno" not in ir and "scf.if" not in print_function(on.mod.ir_module["rj"])
    assert "dad.mulz" in print_function(on.mod.ir_module["rj"])
    for name in ("rj", "sj", "mj"):
        text = print_function(machine_ir(on.mod.ir_module)[name])
        assert text.count('pred = "uno"') >= 1, name
    assert "uno" in on.derived_text                     # run-time jvps are rewritten too


def test_second_order_derivation_from_clean_ir(on):
    """A derivation of the derived `rj` (from `ir_module`) is exact: H v . w by hand."""
    k = dad.jvp(on.rj, wrt="x")
    assert "uno" not in print_module(k.module.ir_module)
    rng = np.random.default_rng(5)
    x, v, w = rng.normal(size=(3, 7))
    p, t, dp, dt = k(x, v, w)      # rj(x, v) and its derivative along w
    assert p == rosen_loop(x.tolist()) and t == on.rj(x, v)[1]
    hvw = v @ rosen_hess_py(x) @ w
    assert dt == pytest.approx(hvw, rel=1e-11, abs=1e-11 * np.abs(rosen_hess_py(x)).sum())
    assert dp == pytest.approx(rosen_gradient(x) @ w, rel=1e-11)


# ----------------------------------------------------------------------------- 2. not applied
def _not_applied(m):
    on_text, off_text = print_module(lowered(m, "on")), print_module(lowered(m, "off"))
    assert "uno" not in on_text
    assert on_text == off_text


def test_not_applied_to_loop_with_stores():
    m = clean_ir(STORES)
    [lp] = loops(m["stj"])
    assert any(o.name == "dad.mulz" for o in lp.walk())   # a candidate but for its store
    assert any(o.name == "memref.store" for o in lp.walk())
    _not_applied(m)


def test_not_applied_under_fast_math():
    assert "uno" in print_module(lowered(clean_ir(SRC), "on"))   # the same source without it
    m = clean_ir(SRC, fast_math=True)
    assert m.fast_math and "dad.mulz" in print_module(m)
    _not_applied(m)
    mod = compile_jit(SRC, fast_math=True, filename="t.dad")
    assert "uno" not in print_module(machine_ir(mod.ir_module))


def test_not_applied_to_run_time_derivations_under_fast_math():
    """`dad.jvp` of a function of a fast_math module derives from that module's IR, whose ops
    carry fastmath = "fast" (no NaNs assumed): the NaN test of a copy may be folded away, so
    the pass must not run there either. The oracle: the tangent of sum(sqrt(x)) along v with
    v = 0 where x = 0 is 1/2 + 1/4 (the zero-safe product, which fast math keeps: `sj`)."""
    src = ("fn sq(x: f64[n]) -> f64 { var s = 0.0; for i in 0..n { s += sqrt(x[i]); } return s; }\n"
           "fn sj = jvp(sq, wrt=x);\n")
    mod = compile_jit(src, fast_math=True, filename="t.dad")
    x, v = np.array([0.0, 1.0, 4.0]), np.array([0.0, 1.0, 1.0])
    assert mod.sj(x, v) == (3.0, 0.75)
    k = dad.jvp(mod.sq, wrt="x")
    assert k(x, v) == (3.0, 0.75)
    assert "uno" not in print_module(machine_ir(k.module.ir_module))


HEAD = """func.func @k(%x: memref<?xf64>, %x_dot: memref<?xf64>) -> (f64, f64) attributes {sig = "(x: f64[n], x_dot: f64[n]) -> (f64, f64)"} {
  %n = memref.dim %x {index = 0} : i64
  %z = arith.constant {value = 0} : i64
  %one = arith.constant {value = 1} : i64
  %zero = arith.constant {value = 0.0} : f64
  %mzero = arith.constant {value = -0.0} : f64
  %c1 = arith.constant {value = 1.0} : f64
  %s, %t = scf.for %z, %n, %one, %zero, %mzero : (f64, f64) {
  ^(%i: i64, %s0: f64, %t0: f64):
    %xi = memref.load %x, %i {checked = false} : f64
    %vi = memref.load %x_dot, %i {checked = false} : f64
    %p = dad.mulz %vi, %xi : f64
"""
MID = """    %s1 = arith.addf %s0, %xi : f64
    scf.yield %s1, %t1 : ()
  }
"""
PLAIN = "    %t1 = arith.addf %t0, %p : f64\n"
RETURN = "  func.return %s, %t : ()\n"

# (body defining %t1, after the loop ending in func.return, applied?)
HAND = {
    "plain": (PLAIN, RETURN, True),
    "numerator_select_and_compare_after": (
        "    %q = arith.divf %p, %xi : f64\n"
        "    %c = arith.cmpf %xi, %c1 {pred = \"ogt\"} : i1\n"
        "    %r = arith.select %c, %q, %p : f64\n"
        "    %t1 = arith.addf %t0, %r : f64\n",
        "  %c2 = arith.cmpf %t, %zero {pred = \"olt\"} : i1\n"
        "  %r2 = arith.select %c2, %zero, %t : f64\n"
        "  func.return %s, %r2 : ()\n", True),
    "cmpf_in_body": (
        "    %c = arith.cmpf %p, %zero {pred = \"ogt\"} : i1\n"
        "    %r = arith.select %c, %p, %zero : f64\n"
        "    %t1 = arith.addf %t0, %r : f64\n", RETURN, False),
    "select_condition_in_body": (
        "    %c = arith.cmpf %p, %p {pred = \"oeq\"} : i1\n"
        "    %r = arith.select %c, %xi, %zero : f64\n"
        "    %t1 = arith.addf %t0, %r : f64\n", RETURN, False),
    "math_in_body": (
        "    %e = math.exp %p : f64\n"
        "    %t1 = arith.addf %t0, %e : f64\n", RETURN, False),
    "divisor_in_body": (
        "    %q = arith.divf %xi, %p : f64\n"
        "    %t1 = arith.addf %t0, %q : f64\n", RETURN, False),
    "divisor_after": (PLAIN, "  %r = arith.divf %c1, %t : f64\n  func.return %s, %r : ()\n", False),
    "math_after": (PLAIN, "  %r = math.sqrt %t : f64\n  func.return %s, %r : ()\n", False),
    "compare_after_then_divide": (
        PLAIN, "  %c2 = arith.cmpf %t, %zero {pred = \"olt\"} : i1\n"
               "  %r2 = arith.select %c2, %zero, %t : f64\n"
               "  %r3 = arith.divf %c1, %r2 : f64\n"
               "  func.return %s, %r3 : ()\n", False),
}


def hand(name: str):
    body, tail, _ = HAND[name]
    return parse_module(HEAD + body + MID + tail + "}\n")


@pytest.mark.parametrize("name", sorted(HAND))
def test_hand_built_loops(name):
    applied = HAND[name][2]
    m = hand(name)
    text = print_module(lowered(m, "on"))
    if applied:
        assert text.count('pred = "uno"') == 1 and text.count("dad.mulz") == 1
        assert "scf.if" in text
    else:
        _not_applied(m)


def _compile_ir(text: str, which: str) -> CompiledModule:
    with machine_pipeline(PIPELINES[which]):
        return CompiledModule(parse_module(text), "", filename="k.ir")


def test_hand_built_divisor_after_loop_keeps_sign():
    """t = -0.0 + mulz(0, -1) = -0.0 + 0.0 = +0.0, so 1/t = +inf; the plain product would give
    -0.0 and 1/t = -inf. Also, with x = inf: mulz(0, inf) = 0, so 1/t = inf again (the plain
    product: NaN)."""
    body, tail, _ = HAND["divisor_after"]
    k = _compile_ir(HEAD + body + MID + tail + "}\n", "on")
    assert k.k(np.array([-1.0]), np.array([0.0])) == (-1.0, INF)
    assert k.k(np.array([INF]), np.array([0.0])) == (INF, INF)
    assert k.k(np.array([2.0, 3.0]), np.array([1.0, 0.5])) == (5.0, 1.0 / 3.5)  # 1 / (1 * 2 + 0.5 * 3)


def test_hand_built_fallback_values():
    """The plain loop: t = -0.0 + sum(mulz(v, x)); at x = inf, v = 0 the copy gives NaN."""
    k = _compile_ir(hand_text := HEAD + PLAIN + MID + RETURN + "}\n", "on")
    kk = _compile_ir(hand_text, "mutant")
    x, v = np.array([2.0, INF, -3.0]), np.array([0.5, 0.0, 2.0])
    assert k.k(x, v) == (INF, 0.5 * 2.0 + 0.0 + 2.0 * -3.0)
    assert math.isnan(kk.k(x, v)[1])                     # so the fallback really ran


TWO = """func.func @k2(%x: memref<?xf64>, %x_dot: memref<?xf64>) -> (f64, f64) attributes {sig = "(x: f64[n], x_dot: f64[n]) -> (f64, f64)"} {
  %n = memref.dim %x {index = 0} : i64
  %z = arith.constant {value = 0} : i64
  %one = arith.constant {value = 1} : i64
  %zero = arith.constant {value = 0.0} : f64
  %c1 = arith.constant {value = 1.0} : f64
  %t, %u = scf.for %z, %n, %one, %zero, %zero : (f64, f64) {
  ^(%i: i64, %t0: f64, %u0: f64):
    %xi = memref.load %x, %i {checked = false} : f64
    %vi = memref.load %x_dot, %i {checked = false} : f64
    %d = arith.divf %c1, %xi : f64
    %p = dad.mulz %vi, %xi : f64
    %q = dad.mulz %vi, %d : f64
    %t1 = arith.addf %t0, %p : f64
    %u1 = arith.addf %u0, %q : f64
    scf.yield %t1, %u1 : ()
  }
  func.return %t, %u : ()
}
"""


@pytest.mark.parametrize("bad", [INF, 0.0])
def test_every_tainted_result_is_tested(bad):
    """t = sum mulz(v, x), u = sum mulz(v, 1/x): v = 0 at x = inf makes only t NaN on the fast
    path, at x = 0 only u; either must send the loop back to the zero-safe products."""
    text = print_module(lowered(parse_module(TWO), "on"))
    assert text.count('pred = "uno"') == 2 and "arith.ori" in text
    x, v = np.array([2.0, bad, 0.5]), np.array([1.0, 0.0, -1.0])
    assert _compile_ir(TWO, "on").k2(x, v) == (2.0 - 0.5, 0.5 - 2.0)
    assert math.isnan(_compile_ir(TWO, "mutant").k2(x, v)[0 if bad == INF else 1])


# an outer loop carries the inner loop's tangent sum `s` back into the inner loop
NESTED = """func.func @h(%x: memref<?xf64>, %x_dot: memref<?xf64>) -> f64 attributes {sig = "(x: f64[n], x_dot: f64[n]) -> f64"} {
  %n = memref.dim %x {index = 0} : i64
  %z = arith.constant {value = 0} : i64
  %one = arith.constant {value = 1} : i64
  %two = arith.constant {value = 2} : i64
  %mzero = arith.constant {value = -0.0} : f64
  %s_out, %q_out = scf.for %z, %two, %one, %mzero, %mzero : (f64, f64) {
  ^(%a: i64, %s: f64, %q: f64):
    %t, %w = scf.for %z, %n, %one, %mzero, INIT : (f64, f64) {
    ^(%i: i64, %acc: f64, %w0: f64):
      %xi = memref.load %x, %i {checked = false} : f64
      %vi = memref.load %x_dot, %i {checked = false} : f64
      %p = dad.mulz %vi, %xi : f64
      %r = arith.divf %xi, DIVISOR : f64
      %acc2 = arith.addf %acc, %p : f64
      scf.yield %acc2, %r : ()
    }
    %s2 = arith.addf %s, %t : f64
    scf.yield %s2, %w : ()
  }
  func.return %q_out : ()
}
"""
# direct: the inner body divides by `s` itself; init: `s` enters as the inner loop's initial `w0`
NESTED_CASES = {"direct": NESTED.replace("INIT", "%mzero").replace("DIVISOR", "%s"),
                "init": NESTED.replace("INIT", "%s").replace("DIVISOR", "%w0")}


@pytest.mark.parametrize("case", sorted(NESTED_CASES))
def test_tangent_carried_back_into_the_loop(case):
    """Outer iteration 1: s = -0.0, the inner sum is -0.0 + mulz(0, -1) = +0.0, so s = +0.0.
    Outer iteration 2: r = -1 / +0.0 = -inf, returned. With the plain product the inner sum is
    -0.0, s stays -0.0 and r = +inf: the sign of a zero derivative reaches a divisor through
    the enclosing loop, so the inner loop must be left as it is (the contract: "a result
    carried back into it by an enclosing loop is a use it may not have")."""
    text = NESTED_CASES[case]
    x, v = np.array([-1.0]), np.array([0.0])
    assert _compile_ir(text, "off").h(x, v) == -INF       # the IR as written
    assert _compile_ir(text, "on").h(x, v) == -INF
    _not_applied(parse_module(text))


# ----------------------------------------------------------------------------- 3. semantics
def rosen_fd_check(f, x, v, jv, h=1e-4):
    """g(t) = rosen(x + t v) is a quartic, so in exact arithmetic the central difference is
    g'(0) + h^2/6 g'''(0) exactly, with g''' = sum_i 1200 A1_i A2_i (a_i(t) = a_i + A1_i t + A2_i t^2,
    A1_i = v[i+1] - 2 x[i] v[i], A2_i = -v[i]^2; the (1 - x_i)^2 terms are quadratics). What
    is left is rounding: each of the two sums of n-1 terms is off by at most ~ 8 n eps S
    (S: the sum of the magnitudes of its terms), divided by 2h."""
    a1 = v[1:] - 2.0 * x[:-1] * v[:-1]
    g3 = float(np.sum(1200.0 * a1 * -(v[:-1] ** 2)))
    fd = (f(x + h * v) - f(x - h * v)) / (2 * h)
    terms = lambda y: np.sum(100.0 * (y[1:] - y[:-1] ** 2) ** 2 + (1.0 - y[:-1]) ** 2)
    S = terms(np.abs(x) + h * np.abs(v))
    tol = 8 * len(x) * EPS * S / h + 1e-12 * abs(h * h / 6 * g3)
    assert abs(fd - (jv + h * h / 6 * g3)) <= tol, (fd, jv, tol)
    assert tol < 1e-6 * (1 + abs(jv))      # the check is far tighter than a wrong derivative


def sq_fd_check(f, x, v, jv, h=1e-5):
    """Central difference of g(t) = sum sqrt(x + t v): |D(h) - g'(0)| <= h^2/6 max|g'''| on
    [-h, h] (Lagrange remainder), g''' = sum 3/8 (x + t v)^(-5/2) v^3; rounding as above."""
    m3 = float(np.sum(3 / 8 * (x - h * np.abs(v)) ** -2.5 * np.abs(v) ** 3))
    fd = (f(x + h * v) - f(x - h * v)) / (2 * h)
    tol = h * h / 6 * m3 + 8 * len(x) * EPS * np.sum(np.sqrt(x + h * np.abs(v))) / h
    assert abs(fd - jv) <= tol, (fd, jv, tol)
    assert tol < 1e-6 * (1 + abs(jv))


def mix_tangent_oracle(x, v) -> tuple[float, float]:
    s = np.sum(np.sqrt(x) + x * np.log(x))
    p = np.sum(0.5 * x * x)
    ds = np.sum(v * (0.5 / np.sqrt(x) + np.log(x) + 1.0))
    dp = np.sum(v * x)
    scale = np.sum(np.abs(v) * (0.5 / np.sqrt(x) + np.abs(np.log(x)) + 1.0)) * (abs(p) + 1) + abs(s) * np.sum(np.abs(v * x))
    return ds * p + s * dp + ds, scale


@pytest.mark.parametrize("seed", range(4))
def test_random_points_match_pass_off_and_oracles(on, off, seed):
    rng = np.random.default_rng(seed)
    n = [2, 5, 11, 32][seed]
    x, v = rng.normal(size=n), rng.normal(size=n)
    xp = rng.uniform(0.5, 3.0, size=n)
    # rosen: jvp and grad, declared in the source and derived at run time
    outs = []
    for b in (on, off):
        outs.append((b.rj(x, v), b.jvp["rosen"](x, v), b.rg(x), b.grad["rosen"](x),
                     b.sj(xp, v), b.jvp["sq"](xp, v), b.grad["sq"](xp),
                     b.mj(xp, v), b.jvp["mix"](xp, v)))
    for a, b in zip(*outs):
        assert same(a, b)
        assert bits(np.abs(np.asarray(a, dtype=float)), np.abs(np.asarray(b, dtype=float)))
    (p, t), (p2, t2), g, g2, (sp, stan), _, sg, (mp, mt), _ = outs[0]
    assert p == p2 == on.rosen(x) == rosen_loop(x.tolist())
    assert sp == on.sq(xp) == sq_py(xp.tolist())
    assert bits(mp, on.mix(xp))
    # closed forms
    G = rosen_gradient(x)
    assert t == pytest.approx(G @ v, rel=0, abs=1e-12 * np.sum(np.abs(G * v)) + 1e-300)
    assert np.allclose(g, G, rtol=1e-13, atol=1e-13 * np.abs(G).max())
    assert np.array_equal(g, g2)
    assert stan == pytest.approx(np.sum(v / (2 * np.sqrt(xp))), rel=0,
                                 abs=4 * n * EPS * np.sum(np.abs(v / (2 * np.sqrt(xp)))))
    assert np.allclose(sg, 0.5 / np.sqrt(xp), rtol=4 * EPS, atol=0)
    want, scale = mix_tangent_oracle(xp, v)
    assert abs(mt - want) <= 16 * n * EPS * scale
    # central finite differences
    rosen_fd_check(on.rosen, x, v, t)
    for i in range(min(n, 4)):
        e = np.zeros(n)
        e[i] = 1.0
        rosen_fd_check(on.rosen, x, e, g[i])
    sq_fd_check(on.sq, xp, v, stan)


def _sq_case(n, zeros, seed):
    rng = np.random.default_rng(seed)
    x, v = rng.uniform(0.25, 4.0, size=n), rng.normal(size=n)
    x[zeros], v[zeros] = 0.0, 0.0
    return x, v


@pytest.mark.parametrize("n,zeros", [(1, [0]), (4, [1]), (9, [0, 8]), (40, [3, 17, 39])])
def test_fallback_when_zero_tangent_meets_infinite_derivative(on, off, mutant, n, zeros):
    """sqrt'(0) = inf where v = 0: the zero-safe product is 0, the plain one NaN, so the fast
    copy's tangent is NaN and the loop must run again as written."""
    x, v = _sq_case(n, zeros, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.isnan(np.sum(v * (0.5 / np.sqrt(x))))            # plain products: NaN
    assert math.isnan(mutant.sj(x, v)[1]) and math.isnan(mutant.jvp["sq"](x, v)[1])
    want = sum(v[i] / (2 * math.sqrt(x[i])) for i in range(n) if i not in zeros)
    scale = sum(abs(v[i]) / (2 * math.sqrt(x[i])) for i in range(n) if i not in zeros)
    for k in (on.sj, on.jvp["sq"]):
        p, t = k(x, v)
        assert math.isfinite(t)
        assert abs(t - want) <= 4 * n * EPS * scale
        close_to_oracle(t, x, v)
        assert p == on.sq(x) == sq_py(x.tolist())                 # primal bit for bit
        assert bits(k(x, v), off.sj(x, v))
    # the same holds for mix (log'(0) = inf, sqrt'(0) = inf): up to NaN from 0 * log 0 in the
    # primal; its tangent agrees with the build without the pass
    assert same(on.mj(x, v), off.mj(x, v)) and same(on.jvp["mix"](x, v), off.mj(x, v))


@pytest.mark.parametrize("x,v,want", [
    ([0.0, 1.0], [1.0, 1.0], INF),                 # v != 0 at x = 0: the derivative is inf
    ([0.0, 1.0], [-2.0, 0.0], -INF),
    ([0.0, 0.0, 4.0], [1.0, 0.0, 1.0], INF),       # ... and a 0 * inf elsewhere (fallback)
    ([0.0, 0.0], [1.0, -1.0], NAN),                # inf - inf
    ([-1.0, 4.0], [0.0, 1.0], 0.25),               # sqrt(-1) = NaN primal, v = 0 there
    ([-1.0, 4.0], [1.0, 1.0], NAN),
    ([INF, 4.0], [0.0, 1.0], 0.25),                # sqrt'(inf) = 0
    ([INF, 4.0], [1.0, 1.0], 0.25),
])
def test_legitimate_infinities_and_nans(on, off, x, v, want):
    x, v = np.array(x), np.array(v)
    oracle = sq_tangent_oracle(x, v)
    assert same(oracle, want)
    for k in (on.sj, on.jvp["sq"]):
        p, t = k(x, v)
        assert same(t, want), (t, want)
        assert identical(p, on.sq(x))
        assert same(k(x, v), off.sj(x, v))


# ----------------------------------------------------------------------------- 4. property
SPECIAL_X = [0.0, -0.0, INF, 1.0, 4.0, -1.0, 1e-300, 1e300]
xs = st.one_of(st.sampled_from(SPECIAL_X), st.floats(0.0, 100.0))
vs = st.one_of(st.sampled_from([0.0, -0.0]), st.floats(-10.0, 10.0))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(xs, vs), min_size=1, max_size=8))
def test_property_matches_pass_off(on, off, pairs):
    x = np.array([p[0] for p in pairs])
    v = np.array([p[1] for p in pairs])
    for name, primal in (("sj", on.sq), ("mj", on.mix)):
        a, b = getattr(on, name)(x, v), getattr(off, name)(x, v)
        assert same(a, b), (name, a, b)
        assert identical(a[0], b[0]) and identical(a[0], primal(x))  # primals bit for bit
    assert same(on.jvp["mix"](x, v), off.jvp["mix"](x, v))
    assert same(on.jvp["sq"](x, v), off.sj(x, v))
    close_to_oracle(on.sj(x, v)[1], x, v)


MATVEC = """
fn mv(A: f64[n, n], x: f64[n]) -> f64[n] {
    return matvec(A, x);
}
fn mvj = jvp(mv, wrt=x);
"""


def test_sums_from_zero_are_speculated_even_when_stored():
    """A matvec's tangent row sums start at +0.0 and are only added to: their results may be
    stored (the signs of zero terms cannot show in such a sum), and the fallback still runs."""
    text = print_module(machine_ir(optimize_ir(derive_all(compile_to_ir(MATVEC, "mv.dad")))))
    assert 'pred = "uno"' in text
    mod = dad.compile(MATVEC, filename="mv.dad")
    rng = np.random.default_rng(5)
    A, x, v = rng.standard_normal((6, 6)), rng.standard_normal(6), rng.standard_normal(6)
    y, yd = mod.mvj(A, x, v)
    np.testing.assert_allclose(yd, A @ v, rtol=1e-14, atol=1e-14)
    # an infinite entry meeting a zero direction: the term is exactly 0, not NaN
    A[2, 4], v[4] = INF, 0.0
    y, yd = mod.mvj(A, x, v)
    want = A[:, [0, 1, 2, 3, 5]] @ v[[0, 1, 2, 3, 5]]
    assert np.all(np.isfinite(yd))
    np.testing.assert_allclose(yd, want, rtol=1e-14, atol=1e-14)


# ----------------------------------------------------------------------------- 5. whole functions
# A vjp of a scalar function (straight-line, a branch in it) called once per element, as
# examples/ba.dad calls `res_vjp` per observation.
PER = """
fn h(x: f64, y: f64) -> f64 {
    var r = 0.0;
    if y > -5.0 { r = sqrt(x) * y + y * y; } else { r = x * y; }
    return r;
}
fn hv = vjp(h, wrt=[x, y]);
fn per(xs: f64[n], ys: f64[n], w: f64[n]) -> f64[n, 2] {
    var g = zeros(n, 2);
    for i in 0..n {
        let (v, gx, gy) = hv(xs[i], ys[i], w[i]);
        g[i, 0] = gx;
        g[i, 1] = gy;
    }
    return g;
}
"""


@pytest.fixture(scope="module")
def per_builds():
    return {w: Build(PER, w) for w in ("on", "off", "mutant")}


def h_grad(x, y, w):
    """Closed form of hv's cotangents for y > -5: w * (y / (2 sqrt x), sqrt x + 2 y), with
    the zero-safe convention (a zero factor times inf is 0)."""
    gx = 0.0 if w * y == 0 else w * y / (2 * math.sqrt(x))
    return gx, w * (math.sqrt(x) + 2 * y)


def test_function_structure():
    m = clean_ir(PER)
    assert "dad.mulz" in print_function(m["hv"]) and "uno" not in print_module(m)
    mm = lowered(m, "on")
    f, slow = mm["hv"], mm["hv.zero_safe"]
    assert slow.attrs.get("cold") and slow.attrs.get("internal")
    assert "hv.zero_safe" not in m.functions                      # machine IR only
    # the slow function is hv as it was; the fast one the same ops with mulf for mulz
    assert print_function(slow).split("\n", 1)[1] == print_function(m["hv"]).split("\n", 1)[1]
    assert not any(o.name == "dad.mulz" for o in f.walk())
    n_mulz = sum(o.name == "dad.mulz" for o in m["hv"].walk())
    assert n_mulz >= 2
    assert sum(o.name == "arith.mulf" for o in f.walk()) == \
        sum(o.name == "arith.mulf" for o in m["hv"].walk()) + n_mulz
    ret = f.body.ops[-1]
    choice = ret.operands[0].op
    assert ret.name == "func.return" and choice.name == "scf.if" and ret.operands == choice.results
    [call, _] = choice.regions[0].block.ops
    assert call.name == "func.call" and call.attrs["callee"] == "hv.zero_safe"
    assert call.operands == f.params
    # only the two cotangents are tested (the value never meets a mulz product)
    assert sum(o.attrs.get("pred") == "uno" for o in f.walk()) == 2
    # the pass is idempotent on its output: the cold copy is not speculated again
    again = PassManager([speculate_zero_safe], verify=True).run(clone_module(mm))
    assert print_module(again) == print_module(mm)


def test_fast_function_is_still_inlined(per_builds):
    """The point of the cold copy: `hv` stays small enough to be inlined into `per`'s loop;
    only the cold copy is called."""
    called = set(re.findall(r'call [^@]*@"?([\w.]+)', per_builds["on"].mod.per.llvm_ir))
    assert "dad.impl.hv.zero_safe" in called and "dad.impl.hv" not in called
    called_off = set(re.findall(r'call [^@]*@"?([\w.]+)', per_builds["off"].mod.per.llvm_ir))
    assert "dad.impl.hv" not in called_off
    # the cold copy is lowered `cold noinline`: never inlined back into the fast body
    text = per_builds["on"].mod.llvm_ir
    [group] = re.findall(r'define [^\n]*@"?dad\.impl\.hv\.zero_safe"?\([^\n]*\) [^\n{]*#(\d+)', text)
    [attrs] = re.findall(r'^attributes #' + group + r' = \{([^}]*)\}', text, re.M)
    assert "cold" in attrs.split() and "noinline" in attrs.split()


def test_function_values_match_pass_off_and_closed_form(per_builds):
    on, off = per_builds["on"], per_builds["off"]
    rng = np.random.default_rng(11)
    xs, ys, w = rng.uniform(0.1, 4.0, 50), rng.normal(size=50), rng.normal(size=50)
    g = on.per(xs, ys, w)
    assert identical(g, off.per(xs, ys, w))
    for i in range(50):
        gx, gy = h_grad(xs[i], ys[i], w[i])
        assert g[i, 0] == pytest.approx(gx, rel=8 * EPS)
        assert g[i, 1] == pytest.approx(gy, rel=8 * EPS, abs=8 * EPS * abs(w[i]) * (1 + abs(ys[i])))
    # finite differences of h (central, step 1e-6: truncation ~ h'''/6 * 1e-12, rounding
    # ~ eps * |h| / 1e-6; both far below 1e-6 relative here)
    for i in range(5):
        hx = (on.h(xs[i] + 1e-6, ys[i]) - on.h(xs[i] - 1e-6, ys[i])) / 2e-6
        assert g[i, 0] == pytest.approx(w[i] * hx, rel=1e-6, abs=1e-9)


def test_function_fallback_at_zero_times_infinity(per_builds):
    """x = 0, y = 0: sqrt'(0) = inf meets the zero cotangent of sqrt(x) (w * y = 0), so the
    plain product is NaN; the zero-safe one is 0, so the cold copy must run."""
    xs, ys, w = np.array([0.0, 1.0]), np.array([0.0, 2.0]), np.array([1.0, 1.0])
    with np.errstate(invalid="ignore"):
        assert math.isnan(np.float64(0.0) * np.inf)
    assert np.isnan(per_builds["mutant"].per(xs, ys, w)[0, 0])     # the fast path alone
    g = per_builds["on"].per(xs, ys, w)
    assert g.tolist() == [[0.0, 0.0], [1.0, 5.0]]                  # closed form: h_grad
    assert [h_grad(0.0, 0.0, 1.0), h_grad(1.0, 2.0, 1.0)] == [(0.0, 0.0), (1.0, 5.0)]
    assert identical(g, per_builds["off"].per(xs, ys, w))
    # a legitimate infinity is kept: x = 0 with y != 0
    assert per_builds["on"].per(np.array([0.0]), np.array([1.0]), np.array([1.0]))[0, 0] == INF


HAND_FN = """func.func @f(%a: f64, %b: f64) -> (f64, f64) attributes {sig = "(a: f64, b: f64) -> (f64, f64)"} {
  %p = dad.mulz %a, %b : f64
%TAIL%
}
"""


@pytest.mark.parametrize("tail,applied", [
    ("  %q = arith.addf %p, %a : f64\n  func.return %a, %q : ()", True),
    ("  %q = arith.divf %a, %p : f64\n  func.return %a, %q : ()", False),     # a divisor
    ("  %q = math.exp %p : f64\n  func.return %a, %q : ()", False),           # a math function
    ("  %c = arith.cmpf %p, %a {pred = \"olt\"} : i1\n"
     "  %q = arith.select %c, %a, %p : f64\n  func.return %a, %q : ()", False),  # a condition
    ("  %q = arith.addf %p, %a {fastmath = \"fast\"} : f64\n  func.return %a, %q : ()",
     False),                                                       # may fold the NaN test
])
def test_hand_built_functions(tail, applied):
    m = parse_module(HAND_FN.replace("%TAIL%", tail))
    text = print_module(lowered(m, "on"))
    if applied:
        assert "@f.zero_safe" in text and text.count('pred = "uno"') == 1
        k = _compile_ir(HAND_FN.replace("%TAIL%", tail), "on")
        assert k.f(0.0, INF) == (0.0, 0.0) and k.f(2.0, 3.0) == (2.0, 8.0)
        assert math.isnan(_compile_ir(HAND_FN.replace("%TAIL%", tail), "mutant").f(0.0, INF)[1])
    else:
        _not_applied(m)


TWO_FN = """func.func @g(%a: f64, %b: f64, %c: f64) -> (f64, f64) attributes {sig = "(a: f64, b: f64, c: f64) -> (f64, f64)"} {
  %p = dad.mulz %a, %c : f64
  %r = dad.mulz %b, %c : f64
  func.return %p, %r : ()
}
"""


def test_hand_built_function_second_result_alone_nan():
    """Only the second tainted result meets 0 * inf: the cold copy must still run (every
    tainted result is tested, not the first alone)."""
    assert "@g.zero_safe" in print_module(lowered(parse_module(TWO_FN), "on"))
    on, off = _compile_ir(TWO_FN, "on"), _compile_ir(TWO_FN, "off")
    assert math.isnan(_compile_ir(TWO_FN, "mutant").g(1.0, 0.0, INF)[1])   # the fast path alone
    for args, want in (((1.0, 0.0, INF), (INF, 0.0)), ((0.0, 1.0, INF), (0.0, INF)),
                       ((2.0, 3.0, 0.5), (1.0, 1.5)), ((0.0, 0.0, NAN), (0.0, 0.0))):
        got = on.g(*args)
        assert got == want and got == off.g(*args)
    # a NaN input is not the products' doing: the original gives NaN too
    assert all(math.isnan(v) for v in on.g(1.0, 2.0, NAN))
