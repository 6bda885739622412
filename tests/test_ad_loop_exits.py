"""Arrays leaving loops, in every mode: an array returned early from inside a `for` or a
`while` (alone or in a tuple), a `break` or `continue` after which the array the loop updates
is used, an array rebound in a `while`, nested loops; each through `jvp`, `vjp`, `grad`,
`value_and_grad`, `jacobian` (forward and reverse), `hvp`, `hessian` and
`grad(..., checkpoint=true)`, with the exit taken at the first iteration, mid-way and never.

Oracles (none of them produced by the code under test):
- the primal of each program against a NumPy port, which also says at which iteration the
  loop was left, so that each case provably exercises the exit it is named after;
- `jvp` against central differences `(f(x + h v) - f(x - h v)) / 2h`, h = 1e-6: truncation
  `h^2/6 |f'''|` ~ 1e-13 and rounding `eps |f| / h` ~ 1e-10 |f| for the O(1)..O(10) values
  here, so `|jvp - fd| <= 1e-6 (1 + |jvp|)`; a dropped adjoint, an adjoint from the wrong
  iteration or a missed exit is off by O(1);
- `vjp` against `jvp` by the dot-product test `<J v, w> = <v, J^T w>`: both are exact up to
  rounding, summed in different orders, so `1e-10 (1 + |<J v, w>|)`;
- `hvp` against central differences of `grad` (same h: `1e-5 (1 + |hvp|)`, `grad` being
  O(10) with O(100) third derivatives along v), `hessian` against `hvp` (both exact:
  1e-10 relative) and its own transpose;
- `grad(..., checkpoint=true)` equal to `grad` bit for bit (the docs promise identical
  results; a loop that cannot be checkpointed is left as it is).
The seeded generator at the end builds a few dozen random programs of these shapes and
checks each against central differences and the dot-product test.
"""
from __future__ import annotations

import numpy as np
import pytest

import dad
from generators import as_tuple, difference

H, TOL, DOT = 1e-6, 1e-6, 1e-10
N = 5

SRC = r"""
fn step(u: f64[n], h: f64) -> f64[n] { return u + h * sin(u); }

fn ret_for(x: f64[n], c: f64) -> f64[n] {
    var u = x;
    for i in 0..6 {
        u = step(u, 0.3) * 0.9;
        if sin(u[0]) + float(i) > c { return u * u; }
    }
    return u;
}

fn ret_while(x: f64[n], c: f64) -> f64[n] {
    var u = x;
    var t = 0;
    while t < 6 {
        u = u * 0.9 + 0.3 * sin(u);
        if sin(u[0]) + float(t) > c { return exp(u * 0.5); }
        t += 1;
    }
    return u + 1.0;
}

fn brk_while(x: f64[n], c: f64) -> f64[n] {
    var u = x;
    var t = 0;
    while t < 6 {
        u = u * 0.9 + 0.5 * sin(u);
        if sin(u[0]) + float(t) > c { break; }
        t += 1;
    }
    return u * u;
}

fn brk_for(x: f64[n], c: f64) -> f64[n] {
    var u = x;
    for i in 0..6 {
        u = step(u, 0.4);
        if sin(u[0]) + float(i) > c { break; }
        u[1] = u[1] * u[2];
    }
    return u;
}

fn cont(x: f64[n], c: f64) -> f64[n] {
    var u = x;
    for i in 0..6 {
        u = u * 0.8 + 0.2 * cos(u);
        if sin(u[0]) + float(i) > c { continue; }
        u = u * sin(u) + u;
    }
    return u;
}

fn cont_ret(x: f64[n], c: f64) -> f64[n] {
    var u = x;
    var t = 0;
    while t < 6 {
        t += 1;
        u = u * 0.9 + 0.3 * sin(u);
        if sin(u[0]) + float(t) > c + 1.0 { continue; }
        if sin(u[1]) + float(t) > c + 2.0 { return u * float(t); }
    }
    return u;
}

fn nested(x: f64[n], c: f64) -> f64[n] {
    var u = x;
    for i in 0..3 {
        var j = 0;
        while j < 2 {
            u = u * 0.9 + 0.3 * sin(u);
            if sin(u[0]) + float(2 * i + j) > c { return u * float(j + 1); }
            j += 1;
        }
        u[0] = u[0] + 0.1 * u[1];
    }
    return u;
}

fn rebound(x: f64[n], c: f64) -> f64[n] {
    var u = x;
    var t = 0;
    while t < 6 and sin(u[0]) + float(t) <= c {
        u = u * 0.9 + 0.4 * sin(u);
        t += 1;
    }
    return u;
}

fn ret2d(x: f64[n, m], c: f64) -> f64[n, m] {
    var u = x;
    for i in 0..6 {
        u = u * 0.9 + 0.3 * sin(u);
        if sin(u[0, 0]) + float(i) > c { return u * u; }
    }
    return u;
}

fn tup(x: f64[n], c: f64) -> (f64, f64[n]) {
    var u = x;
    for i in 0..6 {
        u = u * 0.9 + 0.3 * sin(u);
        if sin(u[0]) + float(i) > c { return (sum(u * u), u * 2.0); }
    }
    return (u[1], u);
}

fn sim(x: f64[n], c: f64) -> f64 {
    var u = x;
    for i in 0..6 {
        u = step(u, 0.3);
        if sin(u[0]) + float(i) > c { return sum(u * u); }
    }
    return sum(u);
}

fn head(x: f64[n], c: f64) -> f64[2] {
    var u = x;
    for i in 0..6 {
        u = u * 0.9 + 0.3 * sin(u);
        if sin(u[0]) + float(i) > c { return u[0..2] * 2.0; }
    }
    return u[1..3];
}

fn loss_tup(x: f64[n], c: f64) -> f64 {
    let (s, u) = tup(x, c);
    return s * sum(u) + sum(sin(u));
}

# a loop that can be checkpointed (it reads no array that is written), calling a function
# whose loop returns an array early
fn ck(x: f64[n], c: f64) -> f64 {
    var s = 0.0;
    for i in 0..30 {
        s = s * 0.9 + 0.1 * sum(ret_for(x, c)) * sin(s + 1.0);
    }
    return s;
}
"""

