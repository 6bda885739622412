"""Loops whose bounds lie near the ends of i64: `for i in lb..ub step k` with a large step
runs a few iterations even when `ub - lb` does not fit in i64. The plain call, every
derivative mode and checkpointing must count the same iterations Python's `range` does
(lang/loops.py counts without overflow; the machine loop counts iterations, `unit_steps`).
Oracle: the closed forms of the programs below, with the iteration count from `range`."""
from __future__ import annotations

import numpy as np
import pytest

import dad

S = 2**62
SRC = f"""
fn count(lb: i64, ub: i64) -> i64 {{
    var c = 0;
    for i in lb..ub step {S} {{ c += 1; }}
    return c;
}}
fn power(lb: i64, ub: i64, x: f64) -> f64 {{
    var c = 0;                       # a counter reverse mode recomputes (induction)
    var s = x;
    for i in lb..ub step {S} {{ c += 1; s = s * x; }}
    return s * float(c);
}}
fn carried(lb: i64, ub: i64, x: f64[n]) -> f64 {{
    var u = copy(x);                 # an array carried through the loop
    for i in lb..ub step {S} {{ u = u * x; }}
    return sum(u);
}}
fn power_grad = grad(power, wrt=x);
fn power_grad_ckpt = grad(power, wrt=x, checkpoint=true);
fn power_hvp = hvp(power, wrt=x);
fn power_jvp = jvp(power, wrt=x);
fn carried_grad = grad(carried, wrt=x);
fn carried_grad_ckpt = grad(carried, wrt=x, checkpoint=true);
"""
BOUNDS = [(-2**63, 2**63 - 1), (0, 2**63 - 1), (-2**63, 0), (2**62, 2**63 - 1),
          (2**63 - 10, 2**63 - 1), (-2**63, -2**63 + 1), (0, 10), (5, 5), (10, 0),
          (2**63 - 1, -2**63)]


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SRC, filename="loop_bounds.dad")


@pytest.mark.parametrize("lb,ub", BOUNDS)
def test_iterations_values_and_derivatives(mod, lb, ub):
    c, x = len(range(lb, ub, S)), 1.1
    assert mod.count(lb, ub) == c
    assert mod.power(lb, ub, x) == pytest.approx(c * x ** (c + 1), rel=1e-14)
    d1 = c * (c + 1) * x ** c
    d2 = c * (c + 1) * c * x ** (c - 1) if c else 0.0
    for g in (mod.power_grad, mod.power_grad_ckpt):
        assert g(lb, ub, x) == pytest.approx(d1, rel=1e-14)
    assert mod.power_jvp(lb, ub, x, 1.0)[1] == pytest.approx(d1, rel=1e-14)
    assert mod.power_hvp(lb, ub, x, 1.0) == pytest.approx(d2, rel=1e-14)


@pytest.mark.parametrize("lb,ub", BOUNDS)
def test_an_array_carried_through_such_a_loop(mod, lb, ub):
    c, x = len(range(lb, ub, S)), np.array([1.1, -0.7, 0.4])
    assert mod.carried(lb, ub, x) == pytest.approx(np.sum(x ** (c + 1)), rel=1e-14)
    for g in (mod.carried_grad, mod.carried_grad_ckpt):
        np.testing.assert_allclose(g(lb, ub, x), (c + 1) * x ** c, rtol=1e-14)
