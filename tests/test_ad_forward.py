"""Forward mode end to end: `dad.jvp` / `dad.jacobian` on every example, vector mode against
one tangent per sweep, nested JVPs, control flow, calls, f32, and random programs.

Tolerances (f64 unless said otherwise):
- The dot/JVP identity `J(x) v == jvp(x, v)` compares two computations of the same linear
  map by the same tangent code (columns by unit seeds vs one seed v); they differ only by the
  order of the final sums, so `|J v - jvp| <= 1e-11 (|J| |v| + |jvp|)` (~5e4 ulp of the
  magnitudes summed) catches any wrong column while allowing reassociated reductions.
- Jacobians against central differences with `h = 1e-6`: truncation `h²/6 |f'''|` and
  rounding `eps |f| / h ≈ 2e-10 |f|`; the inputs are O(1) and away from kinks, so
  `|J - fd| <= 1e-6 (1 + max |J|)` — a wrong rule is off by O(1) relative.
"""
from __future__ import annotations

import math
import pathlib
import re
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dad
import example_inputs
from dad.runtime.transforms import derive_kernel
from generators import central_difference, directions, flat, split

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

_compiled: dict[str, object] = {}


def example(name: str):
    if name not in _compiled:
        _compiled[name] = dad.compile_file(str(EXAMPLES / f"{name}.dad"))
    return _compiled[name]


# ----------------------------------------------------------------------------- the examples
_u, _away = example_inputs._u, example_inputs._away
# f32_roundtrip has its own analytic test here (see NOT_APPLICABLE)
INPUTS = {k: v for k, v in example_inputs.INPUTS.items() if k != "f32_roundtrip"}

# Every other function of the examples, and why the forward-mode checks do not apply.
NOT_APPLICABLE = {
    **example_inputs.NO_FLOAT_RESULT,
    # ADBench problems: checked on ADBench's own inputs by tests/test_adbench.py (objectives
    # against NumPy, derivatives against finite differences and between modes)
    "gmm_objective": "tests/test_adbench.py", "ba_objective": "tests/test_adbench.py",
    "ba_jacobian": "tests/test_adbench.py", "lstm_objective": "tests/test_adbench.py",
    "obs_residual": "tests/test_adbench.py", "res": "tests/test_adbench.py",
    "weight_residual": "tests/test_adbench.py",
    # custom derivative rules: tests/test_higher_order.py checks them analytically
    "lse": "tests/test_higher_order.py", "lse_naive": "tests/test_higher_order.py",
    "lse_vjp": "tests/test_higher_order.py", "xent": "tests/test_higher_order.py",
    "sqrt_newton": "tests/test_higher_order.py", "sqrt_newton_jvp": "tests/test_higher_order.py",
    "hypot_newton": "tests/test_higher_order.py",
    "shape_of": "i64 results only",
    "kepler": "returns (f64, i64): jvp needs float results only",
    "kepler_many": "returns (f64[n], i64): jvp needs float results only",
    "f32_roundtrip": "checked separately (test_jvp_f32_roundtrip): its second result "
                     "f64(f32(x)) - x is a rounding error, so finite differences are noise",
}
# Single-result functions get Jacobians; tuple-result ones are checked by jvp vs FD only.
F32 = {"mean_f32", "poly_f32"}


_definitions = example_inputs.definitions
_fn = example_inputs.compile_function


def _float_params(k) -> list[tuple[int, str]]:
    sig = k.signature
    params = re.findall(r"(\w+): (f64|f32|i64|bool)", sig.split("->")[0])
    return [(i, p) for i, (p, t) in enumerate(params) if t in ("f64", "f32")]


def _zeros_like(a):
    return type(a)(0) if np.ndim(a) == 0 and isinstance(a, np.floating) else (0.0 if np.ndim(a) == 0 else np.zeros_like(a))


def test_every_example_function_is_listed():
    """No function of examples/*.dad is skipped silently."""
    found = set()
    for p in EXAMPLES.glob("*.dad"):
        found |= set(re.findall(r"^fn\s+([A-Za-z_]\w*)\s*\(", p.read_text(), flags=re.M))
    missing = found - set(INPUTS) - set(NOT_APPLICABLE)
    assert not missing, f"example functions with no forward-mode check: {sorted(missing)}"
    assert not (set(INPUTS) & set(NOT_APPLICABLE))