ARRAY_FNS = ["ret_for", "ret_while", "brk_while", "brk_for", "cont", "cont_ret", "nested",
             "rebound", "ret2d"]
SCALAR_FNS = ["sim", "loss_tup", "ck"] + [f"loss_{p}" for p in ARRAY_FNS]
# second order (forward over reverse) costs seconds of compilation per function: `hvp` for
# every shape of exit, the full `hessian` (the same sweep, 8 tangents wide) for a few
SECOND_ORDER = [p for p in SCALAR_FNS if p != "ck"]
HESSIAN = ["sim", "loss_tup", "loss_nested", "loss_brk_while"]


def _source() -> str:
    out = [SRC]
    for p in ARRAY_FNS:
        shape = "n, m" if p == "ret2d" else "n"
        out.append(f"fn loss_{p}(x: f64[{shape}], c: f64) -> f64 {{ let u = {p}(x, c); "
                   f"return sum(u * u) * 0.5 + sum(sin(u)); }}")
    for p in ARRAY_FNS + ["tup", "head"]:
        out.append(f"fn {p}_jvp = jvp({p}, wrt=x);")
        out.append(f"fn {p}_vjp = vjp({p}, wrt=x);")
    for p in ARRAY_FNS + ["head"]:
        out.append(f"fn {p}_jac = jacobian({p}, wrt=x);")
    for p in SCALAR_FNS:
        out.append(f"fn {p}_grad = grad({p}, wrt=x);")
        out.append(f"fn {p}_vg = value_and_grad({p}, wrt=x);")
        out.append(f"fn {p}_ckpt = grad({p}, wrt=x, checkpoint=true);")
        out.append(f"fn {p}_jvp = jvp({p}, wrt=x);")
        if p in SECOND_ORDER:
            out.append(f"fn {p}_hvp = hvp({p}, wrt=x);")
        if p in HESSIAN:
            out.append(f"fn {p}_hess = hessian({p}, wrt=x);")
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def m():
    return dad.compile(_source(), filename="exits.dad")


# ----------------------------------------------------------------------------- NumPy ports
# Each returns (value, where): `where` is the iteration at which the loop was left (None:
# it ran to the end).
def _step(u, h):
    return u + h * np.sin(u)


def p_ret_for(x, c):
    u = x.copy()
    for i in range(6):
        u = _step(u, 0.3) * 0.9
        if np.sin(u[0]) + i > c:
            return u * u, i
    return u, None


def p_ret_while(x, c):
    u = x.copy()
    for t in range(6):
        u = u * 0.9 + 0.3 * np.sin(u)
        if np.sin(u[0]) + t > c:
            return np.exp(u * 0.5), t
    return u + 1.0, None


