"""Derivatives at the special points LANGUAGE.md fixes ("Derivative semantics at special
points"), one test per rule, through forward mode (`jvp` / `jacobian`); and the golden
output of `dadc emit --stage activity|ad` for a function with an inactive half.

Tangents here are exact values (0, 1, +inf) at the special points, so the checks are `==`.
"""
from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest

import dad
from golden import filecheck

SRC = r"""
fn f_abs(x: f64) -> f64 { return abs(x); }
fn f_abs_d = jvp(f_abs);

fn f_max(a: f64, b: f64) -> f64 { return max(a, b); }
fn f_max_d = jvp(f_max);
fn f_min(a: f64, b: f64) -> f64 { return min(a, b); }
fn f_min_d = jvp(f_min);
fn f_maxv(x: f64[n]) -> f64 { return max(x); }
fn f_maxv_J = jacobian(f_maxv, wrt=x);
fn f_minv(x: f64[n]) -> f64 { return min(x); }
fn f_minv_J = jacobian(f_minv, wrt=x);
fn f_maxe(x: f64[n], y: f64[n]) -> f64[n] { return max(x, y); }
fn f_maxe_d = jvp(f_maxe);

fn f_floor(x: f64) -> f64 { return floor(x) + ceil(2.0 * x) + sign(x - 0.25); }
fn f_floor_d = jvp(f_floor);
fn f_cmp(x: f64) -> f64 {
    let c = x > 0.5;
    var r = 1.0;
    if x * x < 2.0 and not (x == 3.0) { r = 2.0; }
    return select(c, 3.0, 4.0) + r;
}
fn f_cmp_d = jvp(f_cmp);
fn f_int(x: f64) -> f64 {
    let k = int(x * 10.0);
    return float(k * 3 + k / 2 - k % 3 + abs(k) + max(k, 2));
}
fn f_int_d = jvp(f_int);

fn f_sqrt(x: f64) -> f64 { return sqrt(x); }
fn f_sqrt_d = jvp(f_sqrt);
fn f_norm(x: f64[n]) -> f64 { return norm(x); }
fn f_norm_d = jvp(f_norm);
fn f_norm_J = jacobian(f_norm, wrt=x);
fn f_pow(x: f64, y: f64) -> f64 { return pow(x, y); }
fn f_pow_d = jvp(f_pow);
fn f_powop(x: f64, y: f64) -> f64 { return x ** y; }
fn f_powop_d = jvp(f_powop);

fn f_sel(x: f64) -> f64 { return select(x > 0.0, sqrt(x), 0.0); }
fn f_sel_d = jvp(f_sel);
fn f_sel_nan(x: f64) -> f64 { return select(x > 0.0, x * log(x), 2.0 * x); }
fn f_sel_nan_d = jvp(f_sel_nan);
fn f_if(x: f64) -> f64 {
    var r = 0.0;
    if x > 0.0 {
        r = sqrt(x) + log(x);
    } else {
        r = 3.0 * x;
    }
    return r;
}
fn f_if_d = jvp(f_if);
fn f_if_ret(x: f64[n]) -> f64 {
    var a = zeros(n);
    for i in 0..n {
        if x[i] <= 0.0 {
            a[i] = x[i];
            continue;
        }
        a[i] = sqrt(x[i]) * log(x[i]);
    }
    return sum(a);
}
fn f_if_ret_d = jvp(f_if_ret);

fn f_lg(x: f64) -> f64 { return lgamma(x); }
fn f_lg_d = jvp(f_lg, wrt=x);
fn f_lg_dd = jvp(jvp(f_lg, wrt=x), wrt=x);
fn f_dg(x: f64) -> f64 { return digamma(x); }
"""

_mod = {}


def m():
    if "m" not in _mod:
        _mod["m"] = dad.compile(SRC, filename="semantics.dad")
    return _mod["m"]


def test_abs_derivative_at_zero_is_zero():
    assert m().f_abs_d(0.0, 1.0) == (0.0, 0.0)
    assert m().f_abs_d(-0.0, 1.0)[1] == 0.0
    assert m().f_abs_d(-2.0, 1.0)[1] == -1.0 and m().f_abs_d(2.0, 1.0)[1] == 1.0


