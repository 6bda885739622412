"""ascend_loops (machine IR only): an `scf.for` whose array indices all descend runs upwards
(`iv -> lb + ub - 1 - iv`) when the order of its iterations cannot be observed.

Structure is checked on the IR right after the pass (the machine pipeline run up to and
including it, against the same prefix without it): in a turned loop every top-level array
index is `c * iv + inv + k` with c > 0, where it was c < 0, and the body starts with
`subi (lb + ub - 1), iv`. Values are checked against oracles that do not come from dad
(analytic gradients in NumPy, Python ports of the same floating-point operations in the same
order) and against the same source compiled with the pass left out of `machine_pipeline`.
Loops that must stay as they are (a tape, a store two iterations share, a view, a parameter,
a checked access, an order-dependent carried value, ...) are checked on hand-written IR next
to a twin that differs in that one respect and is turned, so every negative test can fail.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import dad.lang.passes as passes
from dad.api import compile_jit
from dad.frontend import compile_to_ir
from dad.lang.irparser import parse_module
from dad.lang.passes import PassManager, ascend_loops
from dad.lang.passes.affine import affine
from dad.lang.passes.util import const_of, defined_inside
from dad.runtime.compiler import CompiledModule, derive_all, machine_ir, optimize_ir
from example_inputs import ROSEN, rosen_gradient
from machine_pipelines import MACHINE, loops, machine_pipeline, upto, without

EPS = np.finfo(float).eps

PIPELINES = {"on": MACHINE, "off": without(ascend_loops)}

SRC = ROSEN + """
fn rg = grad(rosen);

fn stencil(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 1..n - 1 {
        let d = x[i - 1] - 2.0 * x[i] + x[i + 1];
        s += d * d;
    }
    return s;
}
fn sg = grad(stencil);

fn sc(x: f64[n], a: f64) -> f64 {
    var s = 0.0;
    for i in 0..n { s += sin(a * x[i]); }
    return s;
}
fn scg = grad(sc);

fn wsum(x: f64[n], w: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n { s += w[i] * x[i] * x[i]; }
    return s * s;
}
fn wg = grad(wsum, wrt=x);

fn iff(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n {
        if x[i] > 0.0 { s += x[i] * x[i]; } else { s += 3.0 * x[i]; }
    }
    return s;
}
fn ig = grad(iff);

fn rec(x: f64[n]) -> f64 {
    var s = 1.0;
    for i in 0..n { s = sin(s * x[i] + 0.5); }
    return s;
}
fn recg = grad(rec);

fn ow(x: f64[n]) -> f64 {
    var y = copy(x);
    for i in 0..n { y[i] = sin(y[i]); }
    var s = 0.0;
    for i in 0..n { s += y[i] * y[i]; }
    return s;
}
fn og = grad(ow);

fn hdesc(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n { y[n - 1 - i] = 2.0 * x[n - 1 - i] + float(i); }
    return y;
}

fn hdesc_if(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n {
        let k = n - 1 - i;
        let v = x[k];
        var t = 0.0;
        if v > 0.0 { t = v * v; } else { t = 3.0 * v - float(i); }
        y[k] = t;
    }
    return y;
}

fn last_write(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n { y[0] = x[n - 1 - i]; }
    return y;
}

fn horner(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n { s = s * 0.5 + x[n - 1 - i]; }
    return s;
}

fn plain_acc(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n { y[n - 1 - i] += x[n - 1 - i] * float(i + 1); }
    return y;
}

