"""Loading shared libraries built by dad: `dad.load("DIR/NAME.so")`.

`load(path)` dlopens the library, reads the JSON metadata it exports (`dad_module_metadata`,
see `runtime.aot`) and returns a `LoadedModule`: a `CompiledModule` whose attributes are the
same `Kernel` callables `dad.compile` makes (argument checks, `out=`, errors naming the
`.dad` line), built from each function's signature, entry addresses and the site table. No
`.dad` file, no LLVM work at load time.

The texts of the stages (`mod.ir`, `k.llvm_ir`, `k.asm`, `mod.ir_module`) are not in the
library: they are made on first request by compiling the source embedded in the metadata
again with the JIT (the same IR and LLVM IR; the assembly of the host CPU). A library built
with `embed_source=False` raises a `RuntimeError` saying so instead.
"""
from __future__ import annotations

import ctypes
import json
import os
import threading
from collections.abc import Mapping

from ..lowering.module import Site
from .compiler import CompiledModule
from .kernel import make_kernel
from .aot import METADATA_FORMAT, METADATA_SYMBOL


class LoadError(ImportError):
    """A file that is not a loadable dad library (or not for this machine)."""


def _address(lib, symbol: str) -> int:
    try:
        return ctypes.cast(lib[symbol], ctypes.c_void_p).value
    except AttributeError:
        raise LoadError(f"{lib._name}: no symbol '{symbol}' (the library does not match its "
                        "metadata)") from None


def read_metadata(lib) -> dict:
    try:
        raw = ctypes.c_char.in_dll(lib, METADATA_SYMBOL)
    except ValueError:
        raise LoadError(f"{lib._name} is not a library built by dad (no {METADATA_SYMBOL})") from None
    meta = json.loads(ctypes.string_at(ctypes.addressof(raw)).decode("utf-8"))
    if meta.get("format") != METADATA_FORMAT:
        raise LoadError(f"{lib._name}: metadata format {meta.get('format')} is not "
                        f"{METADATA_FORMAT} (rebuild it with this dad)")
    return meta


def check_machine(meta: dict, path: str) -> None:
    """Refuse code for another triple, or that needs CPU features this host lacks (it would
    die of an illegal instruction rather than raise)."""
    import llvmlite.binding as llvm
    host = llvm.get_process_triple()
    if meta["triple"] != host:
        raise LoadError(f"{path} was built for {meta['triple']}, this machine is {host}")
    need = {f[1:] for f in meta.get("features", "").split(",") if f.startswith("+")}
    if need:
        have = {f[1:] for f in llvm.get_host_cpu_features().flatten().split(",") if f.startswith("+")}
        missing = sorted(need - have)
        if missing:
            raise LoadError(f"{path} was built for the CPU {meta['cpu']}, which has features this "
                            f"one lacks ({', '.join(missing[:8])}); rebuild it here or with "
                            "`dadc build --cpu generic`")


class LazyKernels(Mapping):
    """name -> Kernel; each function's caller is generated on first use (~0.3-0.8 ms each, so
    a warm compile of a module with many functions stays a hash and a dlopen)."""

    def __init__(self, module: "LoadedModule"):
        self._module = module
        self._functions = {f["name"]: f for f in module.meta["functions"]}
        self._made: dict = {}
        self._lock = threading.Lock()

    def __getitem__(self, name):
        k = self._made.get(name)
        if k is None:
            f = self._functions[name]  # KeyError for an unknown name
            with self._lock:
                k = self._made.get(name)
                if k is None:
                    m = self._module
                    k = make_kernel(f["name"], f["sig"], _address(m.lib, f["entry"]),
                                    f["scalar"], m.sites)
                    k.module = m
                    self._made[name] = k
        return k

    def __contains__(self, name) -> bool:
        return name in self._functions

    def __iter__(self):
        return iter(self._functions)

    def __len__(self) -> int:
        return len(self._functions)


class LoadedModule(CompiledModule):
    """A `CompiledModule` over a dlopened library; stage texts are made on demand."""

    def __init__(self, lib, meta: dict, path: str, *, ir_module=None, source_ir=None,
                 llvm_ir=None, asm_source=None, timings=None):
        self.path = path
        self.lib = lib
        self.meta = meta
        self.filename = meta["filename"]
        self.fast_math = meta["fast_math"]
        self.timings = dict(timings or {})
        self._lock = threading.Lock()
        self._full = None
        self._ir_module, self._source_ir, self._llvm_ir = ir_module, source_ir, llvm_ir
        self._asm_source = asm_source  # a callable making the assembly (fresh builds)
        self._asm = None
        self.sites = [Site(*s) for s in meta["sites"]]
        self.kernels = LazyKernels(self)

    # ------------------------------------------------------------------ texts, on demand
    def recompiled(self) -> CompiledModule:
        """The same program compiled again with the JIT (for the texts of its stages)."""
        with self._lock:
            if self._full is None:
                source = self.meta.get("source")
                if source is None:
                    raise RuntimeError(f"{self.path}: the IR, LLVM IR and assembly are not "
                                       "stored in the library and it was built without its "
                                       "source; build it with the source embedded (the default) "
                                       "or compile the .dad file to see them")
                from .aot import compile_source
                from .compiler import CompiledModule as Jit
                m, source_ir = compile_source(source, self.filename, fast_math=self.fast_math)
                self._full = Jit(m, source_ir, filename=self.filename)
            return self._full

    @property
    def ir_module(self):
        if self._ir_module is None:
            self._ir_module = self.recompiled().ir_module
        return self._ir_module

    @property
    def source_ir(self) -> str:
        if self._source_ir is None:
            self._source_ir = self.recompiled().source_ir
        return self._source_ir

    @property
    def llvm_ir(self) -> str:
        if self._llvm_ir is None:
            self._llvm_ir = self.recompiled().llvm_ir
        return self._llvm_ir

    @property
    def asm(self) -> str:
        if self._asm is None:
            self._asm = self._asm_source() if self._asm_source else self.recompiled().asm
        return self._asm

    @property
    def jit(self):
        return self.recompiled().jit

    @property
    def lowered(self):
        return self.recompiled().lowered

    def function_llvm_ir(self, name: str) -> str:
        from .jit import function_text
        return function_text(self.llvm_ir, name, "llvm")

    def function_asm(self, name: str) -> str:
        from .jit import function_text
        return function_text(self.asm, name, "asm")

    def __repr__(self) -> str:
        return f"<dad module {self.meta['name']} from {self.path}: {', '.join(self.kernels)}>"


def open_library(path: str):
    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such library: {path}")
    try:
        return ctypes.CDLL(path)
    except OSError as exc:
        raise LoadError(f"cannot load {path}: {exc}") from None


def load(path, **known) -> LoadedModule:
    """The module of a library built by `dadc build` (or the compile cache)."""
    path = os.fspath(path)
    lib = open_library(path)
    meta = read_metadata(lib)
    check_machine(meta, path)
    from .interrupt import attach
    try:
        attach(ctypes.addressof(ctypes.c_void_p.in_dll(lib, "dad.interrupt")))
    except ValueError:  # built before Ctrl-C polls existed
        pass
    return LoadedModule(lib, meta, path, **known)


__all__ = ["load", "LoadedModule", "LoadError", "read_metadata"]
