"""The AD tape: a per-call LIFO stack of 8-byte slots in the call's context.

`dad.tape_push %v` appends the components of `v` (a scalar, or a memref's pointer and
dimensions) and `%v = dad.tape_pop : T` takes them back in reverse order. The stack lives in
the context fields `tape_data`, `tape_size` (bytes in use) and `tape_cap`; it grows by
doubling through `dad_rt_tape_grow` (MemoryError when that fails) and is freed with the
call's arrays by `dad_rt_free_all`, on every path. Being per call, it keeps compiled
functions re-entrant and thread-safe.
"""
from __future__ import annotations

from llvmlite import ir

from . import abi
from .abi import CTX_PTR, F32, I1, I32, I64, I8, PTR
from .rules import rule

DATA, SIZE, CAP = 4, 5, 6  # field numbers in the context struct


def _field(b, ctx, k):
    return b.gep(ctx, [I32(0), I32(k)])


def build(module: ir.Module) -> None:
    """`dad_rt_tape_grow(ctx, need) -> i1`: capacity for `need` more bytes, false when OOM."""
    if "dad_rt_tape_grow" in module.globals:
        return
    realloc = module.globals.get("realloc") or ir.Function(
        module, ir.FunctionType(PTR, [PTR, I64]), "realloc")
    fn = ir.Function(module, ir.FunctionType(I1, [CTX_PTR, I64]), "dad_rt_tape_grow")
    fn.linkage = "internal"
    ctx, need = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    size = b.load(_field(b, ctx, SIZE))
    cap = b.load(_field(b, ctx, CAP))
    want = b.add(size, need)
    doubled = b.mul(cap, I64(2))
    new_cap = b.select(b.icmp_unsigned(">", doubled, want), doubled, want)
    new_cap = b.select(b.icmp_unsigned("<", new_cap, I64(4096)), I64(4096), new_cap)
    data = b.load(_field(b, ctx, DATA))
    grown = b.call(realloc, [data, new_cap])
    ok = b.icmp_unsigned("!=", grown, ir.Constant(PTR, None))
    with b.if_then(ok):
        b.store(grown, _field(b, ctx, DATA))
        b.store(new_cap, _field(b, ctx, CAP))
    b.ret(ok)


def free_tape(b: ir.IRBuilder, module: ir.Module, ctx) -> None:
    free = module.globals.get("free") or ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR]), "free")
    b.call(free, [b.load(_field(b, ctx, DATA))])
    for k in (DATA, SIZE, CAP):
        b.store(ir.Constant(abi.CTX.elements[k], None), _field(b, ctx, k))


def _slots(comps) -> list:
    return comps


def _to_slot(b, v):
    t = v.type
    if t == abi.F64:
        return b.bitcast(v, I64)
    if t == F32:
        return b.zext(b.bitcast(v, I32), I64)
    if t == I1:
        return b.zext(v, I64)
    if isinstance(t, ir.PointerType):
        return b.ptrtoint(v, I64)
    return v


def _from_slot(b, s, t):
    if t == abi.F64:
        return b.bitcast(s, abi.F64)
    if t == F32:
        return b.bitcast(b.trunc(s, I32), F32)
    if t == I1:
        return b.trunc(s, I1)
    if isinstance(t, ir.PointerType):
        return b.inttoptr(s, t)
    return s


@rule("dad.tape_push")
def _push(lw, op):
    b = lw.b
    comps = lw.get(op.operands[0])
    nbytes = I64(8 * len(comps))
    size = b.load(_field(b, lw.ctx, SIZE))
    cap = b.load(_field(b, lw.ctx, CAP))
    fits = b.icmp_unsigned("<=", b.add(size, nbytes), cap)
    with b.if_then(b.not_(fits), likely=False):
        grown = b.call(lw.m.module.globals["dad_rt_tape_grow"], [lw.ctx, nbytes])
        site = lw.m.site("MemoryError", op.attrs.get("loc", ""), "out of memory for the AD tape")
        lw.check(grown, site)
    data = b.load(_field(b, lw.ctx, DATA))
    slots = b.bitcast(b.gep(data, [size]), I64.as_pointer())
    for k, c in enumerate(comps):
        b.store(_to_slot(b, c), b.gep(slots, [I64(k)]))
    b.store(b.add(size, nbytes), _field(b, lw.ctx, SIZE))
    return None


@rule("dad.tape_pop")
def _pop(lw, op):
    b = lw.b
    types = abi.components(op.results[0].type)
    nbytes = I64(8 * len(types))
    size = b.sub(b.load(_field(b, lw.ctx, SIZE)), nbytes)
    b.store(size, _field(b, lw.ctx, SIZE))
    data = b.load(_field(b, lw.ctx, DATA))
    slots = b.bitcast(b.gep(data, [size]), I64.as_pointer())
    return [[_from_slot(b, b.load(b.gep(slots, [I64(k)])), t) for k, t in enumerate(types)]]
