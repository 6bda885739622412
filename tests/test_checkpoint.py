"""Checkpointing (`grad(f, checkpoint=true)`): the same derivative as without it, in every
mode and nesting, bounded tape memory for loops that carry arrays, and a warning naming
each loop it leaves as it is.

Oracles: the plain (unsegmented) derivative, which runs the same operations in the same
order, so the two agree to a few ulps (the adjoint sums of values read in every iteration
may be added in another order: `fastmath = "reassoc nsz"`); and central finite differences
of the primal (or of the plain gradient, for second derivatives).
"""
from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import dad
from dad.cli import main
from generators import fd_gradient
from peak_memory import peak_growth

STEP = """
fn step(u: f64[n]) -> f64[n] { return sin(u) * 1.1 + 0.1; }
fn k(x: f64[n]) -> f64 { var u = x; for i in 0..10 { u = step(u); } return sum(u * u); }
fn k_g = grad(k);
fn k_gc = grad(k, checkpoint=true);
fn k_hv = jvp(k_g);
fn k_hvc = jvp(k_gc);
"""


def _close(a, b, ulps=64):
    """Equal up to `ulps` units in the last place of the larger magnitude in the result."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0), 1e-300)
    return np.max(np.abs(a - b), initial=0.0) <= ulps * np.finfo(float).eps * scale


def test_loop_assigning_a_call_result_to_the_carried_array():
    """The replay of a segment must start from the array as it was at the segment's start,
    not as the forward sweep left it."""
    m = dad.compile(STEP, filename="step.dad")
    x = np.linspace(0.1, 1.0, 5)
    g = m.k_g(x)
    assert _close(m.k_gc(x), g)
    # |k'''| ~ 1e2 at most here: truncation h^2 * 1e2 ~ 1e-10; rounding eps*|k|/h ~ 1e-9
    np.testing.assert_allclose(m.k_gc(x), fd_gradient(m.k, x), rtol=1e-6, atol=1e-8)
    v = np.linspace(1.0, -1.0, 5)
    _, hv = m.k_hv(x, v)
    _, hvc = m.k_hvc(x, v)
    assert _close(hvc, hv)
    fd = (m.k_g(x + 1e-6 * v) - m.k_g(x - 1e-6 * v)) / 2e-6
    np.testing.assert_allclose(hvc, fd, rtol=1e-5, atol=1e-7)


LEFT = """fn f(x: f64, n: i64) -> f64 {
    var y = x;
    var k = 0;
    while k < n {
        y = sin(y) + 0.1 * y;
        k += 1;
    }
    for i in 0..n {
        y = cos(y) * y;
        if y > 10.0 { break; }
    }
    if x > 0.0 {
        for i in 0..n { y = sin(y) * y; }
    }
    for i in 0..n { y = tanh(y) * y; }
    for i in 0..n { y = y + x; }
    return y;
}
fn g = grad(f);
fn gc = grad(f, checkpoint=true);
"""


def test_loops_left_as_they_are_are_named_in_warnings():
    with pytest.warns(dad.CheckpointWarning) as record:
        m = dad.compile(LEFT, filename="left.dad")
    msgs = sorted(str(w.message) for w in record if issubclass(w.category, dad.CheckpointWarning))
    assert [s.split(": warning: ")[0] for s in msgs] == ["left.dad:4:5", "left.dad:8:5"]
    assert all("'gc' (checkpoint=true) records this loop in full: a 'while' loop (or a 'for' with "
               "'break' or 'return') has no trip count known in advance" in s for s in msgs)
    # the loops checkpointed (lines 13, inside an if, and 15) or recording nothing (line 16)
    # are not mentioned
    for x in (0.4, -0.3):
        for n in (0, 1, 7, 30):
            assert _close(m.gc(x, n), m.g(x, n))
    x, n = 0.4, 30
    assert m.gc(x, n) == pytest.approx((m.f(x + 1e-6, n) - m.f(x - 1e-6, n)) / 2e-6, rel=1e-6, abs=1e-8)


def test_plain_grad_and_checkpointed_loops_give_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", dad.CheckpointWarning)
        dad.compile(STEP, filename="step.dad")
        dad.compile(LEFT.replace(", checkpoint=true", ""), filename="left.dad")


def test_dadc_prints_the_warnings_as_diagnostics(tmp_path, capsys):
    path = tmp_path / "left.dad"
    path.write_text(LEFT)
    assert main(["check", str(path)]) == 0
    err = capsys.readouterr().err
    lines = [s for s in err.splitlines() if s.strip()]
    assert lines == [f"{path}:4:5: warning: 'gc' (checkpoint=true) records this loop in full: a 'while' "
                     "loop (or a 'for' with 'break' or 'return') has no trip count known in advance",
                     f"{path}:8:5: warning: 'gc' (checkpoint=true) records this loop in full: a 'while' "
                     "loop (or a 'for' with 'break' or 'return') has no trip count known in advance"]


def test_warnings_are_given_again_when_the_compile_cache_hits():
    src = LEFT + "# compiled twice\n"
    for _ in range(2):
        with pytest.warns(dad.CheckpointWarning) as record:
            dad.compile(src, filename="left.dad")
        assert len([w for w in record if issubclass(w.category, dad.CheckpointWarning)]) == 2


RK4 = """
fn rhs(y: f64[2], a: f64) -> f64[2] {
    var d = zeros(2);
    d[0] = y[1];
    d[1] = -a * sin(y[0]);
    return d;
}
fn rk4(y0: f64[2], a: f64, h: f64, n: i64) -> f64 {
    var y = copy(y0);
    for i in 0..n {
        let k1 = rhs(y, a);
        let k2 = rhs(y + 0.5 * h * k1, a);
        let k3 = rhs(y + 0.5 * h * k2, a);
        let k4 = rhs(y + h * k3, a);
        y += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
    }
    return y[0] * y[0] + y[1];
}
fn g = grad(rk4);
fn gc = grad(rk4, checkpoint=true);
"""

def _peak_growth(tmp_path, name: str, steps: int) -> int:
    return peak_growth(tmp_path, RK4, name, "y0 = np.array([0.3, 0.1])",
                       "kernel(y0, 1.3, 1e-5, 10)", f"kernel(y0, 1.3, 1e-5, {steps})")

PREFIX = """
fn prefix(x: f64[n]) -> f64 {
    var a = copy(x);
    for i in 1..n { a[i] = sin(a[i - 1]) * a[i]; }
    return sum(a);
}
fn g = grad(prefix);
fn gc = grad(prefix, checkpoint=true);
"""

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status (Linux)")
def test_checkpoints_of_a_large_array_are_not_taken_more_often_than_they_pay(tmp_path):
    """A loop updating one element of a large array per iteration records little per
    iteration and has a large state: √n copies of the array (√n · 8n bytes: 5.6 GB here)
    would cost far more than the records. Segments are sized so that checkpoints and one
    segment's records together stay below the plain tape, plus a copy or two of the array."""
    n = 500_000

    def peak(name):
        return peak_growth(tmp_path, PREFIX, name, f"x = np.linspace(0.5, 1.0, {n})",
                           "kernel(x[:10])", "kernel(x)")
    plain, checkpointed = peak("g"), peak("gc")
    assert checkpointed < plain + 2 * 8 * n
    m = dad.compile(PREFIX, filename="prefix.dad")
    x = np.linspace(0.5, 1.0, 1000)
    assert _close(m.gc(x), m.g(x))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status (Linux)")
