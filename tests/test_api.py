"""The Python API contract: `dad.compile`, `dad.compile_file`, `dad.CompileError`, function
objects (name, signature, ir, llvm_ir, asm), argument conversion and checking, return
types, `out=`, vectorised machine code, and no memory leaks across calls."""
from __future__ import annotations

import os
import platform
import re
import time

import numpy as np
import pytest

import dad

SRC = """\
# Small functions exercising every kind of parameter and result.
fn total(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n {
        s += x[i];
    }
    return s;
}

fn scale(x: f64[n], a: f64) -> f64[n] {
    return a * x;
}

fn weighted(left: f64[n], right: f64[n]) -> f64 {
    return dot(left, right);
}

fn square_trace(A: f64[n, n]) -> f64 {
    var t = 0.0;
    for i in 0..n {
        t += A[i, i];
    }
    return t;
}

fn triple(p: f64[3]) -> f64 {
    return p[0] + p[1] + p[2];
}

fn mat_scale(A: f64[m, n], a: f64) -> f64[m, n] {
    return a * A;
}

fn first_col(A: f64[m, n]) -> f64[m] {
    var c = zeros(m);
    for i in 0..m {
        c[i] = A[i, 0];
    }
    return c;
}

fn half32(x: f32) -> f32 {
    return x * 0.5;
}

fn sum32(x: f32[n]) -> f32 {
    var s = f32(0.0);
    for i in 0..n {
        s += x[i];
    }
    return s;
}

fn twice_int(k: i64) -> i64 {
    return 2 * k;
}

fn count_pos(v: i64[n]) -> i64 {
    var c = 0;
    for i in 0..n {
        if v[i] > 0 {
            c += 1;
        }
    }
    return c;
}

fn negate(b: bool) -> bool {
    return not b;
}

fn pick(b: bool, x: f64, y: f64) -> f64 {
    return select(b, x, y);
}

fn split(x: f64[n]) -> (f64[n], f64[n]) {
    var pos = zeros(n);
    var neg = zeros(n);
    for i in 0..n {
        if x[i] > 0.0 {
            pos[i] = x[i];
        } else {
            neg[i] = x[i];
        }
    }
    return (pos, neg);
}

fn stats(x: f64[n]) -> (f64, i64, f64[n]) {
    return (sum(x), n, x * x);
}

fn iota(x: f64[n]) -> i64[n] {
    var r = zeros(n, dtype=i64);
    for i in 0..n {
        r[i] = i;
    }
    return r;
}

fn axpy(a: f64, x: f64[n], y: f64[n]) -> f64[n] {
    var z = zeros(n);
    for i in 0..n {
        z[i] = a * x[i] + y[i];
    }
    return z;
}

fn dot_only(a: f64[n], b: f64[n]) -> f64 {
    return dot(a, b);
}
"""


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SRC, filename="api.dad")


# ---------------------------------------------------------------------------------------
# compile, compile_file, module objects
# ---------------------------------------------------------------------------------------

def test_compile_returns_module_with_every_function(mod):
    for name in re.findall(r"^fn (\w+)", SRC, flags=re.M):
        k = getattr(mod, name)
        assert callable(k)
        assert k.name == name
    with pytest.raises(AttributeError):
        mod.no_such_function


def test_compile_file_str_and_path(tmp_path):
    p = tmp_path / "one.dad"
    p.write_text("fn add1(x: f64) -> f64 { return x + 1.0; }\n")
    assert dad.compile_file(str(p)).add1(1.5) == 2.5
    assert dad.compile_file(p).add1(-1.0) == 0.0
    assert dad.compile_file(p, fast_math=True).add1(2.0) == 3.0


def test_two_compilations_are_independent():
    a = dad.compile("fn f(x: f64) -> f64 { return x + 1.0; }")
    b = dad.compile("fn f(x: f64) -> f64 { return x + 2.0; }")
    assert a.f(1.0) == 2.0 and b.f(1.0) == 3.0


def test_fast_math_compiles_and_agrees(mod):
    fm = dad.compile(SRC, fast_math=True, filename="api.dad")
    x = np.random.default_rng(0).standard_normal(1000)
    assert abs(fm.total(x) - mod.total(x)) <= 1e-12 * np.abs(x).sum()
    np.testing.assert_allclose(fm.axpy(2.0, x, x), mod.axpy(2.0, x, x), rtol=1e-15)


