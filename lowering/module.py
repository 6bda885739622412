"""Lowering of a whole IR module to an LLVM module (llvmlite.ir), plus its error-site table.

`lower_module(m, target) -> Lowered` gives the LLVM IR text for `target` (lowering/target.py), the site table (site number → kind,
location, message template with `{d0}`/`{d1}` placeholders) and the names of the exported
functions whose entry returns a scalar directly (`lowering.entry`). Internal
implementations are `internal` so LLVM may inline and drop them (straight-line ones of up
to `INLINE_OPS` ops, counting those of the functions inlined into them, always are: see
`inlined_functions`); only the entries are visible.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from llvmlite import ir

from ..lang.ir import Module
from . import abi, rtlib
from .entry import build_entry, scalar_entry
from .target import Target
from .function import FunctionLowering
from ..lang.ops import has_trait, isa, FUNC_CALL


@dataclass(frozen=True)
class Site:
    kind: str      # IndexError | ZeroDivisionError | ValueError | MemoryError | RecursionError
    loc: str       # "file.dad:line:col" or ""
    message: str   # with {d0} and {d1} placeholders

    def render(self, d0: int, d1: int) -> str:
        text = self.message.format(d0=d0, d1=d1)
        return f"{self.loc}: {text}" if self.loc else text


@dataclass
class Lowered:
    llvm_ir: str
    sites: list[Site]
    scalar_entries: set[str] = field(default_factory=set)


class ModuleLowering:
    def __init__(self, m: Module, target: Target):
        self.ir_module = m
        self.target = target
        self.module = ir.Module(name="dad")
        self.module.triple = target.triple
        if target.data_layout:
            self.module.data_layout = target.data_layout
        self.sites: list[Site] = []
        self._site_ids: dict[Site, int] = {}
        self._internal: dict[str, ir.Function] = {}
        self._callees = {op.attrs["callee"] for fn in m for op in fn.walk()
                         if isa(op, FUNC_CALL)}
        self._always_inline = inlined_functions(m)
        from ..lang.callgraph import recursive
        self.recursive = recursive(m)   # calls of these check the stack (lowering.stack)
        rtlib.build(self.module)
        from .interrupt import _globals
        _globals(self.module)   # `dad.interrupt`, set by the run time (runtime.interrupt)

    def site(self, kind: str, loc: str, message: str) -> int:
        s = Site(kind, loc, message)
        if s not in self._site_ids:
            self.sites.append(s)
            self._site_ids[s] = len(self.sites)
        return self._site_ids[s]

    def internal(self, name: str) -> ir.Function:
        if name not in self._internal:
            fn = self.ir_module[name]
            llfn = ir.Function(self.module, abi.internal_function_type(fn.param_types, fn.result_types),
                               "dad.impl." + name)
            llfn.linkage = "internal"
            if fn.attrs.get("cold"):  # a slow path taken rarely (speculate_zero_safe)
                llfn.attributes.add("cold")
                llfn.attributes.add("noinline")
            elif name in self._always_inline:
                llfn.attributes.add("alwaysinline")
            self._internal[name] = llfn
        return self._internal[name]

    def called_elsewhere(self, name: str) -> bool:
        """Whether some IR function of the module calls `name`."""
        return name in self._callees

    def run(self) -> Lowered:
        scalar = set()
        for fn in self.ir_module:
            llfn = self.internal(fn.name)
            FunctionLowering(self, fn, llfn).run()
            _mark_noalias(llfn, fn)
        for fn in self.ir_module:
            if fn.attrs.get("internal"):
                continue
            build_entry(self, fn)
            if scalar_entry(fn):
                scalar.add(fn.name)
        return Lowered(str(self.module), self.sites, scalar)


def _mark_noalias(llfn: ir.Function, fn) -> None:
    """Array parameters are never written through another name: mark their pointers noalias."""
    from ..lang.ir import MemRefType
    k = 1
    for p in fn.params:
        if isinstance(p.type, MemRefType):
            llfn.args[k].add_attribute("noalias")
        k += len(abi.components(p.type))


def lower_module(m: Module, target: Target) -> Lowered:
    """The LLVM IR of `m` for `target` (lowering/target.py)."""
    return ModuleLowering(m, target).run()


INLINE_OPS = 400  # a straight-line function up to this many ops is inlined at every call


def inlined_functions(m: Module) -> set[str]:
    """The functions inlined wherever they are called: no loops and small, counting the ops
    of the functions inlined into them (a derived function called per element of a loop,
    such as a vjp of a scalar function, then shares its caller's common subexpressions: two
    sweeps with different cotangents share one forward computation). Counting the inlined
    callees keeps a chain of small functions, each calling the previous, linear in size.
    Callees come first (`lang.callgraph.postorder`; a recursive call is not counted)."""
    from ..lang.callgraph import postorder
    size: dict[str, int] = {}
    out: set[str] = set()
    for name in postorder(m, [fn.name for fn in m]):
        n = 0
        for op in m[name].walk():
            n += 1
            if has_trait(op, "loop"):
                break
            if isa(op, FUNC_CALL):
                n += size.get(op.attrs["callee"], 0)
            if n > INLINE_OPS:
                break
        else:
            size[name] = n
            out.add(name)
    return out