def test_rk4_with_an_array_state_has_bounded_memory_when_checkpointed(tmp_path):
    steps = 1_000_000
    plain = _peak_growth(tmp_path, "g", steps)
    checkpointed = _peak_growth(tmp_path, "gc", steps)
    # plain: every step records its arrays (the state and four stages, their copies and
    # adjoints: ~16 small heap arrays, ~1 kB a step) -> ~1 GB for 1e6 steps. Checkpointed:
    # ~1000 segment starts of one 2-element copy each plus one segment's records, ~1 MB
    assert plain > 200e6
    assert checkpointed < 8e6


def test_rk4_checkpointed_gradient_agrees_with_plain_and_finite_differences():
    m = dad.compile(RK4, filename="rk4.dad")
    y0, a, h = np.array([0.3, 0.1]), 1.3, 0.01
    # The adjoint sums of a step may be added up in another order in the checkpointed
    # replay than in the plain sweep (an adjoint's additions are reassociable: LANGUAGE.md,
    # "reverse mode"), a rounding of at most about an ulp per step that the reversed chain of
    # n steps carries to the result: measured 1 ulp at n = 1..10, 8 at 99, 353 at 1000 (on
    # gh, 1000 same-sign terms). Hence 64 + n ulps. A wrong derivative is off by O(1): the
    # checkpointing bug this test was written for gave 11.7 against 0.3.
    for n in (0, 1, 2, 3, 10, 99, 1000):
        plain, ckpt = m.g(y0, a, h, n), m.gc(y0, a, h, n)
        for p, q in zip(plain, ckpt):
            assert _close(q, p, ulps=64 + n), (n, p, q)
    n = 1000
    gy, ga, gh = m.gc(y0, a, h, n)
    # smooth in all inputs; central differences with step 1e-6: truncation ~1e-12 |f'''|,
    # rounding ~eps |f| / 1e-6 ~ 1e-10 for |f| ~ 1
    np.testing.assert_allclose(gy, fd_gradient(lambda y: m.rk4(y, a, h, n), y0), rtol=1e-6, atol=1e-8)
    fa = fd_gradient(lambda v: m.rk4(y0, float(v[0]), h, n), np.array([a]))[0]
    fh = fd_gradient(lambda v: m.rk4(y0, a, float(v[0]), n), np.array([h]))[0]
    assert ga == pytest.approx(fa, rel=1e-6, abs=1e-8)
    assert gh == pytest.approx(fh, rel=1e-6, abs=1e-8)


