"""In-process machine code: an LLVM module optimised for the host and loaded with MCJIT.

`JitModule(llvm_ir)` parses, optimises and finalises the code; `address(name)` gives the
address of an entry point. The engine (and with it the code) lives as long as the object;
when the object goes, the module's static destructors run first (they free what the code
keeps between calls: the cached AD tape, `lowering.tape`). `optimized_ir` and `asm` are
text for people; the assembly is produced on first request.
"""
from __future__ import annotations

import weakref

import llvmlite.binding as llvm

from . import target


class JitModule:
    def __init__(self, llvm_ir: str, tm=None):
        self.tm = tm or target.host_machine()
        mod = target.parse(llvm_ir, self.tm)
        target.optimize(mod, self.tm)
        self.optimized_ir = str(mod)
        with target.codegen():
            self.engine = llvm.create_mcjit_compiler(mod, self.tm)
            self.engine.finalize_object()
            self.engine.run_static_constructors()
        from .interrupt import attach
        attach(self.engine.get_global_value_address("dad.interrupt"))
        weakref.finalize(self, self.engine.run_static_destructors)
        self._asm: str | None = None

    def address(self, name: str) -> int:
        addr = self.engine.get_function_address(name)
        if not addr:
            raise KeyError(f"no compiled function '{name}'")
        return addr

    @property
    def asm(self) -> str:
        if self._asm is None:
            with target.codegen():
                self._asm = target.shared_host_machine().emit_assembly(
                    llvm.parse_assembly(self.optimized_ir))
        return self._asm


def function_text(text: str, name: str, kind: str) -> str:
    """The part of a whole-module LLVM IR or assembly listing that defines `name`'s code."""
    lines = text.splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        if kind == "llvm":
            if line.startswith("define ") and ("@" + name + "(" in line or f'@"{name}' in line
                                               or "@dad.impl." + name + "(" in line
                                               or f'@"dad.impl.{name}"(' in line):
                inside = True
            if inside:
                out.append(line)
                if line == "}":
                    inside = False
                    out.append("")
        else:
            if line.startswith((name + ":", f'"{name}', "dad.impl." + name + ":",
                                f'"dad.impl.{name}"')):
                inside = True
            if inside:
                out.append(line)
                if line.strip().startswith(".Lfunc_end") or line.strip().startswith(".size"):
                    inside = False
    return "\n".join(out) if out else text
