"""Target machines and the LLVM optimisation pipeline.

`host_machine()` is the host CPU with all its features (cached); `machine(triple, cpu)` any
other. `optimize(llvm_module, tm)` runs LLVM's O3 pipeline (new pass manager) with loop and
SLP vectorisation. Code is generated position-independent so one object serves both the JIT
and shared libraries.

Compile time: two LLVM settings that cost much compile time and (measured on the examples
and `benchmarks/foundation.py`) no run time are changed, only while dad optimises
(`optimize`) or generates code (inside `codegen()`), then restored, so that other users of
llvmlite in the process see LLVM's defaults: no vectorised epilogue loop after a vectorised
loop (the remainder runs scalar; ~10% of optimisation and code generation time), and no loop
strength reduction in the code generator (~25% of code generation time; x86 addressing
modes make its rewrites mostly moot).

Two settings serve run time, measured with `benchmarks/forward.py` and `foundation.py`:
- in-order ("strict") floating-point reductions may be vectorised: a loop `s += t(i)` computes
  its terms `t` in vector registers and adds them to `s` one by one in the original order, so
  results stay bit for bit those of the scalar loop (the language forbids reassociating an
  explicit loop) while the work besides the chain of additions runs on vectors; a tangent
  loop with two sums (value and tangent) gains most;
- every function says `"min-legal-vector-width"="0"` (what C compilers emit), so the code
  generator keeps to the CPU's preferred vector width instead of also using 512-bit
  registers for loads and shuffles on AVX-512 machines, which lowers the clock there.
"""
from __future__ import annotations

import contextlib
import ctypes.util
import functools
import re
import threading

import llvmlite.binding as llvm


@functools.lru_cache(maxsize=None)
def _init() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()
    libm = ctypes.util.find_library("m")
    if libm:
        llvm.load_library_permanently(libm)


@functools.lru_cache(maxsize=None)
def _all_targets() -> None:
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()


def machine(triple: str | None = None, cpu: str | None = None, features: str | None = None):
    """A new target machine; the host (CPU name and features) when all arguments are None.

    Not shared: an MCJIT engine takes ownership of the machine it is given.
    """
    _init()
    if triple is None:
        triple = llvm.get_process_triple()
        if cpu is None:
            cpu = llvm.get_host_cpu_name()
            features = llvm.get_host_cpu_features().flatten()
    else:
        _all_targets()
    if cpu == "generic" or cpu is None:
        cpu, features = "generic" if cpu == "generic" else "", features or ""
    target = llvm.Target.from_triple(triple)
    return target.create_target_machine(cpu=cpu, features=features or "", opt=3,
                                        reloc="pic", codemodel="default")


def host_machine():
    return machine()


@functools.lru_cache(maxsize=None)
def host():
    """The host's `Target` (lowering/target.py): its triple, CPU with all its features, and
    data layout."""
    from ..lowering.target import Target
    _init()
    return Target(llvm.get_process_triple(), llvm.get_host_cpu_name(),
                  llvm.get_host_cpu_features().flatten(), str(shared_host_machine().target_data))


@functools.lru_cache(maxsize=None)
def shared_host_machine():
    """One host machine for work that never hands it to an engine (assembly, objects)."""
    return machine()


# (setting while dad works, LLVM's default restored after): see the module docstring
_OPTIMIZE_FLAGS = [("-enable-epilogue-vectorization=false", "-enable-epilogue-vectorization=true"),
                   ("-force-ordered-reductions=true", "-force-ordered-reductions=false")]
_CODEGEN_FLAGS = [("-disable-lsr", "-disable-lsr=false")]
_flags_lock = threading.RLock()


@contextlib.contextmanager
def _llvm_flags(flags):
    with _flags_lock:
        for on, _ in flags:
            llvm.set_option("dad", on)
        try:
            yield
        finally:
            for _, off in flags:
                llvm.set_option("dad", off)


def codegen():
    """Context for generating machine code (MCJIT finalisation, objects, assembly)."""
    return _llvm_flags(_CODEGEN_FLAGS)


def optimize(mod, tm) -> None:
    """O3 with loop and SLP vectorisation, in place."""
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = True
    pb = llvm.create_pass_builder(tm, pto)
    with _llvm_flags(_OPTIMIZE_FLAGS):
        pb.getModulePassManager().run(mod, pb)


_DEFINE = re.compile(r"^(define [^\n]*?)\s*\{$", re.M)
FUNCTION_ATTRS = '"min-legal-vector-width"="0"'


def parse(llvm_ir: str, tm):
    _init()
    llvm_ir = _DEFINE.sub(lambda m: f"{m.group(1)} {FUNCTION_ATTRS} {{", llvm_ir)
    mod = llvm.parse_assembly(llvm_ir)
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    return mod
