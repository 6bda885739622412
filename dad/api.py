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


def compile(source: str, *, fast_math: bool = False, filename: str = "<string>") -> CompiledModule:
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


__all__ = ["compile", "compile_file", "CompileError", "CompiledModule"]
