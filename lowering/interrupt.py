"""Polls for Ctrl-C in loops (the run-time side: `runtime.interrupt`).

Every module has a global `dad.interrupt`: null, or the address of the run time's three
words `[SIGINTs received, stopped, count the call starts from]`. Contract:
- `init_seen(b, module, ctx)`: an entry takes the count its caller armed it with (word 2, set
  by the caller just before it let Python handle the signals already pending) and leaves
  -1 there (exchanged atomically), so an arm serves one call; an entry that finds -1 was not
  armed (called from C, or through `Kernel._centry`) and reads the count itself.
- `poll_every(lw, count)`: in a `while` loop's latch, with the iteration count: every
  `POLL_EVERY` iterations, `poll`.
- `poll(lw)`: once per iteration of a `for` loop that contains another loop. When the count
  differs from the entry's, set the `stopped` word and fail with the site
  `KeyboardInterrupt`, which frees the call's arrays and returns like any error.
A poll is an atomic (monotonic) load and a compare; `while` loops pay an add and a
well-predicted branch per iteration, innermost `for` loops nothing (they stay vectorisable).
"""
from __future__ import annotations

from llvmlite import ir

from .abi import CTX_INTERRUPTS, I32, I64, PTR

GLOBAL = "dad.interrupt"
POLL_EVERY = 1 << 14
_ZERO = "dad.interrupt.none"
WORDS = ir.ArrayType(I64, 3)


def _globals(module: ir.Module):
    g = module.globals.get(GLOBAL)
    if g is None:
        g = ir.GlobalVariable(module, PTR, GLOBAL)
        g.initializer = ir.Constant(PTR, None)
        zero = ir.GlobalVariable(module, WORDS, _ZERO)
        zero.initializer = ir.Constant(WORDS, None)
        zero.linkage = "internal"
    return g, module.globals[_ZERO]


def _words(b: ir.IRBuilder, module: ir.Module):
    g, zero = _globals(module)
    p = b.load(g)
    none = b.bitcast(zero, PTR)
    p = b.select(b.icmp_unsigned("==", p, ir.Constant(PTR, None)), none, p)
    return b.bitcast(p, WORDS.as_pointer())


def _count(b, words):
    return b.load_atomic(b.gep(words, [I32(0), I32(0)]), "monotonic", 8)


UNARMED = -1


def init_seen(b: ir.IRBuilder, module: ir.Module, ctx) -> None:
    words = _words(b, module)
    base = b.atomic_rmw("xchg", b.gep(words, [I32(0), I32(2)]), I64(UNARMED), "monotonic")
    armed = b.icmp_signed("!=", base, I64(UNARMED))
    b.store(b.select(armed, base, _count(b, words)), b.gep(ctx, [I32(0), I32(CTX_INTERRUPTS)]))


def poll(lw) -> None:
    b = lw.b
    words = _words(b, lw.m.module)
    seen = b.load(b.gep(lw.ctx, [I32(0), I32(CTX_INTERRUPTS)]))
    changed = b.icmp_unsigned("!=", _count(b, words), seen)
    stop = lw.llfn.append_basic_block("interrupt.stop")
    cont = lw.llfn.append_basic_block("interrupt.none")
    br = b.cbranch(changed, stop, cont)
    br.set_weights([1, 1 << 20])
    b.position_at_end(stop)
    b.store_atomic(I64(1), b.gep(words, [I32(0), I32(1)]), "monotonic", 8)
    site = lw.m.site("KeyboardInterrupt", "", "interrupted")
    lw.check(ir.Constant(ir.IntType(1), 0), site)
    b.branch(cont)
    b.position_at_end(cont)


def poll_every(lw, count) -> None:
    b = lw.b
    due = b.icmp_unsigned("==", b.and_(count, I64(POLL_EVERY - 1)), I64(0))
    pollb = lw.llfn.append_basic_block("interrupt.poll")
    cont = lw.llfn.append_basic_block("interrupt.after")
    br = b.cbranch(due, pollb, cont)
    br.set_weights([1, POLL_EVERY])
    b.position_at_end(pollb)
    poll(lw)
    b.branch(cont)
    b.position_at_end(cont)
