"""The derivative-rule table (`dad.ad.rules`): complete over the op catalogue, and every
differentiable builtin and operator of the language checked one rule at a time: its tangent
rule through `jvp` against central finite differences (f64 and f32), its adjoint rule through
`vjp` against the same finite differences by the dot-product identity `<J v, w> = <v, Jᵀ w>`.

How the numbers are judged (each case is one small `.dad` function `f` plus
`fn f_jvp = jvp(f);`, all float parameters differentiated, one random direction `v`):

- f64: central difference `(f(p + h v) - f(p - h v)) / 2h` with `h = 1e-5` (inputs are O(1)).
  Its error is truncation `h²/6 |f'''| ≈ 2e-11·|f'''|` plus rounding `eps |f| / h ≈
  2e-11·|f|`; the JVP itself is exact to a few ulp. The points are drawn away from kinks and
  poles (|f'''| = O(10) at most), so `|jvp - fd| <= 1e-7 (1 + |fd|)` leaves a margin of
  ~1000 while any wrong rule (a sign, a missing factor) is off by O(1).
- f32: the f32 program's tangent is compared with the central difference of the *same program
  compiled in f64* at the same (f32-representable) point, i.e. the finite difference is
  taken in f64 so it has no f32 rounding noise. What remains is the f32 rounding of the
  primal and tangent computations: a handful of ops, each with relative error
  `eps32 ≈ 6e-8`, amplified by at most O(10) by the derivative formulas (e.g. 1/sqrt(1-x²)
  at |x| <= 0.9) → `|jvp32 - fd64| <= 2e-4 (1 + |fd64|)`. A wrong rule is off by O(1).
- adjoints (f64): `<fd(v), w>` against `<v, vjp(w)>` for a random cotangent `w`, with the
  same finite difference, so the bound is the f64 one summed over the (at most n² = 25)
  output entries: `|lhs - rhs| <= 1e-7 (1 + sum |fd_i w_i|) · 25`. The cotangent is random,
  so a wrong adjoint entry (a transposed matvec, a missing factor) shows as an O(1) error.
"""
from __future__ import annotations

import numpy as np
import pytest

import dad
from dad.ad.rules import NONDIFF, RULES, STRUCTURAL
from dad.lang.ops import OPS
from generators import as_tuple, central_difference, flat, pairing, split


# ----------------------------------------------------------------------------- the rule table
def test_every_op_is_in_exactly_one_table():
    tables = {"RULES": set(RULES), "NONDIFF": set(NONDIFF), "STRUCTURAL": set(STRUCTURAL)}
    problems = []
    for op in sorted(OPS):
        homes = [name for name, names in tables.items() if op in names]
        if len(homes) != 1:
            problems.append(f"{op}: in {homes or 'no table'}")
    assert not problems, "ops without exactly one derivative classification:\n" + "\n".join(problems)


def test_tables_name_only_catalogue_ops():
    """A rule for an op that does not exist is a typo (e.g. 'math.abs' for 'math.absf')."""
    unknown = sorted((set(RULES) | set(NONDIFF) | set(STRUCTURAL)) - set(OPS) - {"math.trigamma"})
    assert not unknown, unknown


def test_trigamma_is_classified():
    """trigamma is in the catalogue (lgamma'' ) and deliberately has a rule that refuses."""
    assert "math.trigamma" in OPS and "math.trigamma" in RULES


# ----------------------------------------------------------------------------- cases
# (name, params, return type, body). `T` is replaced by f64 or f32. Domains are per parameter:
# (lo, hi) uniform, or ("pm", lo, hi) for a random sign times uniform(lo, hi) (away from 0).
N = 5
SCALAR = {"x": (-2.0, 2.0)}
POS = {"x": (0.5, 3.0)}
UNIT = {"x": (-0.9, 0.9)}
XY = {"x": (-2.0, 2.0), "y": (-2.0, 2.0)}

