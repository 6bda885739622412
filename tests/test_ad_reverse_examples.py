"""Reverse mode on every function of `examples/*.dad`: the dot-product test between modes,
and `dad.grad` against central differences.

1. Dot-product test: for random tangents v (one per float parameter) and cotangents w (one
   per output), `<jvp(f)(x; v), w> == <v, vjp(f)(x; w)>`. Both sides are the same bilinear
   form J(x)[v, w] computed by independent code (forward tangents vs reverse adjoints, in
   different orders), so they agree up to rounding of the sum of the magnitudes of its
   terms: `|lhs - rhs| <= tol * (sum |jvp_i w_i| + sum |v_j vjp_j|)` with tol = 1e-11 in f64
   (~5e4 ulp: generous for a dozen-term sum, while a wrong adjoint is off by O(1) relative)
   and 1e-4 for f32 functions (eps32 = 6e-8, and f32 rounding of the tangents and adjoints
   themselves, not only of the final sum).
2. `dad.grad` of every function with float inputs and one float scalar output against
   central differences, element by element. `h = 1e-6`: truncation `h^2/6 |f'''|` ~ 1e-13
   and rounding `eps |f| / h` ~ 2e-10 |f| for O(1) inputs away from kinks, so
   `|g - fd| <= 1e-6 (1 + max |g|)`; a wrong rule is off by O(1) relative. f32 (linear in x):
   h = 1e-2, tol 1e-3 (eps32 |f| / h ~ 1e-5).

Each function is compiled from its own text plus its callees (small modules keep every
derived-kernel compile to a few hundredths of a second).
"""
from __future__ import annotations

import pathlib
import re
import zlib

import numpy as np
import pytest

import dad

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
# The example files covered here. examples/ba.dad, gmm.dad and lstm.dad appeared while this
# file was written and are not covered yet.
EXAMPLE_FILES = ["rosenbrock", "matvec", "newton", "piecewise", "nbody", "stats"]


def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def _away(rng, lo, hi, shape, avoid, gap):
    """Uniform on [lo, hi] with every element at least `gap` away from each value of `avoid`."""
    x = rng.uniform(lo, hi, shape)
    for a in avoid:
        close = np.abs(x - a) < gap
        x[close] = a + gap * np.sign(x[close] - a + 1e-300) * 2
    return x