def p_brk_while(x, c):
    u, where = x.copy(), None
    for t in range(6):
        u = u * 0.9 + 0.5 * np.sin(u)
        if np.sin(u[0]) + t > c:
            where = t
            break
    return u * u, where


def p_brk_for(x, c):
    u, where = x.copy(), None
    for i in range(6):
        u = _step(u, 0.4)
        if np.sin(u[0]) + i > c:
            where = i
            break
        u[1] = u[1] * u[2]
    return u, where


def p_cont(x, c):
    u, where = x.copy(), None
    for i in range(6):
        u = u * 0.8 + 0.2 * np.cos(u)
        if np.sin(u[0]) + i > c:
            where = i if where is None else where  # the first iteration skipped
            continue
        u = u * np.sin(u) + u
    return u, where


def p_cont_ret(x, c):
    u, where = x.copy(), None
    for t in range(1, 7):
        u = u * 0.9 + 0.3 * np.sin(u)
        if np.sin(u[0]) + t > c + 1.0:
            where = t - 1 if where is None else where
            continue
        if np.sin(u[1]) + t > c + 2.0:
            return u * t, t - 1
    return u, where


def p_nested(x, c):
    u = x.copy()
    for i in range(3):
        for j in range(2):
            u = u * 0.9 + 0.3 * np.sin(u)
            if np.sin(u[0]) + 2 * i + j > c:
                return u * (j + 1), 2 * i + j
        u[0] = u[0] + 0.1 * u[1]
    return u, None


def p_rebound(x, c):
    u, t = x.copy(), 0
    while t < 6 and np.sin(u[0]) + t <= c:
        u = u * 0.9 + 0.4 * np.sin(u)
        t += 1
    return u, (t if t < 6 else None)


def p_ret2d(x, c):
    u = x.copy()
    for i in range(6):
        u = u * 0.9 + 0.3 * np.sin(u)
        if np.sin(u[0, 0]) + i > c:
            return u * u, i
    return u, None


def p_tup(x, c):
    u = x.copy()
    for i in range(6):
        u = u * 0.9 + 0.3 * np.sin(u)
        if np.sin(u[0]) + i > c:
            return (np.sum(u * u), u * 2.0), i
    return (u[1], u), None


def p_sim(x, c):
    u = x.copy()
    for i in range(6):
        u = _step(u, 0.3)
        if np.sin(u[0]) + i > c:
            return np.sum(u * u), i
    return np.sum(u), None


def p_head(x, c):
    u = x.copy()
    for i in range(6):
        u = u * 0.9 + 0.3 * np.sin(u)
        if np.sin(u[0]) + i > c:
            return u[0:2] * 2.0, i
    return u[1:3], None


def p_loss_tup(x, c):
    (s, u), where = p_tup(x, c)
    return s * np.sum(u) + np.sum(np.sin(u)), where


def p_ck(x, c):
    r, where = p_ret_for(x, c)
    s = 0.0
    for _ in range(30):
        s = s * 0.9 + 0.1 * np.sum(r) * np.sin(s + 1.0)
    return s, where


PORTS = {name[2:]: f for name, f in list(globals().items()) if name.startswith("p_")}
for _p in ARRAY_FNS:
    PORTS[f"loss_{_p}"] = (lambda f: lambda x, c: (
        (lambda u, w: (np.sum(u * u) * 0.5 + np.sum(np.sin(u)), w))(*f(x, c))))(PORTS[_p])

# where each exit is taken: c = -10 leaves at the first iteration, c = 100 never, and
# c = 2.5 at the third or fourth (sin(u[0]) + i > 2.5 first holds for i = 2 or 3)
EXITS = {"first": -10.0, "mid": 2.5, "never": 100.0}


def _x(name, seed=0):
    rng = np.random.default_rng(seed)
    shape = (3, 4) if name in ("ret2d", "loss_ret2d") else (N,)
    return rng.uniform(-0.8, 0.8, size=shape)


def _scenario(name, c):
    """Check with the port that `c` makes the loop exit where the case says."""
    _, where = PORTS[name](_x(name), EXITS[c])
    if c == "first":
        assert where == 0, (name, where)
    elif c == "never":
        assert where is None, (name, where)
    else:
        assert where is not None and 1 <= where <= 5, (name, where)


def _close(a, b, tol, what):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    assert err <= tol * (1.0 + float(np.max(np.abs(b)))), f"{what}:\n{a}\nvs\n{b}"