def _jac_cases():
    out = []
    for name, (ex, make) in INPUTS.items():
        src = (EXAMPLES / f"{ex}.dad").read_text()
        m = re.search(rf"^fn\s+{name}\s*\(([^)]*)\)\s*->\s*(.*?)\s*\{{", src, flags=re.M)
        if m.group(2).startswith("("):
            continue
        params = [tuple(s.strip() for s in part.split(":"))
                  for part in re.split(r",\s*(?=\w+\s*:)", m.group(1))]
        floats = [(i, p, ty) for i, (p, ty) in enumerate(params) if ty.startswith(("f64", "f32"))]
        # One Jacobian per function (each is a compile of its own, ~0.1-1 s): with respect
        # to the first float array parameter, else the first float scalar. Every parameter
        # is still differentiated by test_jvp_all_parameters_matches_central_difference.
        i, p, _ = next((f for f in floats if "[" in f[2]), floats[0])
        out.append(pytest.param(name, i, p, id=f"{name}-{p}"))
    return out


@pytest.mark.parametrize("name,i,p", _jac_cases())
def test_jacobian_times_v_equals_jvp(name, i, p):
    """`jacobian(f, wrt=p)(x) @ v == jvp(f)(x, v)` with v zero on every other parameter
    (the default-wrt jvp takes one tangent per float parameter)."""
    f = _fn(name)
    args = INPUTS[name][1](np.random.default_rng(zlib.crc32(name.encode())))
    J = np.asarray(dad.jacobian(f, wrt=p)(*args), dtype=float)
    fp = _float_params(f)
    dirs = directions(args, np.random.default_rng(1), which={i})
    v = np.asarray(dirs[i], dtype=float)
    out = np.asarray(f(*args), dtype=float)
    assert J.shape == out.shape + v.shape
    Jv = np.tensordot(J, v, axes=v.ndim) if v.ndim else J * v
    scale = np.tensordot(np.abs(J), np.abs(v), axes=v.ndim) if v.ndim else np.abs(J * v)
    tangents = [dirs[j] if dirs[j] is not None else _zeros_like(args[j]) for j, _ in fp]
    prim, tan = split(dad.jvp(f)(*args, *tangents))
    tol = 1e-11 if name not in F32 else 1e-5  # f32: both computed in f32 (eps 6e-8) then summed
    # (+1e-15: a derivative that is 0 up to rounding, e.g. of a converged Newton iterate
    # with respect to its starting point, is ~1e-33 in one computation and 0 in the other)
    assert np.all(np.abs(Jv - tan[0]) <= tol * (scale + np.abs(tan[0])) + 1e-15), \
        f"{name} wrt {p}: J v = {Jv}, jvp = {tan[0]}"


@pytest.mark.parametrize("name,i,p", _jac_cases())
def test_jacobian_matches_central_difference(name, i, p):
    f = _fn(name)
    args = INPUTS[name][1](np.random.default_rng(zlib.crc32(name.encode())))
    J = np.asarray(dad.jacobian(f, wrt=p)(*args), dtype=float)
    a = args[i]
    out_shape = np.asarray(f(*args)).shape
    # f32 functions (linear/quadratic in x): central differences are exact up to rounding,
    # eps32 |f| / h with h = 1e-2 -> ~1e-5; f64: see the module docstring.
    h, tol = (1e-2, 1e-3) if name in F32 else (1e-6, 1e-6)
    cols = []
    for k in range(max(int(np.prod(np.shape(a))), 1)):
        e = np.zeros(np.shape(a))
        e.flat[k] = 1.0
        dirs = [None] * len(args)
        dirs[i] = float(e) if np.ndim(a) == 0 else e.astype(np.asarray(a).dtype)
        if np.ndim(a) == 0 and isinstance(a, np.floating):
            dirs[i] = type(a)(1.0)
        cols.append(central_difference(f, args, dirs, h)[0])
    fd = np.stack(cols, axis=-1).reshape(out_shape + np.shape(a))
    err = np.max(np.abs(J - fd)) if J.size else 0.0
    assert err <= tol * (1.0 + np.max(np.abs(J))), f"{name} wrt {p}: max |J - fd| = {err:.2e}\nJ={J}\nfd={fd}"


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_jvp_all_parameters_matches_central_difference(name):
    """jvp with the default wrt (every float parameter), one random direction for all of
    them at once, against central differences; tuple results included."""
    f = _fn(name)
    args = INPUTS[name][1](np.random.default_rng(zlib.crc32(name.encode())))
    dirs = directions(args, np.random.default_rng(2))
    prim, tan = split(dad.jvp(f)(*args, *[d for d in dirs if d is not None]))
    for p, q in zip(prim, flat(f(*args))):
        np.testing.assert_allclose(p, q, rtol=1e-13, atol=1e-15)
    h, tol = (1e-2, 1e-3) if name in F32 else (1e-6, 1e-6)  # see test_jacobian_matches_...
    fd = central_difference(f, args, dirs, h)
    for t, d in zip(tan, fd):
        assert np.max(np.abs(t - d)) <= tol * (1 + np.max(np.abs(t))), (name, t, d)


