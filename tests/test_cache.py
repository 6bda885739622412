"""The compile cache (`runtime/cache.py`): warm compiles load the stored library; the key
changes with everything the code depends on; concurrent compilers are safe; a corrupt
entry is rebuilt, never loaded; DAD_NO_CACHE and `dadc cache info|clear`.

Every test points DAD_CACHE_DIR at a folder of its own (tests/conftest.py already keeps the
whole suite away from the user's cache). Tests that damage an entry do it between
processes: a library mapped by this process must not be truncated under it.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dad
from dad.runtime import aot, cache
from dad.runtime.compiler import CompiledModule
from dad.runtime.loader import LoadedModule

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ROSEN = str(EXAMPLES / "rosenbrock.dad")

try:
    aot.find_cc()
    HAVE_CC = True
except aot.LinkerMissing:
    HAVE_CC = False
pytestmark = pytest.mark.skipif(not HAVE_CC, reason="the cache stores libraries linked by cc")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("DAD_CACHE_DIR", str(d))
    monkeypatch.delenv("DAD_NO_CACHE", raising=False)
    return d


def entries(d: pathlib.Path) -> list[pathlib.Path]:
    return sorted((d / cache.SUBDIR).glob("*.json")) if (d / cache.SUBDIR).is_dir() else []


SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    t0 = time.perf_counter()
    import dad
    t1 = time.perf_counter()
    mod = dad.compile_file(sys.argv[1])
    t2 = time.perf_counter()
    x = np.linspace(-1.0, 1.5, 7)
    print(json.dumps({"hit": "cache_hit" in mod.timings, "type": type(mod).__name__,
                      "rosen": mod.rosen(x), "grad": list(mod.rosen_gradient_by_hand(x)),
                      "compile_s": t2 - t1}))
""")