CASES = [(p, c) for p in ARRAY_FNS for c in EXITS]


@pytest.mark.parametrize("name,c", CASES)
def test_array_exit_primal_jvp_vjp_jacobian(m, name, c):
    _scenario(name, c)
    x, cv = _x(name), EXITS[c]
    rng = np.random.default_rng(1)
    v, w = rng.normal(size=x.shape), rng.normal(size=x.shape)
    prim = getattr(m, name)
    _close(prim(x, cv), PORTS[name](x, cv)[0], 1e-13, "primal vs NumPy")
    y, jv = getattr(m, f"{name}_jvp")(x, cv, v)
    _close(y, PORTS[name](x, cv)[0], 1e-13, "jvp's primal")
    _close(jv, difference(lambda z: prim(z, cv), x, v, H), TOL, "jvp vs central differences")
    y2, xbar = getattr(m, f"{name}_vjp")(x, cv, w)
    _close(y2, y, 0.0, "vjp's primal")
    lhs, rhs = float(np.sum(jv * w)), float(np.sum(v * xbar))
    assert abs(lhs - rhs) <= DOT * (1 + abs(lhs)), (lhs, rhs)
    J = getattr(m, f"{name}_jac")(x, cv)
    _close(np.tensordot(J, v, axes=v.ndim), jv, DOT, "jacobian . v vs jvp")


@pytest.mark.parametrize("c", list(EXITS))
def test_tuple_with_an_array_returned_from_a_loop(m, c):
    _scenario("tup", c)
    x, cv = _x("tup"), EXITS[c]
    rng = np.random.default_rng(2)
    v, w0, w1 = rng.normal(size=N), float(rng.normal()), rng.normal(size=N)
    (s, u), _ = p_tup(x, cv)
    s_, u_, sd, ud = m.tup_jvp(x, cv, v)
    _close(s_, s, 1e-13, "primal")
    _close(u_, u, 1e-13, "primal")
    _close(sd, difference(lambda z: m.tup(z, cv)[0], x, v, H), TOL, "jvp (scalar) vs fd")
    _close(ud, difference(lambda z: m.tup(z, cv)[1], x, v, H), TOL, "jvp (array) vs fd")
    *_, xbar = m.tup_vjp(x, cv, w0, w1)
    lhs, rhs = sd * w0 + float(np.sum(ud * w1)), float(np.sum(v * xbar))
    assert abs(lhs - rhs) <= DOT * (1 + abs(lhs)), (lhs, rhs)


@pytest.mark.parametrize("c", list(EXITS))
def test_reverse_jacobian_of_an_array_returned_from_a_loop(m, c):
    """`head` has fewer outputs than inputs: its Jacobian is made in reverse mode, row by row."""
    _scenario("head", c)
    x, cv = _x("head"), EXITS[c]
    J = m.head_jac(x, cv)
    assert J.shape == (2, N)
    fd = np.stack([difference(lambda z: m.head(z, cv), x, e, H) for e in np.eye(N)], axis=1)
    _close(J, fd, TOL, "reverse jacobian vs fd")
    rng = np.random.default_rng(3)
    v, w = rng.normal(size=N), rng.normal(size=2)
    _, jv = m.head_jvp(x, cv, v)
    _, xbar = m.head_vjp(x, cv, w)
    _close(J @ v, jv, DOT, "jacobian . v vs jvp")
    _close(w @ J, xbar, DOT, "w . jacobian vs vjp")


@pytest.mark.parametrize("name,c", [(p, c) for p in SCALAR_FNS for c in EXITS])
def test_scalar_of_an_array_exit_every_reverse_mode(m, name, c):
    _scenario(name, c)
    x, cv = _x(name), EXITS[c]
    rng = np.random.default_rng(4)
    v = rng.normal(size=x.shape)
    f = getattr(m, name)
    val = PORTS[name](x, cv)[0]
    _close(f(x, cv), val, 1e-12, "primal vs NumPy")
    g = getattr(m, f"{name}_grad")(x, cv)
    fd = float(difference(lambda z: f(z, cv), x, v, H))
    _close(float(np.sum(g * v)), fd, TOL, "grad . v vs central differences")
    y, jv = getattr(m, f"{name}_jvp")(x, cv, v)
    assert abs(jv - float(np.sum(g * v))) <= DOT * (1 + abs(jv)), "jvp vs grad"
    y2, g2 = getattr(m, f"{name}_vg")(x, cv)
    _close(y2, f(x, cv), 0.0, "value_and_grad's value")
    _close(y, f(x, cv), 1e-13, "jvp's primal")
    np.testing.assert_array_equal(g2, g)
    np.testing.assert_array_equal(getattr(m, f"{name}_ckpt")(x, cv), g)
    if name not in SECOND_ORDER:
        return
    hv = getattr(m, f"{name}_hvp")(x, cv, v)
    _close(hv, difference(lambda z: getattr(m, f"{name}_grad")(z, cv), x, v, H), 1e-5, "hvp vs fd of grad")
    if name not in HESSIAN:
        return
    Hm = getattr(m, f"{name}_hess")(x, cv)
    k = x.size
    H2 = Hm.reshape(k, k)
    _close(H2 @ v.ravel(), hv.ravel(), DOT, "hessian . v vs hvp")
    _close(H2, H2.T, DOT, "hessian symmetric")