# name -> (example, inputs(rng)). Inputs are O(1) and away from the kinks of piecewise
# functions (|r| = delta, 0 for abs, ties of max/min, ...).
INPUTS = {
    # rosenbrock
    "rosen": ("rosenbrock", lambda r: [r.normal(size=6)]),
    "rosen_sliced": ("rosenbrock", lambda r: [r.normal(size=6)]),
    "rosen_gradient_by_hand": ("rosenbrock", lambda r: [r.normal(size=6)]),
    "dot_builtin": ("rosenbrock", lambda r: [r.normal(size=5), r.normal(size=5)]),
    "dot_loop": ("rosenbrock", lambda r: [r.normal(size=5), r.normal(size=5)]),
    # matvec
    "matvec_loops": ("matvec", lambda r: [r.normal(size=(3, 4)), r.normal(size=4)]),
    "matvec_rows": ("matvec", lambda r: [r.normal(size=(3, 4)), r.normal(size=4)]),
    "matvec_builtin": ("matvec", lambda r: [r.normal(size=(3, 4)), r.normal(size=4)]),
    "matmul_loops": ("matvec", lambda r: [r.normal(size=(3, 2)), r.normal(size=(2, 4))]),
    "matmul_builtin": ("matvec", lambda r: [r.normal(size=(3, 2)), r.normal(size=(2, 4))]),
    "gram": ("matvec", lambda r: [r.normal(size=(3, 4))]),
    "transpose_of": ("matvec", lambda r: [r.normal(size=(3, 4))]),
    "rank1_update": ("matvec", lambda r: [r.normal(size=(3, 4)), r.normal(size=3),
                                          r.normal(size=4), _u(r, 0.5, 2.0)]),
    "quad_form": ("matvec", lambda r: [r.normal(size=(4, 4)), r.normal(size=4)]),
    "trace": ("matvec", lambda r: [r.normal(size=(4, 4))]),
    "batch_trace": ("matvec", lambda r: [r.normal(size=(2, 3, 3))]),
    "row_norms": ("matvec", lambda r: [r.normal(size=(3, 4)) + 2.0]),
    "window_sums": ("matvec", lambda r: [r.normal(size=6), 2]),
    "cross": ("matvec", lambda r: [r.normal(size=3), r.normal(size=3)]),
    "rotate2": ("matvec", lambda r: [_u(r, -3, 3), r.normal(size=2)]),
    # nbody (softening 0.1: smooth)
    "step": ("nbody", lambda r: [r.uniform(-1, 1, (4, 3)), r.normal(size=(4, 3)) * 0.3,
                                 r.uniform(0.5, 1.5, 4), 0.01, 0.1]),
    "accelerations": ("nbody", lambda r: [r.uniform(-1, 1, (4, 3)), r.uniform(0.5, 1.5, 4), 0.1]),
    "kinetic": ("nbody", lambda r: [r.normal(size=(4, 3)), r.uniform(0.5, 1.5, 4)]),
    "potential": ("nbody", lambda r: [r.uniform(-1, 1, (4, 3)), r.uniform(0.5, 1.5, 4), 0.1]),
    "energy": ("nbody", lambda r: [r.uniform(-1, 1, (4, 3)), r.normal(size=(4, 3)) * 0.3,
                                   r.uniform(0.5, 1.5, 4), 0.1]),
    "simulate": ("nbody", lambda r: [r.uniform(-1, 1, (3, 3)), r.normal(size=(3, 3)) * 0.3,
                                     r.uniform(0.5, 1.5, 3), 0.01, 0.1, 3]),
    "centre_of_mass": ("nbody", lambda r: [r.uniform(-1, 1, (4, 3)), r.uniform(0.5, 1.5, 4)]),
    # newton: converged iterations (data-dependent trip counts)
    "newton_sqrt": ("newton", lambda r: [_u(r, 0.5, 4.0), 1e-13]),
    "cubic_root": ("newton", lambda r: [_u(r, 0.5, 2.0), _u(r, -2.0, -0.5), 1.0]),
    "newton2": ("newton", lambda r: [_u(r, 1.2, 2.0), _u(r, 0.0, 0.4), np.array([1.0, 0.5])]),
    # piecewise
    "huber": ("piecewise", lambda r: [_u(r, 0.1, 0.8), 1.0]),
    "huber_total": ("piecewise", lambda r: [_away(r, -3, 3, 6, [-1.0, 1.0, 0.0], 0.1), 1.0]),
    "hat": ("piecewise", lambda r: [_u(r, 0.1, 0.9)]),
    "smoothstep": ("piecewise", lambda r: [0.0, 2.0, _u(r, 0.2, 1.8)]),
    "clamp": ("piecewise", lambda r: [_u(r, -0.8, 0.8), -1.0, 1.0]),
    "soft_threshold": ("piecewise", lambda r: [_away(r, -2, 2, 6, [-0.5, 0.0, 0.5], 0.1), 0.5]),
    "soft_threshold_loop": ("piecewise",
                            lambda r: [_away(r, -2, 2, 6, [-0.5, 0.0, 0.5], 0.1), 0.5]),
    "round_to": ("piecewise", lambda r: [1.3, 0.5]),  # x / h + 0.5 = 3.1: away from the jumps
    "safe_log": ("piecewise", lambda r: [_u(r, 0.5, 3.0)]),
    "wrap_angle": ("piecewise", lambda r: [_u(r, 3.5, 6.0)]),
    # stats
    "mean_var": ("stats", lambda r: [r.normal(size=5)]),
    "weighted_mean": ("stats", lambda r: [r.normal(size=5), r.uniform(0.5, 1.5, 5)]),
    "uniform_mean": ("stats", lambda r: [r.normal(size=5)]),
    "geometric_mean": ("stats", lambda r: [r.uniform(0.5, 2.0, 5)]),
    "spread": ("stats", lambda r: [r.permutation(np.linspace(-2, 2, 5)) + r.uniform(-0.05, 0.05, 5)]),
    "softmax": ("stats", lambda r: [r.normal(size=5)]),
    "unit": ("stats", lambda r: [r.normal(size=5)]),
    "moments": ("stats", lambda r: [r.normal(size=5), _u(r, -1, 1)]),
    "nanmean": ("stats", lambda r: [np.where(np.arange(5) == 2, np.nan, r.normal(size=5))]),
    "simpson": ("stats", lambda r: [r.normal(size=7), _u(r, 0.1, 1.0)]),
    "normal_logpdf": ("stats", lambda r: [_u(r, -2, 2), _u(r, -1, 1), _u(r, 0.5, 2.0)]),
    "normal_cdf": ("stats", lambda r: [_u(r, -2, 2)]),
    "log_beta": ("stats", lambda r: [_u(r, 0.5, 4.0), _u(r, 0.5, 4.0)]),
    "gamma_logpdf": ("stats", lambda r: [_u(r, 0.5, 3.0), _u(r, 0.5, 3.0), _u(r, 0.5, 2.0)]),
    "digamma_of": ("stats", lambda r: [_u(r, 0.5, 4.0)]),
    "beta_mean_log": ("stats", lambda r: [_u(r, 0.5, 4.0), _u(r, 0.5, 4.0)]),
    "bce": ("stats", lambda r: [_away(r, -3, 3, 5, [0.0], 0.1), r.uniform(0, 1, 5), True]),
    "sigmoids": ("stats", lambda r: [r.normal(size=5)]),
    "log1mexp": ("stats", lambda r: [_u(r, 0.1, 0.6)]),
    "polar": ("stats", lambda r: [_u(r, 0.5, 2.0), _u(r, -2.0, 2.0)]),
    "haversine": ("stats", lambda r: [_u(r, -1, 1), _u(r, -1, 1), _u(r, -1, 1), _u(r, -1, 1)]),
    "angle_between": ("stats", lambda r: [r.normal(size=4), r.normal(size=4)]),
    "gudermannian": ("stats", lambda r: [_u(r, -2, 2)]),
    "hyperbolic_mix": ("stats", lambda r: [_u(r, -2, 2)]),
    "elementwise_math": ("stats", lambda r: [_away(r, -2, 2, 5, [0.0], 0.2)]),
    "power_tower": ("stats", lambda r: [_u(r, 0.5, 2.0), _u(r, 0.5, 1.5), _u(r, 0.5, 1.5)]),
    "mean_f32": ("stats", lambda r: [r.normal(size=5).astype(np.float32)]),
    "poly_f32": ("stats", lambda r: [r.normal(size=5).astype(np.float32),
                                     np.float32(_u(r, 0.5, 2))]),
    "f32_roundtrip": ("stats", lambda r: [_u(r, -2, 2)]),
    "masked_mean": ("stats", lambda r: [_away(r, -2, 2, 6, [0.0], 0.2), np.arange(6), 2, 1]),
    "affine": ("stats", lambda r: [r.normal(size=5), _u(r, 0.5, 2.0), _u(r, -1, 1)]),
}

