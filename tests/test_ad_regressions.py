"""Regression tests for derivatives that were silently wrong.

Each program is differentiated in every mode (`grad`, `jvp`, `vjp`, `hvp` forward-over-reverse
and reverse-over-forward, `jacobian`) and checked against oracles independent of the code
under test: central finite differences of the plain function, the analytic derivative where
it is short, and the dot-product test `<J v, w> = <v, J^T w>` between forward and reverse mode.

Tolerances. The programs are smooth, of size O(1), with inputs in [0.2, 1]. A central
difference with step h = 1e-5 has truncation error ~h^2 |f'''| ~ 1e-10 and rounding error
~eps |f| / h ~ 1e-11, so `5e-7 * (1 + |value|)` leaves three orders of headroom; a lost
derivative (the bugs below) is off by O(1). The Hessian-vector product is compared with the
central difference of the gradient (itself checked against differences of the function) with
`2e-6 * (1 + |value|)`. The dot-product test compares two exact derivatives of the same
executed program summed in different orders: `1e-12 * (sum |a_i b_i|)`.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import dad
from dad.runtime.transforms import derive_kernel

H = 1e-5
FD_TOL = 5e-7
HVP_TOL = 2e-6


def _flat(args) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(a, dtype=float)) for a in args])


def _unflat(v: np.ndarray, like) -> list:
    out, k = [], 0
    for a in like:
        a = np.asarray(a, dtype=float)
        out.append(v[k:k + a.size].reshape(a.shape) if a.ndim else float(v[k]))
        k += a.size
    return out


def _close(got, want, tol) -> bool:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    return bool(np.all(np.abs(got - want) <= tol * (1.0 + np.abs(want))))


def _derived(src: str) -> str:
    """`src` defines `f` (scalar result): declare its derivatives in every mode."""
    first = re.search(r"fn f\((\w+)", src).group(1)
    return src + f"""