def test_contextual_keywords_are_ordinary_identifiers():
    src = """
fn step(wrt: f64, dtype: f64) -> f64 {
    let step = wrt * dtype;
    return step;
}
fn loop(n: i64) -> i64 {
    var s = 0;
    for i in 0..n step 3 {
        s += step_count(i);
    }
    return s;
}
fn step_count(i: i64) -> i64 {
    return i;
}
"""
    m = dad.compile(src)
    assert m.step(2.0, 3.0) == 6.0
    assert m.loop(10) == 0 + 3 + 6 + 9


def test_float_literal_forms():
    src = "fn f() -> f64 { return 1.0 + 2.5e-3 + 1e9 + 2 * 3.0; }"
    assert dad.compile(src).f() == 1.0 + 2.5e-3 + 1e9 + 6.0


# ---------------------------------------------------------------------------------------
# CompileError
# ---------------------------------------------------------------------------------------

def test_compile_error_format():
    src = "fn f(x: f64) -> f64 {\n    return y;\n}\n"
    with pytest.raises(dad.CompileError) as info:
        dad.compile(src, filename="bad.dad")
    text = str(info.value)
    first = text.splitlines()[0]
    assert re.match(r"bad\.dad:2:12: error: \S", first), first
    lines = text.splitlines()
    # the source line, then a caret under column 12 (the `y`)
    i = next(k for k, ln in enumerate(lines[1:], 1) if "return y;" in ln)
    caret = lines[i + 1]
    assert caret.strip().startswith("^")
    assert caret.index("^") == lines[i].index("return y;") + len("return ")


def test_compile_error_default_filename_and_is_exception():
    with pytest.raises(dad.CompileError) as info:
        dad.compile("fn f(x: f64) -> f64 { return x + true; }")
    assert isinstance(info.value, Exception)
    assert str(info.value).startswith("<string>:1:")
    assert ": error: " in str(info.value)


def test_compile_file_error_names_the_file(tmp_path):
    p = tmp_path / "broken.dad"
    p.write_text("fn f(x: f64) -> f64 {\n    return x +;\n}\n")
    with pytest.raises(dad.CompileError) as info:
        dad.compile_file(p)
    assert re.match(r".*broken\.dad:2:\d+: error: ", str(info.value).splitlines()[0])


@pytest.mark.parametrize("src", [
    "fn f(x: f64) -> f64 { return x; ",                   # unclosed block
    "fn f(x: f64) -> f64 { x = 1.0; return x; }",         # parameters are immutable
    "fn f(x: f64) -> f64 { let y = 1.0; y = 2.0; return y; }",  # let is immutable
    "fn f(x: f64) -> i64 { return x; }",                  # no implicit f64 -> i64
    "fn f(x: f64) -> f64 { if x > 0.0 { return x; } }",   # not every path returns
    "fn f(k: i64) -> f64 { return k * 2.0; }",            # no implicit i64 -> f64
    "fn f(x: f64[n]) -> f64 { x[0] = 1.0; return x[0]; }",  # parameter arrays are read-only
    "fn f(x: f64) -> f64 { return g(x); }",               # unknown function
    "fn f(x: f64) -> f64 { break; return x; }",           # break outside a loop
    "fn f(x: f64[n]) -> f64[m] { return x; }",            # m is no parameter's size
])
def test_invalid_programs_raise_compile_error(src):
    with pytest.raises(dad.CompileError) as info:
        dad.compile(src, filename="e.dad")
    assert re.match(r"e\.dad:\d+:\d+: error: ", str(info.value))


# ---------------------------------------------------------------------------------------
# Function objects: name, signature, ir, llvm_ir, asm
# ---------------------------------------------------------------------------------------

def test_signature_text(mod):
    assert mod.total.signature == "(x: f64[n]) -> f64"
    assert mod.scale.signature == "(x: f64[n], a: f64) -> f64[n]"
    assert mod.square_trace.signature == "(A: f64[n, n]) -> f64"
    assert mod.triple.signature == "(p: f64[3]) -> f64"
    assert mod.split.signature == "(x: f64[n]) -> (f64[n], f64[n])"
    assert mod.stats.signature == "(x: f64[n]) -> (f64, i64, f64[n])"
    assert mod.negate.signature == "(b: bool) -> bool"
    assert mod.sum32.signature == "(x: f32[n]) -> f32"


@pytest.mark.parametrize("attr", ["ir", "llvm_ir", "asm"])
def test_ir_llvm_ir_asm_are_nonempty_and_name_the_function(mod, attr):
    for k in (mod.total, mod.axpy, mod.split):
        text = getattr(k, attr)
        assert isinstance(text, str) and text.strip()
        assert k.name in text


