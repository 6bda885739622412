"""Ahead-of-time compilation: `dadc build`, `dad.load`, the C header, cross targets, the
import hook.

Every example of `examples/` is built to a shared library, loaded back with `dad.load`, and
each exported function (derived ones included) is called on inputs made from its signature
and compared with the JIT-compiled module: a library built for the host CPU runs the same
machine code, so results are identical (bit for bit) and errors raise the same exception
with the same message.
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import dad
from dad.api import compile_jit
from dad.lang.signature import parse_signature
from dad.runtime import aot
from dad.runtime.loader import LoadError, LoadedModule

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ALL = sorted(p.stem for p in EXAMPLES.glob("*.dad"))
HAVE_CC = shutil.which("cc") is not None or shutil.which("gcc") is not None

needs_cc = pytest.mark.skipif(not HAVE_CC, reason="no C compiler to link shared libraries")

# sizes for the size variables of the examples' signatures (others get 4); a name like `b4`
# is 4 times `b` (lstm: the four gates), gmm's `t` is d (d + 1) / 2 (a triangle)
SIZES = {"d": 3, "t": 6, "k": 3, "n": 4, "m": 3, "p": 5, "b": 2, "c": 3, "l2": 4}


def size_of(var: str, sizes: dict) -> int:
    if var not in sizes:
        m = re.fullmatch(r"([A-Za-z_]+?)(\d+)", var)
        if m and m.group(1) in SIZES and var not in SIZES:
            sizes[var] = int(m.group(2)) * size_of(m.group(1), sizes)
        else:
            sizes[var] = SIZES.get(var, 4)
    return sizes[var]


def make_args(sig_text: str, seed: int = 0) -> list:
    """Arguments for a signature: positive floats, small ints (usable as indices), True."""
    sig = parse_signature(sig_text)
    rng = np.random.default_rng(seed)
    sizes: dict = {}
    args = []
    for p in sig.params:
        t = p.type
        shape = tuple(d if isinstance(d, int) else size_of(d, sizes) for d in t.dims)
        if t.dtype in ("f64", "f32"):
            v = rng.uniform(0.2, 1.2, shape) if shape else float(rng.uniform(0.2, 1.2))
            args.append(v.astype(np.float32) if shape and t.dtype == "f32" else v)
        elif t.dtype == "i64":
            args.append(rng.integers(0, 2, shape, dtype=np.int64) if shape else 2)
        else:
            args.append(np.ones(shape, bool) if shape else True)
    return args


def outcome(k, args):
    try:
        return ("ok", k(*[a.copy() if isinstance(a, np.ndarray) else a for a in args]))
    except Exception as exc:  # compared with the other side's
        return ("error", type(exc).__name__, str(exc))


def same(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and \
            np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, (float, np.floating)) and a != a:
        return isinstance(b, (float, np.floating)) and b != b
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """examples/NAME.dad -> (metadata of the build, JIT module); libraries built lazily."""
    out = tmp_path_factory.mktemp("aot")
    cache: dict = {}

    def get(name):
        if name not in cache:
            meta = dad.build(EXAMPLES / f"{name}.dad", out)
            jit = compile_jit((EXAMPLES / f"{name}.dad").read_text(),
                              filename=str(EXAMPLES / f"{name}.dad"))
            cache[name] = (meta, jit)
        return cache[name]
    return get


@needs_cc
@pytest.mark.parametrize("name", ALL)
def test_example_library_matches_jit(built, name):
    meta, jit = built(name)
    assert os.path.exists(meta["so"]) and os.path.exists(meta["header"])
    mod = dad.load(meta["so"])
    assert isinstance(mod, dad.CompiledModule) and isinstance(mod, LoadedModule)
    assert sorted(mod.kernels) == sorted(jit.kernels)  # derived functions included
    results = 0
    for fname, kj in jit.kernels.items():
        ka = getattr(mod, fname)
        assert ka.signature == kj.signature
        for seed in range(2):
            args = make_args(kj.signature, seed)
            a, b = outcome(ka, args), outcome(kj, args)
            assert a[0] == b[0] and (same(a[1], b[1]) if a[0] == "ok" else a == b), \
                f"{name}.{fname}{kj.signature}: library {a!r} vs JIT {b!r}"
            results += a[0] == "ok"
    assert results >= len(jit.kernels)  # most calls compute something, not just errors


@needs_cc
def test_loaded_module_checks_arguments_like_the_jit(built):
    meta, jit = built("rosenbrock")
    mod = dad.load(meta["so"])
    for bad in ([np.zeros((2, 2))], [["a", "b"]], []):
        with pytest.raises(TypeError) as e1:
            mod.rosen(*bad)
        with pytest.raises(TypeError) as e2:
            jit.rosen(*bad)
        assert str(e1.value) == str(e2.value)
    with pytest.raises(ValueError, match="size mismatch"):
        mod.dot_loop(np.zeros(3), np.zeros(2))
    out = np.empty(4)
    assert mod.rosen_gradient_by_hand(np.arange(4.0), out=out) is out
    assert np.array_equal(out, jit.rosen_gradient_by_hand(np.arange(4.0)))
    assert mod.rosen(x=[1.0, 1.0]) == 0.0


@needs_cc
def test_loaded_module_stage_texts_on_demand(built):
    meta, jit = built("rosenbrock")
    mod = dad.load(meta["so"])
    assert mod.rosen.ir == jit.rosen.ir
    assert "define" in mod.rosen.llvm_ir and "rosen" in mod.rosen.asm
    assert mod.rosen.signature == "(x: f64[n]) -> f64"
    assert "rosen" in repr(mod)


@needs_cc
def test_library_without_source_says_why_there_is_no_ir(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dad.cli", "build", "--no-source",
                        str(EXAMPLES / "rosenbrock.dad"), "-o", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    mod = dad.load(tmp_path / "rosenbrock.so")
    assert mod.rosen([1.0, 2.0]) == 100.0
    with pytest.raises(RuntimeError, match="without its source"):
        mod.rosen.ir


@needs_cc
def test_header_declares_every_function_and_compiles(built, tmp_path):
    cc = aot.find_cc()
    for name in ALL:
        meta, jit = built(name)
        text = pathlib.Path(meta["header"]).read_text()
        for fname in jit.kernels:
            assert re.search(rf"\b{fname}\(", text), (name, fname)
        assert f"const char *{meta['name']}_error_message(int64_t code);" in text
        r = subprocess.run([*cc, "-std=c99", "-Wall", "-Werror", "-fsyntax-only", "-x", "c",
                            meta["header"]], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_header_text_follows_the_abi():
    meta = {"name": "demo", "dad_version": "0", "filename": "demo.dad", "triple": "t", "cpu": "c",
            "functions": [
                {"name": "f", "sig": "(x: f64[n], A: f32[n, 3], flag: bool, k: i64) -> f64",
                 "entry": "f", "scalar": True},
                {"name": "g", "sig": "(x: f64[n]) -> (f64, f64[n], bool)", "entry": "g",
                 "scalar": False}]}
    h = aot.c_header(meta)
    assert ("double f(const double *x, int64_t x_n, const float *A, int64_t A_n, "
            "int64_t A_dim1, uint8_t flag, int64_t k, int64_t *errinfo);") in h
    assert ("int64_t g(const double *x, int64_t x_n, double *out0, double *out1, uint8_t *out2, "
            "int64_t *errinfo);") in h
    assert "out1: f64[n] (caller-allocated, row-major)" in h


@needs_cc
def test_library_needs_only_libc_and_libm(built):
    meta, _ = built("stats")
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("no readelf")
    r = subprocess.run([readelf, "-d", meta["so"]], capture_output=True, text=True)
    needed = set(re.findall(r"\(NEEDED\).*\[(.+?)\]", r.stdout))
    assert needed <= {"libc.so.6", "libm.so.6"}, needed
    # no Python, no LLVM: a fresh process without dad imported can dlopen it
    code = f"import ctypes; l = ctypes.CDLL({meta['so']!r}); print(l.dad_module_metadata and 1)"
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@needs_cc
def test_generic_cpu_build_loads_and_agrees(tmp_path, built):
    r = subprocess.run([sys.executable, "-m", "dad.cli", "build", "--cpu", "generic",
                        str(EXAMPLES / "stats.dad"), "-o", str(tmp_path), "-n", "stats_generic"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    mod = dad.load(tmp_path / "stats_generic.so")
    assert mod.meta["cpu"] == "generic" and mod.meta["features"] == ""
    _, jit = built("stats")
    x = np.random.default_rng(1).uniform(0.1, 2.0, 100)
    assert mod.softmax(x) == pytest.approx(jit.softmax(x), rel=1e-14)
    assert mod.mean_var(x) == pytest.approx(jit.mean_var(x), rel=1e-12)


@needs_cc
def test_cli_build_verbose_prints_every_stage(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dad.cli", "build", "-v",
                        str(EXAMPLES / "rosenbrock.dad"), "-o", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for stage in ("front end", "IR passes", "lowering", "LLVM O3", "object file", "link",
                  "C header", "total"):
        assert stage in r.stderr, (stage, r.stderr)
    assert re.search(r"link .*\d+\.\d ms", r.stderr)
    assert (tmp_path / "rosenbrock.so").exists() and (tmp_path / "rosenbrock.h").exists()


def test_cli_build_without_a_compiler_says_how_to_install_one(tmp_path):
    env = dict(os.environ, CC="/nonexistent/cc")
    r = subprocess.run([sys.executable, "-m", "dad.cli", "build",
                        str(EXAMPLES / "rosenbrock.dad"), "-o", str(tmp_path)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert "apt-get install gcc" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "rosenbrock.so").exists()


def test_load_rejects_what_it_cannot_use(tmp_path):
    with pytest.raises(FileNotFoundError):
        dad.load(tmp_path / "missing.so")
    bogus = tmp_path / "bogus.so"
    bogus.write_bytes(b"not an ELF file")
    with pytest.raises(LoadError):
        dad.load(bogus)
    import numpy.linalg._umath_linalg as ext
    other = ext.__file__
    if other.endswith(".so"):  # a shared object that dad did not build
        with pytest.raises(LoadError, match="not a library built by dad"):
            dad.load(other)

# ------------------------------------------------------------------------- cross targets

ELF_MACHINE = {"aarch64-unknown-linux-gnu": 183, "x86_64-unknown-linux-gnu": 62,
               "riscv64-unknown-linux-gnu": 243}


@pytest.mark.parametrize("triple", ["aarch64-unknown-linux-gnu", "riscv64-unknown-linux-gnu"])
def test_cross_target_object(tmp_path, triple):
    out = tmp_path / "rosen.o"
    r = subprocess.run([sys.executable, "-m", "dad.cli", "emit", "--stage", "obj", "--target",
                        triple, str(EXAMPLES / "rosenbrock.dad"), "-o", str(out)],
                       capture_output=True, text=True)
    if r.returncode != 0 and "No available targets" in r.stderr:
        pytest.skip(f"LLVM built without {triple}")
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2  # ELF, 64-bit
    assert int.from_bytes(data[18:20], "little") == ELF_MACHINE[triple]


def test_cross_target_assembly():
    r = subprocess.run([sys.executable, "-m", "dad.cli", "emit", "--stage", "asm", "--target",
                        "aarch64-unknown-linux-gnu", str(EXAMPLES / "rosenbrock.dad")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "rosen:" in r.stdout and re.search(r"\b(ldr|fmul|fmadd|ret)\b", r.stdout)
    assert "%rsp" not in r.stdout


def test_emit_obj_needs_output_and_known_triple(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dad.cli", "emit", "--stage", "obj",
                        str(EXAMPLES / "rosenbrock.dad")], capture_output=True, text=True)
    assert r.returncode == 2 and "-o FILE" in r.stderr
    r = subprocess.run([sys.executable, "-m", "dad.cli", "emit", "--stage", "obj", "--target",
                        "nonsense-triple", str(EXAMPLES / "rosenbrock.dad"), "-o",
                        str(tmp_path / "x.o")], capture_output=True, text=True)
    assert r.returncode == 2 and "cannot generate code" in r.stderr


# ------------------------------------------------------------------------- import hook

@pytest.fixture
def import_dir(tmp_path, monkeypatch):
    from dad.runtime import autoload
    monkeypatch.syspath_prepend(str(tmp_path))
    dad.install_import_hook()
    yield tmp_path
    autoload.uninstall()
    for name in [n for n in sys.modules if n.startswith("dadhook_")]:
        del sys.modules[name]


def test_import_hook_finds_dad_source(import_dir):
    (import_dir / "dadhook_sq.dad").write_text("fn sq(x: f64) -> f64 { return x * x; }\n"
                                               "fn dsq = grad(sq);\n")
    import dadhook_sq
    assert dadhook_sq.sq(3.0) == 9.0 and dadhook_sq.dsq(3.0) == 6.0
    assert dadhook_sq.sq.signature == "(x: f64) -> f64"
    assert dadhook_sq.__file__.endswith("dadhook_sq.dad")


@needs_cc
def test_import_hook_finds_built_library(import_dir, tmp_path_factory):
    src = tmp_path_factory.mktemp("src") / "dadhook_lib.dad"
    src.write_text("fn twice(x: f64[n]) -> f64[n] { return 2.0 * x; }\n")
    dad.build(src, import_dir)
    import dadhook_lib
    assert dadhook_lib.__file__.endswith("dadhook_lib.so")
    assert np.array_equal(dadhook_lib.twice([1.0, 2.0]), [2.0, 4.0])


def test_import_hook_leaves_python_modules_alone(import_dir):
    (import_dir / "dadhook_py.py").write_text("WHAT = 'python'\n")
    (import_dir / "dadhook_py.dad").write_text("fn f(x: f64) -> f64 { return x; }\n")
    import dadhook_py
    assert dadhook_py.WHAT == "python"
    with pytest.raises(ImportError):
        import dadhook_absent  # noqa: F401


def test_import_dad_autoload_installs_the_hook(tmp_path):
    (tmp_path / "dadhook_auto.dad").write_text("fn three() -> i64 { return 3; }\n")
    code = "import dad.autoload, dadhook_auto; print(dadhook_auto.three())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "3"