fn f_grad = grad(f);
fn f_vg = value_and_grad(f);
fn f_jvp = jvp(f);
fn f_vjp = vjp(f);
fn f_hvp = hvp(f, wrt={first});
"""


def check_all_modes(src: str, args: list, seed: int = 1) -> None:
    """Every derivative of the scalar function `f` of `src` at `args` against the oracles."""
    m = dad.compile(_derived(src))
    x0 = _flat(args)
    n0 = np.size(args[0])
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(x0.size)

    def f(x):
        return m.f(*_unflat(x, args))

    def grad(x):
        g = m.f_grad(*_unflat(x, args))
        return _flat(g if isinstance(g, tuple) else [g])

    fd = np.array([(f(x0 + H * e) - f(x0 - H * e)) / (2 * H) for e in np.eye(x0.size)])
    g = grad(x0)
    assert _close(g, fd, FD_TOL), f"grad {g} != finite differences {fd}"
    vg = m.f_vg(*args)
    assert vg[0] == m.f(*args) and np.array_equal(_flat(vg[1:]), g)
    out, *bar = m.f_vjp(*args, 1.0)
    assert out == m.f(*args) and np.array_equal(_flat(bar), g)

    value, jv = m.f_jvp(*args, *_unflat(v, args))
    assert value == m.f(*args)
    assert _close(jv, fd @ v, FD_TOL), f"jvp {jv} != finite differences {fd @ v}"
    assert abs(jv - g @ v) <= 1e-12 * np.sum(np.abs(g * v)) + 1e-300, (jv, g @ v)

    # Hessian-vector products, direction only along the first parameter
    v0 = np.where(np.arange(x0.size) < n0, v, 0.0)
    fdh = ((grad(x0 + H * v0) - grad(x0 - H * v0)) / (2 * H))[:n0]
    d0 = _unflat(v0, args)[0]
    hv = np.ravel(m.f_hvp(*args, d0))
    assert _close(hv, fdh, HVP_TOL), f"hvp {hv} != finite differences of grad {fdh}"
    first = re.search(r"fn f\((\w+)", src).group(1)
    rof = derive_kernel(m.f, "hvp", wrt=first, route="reverse-over-forward")
    hv2 = np.ravel(rof(*args, d0))
    assert _close(hv2, fdh, HVP_TOL), f"hvp (reverse over forward) {hv2} != {fdh}"


RNG = np.random.default_rng(0)
X = RNG.uniform(0.2, 1.0, 5)
W2 = RNG.uniform(0.2, 1.0, (3, 4))
W = 0.7

# ----------------------------------------------------------------------------- self-assignment
# `u = u;` copies an array onto itself; the adjoint of that copy used to move u's adjoint into
# itself and then zero it, so everything flowing through u was lost.


def test_self_assignment_gradient_is_analytic():
    src = "fn f(x: f64[n]) -> f64 { var u = x; u = u; return sum(sin(u)) + u[n - 1]; }"
    m = dad.compile(_derived(src))
    want = np.cos(X)
    want[-1] += 1.0
    assert np.allclose(m.f_grad(X), want, rtol=1e-14, atol=0)
    v = RNG.standard_normal(X.size)
    assert np.allclose(m.f_hvp(X, v), -np.sin(X) * v, rtol=1e-14, atol=0)
    assert np.isclose(m.f_jvp(X, v)[1], want @ v, rtol=1e-13, atol=0)
    check_all_modes(src, [X])


SELF_ASSIGN = {
    "twice": ("fn f(x: f64[n]) -> f64 { var u = x; u = u; u = u; return dot(u, u); }", [X]),
    "after_updates": ("fn f(x: f64[n]) -> f64 { var u = x; u[0] = u[1] * u[2]; u = u; "
                      "return sum(sin(u)) + u[n - 1]; }", [X]),
    "then_updates": ("fn f(x: f64[n]) -> f64 { var u = x; let v = u; u = u; u[0] = 2.0 * u[0]; "
                     "return sum(u * v); }", [X]),
    "zeros": ("fn f(x: f64[n]) -> f64 { var u = zeros(n); u = u; u[0] = x[0]; u = u; "
              "return sum(u * x); }", [X]),
    "matrix": ("fn f(A: f64[m, n]) -> f64 { var V = A * A; V = V; return sum(sin(V)) + V[0, 1]; }",
               [W2]),
    "matrix_updated": ("fn f(A: f64[m, n]) -> f64 { var V = A * A; V[1, 2] = V[0, 0] * V[2, 3]; "
                       "V = V; return sum(sin(V)) + V[1, 2]; }", [W2]),
    "in_for": ("fn f(A: f64[m, n], y: f64[n]) -> f64 { var V = A; for i in 0..m { V = V; "
               "V[i, 0] = V[i, 1] * y[0]; } return sum(matvec(V, y)); }", [W2, X[:4]]),
    "in_while": ("fn f(x: f64[n], w: f64) -> f64 { var u = x * w; var i = 0; while i < n { "
                 "u = u; u[i] = u[i] * u[i]; i = i + 1; } return sum(u); }", [X, W]),
    "in_branch": ("fn f(x: f64[n]) -> f64 { var u = x * x; if x[0] > 0.0 { u = u; } "
                  "return sum(sin(u)); }", [X]),
    "in_loop_with_break": ("fn f(x: f64[n], w: f64) -> f64 { var u = x * w; for i in 0..n { "
                           "if u[i] > 0.5 { u = u; break; } u[i] = sin(u[i]); } "
                           "return sum(u * u); }", [X, W]),
    "whole_slice": ("fn f(x: f64[n]) -> f64 { var u = x; u = u[0..n]; "
                    "return sum(sin(u)) + u[n - 1]; }", [X]),
    "in_callee": ("fn h(a: f64[n]) -> f64[n] { var u = a; u = u; return u * u; }\n"
                  "fn f(x: f64[n]) -> f64 { var u = h(x); u = u; return sum(h(u)); }", [X]),
    "scalar": ("fn f(x: f64[n], w: f64) -> f64 { var s = w * x[0]; for i in 0..n { s = s; "
               "s = s * x[i]; } return s; }", [X, W]),
}


@pytest.mark.parametrize("name", SELF_ASSIGN)
def test_self_assignment(name):
    src, args = SELF_ASSIGN[name]
    check_all_modes(src, args)


def test_self_assignment_jacobian():
    """A vector function: forward-mode and reverse-mode Jacobians against the analytic one."""
    m = dad.compile("fn k(x: f64[n], y: f64[m]) -> f64[m] { var u = y * x[0] * x[1]; u = u; "
                    "return u; }")
    x, y = X[:2], X[2:]
    want = np.outer(y, [x[1], x[0]])
    for mode in ("forward", "reverse"):
        J = derive_kernel(m.k, "jacobian", wrt="x", mode=mode)(x, y)
        assert np.allclose(J, want, rtol=1e-14, atol=0), mode


# ----------------------------------------------------------------------------- call results
# An array a call returns from constant arguments is inactive at the call, and becomes varied
# by a later store or update. Forward mode gave it no tangent, so it dropped the tangent of
# every later write (`u[i] = e`, `u[i] -= e`, `u *= e`, `u = e`), and with it every jvp,
# forward-mode Jacobian, sparsity pattern and forward-over-reverse hvp through it.

HELPERS = """
fn g0(p0: f64[n]) -> (f64, f64[n]) { return (sum(p0), p0); }
fn g1(p0: f64[n]) -> f64[n] { return p0 * 2.0; }
fn g2(p: f64[k]) -> f64[k] { var z = zeros(k); z[0] = 3.0; return z; }
fn g3(p: f64[m, n]) -> f64[m, n] { return ones(m, n); }
"""


def test_call_result_store_jvp_is_analytic():
    """The reported case: f = w^2 * x[0]; d/dw = 2 w x[0] = 6 at x = [2, 3], w = 1.5."""
    m = dad.compile(HELPERS + """