def test_jvp_f32_roundtrip():
    f = dad.compile(_definitions("stats")["f32_roundtrip"]).f32_roundtrip
    g = dad.jvp(f)(0.1, 0.7)
    assert isinstance(g[2], np.float32) and g[2] == np.float32(0.7)
    assert g[3] == float(np.float32(0.7)) - 0.7  # d(f64(f32(x)) - x) = f64(f32(dx)) - dx


# ----------------------------------------------------------------------------- vector mode
WIDTH_CASES = ["rosen", "matvec_loops", "accelerations", "newton2", "unit", "huber_total",
               "poly_f32", "batch_trace"]


@pytest.mark.parametrize("name", WIDTH_CASES)
def test_vector_mode_equals_width_one_exactly(name):
    """k tangents per sweep (default, k = 8) vs one per sweep: the same operations per
    direction, so the Jacobians agree bit for bit. Sizes that k does not divide (6, 12, 18:
    a partial last sweep) and fewer elements than k (2, 5: one partial sweep) are included.
    For two cases, width 4 too."""
    f = _fn(name)
    args = INPUTS[name][1](np.random.default_rng(5))
    p = next(p for _, p in _float_params(f) if re.search(rf"\b{p}: f(64|32)\[", f.signature))
    # mode="forward": dad.jacobian may pick reverse sweeps when the output is smaller
    Jk = derive_kernel(f, "jacobian", wrt=p, mode="forward")(*args)
    J1 = derive_kernel(f, "jacobian", wrt=p, width=1, mode="forward")(*args)
    np.testing.assert_array_equal(Jk, J1)
    if name in ("rosen", "batch_trace"):  # 4 divides neither 6 nor 18
        J4 = derive_kernel(f, "jacobian", wrt=p, width=4, mode="forward")(*args)
        np.testing.assert_array_equal(J4, J1)


def test_jacobian_scalar_wrt_explicit_width():
    m = dad.compile("fn f(t: f64) -> f64[2] { var y = zeros(2); y[0] = sin(t); y[1] = t * t; "
                    "return y; }")
    J = derive_kernel(m.f, "jacobian", wrt="t", width=2, mode="forward")(0.5)
    np.testing.assert_allclose(J, [math.cos(0.5), 1.0])


