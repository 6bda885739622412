"""induction end to end: counters stepped beside a loop index (`idx += 1`, `j -= c`, in
loops with any step, that run no iteration, or whose counter wraps) give the values plain
Python integer arithmetic gives; the derivative of a program that indexes an array by such a
counter (the triangular Q x of a Gaussian mixture) matches finite differences, and its
reverse sweep no longer records the counter per iteration: reverse mode differentiates a
copy of the function with the pass applied (ad/policy.py `prepared`). tests/ir/induction/
holds the golden IR of the pass itself."""
from __future__ import annotations

import numpy as np
import pytest

import dad
from dad.cli import main
from dad.frontend import compile_to_ir
from dad.lang.ops import isa, SCF_FOR
from dad.lang.passes import PassManager, dce, induction, pipeline

SRC = """
fn counters(lo: i64, n: i64, c: i64, j0: i64) -> (i64, i64, i64, i64) {
    var up = j0;
    var down = j0;
    var by3 = j0;
    var seen = 0;
    for b in lo..n {
        seen += up * 7 + down;   # reads the counters inside the loop
        up += 1;
        down -= c;
    }
    for b in lo..n step 3 {
        seen += by3;
        by3 += c;
    }
    return (up, down, by3, seen);
}

fn qx(icf: f64[t], v: f64[d]) -> f64[d] {
    var out = exp(icf[0..d]) * v;
    var idx = d;
    for a in 0..d {
        for b in a + 1..d {
            out[b] += icf[idx] * v[a];
            idx += 1;
        }
    }
    return out;
}
fn loss(icf: f64[t], v: f64[d]) -> f64 { let q = qx(icf, v); return dot(q, q); }
fn loss_grad = grad(loss);
"""

WRAP = 2 ** 64


def _wrap(x: int) -> int:
    x %= WRAP
    return x - WRAP if x >= 2 ** 63 else x


def counters_reference(lo, n, c, j0):
    up = down = by3 = j0
    seen = 0
    for _ in range(lo, n):
        seen = _wrap(seen + _wrap(up * 7) + down)
        up, down = _wrap(up + 1), _wrap(down - c)
    for _ in range(lo, n, 3):
        seen = _wrap(seen + by3)
        by3 = _wrap(by3 + c)
    return up, down, by3, seen


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SRC, filename="induction.dad")


@pytest.mark.parametrize("lo, n, c, j0", [
    (0, 10, 3, 5), (2, 11, 3, -4), (7, 7, 2, 1), (9, 3, 5, 0), (-5, 6, -2, 100),
    (0, 1, 1, 0), (0, 2, 2 ** 62, 2 ** 63 - 3),    # wraps: two's complement, as repeated adds
])
def test_counters_match_python(mod, lo, n, c, j0):
    assert mod.counters(lo, n, c, j0) == counters_reference(lo, n, c, j0)


def _triangular(icf, v):
    d = len(v)
    L = np.diag(np.exp(icf[:d]))
    idx = d
    for a in range(d):
        for b in range(a + 1, d):
            L[b, a] = icf[idx]
            idx += 1
    return L @ v


@pytest.mark.parametrize("d", [1, 2, 5])
def test_triangular_gradient_matches_finite_differences(mod, d):
    rng = np.random.default_rng(d)
    t = d * (d + 1) // 2
    icf, v = rng.normal(size=t) * 0.5, rng.normal(size=d)
    q = _triangular(icf, v)
    assert mod.loss(icf, v) == pytest.approx(q @ q, rel=1e-13)
    g_icf, g_v = mod.loss_grad(icf, v)
    h = 1e-6
    for x, g, which in ((icf, g_icf, 0), (v, g_v, 1)):
        for k in range(len(x)):
            e = np.zeros_like(x)
            e[k] = h
            args_p = [icf + e, v] if which == 0 else [icf, v + e]
            args_m = [icf - e, v] if which == 0 else [icf, v - e]
            fd = (mod.loss(*args_p) - mod.loss(*args_m)) / (2 * h)
            assert abs(g[k] - fd) <= 1e-6 * (1 + abs(fd)), (which, k, g[k], fd)


def test_counter_is_not_carried_by_the_inner_loop(tmp_path, capsys):
    m = compile_to_ir(SRC, "induction.dad")
    PassManager(pipeline("default") + [induction, dce], verify=True).run(m)
    line = SRC.splitlines().index("        for b in a + 1..d {") + 1
    inner = [op for op in m["qx"].walk()
             if isa(op, SCF_FOR) and op.attrs.get("loc", "").endswith(f":{line}:9")]
    assert len(inner) == 1 and not inner[0].results, "the loop over b still carries idx"
    # and so reverse mode records nothing per iteration of it
    path = tmp_path / "induction.dad"
    path.write_text(SRC)
    assert main(["emit", "--stage", "tape", str(path), "-f", "loss_grad"]) == 0
    tape = capsys.readouterr().out
    [line] = [ln for ln in tape.splitlines() if "loop for b" in ln]
    assert "idx" not in line, tape


def test_recursive_function_whose_body_carries_an_integer():
    """Found by the fuzzer: reverse mode differentiates a copy of a function with a loop
    carrying an integer (`max(x)` keeps the index of the maximum); the split adjoint of a
    recursive function must read the copy's parameters, not the original's."""
    src = """
fn r(x: f64[n], y: f64, d: i64) -> f64 {
    if d <= 0 { return 0.5; }
    return r(x, 0.9 * sin(y), d - 1) * max(x);
}
fn f(x: f64[n], y: f64, k: i64) -> f64 { return 0.5 - r(x, y, min(max(k, 0), 3)); }
fn g = grad(f, wrt=x);
fn jg = jvp(grad(f, wrt=x), wrt=x);
"""
    m = dad.compile(src, filename="rec.dad")
    x, y = np.array([0.3, 1.7, -0.4]), 0.8
    # f = 0.5 - 0.5 * max(x)^3 for k >= 3: gradient -1.5 max(x)^2 at the argmax, 0 elsewhere
    want = np.array([0.0, -1.5 * 1.7 ** 2, 0.0])
    np.testing.assert_allclose(m.g(x, y, 5), want, rtol=1e-14)
    v = np.array([0.2, -1.0, 0.5])
    _, tangent = m.jg(x, y, 5, v)   # (gradient, its tangent)
    # the second derivative: -3 max(x) v[argmax] at the argmax
    np.testing.assert_allclose(tangent, np.array([0.0, -3.0 * 1.7 * -1.0, 0.0]), rtol=1e-14)
