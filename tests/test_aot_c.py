"""The C example (`examples/c/`): build `rosen.dad` with `dadc build`, compile `main.c`
against the header and the library, run it, and compare every number it prints (with
%.17g, exact) and its error message with what Python computes from the same library."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest

import dad
from dad.runtime import aot

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "c"


def _cc():
    try:
        return aot.find_cc()
    except aot.LinkerMissing:
        pytest.skip("no C compiler")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    cc = _cc()
    out = tmp_path_factory.mktemp("c-example")
    r = subprocess.run([sys.executable, "-m", "dad.cli", "build", str(EXAMPLE / "rosen.dad"),
                        "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    exe = out / "rosen_demo"
    r = subprocess.run([*cc, "-std=c99", "-Wall", "-Werror", str(EXAMPLE / "main.c"),
                        f"-I{out}", str(out / "rosen.so"), "-Wl,-rpath,$ORIGIN", "-o", str(exe)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe, dad.load(out / "rosen.so")


def run(exe, xs) -> dict:
    r = subprocess.run([str(exe), *map(repr, xs)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = {"grad": {}}
    for line in r.stdout.splitlines():
        what, _, rest = line.partition(" ")
        if what == "grad":
            i, v = rest.split()
            got["grad"][int(i)] = float(v)
        elif what == "rosen":
            got["rosen"] = float(rest)
        else:
            got[what] = rest
    return got


@pytest.mark.parametrize("xs", [[1.5, 2.0, -0.5, 1.0], [0.1, -0.3, 0.7, 1.1, 2.5, -1.25, 0.0]])
def test_c_program_agrees_with_python(demo, xs):
    exe, mod = demo
    got = run(exe, xs)
    x = np.array(xs)
    assert got["rosen"] == mod.rosen(x)
    g = mod.rosen_grad(x)
    assert [got["grad"][i] for i in range(len(xs))] == list(g)
    # the same as the JIT-compiled example and a finite-difference check of the gradient
    jit = dad.api.compile_jit((ROOT / "examples" / "rosenbrock.dad").read_text())
    assert got["rosen"] == jit.rosen(x)
    eps = 1e-6
    fd = [(jit.rosen(x + eps * e) - jit.rosen(x - eps * e)) / (2 * eps) for e in np.eye(len(xs))]
    assert np.allclose(g, fd, rtol=1e-6, atol=1e-4)
    # the error message C formats is Python's exception text
    with pytest.raises(IndexError) as exc:
        mod.pick(x, len(xs) + 2)
    assert got["error"] == f"IndexError: {exc.value}"


def test_error_message_function(demo):
    import ctypes
    _, mod = demo
    lib = mod.lib
    lib.rosen_error_message.restype = ctypes.c_char_p
    lib.rosen_error_message.argtypes = [ctypes.c_int64]
    assert lib.rosen_error_message(0) == b"no error"
    assert lib.rosen_error_message(10**6) == b"unknown error code"
    texts = [lib.rosen_error_message(k).decode() for k in range(1, len(mod.sites) + 1)]
    assert any(t.startswith("IndexError: ") and "{d0}" in t for t in texts)
    lib.rosen_error_format.restype = ctypes.c_int64
    assert lib.rosen_error_format(None, None, 0) == -1