fn viewed(x: f64[n]) -> f64 {
    var y = zeros(n);
    for i in 0..n { y[n - 1 - i] = 2.0 * x[n - 1 - i] + float(i); }
    return sum(y[0..n]);
}
"""


# ----------------------------------------------------------------------------- helpers
def clean_ir(src: str):
    return optimize_ir(derive_all(compile_to_ir(src, "t.dad")))


def coefs(loop) -> list[int]:
    """The iv coefficients of the iv-dependent affine indices of top-level loads and stores."""
    body = loop.regions[0].block
    iv = body.args[0]
    inside, memo, out = defined_inside(body), {}, []
    for o in body.ops:
        if o.name in ("memref.load", "memref.store"):
            for v in o.operands[1 if o.name == "memref.load" else 2:]:
                f = affine(v, iv, inside, memo)
                if f is not None and f[0]:
                    out.append(f[0])
    return out


def turned(loop) -> bool:
    """Does the body start with `subi last, iv`, `last = subi (addi lb, ub), 1` just before
    the loop (the shape `_turn` gives), with every array index now ascending?"""
    body = loop.regions[0].block
    first = body.ops[0]
    if first.name != "arith.subi" or first.operands[1] is not body.args[0]:
        return False
    last = first.operands[0].op
    if last is None or last.name != "arith.subi" or const_of(last.operands[1]) != 1:
        return False
    top = last.operands[0].op
    if top is None or top.name != "arith.addi" or top.operands != loop.operands[:2]:
        return False
    cs = coefs(loop)
    return bool(cs) and all(c > 0 for c in cs)


def descends(loop) -> bool:
    cs = coefs(loop)
    return bool(cs) and all(c < 0 for c in cs)


def build(src: str, which: str):
    with machine_pipeline(PIPELINES[which]):
        mod = compile_jit(src, filename="t.dad")
        mach = machine_ir(mod.ir_module)
    n_turned = sum(turned(lp) for f in mach for lp in loops(f))
    assert (n_turned > 0) == (which == "on")     # the patch took
    return mod


@pytest.fixture(scope="module")
def clean():
    return clean_ir(SRC)


@pytest.fixture(scope="module")
def on():
    return build(SRC, "on")


@pytest.fixture(scope="module")
def off():
    return build(SRC, "off")


def rng_x(n, seed=0, lo=-2.0, hi=2.0):
    return np.random.default_rng(seed + 97 * n).uniform(lo, hi, n)


# ----------------------------------------------------------------------------- structure
def test_pass_is_machine_only_and_before_the_store_passes():
    names = [p.__name__ for p in MACHINE()]
    assert ascend_loops not in passes.default_pipeline()
    assert names.index("version_checks") < names.index("ascend_loops") < names.index("forward_stores")
    assert names.index("ascend_loops") < names.index("zero_loads")


def test_rosen_reversed_loop_is_turned(clean):
    before, after = upto(clean, ascend_loops, False)["rosen.vjp.x"], upto(clean, ascend_loops, True)["rosen.vjp.x"]
    [rev_b] = [lp for lp in loops(before) if descends(lp)]
    assert coefs(rev_b) and set(coefs(rev_b)) == {-1}
    assert not any(descends(lp) for lp in loops(after))
    [rev_a] = [lp for lp in loops(after) if turned(lp)]
    assert set(coefs(rev_a)) == {1}
    # only the index computation changed: same ops otherwise, same stores into x.bar
    names = lambda lp: [o.name for o in lp.walk()]
    assert names(rev_a)[:2] == ["scf.for", "arith.subi"] and names(rev_a)[2:] == names(rev_b)[1:]
    stores = [o for o in rev_a.regions[0].block.ops if o.name == "memref.store"]
    assert len(stores) == 2 and all(o.operands[1].name == "x.bar" for o in stores)
    # lb + ub - 1 is computed right before the loop
    block = rev_a.parent.ops
    pos = block.index(rev_a)
    assert [o.name for o in block[pos - 3:pos]] == ["arith.addi", "arith.constant", "arith.subi"]


def test_rosen_machine_ir_streams_upwards(clean):
    f = machine_ir(clean)["rosen.vjp.x"]
    stores = [(lp, o) for lp in loops(f) for o in lp.regions[0].block.ops
              if o.name == "memref.store" and o.operands[1].name == "x.bar"]
    assert stores
    for lp, o in stores:
        body = lp.regions[0].block
        assert affine(o.operands[2], body.args[0], defined_inside(body), {})[0] == 1


def test_clean_ir_keeps_reversed_loops(clean):
    """Derivations start from the module as AD left it (the pass runs on a copy)."""
    machine_ir(clean)
    assert any(descends(lp) for lp in loops(clean["rosen.vjp.x"]))
    assert not any(turned(lp) for f in clean for lp in loops(f))


# plain_acc: `y[k] = y[k] + v` without reassoc, but y[k] is touched by iteration k alone
# ow.vjp.x: the reversed sum into y.bar turns, the loop popping the tape does not
TURNED = {"rosen.vjp.x": 1, "stencil.vjp.x": 1, "sc.vjp.x_a": 1, "hdesc": 1, "hdesc_if": 1,
          "plain_acc": 1, "ow.vjp.x": 1}
NOT_TURNED = {
    "rec.vjp.x": "pops the tape",
    "last_write": "two iterations store the same element",
    "horner": "order-dependent carried value",
    "viewed": "the stored array is viewed",
}


def test_turned_loops(clean):
    m = upto(clean, ascend_loops)
    for name, count in TURNED.items():
        assert sum(turned(lp) for lp in loops(m[name])) == count, name
    # versioned loops: only the unchecked copy turns, the checked one keeps its order
    for name in ("hdesc", "hdesc_if"):
        [vif] = [o for o in m[name].body.ops if o.name == "scf.if"]
        [fast] = loops_in(vif.regions[0].block)
        [slow] = loops_in(vif.regions[1].block)
        assert turned(fast) and not turned(slow) and descends(slow), name
        assert any(o.attrs.get("checked") for o in slow.walk())


def loops_in(block):
    return [o for o in block.ops if o.name == "scf.for"]


@pytest.mark.parametrize("name", sorted(NOT_TURNED))
def test_not_turned(clean, name):
    before, after = upto(clean, ascend_loops, False)[name], upto(clean, ascend_loops, True)[name]
    cands = [lp for lp in loops(before) if descends(lp)]
    assert cands, name                            # there is a descending loop to refuse
    assert not any(turned(lp) for lp in loops(after)), NOT_TURNED[name]
    assert sum(descends(lp) for lp in loops(after)) == len(cands)


# ----------------------------------------------------------------------------- values
def stencil_grad(x):
    n = len(x)
    g = np.zeros(n)
    for i in range(1, n - 1):
        d = x[i - 1] - 2.0 * x[i] + x[i + 1]
        g[i - 1] += 2.0 * d
        g[i] += -4.0 * d
        g[i + 1] += 2.0 * d
    return g


def rec_grad(x):
    n = len(x)
    s = [1.0]
    for i in range(n):
        s.append(math.sin(s[i] * x[i] + 0.5))
    g, sbar = np.zeros(n), 1.0
    for i in reversed(range(n)):
        c = math.cos(s[i] * x[i] + 0.5)
        g[i] = sbar * c * s[i]
        sbar = sbar * c * x[i]
    return g


def close(got, want, terms=4):
    """Within a few roundings of the magnitudes summed into each element."""
    got, want = np.asarray(got), np.asarray(want)
    scale = np.abs(want).max() if want.size else 0.0
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= 8 * terms * EPS * (np.abs(want) + scale) + 1e-300), (got, want)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 1000])
def test_rosen_gradient(on, off, n):
    x = rng_x(n, 1)
    g = on.rg(x)
    close(g, rosen_gradient(x), terms=16)
    # each element gets two contributions: their sum does not depend on the order
    assert np.array_equal(g, off.rg(x))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 9, 300])
def test_stencil_gradient(on, off, n):
    x = rng_x(n, 2)
    g = on.sg(x)
    want = stencil_grad(x)
    close(g, want, terms=16)
    close(g, off.sg(x), terms=4)


@pytest.mark.parametrize("n", [0, 1, 5, 64])
def test_carried_reassoc_sum(on, off, n):
    x, a = rng_x(n, 3), 0.7
    gx, ga = on.scg(x, a)
    close(gx, a * np.cos(a * x))
    assert ga == pytest.approx(float(np.sum(x * np.cos(a * x))), rel=1e-12, abs=1e-12 * n)
    ox, oa = off.scg(x, a)
    assert np.array_equal(gx, ox)        # one contribution per element: exact
    assert ga == pytest.approx(oa, rel=0, abs=4 * n * EPS * float(np.sum(np.abs(x))) + 1e-300)


@pytest.mark.parametrize("n", [0, 1, 6, 50])
def test_versioned_reversed_loop(on, off, n):
    x, w = rng_x(n, 4), rng_x(n, 5)
    s = float(np.sum(w * x * x))
    close(on.wg(x, w), 4.0 * s * w * x, terms=4 * max(n, 1))
    assert np.array_equal(on.wg(x, w), off.wg(x, w))


@pytest.mark.parametrize("n", [0, 1, 7, 40])
def test_if_in_body(on, off, n):
    x = rng_x(n, 6)
    assert np.array_equal(on.ig(x), np.where(x > 0.0, 2.0 * x, 3.0))
    assert np.array_equal(on.ig(x), off.ig(x))


@pytest.mark.parametrize("n", [0, 1, 2, 8, 33])
def test_taped_loops(on, off, n):
    x = rng_x(n, 7)
    close(on.recg(x), rec_grad(x), terms=4 * max(n, 1))
    assert np.array_equal(on.recg(x), off.recg(x))
    close(on.og(x), 2.0 * np.sin(x) * np.cos(x))
    assert np.array_equal(on.og(x), off.og(x))


@pytest.mark.parametrize("n", [0, 1, 2, 5, 100])
def test_hand_written_descending_loops(on, off, n):
    x = rng_x(n, 8)
    i = np.arange(n)[::-1].astype(float)     # y[k] is written at iteration i = n - 1 - k
    assert np.array_equal(on.hdesc(x), 2.0 * x + i)
    assert np.array_equal(on.hdesc_if(x), np.where(x > 0.0, x * x, 3.0 * x - i))
    for name in ("hdesc", "hdesc_if", "last_write", "plain_acc"):
        assert np.array_equal(getattr(on, name)(x), getattr(off, name)(x)), name
    assert np.array_equal(on.plain_acc(x), x * (i + 1.0))


@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_last_write_wins(on, n):
    x = rng_x(n, 9)
    want = np.zeros(n)
    want[0] = x[0]                # the last iteration (i = n - 1) writes x[0]
    assert np.array_equal(on.last_write(x), want)


@pytest.mark.parametrize("n", [0, 1, 2, 9, 60])
def test_order_dependent_carried_value(on, off, n):
    x = rng_x(n, 10)
    s = 0.0
    for i in range(n):
        s = s * 0.5 + float(x[n - 1 - i])
    assert on.horner(x) == s == off.horner(x)
    y = 2.0 * x + np.arange(n)[::-1]
    assert on.viewed(x) == pytest.approx(float(np.sum(y)), rel=1e-14, abs=1e-14)


# ----------------------------------------------------------------------------- hand-written IR twins
BASE = """func.func @g(%a: f64) -> f64 attributes {sig = "(a: f64) -> f64"} {
  func.return %a : ()
}
func.func @k(%x: memref<?xf64>, %p: memref<?xf64>) -> (memref<?xf64>, f64) attributes {sig = "(x: f64[n], p: f64[n]) -> (f64[n], f64)"} {
  %n = memref.dim %x {index = 0} : i64
  %z = arith.constant {value = 0} : i64
  %one = arith.constant {value = 1} : i64
  %twoi = arith.constant {value = 2} : i64
  %two = arith.constant {value = 2.0} : f64
  %f0 = arith.constant {value = 0.0} : f64
  %top = arith.subi %n, %one : i64
  %y = memref.alloc %n : memref<?xf64>
  %r = scf.for %z, %n, %one, %f0 : f64 {
  ^(%it: i64, %acc: f64):
    %k = arith.subi %top, %it : i64
    %xk = memref.load %x, %k {checked = false} : f64
    %v = arith.mulf %xk, %two : f64
    memref.store %v, %y, %k {checked = false} : ()
    %acc1 = arith.addf %acc, %v {fastmath = "reassoc nsz"} : f64
    scf.yield %acc1 : ()
  }
  func.return %y, %r : ()
}
"""
STORE = "    memref.store %v, %y, %k {checked = false} : ()"
IF_STORE = """    %c = arith.cmpf %xk, %f0 {pred = "ogt"} : i1
    scf.if %c : () {
    ^():
      memref.store %v, %y, %k {checked = false} : ()
      scf.yield : ()
    } {
    ^():
      scf.yield : ()
    }"""
IF_PURE = """    %c = arith.cmpf %xk, %f0 {pred = "ogt"} : i1
    %w = scf.if %c : f64 {
    ^():
      %e = math.exp %xk : f64
      scf.yield %e : ()
    } {
    ^():
      %l = memref.load %p, %k {checked = false} : f64
      scf.yield %l : ()
    }
    memref.store %w, %y, %k {checked = false} : ()"""
ACC = """    %old = memref.load %y, %k {checked = false} : f64
    %new = arith.addf %old, %v FM : f64
    memref.store %new, %y, %k {checked = false} : ()"""
INNER = """    scf.for %z, %n, %one : () {
    ^(%j: i64):
      %q = memref.load %p, %j {checked = false} : f64
      scf.yield : ()
    }
