"""Lowering rules of the `memref.*` ops: heap arrays as (data pointer, dims...).

Arrays are contiguous and row-major; element `(i0, .., ik)` of dims `(d0, .., dk)` is at
`((i0*d1 + i1)*d2 + ...)`. Bool elements are stored as bytes. Checked accesses compare each
index unsigned against its dimension (so negative indices fail too) and raise IndexError at
the op's `loc`; allocations raise ValueError for a negative dimension and MemoryError when
the size overflows or malloc fails.
"""
from __future__ import annotations

from llvmlite import ir

from . import abi
from .abi import I1, I64, I8, PTR
from .libc import libc
from .ruletable import rule


def _linear(b, idx, dims):
    lin = idx[0]
    for i, d in zip(idx[1:], dims[1:]):
        lin = b.add(b.mul(lin, d, flags=["nsw"]), i, flags=["nsw"])
    return lin


def _check_indices(lw, op, idx, dims):
    if not op.attrs.get("checked", False):
        return
    loc = op.attrs.get("loc", "")
    for axis, (i, d) in enumerate(zip(idx, dims)):
        site = lw.m.site("IndexError", loc,
                         "index {d0} is out of bounds for axis %d with size {d1}" % axis)
        lw.check(lw.b.icmp_unsigned("<", i, d), site, i, d)


def _address(lw, op, arr, idx):
    ptr, *dims = arr
    _check_indices(lw, op, idx, dims)
    return lw.b.gep(ptr, [_linear(lw.b, idx, dims)], inbounds=True)


@rule("memref.load")
def _load(lw, op):
    arr = lw.get(op.operands[0])
    idx = [lw.one(v) for v in op.operands[1:]]
    v = lw.b.load(_address(lw, op, arr, idx))
    if op.results[0].type.is_bool:
        v = lw.b.trunc(v, I1)
    return [[v]]


@rule("memref.store")
def _store(lw, op):
    val = lw.one(op.operands[0])
    arr = lw.get(op.operands[1])
    idx = [lw.one(v) for v in op.operands[2:]]
    addr = _address(lw, op, arr, idx)
    if val.type == I1:
        val = lw.b.zext(val, I8)
    lw.b.store(val, addr)
    return None


@rule("memref.dim")
def _dim(lw, op):
    return [[lw.get(op.operands[0])[1 + op.attrs["index"]]]]


def _numel(b, dims):
    n = I64(1)
    for d in dims:
        n = b.mul(n, d)
    return n


@rule("memref.alloc")
def _alloc(lw, op):
    b = lw.b
    t = op.results[0].type
    dims = [lw.one(v) for v in op.operands]
    loc = op.attrs.get("loc", "")
    neg = lw.m.site("ValueError", loc, "negative array dimension {d0}")
    oom = lw.m.site("MemoryError", loc, "cannot allocate an array of {d0} x {d1} bytes")
    esize = I64(abi.ELEM_BYTES[t.elem.name])
    total = esize
    overflow = ir.Constant(I1, 0)
    for d in dims:
        lw.check(b.icmp_signed(">=", d, I64(0)), neg, d)
        prod = b.umul_with_overflow(total, d)
        total = b.extract_value(prod, 0)
        overflow = b.or_(overflow, b.extract_value(prod, 1))
    if len(dims) > 1:  # the element count itself may not fit in 64 bits
        huge = lw.m.site("MemoryError", loc, "cannot allocate an array of {d0} x {d1}"
                         + (" x ..." if len(dims) > 2 else "") + " elements")
        lw.check(b.not_(overflow), huge, dims[0], dims[1])
    big = b.or_(overflow, b.icmp_unsigned(">", total, I64(1 << 60)))
    lw.check(b.not_(big), oom, _numel(b, dims), esize)
    helper = "dad_rt_alloc" if op.attrs.get("zeroed", True) else "dad_rt_alloc_raw"
    raw = b.call(lw.m.module.globals[helper], [lw.ctx, total])
    lw.check(b.icmp_unsigned("!=", raw, ir.Constant(PTR, None)), oom, _numel(b, dims), esize)
    return [[b.bitcast(raw, abi.elem_ptr_type(t))] + dims]


@rule("dad.zero_range")
def _zero_range(lw, op):
    b = lw.b
    ptr = lw.get(op.operands[0])[0]
    lo, hi = lw.one(op.operands[1]), lw.one(op.operands[2])
    esize = abi.ELEM_BYTES[op.operands[0].type.elem.name]
    with b.if_then(b.icmp_signed("<", lo, hi)):
        start = b.bitcast(b.gep(ptr, [lo], inbounds=True), PTR)
        nbytes = b.mul(b.sub(hi, lo), I64(esize))
        memset = lw.m.module.declare_intrinsic("llvm.memset", [PTR, I64])
        b.call(memset, [start, ir.Constant(ir.IntType(8), 0), nbytes, ir.Constant(I1, 0)])
    return None


@rule("memref.dealloc")
def _dealloc(lw, op):
    ptr = lw.get(op.operands[0])[0]
    lw.b.call(lw.m.module.globals["dad_rt_free"], [lw.ctx, lw.b.bitcast(ptr, PTR)])
    return None


@rule("memref.row")
def _row(lw, op):
    b = lw.b
    ptr, *dims = lw.get(op.operands[0])
    i = lw.one(op.operands[1])
    site = lw.m.site("IndexError", op.attrs.get("loc", ""),
                     "row index {d0} is out of bounds for axis 0 with size {d1}")
    lw.check(b.icmp_unsigned("<", i, dims[0]), site, i, dims[0])
    inner = _numel(b, dims[1:])
    return [[b.gep(ptr, [b.mul(i, inner)], inbounds=True)] + dims[1:]]


@rule("memref.slice")
def _slice(lw, op):
    b = lw.b
    ptr, *dims = lw.get(op.operands[0])
    lo, hi = lw.one(op.operands[1]), lw.one(op.operands[2])
    site = lw.m.site("IndexError", op.attrs.get("loc", ""),
                     "slice {d0}..{d1} is out of bounds")
    ok = b.and_(b.and_(b.icmp_signed(">=", lo, I64(0)), b.icmp_signed("<=", lo, hi)),
                b.icmp_signed("<=", hi, dims[0]))
    lw.check(ok, site, lo, hi)
    inner = _numel(b, dims[1:])
    return [[b.gep(ptr, [b.mul(lo, inner)], inbounds=True), b.sub(hi, lo)] + dims[1:]]


@rule("memref.collapse")
def _collapse(lw, op):
    ptr, *dims = lw.get(op.operands[0])
    return [[ptr, _numel(lw.b, dims)]]


@rule("memref.copy")
def _copy(lw, op):
    b = lw.b
    src, dst = lw.get(op.operands[0]), lw.get(op.operands[1])
    t = op.operands[0].type
    nbytes = b.mul(_numel(b, src[1:]), I64(abi.ELEM_BYTES[t.elem.name]))
    b.call(libc(lw.m.module, "memmove"), [b.bitcast(dst[0], PTR), b.bitcast(src[0], PTR), nbytes])
    return None