CASES = [
    # operators
    ("add", "x: T, y: T", "T", "return x + y;", XY),
    ("sub", "x: T, y: T", "T", "return x - y;", XY),
    ("mul", "x: T, y: T", "T", "return x * y;", XY),
    ("div", "x: T, y: T", "T", "return x / y;", {"x": (-2.0, 2.0), "y": ("pm", 0.5, 2.0)}),
    # x % y: fractional part of x/y stays in (0.2, 0.8): away from the jumps (see _sample)
    ("rem", "x: T, y: T", "T", "return x % y;", {"x": "rem", "y": (0.5, 2.0)}),
    ("neg", "x: T", "T", "return -x;", SCALAR),
    ("powop", "x: T, y: T", "T", "return x ** y;", {"x": (0.5, 2.0), "y": (-2.0, 2.0)}),
    ("powop_int", "x: T", "T", "return x ** 3;", SCALAR),
    # elementary functions
    ("sin", "x: T", "T", "return sin(x);", SCALAR),
    ("cos", "x: T", "T", "return cos(x);", SCALAR),
    ("tan", "x: T", "T", "return tan(x);", {"x": (-1.2, 1.2)}),
    ("asin", "x: T", "T", "return asin(x);", UNIT),
    ("acos", "x: T", "T", "return acos(x);", UNIT),
    ("atan", "x: T", "T", "return atan(x);", SCALAR),
    ("atan2", "x: T, y: T", "T", "return atan2(x, y);", {"x": ("pm", 0.3, 2.0), "y": ("pm", 0.3, 2.0)}),
    ("sinh", "x: T", "T", "return sinh(x);", SCALAR),
    ("cosh", "x: T", "T", "return cosh(x);", SCALAR),
    ("tanh", "x: T", "T", "return tanh(x);", SCALAR),
    ("exp", "x: T", "T", "return exp(x);", SCALAR),
    ("log", "x: T", "T", "return log(x);", POS),
    ("log1p", "x: T", "T", "return log1p(x);", {"x": (-0.5, 2.0)}),
    ("expm1", "x: T", "T", "return expm1(x);", SCALAR),
    ("sqrt", "x: T", "T", "return sqrt(x);", POS),
    ("abs", "x: T", "T", "return abs(x);", {"x": ("pm", 0.2, 2.0)}),
    ("erf", "x: T", "T", "return erf(x);", SCALAR),
    ("lgamma", "x: T", "T", "return lgamma(x);", {"x": (0.5, 5.0)}),
    ("digamma", "x: T", "T", "return digamma(x);", {"x": (0.5, 5.0)}),
    ("sigmoid", "x: T", "T", "return sigmoid(x);", SCALAR),
    ("pow", "x: T, y: T", "T", "return pow(x, y);", {"x": (0.5, 2.0), "y": (-2.0, 2.0)}),
    ("min2", "x: T, y: T", "T", "return min(x, y);", {"x": "gap", "y": (-2.0, 2.0)}),
    ("max2", "x: T, y: T", "T", "return max(x, y);", {"x": "gap", "y": (-2.0, 2.0)}),
    ("select", "x: T, y: T", "T", "return select(x > y, x * y, y * y * 3.0);", {"x": "gap", "y": (-2.0, 2.0)}),
    # casts: a round trip through the other float type, with curvature around it
    ("cast", "x: T", "T", "return T(OTHER(x) * OTHER(x)) + T(OTHER(sin(x)));", SCALAR),
    # elementwise on arrays
    ("ew_math", "x: T[n], y: T[n]", "T[n]",
     "return sin(x) * exp(y) + sqrt(abs(x) + 1.0) / (y * y + 1.0) - tanh(x - y);",
     {"x": (-2.0, 2.0), "y": (-2.0, 2.0)}),
    ("ew_pow", "x: T[n], y: T[n]", "T[n]", "return pow(abs(x) + 0.5, y) + x ** 2;",
     {"x": (-2.0, 2.0), "y": (-2.0, 2.0)}),
    # reductions
    ("sum", "x: T[n]", "T", "return sum(x * x);", {"x": (-2.0, 2.0)}),
    ("prod", "x: T[n]", "T", "return prod(x);", {"x": ("pm", 0.5, 1.5)}),
    ("dot", "x: T[n], y: T[n]", "T", "return dot(x, y);", XY),
    ("maxr", "x: T[n]", "T", "return max(x) * max(x);", {"x": "distinct"}),
    ("minr", "x: T[n]", "T", "return min(x) * min(x);", {"x": "distinct"}),
    ("logsumexp", "x: T[n]", "T", "return logsumexp(x);", {"x": (-2.0, 2.0)}),
    ("norm", "x: T[n]", "T", "return norm(x);", {"x": ("pm", 0.2, 2.0)}),
    # linear algebra
    ("matvec", "A: T[n, n], x: T[n]", "T[n]", "return matvec(A, x);", {"A": (-1.0, 1.0), "x": (-1.0, 1.0)}),
    ("matmul", "A: T[n, n], B: T[n, n]", "T[n, n]", "return matmul(A, B);", {"A": (-1.0, 1.0), "B": (-1.0, 1.0)}),
    ("transpose", "A: T[n, n]", "T[n, n]", "return transpose(A) * A;", {"A": (-1.0, 1.0)}),
    ("outer", "x: T[n], y: T[n]", "T[n, n]", "return outer(x, y * y);", XY),
    # slices and rows
    ("slices", "x: T[n]", "T", "return sum(x[1..n] * x[0..n - 1]);", {"x": (-2.0, 2.0)}),
    ("rows", "A: T[n, n], x: T[n]", "T", "return dot(A[1], x) * sum(A[n - 1]);", {"A": (-1.0, 1.0), "x": (-1.0, 1.0)}),
]
NAMES = [c[0] for c in CASES]