def test_the_checkpointed_loop_is_segmented():
    """`ck`'s loop is eligible: grad(..., checkpoint=true) really replays segments (so the
    equality above compares two different adjoint programs)."""
    from dad.frontend import compile_to_ir
    from dad.runtime.compiler import derive_all
    ir = compile_to_ir(SRC + "fn ck_ckpt = grad(ck, wrt=x, checkpoint=true);\n", filename="exits.dad")
    derive_all(ir)
    report = ir["ck_ckpt"].tape_report
    assert any("checkpointed segment" in t.loop for t in report), report


CKPT_INNER_BREAK = r"""
fn inner(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..40 {
        var j = 0;
        while j < 3 { s = s * 0.9 + sin(s + x[j]); if s > 2.0 { break; } j += 1; }
        for k in 0..3 { s = s + 0.1 * cos(s * x[k]); if s > 2.5 { break; } }
    }
    return s;
}
fn own(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..40 { s = s * 0.9 + sin(s + x[0]); if s > 20.0 { break; } }
    return s;
}
fn inner_ckpt = grad(inner, checkpoint=true);
fn own_ckpt = grad(own, checkpoint=true);
"""


def test_a_break_only_of_an_inner_loop_leaves_the_outer_loop_checkpointable():
    """docs/LANGUAGE.md: a loop is eligible if no `break` or `return` leaves it; the `break`
    of a loop nested in it does not count (the inner loop runs as a `while`, the outer one
    stays a `for`), while a loop with a `break` of its own runs as a `while` and is not split.
    The segmented gradient is checked against central differences."""
    from dad.frontend import compile_to_ir
    from dad.runtime.compiler import derive_all
    ir = compile_to_ir(CKPT_INNER_BREAK, filename="ckpt_break.dad")
    derive_all(ir)
    segmented = lambda name: any("checkpointed segment" in t.loop for t in ir[name].tape_report)
    assert segmented("inner_ckpt"), ir["inner_ckpt"].tape_report
    assert not segmented("own_ckpt"), ir["own_ckpt"].tape_report
    m = dad.compile(CKPT_INNER_BREAK, filename="ckpt_break.dad")
    rng = np.random.default_rng(8)
    x, v = rng.uniform(-0.5, 0.5, 4), rng.normal(size=4)
    _close(m.inner_ckpt(x) @ v, difference(m.inner, x, v, H), TOL, "checkpointed grad . v vs fd")


def test_early_return_of_the_array_the_loop_updates_in_place():
    """The array returned is the `var` updated element by element, returned at once."""
    src = """
    fn f(x: f64[n]) -> (f64, f64[n]) {
        var a = copy(x);
        for i in 0..n { if a[i] > 1.0 { return (a[i], a); } a[i] = sin(a[i]) * 2.0; }
        return (0.0, a);
    }
    fn fv = vjp(f);
    fn fj = jvp(f);
    """
    m = dad.compile(src)
    rng = np.random.default_rng(5)
    for x in (np.array([0.1, 2.0, 0.3, 0.4]), np.array([0.1, 0.2, 0.9, 0.4]),
              np.array([1.5, 0.2, 0.3, 0.4]), np.array([0.1, 0.2, 0.3, 0.1])):
        v, w0, w1 = rng.normal(size=4), 0.7, rng.normal(size=4)
        s, a, sd, ad = m.fj(x, v)
        _close(sd, difference(lambda z: m.f(z)[0], x, v, H), TOL, "jvp scalar vs fd")
        _close(ad, difference(lambda z: m.f(z)[1], x, v, H), TOL, "jvp array vs fd")
        *_, xbar = m.fv(x, w0, w1)
        lhs, rhs = sd * w0 + float(np.sum(ad * w1)), float(np.sum(v * xbar))
        assert abs(lhs - rhs) <= DOT * (1 + abs(lhs)), (lhs, rhs)