# ----------------------------------------------------------------------------- random programs
N = 4  # length of the array parameter

HELPERS = """
fn step(u: f64[n], s: f64) -> f64[n] { return sin(u) * 0.9 + 0.1 * s; }
fn hs(u: f64, v: f64) -> f64 {
    if u > v { return u * tanh(v) + 0.5 * sin(u); }
    return 0.5 * u + cos(v) * 0.3;
}
fn ha(y: f64[n], u: f64) -> f64 {
    var r = 0.0;
    for k in 0..n { r = 0.8 * r + y[k] * sin(u + float(k)); }
    return r;
}
"""


class Program:
    """A random `f(x: f64[N], c: f64, m: i64) -> f64` from a seed: a local array `a` and
    scalars `s`, `t` updated by `for` loops of `m` trips at the top level or inside an `if`
    (the loops checkpointing segments) whose bodies assign scalars, store into `a` (reading other elements), assign a
    called function's array result to `a` (`a = step(a, e)`), and nest `if`, short `for`
    and `while` loops. Updates go through sin/tanh and factors below 1: values stay O(1)."""

    def __init__(self, seed: int):
        self.r = np.random.default_rng(seed)
        self.fresh = 0
        self.budget = 7

    def pick(self, xs):
        return xs[self.r.integers(len(xs))]

    def name(self, base):
        self.fresh += 1
        return f"{base}{self.fresh}"

    def index(self, idx):
        if idx and self.r.random() < 0.7:
            i = self.pick(idx)
            return self.pick([f"{i} % n", f"({i} + 1) % n", f"(n - 1 - {i} % n)"])
        return str(self.r.integers(N))

    def expr(self, names, idx, depth=0):
        if depth >= 2 or self.r.random() < 0.4:
            kind = self.pick(["var", "var", "x", "a", "const"])
            if kind == "var":
                return self.pick(names)
            if kind == "x":
                return f"x[{self.index(idx)}]"
            if kind == "a":
                return f"a[{self.index(idx)}]"
            return self.pick(["0.5", "1.5", "-0.7"])
        op = self.pick(["+", "-", "*", "sin", "tanh", "expt", "hs", "ha", "sel"])
        a = self.expr(names, idx, depth + 1)
        if op in "+-*":
            return f"({a} {op} {self.expr(names, idx, depth + 1)})"
        if op == "expt":
            return f"exp(tanh({a}))"
        if op == "hs":
            return f"hs({a}, {self.expr(names, idx, depth + 1)})"
        if op == "ha":
            return f"ha(a, {a})"
        if op == "sel":
            return f"select({a} > 0.0, {a}, 0.5 * {self.expr(names, idx, depth + 1)})"
        return f"{op}({a})"

    def stmt(self, names, idx, depth):
        self.budget -= 1
        kinds = ["assign", "assign", "store", "store", "call"]
        if depth < 2:
            kinds += ["if", "for", "while"]
        k = self.pick(kinds)
        e = self.expr(names, idx)
        if k == "assign":
            return [self.pick(["{v} = 0.9 * {v} + 0.3 * sin({e});", "{v} = {v} * tanh({e}) + 0.1 * {e};",
                               "{v} += 0.2 * tanh({e});", "{v} *= 0.5 + 0.4 * sin({e});"])
                    .format(v=self.pick(["s", "t"]), e=e)]
        if k == "store":
            return [self.pick(["a[{i}] = 0.5 * a[{j}] + 0.3 * tanh({e});", "a[{i}] += 0.2 * sin({e});",
                               "a[{i}] *= 0.5 + 0.4 * tanh({e});"])
                    .format(i=self.index(idx), j=self.index(idx), e=e)]
        if k == "call":
            return [self.pick(["a = step(a, {e});", "a += 0.1 * step(a, {e});"]).format(e=e)]
        if k == "if":
            out = [f"if {e} > 0.1 {{", *self.block(names, idx, depth + 1), "}"]
            if self.r.random() < 0.5:
                out[-1] = "} else {"
                out += [*self.block(names, idx, depth + 1), "}"]
            return out
        if k == "for":
            j = self.name("j")
            return [f"for {j} in 0..{self.pick(['n', '3'])} {{", *self.block(names, idx + [j], depth + 1), "}"]
        w, cnt = self.name("w"), self.name("k")
        return [f"var {w} = 1.0 + 0.5 * tanh({e});", f"var {cnt} = 0;",
                f"while abs({w}) > 0.05 and {cnt} < 6 {{",
                f"{w} = 0.7 * {w} + 0.01 * sin({self.expr(names + [w], idx)});", f"{cnt} += 1;",
                *self.block(names + [w], idx, depth + 1), "}", f"s += 0.1 * {w};"]

    def block(self, names, idx, depth):
        out = []
        for _ in range(self.r.integers(1, 3)):
            if self.budget > 0:
                out += self.stmt(names, idx, depth)
        return out or ["s += 0.1 * t;"]

    def source(self) -> str:
        body = []
        for _ in range(self.r.integers(1, 3)):
            if self.r.random() < 0.3:
                body += self.stmt(["s", "t", "c"], [], 1)
            i = self.name("i")
            loop = [f"for {i} in 0..m {{", *self.block(["s", "t", "c"], [i], 1), "}"]
            if self.r.random() < 0.3:  # a loop inside an `if` is checkpointed too
                loop = [f"if {self.expr(['s', 't', 'c'], [])} > -0.3 {{", *loop, "}"]
            body += loop
        return "\n".join([HELPERS, "fn f(x: f64[n], c: f64, m: i64) -> f64 {", "    var a = copy(x);",
                          "    var s = c;", "    var t = 0.5;", *("    " + ln for ln in body),
                          "    return s + t * 0.5 + 0.1 * sum(a * a);", "}"])