def source(dtype: str) -> str:
    # The cast case goes through f64 in both programs: in the f32 one that is a real round
    # trip (extf/truncf), in the f64 one a no-op, so the f64 program is a smooth reference
    # for the f32 one (an f64 -> f32 -> f64 trip would make f64 finite differences noise).
    other = "f64"
    out = []
    for name, params, ret, body, _ in CASES:
        text = (f"fn t_{name}({params}) -> {ret} {{ {body} }}\nfn t_{name}_jvp = jvp(t_{name});\n"
                f"fn t_{name}_vjp = vjp(t_{name});\n")
        text = text.replace("OTHER(", f"{other}(").replace("T(", f"{dtype}(")
        out.append(text.replace("T[", f"{dtype}[").replace(": T", f": {dtype}").replace("-> T", f"-> {dtype}"))
    return "\n".join(out)


_modules: dict[str, object] = {}


def module(dtype: str):
    if dtype not in _modules:
        _modules[dtype] = dad.compile(source(dtype), filename=f"ad_rules_{dtype}.dad")
    return _modules[dtype]


def _sample(rng, spec, shape, all_args):
    if spec == "gap":  # at least 0.05 away from y (drawn first: see `point`)
        y = all_args["y"]
        while True:
            x = rng.uniform(-2.0, 2.0, shape)
            if np.all(np.abs(x - y) > 0.05):
                return x
    if spec == "rem":
        y = all_args["y"]
        return (rng.integers(-3, 4, shape) + rng.uniform(0.2, 0.8, shape)) * y
    if spec == "distinct":  # a unique extreme element, well separated
        x = rng.permutation(np.linspace(-2.0, 2.0, int(np.prod(shape)))).reshape(shape)
        return x + rng.uniform(-0.05, 0.05, shape)
    if spec[0] == "pm":
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(spec[1], spec[2], shape)
    return rng.uniform(spec[0], spec[1], shape)


def point(case, seed):
    """Arguments (f64 NumPy arrays or floats) and a direction, per parameter of the case."""
    name, params, _, _, domains = case
    rng = np.random.default_rng(seed)
    names = [p.split(":")[0].strip() for p in _split_params(params)]
    shapes = {}
    for p in _split_params(params):
        pname, ty = (s.strip() for s in p.split(":"))
        shapes[pname] = () if "[" not in ty else tuple(N for _ in ty.split("[")[1].split(","))
    args: dict[str, np.ndarray] = {}
    for pname in sorted(names, key=lambda n: domains[n] in ("gap", "rem")):  # y before x
        args[pname] = np.asarray(_sample(rng, domains[pname], shapes[pname], args), dtype=float)
    dirs = {pname: rng.standard_normal(shapes[pname]) for pname in names}
    return [args[n] for n in names], [dirs[n] for n in names]


def _split_params(params: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in params:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return out + [cur]


def _as(dtype, vals):
    return [np.asarray(v, dtype=dtype) if np.ndim(v) else dtype(v) for v in vals]


def _args(vals):
    """0-d arrays as Python floats: scalar parameters take scalars, not 0-d arrays."""
    return [float(v) if np.ndim(v) == 0 else v for v in vals]


SEEDS = [0, 1, 2]


def assert_primal(prim, f, args):
    """A derived function's primal results are the function's. Builtin reductions may sum
    in another order in the two compiled functions (LANGUAGE.md), hence a few ulp, not
    equality."""
    for p, q in zip(prim, flat(f(*_args(args)))):
        np.testing.assert_allclose(p, q, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES, ids=NAMES)
def test_jvp_f64_matches_central_difference(case, seed):
    mod = module("f64")
    f, fjvp = getattr(mod, "t_" + case[0]), getattr(mod, "t_" + case[0] + "_jvp")
    args, dirs = point(case, seed)
    prim, tan = split(fjvp(*_args(args), *_args(dirs)))
    assert_primal(prim, f, args)
    fd = central_difference(f, args, dirs, 1e-5)
    for t, d in zip(tan, fd):
        err = np.max(np.abs(t - d) / (1.0 + np.abs(d)))
        assert err <= 1e-7, f"{case[0]}: jvp {t} vs fd {d} (rel err {err:.2e})"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES, ids=NAMES)