# ----------------------------------------------------------------------------- programs
SRC = r"""
fn es(x: f64) -> f64 { return exp(sin(x)); }
fn es_d = jvp(es, wrt=x);
fn es_dd = jvp(jvp(es, wrt=x), wrt=x);

fn two(x: f64, y: f64[n], c: f64) -> f64 {
    var s = 0.0;
    for i in 0..n { s += sin(x * y[i]) * c; }
    return s;
}
fn two_xy = jvp(two, wrt=[x, y]);
fn two_all = jvp(two);

fn inner(a: f64, b: f64) -> f64 { return a * exp(b); }
fn outer2(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n { s += inner(x[i], 0.5 * x[i]) + inner(1.0, x[i]); }
    return s + inner(s, 0.1);
}
fn outer2_d = jvp(outer2);

fn newton_cbrt(a: f64) -> f64 {
    var x = 1.0 + a / 3.0;
    while abs(x * x * x - a) > 1e-14 * a {
        x -= (x * x * x - a) / (3.0 * x * x);
    }
    return x;
}
fn newton_cbrt_d = jvp(newton_cbrt);

fn branches(x: f64) -> f64 {
    if x < -1.0 {
        return x * x;
    } else if x < 0.5 {
        let y = sin(x);
        return y * 3.0;
    } else if x < 2.0 {
        return exp(x);
    }
    return log(x);
}
fn branches_d = jvp(branches);

fn loops(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n {
        if x[i] < 0.0 { continue; }
        if s > 4.0 { break; }
        s += x[i] * x[i];
    }
    var k = 0;
    var t = 1.0;
    while true {
        k += 1;
        if k % 2 == 0 { continue; }
        t *= cos(s / float(k));
        if k > 6 { break; }
    }
    return s + t;
}
fn loops_d = jvp(loops);

fn first_big(x: f64[n]) -> f64 {
    for i in 0..n {
        if x[i] > 1.0 { return x[i] * x[i] * 2.0; }
    }
    return sum(x);
}
fn first_big_d = jvp(first_big);

fn updates(x: f64[n]) -> f64[n] {
    var a = zeros(n);
    for i in 0..n {
        a[i] += x[i] * x[i];
        a[(i + 1) % n] += sin(x[i]);
        a[i] *= 2.0;
    }
    a[0] -= a[n - 1] * x[0];
    return a;
}
fn updates_d = jvp(updates);

fn pair(x: f64, y: f64[n]) -> (f64, f64[n], f64) {
    return (x * sum(y), y * x, exp(x));
}
fn pair_d = jvp(pair);

fn single(x: f32[n], a: f32) -> f32 {
    var s: f32 = 0.0;
    for i in 0..n { s += a * sin(x[i]) + x[i] * x[i]; }
    return s;
}
fn single_d = jvp(single);
"""

_prog = {}


def prog():
    if "m" not in _prog:
        _prog["m"] = dad.compile(SRC, filename="forward_programs.dad")
    return _prog["m"]


@pytest.mark.parametrize("x", [-1.3, 0.0, 0.4, 2.1])
def test_nested_jvp_second_derivative_analytic(x):
    """f = exp(sin x): f' = cos x f, f'' = (cos² x - sin x) f."""
    m = prog()
    f = math.exp(math.sin(x))
    y, yd = m.es_d(x, 1.0)
    assert y == f and yd == pytest.approx(math.cos(x) * f, rel=1e-15)
    # jvp(jvp(es)) (x, x_dot, x_dot_) -> (y, y_dot, y_dot_, y_dot_dot) with y_dot_dot =
    # f''(x) x_dot x_dot_ (x_dot itself is not differentiated)
    y, y1, y1b, y2 = m.es_dd(x, 0.7, 1.3)
    assert y == f
    assert y1 == pytest.approx(math.cos(x) * f * 0.7, rel=1e-15)
    assert y1b == pytest.approx(math.cos(x) * f * 1.3, rel=1e-15)
    assert y2 == pytest.approx((math.cos(x) ** 2 - math.sin(x)) * f * 0.7 * 1.3, rel=1e-13, abs=1e-15)


def test_nested_jvp_from_python():
    m = prog()
    g = dad.jvp(m.es_d, wrt="x")
    y, yd, ydx, ydd = g(0.3, 1.0, 1.0)
    f = math.exp(math.sin(0.3))
    assert ydd == pytest.approx((math.cos(0.3) ** 2 - math.sin(0.3)) * f, rel=1e-13)


