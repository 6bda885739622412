"""Reverse mode over reverse-mode code: `grad(grad(f))` and `vjp(grad(f))`.

The reverse sweep of a gradient program reads what that program's own tapes hold: arrays
popped from its tape (the array a call read, saved before the loop overwrote it) are
arguments of the calls' adjoints, so they must stay alive until the outer reverse sweep has
used them, although the gradient program frees them right after its own use. At third
order the same array is popped twice (a pop of the second level re-records it), and must
outlive the uses under both names.

1. The program that showed it: a loop `a = step(a, c)` calling a function that returns an
   array; `grad(grad(f, wrt=c), wrt=c)` and `vjp(grad(f, wrt=c))` at several trip counts `m`
   and lengths `n`, against central differences of `grad(f, wrt=c)` and against
   `jvp(grad(f, wrt=c))` (forward over reverse, computed independently of the outer tapes).
2. Third order, `grad(grad(grad(f)))`, on that loop and on one calling a function that
   returns a scalar, against `jvp` of the second derivative and its central differences.
3. Seeded random programs: loops calling small array functions (element-wise, with element
   updates, with a loop and branches, calling each other), element updates and branches in
   the loop. For each, with g_c = grad(f, wrt=c) and g_x = grad(f, wrt=x):
   - grad(g_c) and vjp(g_c) (reverse over reverse) against jvp(g_c) along a random (v_x, v_c)
     and against central differences of g_c along it;
   - jvp(g_x) along v against central differences of g_x, and the dot-product test
     <jvp(g_x)·v, w> = <v, vjp(g_x)·w> between forward and reverse over reverse.
Tolerances: forward-over-reverse and reverse-over-reverse compute the same sums in other
orders, so they agree to rounding (rtol 1e-9 on O(1) values, summed over at most a few
hundred terms). Central differences with h = 1e-5 of functions whose third derivatives are
O(10) have truncation error ~1e-9 and rounding error ~1e-11 / h = 1e-6 at worst: rtol and
atol 1e-5.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

import dad
from generators import central_difference

H = 1e-5
FD_TOL = dict(rtol=1e-5, atol=1e-5)
AD_TOL = dict(rtol=1e-9, atol=1e-11)

STEP = r"""
fn step(u: f64[n], s: f64) -> f64[n] { return sin(u) * 0.9 + 0.1 * s; }
fn f(x: f64[n], c: f64, m: i64) -> f64 { var a = copy(x); for i in 0..m { a = step(a, c); } return sum(a); }
fn gx = grad(f, wrt=c);
fn gg = grad(gx, wrt=c);
fn vg = vjp(gx, wrt=c);
fn jg = jvp(gx, wrt=c);
fn gk = grad(f, wrt=c, checkpoint=true);
fn gkk = grad(gk, wrt=c);
"""


@pytest.fixture(scope="module")
def step_mod():
    return dad.compile(STEP)


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("m", [0, 1, 2, 3, 4, 5, 6, 9])
def test_loop_calling_array_function(step_mod, n, m):
    mod = step_mod
    x = np.linspace(0.3, 0.9, n)
    c = 0.4
    fd = (mod.gx(x, c + H, m) - mod.gx(x, c - H, m)) / (2 * H)
    _, fwd = mod.jg(x, c, m, 1.0)
    np.testing.assert_allclose(fwd, fd, **FD_TOL)
    # called twice: a use of freed memory shows as a value that changes from call to call
    for _ in range(2):
        np.testing.assert_allclose(mod.gg(x, c, m), fwd, **AD_TOL)
        val, bar = mod.vg(x, c, m, 1.0)
        assert val == pytest.approx(mod.gx(x, c, m), rel=1e-12, abs=1e-14)
        np.testing.assert_allclose(bar, fwd, **AD_TOL)
        np.testing.assert_allclose(mod.gkk(x, c, m), fwd, **AD_TOL)


THIRD = r"""
fn step(u: f64[n], s: f64) -> f64[n] { return sin(u) * 0.9 + 0.1 * s; }
fn first(u: f64[n], s: f64) -> f64 { return sin(u[0]) * 0.9 + 0.1 * s; }
fn f(x: f64[n], c: f64, m: i64) -> f64 { var a = copy(x); for i in 0..m { a = step(a, c); } return sum(a); }
fn e(x: f64[n], c: f64, m: i64) -> f64 { var a = copy(x); for i in 0..m { a[0] = first(a, c); } return sum(a); }
fn f1 = grad(f, wrt=c);
fn f2 = grad(f1, wrt=c);
fn f3 = grad(f2, wrt=c);
fn jf2 = jvp(f2, wrt=c);
fn e1 = grad(e, wrt=c);
fn e2 = grad(e1, wrt=c);
fn e3 = grad(e2, wrt=c);
fn je2 = jvp(e2, wrt=c);
"""


@pytest.fixture(scope="module")
def third_mod():
    return dad.compile(THIRD)


@pytest.mark.parametrize("fn", ["f", "e"])
@pytest.mark.parametrize("m", [2, 3, 4, 5])
def test_third_order(third_mod, fn, m):
    """Reverse over reverse over reverse: the array a call read, saved on the first level's
    tape, reaches the third level's reverse sweep under two names (the first pop of it and
    the second level's pop of that); it is freed only after the uses of both. Against
    forward over reverse over reverse and central differences of the second derivative
    (itself checked above)."""
    mod = third_mod
    d2, d3, jd2 = getattr(mod, fn + "2"), getattr(mod, fn + "3"), getattr(mod, "j" + fn + "2")
    for n in (1, 3):
        x = np.linspace(0.3, 0.9, n)
        c = 0.4
        fd = (d2(x, c + H, m) - d2(x, c - H, m)) / (2 * H)
        _, fwd = jd2(x, c, m, 1.0)
        np.testing.assert_allclose(fwd, fd, **FD_TOL)
        for _ in range(2):
            np.testing.assert_allclose(d3(x, c, m), fwd, **AD_TOL)


# ---------------------------------------------------------------- random programs

HELPERS = [
    # element-wise
    "fn {name}(u: f64[n], s: f64) -> f64[n] {{ return sin(u) * 0.9 + 0.1 * s; }}",
    "fn {name}(u: f64[n], s: f64) -> f64[n] {{ return tanh(u * s) * 0.8 + 0.2 * u; }}",
    # an element update of a copy
    "fn {name}(u: f64[n], s: f64) -> f64[n] {{\n"
    "    var r = copy(u);\n"
    "    r[0] = 0.6 * r[0] + 0.3 * sin(s * r[n - 1]);\n"
    "    return r;\n}}",
    # a loop with a branch, filling a new array
    "fn {name}(u: f64[n], s: f64) -> f64[n] {{\n"
    "    var r = zeros(n);\n"
    "    for k in 0..n {{\n"
    "        if k % 2 == 0 {{ r[k] = 0.7 * sin(u[k]) + 0.1 * s; }}\n"
    "        else {{ r[k] = 0.5 * u[k] * cos(s) + 0.2 * u[(k + 1) % n]; }}\n"
    "    }}\n"
    "    return r;\n}}",
    # a reduction broadcast back
    "fn {name}(u: f64[n], s: f64) -> f64[n] {{\n"
    "    let t = sum(u) / float(n);\n"
    "    return 0.8 * sin(u) + 0.1 * s * t;\n}}",
    # in-place updates in a loop over the array
    "fn {name}(u: f64[n], s: f64) -> f64[n] {{\n"
    "    var r = copy(u);\n"
    "    for k in 1..n {{ r[k] = 0.5 * r[k] + 0.4 * tanh(r[k - 1] * s); }}\n"
    "    return r;\n}}",
]
CALLER = ("fn {name}(u: f64[n], s: f64) -> f64[n] {{\n"
          "    let v = {callee}(u, s);\n"
          "    return 0.5 * v + 0.4 * cos(u) * s;\n}}")


def _program(seed: int) -> str:
    """A program `f(x: f64[n], c: f64, m: i64) -> f64` and its derived functions (every
    index it uses is in range for any n >= 1)."""
    rng = random.Random(seed)
    helpers, names = [], []
    for k in range(rng.randint(1, 3)):
        name = f"h{k}"
        if names and rng.random() < 0.3:
            helpers.append(CALLER.format(name=name, callee=rng.choice(names)))
        else:
            helpers.append(rng.choice(HELPERS).format(name=name))
        names.append(name)

    def call():
        s = rng.choice(["c", "c", "0.5 * c + 0.1", "c * c", "sin(c + t)"])
        return f"a = {rng.choice(names)}(a, {s});"

    def update():
        return rng.choice(["a[i % n] = 0.8 * a[i % n] + 0.1 * sin(c + a[(i + 1) % n]);",
                           "a[0] = 0.9 * a[0] + 0.1 * c * a[n - 1];",
                           "a[n - 1] += 0.2 * tanh(c * a[0]);"])

    body = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["call", "call", "update", "if_index", "if_const", "scalar"])
        if kind == "call":
            body.append(call())
        elif kind == "update":
            body.append(update())
        elif kind == "if_index":
            body += ["if i % 2 == 0 {", call(), "} else {", update(), "}"]
        elif kind == "if_const":  # c stays in [0.2, 0.6]: the branch never flips near it
            body += ["if c > 0.0 {", call(), "}"]
        else:
            body.append("t = 0.9 * t + 0.1 * sum(a) / float(n);")
    if not any("h" in line and "(a," in line for line in body):
        body.insert(0, call())
    init = rng.choice(["copy(x)", "copy(x)", "sin(x) + 0.1 * c"])
    ret = rng.choice(["sum(a) + t", "0.5 * dot(a, a) + t", "sum(sin(a)) * c + t", "dot(a, x) + t"])
    loop = rng.choice(["0..m", "0..m", "1..m + 1"])
    src = "\n".join(helpers) + "\n" + "\n".join([
        "fn f(x: f64[n], c: f64, m: i64) -> f64 {",
        f"    var a = {init};",
        "    var t = 0.0;",
        f"    for i in {loop} {{",
        *("        " + line for line in body),
        "    }",
        f"    return {ret};",
        "}",
        "fn g_c = grad(f, wrt=c);",
        "fn g_cc = grad(g_c);",
        "fn v_c = vjp(g_c);",
        "fn j_c = jvp(g_c);",
        "fn g_x = grad(f, wrt=x);",
        "fn v_x = vjp(g_x);",
        "fn j_x = jvp(g_x);",
    ])
    return src


SEEDS = list(range(30))


@pytest.mark.parametrize("seed", SEEDS)
def test_random_program(seed):
    src = _program(seed)
    mod = dad.compile(src)
    rng = np.random.default_rng(seed)
    for n, m in ((1, 3), (3, 4), (2, 6)):
        x = rng.uniform(-0.8, 0.8, n)
        c = rng.uniform(0.2, 0.6)
        vx, vc = rng.normal(size=n), rng.normal()
        w = rng.normal(size=n)
        where = f"seed {seed}, n={n}, m={m}\n{src}"

        # second derivatives of g_c: forward over reverse, central differences
        _, jc = mod.j_c(x, c, m, vx, vc)
        fd = central_difference(mod.g_c, [x, c, m], [vx, vc, None], H)[0]
        np.testing.assert_allclose(jc, fd, **FD_TOL, err_msg=where)
        for _ in range(2):  # a use of freed memory shows as a value that changes between calls
            hx, hc = mod.g_cc(x, c, m)
            np.testing.assert_allclose(hx @ vx + hc * vc, jc, **AD_TOL, err_msg=where)
            val, bx, bc = mod.v_c(x, c, m, 0.7)
            np.testing.assert_allclose(val, mod.g_c(x, c, m), rtol=1e-12, atol=1e-14, err_msg=where)
            np.testing.assert_allclose(bx, 0.7 * hx, **AD_TOL, err_msg=where)
            np.testing.assert_allclose(bc, 0.7 * hc, **AD_TOL, err_msg=where)

        # g_x: Hessian-vector product by forward over reverse against differences, and the
        # dot-product test against reverse over reverse
        _, jx = mod.j_x(x, c, m, vx, vc)
        fd = central_difference(mod.g_x, [x, c, m], [vx, vc, None], H)[0]
        np.testing.assert_allclose(jx, fd, **FD_TOL, err_msg=where)
        for _ in range(2):
            _, bx, bc = mod.v_x(x, c, m, w)
            lhs, rhs = jx @ w, bx @ vx + bc * vc
            assert abs(lhs - rhs) <= 1e-9 * (1 + abs(lhs)), where