fn f(x: f64[n], w: f64) -> f64 { var (s, u) = g0(ones(n)); u[1] = w * w; return u[1] * x[0]; }
fn f_jvp = jvp(f);
fn f_grad = grad(f);
""")
    x = np.array([2.0, 3.0])
    assert m.f_jvp(x, 1.5, np.zeros(2), 1.0) == (4.5, 6.0)
    assert m.f_jvp(x, 1.5, np.array([1.0, 0.0]), 0.0) == (4.5, 2.25)
    gx, gw = m.f_grad(x, 1.5)
    assert np.array_equal(gx, [2.25, 0.0]) and gw == 6.0


CALL_RESULT = {
    "store": "var (s, u) = g0(ones(n)); u[1] = w * w; return u[1] * x[0];",
    "sub_update": "var (s, u) = g0(ones(n)); u[1] -= w * w; return u[1] * x[0] + s;",
    "scale_whole": "var (s, u) = g0(ones(n)); u *= w; return dot(u, x);",
    "scale_whole_single": "var u = g1(ones(n)); u *= w; return dot(u, x);",
    "assign_whole": "var u = g1(ones(n)); u = x * w; return dot(u, x);",
    "add_whole": "var u = g1(ones(n)); u += x; return dot(u, u) * w;",
    "computed_in_callee": "var u = g2(ones(n)); u[n - 1] = w * x[0]; return sum(sin(u));",
    "zeros": "var u = zeros(n); u[1] = w * w; return u[1] * x[0];",
    "tuple_literal": "var (a, u) = (2.0, ones(n)); u[1] = w * a; return u[1] * x[0];",
    "for": "var (s, u) = g0(ones(n)); for i in 0..n { u[i] = u[i] * w + x[i]; } return sum(u * u);",
    "call_in_loop": "var t = 0.0; for i in 0..n { var u = g1(ones(n)); u[i] = w * x[i]; "
                    "t += sum(u * u); } return t;",
    "branch": "var (s, u) = g0(ones(n)); if x[0] > 0.0 { u[0] = w * x[1]; } return sum(u * u);",
    "while": "var (s, u) = g0(ones(n)); var i = 0; while i < n { u[i] *= w; i = i + 1; } "
             "return sum(u * x);",
    "matrix_store": "var A = g3(zeros(2, n)); A[1, 2] = w * x[0]; return sum(matvec(A, x));",
    "matrix_scale": "var A = g3(zeros(2, n)); A *= w; return sum(matvec(A, x));",
    "alias_let": "var (s, u) = g0(ones(n)); let v = u; u[1] = w * w; return u[1] * x[0] + v[1];",
    "passed_on": "var (s, u) = g0(ones(n)); u[1] = w * w; return g1(u)[1] * x[0];",
    "passed_on_tuple": "var (s, u) = g0(ones(n)); u[1] = w * w; let (s2, v) = g0(u); "
                       "return s2 * x[0] + v[1];",
}


@pytest.mark.parametrize("order", ["x_first", "w_first"])
@pytest.mark.parametrize("name", CALL_RESULT)
def test_array_varied_by_a_later_write(name, order):
    """(`w_first` makes the hvp differentiate with respect to the scalar `w`.)"""
    params = "x: f64[n], w: f64" if order == "x_first" else "w: f64, x: f64[n]"
    args = [X[:4], W] if order == "x_first" else [W, X[:4]]
    check_all_modes(HELPERS + f"fn f({params}) -> f64 {{ {CALL_RESULT[name]} }}", args)


BOTH = {
    "call_self_assign": "var u = g1(ones(n)); u = u; u[0] = w * x[1]; u = u; return sum(u * x);",
    "call_self_assign_loop": "var (s, u) = g0(ones(n)); for i in 0..n { u = u; u[i] *= w; } "
                             "return sum(u * x);",
    "call_matrix_self_assign": "var V = g3(zeros(2, n)); V = V; V[1, 1] = w; V = V; "
                               "return sum(matvec(V, x));",
}


@pytest.mark.parametrize("name", BOTH)
def test_call_result_and_self_assignment(name):
    check_all_modes(HELPERS + f"fn f(x: f64[n], w: f64) -> f64 {{ {BOTH[name]} }}", [X[:4], W])


def test_call_result_vector_function_jacobians():
    """Forward (vector mode), reverse and sparse Jacobians of h(x) = 2 x^2 (elementwise),
    whose result array starts as a call's constant result: analytically diag(4 x)."""
    m = dad.compile(HELPERS + "fn h(x: f64[n]) -> f64[n] { var u = g1(ones(n)); "
                    "for i in 0..n { u[i] = u[i] * x[i] * x[i]; } return u; }")
    x = X
    want = np.diag(4.0 * x)
    for mode in ("forward", "reverse"):
        J = derive_kernel(m.h, "jacobian", wrt="x", mode=mode)(x)
        assert np.allclose(J, want, rtol=1e-15, atol=0), mode
    assert np.allclose(dad.sparse_jacobian(m.h, wrt="x")(x), want, rtol=1e-15, atol=0)


