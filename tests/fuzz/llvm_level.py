"""`set_llvm_level(level)`: the LLVM optimisation level this process compiles with.

3 is what `dad.compile` does (O3 with vectorisation); below it, LLVM's module optimisation
runs at that speed level (0: not at all) and code generation at that level too, so
that a fuzzing run spends its time on the front end, AD and the IR passes (the machine code
is the same IR, unoptimised). Applies to the JIT (the fuzzer runs with DAD_NO_CACHE=1)."""
from __future__ import annotations


def set_llvm_level(level: int) -> None:
    import llvmlite.binding as llvm
    from dad.runtime import target
    if not hasattr(target, "_fuzz_original_optimize"):
        target._fuzz_original_optimize = target.optimize
        target._fuzz_original_tm = llvm.Target.create_target_machine
    if level >= 3:
        target.optimize = target._fuzz_original_optimize
        llvm.Target.create_target_machine = target._fuzz_original_tm
        return
    original_tm = target._fuzz_original_tm

    def create_target_machine(self, *args, **kwargs):   # code generation at `level` too
        kwargs["opt"] = level
        return original_tm(self, *args, **kwargs)

    llvm.Target.create_target_machine = create_target_machine

    def optimize(mod, tm):
        if level <= 0:
            return
        pto = llvm.create_pipeline_tuning_options(speed_level=level)
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(mod, pb)

    target.optimize = optimize
