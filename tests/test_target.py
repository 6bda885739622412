"""The target object (lowering/target.py): what the lowering asks of the machine comes from
it, so a cross triple changes the names and helpers in the LLVM IR and nothing else."""
from __future__ import annotations

import llvmlite.binding as llvm
import pytest

from dad.frontend import compile_to_ir
from dad.lowering import Target, lower_module
from dad.runtime import target as rt
from dad.runtime.compiler import machine_ir

PROGRAM = """
fn depth(x: f32, n: i64) -> f32 { if n <= 0 { return erf(x) + lgamma(x); } return depth(x, n - 1) * 1.5; }
fn g(x: f64) -> f64 { return sin(x) + lgamma(x) + erf(x); }
"""


@pytest.mark.parametrize("triple, os_, binary, suffix", [
    ("x86_64-unknown-linux-gnu", "linux", "elf", ".so"),
    ("aarch64-unknown-linux-gnu", "linux", "elf", ".so"),
    ("arm64-apple-macosx14.0.0", "darwin", "macho", ".dylib"),
    ("x86_64-apple-darwin23.1.0", "darwin", "macho", ".dylib"),
    ("x86_64-pc-windows-msvc", "windows", "coff", ".dll"),
    ("x86_64-w64-mingw32", "windows", "coff", ".dll"),
    ("x86_64-unknown-freebsd14.0", "freebsd", "elf", ".so"),
])
def test_what_the_triple_decides(triple, os_, binary, suffix):
    t = Target.cross(triple)
    assert (t.os, t.binary, t.shared_suffix, t.cpu) == (os_, binary, suffix, "generic")
    assert t.stack_bounds == ("darwin" if os_ == "darwin" else "glibc")


def test_math_library_names():
    t = Target.cross("x86_64-unknown-linux-gnu")
    assert [t.math_function(n, e) for n, e in [("sin", "f64"), ("sin", "f32"), ("lgamma_r", "f64"),
                                                ("lgamma_r", "f32"), ("atan2", "f32")]] == \
        ["sin", "sinf", "lgamma_r", "lgammaf_r", "atan2f"]


def test_host_target_is_this_machine():
    h = rt.host()
    assert h.triple == llvm.get_process_triple() and h.cpu == llvm.get_host_cpu_name()
    assert h.data_layout and h.features


@pytest.mark.parametrize("triple, helper", [
    ("x86_64-unknown-linux-gnu", "pthread_getattr_np"),
    ("arm64-apple-macosx14.0.0", "pthread_get_stackaddr_np"),
])
def test_lowering_asks_the_target(triple, helper):
    """The triple reaches the LLVM module; the stack bounds of a recursive function and the
    f32 math functions are the target's."""
    llvm_ir = lower_module(machine_ir(compile_to_ir(PROGRAM)), Target.cross(triple)).llvm_ir
    assert f'target triple = "{triple}"' in llvm_ir
    assert helper in llvm_ir
    other = {"pthread_getattr_np", "pthread_get_stackaddr_np"} - {helper}
    assert not any(o in llvm_ir for o in other)
    for name in ("@\"erff\"", "@\"lgammaf_r\"", "@\"lgamma_r\"", "@\"erf\""):
        assert name in llvm_ir or name.replace('"', "") in llvm_ir, name
