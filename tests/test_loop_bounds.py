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


WRAP = """
fn shifted(x: f64[n], off: i64) -> f64 {
    var s = 0.0;
    for i in 0..2 {
        s += x[i + off];
    }
    return s;
}
fn from_lo(x: f64[n], lo: i64, hi: i64) -> f64 {
    var s = 0.0;
    for i in lo..hi {
        s = sin(s) + x[i - lo];
    }
    return s;
}
fn from_lo_grad = grad(from_lo, wrt=x);
"""


def test_an_index_that_wraps_around_is_still_checked():
    """`x[i + off]` with off = 2^63 - 1: the index at the loop's first iteration is out of
    range, and at its last it wraps to -2^63 + ...; version_checks once let the unchecked copy
    run (both end values looked fine) and read out of bounds. Found writing golden files."""
    m = dad.compile(WRAP, filename="wrap.dad")
    x = np.arange(1.0, 11.0)
    assert m.shifted(x, 8) == 19.0
    for off in (9, 2**63 - 1, 2**63 - 2, -2**63):
        with pytest.raises(IndexError):
            m.shifted(x, off)


def test_a_loop_longer_than_i64_that_ends_in_an_error_is_not_a_crash():
    """`for i in -2^63..1` has 2^63 + 1 iterations; here it ends at the sixth with an
    IndexError. Its gradient's records were once given room for 0 iterations (the count
    `ub - lb` wrapped) and written past it (a segfault); the count now saturates, so the room
    is refused: MemoryError, as lang/loops.py says."""
    m = dad.compile(WRAP, filename="wrap.dad")
    x = np.arange(1.0, 6.0)
    with pytest.raises(IndexError):
        m.from_lo(x, -2**63, 1)
    with pytest.raises((IndexError, MemoryError)):
        m.from_lo_grad(x, -2**63, 1)
    np.testing.assert_allclose(m.from_lo_grad(x, 3, 7), [
        np.cos(np.sin(np.sin(x[0]) + x[1]) + x[2]) * np.cos(np.sin(x[0]) + x[1]) * np.cos(x[0]),
        np.cos(np.sin(np.sin(x[0]) + x[1]) + x[2]) * np.cos(np.sin(x[0]) + x[1]),
        np.cos(np.sin(np.sin(x[0]) + x[1]) + x[2]), 1.0, 0.0], rtol=1e-14)


EDGES = """
fn step2(x: f64[n], a: i64, b: i64) -> f64 {
    var s = 0.0;
    for i in a..b step 2 { s += x[i]; }
    return s;
}
fn counted(x: f64[n], a: i64, b: i64) -> f64 {
    var c = 0;
    var s = 0.0;
    for i in a..b { c += 1; s += x[0] * x[0]; }
    return s + float(c);
}
fn counted_vg = value_and_grad(counted, wrt=x);
fn chaotic(x: f64[n], a: i64, b: i64) -> f64 {
    var s = 0.5;
    for i in a..b { s = s * sin(s) + x[i]; }
    return s;
}
fn chaotic_ckpt = grad(chaotic, wrt=x, checkpoint=true);
"""


def test_counts_at_the_very_ends_of_i64():
    """Found by review: (1) step 2 over the whole of i64 is 2^63 iterations, one more than
    fits: the count wrapped to 0 and the loop ran none (no IndexError at x[-2^63]); (2) with
    lb > ub but ub - lb wrapping to +1, the count said 1 and the gradient ran an iteration
    the loop never runs; (3) the checkpoint segment count wrapped for a count near 2^63 and
    the checkpointed gradient returned zeros instead of the loop's IndexError."""
    m = dad.compile(EDGES, filename="edges.dad")
    x = np.array([1.5, -2.0, 0.5, 3.0])
    lo, hi = -2**63, 2**63 - 1
    with pytest.raises(IndexError):
        m.step2(x, lo, hi)
    assert m.step2(x, 0, 4) == 2.0
    assert m.counted(x, hi, lo) == 0.0
    v, g = m.counted_vg(x, hi, lo)
    assert v == 0.0 and np.array_equal(g, np.zeros(4))
    v, g = m.counted_vg(x, 3, 6)
    assert v == 3 * 2.25 + 3 and np.array_equal(g, [9.0, 0.0, 0.0, 0.0])
    for a, b in ((0, hi), (-5, hi), (lo, 2)):
        with pytest.raises((IndexError, MemoryError)):
            m.chaotic_ckpt(x, a, b)
