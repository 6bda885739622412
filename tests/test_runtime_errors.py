"""Errors inside compiled code come back as Python exceptions naming the source line, the
process never crashes, nothing leaks, and the next call works normally."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dad

# Line numbers matter: the tests below assert them. Line 1 is the comment.
SRC = """\
# runtime errors
fn get(x: f64[n], i: i64) -> f64 {
    return x[i];
}
fn get2(A: f64[m, n], i: i64, j: i64) -> f64 {
    return A[i, j];
}
fn put(n: i64, i: i64) -> f64[3] {
    var a = zeros(3);
    a[i] = 1.0;
    return a;
}
fn idiv(a: i64, b: i64) -> i64 {
    return a / b;
}
fn imod(a: i64, b: i64) -> i64 {
    return a % b;
}
fn make(k: i64) -> f64 {
    let z = zeros(k);
    return sum(z) + float(k);
}
fn make2(k: i64, m: i64) -> f64 {
    let z = zeros(k, m);
    return sum(z[0]);
}
fn deep(x: f64[n], i: i64) -> f64 {
    let scratch = ones(n);
    return dot(scratch, x) + get(x, i);
}
fn loop_read(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n + 1 {
        s += x[i];
    }
    return s;
}
fn window(x: f64[n], a: i64, b: i64) -> f64 {
    return sum(x[a..b]);
}
fn row_of(A: f64[m, n], i: i64) -> f64 {
    return sum(A[i]);
}
fn scaled_copy(x: f64[n], i: i64) -> f64[n] {
    var y = x * 2.0;
    y[i] = 0.0;
    return y;
}
"""
FILE = "errs.dad"


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SRC, filename=FILE)


def _line_of(text: str) -> int:
    """The 1-based line of SRC holding `text` (so the tests survive edits of SRC)."""
    hits = [k for k, ln in enumerate(SRC.splitlines(), 1) if text in ln]
    assert len(hits) == 1, text
    return hits[0]


def _assert_names_line(exc, text):
    assert f"{FILE}:{_line_of(text)}" in str(exc.value), str(exc.value)


# ---------------------------------------------------------------------------------------
# IndexError
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("i", [3, 4, 100, -1, -3, 2**62, -(2**63)])
def test_read_out_of_range(mod, i):
    x = np.arange(3.0)
    with pytest.raises(IndexError) as info:
        mod.get(x, i)
    _assert_names_line(info, "return x[i];")
    assert mod.get(x, 2) == 2.0  # and the next call works


@pytest.mark.parametrize("i,j", [(2, 0), (0, 3), (-1, 0), (0, -1), (5, 5)])
def test_2d_read_out_of_range(mod, i, j):
    A = np.arange(6.0).reshape(2, 3)
    with pytest.raises(IndexError) as info:
        mod.get2(A, i, j)
    _assert_names_line(info, "return A[i, j];")
    assert mod.get2(A, 1, 2) == 5.0


def test_2d_index_is_checked_per_dimension(mod):
    # (0, 3) is inside the 6 elements of a 2x3 array but outside its row: still an error.
    A = np.arange(6.0).reshape(2, 3)
    with pytest.raises(IndexError):
        mod.get2(A, 0, 3)


@pytest.mark.parametrize("i", [3, -1])
def test_write_out_of_range(mod, i):
    with pytest.raises(IndexError) as info:
        mod.put(0, i)
    _assert_names_line(info, "a[i] = 1.0;")
    assert mod.put(0, 1).tolist() == [0.0, 1.0, 0.0]


def test_error_in_called_function_names_its_line(mod):
    x = np.arange(4.0)
    with pytest.raises(IndexError) as info:
        mod.deep(x, 4)
    _assert_names_line(info, "return x[i];")
    assert mod.deep(x, 3) == 6.0 + 3.0


def test_error_in_last_loop_iteration(mod):
    with pytest.raises(IndexError) as info:
        mod.loop_read(np.arange(5.0))
    _assert_names_line(info, "s += x[i];")


def test_full_slice_is_fine(mod):
    x = np.arange(5.0)
    assert mod.window(x, 0, 5) == 10.0
    assert mod.window(x, 2, 2) == 0.0  # empty


@pytest.mark.parametrize("a,b", [(-1, 2), (2, 6), (6, 7), (-3, -1)])
def test_slice_out_of_range(mod, a, b):
    x = np.arange(5.0)
    with pytest.raises(IndexError) as info:
        mod.window(x, a, b)
    _assert_names_line(info, "return sum(x[a..b]);")
    assert mod.window(x, 1, 3) == 3.0


def test_reversed_slice_is_empty_or_an_index_error(mod):
    # x[3..1]: LANGUAGE.md does not say; an empty slice (like Python) or an IndexError
    # naming the line are both sensible, garbage or a crash are not.
    try:
        assert mod.window(np.arange(5.0), 3, 1) == 0.0
    except IndexError as e:
        assert f"{FILE}:{_line_of('sum(x[a..b])')}" in str(e)


@pytest.mark.parametrize("i", [2, -1])
def test_row_out_of_range(mod, i):
    with pytest.raises(IndexError) as info:
        mod.row_of(np.ones((2, 3)), i)
    _assert_names_line(info, "return sum(A[i]);")


def test_error_after_allocating_result_does_not_leak_or_corrupt(mod):
    x = np.arange(1000.0)
    for _ in range(100):
        with pytest.raises(IndexError):
            mod.scaled_copy(x, 1000)
    r = mod.scaled_copy(x, 0)
    assert r[0] == 0.0 and r[1] == 2.0 and r[-1] == 1998.0


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
def test_repeated_errors_do_not_leak(mod):
    """Each failing call has allocated 8 KB (`y = x * 2.0`) before it raises."""
    x = np.arange(1000.0)
    for _ in range(2000):
        with pytest.raises(IndexError):
            mod.scaled_copy(x, -1)
    before = _rss_bytes()
    for _ in range(20000):  # 160 MB if every temporary leaked
        try:
            mod.scaled_copy(x, -1)
        except IndexError:
            pass
    grown = _rss_bytes() - before
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MB"


# ---------------------------------------------------------------------------------------
# ZeroDivisionError
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("a", [7, 0, -7])
def test_integer_division_by_zero(mod, a):
    with pytest.raises(ZeroDivisionError) as info:
        mod.idiv(a, 0)
    _assert_names_line(info, "return a / b;")
    with pytest.raises(ZeroDivisionError) as info:
        mod.imod(a, 0)
    _assert_names_line(info, "return a % b;")
    assert mod.idiv(7, -2) == -4 and mod.imod(7, -2) == -1


def test_most_negative_integer_divided_by_minus_one_does_not_crash(tmp_path):
    # -2**63 / -1 overflows i64: x86's idiv traps (SIGFPE) if emitted naively, so this runs
    # in a fresh interpreter. The IR wraps integer overflow; a wrapped quotient, the
    # remainder 0, or a Python exception are all accepted -- a dead process is not.
    script = textwrap.dedent(f"""
        import dad
        m = dad.compile({SRC!r}, filename={FILE!r})
        for f, ok in ((m.idiv, (-(2**63), 2**63 - 1)), (m.imod, (0,))):
            try:
                r = f(-(2**63), -1)
                assert r in ok, r
            except (OverflowError, ZeroDivisionError, ValueError):
                pass
        print("survived")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "survived" in r.stdout