# Every other function of the examples, and why neither check applies (vjp/jvp need float
# results only, and need a float parameter).
NOT_APPLICABLE = {
    "shape_of": "(i64, i64, i64) result, no float output",
    "kepler": "returns (f64, i64): vjp/jvp need float results only",
    "kepler_many": "returns (f64[n], i64): vjp/jvp need float results only",
    "classify": "i64 result",
    "cell_index": "i64 result",
    "cells_spanned": "i64 result",
    "int_clamp": "no float parameter, i64 result",
    "int_distance": "no float parameter, i64 result",
    "in_box": "bool result",
    "first_negative": "i64 result",
    "sign_changes": "i64 result",
    "is_sorted": "bool result",
    "trunc_and_round": "(i64, i64) result",
    "divmod_floor": "no float parameter, (i64, i64) result",
    "collatz_steps": "no float parameter, i64 result",
    "histogram8": "i64[8] result",
}
F32 = {"mean_f32", "poly_f32", "f32_roundtrip"}

_compiled: dict[str, object] = {}


def _definitions(ex: str) -> dict[str, str]:
    src = (EXAMPLES / f"{ex}.dad").read_text()
    return {m.group(1): m.group(0) for m in
            re.finditer(r"^fn\s+(\w+)\s*\(.*?^\}\n", src, flags=re.M | re.S)}


def _fn(name):
    """The example function `name`, compiled from its verbatim text plus its callees."""
    if name not in _compiled:
        defs = _definitions(INPUTS[name][0])
        need, todo = [], [name]
        while todo:
            n = todo.pop()
            if n in need:
                continue
            need.append(n)
            todo += [c for c in defs if c != n and re.search(rf"\b{c}\s*\(", defs[n])]
        mod = dad.compile("\n".join(defs[n] for n in need), filename=f"{INPUTS[name][0]}.dad")
        _compiled[name] = getattr(mod, name)
    return _compiled[name]


def _args(name):
    return INPUTS[name][1](np.random.default_rng(zlib.crc32(name.encode())))


def _is_float_arg(a) -> bool:
    if isinstance(a, (bool, int, np.integer, np.bool_)):
        return False
    return not (isinstance(a, np.ndarray) and a.dtype.kind in "iub")


def _random_like(a, rng):
    """A random value shaped and typed like the float argument `a`."""
    if np.ndim(a) == 0:
        return np.float32(rng.normal()) if isinstance(a, np.float32) else float(rng.normal())
    return rng.normal(size=np.shape(a)).astype(np.asarray(a).dtype)


def _tuple(r):
    return r if isinstance(r, tuple) else (r,)


def _pairing(a, b) -> tuple[float, float]:
    """(sum a*b, sum |a*b|) in f64."""
    p = np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)
    return float(np.sum(p)), float(np.sum(np.abs(p)))