# ----------------------------------------------------------------------------- primal bits
# The primal a derived function returns (`value_and_grad`, `vjp`, `jvp`) is the plain call's
# value bit for bit: no tolerance. A builtin reduction may be summed in any order, but the
# derived function must use the same one as the plain function. `prod` used to differ in the
# last bits: its plain loop was vectorised with partial products, while a derived function's
# loop reads the running product (recorded by reverse mode, carried by forward mode) and so
# ran in order.

BIT_BODIES = {
    "sum": "return sum(x);",
    "sum_sin": "return sum(sin(x) * x);",
    "dot": "return dot(x, y);",
    "dot_exp": "return dot(exp(x), y);",
    "logsumexp": "return logsumexp(x);",
    "norm": "return norm(x);",
    "prod": "return prod(x);",
    "prod_scaled": "return prod(1.0 + 0.1 * x) * sum(y);",
    "matvec": "return sum(matvec(A, x));",
    "matvec_sin": "return sum(sin(matvec(A, x)));",
    "matvec_dot": "return dot(matvec(A, x), y);",
    "matmul": "return sum(matmul(A, B));",
    "matmul_gram": "return sum(matmul(A, transpose(A)));",
    "loop": "var s = 0.0; for i in 0..n { s += x[i] * y[i]; } return s;",
    "loop_nonlinear": "var s = 0.0; for i in 0..n { s = s + sin(x[i]) * y[i] + x[i] * x[i]; } "
                      "return s;",
    "loop_of_reductions": "var s = 0.0; for i in 0..n { s += dot(x, y) * x[i]; } return s;",
    "calls": "return hb(x, y) + hb(y, x) * norm(x);",
    "mix": "var u = x * y; return sum(u) * norm(x) + logsumexp(y) + dot(matvec(A, x), y);",
    "array_update": "var u = x * y; for i in 1..n { u[i] = u[i - 1] * 0.5 + u[i]; } "
                    "return logsumexp(u) + prod(u * 0.1 + 1.0);",
}
BIT_HELPER = "fn hb(a: f64[n], b: f64[n]) -> f64 { return dot(sin(a), b) + sum(a * a); }\n"
BIT_SIZES = (1, 2, 3, 7, 13, 31, 64, 101, 1001)


