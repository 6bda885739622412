"""The Python API: `compile`, `compile_file` and the exceptions users catch.

`compile(source)` runs the whole pipeline (front end → IR passes → LLVM → machine code) and
returns a `CompiledModule` whose attributes are the exported functions; `compile_file(path)`
does the same for a `.dad` file, naming it in diagnostics and run-time errors.
"""
from __future__ import annotations

import os
import time

from .ad import ADError
from .frontend.diagnostics import CompileError, Diagnostic
from .runtime.compiler import CompiledModule, compile_module
from .runtime import cache, loader  # noqa: F401  (imported here: a warm compile is a hash and a dlopen)


def source_text(source) -> str:
    """The program text `compile` was given: a str, or bytes / bytearray / memoryview
    decoded as UTF-8 (a byte-order mark is skipped by the parser). Anything else is a
    TypeError; bytes that are not UTF-8 are a ValueError (UnicodeDecodeError)."""
    if isinstance(source, str):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source).decode("utf-8")
    raise TypeError("dad.compile expects the program's source text as a str (or UTF-8 bytes), "
                    f"got {type(source).__name__}; use dad.compile_file for a path")


def compile(source: str | bytes, *, fast_math: bool = False,
            filename: str = "<string>") -> CompiledModule:
    source = source_text(source)
    if cache.enabled():  # ahead-of-time: a shared library in the compile cache (runtime/cache.py)
        return cache.compile(source, filename=filename, fast_math=fast_math)
    return compile_jit(source, fast_math=fast_math, filename=filename)


def compile_jit(source: str, *, fast_math: bool = False, filename: str = "<string>") -> CompiledModule:
    """`compile` without the cache: machine code made in memory by the JIT."""
    from .runtime.deep import compile_step
    return compile_step(_compile_jit, source_text(source), filename, fast_math)


def _compile_jit(source: str, filename: str, fast_math: bool) -> CompiledModule:
    from .frontend import compile_to_ir
    t0 = time.perf_counter()
    ir_module = compile_to_ir(source, filename, fast_math=fast_math)
    try:
        return compile_module(ir_module, filename=filename,
                              timings={"frontend": time.perf_counter() - t0})
    except ADError as exc:
        d = getattr(exc, "derivation", None)
        if d is None:
            raise
        raise CompileError([Diagnostic(d.span, f"cannot derive '{d.name}': {exc}")], source) from None


def compile_file(path: str | os.PathLike, *, fast_math: bool = False) -> CompiledModule:
    path = os.fspath(path)
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    return compile(source, fast_math=fast_math, filename=path)


# ----------------------------------------------------------------- ahead of time (runtime/aot.py)

def load(path: str | os.PathLike) -> CompiledModule:
    """The module of a shared library built by `dadc build` (no `.dad` source needed)."""
    from .runtime.loader import load as _load
    return _load(path)


def build(path: str | os.PathLike, out_dir: str | os.PathLike, *, name: str | None = None,
          cpu: str | None = None, fast_math: bool = False) -> dict:
    """`dadc build`: write `out_dir/NAME.so` and `out_dir/NAME.h` for a `.dad` file; returns
    the library's metadata with the paths ("so", "header") and stage times ("timings")."""
    from .runtime import aot
    path = os.fspath(path)
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    return aot.build_library(source, os.fspath(out_dir), name=name or aot.library_name(path),
                             filename=path, fast_math=fast_math, cpu=cpu)


def install_import_hook() -> None:
    """Let `import NAME` find `NAME.dad` (compiled through the cache) or a built `NAME.so`
    on `sys.path`. Same as `import dad.autoload`."""
    from .runtime.autoload import install
    install()


__all__ = ["compile", "compile_file", "CompileError", "CompiledModule", "load", "build",
           "install_import_hook"]