def _simd_in(asm: str) -> bool:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        if re.search(r"%?\b[yz]mm\d+\b", asm):
            return True
        # 128-bit SSE/AVX packed double arithmetic
        return bool(re.search(r"\bv?(mul|add|sub|fmadd\d*|fnmadd\d*|fmsub\d*)pd\b", asm))
    if machine in ("aarch64", "arm64"):
        return bool(re.search(r"\bv\d+\.2d\b", asm))
    pytest.skip(f"no SIMD pattern known for {machine}")


def test_simple_loop_is_vectorised(mod):
    # i in 0..n on arrays of length n: the bounds checks are provably redundant, so the
    # loop must vectorise (LLVM's loop vectoriser at O3 on the host CPU).
    assert _simd_in(mod.axpy.asm), mod.axpy.asm[:4000]


def test_dot_builtin_is_vectorised(mod):
    # dot may sum in any order, which is what lets it vectorise.
    assert _simd_in(mod.dot_only.asm), mod.dot_only.asm[:4000]


# ---------------------------------------------------------------------------------------
# Calling: positional, keyword, argument checking
# ---------------------------------------------------------------------------------------

def test_positional_and_keyword_arguments(mod):
    x = np.arange(4.0)
    ref = 3.0 * x
    np.testing.assert_array_equal(mod.scale(x, 3.0), ref)
    np.testing.assert_array_equal(mod.scale(x=x, a=3.0), ref)
    np.testing.assert_array_equal(mod.scale(a=3.0, x=x), ref)
    np.testing.assert_array_equal(mod.scale(x, a=3.0), ref)


def test_bad_argument_lists_raise_type_error(mod):
    x = np.arange(4.0)
    with pytest.raises(TypeError):
        mod.scale(x)                    # missing a
    with pytest.raises(TypeError):
        mod.scale(x, 1.0, 2.0)          # one too many
    with pytest.raises(TypeError):
        mod.scale(x, b=1.0)             # unknown keyword
    with pytest.raises(TypeError):
        mod.scale(x, 1.0, a=2.0)        # a given twice


def test_lossless_conversions(mod):
    assert mod.total([1.0, 2.0, 3.5]) == 6.5                      # list
    assert mod.total((1, 2, 3)) == 6.0                            # tuple of ints
    assert mod.total(np.arange(5)) == 10.0                        # int64 array -> f64
    assert mod.total(np.arange(5, dtype=np.int32)) == 10.0
    assert mod.total(np.array([0.5, 0.25], dtype=np.float32)) == 0.75  # f32 -> f64
    x = np.arange(10.0)
    assert mod.total(x[::2]) == 0 + 2 + 4 + 6 + 8                 # non-contiguous
    assert mod.total(x[::-1]) == 45.0                              # negative strides
    A = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(mod.first_col(np.asfortranarray(A)), [0.0, 4.0, 8.0])
    np.testing.assert_array_equal(mod.first_col(A[:, 1:]), [1.0, 5.0, 9.0])
    np.testing.assert_array_equal(mod.first_col([[1, 2], [3, 4]]), [1.0, 3.0])
    assert mod.count_pos(np.array([1, -1, 2], dtype=np.int32)) == 2  # int32 -> i64
    assert mod.count_pos([1, 0, 5, 7]) == 3


def test_scalar_conversions(mod):
    assert mod.scale([1.0], 2)[0] == 2.0                          # Python int -> f64
    assert mod.scale([1.0], np.float32(0.5))[0] == 0.5
    assert mod.scale([1.0], np.float64(0.25))[0] == 0.25
    assert mod.scale([1.0], np.int64(3))[0] == 3.0
    assert mod.twice_int(np.int64(21)) == 42
    assert mod.twice_int(np.int32(21)) == 42
    assert mod.half32(0.1) == np.float32(np.float32(0.1) * np.float32(0.5))  # rounded to f32
    assert mod.negate(np.bool_(True)) is False


@pytest.mark.parametrize("call,param", [
    (lambda m: m.count_pos(np.array([1.5, 2.0])), "v"),          # float array -> i64
    (lambda m: m.twice_int(2.5), "k"),                           # float -> i64
    (lambda m: m.total(np.array([1 + 2j, 3j])), "x"),            # complex array
    (lambda m: m.scale([1.0], 1 + 2j), "a"),                     # complex scalar
    (lambda m: m.total("abc"), "x"),                             # string
    (lambda m: m.scale([1.0], "2.0"), "a"),                      # string scalar
    (lambda m: m.total([1.0, "x"]), "x"),                        # mixed sequence
    (lambda m: m.total(None), "x"),
    (lambda m: m.sum32(np.array([0.1, 0.2])), "x"),              # f64 array -> f32: lossy
    (lambda m: m.negate(2.5), "b"),                              # float -> bool
])
def test_lossy_or_wrong_type_raises_type_error_naming_parameter(mod, call, param):
    with pytest.raises(TypeError) as info:
        call(mod)
    assert re.search(rf"\b{param}\b", str(info.value)), str(info.value)


