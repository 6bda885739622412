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