def test_jvp_with_several_wrt():
    m = prog()
    rng = np.random.default_rng(0)
    x, y, c = 0.7, rng.normal(size=5), 1.3
    xd, yd = 0.4, rng.normal(size=5)
    assert m.two_xy.signature == "(x: f64, y: f64[n], c: f64, x_dot: f64, y_dot: f64[n]) -> (f64, f64)"
    s, sd = m.two_xy(x, y, c, xd, yd)
    expect = float(np.sum(np.cos(x * y) * (xd * y + x * yd) * c))
    assert sd == pytest.approx(expect, rel=1e-13)
    # default wrt: every float parameter; c_dot = 0 gives the same, c_dot alone is f / c
    assert m.two_all(x, y, c, xd, yd, 0.0)[1] == sd
    assert m.two_all(x, y, c, 0.0, np.zeros(5), 1.0)[1] == pytest.approx(s / c, rel=1e-14)
    # from Python, wrt as a list
    assert dad.jvp(m.two, wrt=["x", "y"])(x, y, c, xd, yd)[1] == pytest.approx(sd, rel=1e-14)


def test_jvp_through_calls_derives_callee_once():
    m = prog()
    rng = np.random.default_rng(1)
    x, v = rng.normal(size=4), rng.normal(size=4)
    _, t = split(m.outer2_d(x, v))
    fd = central_difference(m.outer2, [x], [v], 1e-6)
    assert abs(t[0] - fd[0]) <= 1e-6 * (1 + abs(fd[0]))
    ir = m.ir
    # `inner` is called with (active, active), (constant, active) and (active, constant)
    # arguments: one tangent function per combination, each defined exactly once.
    defs = re.findall(r"func\.func @(inner\.jvp[\w.]*)\(", ir)
    assert defs and len(defs) == len(set(defs)), defs
    assert len(set(defs)) <= 3


@pytest.mark.parametrize("a", [0.3, 2.0, 27.0, 100.0])
def test_jvp_through_newton_while_loop(a):
    """Data-dependent trip count: the tangent of the converged iterate is d cbrt(a) / da."""
    m = prog()
    x, xd = m.newton_cbrt_d(a, 1.0)
    assert x == pytest.approx(a ** (1 / 3), rel=1e-14)
    assert xd == pytest.approx(a ** (-2 / 3) / 3, rel=1e-12)


@pytest.mark.parametrize("x,expect", [
    (-2.0, lambda x: 2 * x), (-0.5, lambda x: 3 * math.cos(x)), (0.3, lambda x: 3 * math.cos(x)),
    (1.0, math.exp), (3.0, lambda x: 1 / x)])