def test_size_variable_mismatch_names_both_parameters_and_sizes(mod):
    with pytest.raises(ValueError) as info:
        mod.weighted(np.ones(3), np.ones(4))
    msg = str(info.value)
    for word in ("left", "right", "3", "4"):
        assert re.search(rf"\b{word}\b", msg), msg


def test_square_matrix_and_literal_dimension_are_checked(mod):
    with pytest.raises(ValueError) as info:
        mod.square_trace(np.ones((2, 3)))
    assert re.search(r"\bA\b", str(info.value))
    with pytest.raises((ValueError, TypeError)) as info:
        mod.triple(np.ones(4))
    assert re.search(r"\bp\b", str(info.value))
    assert mod.triple([1.0, 2.0, 3.0]) == 6.0


@pytest.mark.parametrize("call,param", [
    (lambda m: m.total(np.ones((2, 2))), "x"),
    (lambda m: m.total(1.0), "x"),
    (lambda m: m.first_col(np.ones(3)), "A"),
    (lambda m: m.scale([1.0], np.ones(2)), "a"),
])
def test_wrong_rank_names_parameter(mod, call, param):
    with pytest.raises((TypeError, ValueError)) as info:
        call(mod)
    assert re.search(rf"\b{param}\b", str(info.value)), str(info.value)


def test_empty_arrays(mod):
    assert mod.total(np.zeros(0)) == 0.0
    assert mod.total([]) == 0.0
    r = mod.scale(np.zeros(0), 2.0)
    assert r.shape == (0,) and r.dtype == np.float64


# ---------------------------------------------------------------------------------------
# Return types
# ---------------------------------------------------------------------------------------

def test_return_types(mod):
    assert type(mod.total([1.0])) is float
    assert type(mod.half32(1.0)) is np.float32
    assert type(mod.twice_int(4)) is int and mod.twice_int(4) == 8
    assert mod.twice_int(2**61) == 2**62                 # full 64-bit range
    assert mod.twice_int(-(2**61)) == -(2**62)
    assert mod.negate(True) is False and mod.negate(False) is True
    assert mod.pick(True, 1.0, 2.0) == 1.0 and mod.pick(b=False, x=1.0, y=2.0) == 2.0
    assert type(mod.sum32(np.ones(3, np.float32))) is np.float32
    r = mod.stats(np.array([1.0, 2.0]))
    assert type(r) is tuple and len(r) == 3
    assert type(r[0]) is float and r[0] == 3.0
    assert type(r[1]) is int and r[1] == 2
    assert isinstance(r[2], np.ndarray) and r[2].tolist() == [1.0, 4.0]
    i = mod.iota(np.zeros(4))
    assert i.dtype == np.int64 and i.tolist() == [0, 1, 2, 3]


def test_read_only_and_empty_inputs_are_passed_by_address(mod):
    # arrays the buffer protocol cannot lend writeable (read-only ones) or that have no
    # bytes take the slower path to their address (`a.ctypes.data`)
    x = np.arange(5.0)
    x.flags.writeable = False
    np.testing.assert_array_equal(mod.scale(x, 2.0), 2.0 * np.arange(5.0))
    assert mod.total(x) == 10.0
    assert mod.scale(np.zeros(0), 3.0).shape == (0,)
    frozen = np.frombuffer(np.arange(3.0).tobytes())  # read-only memory of a bytes object
    np.testing.assert_array_equal(mod.scale(frozen, -1.0), [-0.0, -1.0, -2.0])


def test_returned_arrays_are_fresh(mod):
    x = np.arange(5.0)
    a = mod.scale(x, 2.0)
    b = mod.scale(x, 2.0)
    assert type(a) is np.ndarray and a.dtype == np.float64 and a.flags.c_contiguous
    assert a.flags.writeable
    assert not np.shares_memory(a, b) and not np.shares_memory(a, x)
    a[:] = -1.0
    np.testing.assert_array_equal(b, 2.0 * x)
    np.testing.assert_array_equal(mod.scale(x, 2.0), 2.0 * x)
    np.testing.assert_array_equal(x, np.arange(5.0))  # inputs untouched
    M = mod.mat_scale(np.ones((2, 3)), 2.0)
    assert M.shape == (2, 3) and M.flags.c_contiguous
    p, n = mod.split(np.array([1.0, -2.0]))
    assert not np.shares_memory(p, n)