@pytest.fixture(scope="module")
def bit_module():
    src = BIT_HELPER
    for k, body in BIT_BODIES.items():
        src += (f"fn b_{k}(x: f64[n], y: f64[n], A: f64[n, n], B: f64[n, n]) -> f64 {{ {body} }}\n"
                f"fn b_{k}_vg = value_and_grad(b_{k});\n"
                f"fn b_{k}_vgx = value_and_grad(b_{k}, wrt=x);\n"
                f"fn b_{k}_vjp = vjp(b_{k});\n"
                f"fn b_{k}_jvp = jvp(b_{k});\n")
    src += ("fn mv(A: f64[n, n], x: f64[n]) -> f64[n] { return matvec(A, x); }\n"
            "fn mv_vjp = vjp(mv);\nfn mv_jvp = jvp(mv);\n")
    return dad.compile(src, filename="bits.dad")


def _same(a, b) -> bool:
    return np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("name", BIT_BODIES)
def test_derived_primal_is_the_plain_value_bit_for_bit(bit_module, name):
    m = bit_module
    f = getattr(m, f"b_{name}")
    vg, vgx, vjp, jvp = (getattr(m, f"b_{name}_{k}") for k in ("vg", "vgx", "vjp", "jvp"))
    for n in BIT_SIZES:
        if name.startswith("mat") and n > 101:
            continue
        for seed in range(3):
            r = np.random.default_rng(1000 * n + seed)
            x, y = r.standard_normal(n), r.standard_normal(n)
            A, B = r.standard_normal((n, n)), r.standard_normal((n, n))
            want = f(x, y, A, B)
            got = {"value_and_grad": vg(x, y, A, B)[0], "value_and_grad wrt x": vgx(x, y, A, B)[0],
                   "vjp": vjp(x, y, A, B, 1.0)[0], "jvp": jvp(x, y, A, B, y, x, B, A)[0]}
            for kind, v in got.items():
                assert _same(v, want), f"{kind} of {name} at n={n} seed={seed}: {v!r} != {want!r}"


def test_derived_array_primal_is_the_plain_value_bit_for_bit(bit_module):
    m = bit_module
    for n in BIT_SIZES:
        r = np.random.default_rng(n)
        A, x = r.standard_normal((n, n)), r.standard_normal(n)
        want = m.mv(A, x)
        assert _same(m.mv_vjp(A, x, x)[0], want)
        assert _same(m.mv_jvp(A, x, A, x)[0], want)


