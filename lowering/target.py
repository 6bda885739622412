"""The target of machine code: what the lowering and the back end ask of the machine.

Contract: a `Target` is plain data, made once per compile and passed down (never read from
globals): the LLVM triple, CPU and features, the data layout (empty: LLVM's default for the
triple), and derived from the triple the operating system, the binary format and the names
the generated code calls:
- `math_function(name, elem)`: the C math library's name of an elementary function for an
  element type (`sin`/`sinf`, `lgamma_r`/`lgammaf_r`: the f32 variant appends `f` to the
  stem, before a `_r` suffix);
- `stack_bounds`: how an entry finds its thread's stack (`"glibc"`: pthread_getattr_np on
  Linux and the BSDs, `"darwin"`: pthread_get_stackaddr_np; `lowering.stack`);
- `binary`: `"elf"`, `"macho"` or `"coff"`, and `shared_suffix` the shared-library suffix;
- `calling_convention`: the LLVM calling convention of entries (`"ccc"`, the platform's C
  convention, which the ctypes callers and the C headers of runtime/aot.py assume).
`host()` in runtime/target.py makes the host's target (the CPU with all its features);
`Target.cross(triple, cpu)` another. The shape leaves room for a GPU target (NVPTX: another
binary format, libdevice names for `math_function`) without touching the lowering rules.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    triple: str
    cpu: str = "generic"
    features: str = ""
    data_layout: str = ""

    @classmethod
    def cross(cls, triple: str, cpu: str | None = None) -> "Target":
        """Another machine: `cpu` (default "generic") with that CPU's own features."""
        return cls(triple, cpu or "generic", "")

    @property
    def os(self) -> str:
        t = self.triple.lower()
        for key, name in (("darwin", "darwin"), ("apple", "darwin"), ("macos", "darwin"),
                          ("windows", "windows"), ("win32", "windows"), ("mingw", "windows"),
                          ("freebsd", "freebsd"),
                          ("linux", "linux")):
            if key in t:
                return name
        return "unknown"

    @property
    def binary(self) -> str:
        return {"darwin": "macho", "windows": "coff"}.get(self.os, "elf")

    @property
    def shared_suffix(self) -> str:
        return {"macho": ".dylib", "coff": ".dll"}[self.binary] if self.binary != "elf" else ".so"

    @property
    def stack_bounds(self) -> str:
        return "darwin" if self.os == "darwin" else "glibc"

    calling_convention = "ccc"

    def math_function(self, name: str, elem: str) -> str:
        """The C math library's function `name` (the f64 one's name) for `elem` f64 or f32."""
        if elem == "f64":
            return name
        assert elem == "f32", elem
        stem, reentrant = (name[:-2], "_r") if name.endswith("_r") else (name, "")
        return stem + "f" + reentrant

    def with_data_layout(self, data_layout: str) -> "Target":
        return Target(self.triple, self.cpu, self.features, data_layout)