MODES = """
fn g = grad(f);
fn gc = grad(f, checkpoint=true);
fn vgc = value_and_grad(f, checkpoint=true);
fn vc = vjp(f, checkpoint=true);
fn hv = jvp(g);
fn hvc = jvp(gc);
"""


def _flat(r):
    return np.concatenate([np.ravel(t) for t in (r if isinstance(r, tuple) else (r,))])


@pytest.mark.parametrize("seed", range(12))
def test_random_programs_checkpointed_equals_plain_in_every_mode(seed):
    src = Program(seed).source() + MODES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dad.CheckpointWarning)  # a top-level `while` stays as it is
        m = dad.compile(src, filename=f"random{seed}.dad")
    rng = np.random.default_rng(seed)
    x, c = rng.uniform(-1, 1, N), float(rng.uniform(-1, 1))
    for trips in (0, 1, 2, 5, 17):
        gx, gcc = m.g(x, c, trips)
        plain = _flat((gx, gcc))
        assert _close(_flat(m.gc(x, c, trips)), plain), src
        value, *grads = m.vgc(x, c, trips)
        assert value == m.f(x, c, trips) and _close(_flat(tuple(grads)), plain), src
        w = float(rng.normal())
        out, *bars = m.vc(x, c, trips, w)
        assert out == value and _close(_flat(tuple(bars)), w * plain), src
        v = rng.normal(size=N), float(rng.normal())
        assert _close(_flat(m.hvc(x, c, trips, *v)), _flat(m.hv(x, c, trips, *v))), src
    # an independent oracle: central differences of the primal, at a point where the
    # program's branches do not switch within the step (checked by comparing two steps)
    trips = 5
    got = _flat(m.gc(x, c, trips))
    for h, tol in ((1e-6, 1e-5),):
        fx = fd_gradient(lambda y: m.f(y, c, trips), x, h)
        fc = (m.f(x, c + h, trips) - m.f(x, c - h, trips)) / (2 * h)
        np.testing.assert_allclose(got, np.append(fx, fc), rtol=tol, atol=tol, err_msg=src)