def test_returned_array_outlives_everything(mod):
    """The array stays valid after the module and function objects are dropped."""
    m = dad.compile("fn f(x: f64[n]) -> f64[n] { return x * 3.0; }")
    r = m.f(np.arange(1000.0))
    del m
    import gc
    gc.collect()
    np.testing.assert_array_equal(r, 3.0 * np.arange(1000.0))


# ---------------------------------------------------------------------------------------
# out=
# ---------------------------------------------------------------------------------------

def test_out_single_array(mod):
    x = np.arange(6.0)
    out = np.full(6, np.nan)
    r = mod.scale(x, 2.0, out=out)
    np.testing.assert_array_equal(out, 2.0 * x)
    assert r is out  # like NumPy's ufuncs: the out array is returned
    M = np.empty((2, 3))
    mod.mat_scale(np.ones((2, 3)), 4.0, out=M)
    np.testing.assert_array_equal(M, np.full((2, 3), 4.0))
    ii = np.empty(3, dtype=np.int64)
    mod.iota(np.zeros(3), out=ii)
    assert ii.tolist() == [0, 1, 2]


def test_out_tuple(mod):
    x = np.array([1.0, -2.0, 3.0])
    p, n = np.empty(3), np.empty(3)
    r = mod.split(x, out=(p, n))
    np.testing.assert_array_equal(p, [1.0, 0.0, 3.0])
    np.testing.assert_array_equal(n, [0.0, -2.0, 0.0])
    assert type(r) is tuple and r[0] is p and r[1] is n


@pytest.mark.parametrize("out", [
    np.empty(5),                       # wrong length
    np.empty((6, 1)),                  # wrong rank
    np.empty(6, dtype=np.float32),     # wrong dtype
    np.empty(6, dtype=np.int64),       # wrong dtype
    [0.0] * 6,                         # not an array
])
def test_out_wrong_shape_or_dtype(mod, out):
    with pytest.raises((ValueError, TypeError)):
        mod.scale(np.arange(6.0), 2.0, out=out)


def test_out_tuple_wrong_arity(mod):
    with pytest.raises((ValueError, TypeError)):
        mod.split(np.ones(3), out=(np.empty(3),))
    with pytest.raises((ValueError, TypeError)):
        mod.split(np.ones(3), out=np.empty(3))


def test_out_non_contiguous_is_refused_or_written_correctly(mod):
    buf = np.zeros(12)
    view = buf[::2]
    try:
        mod.scale(np.arange(6.0), 2.0, out=view)
    except (ValueError, TypeError):
        return
    np.testing.assert_array_equal(buf[::2], 2.0 * np.arange(6.0))
    np.testing.assert_array_equal(buf[1::2], 0.0)


def test_out_read_only_is_refused(mod):
    out = np.empty(6)
    out.flags.writeable = False
    with pytest.raises((ValueError, TypeError)):
        mod.scale(np.arange(6.0), 2.0, out=out)


# ---------------------------------------------------------------------------------------
# Memory: no leaks
# ---------------------------------------------------------------------------------------

def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
def test_no_leak_over_a_million_calls(mod):
    """A million calls returning a 100-element array (800 bytes each: a leak of the result
    would be 800 MB), bounded to ~8 s of calling; the RSS may not grow by more than 8 MB."""
    x = np.arange(100.0)
    for _ in range(20000):  # warm-up: caches, allocator arenas
        mod.scale(x, 2.0)
    before = _rss_bytes()
    deadline = time.perf_counter() + 8.0
    calls = 0
    while calls < 1_000_000 and time.perf_counter() < deadline:
        for _ in range(1000):
            mod.scale(x, 2.0)
        calls += 1000
    grown = _rss_bytes() - before
    assert calls >= 100_000, f"only {calls} calls in 8 s"
    assert grown < 8 * 2**20, f"RSS grew by {grown / 2**20:.1f} MB over {calls} calls"


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
def test_no_leak_with_tuples_and_out(mod):
    x = np.arange(100.0)
    p, n = np.empty(100), np.empty(100)
    for _ in range(20000):
        mod.split(x)
        mod.split(x, out=(p, n))
    before = _rss_bytes()
    for _ in range(50_000):  # 3 x 800 bytes per round: 120 MB if results leaked
        mod.split(x)
        mod.stats(x)
        mod.split(x, out=(p, n))
    grown = _rss_bytes() - before
    assert grown < 8 * 2**20, f"RSS grew by {grown / 2**20:.1f} MB"