def _random_program(rng) -> str:
    """A scalar function of (x, y, A) built from random reductions of random elementwise
    expressions, possibly inside a loop or a branch (values stay O(1))."""
    def vec(depth=0):
        if depth > 1 or rng.random() < 0.3:
            return rng.choice(["x", "y", "matvec(A, x)", "matvec(A, y)", "(x * y)"])
        a, b = vec(depth + 1), vec(depth + 1)
        return rng.choice([f"sin({a})", f"tanh({a} + {b})", f"({a} * {b})", f"exp(0.1 * {a})",
                           f"({a} - 0.5 * {b})"])

    def red():
        a, b = vec(), vec()
        return rng.choice([f"sum({a})", f"dot({a}, {b})", f"norm({a})", f"logsumexp({a})",
                           f"prod(1.0 + 0.01 * {a})", f"sum(matmul(A, A) * A)"])
    terms = " + ".join(f"{rng.uniform(-1, 1):.3f} * {red()}" for _ in range(rng.randint(1, 3)))
    shape = rng.choice(["plain", "loop", "branch"])
    if shape == "loop":
        return (f"var s = 0.0; for k in 0..3 {{ s = 0.5 * s + {terms} * float(k + 1); }} "
                f"return s;")
    if shape == "branch":
        return f"var s = {red()}; if s > 0.0 {{ s = s * ({terms}); }} return s;"
    return f"return {terms};"


def test_random_programs_primal_bit_for_bit():
    import random
    rng = random.Random(20261207)
    bodies = [_random_program(rng) for _ in range(16)]
    src = "".join(f"fn r{k}(x: f64[n], y: f64[n], A: f64[n, n]) -> f64 {{ {b} }}\n"
                  f"fn r{k}_vg = value_and_grad(r{k});\nfn r{k}_vjp = vjp(r{k}, wrt=A);\n"
                  f"fn r{k}_jvp = jvp(r{k}, wrt=x);\n" for k, b in enumerate(bodies))
    m = dad.compile(src, filename="random_bits.dad")
    for k, body in enumerate(bodies):
        f = getattr(m, f"r{k}")
        for n in (1, 7, 13, 64, 101):
            r = np.random.default_rng(n + 17 * k)
            x, y = r.standard_normal(n), r.standard_normal(n)
            A = r.standard_normal((n, n)) / np.sqrt(n)
            want = f(x, y, A)
            got = {"value_and_grad": getattr(m, f"r{k}_vg")(x, y, A)[0],
                   "vjp": getattr(m, f"r{k}_vjp")(x, y, A, 1.0)[0],
                   "jvp": getattr(m, f"r{k}_jvp")(x, y, A, y)[0]}
            for kind, v in got.items():
                assert _same(v, want), f"{kind} at n={n}: {v!r} != {want!r}\n{body}"


# ----------------------------------------------------------------------------- zero partials
# A tangent can be infinite (a partial overflowed upstream) where a later local derivative is
# exactly 0: tanh'(inf), d(x/D)/dD at D = inf, ... Reverse mode multiplies the zero partial
# into a finite adjoint first (0) and then the 0 into the infinite partial (zero-safe: 0);
# forward mode used to multiply the infinite tangent by the zero partial: NaN. The executed
# program's derivative is 0 along such a path in every mode.

ZERO_PARTIAL = {
    "tanh": "tanh(exp(x))", "sigmoid": "sigmoid(exp(x))", "erf": "erf(exp(x))",
    "atan": "atan(exp(x))", "divisor": "x / exp(x)", "remainder": "0.5 % exp(x)",
    "square": "x * x + x / (1.0 + exp(x) * exp(x))",
}