NESTED = """
fn ga = grad(f, wrt=x);
fn gac = grad(f, wrt=x, checkpoint=true);
fn H = jacobian(ga, wrt=x);
fn Hc = jacobian(gac, wrt=x);
fn gx = grad(f, wrt=c);
fn gxc = grad(f, wrt=c, checkpoint=true);
fn ggc = grad(gxc, wrt=c, checkpoint=true);
"""


@pytest.mark.parametrize("seed", range(4))
def test_random_programs_second_derivatives_through_a_checkpointed_gradient(seed):
    """The Hessian as the Jacobian of a checkpointed gradient (forward over checkpointed
    reverse), and reverse over checkpointed reverse."""
    src = Program(seed).source() + NESTED
    with warnings.catch_warnings():
        # the adjoint being differentiated again holds tape operations in its loops
        warnings.simplefilter("ignore", dad.CheckpointWarning)
        m = dad.compile(src, filename=f"nested{seed}.dad")
    rng = np.random.default_rng(seed)
    x, c = rng.uniform(-1, 1, N), float(rng.uniform(-1, 1))
    for trips in (1, 5, 17):
        H = m.Hc(x, c, trips)
        assert _close(H, m.H(x, c, trips)), src
        h = 1e-5
        # central differences of the gradient, step 1e-5: error ~ h^2 |f''''| + eps |g| / h
        fd = np.array([(m.ga(x + h * e, c, trips) - m.ga(x - h * e, c, trips)) / (2 * h) for e in np.eye(N)])
        np.testing.assert_allclose(H, fd.T, rtol=1e-5, atol=1e-6, err_msg=src)
        fd = (m.gx(x, c + h, trips) - m.gx(x, c - h, trips)) / (2 * h)
        assert m.ggc(x, c, trips) == pytest.approx(fd, rel=1e-5, abs=1e-7), src


def test_run_time_derivation_warns_too():
    from dad.runtime.transforms import derive_kernel
    m = dad.compile(LEFT.replace("fn gc = grad(f, checkpoint=true);\n", ""), filename="left.dad")
    with pytest.warns(dad.CheckpointWarning) as record:
        gc = derive_kernel(m.f, "grad", checkpoint=True)
    msgs = sorted(str(w.message) for w in record if issubclass(w.category, dad.CheckpointWarning))
    assert [s.split(": warning: ")[0] for s in msgs] == ["left.dad:4:5", "left.dad:8:5"]
    assert _close(gc(0.4, 9), m.g(0.4, 9))


