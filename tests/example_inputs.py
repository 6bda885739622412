"""Inputs for the functions of examples/*.dad, shared by the forward- and reverse-mode tests,
and a compiler of one example function with just the functions it calls.

`INPUTS[name] = (example, make)`: `make(rng)` gives positional arguments, O(1) and away from
the kinks of piecewise functions (|r| = delta, 0 for abs, ties of max/min, ...).
`ROSEN` is `rosen`'s text from examples/rosenbrock.dad, `rosen_loop(x)` the same in Python
floats and `rosen_gradient(x)` its analytic gradient in NumPy (oracles for the tests that
derive it). `compile_function(name)` compiles the function from its example's verbatim text
plus its callees: derived kernels recompile the whole module of the function they
differentiate, and a small module keeps that to a few hundredths of a second.
"""
from __future__ import annotations

import pathlib
import re

import numpy as np

import dad

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _u(rng, lo, hi, shape=None):
    return rng.uniform(lo, hi, shape) if shape is not None else float(rng.uniform(lo, hi))


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
    # mlp (h = 4 hidden units, d = 3 inputs, c = 2 classes, n = 5 points)
    "mlp_logits": ("mlp", lambda r: [r.normal(size=(4, 3)), r.normal(size=4), r.normal(size=(2, 4)),
                                     r.normal(size=2), r.normal(size=(5, 3))]),
    "mlp_loss": ("mlp", lambda r: [r.normal(size=(4, 3)), r.normal(size=4), r.normal(size=(2, 4)),
                                   r.normal(size=2), r.normal(size=(5, 3)),
                                   np.eye(2)[r.integers(0, 2, 5)]]),
    # logreg (d = 3 features, n = 6 points)
    "nll": ("logreg", lambda r: [r.normal(size=3), r.normal(size=(6, 3)),
                                 r.integers(0, 2, 6).astype(float), 0.1]),
    # rk4 (step h, 20 steps)
    "rhs": ("rk4", lambda r: [r.normal(size=2), _u(r, 0.5, 2.0), _u(r, 0.1, 0.5)]),
    "rk4": ("rk4", lambda r: [r.normal(size=2), _u(r, 0.5, 2.0), _u(r, 0.1, 0.5), 0.05, 20]),
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


_compiled: dict[str, object] = {}


def definitions(ex: str) -> dict[str, str]:
    src = (EXAMPLES / f"{ex}.dad").read_text()
    return {m.group(1): m.group(0) for m in
            re.finditer(r"^fn\s+(\w+)\s*\(.*?^\}\n", src, flags=re.M | re.S)}


ROSEN = definitions("rosenbrock")["rosen"]


def rosen_loop(x) -> float:
    """`rosen` in Python floats: the same operations in the same order (so bit for bit)."""
    s = 0.0
    for i in range(len(x) - 1):
        a = x[i + 1] - x[i] * x[i]
        b = 1.0 - x[i]
        s += 100.0 * a * a + b * b
    return s


def rosen_gradient(x) -> np.ndarray:
    """The gradient of sum(100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2), by hand."""
    x = np.asarray(x, dtype=float)
    a = x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * a - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * a
    return g


# A loop that records on the tape: `p` is carried through a nonlinear step, so its reverse
# needs every iterate. Shared by the tape tests.
RECORDING = """
fn f(x: f64[n], m: i64) -> f64 {
    var p = 1.0;
    var s = 0.0;
    for k in 0..m {
        let i = k % n;
        p = p * (1.0 + 0.001 * sin(x[i] * p));
        s += exp(0.01 * x[i]) * p;
    }
    return s;
}
"""


def recording_gradient(x, m: int) -> np.ndarray:
    """The gradient of RECORDING's `f` with respect to x, by a reverse sweep written out."""
    n = len(x)
    ps, p = [], 1.0
    for k in range(m):
        ps.append(p)
        p = p * (1.0 + 0.001 * np.sin(x[k % n] * p))
    g = np.zeros(n)
    p_bar = 0.0
    for k in reversed(range(m)):
        i, p_old = k % n, ps[k]
        u = x[i] * p_old
        p_new = p_old * (1.0 + 0.001 * np.sin(u))
        e = np.exp(0.01 * x[i])
        g[i] += 0.01 * e * p_new          # s += e * p_new
        p_bar += e
        c = 0.001 * np.cos(u) * p_old * p_bar
        g[i] += c * p_old                 # p_new = p_old * (1 + 0.001 sin(x[i] * p_old))
        p_bar = p_bar * (1.0 + 0.001 * np.sin(u)) + c * x[i]
    return g


def compile_function(name: str):
    if name not in _compiled:
        defs = definitions(INPUTS[name][0])
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


# Functions no derivative test applies to (no float result, or no float parameter).
NO_FLOAT_RESULT = {
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