@pytest.mark.parametrize("name", sorted(ZERO_PARTIAL))
def test_zero_partial_times_overflowed_tangent(name):
    """At x = 800 exp(x) = inf and the expression is flat (constant in a neighbourhood, or
    x * x plus a constant): the derivative is 0 or 2x by the finite differences of the plain
    function, and forward, reverse and forward-over-reverse all give it."""
    m = dad.compile(f"fn f(x: f64) -> f64 {{ return {ZERO_PARTIAL[name]}; }}\n"
                    "fn fg = grad(f);\nfn fj = jvp(f);\nfn fh = hvp(f, wrt=x);\n")
    x0 = 800.0
    fd = (m.f(x0 + 0.5) - m.f(x0 - 0.5)) / 1.0      # exact here: the function is flat or x*x
    assert np.isfinite(fd)
    assert m.fg(x0) == fd
    value, jv = m.fj(x0, 1.5)
    assert value == m.f(x0) and jv == 1.5 * fd
    assert np.isfinite(m.fh(x0, 1.0))


def test_overflowed_tangent_through_a_loop_agrees_with_the_gradient():
    """Found by the fuzzer (seed 1000454): u grows until pow(1.5 + u*u, u) overflows, then
    u / (1.5 + inf) = 0 has an infinite tangent of its divisor times a zero partial. jvp was
    NaN where the gradient is finite; now <grad, v> = jvp(v)."""
    src = """
fn g0(x: f64[n], y: f64, k: i64) -> f64[n] { var u = copy(x); let v1 = f32(u[0]);
    return x / (1.5 + pow(1.5 + x * x, x) * pow(1.5 + x * x, x)) + u + f64(v1); }
fn f(x: f64[n], y: f64, k: i64) -> f64 {
    var u = copy(x); for v1 in 2..k * 3 + 9 { u = g0(u, y, v1); } return 0.5 + sum(u); }
fn fvg = value_and_grad(f);
fn fj = jvp(f);
"""
    m = dad.compile(src)
    rng = np.random.default_rng(1000454)
    x = np.array([0.30, -0.72, 0.55, 0.91, -0.13])
    for k in (1, 4):
        value, gx, gy = m.fvg(x, 0.3, k)
        v, w = rng.standard_normal(5), rng.standard_normal()
        value2, jv = m.fj(x, 0.3, k, v, w)
        assert value == value2 == m.f(x, 0.3, k)
        assert np.all(np.isfinite(gx)) and np.isfinite(jv)
        want = gx @ v + gy * w
        assert abs(jv - want) <= 1e-6 * np.sum(np.abs(gx * v)), (k, jv, want)


@pytest.mark.parametrize("fn", ["sin", "cos"])
def test_dead_value_of_an_overflowed_sin_has_zero_derivative(fn):
    """Found by the fuzzer (seed 4006168): `acc` overflows to inf, `u[1] *= sin(acc / d)` is
    NaN but only used on the branch not taken, so the result does not depend on d. The zero
    adjoint of u[1] met cos(inf) = NaN in a plain product: grad was NaN. Every mode gives 0,
    as the finite differences of the plain function do."""
    m = dad.compile(f"""
fn f(x: f64[n], a: f64, d: f64, b: bool) -> f64 {{
    var acc = a / d;
    var u = copy(x);
    u[1] *= {fn}(acc);
    if b {{ return 2.0 * x[0]; }}
    return sum(u);
}}
fn fg = grad(f, wrt=d);
fn fj = jvp(f);
fn fh = hvp(f, wrt=d);
""")
    x = np.array([1.0, 2.0])
    for a in (np.inf, 1e308 * 10):
        fd = (m.f(x, a, 2.5, True) - m.f(x, a, 1.5, True)) / 1.0
        assert fd == 0.0
        assert m.fg(x, a, 2.0, True) == 0.0
        assert m.fj(x, a, 2.0, True, np.zeros(2), 0.0, 1.0)[1] == 0.0
        assert m.fh(x, a, 2.0, True, 1.0) == 0.0