def test_jvp_through_if_else_if(x, expect):
    m = prog()
    assert m.branches_d(x, 1.0)[1] == pytest.approx(expect(x), rel=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_jvp_break_continue_early_return_updates(seed):
    m = prog()
    rng = np.random.default_rng(seed)
    for name, x in (("loops", rng.normal(size=7)), ("first_big", rng.normal(size=6)),
                    ("updates", rng.normal(size=5))):
        v = rng.normal(size=x.shape)
        _, t = split(getattr(m, name + "_d")(x, v))
        fd = central_difference(getattr(m, name), [x], [v], 1e-6)
        assert np.max(np.abs(t[0] - fd[0])) <= 1e-6 * (1 + np.max(np.abs(fd[0]))), (name, t, fd)


def test_jvp_tuple_returns():
    m = prog()
    x, y = 0.8, np.array([1.0, -2.0, 0.5])
    xd, yd = 0.3, np.array([0.1, 0.2, -0.4])
    r = m.pair_d(x, y, xd, yd)
    assert len(r) == 6
    a, b, c, ad, bd, cd = r
    assert ad == pytest.approx(xd * y.sum() + x * yd.sum(), rel=1e-15)
    np.testing.assert_allclose(bd, yd * x + y * xd, rtol=1e-15)
    assert cd == pytest.approx(math.exp(x) * xd, rel=1e-15)


def test_jvp_f32_function():
    m = prog()
    rng = np.random.default_rng(3)
    x, v = rng.normal(size=6).astype(np.float32), rng.normal(size=6).astype(np.float32)
    a, ad = np.float32(1.5), np.float32(-0.5)
    s, sd = m.single_d(x, a, v, ad)
    assert isinstance(sd, np.float32)
    x64, v64 = x.astype(float), v.astype(float)
    exact = float(np.sum(float(a) * np.cos(x64) * v64 + float(ad) * np.sin(x64) + 2 * x64 * v64))
    # f32 accumulation over 6 terms of O(1): |error| <= ~20 eps32 * sum|terms|
    scale = float(np.sum(np.abs(float(a) * np.cos(x64) * v64) + np.abs(np.sin(x64)) + np.abs(2 * x64 * v64)))
    assert abs(float(sd) - exact) <= 1e-5 * scale


# ----------------------------------------------------------------------------- random programs
# Small programs of one scalar x and one array y: arithmetic, math on safe domains (the
# arguments are squashed first: exp(tanh(.)), log(1 + e*e), sqrt(1 + e*e)), a `for` loop with
# carried values, `if` branches on a comparison (the point is moved if it sits within 1e-3 of
# the branch boundary, where FD would straddle it), and a local array with element updates.
@st.composite
def expr(draw, depth=0, names=("x", "c")):
    leaves = list(names) + ["0.5", "1.3", "y[i]"]
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(leaves))
    kind = draw(st.sampled_from(["+", "-", "*", "/", "sin", "cos", "exp", "log", "sqrt", "atan",
                                 "tanh", "sigmoid", "max", "pow"]))
    a = draw(expr(depth + 1, names))
    if kind in "+-*":
        return f"({a} {kind} {draw(expr(depth + 1, names))})"
    if kind == "/":
        b = draw(expr(depth + 1, names))
        return f"({a} / (1.5 + {b} * {b}))"
    if kind == "exp":
        return f"exp(tanh({a}))"
    if kind == "log":
        return f"log(1.0 + {a} * {a})"
    if kind == "sqrt":
        return f"sqrt(1.0 + {a} * {a})"
    if kind == "max":  # ties have measure zero; FD across one is excluded below
        return f"max({a}, {draw(expr(depth + 1, names))})"
    if kind == "pow":
        return f"pow(1.5 + sin({a}), {draw(expr(depth + 1, names))} * 0.5)"
    return f"{kind}({a})"


@st.composite
def program(draw):
    body = ["    var c = x * 0.5;", "    var acc = zeros(n);"]
    body.append("    for i in 0..n {")
    body.append(f"        c = tanh({draw(expr())});")
    if draw(st.booleans()):
        body.append(f"        if {draw(expr())} > 0.2 {{ c = c * {draw(expr())}; }}"
                    f" else {{ c = c - {draw(expr())}; }}")
    body.append(f"        acc[i] += {draw(expr())};")
    if draw(st.booleans()):
        body.append(f"        acc[(i + 1) % n] = acc[(i + 1) % n] * 0.5 + c;")
    body.append("    }")
    body.append(f"    return {draw(expr(names=('x', 'c')).map(lambda e: e.replace('y[i]', 'y[0]')))} + sum(acc * y);")
    return "fn f(x: f64, y: f64[n]) -> f64 {\n" + "\n".join(body) + "\n}\nfn f_d = jvp(f);\n"


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(program(), st.integers(0, 2**31 - 1))
def test_random_programs_jvp_matches_central_difference(src, seed):
    m = dad.compile(src, filename="random.dad")
    rng = np.random.default_rng(seed)
    x, y = float(rng.uniform(-1.5, 1.5)), rng.uniform(-1.5, 1.5, 4)
    xd, yd = float(rng.normal()), rng.normal(size=4)
    (v,), (t,) = split(m.f_d(x, y, xd, yd))
    assert v == pytest.approx(m.f(x, y), rel=1e-13, abs=1e-14)  # sum() may be reordered
    # Kinks (max, if) make FD meaningless when a step straddles one: detect it by comparing
    # FD at two step sizes; when they disagree the point is at a kink and is skipped.
    f1 = central_difference(m.f, [x, y], [xd, yd], 1e-6)[0]
    f2 = central_difference(m.f, [x, y], [xd, yd], 2e-6)[0]
    if not np.isfinite(f1) or abs(f1 - f2) > 1e-5 * (1 + abs(f1)):
        return
    assert abs(t - f1) <= 1e-6 * (1 + abs(f1)), f"\n{src}\nx={x} y={y}: jvp {t}, fd {f1}"