# ----------------------------------------------------------------------------- random programs
class _RandomProgram:
    """A random `fn NAME(x: f64[n], c: f64) -> T` (T: an array, a (scalar, array) tuple or a
    scalar): an array `u` and a scalar `s` updated by a loop (`for` or `while`, possibly with
    an inner `for` or `while`) whose body mixes whole-array rebinds, calls, element updates
    and exits (`return`, `break`, `continue`) taken when `q + iteration > c`, so that `c`
    places the exit: -10 at the first test, 100 never, 3.3 mid-way. Updates are contractive
    or bounded (tanh, sin, factors below 1), so no overflow hides a wrong adjoint."""

    def __init__(self, rng: np.random.Generator, name: str):
        self.rng, self.name = rng, name
        self.result = self.pick(["array", "array", "tuple", "scalar"])
        self.counters = 0
        self.text = self._source()

    def pick(self, xs):
        return xs[int(self.rng.integers(len(xs)))]

    def ret(self, level):
        if self.result == "array":
            return self.pick(["u * u", "u", "exp(0.5 * u)", "u * s", "step(u, 0.2)"])
        if self.result == "tuple":
            return self.pick(["(sum(u), u * 2.0)", "(s, u)", "(s * u[1], sin(u))"])
        return self.pick(["sum(u * u)", "s + u[0]", "s * sum(sin(u))"])

    def update(self):
        j, k = (int(v) for v in self.rng.integers(0, N, size=2))
        return self.pick([
            "u = u * 0.9 + 0.3 * sin(u);",
            "u = step(u, 0.25);",
            f"u[{j}] = 0.5 * u[{j}] + 0.3 * tanh(u[{k}]);",
            f"s = 0.8 * s + 0.2 * tanh(u[{j}]);",
            "u = u * 0.8 + 0.1 * s;",
            "u = u * (0.9 + 0.05 * cos(s));",
        ])

    def cond(self, it):
        j = int(self.rng.integers(N))
        q = self.pick([f"sin(u[{j}])", "tanh(s)", "sin(sum(u))"])
        return f"{q} + float({it}) > c"

    def exit(self, it):
        k = self.pick(["return", "return", "break", "continue"])
        body = f"return {self.ret(0)};" if k == "return" else f"{k};"
        return f"if {self.cond(it)} {{ {body} }}"

    def body(self, it, inner_allowed, inner):
        lines = [self.update()]
        if inner_allowed and self.rng.random() < 0.4:
            lines += self.loop(it, inner=True)
        lines.insert(int(self.rng.integers(len(lines) + 1)), self.exit(it))
        if self.rng.random() < 0.5:
            lines.append(self.update())
        return lines

    def loop(self, outer_it=None, inner=False):
        self.counters += 1
        v = f"k{self.counters}"
        trips = 2 if inner else 5
        it = f"2 * {outer_it} + {v}" if inner else v
        body = self.body(it, not inner, inner)
        if self.pick(["for", "while"]) == "for":
            return [f"for {v} in 0..{trips} {{", *body, "}"]
        # the counter advances first, so that `continue` cannot stall the loop
        return [f"var {v} = -1;", f"while {v} < {trips - 1} {{", f"{v} += 1;", *body, "}"]

    def _source(self):
        rt = {"array": "f64[n]", "tuple": "(f64, f64[n])", "scalar": "f64"}[self.result]
        lines = [f"fn {self.name}(x: f64[n], c: f64) -> {rt} {{", "var u = x;", "var s = 0.5;",
                 *self.loop(), f"return {self.ret(0)};", "}"]
        out = "\n".join(lines) + "\n"
        out += f"fn {self.name}_jvp = jvp({self.name}, wrt=x);\n"
        out += f"fn {self.name}_vjp = vjp({self.name}, wrt=x);\n"
        if self.result == "scalar":
            out += f"fn {self.name}_grad = grad({self.name}, wrt=x);\n"
            out += f"fn {self.name}_ckpt = grad({self.name}, wrt=x, checkpoint=true);\n"
        return out


RANDOM_COUNT = 30


