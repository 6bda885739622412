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
import example_inputs
from generators import as_tuple, is_float_arg, pairing, random_like

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
# The example files covered here. examples/ba.dad, gmm.dad and lstm.dad appeared while this
# file was written and are not covered yet.
EXAMPLE_FILES = ["rosenbrock", "matvec", "newton", "piecewise", "nbody", "stats", "mlp", "logreg", "rk4"]


INPUTS = example_inputs.INPUTS

# Every other function of the examples, and why neither check applies (vjp/jvp need float
# results only, and need a float parameter).
NOT_APPLICABLE = {
    **example_inputs.NO_FLOAT_RESULT,
    "shape_of": "(i64, i64, i64) result, no float output",
    "kepler": "returns (f64, i64): vjp/jvp need float results only",
    "kepler_many": "returns (f64[n], i64): vjp/jvp need float results only",
}
F32 = {"mean_f32", "poly_f32", "f32_roundtrip"}

_fn = example_inputs.compile_function


def _args(name):
    return INPUTS[name][1](np.random.default_rng(zlib.crc32(name.encode())))


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
    outs = as_tuple(f(*args))
    fwd, rev = dad.jvp(f), dad.vjp(f)
    tol = 1e-4 if name in F32 else 1e-11
    for draw in range(2):
        rng = np.random.default_rng(1000 + draw)
        v = [random_like(a, rng) for a in args if is_float_arg(a)]
        w = [random_like(o, rng) for o in outs]
        jv = as_tuple(fwd(*args, *v))
        assert len(jv) == 2 * len(outs)
        vj = as_tuple(rev(*args, *w))
        assert len(vj) == len(outs) + len(v)
        for p, q in zip(vj[:len(outs)], outs):  # the primal results of the vjp
            np.testing.assert_allclose(np.asarray(p, float), np.asarray(q, float),
                                       rtol=1e-13, atol=1e-15)
        for bar, a in zip(vj[len(outs):], [a for a in args if is_float_arg(a)]):
            assert np.shape(bar) == np.shape(a)
            assert np.asarray(bar).dtype == np.asarray(a).dtype or np.ndim(a) == 0
        lhs = [pairing(t, c) for t, c in zip(jv[len(outs):], w)]
        rhs = [pairing(a, b) for a, b in zip(v, vj[len(outs):])]
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
    g = as_tuple(dad.grad(f)(*args))
    floats = [i for i, a in enumerate(args) if is_float_arg(a)]
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