@pytest.mark.parametrize("fn", ["f_max_d", "f_min_d"])
def test_max_min_ties_split_the_derivative_evenly(fn):
    f = getattr(m(), fn)
    assert f(1.5, 1.5, 1.0, 0.0) == (1.5, 0.5)
    assert f(1.5, 1.5, 0.0, 1.0) == (1.5, 0.5)
    assert f(1.5, 1.5, 0.25, 4.0) == (1.5, 2.125)
    assert f(1.5, 2.5, 0.25, 4.0)[1] == (4.0 if fn == "f_max_d" else 0.25)


def test_elementwise_max_ties_split_the_derivative_evenly():
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 5.0, 0.0])
    _, d = m().f_maxe_d(x, y, np.array([10.0, 10.0, 10.0]), np.array([20.0, 20.0, 20.0]))
    np.testing.assert_array_equal(d, [15.0, 20.0, 10.0])


def test_reduction_max_min_split_the_derivative_among_tied_extreme_elements():
    x = np.array([1.0, 3.0, -2.0, 3.0, -2.0])
    np.testing.assert_array_equal(m().f_maxv_J(x), [0.0, 0.5, 0.0, 0.5, 0.0])
    np.testing.assert_array_equal(m().f_minv_J(x), [0.0, 0.0, 0.5, 0.0, 0.5])
    np.testing.assert_array_equal(m().f_maxv_J(np.full(4, 7.0)), [0.25, 0.25, 0.25, 0.25])
    np.testing.assert_array_equal(m().f_maxv_J(np.array([1.0, 3.0, 2.0])), [0.0, 1.0, 0.0])


@pytest.mark.parametrize("x", [0.0, 0.25, 0.5, 1.0, -1.5, 0.7])
def test_floor_ceil_sign_have_zero_derivative(x):
    """Also exactly at their jumps (0.5 and 1.0 for ceil(2x)/floor, 0.25 for sign)."""
    y, d = m().f_floor_d(x, 1.0)
    assert d == 0.0 and not math.isnan(d)


@pytest.mark.parametrize("x", [0.5, 0.2, 3.0, -2.0])
def test_comparisons_have_zero_derivative(x):
    assert m().f_cmp_d(x, 1.0)[1] == 0.0


@pytest.mark.parametrize("x", [0.31, -0.77, 1.0])
def test_integer_arithmetic_has_zero_derivative(x):
    assert m().f_int_d(x, 1.0)[1] == 0.0


def test_sqrt_derivative_at_zero_is_plus_inf():
    y, d = m().f_sqrt_d(0.0, 1.0)
    assert y == 0.0 and d == math.inf
    assert m().f_sqrt_d(0.0, 0.0)[1] == 0.0  # a zero tangent stays exactly zero


def test_norm_has_zero_derivative_at_zero():
    y, d = m().f_norm_d(np.zeros(3), np.array([1.0, -2.0, 3.0]))
    assert y == 0.0 and d == 0.0
    J = dad.runtime.transforms.derive_kernel(m().f_norm, "jacobian", wrt="x", mode="forward")
    np.testing.assert_array_equal(J(np.zeros(3)), [0.0, 0.0, 0.0])


def test_norm_jacobian_at_zero_auto_mode_reverse():
    np.testing.assert_array_equal(m().f_norm_J(np.zeros(3)), [0.0, 0.0, 0.0])


@pytest.mark.parametrize("fn", ["f_pow_d", "f_powop_d"])
@pytest.mark.parametrize("y", [2.0, 0.5, 3.0])
def test_pow_at_zero_base_has_zero_derivative_in_exponent(fn, y):
    f = getattr(m(), fn)
    assert f(0.0, y, 0.0, 1.0)[1] == 0.0
    # and the usual one in x: y x^(y-1) at 0 is 0 for y > 1
    if y > 1.0:
        assert f(0.0, y, 1.0, 0.0)[1] == 0.0


def test_select_untaken_branch_does_not_poison_tangent():
    """select(x > 0, sqrt(x), 0.0) at x = 0: sqrt'(0) = inf only in the branch not chosen."""
    assert m().f_sel_d(0.0, 1.0) == (0.0, 0.0)
    # x log x at 0 is 0 * -inf = NaN (and its tangent NaN) in the branch not taken
    y, d = m().f_sel_nan_d(0.0, 1.0)
    assert y == 0.0 and d == 2.0


@pytest.mark.parametrize("x,expect", [(0.0, 3.0), (-1.0, 3.0), (4.0, 0.25 + 0.25)])
def test_if_untaken_branch_with_inf_derivative(x, expect):
    """At x = 0 the `then` branch would give sqrt'(0) + log'(0) = inf + inf; not taken."""
    y, d = m().f_if_d(x, 1.0)
    assert d == expect