def test_float_division_by_zero_is_ieee():
    m = dad.compile("fn f(a: f64, b: f64) -> f64 { return a / b; }")
    assert m.f(1.0, 0.0) == float("inf")
    assert m.f(-1.0, 0.0) == float("-inf")
    assert np.isnan(m.f(0.0, 0.0))


# ---------------------------------------------------------------------------------------
# Allocation: ValueError and MemoryError
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [-1, -(2**40)])
def test_negative_allocation_is_value_error(mod, k):
    with pytest.raises(ValueError):
        mod.make(k)
    assert mod.make(3) == 3.0
    assert mod.make(0) == 0.0


def test_negative_second_dimension_is_value_error(mod):
    with pytest.raises(ValueError):
        mod.make2(2, -5)
    assert mod.make2(2, 3) == 0.0


@pytest.mark.parametrize("k,m", [(2**62, 1), (2**40, 2**40), (2**31, 2**33), (2**62, 2**62)])
def test_absurd_allocation_is_memory_error(mod, k, m):
    # 2**62 elements of 8 bytes overflow 64-bit byte counts: that must be caught too.
    with pytest.raises(MemoryError):
        mod.make2(k, m)
    assert mod.make2(2, 3) == 0.0


def test_absurd_1d_allocation_is_memory_error(mod):
    with pytest.raises(MemoryError):
        mod.make(2**62)
    with pytest.raises(MemoryError):
        mod.make(2**61 + 1)
    assert mod.make(5) == 5.0


# ---------------------------------------------------------------------------------------
# The process survives: a fresh interpreter runs every failure and exits cleanly
# ---------------------------------------------------------------------------------------

def test_process_survives_every_error_in_a_fresh_interpreter(tmp_path):
    src_file = tmp_path / FILE
    src_file.write_text(SRC)
    script = textwrap.dedent(f"""
        import numpy as np, dad
        m = dad.compile_file({str(src_file)!r})
        calls = [
            (lambda: m.get(np.arange(3.0), 3), IndexError),
            (lambda: m.get(np.arange(3.0), -1), IndexError),
            (lambda: m.get2(np.ones((2, 2)), 0, 9), IndexError),
            (lambda: m.put(0, 7), IndexError),
            (lambda: m.idiv(1, 0), ZeroDivisionError),
            (lambda: m.imod(1, 0), ZeroDivisionError),
            (lambda: m.make(-1), ValueError),
            (lambda: m.make(2**62), MemoryError),
            (lambda: m.make2(2**62, 2**62), MemoryError),
        ]
        for f, kind in calls:
            try:
                f()
            except kind as e:
                pass
            else:
                raise SystemExit(f"no {{kind.__name__}}")
        assert m.get(np.arange(3.0), 1) == 1.0
        print("survived")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "survived" in r.stdout