""" + STORE
CARRY = '%acc1 = arith.addf %acc, %v {fastmath = "reassoc nsz"}'
LOAD = "%xk = memref.load %x, %k {checked = false}"
RET = "  func.return %y, %r : ()"

# name -> (replacements of BASE's text, turned?); each negative differs from a positive in
# the one respect its name gives
TWINS = {
    "store": ([], True),
    "pure_if": ([(STORE, IF_PURE)], True),
    "reassoc_accumulation": ([(STORE, ACC.replace("FM", '{fastmath = "reassoc nsz"}'))], True),
    # one element per iteration (the same index values throughout): order-free
    "plain_accumulation": ([(STORE, ACC.replace(" FM", ""))], True),
    "store_under_if": ([(STORE, IF_STORE)], False),
    "checked_load": ([(LOAD, LOAD.replace("false", "true"))], False),
    "checked_store": ([(STORE, STORE.replace("false", "true"))], False),
    "parameter_store": ([(STORE, STORE.replace("%y", "%p"))], False),
    "viewed": ([(RET, "  %vw = memref.slice %y, %z, %n : memref<?xf64>\n" + RET)], False),
    "step_2": ([("scf.for %z, %n, %one, %f0", "scf.for %z, %n, %twoi, %f0")], False),
    "same_element": ([(STORE, STORE.replace("%k {", "%z {"))], False),
    "two_plain_stores": ([(STORE, STORE + "\n" + STORE.replace("%v,", "%xk,"))], True),
    # y[k + 1] = y[k] + v: iteration k + 1 reads what iteration k wrote
    "plain_accumulation_next": ([(STORE, ACC.replace(" FM", "").replace(
        "memref.store %new, %y, %k", "%k1 = arith.addi %k, %one : i64\n    memref.store %new, %y, %k1"))],
        False),
    "call": ([(STORE, '    %cv = func.call %v {callee = "g"} : f64\n' + STORE.replace("%v,", "%cv,"))], False),
    "tape_pop": ([(STORE, "    %tp = dad.tape_pop {level = 0, tape = 1} : f64\n" + STORE.replace("%v,", "%tp,"))],
                 False),
    "inner_loop": ([(STORE, INNER)], False),
    "plain_carried": ([(CARRY, "%acc1 = arith.addf %acc, %v")], False),
    "carried_used_twice": ([("%v = arith.mulf %xk, %two", "%v = arith.mulf %xk, %acc")], False),
    "ascending_already": ([("%k = arith.subi %top, %it", "%k = arith.addi %it, %z")], False),
}


def twin(name: str) -> str:
    text = BASE
    for old, new in TWINS[name][0]:
        assert text.count(old) == 1, (name, old)
        text = text.replace(old, new)
    return text


def only_pass(text: str):
    m = parse_module(text)
    return PassManager([ascend_loops], verify=True).run(m)["k"]


@pytest.mark.parametrize("name", sorted(TWINS))
def test_hand_ir_twins(name):
    f0 = parse_module(twin(name))["k"]
    [lp0] = [lp for lp in loops(f0) if lp.parent is f0.body]
    if name != "ascending_already":
        assert descends(lp0)
    f = only_pass(twin(name))
    [lp] = [lp for lp in loops(f) if lp.parent is f.body]
    assert turned(lp) is TWINS[name][1], name


RUN = ["store", "pure_if", "reassoc_accumulation", "plain_accumulation", "plain_carried",
       "checked_load", "same_element"]


def _compiled_text(text: str, which: str):
    with machine_pipeline(PIPELINES[which]):
        return CompiledModule(parse_module(text), "", filename="k.ir")


def _compiled(name: str, which: str):
    return _compiled_text(twin(name), which)


def twin_model(name, x, p):
    n = len(x)
    y, acc = np.zeros(n), 0.0
    for it in range(n):
        k = n - 1 - it
        v = x[k] * 2.0
        if name == "pure_if":
            y[k] = math.exp(x[k]) if x[k] > 0.0 else p[k]
        elif name in ("reassoc_accumulation", "plain_accumulation"):
            y[k] = y[k] + v
        elif name == "same_element":
            y[0] = v
        else:
            y[k] = v
        acc = acc + v
    return y, acc


@pytest.mark.parametrize("name", RUN)
def test_hand_ir_values(name):
    on, off = _compiled(name, "on"), _compiled(name, "off")
    for n in (0, 1, 2, 7, 100):
        x, p = rng_x(n, 11), rng_x(n, 12)
        y, r = on.k(x, p)
        wy, wr = twin_model(name, x, p)
        assert np.array_equal(y, wy), (name, n)
        assert r == pytest.approx(wr, rel=0, abs=2 * n * EPS * float(np.sum(np.abs(2.0 * x))) + 1e-300)
        oy, orr = off.k(x, p)
        assert np.array_equal(y, oy)
        if name in ("plain_carried",):      # not turned: the same sum, the same order
            assert r == orr == wr


# ----------------------------------------------------------------------------- known bugs
FEED_OTHER = """func.func @suf(%x: memref<?xf64>) -> memref<?xf64> attributes {sig = "(x: f64[n]) -> f64[n]"} {
  %n = memref.dim %x {index = 0} : i64
  %z = arith.constant {value = 0} : i64
  %one = arith.constant {value = 1} : i64
  %two = arith.constant {value = 2} : i64
  %y = memref.alloc %n : memref<?xf64>
  memref.copy %x, %y : ()
  %m = arith.subi %n, %one : i64
  %top = arith.subi %n, %two : i64
  scf.for %z, %m, %one : () {
  ^(%it: i64):
    %k = arith.subi %top, %it : i64
    %k1 = arith.addi %k, %one : i64
    %b = memref.load %y, %k1 {checked = false} : f64
    %a = memref.load %y, %k {checked = false} : f64
    %s = arith.addf %a, %b {fastmath = "reassoc nsz"} : f64
    memref.store %s, %y, %k {checked = false} : ()
    scf.yield : ()
  }
  func.return %y : ()
}
"""


def test_load_of_another_element_is_not_an_accumulation():
    x = np.ones(6)
    want = np.cumsum(x[::-1])[::-1]      # y[k] += y[k + 1], k descending: [6, 5, 4, 3, 2, 1]
    assert np.array_equal(_compiled_text(FEED_OTHER, "off").suf(x), want)
    assert np.array_equal(_compiled_text(FEED_OTHER, "on").suf(x), want)
    f = PassManager([ascend_loops], verify=True).run(parse_module(FEED_OTHER))["suf"]
    assert not any(turned(lp) for lp in loops(f))


WRAP = """
fn wrap(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n {
        y[(0 - i) * 4294967296 * 4294967296] = x[n - 1 - i];
    }
    return y;
}
"""


def test_index_coefficient_wrapping_to_zero():
    x = np.arange(1.0, 6.0)
    want = np.zeros(5)
    want[0] = x[0]                # (0 - i) * 2**64 wraps to 0: every iteration writes y[0]
    assert np.array_equal(build(WRAP, "off").wrap(x), want)
    assert np.array_equal(compile_jit(WRAP, filename="t.dad").wrap(x), want)


PREFIX = """
fn psum(x: f64[n], w: f64[n]) -> f64 {
    var y = zeros(n);
    for i in 0..n { y[i] = x[i]; }
    for i in 1..n { y[i] = y[i - 1] + y[i]; }
    var s = 0.0;
    for i in 0..n { s += w[i] * y[i]; }
    return s;
}
fn pg = grad(psum, wrt=x);
"""


def test_in_place_prefix_sum_gradient():
    """s = w . cumsum(x), so ds/dx_j = sum_{i >= j} w_i."""
    rng = np.random.default_rng(21)
    x, w = rng.normal(size=6), rng.uniform(0.5, 1.5, size=6)
    want = np.cumsum(w[::-1])[::-1]
    assert np.allclose(build(PREFIX, "off").pg(x, w), want, rtol=1e-14, atol=0)
    assert np.allclose(compile_jit(PREFIX, filename="t.dad").pg(x, w), want, rtol=1e-14, atol=0)


ALIAS = """
func.func @f(%x: memref<?xf64>) -> memref<?xf64> attributes {sig = "(x: f64[n]) -> f64[n]"} {
  %n = memref.dim %x {index = 0} : i64
  %a = memref.alloc %n : memref<?xf64>
  dad.tape_push %a {tape = 1} : ()
  %b = dad.tape_pop {tape = 1} : memref<?xf64>
  %c0 = arith.constant {value = 0} : i64
  %c1 = arith.constant {value = 1} : i64
  %m = arith.subi %n, %c1 : i64
  %one = arith.constant {value = 1.0} : f64
  scf.for %c0, %m, %c1 : () {
  ^(%i: i64):
    %j = arith.subi %m, %i : i64
    %k = arith.subi %j, %c1 : i64
    %p = memref.load %BSRC, %j {checked = false} : f64
    %q = arith.addf %p, %one : f64
    memref.store %q, %a, %k {checked = false} : ()
    scf.yield : ()
  }
  func.return %a : ()
}
"""


def test_array_that_may_be_the_stored_one_blocks_the_turn():
    """`%b` comes off the tape, so it may be `%a` itself (here it is): the loop reads what
    the previous iteration wrote (a[k] = a[k + 1] + 1, k descending) and must keep its
    order. Reading the parameter instead (`%x`), the twin is turned."""
    for src, want in ((ALIAS.replace("%BSRC", "%b"), False), (ALIAS.replace("%BSRC", "%x"), True)):
        f = PassManager([ascend_loops], verify=True).run(parse_module(src))["f"]
        [lp] = loops(f)
        assert turned(lp) is want