def test_if_with_continue_skips_nan_branch():
    x = np.array([0.0, -1.0, 1.0, 4.0])
    _, d = m().f_if_ret_d(x, np.ones(4))
    # d/dx sqrt(x) log(x) = log(x) / (2 sqrt x) + 1 / sqrt(x): 1 at x = 1; (log 4)/4 + 1/2 at 4
    assert d == pytest.approx(1.0 + 1.0 + 1.0 + (math.log(4.0) / 4 + 0.5), rel=1e-15)


@pytest.mark.parametrize("x", [0.3, 1.0, 2.5, 7.0])
def test_lgamma_second_order_is_trigamma(x):
    """jvp(jvp(lgamma)) = trigamma, checked against central differences of digamma
    (h = 1e-5: truncation h²/6 |ψ'''| <= 2e-10 · 60 at x = 0.3, rounding 1e-16 · |ψ| / h
    ≈ 1e-10): rtol 1e-7."""
    y, d1, _, d2 = m().f_lg_dd(x, 1.0, 1.0)
    assert y == pytest.approx(math.lgamma(x), rel=1e-14)
    assert d1 == m().f_dg(x)  # first order: digamma
    h = 1e-5
    fd = (m().f_dg(x + h) - m().f_dg(x - h)) / (2 * h)
    assert d2 == pytest.approx(fd, rel=1e-7)
    assert d2 > 0


def test_lgamma_third_order_is_a_compile_error():
    src = SRC + "fn f_lg3 = jvp(jvp(jvp(f_lg, wrt=x), wrt=x), wrt=x);\n"
    with pytest.raises(dad.CompileError) as info:
        dad.compile(src, filename="third.dad")
    msg = str(info.value)
    line = src.count("\n", 0, src.index("fn f_lg3")) + 1
    assert f"third.dad:{line}:" in msg and "error:" in msg
    assert "lgamma" in msg and "second order" in msg
    assert "Traceback" not in msg


def test_lgamma_third_order_from_python_is_an_ad_error():
    with pytest.raises(dad.ADError, match="lgamma.*second order"):
        dad.jvp(m().f_lg_dd, wrt="x")


# ----------------------------------------------------------------------------- dadc emit
HALF = """\
fn two_sums(x: f64[n], scale: f64) -> (f64, f64) {
    var s = 0.0;
    var t = 0.0;
    for i in 0..n {
        s += x[i] * x[i];
        t += scale * float(i);
    }
    return (s, t);
}
fn two_sums_d = jvp(two_sums, wrt=x);
"""


def _dadc(tmp_path, *args) -> str:
    path = tmp_path / "half.dad"
    path.write_text(HALF)
    r = subprocess.run([sys.executable, "-m", "dad.cli", "emit", *args, str(path), "-f", "two_sums_d"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_emit_activity_lists_reasons(tmp_path):
    out = _dadc(tmp_path, "--stage", "activity")
    filecheck(out, """
        CHECK: activity of @two_sums with respect to x:
        CHECK: x     : active
        CHECK: scale : inactive (not varied by x)
        CHECK: n     : inactive (integer)
        CHECK: s     : active
        CHECK: t     : inactive (not varied by x)
        CHECK: i     : inactive (integer)
    """)


def test_emit_ad_has_no_tangent_code_for_inactive_half(tmp_path):
    out = _dadc(tmp_path, "--stage", "ad")
    filecheck(out, """
        CHECK-LABEL: func.func @two_sums_d(%x: memref<?xf64>, %scale: f64, %x_dot: memref<?xf64>)
        CHECK: %s.dot = scf.for
        CHECK: memref.load %x_dot
        CHECK: %s.dot_2 = arith.addf %s.dot_1
        CHECK: arith.mulf %scale
        CHECK-NEXT: %t_2 = arith.addf
        CHECK-NEXT: scf.yield
        CHECK: func.return %s_1, %t, %s.dot,
    """)
    tangents = set(re.findall(r"%[\w.]*dot[\w.]*", out))
    assert tangents == {"%x_dot", "%s.dot", "%s.dot_1", "%s.dot_2"}, tangents
    # the whole t accumulation is 3 primal ops (sitofp, mulf, addf); the tangent of the
    # second result is a constant zero
    body = out.split("scf.yield")[0]
    assert body.count("arith.mulf") == 2  # x*x and scale*float(i)
    assert body.count("dad.mulz") == 2    # the two (zero-safe) tangent products of x*x