@pytest.fixture(scope="module")
def random_programs():
    rng = np.random.default_rng(20261207)
    progs = [_RandomProgram(rng, f"r{k}") for k in range(RANDOM_COUNT)]
    src = "fn step(u: f64[n], h: f64) -> f64[n] { return u + h * sin(u); }\n" + \
        "".join(p.text for p in progs)
    return dad.compile(src, filename="random_exits.dad"), progs, src


@pytest.mark.parametrize("k", range(RANDOM_COUNT))
def test_random_array_loop_exits_against_differences(random_programs, k):
    m, progs, src = random_programs
    p = progs[k]
    f = getattr(m, p.name)
    rng = np.random.default_rng(100 + k)
    x = rng.uniform(-0.8, 0.8, size=N)
    for c in EXITS.values():
        outs = as_tuple(f(x, c))
        v = rng.normal(size=N)
        w = [float(rng.normal()) if np.ndim(o) == 0 else rng.normal(size=np.shape(o)) for o in outs]
        jo = as_tuple(getattr(m, f"{p.name}_jvp")(x, c, v))
        n_out = len(outs)
        for o, o2 in zip(outs, jo[:n_out]):
            _close(o2, o, 1e-13, f"jvp's primal\n{p.text}")
        for j in range(n_out):
            fd = difference(lambda z: as_tuple(f(z, c))[j], x, v, H)
            _close(jo[n_out + j], fd, TOL, f"{p.name} (c = {c}) jvp vs fd, result {j}\n{p.text}")
        vo = as_tuple(getattr(m, f"{p.name}_vjp")(x, c, *w))
        xbar = vo[-1]
        lhs = sum(float(np.sum(np.asarray(t) * ww)) for t, ww in zip(jo[n_out:], w))
        rhs = float(np.sum(v * xbar))
        assert abs(lhs - rhs) <= DOT * (1 + abs(lhs)), (p.name, c, lhs, rhs, p.text)
        if p.result == "scalar":
            g = getattr(m, f"{p.name}_grad")(x, c)
            _close(g, xbar * (1.0 / w[0]), DOT, "grad vs vjp")
            np.testing.assert_array_equal(getattr(m, f"{p.name}_ckpt")(x, c), g)


# ----------------------------------------------------------------------------- scf.for
FOR_IR = """
func.func @f(%x: memref<?xf64>, %c: f64) -> memref<?xf64> attributes {sig = "(x: f64[n], c: f64) -> f64[n]"} {
  %n = memref.dim %x {index = 0} : i64
  %u = memref.alloc %n : memref<?xf64>
  memref.copy %x, %u : ()
  %0 = arith.constant {value = 0} : i64
  %1 = arith.constant {value = 4} : i64
  %2 = arith.constant {value = 1} : i64
  %r = scf.for %0, %1, %2, %u : memref<?xf64> {
  ^(%i: i64, %a: memref<?xf64>):
    %3 = memref.load %a, %0 : f64
    %4 = arith.sitofp %i : f64
    %5 = arith.addf %3, %4 : f64
    %6 = arith.cmpf %5, %c {pred = "olt"} : i1
    %b = scf.if %6 : memref<?xf64> {
    ^():
      %7 = memref.alloc %n : memref<?xf64>
      scf.for %0, %n, %2 : () {
      ^(%k: i64):
        %8 = memref.load %a, %k : f64
        %9 = math.sin %8 : f64
        %10 = arith.mulf %8, %9 : f64
        %11 = arith.addf %10, %8 : f64
        memref.store %11, %7, %k : ()
        scf.yield : ()
      }
      scf.yield %7 : ()
    } {
    ^():
      scf.yield %a : ()
    }
    scf.yield %b : ()
  }
  func.return %r : ()
}
"""


def test_an_array_carried_by_a_for_loop_in_the_ir():
    """The front end carries arrays through `scf.while` only (a `for` left early becomes a
    `while`); reverse mode handles an `scf.for` carrying an array the same way: here each
    iteration may replace the array by a new one computed from it (`a <- a sin(a) + a`
    while `a[0] + i < c`)."""
    from dad.frontend import compile_to_ir
    from dad.lang.irparser import parse_module
    from dad.runtime.compiler import compile_module
    ir = compile_to_ir("fn f(x: f64[n], c: f64) -> f64[n] { return x; }\n"
                       "fn fv = vjp(f, wrt=x);\nfn fj = jvp(f, wrt=x);\n", filename="for.dad")
    ir.functions["f"] = parse_module(FOR_IR)["f"]
    m = compile_module(ir, filename="for.dad")

    def port(x, c):
        a = x.copy()
        for i in range(4):
            if a[0] + i < c:
                a = a * np.sin(a) + a
        return a

    rng = np.random.default_rng(6)
    x = rng.uniform(0.2, 0.8, N)
    for c in (-1.0, 2.5, 10.0):  # never replaced, replaced in the first iterations, always
        v, w = rng.normal(size=N), rng.normal(size=N)
        y, jv = m.fj(x, c, v)
        _close(y, port(x, c), 1e-14, "primal")
        _close(jv, difference(lambda z: port(z, c), x, v, H), TOL, "jvp vs fd")
        y2, xbar = m.fv(x, c, w)
        _close(y2, y, 0.0, "vjp's primal")
        lhs, rhs = float(jv @ w), float(v @ xbar)
        assert abs(lhs - rhs) <= DOT * (1 + abs(lhs)), (lhs, rhs)


