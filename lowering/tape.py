"""The AD tape: a per-call LIFO stack of 8-byte slots in the call's context.

`dad.tape_push %v` appends the components of `v` (a scalar, or a memref's pointer and
dimensions) and `%v = dad.tape_pop : T` takes them back in reverse order. Each op's `level`
attribute (default 0) picks one of `abi.TAPE_LEVELS` stacks, so reverse mode applied to
reverse-mode code records on a tape of its own. A stack lives in the context fields
`data`, `size` (bytes in use) and `cap` of its level; it grows by doubling through
`dad_rt_tape_grow` (MemoryError when that fails; from 2 MB up it asks for transparent huge
pages, so a long tape faults its pages in 2 MB at a time) and is given up with the call's
arrays by `dad_rt_free_all`, on every path. Being per call, it keeps compiled
functions re-entrant and thread-safe.

The module keeps one given-up tape buffer (up to `CACHE_MAX` bytes; of two, the larger) for
the next call: the first growth of a call's tape takes it (an atomic exchange, so two
threads never share one) when it is large enough, and frees it otherwise, so a gradient
called again and again does not pay for fresh pages (a 100 MB tape is 25,000 page faults)
nor for growing by doubling. While cached, a buffer's first 8 bytes hold its capacity.
`dad_rt_tape_release()` frees the kept buffer; it is the module's static destructor
(`llvm.global_dtors`: run when a library is unloaded or the process exits, and by
`runtime.jit.JitModule` when the Python object goes away).
"""
from __future__ import annotations

from llvmlite import ir

from . import abi
from .libc import advise_huge, libc
from .abi import CTX_PTR, F32, I1, I32, I64, I8, PTR
from .ruletable import rule

DATA, SIZE, CAP = 4, 5, 6  # field numbers of level 0 in the context struct; +3 per level
CACHE = "dad_rt_tape_cache"
CACHE_MAX = 1 << 28        # a larger tape (256 MB) is freed, not kept for the next call


def _field(b, ctx, k, level=0):
    return b.gep(ctx, [I32(0), I32(k + 3 * level)])


def _level(op) -> int:
    level = op.attrs.get("level", 0)
    if not 0 <= level < abi.TAPE_LEVELS:
        raise ValueError(f"AD nests {level + 1} reverse modes; at most {abi.TAPE_LEVELS} are supported")
    return level


def build(module: ir.Module) -> None:
    """`dad_rt_tape_grow(ctx, level, need) -> i1`: room for `need` more bytes on a level's
    tape, false when out of memory."""
    if "dad_rt_tape_grow" in module.globals:
        return
    realloc = libc(module, "realloc")
    cache = ir.GlobalVariable(module, PTR, CACHE)
    cache.linkage = "internal"
    cache.initializer = ir.Constant(PTR, None)
    _build_release(module, cache)
    fn = ir.Function(module, ir.FunctionType(I1, [CTX_PTR, I64, I64]), "dad_rt_tape_grow")
    fn.linkage = "internal"
    ctx0, level, need = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    # view the level's three fields as those of level 0 of a shifted context
    ctx = b.bitcast(b.gep(b.bitcast(ctx0, I64.as_pointer()), [b.mul(level, I64(3))]), CTX_PTR)
    size = b.load(_field(b, ctx, SIZE))
    cap = b.load(_field(b, ctx, CAP))
    want = b.add(size, need)
    doubled = b.mul(cap, I64(2))
    new_cap = b.select(b.icmp_unsigned(">", doubled, want), doubled, want)
    new_cap = b.select(b.icmp_unsigned("<", new_cap, I64(4096)), I64(4096), new_cap)
    data = b.load(_field(b, ctx, DATA))
    with b.if_then(b.icmp_unsigned("==", data, ir.Constant(PTR, None))):
        kept = b.atomic_rmw("xchg", cache, ir.Constant(PTR, None), "seq_cst")
        with b.if_then(b.icmp_unsigned("!=", kept, ir.Constant(PTR, None))):
            kept_cap = b.load(b.bitcast(kept, I64.as_pointer()))
            with b.if_then(b.icmp_unsigned(">=", kept_cap, want)):
                b.store(kept, _field(b, ctx, DATA))
                b.store(kept_cap, _field(b, ctx, CAP))
                b.ret(ir.Constant(I1, 1))
            b.call(libc(module, "free"), [kept])
    grown = b.call(realloc, [data, new_cap])
    ok = b.icmp_unsigned("!=", grown, ir.Constant(PTR, None))
    with b.if_then(ok):
        b.store(grown, _field(b, ctx, DATA))
        b.store(new_cap, _field(b, ctx, CAP))
        advise_huge(b, module, grown, new_cap)
    b.ret(ok)


def _build_release(module: ir.Module, cache) -> None:
    """`dad_rt_tape_release()`, the module's static destructor: free the kept buffer."""
    fnty = ir.FunctionType(ir.VoidType(), [])
    fn = ir.Function(module, fnty, "dad_rt_tape_release")
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    kept = b.atomic_rmw("xchg", cache, ir.Constant(PTR, None), "seq_cst")
    b.call(libc(module, "free"), [kept])
    b.ret_void()
    entry = ir.LiteralStructType([I32, fnty.as_pointer(), PTR])
    table = ir.GlobalVariable(module, ir.ArrayType(entry, 1), "llvm.global_dtors")
    table.linkage = "appending"
    table.initializer = ir.Constant(ir.ArrayType(entry, 1),
                                    [ir.Constant(entry, [I32(65535), fn, ir.Constant(PTR, None)])])