def run_script(path=ROSEN, env=None):
    r = subprocess.run([sys.executable, "-c", SCRIPT, path], capture_output=True, text=True,
                       env=env or dict(os.environ), timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_warm_compile_loads_the_stored_library(cache_dir):
    cold = dad.compile_file(ROSEN)
    assert isinstance(cold, LoadedModule) and "cache_hit" not in cold.timings
    assert len(entries(cache_dir)) == 1
    warm = dad.compile_file(ROSEN)
    assert isinstance(warm, LoadedModule) and "cache_hit" in warm.timings
    x = np.random.default_rng(0).normal(size=50)
    jit = dad.api.compile_jit(open(ROSEN).read(), filename=ROSEN)
    assert warm.rosen(x) == cold.rosen(x) == jit.rosen(x)
    # the texts of every stage are there (the warm one recompiles them on demand)
    assert warm.rosen.ir == cold.rosen.ir == jit.rosen.ir
    assert warm.rosen.llvm_ir == cold.rosen.llvm_ir == jit.rosen.llvm_ir
    assert "rosen" in warm.rosen.asm
    # a warm compile in a fresh process: a hash and a dlopen
    out = run_script()
    assert out["hit"] and out["type"] == "LoadedModule"
    assert out["rosen"] == jit.rosen(np.linspace(-1.0, 1.5, 7))


def test_key_depends_on_source_options_and_name():
    src = open(ROSEN).read()
    k = cache.key(src, "a.dad", False)
    assert k == cache.key(src, "a.dad", False)
    assert k != cache.key(src + "\n", "a.dad", False)
    assert k != cache.key(src, "b.dad", False)
    assert k != cache.key(src, "a.dad", True)


def test_key_depends_on_the_compiler_source(monkeypatch):
    src = "fn f(x: f64) -> f64 { return x; }"
    before = cache.key(src, "f.dad", False)
    assert len(cache.compiler_fingerprint()) == 64
    monkeypatch.setattr(cache, "compiler_fingerprint", lambda: "another compiler")
    assert cache.key(src, "f.dad", False) != before
    monkeypatch.setattr(cache, "toolchain_fingerprint", lambda: "another llvm / cpu")
    assert cache.key(src, "f.dad", False) != before


def test_fast_math_is_cached_separately(cache_dir):
    a = dad.compile_file(ROSEN)
    b = dad.compile_file(ROSEN, fast_math=True)
    assert len(entries(cache_dir)) == 2
    assert b.meta["fast_math"] and not a.meta["fast_math"]


def test_corrupt_entry_is_rebuilt_not_loaded(cache_dir):
    first = run_script()
    assert not first["hit"]
    (meta_path,) = entries(cache_dir)
    so = meta_path.with_suffix(".so")
    size = so.stat().st_size
    with open(so, "r+b") as fh:  # truncate: a crash in the middle of a copy, a full disk...
        fh.truncate(size // 2)
    again = run_script()
    assert not again["hit"], "a truncated library was loaded"
    assert again["rosen"] == first["rosen"] and again["grad"] == first["grad"]
    assert so.stat().st_size == size
    assert run_script()["hit"]
    # flipped bytes (same size) are caught by the checksum too
    data = bytearray(so.read_bytes())
    data[len(data) // 2] ^= 0xFF
    so.write_bytes(bytes(data))
    assert not run_script()["hit"]
    # and a damaged metadata file
    meta_path.write_text("{ not json")
    out = run_script()
    assert not out["hit"] and out["rosen"] == first["rosen"]
    assert json.loads(meta_path.read_text())["sha256"]


def test_two_processes_fill_the_cache_at_once(cache_dir):
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
             for path in (ROSEN, ROSEN, ROSEN)]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert len({o["rosen"] for o in outs}) == 1 and len({tuple(o["grad"]) for o in outs}) == 1
    (meta_path,) = entries(cache_dir)
    leftovers = [p.name for p in (cache_dir / cache.SUBDIR).iterdir()
                 if p.suffix not in (".so", ".json")]
    assert leftovers == []  # no temporary files left behind
    record = json.loads(meta_path.read_text())
    assert record["sha256"] == cache._sha256_file(meta_path.with_suffix(".so"))[0]
    assert run_script()["hit"]


def test_many_processes_different_programs(cache_dir):
    paths = [str(EXAMPLES / f"{n}.dad") for n in ("rosenbrock", "matvec", "piecewise")]
    script = "import dad, sys; m = dad.compile_file(sys.argv[1]); print(len(m.kernels))"
    procs = [subprocess.Popen([sys.executable, "-c", script, p], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for p in paths * 2]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert len(entries(cache_dir)) == 3


def test_no_cache_uses_the_jit(cache_dir, monkeypatch):
    monkeypatch.setenv("DAD_NO_CACHE", "1")
    mod = dad.compile_file(ROSEN)
    assert type(mod) is CompiledModule
    assert not cache_dir.exists()


def test_without_a_compiler_the_cache_falls_back_to_the_jit(cache_dir, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    mod = dad.compile("fn f(x: f64) -> f64 { return x + 1.0; }")
    assert type(mod) is CompiledModule and mod.f(1.0) == 2.0
    assert entries(cache_dir) == []


def test_compile_errors_are_not_cached(cache_dir):
    with pytest.raises(dad.CompileError):
        dad.compile("fn f(x: f64) -> f64 { return y; }")
    assert entries(cache_dir) == []


def test_run_time_errors_from_cached_code(cache_dir):
    src = "fn pick(x: f64[n], i: i64) -> f64 { return x[i]; }\n"
    for _ in range(2):  # cold, then warm
        mod = dad.compile(src, filename="pick.dad")
        with pytest.raises(IndexError, match=r"pick.dad:1:\d+: index 5 is out of bounds"):
            mod.pick(np.zeros(3), 5)
    assert "cache_hit" in mod.timings


def test_derived_functions_of_cached_modules(cache_dir):
    dad.compile_file(ROSEN)
    warm = dad.compile_file(ROSEN)
    g = dad.grad(warm.rosen)
    x = np.array([0.5, -0.2, 1.1])
    assert np.allclose(g(x), warm.rosen_gradient_by_hand(x), rtol=1e-13)


def test_cli_cache_info_and_clear(cache_dir):
    dad.compile_file(ROSEN)
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "dad.cli", "cache", "info"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert str(cache_dir) in r.stdout and "entries: 1" in r.stdout
    r = subprocess.run([sys.executable, "-m", "dad.cli", "cache", "clear"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0 and "removed 1 entry" in r.stdout
    assert entries(cache_dir) == []


def test_cache_location_rules(monkeypatch, tmp_path):
    monkeypatch.delenv("DAD_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "dad"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_root() == tmp_path / "home" / ".cache" / "dad"
    monkeypatch.setenv("DAD_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.cache_root() == tmp_path / "mine"


def test_suite_never_uses_the_user_cache():
    home = pathlib.Path.home() / ".cache" / "dad"
    assert cache.cache_root() != home
    assert os.environ.get("DAD_CACHE_DIR")


def test_warm_compile_is_fast(cache_dir):
    """A warm compile of every example in a fresh process is well under 20 ms (a hash and a
    dlopen; the limit here is generous for loaded CI machines)."""
    for path in sorted(EXAMPLES.glob("*.dad")):
        script = ("import sys, time, dad; p = sys.argv[1]; dad.compile_file(p); "
                  "t = time.perf_counter(); m = dad.compile_file(p); "
                  "print(time.perf_counter() - t, 'cache_hit' in m.timings)")
        subprocess.run([sys.executable, "-c", script, str(path)], check=True,
                       capture_output=True)
        r = subprocess.run([sys.executable, "-c", script.replace("dad.compile_file(p); ", "", 1),
                            str(path)], capture_output=True, text=True, check=True)
        seconds, hit = r.stdout.split()
        assert hit == "True", path
        assert float(seconds) < 0.1, (path.name, seconds)
