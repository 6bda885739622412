"""Reverse mode at run time: the tape belongs to one call. Concurrent calls of one gradient
kernel do not share it, a run-time error in the middle of a recording loop leaves nothing
behind, and a long recording run frees its tape when it returns.

Memory is read as resident set size (RSS) from /proc/self/statm (Linux only; skipped
elsewhere). Allocators keep freed pages, so a bound is "no growth proportional to the work":
leaking a tape of k values per call over N calls is 8 k N bytes, far above the slack.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import dad
import dad.lowering.tape as tape

HAVE_STATM = os.path.exists("/proc/self/statm")

SRC = r"""
# every iteration records (the carried p and the loaded x[i] are read by the adjoint)
fn prod_sin(x: f64[n], reps: i64) -> f64 {
    var p = 1.0;
    for r in 0..reps {
        for i in 0..n {
            p = p * (1.0 + 0.01 * sin(x[i] * p));
        }
    }
    return p;
}
fn prod_sin_g = grad(prod_sin);

# an IndexError inside a recording loop once i reaches `bad`
fn fails_at(x: f64[n], bad: i64) -> f64 {
    var p = 1.0;
    for i in 0..n {
        let k = select(i == bad, n + 5, i);
        p = p * exp(0.1 * x[k]) + sin(p);
    }
    return p;
}
fn fails_at_g = grad(fails_at, wrt=x);
"""


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SRC, filename="runtime.dad")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_concurrent_calls_have_their_own_tapes(mod):
    """The same gradient kernel called from 4 threads at once, on different inputs, gives
    exactly the sequential results (a shared tape would interleave the records)."""
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(-1, 1, 2000 + 37 * k) for k in range(16)]
    g = mod.prod_sin_g
    expect = [g(x, 20) for x in inputs]

    def run(x):
        return g(x, 20)

    for _ in range(3):
        with ThreadPoolExecutor(max_workers=4) as ex:
            got = list(ex.map(run, inputs))
        for e, r in zip(expect, got):
            np.testing.assert_array_equal(r, e)
    # and from Python's dad.grad (a separately derived kernel)
    gp = dad.grad(mod.prod_sin, wrt="x")
    with ThreadPoolExecutor(max_workers=4) as ex:
        got = list(ex.map(lambda x: gp(x, 20), inputs))
    for e, r in zip(expect, got):
        np.testing.assert_array_equal(r, e)


def test_error_inside_a_recording_loop_then_a_good_call(mod):
    x = np.linspace(-1, 1, 50)
    good = mod.fails_at_g(x, -1)
    with pytest.raises(IndexError):
        mod.fails_at_g(x, 30)
    np.testing.assert_array_equal(mod.fails_at_g(x, -1), good)
    h = 1e-6  # central differences, see tests/test_ad_reverse.py
    e = np.zeros(50)
    e[7] = h
    fd = (mod.fails_at(x + e, -1) - mod.fails_at(x - e, -1)) / (2 * h)
    assert good[7] == pytest.approx(fd, rel=1e-6, abs=1e-8)


@pytest.mark.skipif(not HAVE_STATM, reason="needs /proc/self/statm")
def test_failing_calls_do_not_leak_their_tapes(mod):
    """2000 calls that each record ~9 000 iterations (2 values each, ~150 kB of tape) and
    then fail: leaking the tapes would be ~300 MB; allow 30 MB of allocator slack."""
    x = np.linspace(-1, 1, 10_000)
    for _ in range(50):  # warm up the allocator and the error path
        with pytest.raises(IndexError):
            mod.fails_at_g(x, 9_000)
    before = rss_bytes()
    for _ in range(2000):
        with pytest.raises(IndexError):
            mod.fails_at_g(x, 9_000)
    grown = rss_bytes() - before
    assert grown < 30 * 2**20, f"RSS grew by {grown / 2**20:.1f} MB over 2000 failing calls"
    assert np.all(np.isfinite(mod.fails_at_g(x, -1)))


_BIG = textwrap.dedent(r"""
    import json, os, resource, sys, time
    import numpy as np
    import dad
    import dad.lowering.tape as tape
    tape.CACHE_MAX = int(sys.argv[1])  # tapes above this many bytes are freed, not kept

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    m = dad.compile('''
    fn long_prod(x: f64[n], iters: i64) -> f64 {
        var p = 1.0;
        for i in 0..iters {
            p = p * (1.0 + 1e-9 * x[i % n]);
        }
        return p;
    }
    fn long_exp(x: f64[n], iters: i64) -> f64 {
        var s = 0.0;
        for i in 0..iters {
            s += exp(x[i % n] * 1e-7 * s);
        }
        return s;
    }
    fn long_prod_g = grad(long_prod, wrt=x);
    fn long_exp_g = grad(long_exp, wrt=x);
    ''', filename="big.dad")
    n, iters = 1000, 10_000_000
    x = np.linspace(-1.0, 1.0, n)
    out = {}
    for name in ("long_prod_g", "long_exp_g"):
        f = getattr(m, name)
        f(x, 1000)  # warm up
        before = rss()
        t0 = time.perf_counter()
        g = f(x, iters)
        out[name] = {"seconds": time.perf_counter() - t0, "rss_before": before,
                     "rss_after": rss(), "finite": bool(np.all(np.isfinite(g))),
                     "g0": float(g[0]), "gsum": float(np.sum(g))}
        f(x, iters)  # again: served by the kept tape, if one was kept
        out[name]["rss_again"] = rss()
    out["maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    p = m.long_prod(x, iters)
    out["p"] = p
    print(json.dumps(out))
""")


def _run_big(cache_max: int) -> dict:
    env = dict(os.environ, DAD_NO_CACHE="1")  # CACHE_MAX is read when the module is lowered
    r = subprocess.run([sys.executable, "-c", _BIG, str(cache_max)], capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    import json
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not HAVE_STATM, reason="needs /proc/self/statm")
def test_ten_million_recorded_iterations_free_their_tape():
    """10**7 iterations that each record a value, with tapes of that size above the module's
    cache bound: the run finishes, the peak RSS shows the tape was really there (>= 8 bytes
    per iteration), and after the call RSS is back within a few MB of where it was (a kept
    tape would be >= 80 MB)."""
    out = _run_big(0)
    n, iters = 1000, 10_000_000
    for name in ("long_prod_g", "long_exp_g"):
        o = out[name]
        assert o["finite"], o
        for key in ("rss_after", "rss_again"):
            grown = o[key] - o["rss_before"]
            assert grown < 16 * 2**20, f"{name}: RSS {grown / 2**20:.1f} MB higher ({key})"
    assert out["maxrss"] >= out["long_prod_g"]["rss_before"] + 8 * iters * 0.9, \
        "peak RSS does not show a tape of one f64 per iteration"
    # d p / d x_j = p * sum over the iterations reading x_j of 1e-9 / (1 + 1e-9 x_j)
    p = out["p"]
    x0 = -1.0
    expect0 = p * (iters // n) * 1e-9 / (1 + 1e-9 * x0)
    assert out["long_prod_g"]["g0"] == pytest.approx(expect0, rel=1e-9)
    assert out["long_prod_g"]["gsum"] == pytest.approx(p * iters * 1e-9, rel=1e-6)


@pytest.mark.skipif(not HAVE_STATM, reason="needs /proc/self/statm")
def test_a_kept_tape_serves_the_next_call_and_nothing_leaks():
    """With the default bound (80 MB fits), the module keeps one tape: RSS after the first
    call is at most that tape (plus slack) above where it was, and the second call, served
    by it, adds nothing; the results are those of the freeing build."""
    kept, freed = _run_big(tape.CACHE_MAX), _run_big(0)
    iters = 10_000_000
    for name in ("long_prod_g", "long_exp_g"):
        o = kept[name]
        assert o["rss_after"] - o["rss_before"] < 8 * iters * 1.7 + 16 * 2**20, o
        assert o["rss_again"] - o["rss_after"] < 16 * 2**20, o
        assert o["g0"] == freed[name]["g0"] and o["gsum"] == freed[name]["gsum"]