def test_warnings_name_the_source_loop_of_a_derived_function(tmp_path, capsys):
    """`vjp(jvp(f), checkpoint=true)` differentiates loops the forward mode made: the warning
    still names the loop of `f` they come from."""
    path = tmp_path / "fj.dad"
    path.write_text(LEFT.split("fn g =")[0] + "fn fj = jvp(f);\nfn fjv = vjp(fj, checkpoint=true);\n")
    assert main(["check", str(path)]) == 0
    err = [s for s in capsys.readouterr().err.splitlines() if s.strip()]
    assert [s.split(": warning: ")[0] for s in err] == [f"{path}:4:5", f"{path}:8:5"]
    assert all("'fjv' (checkpoint=true)" in s for s in err)


BUILTIN_BRANCH_LOOPS = """
fn fn_norm(x: f64[n]) -> f64 { var u = copy(x); u[1] += norm(u); return 0.5 + sum(u); }
fn fn_max(x: f64[n]) -> f64 { var u = copy(x); u *= max(u); return sum(u * u); }
fn fn_norm_g = grad(fn_norm);
fn fn_norm_gc = grad(fn_norm, checkpoint=true);
fn fn_norm_hc = jvp(grad(fn_norm, checkpoint=true));
fn fn_norm_h = jvp(grad(fn_norm));
fn fn_max_g = grad(fn_max);
fn fn_max_gc = grad(fn_max, checkpoint=true);
"""


@pytest.mark.parametrize("x", [np.array([0.3, -1.2, 0.7]), np.array([1e-200, 3e-201, 2e-200]),
                               np.array([0.5, 0.5, -0.2])])
def test_loops_inside_builtins_branches_are_checkpointed_like_the_rest(x):
    """`norm` (its scaled sum of squares) and `max(x)` (its count of ties) lower to a loop
    inside an `scf.if` at the top level; checkpointing segments it, and its replay reads the
    branch's values through the `scf.if`'s exported results, which were recorded in the
    replay's own environment instead of the function's ('no forward value' at compile time)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dad.CheckpointWarning)
        m = dad.compile(BUILTIN_BRANCH_LOOPS, filename="branches.dad")
    for f, g, gc in ((m.fn_norm, m.fn_norm_g, m.fn_norm_gc), (m.fn_max, m.fn_max_g, m.fn_max_gc)):
        assert _close(gc(x), g(x))
    if np.sum(x == x.max()) == 1:   # a tie is a kink: differences are not the derivative
        np.testing.assert_allclose(m.fn_max_gc(x), fd_gradient(m.fn_max, x), rtol=1e-6, atol=1e-8)
    if abs(x).max() > 1e-100:   # differences at 1e-200 are rounding only
        np.testing.assert_allclose(m.fn_norm_gc(x), fd_gradient(m.fn_norm, x), rtol=1e-6, atol=1e-8)
    v = np.array([1.0, -0.5, 0.25])
    assert _close(m.fn_norm_hc(x, v)[1], m.fn_norm_h(x, v)[1])


def test_an_array_a_branch_made_is_freed_after_the_reverse_sweep_reads_it():
    """Found by the fuzzer once helpers are inlined before AD: the inlined helper returns
    from inside an `if`, so the caller's array is an `scf.if` result, freed in the forward
    sweep; the checkpointed replay (and the plain reverse sweep) read it after that free.
    Its free now moves to the reverse of the `if`."""
    src = """
fn g1(x: f64[n]) -> (f64, f64[n]) {
    var u = copy(x);
    if (0.5 < max(u)) {
        return (0.5, x);
    }
    return (0.5, x);
}
fn f(x: f64[n], b: bool) -> f64 {
    var u = copy(x);
    var (v1, v2) = g1(x);
    if b {
        return 0.5;
    }
    u = (0.5 * u + cos(v2));
    return (0.5 + sum(u));
}
fn vg = value_and_grad(f);
fn vgc = value_and_grad(f, checkpoint=true);
"""
    m = dad.compile(src, filename="branch_array.dad")
    for x in (np.array([0.48, -0.57, 0.37, 0.52, 0.99]), np.array([0.1, 0.2])):
        want = 0.5 - np.sin(x)       # d/dx sum(0.5 x + cos(x))
        np.testing.assert_allclose(m.vg(x, False)[1], want, rtol=1e-14)
        np.testing.assert_allclose(m.vgc(x, False)[1], want, rtol=1e-14)
