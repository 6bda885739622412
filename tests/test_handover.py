"""Large array results are handed over by the compiled call instead of being copied."""
import ctypes
import gc

import numpy as np
import pytest

import dad
from dad.runtime.kernel import HANDOVER_BYTES

N = HANDOVER_BYTES // 8 * 2  # comfortably above the hand-over size

SOURCE = """
fn scaled(x: f64[n], a: f64) -> f64[n] { return x * a; }
fn pair(x: f64[n]) -> (f64[n], f64, f64[n]) { let y = x * 2.0; return (y, sum(x), y); }
fn bad(x: f64[n], k: i64) -> f64[n] { let y = x * 2.0; let z = y[k]; return y * z; }
fn d(a: f64[n], b: f64[n]) -> f64 { return dot(a, b); }
fn g = grad(d, wrt=a);
"""


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SOURCE, filename="handover.dad")


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def test_large_results_are_correct_writeable_and_independent(mod):
    x = np.random.default_rng(0).normal(size=N)
    y = mod.scaled(x, 3.0)
    np.testing.assert_array_equal(y, x * 3.0)
    y[0] = 42.0  # ours to write
    z = mod.scaled(x, 3.0)
    assert z[0] == x[0] * 3.0 and y.ctypes.data != z.ctypes.data


def test_the_same_array_returned_twice_gives_two_arrays(mod):
    x = np.random.default_rng(1).normal(size=N)
    y1, s, y2 = mod.pair(x)
    np.testing.assert_array_equal(y1, 2.0 * x)
    np.testing.assert_array_equal(y2, 2.0 * x)
    assert s == pytest.approx(x.sum(), rel=1e-12)
    y1[0] = 7.0
    assert y2[0] == 2.0 * x[0]


def test_out_still_writes_into_the_given_buffer(mod):
    x = np.arange(float(N))
    buf = np.empty(N)
    assert mod.scaled(x, 2.0, out=buf) is buf
    np.testing.assert_array_equal(buf, 2.0 * x)


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc")
def test_handed_over_memory_is_freed_with_the_array(mod):
    a, b = np.ones(N), np.ones(N)
    for _ in range(50):
        mod.g(a, b)
    before = _rss()
    for _ in range(2000):  # 2000 x 512 kB = 1 GB if nothing were freed
        mod.g(a, b)
    gc.collect()
    assert _rss() - before < 50e6


def test_an_error_hands_nothing_over_and_leaks_nothing(mod):
    x = np.ones(N)
    with pytest.raises(IndexError, match=r"handover\.dad:4:"):
        mod.bad(x, N + 5)
    before = _rss()
    for _ in range(500):
        with pytest.raises(IndexError):
            mod.bad(x, -1)
    assert _rss() - before < 50e6
    np.testing.assert_array_equal(mod.bad(x, 0), np.full(N, 4.0))


def test_a_c_caller_passing_no_buffer_without_asking_gets_an_error(mod):
    x = np.ones(N)
    err = (ctypes.c_int64 * 3)()
    status = mod.scaled._centry(x.ctypes.data, N, 2.0, None, err)
    assert status != 0 and err[0] == status
    assert mod.scaled(x, 2.0)[0] == 2.0  # and the next call is normal
