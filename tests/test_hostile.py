"""Hostile input: a clean error, nothing lost, never a crash.

Deep recursion at run time, integers beyond i64, damaged compile-cache entries, deeply
nested programs, wrong argument kinds, masked arrays, a byte-order mark, Ctrl-C in a
running loop, failed allocations. Whatever could take the interpreter down runs in a
subprocess.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import dad
from dad.runtime import aot, cache

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_py(code: str, *, env=None, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, cwd=str(ROOT),
                          env=dict(os.environ, **(env or {})))


# ----------------------------------------------------------------------- the compile cache

try:
    aot.find_cc()
    HAVE_CC = True
except aot.LinkerMissing:
    HAVE_CC = False

CACHED = textwrap.dedent("""
    import json, sys
    import dad
    mod = dad.compile(sys.argv[1])
    print(json.dumps({"hit": "cache_hit" in mod.timings, "value": mod.f(3.0)}))
""")
PROGRAM_A = "fn f(x: f64) -> f64 { return x * x + 1.0; }"
PROGRAM_B = "fn f(x: f64) -> f64 { return x * x * x; }"


def run_cached(cache_dir, program):
    r = subprocess.run([sys.executable, "-c", CACHED, program], capture_output=True, text=True,
                       timeout=240, env=dict(os.environ, DAD_CACHE_DIR=str(cache_dir)))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _entry(cache_dir, program):
    with_env = os.environ.get("DAD_CACHE_DIR")
    os.environ["DAD_CACHE_DIR"] = str(cache_dir)
    try:
        k = cache.key(program, "<string>", False)
    finally:
        os.environ["DAD_CACHE_DIR"] = with_env
    d = pathlib.Path(cache_dir) / cache.SUBDIR
    return d / f"{k}.json", d / f"{k}.so"


def _truncate(js, so, other):
    so.write_bytes(so.read_bytes()[: so.stat().st_size // 3])


def _random_so(js, so, other):
    so.write_bytes(os.urandom(so.stat().st_size))


def _json_list(js, so, other):
    js.write_text("[1, 2, 3]")


def _json_string(js, so, other):
    js.write_text('"sha256"')


def _json_missing_fields(js, so, other):
    record = json.loads(js.read_text())
    del record["sha256"]
    js.write_text(json.dumps(record))


def _json_wrong_types(js, so, other):
    record = json.loads(js.read_text())
    record.update(sha256=5, size="big", key=[])
    js.write_text(json.dumps(record))


def _so_of_another_entry(js, so, other):
    shutil.copyfile(other[1], so)


def _entry_of_another_key(js, so, other):  # both files of another program under this key
    shutil.copyfile(other[0], js)
    shutil.copyfile(other[1], so)


def _truncated_json(js, so, other):
    js.write_bytes(js.read_bytes()[:20])


def _missing_so(js, so, other):
    so.unlink()


DAMAGE = [_truncate, _random_so, _json_list, _json_string, _json_missing_fields,
          _json_wrong_types, _so_of_another_entry, _entry_of_another_key, _truncated_json,
          _missing_so]


@pytest.mark.skipif(not HAVE_CC, reason="the cache stores libraries linked by cc")
@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__.strip("_"))
def test_damaged_cache_entry_is_discarded_and_rebuilt(tmp_path, damage):
    d = tmp_path / "cache"
    a = run_cached(d, PROGRAM_A)
    b = run_cached(d, PROGRAM_B)
    assert (a["value"], b["value"]) == (10.0, 27.0)
    js, so = _entry(d, PROGRAM_A)
    damage(js, so, _entry(d, PROGRAM_B))
    again = run_cached(d, PROGRAM_A)
    assert not again["hit"] and again["value"] == 10.0
    assert run_cached(d, PROGRAM_A) == {"hit": True, "value": 10.0}  # rebuilt, valid again
    assert run_cached(d, PROGRAM_B) == {"hit": True, "value": 27.0}  # the other entry untouched


# ----------------------------------------------------------------------- integers beyond i64

@pytest.mark.parametrize("src, text", [
    ("fn f() -> i64 { var s = 0; for i in 0..99999999999999999999 { s += 1; } return s; }",
     "99999999999999999999"),
    ("fn f() -> i64 { return 9223372036854775808; }", "9223372036854775808"),
    ("fn f() -> i64 { return 9223372036854775808 - 1; }", "9223372036854775808"),
    ("fn f(x: f64[18446744073709551616]) -> f64 { return x[0]; }", "18446744073709551616"),
    ("fn f() -> f64 { return 1e999; }", "1e999"),
])
def test_literal_out_of_range_is_a_compile_error(src, text):
    col = src.index(text) + 1
    with pytest.raises(dad.CompileError) as exc:
        dad.compile(src)
    (d,) = exc.value.diagnostics
    assert (d.span.line, d.span.col) == (1, col) and "out of range" in d.message
    rendered = str(exc.value).splitlines()
    assert rendered[0].startswith(f"<string>:1:{col}: error: ")
    assert rendered[2] == "    " + " " * (col - 1) + "^" + "~" * (len(text) - 1)


def test_extreme_i64_literals_are_exact():
    m = dad.compile("fn lo() -> i64 { return -9223372036854775808; }\n"
                    "fn hi() -> i64 { return 9223372036854775807; }\n"
                    "fn big() -> i64 { return 9007199254740993; }")
    assert (m.lo(), m.hi(), m.big()) == (-2**63, 2**63 - 1, 2**53 + 1)


def test_i64_arguments_never_pass_through_a_float():
    m = dad.compile("fn id(k: i64) -> i64 { return k; }\n"
                    "fn first(k: i64[n]) -> i64 { return k[0]; }\n"
                    "fn twice(k: i64[n]) -> i64[n] { return k + k; }\n"
                    "fn pair(k: i64, j: i64) -> (i64, i64) { return (k + 1, j - 1); }")
    for v in (2**53 + 1, 2**62 + 1, -2**63, 2**63 - 1, np.int64(2**53 + 1)):
        assert m.id(v) == int(v) and type(m.id(v)) is int
        assert m.first([v]) == int(v) and m.first(np.array([v], np.int64)) == int(v)
    assert m.pair(2**60 + 1, -2**60 - 1) == (2**60 + 2, -2**60 - 2)
    assert m.twice([2**61 + 1]).tolist() == [2**62 + 2]
    with pytest.raises(OverflowError, match="'k'"):
        m.id(2**63)
    with pytest.raises(TypeError, match="'k'"):
        m.id(float(2**53))
    for bad in ([2**63], [2.0**53 + 2], np.array([1], np.uint64), np.array([2.0])):
        with pytest.raises(TypeError, match="'k'"):
            m.first(bad)


# ----------------------------------------------------------------------- smaller things

def test_compile_wants_text():
    for bad in (None, 3, ["fn f() -> f64 { return 1.0; }"], pathlib.Path("f.dad")):
        with pytest.raises(TypeError, match="source text as a str"):
            dad.compile(bad)
    # bytes are decoded as UTF-8
    m = dad.compile("fn f(x: f64) -> f64 { return x * 2.0; }  # \u00e9\n".encode())
    assert m.f(2.0) == 4.0
    with pytest.raises(UnicodeDecodeError):
        dad.compile(b"fn f() -> f64 { return 1.0; } # \xff")


def test_masked_arrays_are_refused():
    m = dad.compile("fn s(x: f64[n]) -> f64 { return sum(x); }\n"
                    "fn d(x: f64[n]) -> f64[n] { return 2.0 * x; }")
    with pytest.raises(TypeError, match="parameter 'x': masked arrays"):
        m.s(np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0]))
    with pytest.raises(TypeError, match="parameter 'x': masked arrays"):
        m.s(np.ma.array([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="out="):
        m.d(np.ones(3), out=np.ma.zeros(3))
    assert m.s(np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0]).compressed()) == 4.0


def test_byte_order_mark_is_accepted(tmp_path):
    src = "fn f(x: f64) -> f64 { return x + 1.0; }\n"
    assert dad.compile("\ufeff" + src).f(1.0) == 2.0
    assert dad.compile(b"\xef\xbb\xbf" + src.encode()).f(1.0) == 2.0
    p = tmp_path / "bom.dad"
    p.write_bytes(b"\xef\xbb\xbf" + src.encode())
    assert dad.compile_file(p).f(1.0) == 2.0
    p.write_bytes(b"\xef\xbb\xbffn f(x: f64) -> f64 { return y; }\n")
    with pytest.raises(dad.CompileError, match=r"bom.dad:1:30: error: unknown name 'y'"):
        dad.compile_file(p)


@pytest.mark.parametrize("body", ["let a = zeros(n); return a[0];",
                                  "let a = zeros(n, n); return a[0, 0];",
                                  "let a = ones(n) * 2.0; return a[0];"])
def test_failed_allocation_names_the_line(body):
    m = dad.compile("fn f(n: i64) -> f64 {\n    " + body + "\n}")
    with pytest.raises(MemoryError, match=r"^<string>:2:\d+: cannot allocate"):
        m.f(1 << 42)
