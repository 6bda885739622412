"""The C library functions the generated code calls, declared on first use.

`libc(module, name)` declares calloc, malloc, free, realloc, memmove or madvise in `module`
(once); `declare(module, name, ret, args)` any other external function; `advise_huge` asks
for transparent huge pages on a large fresh block. Used by the run-time helpers
(`lowering.rtlib`), the tape (`lowering.tape`) and the memory rules (`lowering.memory`),
none of which needs the others for it.
"""
from __future__ import annotations

from llvmlite import ir

from .abi import I32, I64, PTR

HUGE = 2 << 20  # arrays from 2 MB up get MADV_HUGEPAGE (Linux); elsewhere it is a hint ignored


def declare(module: ir.Module, name: str, ret, args) -> ir.Function:
    if name in module.globals:
        return module.globals[name]
    return ir.Function(module, ir.FunctionType(ret, args), name)


def libc(module: ir.Module, name: str) -> ir.Function:
    sigs = {
        "calloc": (PTR, [I64, I64]),
        "malloc": (PTR, [I64]),
        "free": (ir.VoidType(), [PTR]),
        "realloc": (PTR, [PTR, I64]),
        "memmove": (PTR, [PTR, PTR, I64]),
        "madvise": (I32, [PTR, I64, I32]),
    }
    ret, args = sigs[name]
    return declare(module, name, ret, args)


def advise_huge(b: ir.IRBuilder, module: ir.Module, base, nbytes) -> None:
    """From 2 MB up, ask for transparent huge pages on the whole 2 MB pages inside
    [base, base + nbytes), so that first touches fault 2 MB at a time, not 4 KB."""
    with b.if_then(b.icmp_unsigned(">=", nbytes, I64(HUGE))):
        addr = b.ptrtoint(base, I64)
        start = b.and_(b.add(addr, I64(HUGE - 1)), I64(-HUGE))
        end = b.and_(b.add(addr, nbytes), I64(-HUGE))
        with b.if_then(b.icmp_unsigned(">", end, start)):
            b.call(libc(module, "madvise"), [b.inttoptr(start, PTR), b.sub(end, start), I32(14)])