def free_tape(b: ir.IRBuilder, module: ir.Module, ctx) -> None:
    """Give up every level's tape: into the module's cache when it fits (of the buffer it
    displaces and itself, the larger stays; the other is freed), else freed."""
    free, cache = libc(module, "free"), module.globals[CACHE]
    null = ir.Constant(PTR, None)
    for level in range(abi.TAPE_LEVELS):
        data = b.load(_field(b, ctx, DATA, level))
        cap = b.load(_field(b, ctx, CAP, level))
        keep = b.and_(b.icmp_unsigned("!=", data, null), b.icmp_unsigned("<=", cap, I64(CACHE_MAX)))
        with b.if_else(keep) as (then, other):
            with then:
                b.store(cap, b.bitcast(data, I64.as_pointer()))
                old = b.atomic_rmw("xchg", cache, data, "seq_cst")
                with b.if_then(b.icmp_unsigned("!=", old, null)):
                    larger = b.icmp_unsigned(">", b.load(b.bitcast(old, I64.as_pointer())), cap)
                    with b.if_else(larger) as (back, drop):
                        with back:   # put the larger one back; free what that displaces
                            b.call(free, [b.atomic_rmw("xchg", cache, old, "seq_cst")])
                        with drop:
                            b.call(free, [old])
            with other:
                b.call(free, [data])
        for k in (DATA, SIZE, CAP):
            b.store(ir.Constant(abi.CTX.elements[k], None), _field(b, ctx, k, level))


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


def _make_room(lw, op, level: int, nbytes) -> None:
    """Grow the level's tape unless `nbytes` more fit (MemoryError when it cannot)."""
    b = lw.b
    size = b.load(_field(b, lw.ctx, SIZE, level))
    cap = b.load(_field(b, lw.ctx, CAP, level))
    fits = b.icmp_unsigned("<=", b.add(size, nbytes), cap)
    with b.if_then(b.not_(fits), likely=False):
        grown = b.call(lw.m.module.globals["dad_rt_tape_grow"], [lw.ctx, I64(level), nbytes])
        site = lw.m.site("MemoryError", nearest_loc(op), "out of memory for the AD tape")
        lw.check(grown, site)


def nearest_loc(op) -> str:
    """`op`'s source location, else that of the first located op in the block around it
    (the loop being recorded), then in the blocks around that; "" when there is none."""
    if op.attrs.get("loc"):
        return op.attrs["loc"]
    block = op.parent
    while block is not None:
        for other in block.ops:
            for o in other.walk():
                if o.attrs.get("loc"):
                    return o.attrs["loc"]
        region = block.parent
        owner = region.parent if region is not None else None
        block = owner.parent if owner is not None else None
    return ""


def _write_slots(b, comps, slots) -> None:
    """Store a value's components in consecutive 8-byte slots from `slots` (an i64*)."""
    for k, c in enumerate(comps):
        b.store(_to_slot(b, c), b.gep(slots, [I64(k)]))


def _reserved_bytes(lw, op):
    """`trips * bytes` of a reserve or commit (2**56 when that would not fit: MemoryError)."""
    b = lw.b
    trips = lw.one(op.operands[0])
    per = int(op.attrs["bytes"])
    big = b.icmp_unsigned(">", trips, I64((1 << 56) // per))
    return b.select(big, I64(1 << 56), b.mul(trips, I64(per)))


@rule("dad.tape_reserve")
def _reserve(lw, op):
    b = lw.b
    level = _level(op)
    _make_room(lw, op, level, _reserved_bytes(lw, op))
    data = b.load(_field(b, lw.ctx, DATA, level))
    return [[b.gep(data, [b.load(_field(b, lw.ctx, SIZE, level))])]]


@rule("dad.tape_put")
def _put(lw, op):
    b = lw.b
    slots = b.bitcast(lw.one(op.operands[1]), I64.as_pointer())
    _write_slots(b, lw.get(op.operands[0]), b.gep(slots, [lw.one(op.operands[2])]))
    return None


@rule("dad.tape_commit")
def _commit(lw, op):
    b = lw.b
    field = _field(b, lw.ctx, SIZE, _level(op))
    b.store(b.add(b.load(field), _reserved_bytes(lw, op)), field)
    return None


@rule("dad.tape_push")
def _push(lw, op):
    b = lw.b
    level = _level(op)
    comps = lw.get(op.operands[0])
    nbytes = I64(8 * len(comps))
    _make_room(lw, op, level, nbytes)
    size = b.load(_field(b, lw.ctx, SIZE, level))
    data = b.load(_field(b, lw.ctx, DATA, level))
    _write_slots(b, comps, b.bitcast(b.gep(data, [size]), I64.as_pointer()))
    b.store(b.add(size, nbytes), _field(b, lw.ctx, SIZE, level))
    return None


@rule("dad.tape_pop")
def _pop(lw, op):
    b = lw.b
    level = _level(op)
    types = abi.components(op.results[0].type)
    nbytes = I64(8 * len(types))
    size = b.sub(b.load(_field(b, lw.ctx, SIZE, level)), nbytes)
    b.store(size, _field(b, lw.ctx, SIZE, level))
    data = b.load(_field(b, lw.ctx, DATA, level))
    slots = b.bitcast(b.gep(data, [size]), I64.as_pointer())
    return [[_from_slot(b, b.load(b.gep(slots, [I64(k)])), t) for k, t in enumerate(types)]]