# ----------------------------------------------------------------------------- time stepping
STEPPING = r"""
fn step(u: f64[n], h: f64) -> f64[n] { return u + h * sin(u); }
fn sim(x: f64[n], h: f64) -> f64 {
    var u = x;
    for i in 0..100 { u = step(u, h); if u[0] > 3.0 { return sum(u * u); } }
    return sum(u);
}
fn f(x: f64[n]) -> f64[n] {
    var u = x;
    var t = 0;
    while t < 50 { u = u * 0.9 + sin(u); if norm(u) > 10.0 { break; } t += 1; }
    return u;
}
fn sim_grad = grad(sim);
fn sim_ckpt = grad(sim, checkpoint=true);
fn sim_jvp = jvp(sim);
fn f_jvp = jvp(f);
fn f_vjp = vjp(f);
"""


def _sim_port(x, h):
    u = x.copy()
    for i in range(100):
        u = u + h * np.sin(u)
        if u[0] > 3.0:
            return np.sum(u * u), i
    return np.sum(u), None


def _f_port(x):
    u = x.copy()
    for t in range(50):
        u = u * 0.9 + np.sin(u)
        if np.linalg.norm(u) > 10.0:
            return u, t
    return u, None


def test_time_stepping_with_an_early_exit():
    """The shape of RK4 / leapfrog drivers: `sim` returns from inside its loop once u[0]
    passes 3, `f` breaks out of its `while` once |u| > 10 (u tends to 2.85 per element, so
    with 20 elements |u| passes 10 on the way, with 4 it never does); each at the first
    step, mid-way and never, as the NumPy ports confirm."""
    m = dad.compile(STEPPING, filename="stepping.dad")
    rng = np.random.default_rng(7)
    for x0, h, where in ((3.2, 0.5, "first"), (1.0, 0.5, "mid"), (1.0, 0.001, "never")):
        x = np.concatenate([[x0], rng.uniform(0.5, 1.5, 3)])
        val, it = _sim_port(x, h)
        assert {"first": it == 0, "mid": it is not None and it > 0, "never": it is None}[where]
        assert m.sim(x, h) == pytest.approx(val, rel=1e-13)
        v = rng.normal(size=4)
        gx, gh = m.sim_grad(x, h)
        _close(gx @ v, difference(lambda z: m.sim(z, h), x, v, H), TOL, "grad x . v vs fd")
        _close(gh, (m.sim(x, h + H) - m.sim(x, h - H)) / (2 * H), TOL, "grad h vs fd")
        y, jv = m.sim_jvp(x, h, v, 0.3)
        _close(jv, gx @ v + 0.3 * gh, DOT, "jvp vs grad")
        gx2, gh2 = m.sim_ckpt(x, h)
        np.testing.assert_array_equal(gx2, gx)
        assert gh2 == gh
    for n, scale, where in ((4, 20.0, "first"), (20, 0.3, "mid"), (4, 0.3, "never")):
        x = rng.uniform(0.5, 1.0, n) * scale
        u, it = _f_port(x)
        assert {"first": it == 0, "mid": it is not None and it > 0, "never": it is None}[where]
        v, w = rng.normal(size=n), rng.normal(size=n)
        y, jv = m.f_jvp(x, v)
        _close(y, u, 1e-13, "primal vs NumPy")
        _close(jv, difference(m.f, x, v, H), TOL, "jvp vs fd")
        y2, xbar = m.f_vjp(x, w)
        lhs, rhs = float(jv @ w), float(v @ xbar)
        assert abs(lhs - rhs) <= DOT * (1 + abs(lhs)), (lhs, rhs)