def test_every_example_function_is_listed():
    """No function of examples/*.dad is skipped silently."""
    found = set()
    for p in (EXAMPLES / f"{e}.dad" for e in EXAMPLE_FILES):
        found |= set(re.findall(r"^fn\s+([A-Za-z_]\w*)\s*\(", p.read_text(), flags=re.M))
    missing = found - set(INPUTS) - set(NOT_APPLICABLE)
    assert not missing, f"example functions with no reverse-mode check: {sorted(missing)}"
    assert not (set(INPUTS) & set(NOT_APPLICABLE))
    assert not (set(INPUTS) | set(NOT_APPLICABLE)) - found


KNOWN_BUGS: dict[str, str] = {}  # name -> reason (xfail strict); step and simulate
# were wrong until 4dd43c0 (use after free of a viewed call result; call arguments
# overwritten after the call)


def _with_known_bugs(names):
    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[n]))
            if n in KNOWN_BUGS else n for n in names]


@pytest.mark.parametrize("name", _with_known_bugs(sorted(INPUTS)))
def test_dot_product_between_modes(name):
    """<jvp(f)(x; v), w> == <v, vjp(f)(x; w)>, two random draws of (v, w) per function."""
    f = _fn(name)
    args = _args(name)
    outs = _tuple(f(*args))
    fwd, rev = dad.jvp(f), dad.vjp(f)
    tol = 1e-4 if name in F32 else 1e-11
    for draw in range(2):
        rng = np.random.default_rng(1000 + draw)
        v = [_random_like(a, rng) for a in args if _is_float_arg(a)]
        w = [_random_like(o, rng) for o in outs]
        jv = _tuple(fwd(*args, *v))
        assert len(jv) == 2 * len(outs)
        vj = _tuple(rev(*args, *w))
        assert len(vj) == len(outs) + len(v)
        for p, q in zip(vj[:len(outs)], outs):  # the primal results of the vjp
            np.testing.assert_allclose(np.asarray(p, float), np.asarray(q, float),
                                       rtol=1e-13, atol=1e-15)
        for bar, a in zip(vj[len(outs):], [a for a in args if _is_float_arg(a)]):
            assert np.shape(bar) == np.shape(a)
            assert np.asarray(bar).dtype == np.asarray(a).dtype or np.ndim(a) == 0
        lhs = [_pairing(t, c) for t, c in zip(jv[len(outs):], w)]
        rhs = [_pairing(a, b) for a, b in zip(v, vj[len(outs):])]
        L, R = sum(x for x, _ in lhs), sum(x for x, _ in rhs)
        scale = sum(s for _, s in lhs) + sum(s for _, s in rhs)
        assert abs(L - R) <= tol * scale + 1e-300, \
            f"{name}: <jvp v, w> = {L!r} but <v, vjp w> = {R!r} (scale {scale:.3g})"


def _grad_cases():
    out = []
    for name in sorted(INPUTS):
        ex = INPUTS[name][0]
        src = (EXAMPLES / f"{ex}.dad").read_text()
        m = re.search(rf"^fn\s+{name}\s*\(([^)]*)\)\s*->\s*(.*?)\s*\{{", src, flags=re.M)
        if m.group(2) in ("f64", "f32"):
            out.append(name)
    return out


GRAD_CASES = _grad_cases()


def test_grad_cases_cover_the_scalar_examples():
    assert {"rosen", "rosen_sliced", "dot_loop", "quad_form", "trace", "energy", "potential",
            "kinetic", "newton_sqrt", "cubic_root", "huber_total", "bce", "mean_f32",
            "nanmean", "angle_between", "power_tower"} <= set(GRAD_CASES)


@pytest.mark.parametrize("name", GRAD_CASES)
def test_grad_matches_central_difference(name):
    f = _fn(name)
    args = _args(name)
    g = _tuple(dad.grad(f)(*args))
    floats = [i for i, a in enumerate(args) if _is_float_arg(a)]
    assert len(g) == len(floats)
    h, tol = (1e-2, 1e-3) if name in F32 else (1e-6, 1e-6)  # see the module docstring
    for gi, i in zip(g, floats):
        a = args[i]
        assert np.shape(gi) == np.shape(a)
        fd = np.zeros(np.shape(a))
        for k in range(max(int(np.prod(np.shape(a))), 1)):
            vals = []
            for s in (h, -h):
                shifted = list(args)
                if np.ndim(a) == 0:
                    shifted[i] = type(a)(a + s) if isinstance(a, np.floating) else float(a + s)
                else:
                    e = np.array(a, copy=True)
                    e.flat[k] += s
                    shifted[i] = e
                vals.append(float(f(*shifted)))
            fd.flat[k] = (vals[0] - vals[1]) / (2 * h)
        gi = np.asarray(gi, dtype=float)
        err = float(np.max(np.abs(gi - fd)))
        assert err <= tol * (1.0 + float(np.max(np.abs(gi)))), \
            f"{name}: d/d{i}: grad {gi} vs central differences {fd}"