def test_jvp_f32_matches_f64_central_difference(case, seed):
    mod32, mod64 = module("f32"), module("f64")
    fjvp = getattr(mod32, "t_" + case[0] + "_jvp")
    args, dirs = point(case, seed)
    args = [np.asarray(np.float32(a) if np.ndim(a) == 0 else a.astype(np.float32), dtype=float)
            for a in args]  # an f32-representable point, shared by both programs
    dirs = [np.asarray(d, dtype=np.float32).astype(float) for d in dirs]
    r = fjvp(*_as(np.float32, args), *_as(np.float32, dirs))
    for v in as_tuple(r):
        assert np.asarray(v).dtype == np.float32, f"{case[0]}: f32 jvp returned {np.asarray(v).dtype}"
    _, tan = split(r)
    fd = central_difference(getattr(mod64, "t_" + case[0]), args, dirs, 1e-5)
    for t, d in zip(tan, fd):
        err = np.max(np.abs(t - d) / (1.0 + np.abs(d)))
        assert err <= 2e-4, f"{case[0]}: f32 jvp {t} vs f64 fd {d} (rel err {err:.2e})"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES, ids=NAMES)
def test_vjp_f64_matches_central_difference(case, seed):
    """The adjoint rule: <fd(v), w> == <v, vjp(w)>, and vjp's primal is the function's."""
    mod = module("f64")
    f, fvjp = getattr(mod, "t_" + case[0]), getattr(mod, "t_" + case[0] + "_vjp")
    args, dirs = point(case, seed)
    fd = central_difference(f, args, dirs, 1e-5)
    rng = np.random.default_rng(1000 + seed)
    cots = [rng.standard_normal(np.shape(d)) for d in fd]
    r = flat(fvjp(*_args(args), *_args(cots)))
    prim, bars = r[:len(fd)], r[len(fd):]
    assert_primal(prim, f, args)
    assert len(bars) == len(dirs), f"{case[0]}: vjp gave {len(bars)} adjoints for {len(dirs)} params"
    left = [pairing(d, w) for d, w in zip(fd, cots)]
    lhs, scale = sum(x for x, _ in left), 1.0 + sum(a for _, a in left)
    rhs = sum(pairing(v, b)[0] for v, b in zip(dirs, bars))
    assert abs(lhs - rhs) <= 25 * 1e-7 * scale, f"{case[0]}: <fd v, w> = {lhs} vs <v, vjp w> = {rhs}"


def test_f32_central_difference_with_large_step():
    """A direct f32 finite difference too (no f64 program): h = 1e-2 balances truncation
    h²/6·|f'''| ≈ 2e-5 against rounding eps32·|f|/h ≈ 6e-6; tolerance 1e-3 relative."""
    mod = module("f32")
    for name in ("sin", "exp", "tanh", "log", "mul", "matvec", "norm"):
        case = CASES[NAMES.index(name)]
        args, dirs = point(case, 7)
        args, dirs = _as(np.float32, args), _as(np.float32, dirs)
        _, tan = split(getattr(mod, "t_" + name + "_jvp")(*_args(args), *_args(dirs)))
        fd = central_difference(getattr(mod, "t_" + name), args, dirs, np.float32(1e-2))
        for t, d in zip(tan, fd):
            assert np.max(np.abs(t - d) / (1.0 + np.abs(d))) <= 1e-3, name


def test_cast_tangents_are_rounded_like_values():
    """f32(x) of an f64 x: the tangent goes through the same cast (d f32(x) = f32(dx))."""
    m = dad.compile("fn c(x: f64) -> f32 { return f32(x); }\nfn c_jvp = jvp(c);\n"
                    "fn w(x: f32) -> f64 { return f64(x) * 3.0; }\nfn w_jvp = jvp(w);\n")
    y, ydot = m.c_jvp(0.1, 0.7)
    assert ydot == np.float32(0.7) and isinstance(ydot, np.float32)
    y, ydot = m.w_jvp(np.float32(0.25), np.float32(0.1))
    assert ydot == float(np.float32(0.1)) * 3.0
