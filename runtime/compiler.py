"""The compile pipeline and the compiled-module object users get from `dad.compile`.

`compile_module(ir_module)` optimises the IR with the default pass pipeline (the module kept
as `ir_module`, which run-time derivations start from), lowers a copy put through the
machine-only rewrites (`machine_ir`) to LLVM, optimises that for the host and loads it; the result is a `CompiledModule` whose
attributes are `Kernel` callables, one per exported function. Each stage's text (IR,
optimised IR, LLVM IR, assembly) stays available for `dadc emit` and for tests.
"""
from __future__ import annotations

import time

from ..lang.callgraph import reachable
from ..lang.ir import Module
from ..lang.printer import print_function, print_module
from ..lowering import lower_module
from . import deep, target
from .jit import JitModule, function_text
from .kernel import make_kernel


def optimize_ir(m: Module) -> Module:
    from ..lang.passes import default_pipeline, PassManager
    return deep.run(PassManager(default_pipeline()).run, m)


def machine_ir(m: Module) -> Module:
    """A copy of `m` after the rewrites meant only for machine code (`machine_pipeline`):
    what is lowered. `m` itself stays what run-time derivations start from."""
    from ..lang.passes import machine_pipeline, PassManager
    from ..lang.passes.util import clone_module
    return deep.run(lambda: PassManager(machine_pipeline()).run(clone_module(m)))


def derive_all(m: Module, stop_at: str | None = None):
    """Make every derived function the front end asked for, in order: each target (and what
    it calls) is optimised first, so AD sees clean IR; the caller optimises again after.
    With `stop_at`, stop after that derived function and return its derivation request.
    Runs on a large stack (`runtime.deep`)."""
    return deep.run(_derive_all, m, stop_at)


def _derive_all(m: Module, stop_at: str | None):
    from ..ad import ADError, derive
    from ..lang.passes import default_pipeline, PassManager
    from ..lang.passes.inline_calls import inline_helpers
    optimized: set[str] = set()
    derived = {d.name for d in m.derivations}
    for d in m.derivations:
        group = reachable(m, d.target)
        todo = [m[n] for n in sorted(group - optimized)]
        if todo:
            inline_helpers(m, [f.name for f in todo], derived)
            PassManager(default_pipeline(), context=m).run(Module(todo))
            optimized |= group
        try:
            fn = derive(m, d.kind, d.target, d.wrt, d.name, **getattr(d, "options", {}))
        except ADError as exc:
            exc.derivation = d
            raise
        if d.internal:
            fn.attrs["internal"] = True
        optimized.add(d.name)
        if d.name == stop_at:
            return d
    m.derivations = []
    return m


class CompiledModule:
    def __init__(self, ir_module: Module, source_ir: str, *, filename: str = "<string>",
                 timings: dict | None = None):
        self.filename = filename
        self.ir_module = ir_module
        self.source_ir = source_ir          # IR as emitted by the front end
        self.timings = dict(timings or {})
        t0 = time.perf_counter()
        self.lowered = deep.run(lambda: lower_module(machine_ir(ir_module), target.host()))
        t1 = time.perf_counter()
        self.jit = JitModule(self.lowered.llvm_ir)
        t2 = time.perf_counter()
        self.timings.update(lower=t1 - t0, llvm=t2 - t1)
        self.kernels = {}
        for fn in ir_module:
            if fn.attrs.get("internal"):
                continue
            k = make_kernel(fn.name, fn.attrs["sig"], self.jit.address(fn.name),
                            fn.name in self.lowered.scalar_entries, self.lowered.sites)
            k.module = self
            self.kernels[fn.name] = k

    def __getattr__(self, name):
        kernels = self.__dict__.get("kernels", {})
        if name in kernels:
            return kernels[name]
        raise AttributeError(f"module has no function '{name}'")

    def __dir__(self):
        return list(super().__dir__()) + list(self.kernels)

    def __iter__(self):
        return iter(self.kernels.values())

    # ------------------------------------------------------------------ text of each stage
    def function_ir(self, name: str) -> str:
        return print_function(self.ir_module[name])

    def function_llvm_ir(self, name: str) -> str:
        return function_text(self.jit.optimized_ir, name, "llvm")

    def function_asm(self, name: str) -> str:
        return function_text(self.jit.asm, name, "asm")

    @property
    def ir(self) -> str:
        return print_module(self.ir_module)

    @property
    def llvm_ir(self) -> str:
        return self.jit.optimized_ir

    @property
    def asm(self) -> str:
        return self.jit.asm


def compile_module(m: Module, *, filename: str = "<string>", timings: dict | None = None,
                   optimize: bool = True) -> CompiledModule:
    """Derive, optimise, lower and load `m`, on a large stack (`runtime.deep`)."""
    return deep.run(_compile_module, m, filename=filename, timings=timings, optimize=optimize)


def _compile_module(m: Module, *, filename: str, timings: dict | None,
                    optimize: bool) -> CompiledModule:
    source_ir = print_module(m)
    t0 = time.perf_counter()
    derive_all(m)
    if optimize:
        m = optimize_ir(m)
    timings = dict(timings or {}, ir_passes=time.perf_counter() - t0)
    return CompiledModule(m, source_ir, filename=filename, timings=timings)
