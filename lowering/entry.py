"""Exported entry points: one per exported function, its C ABI wrapper (see `lowering.abi`).

The entry puts the call's context on its stack, checks the array arguments against the
signature's size variables and literal dims, calls the internal function, and frees every
array of the call before returning (results are copied out first), on the error path too.
A function with one scalar result returns it directly (sentinel on error); the others
write their results through out pointers and return a status.

Compile time: one entry per function, and the internal function is inlined into it (and
so compiled once, and disappears) unless other functions call it too; then the call is
`noinline`, so the body is not compiled twice. LLVM's cost per function is high (about a
millisecond for a trivial one through O3 and code generation), so fewer functions pay.
"""
from __future__ import annotations

import math

from llvmlite import ir

from ..lang.ir import Function, MemRefType
from ..lang.signature import Signature, parse_signature
from . import abi
from .abi import CTX, I1, I32, I64, I8, PTR
from .function import unpack_results
from .libc import libc


class _Entry:
    def __init__(self, ml, fn: Function, sig: Signature, llfn: ir.Function):
        self.ml, self.fn, self.sig, self.llfn = ml, fn, sig, llfn
        self.b = ir.IRBuilder(llfn.append_basic_block("entry"))
        b = self.b
        self.ctx = b.alloca(CTX)
        b.store(ir.Constant(CTX, None), self.ctx)
        if ml.recursive:
            from .stack import init_stack_limit
            init_stack_limit(b, self.ctx)
        from .interrupt import init_seen
        init_seen(b, ml.module, self.ctx)
        self.params: list[list] = []
        args = list(llfn.args)
        for p in fn.params:
            n = len(abi.components(p.type))
            comps = args[:n]
            if p.type.is_bool:
                comps = [b.trunc(comps[0], I1)]
            self.params.append(comps)
            del args[:n]
        self.rest = args
        self.fail_block = llfn.append_basic_block("fail")
        self._bad_block: ir.Block | None = None
        self._bad_phis: list = []
        self.sizes = self._bind_sizes()

    def _bind_sizes(self) -> dict[str, ir.Value]:
        sizes: dict[str, ir.Value] = {}
        first: dict[str, str] = {}
        for p, comps in zip(self.sig.params, self.params):
            for axis, d in enumerate(p.type.dims):
                got = comps[1 + axis]
                if isinstance(d, int):
                    msg = f"parameter '{p.name}' must have size {d} along axis {axis}, not {{d0}}"
                    self._require(self.b.icmp_signed("==", got, I64(d)), msg, got, I64(d))
                elif d in sizes:
                    msg = (f"parameter '{p.name}' has size {{d0}} along axis {axis}, but "
                           f"{d} = {{d1}} from parameter '{first[d]}'")
                    self._require(self.b.icmp_signed("==", got, sizes[d]), msg, got, sizes[d])
                else:
                    sizes[d] = got
                    first[d] = p.name
        for p, comps in zip(self.sig.params, self.params):  # `-> f64[k]` for a `k: i64`
            if p.type.dtype == "i64" and not p.type.dims and p.name not in sizes:
                sizes[p.name] = comps[0]
        return sizes

    def _require(self, ok, msg, d0, d1) -> None:
        """Continue when `ok`; otherwise report `msg` (a site number or a ValueError message)
        through the entry's one shared `bad` block, whose phis pick the site and details."""
        site = msg if isinstance(msg, int) else self.ml.site("ValueError", "", msg)
        if self._bad_block is None:
            self._bad_block = self.llfn.append_basic_block("bad")
            b = ir.IRBuilder(self._bad_block)
            self._bad_phis = [b.phi(I64, name=n) for n in ("site", "d0", "d1")]
            for k, v in enumerate(self._bad_phis):
                b.store(v, b.gep(self.ctx, [I32(0), I32(k)]))
            b.branch(self.fail_block)
        cont = self.llfn.append_basic_block("ok")
        self.b.cbranch(ok, cont, self._bad_block)
        for phi, v in zip(self._bad_phis, (I64(site), d0, d1)):
            phi.add_incoming(v, self.b.block)
        self.b.position_at_end(cont)

    def call(self) -> list[list]:
        b = self.b
        impl = self.ml.internal(self.fn.name)
        shared = self.ml.called_elsewhere(self.fn.name)
        if not shared:
            impl.attributes.add("alwaysinline")  # the entry is its only caller
        r = b.call(impl, [self.ctx] + [c for cs in self.params for c in cs],
                   attrs=("noinline",) if shared else ())
        status = b.load(b.gep(self.ctx, [I32(0), I32(0)]))
        cont = self.llfn.append_basic_block("called")
        b.cbranch(b.icmp_signed("==", status, I64(0)), cont, self.fail_block)
        b.position_at_end(cont)
        return unpack_results(b, r, self.fn.result_types)

    def free_all(self, b):
        b.call(self.ml.module.globals["dad_rt_free_all"], [self.ctx])

    def dim_value(self, d) -> ir.Value:
        return I64(d) if isinstance(d, int) else self.sizes[d]


def build_entry(ml, fn: Function) -> ir.Function:
    """The exported function `fn.name`: `scalar_entry(fn)` decides its convention."""
    return (_build_scalar_entry if scalar_entry(fn) else _build_c_entry)(ml, fn)


def scalar_entry(fn: Function) -> bool:
    """One scalar result: the entry returns it (rather than writing it through a pointer)."""
    return len(fn.result_types) == 1 and not isinstance(fn.result_types[0], MemRefType)


def _abi_params(fn: Function) -> list[ir.Type]:
    params = []
    for p in fn.params:
        params += [I8] if p.type.is_bool else abi.components(p.type)
    return params


def _report(e: _Entry, errinfo) -> ir.Value:
    """At the error exit: copy (site, d0, d1) to `errinfo` when not null; the site."""
    b = e.b
    b.position_at_end(e.fail_block)
    status = b.load(b.gep(e.ctx, [I32(0), I32(0)]))
    with b.if_then(b.icmp_unsigned("!=", errinfo, ir.Constant(errinfo.type, None))):
        for k in range(3):
            b.store(b.load(b.gep(e.ctx, [I32(0), I32(k)])), b.gep(errinfo, [I64(k)]))
    e.free_all(b)
    return status


HANDOVER = 0x68616E64  # errinfo[0] on entry: array results with a NULL out are handed over


def _build_c_entry(ml, fn: Function) -> ir.Function:
    sig = parse_signature(fn.attrs["sig"])
    outs = [abi.elem_ptr_type(t) if isinstance(t, MemRefType) else abi.abi_scalar(t).as_pointer()
            for t in fn.result_types]
    fnty = ir.FunctionType(I64, _abi_params(fn) + outs + [I64.as_pointer()])
    llfn = ir.Function(ml.module, fnty, fn.name)
    e = _Entry(ml, fn, sig, llfn)
    results = e.call()
    b = e.b
    out_ptrs, errinfo = e.rest[:-1], e.rest[-1]
    missing = ml.site("MemoryError", "", "cannot allocate the result array")
    handover_ok = None
    if any(spec.rank for spec in sig.results):
        with b.goto_entry_block():
            request = b.alloca(I64)
        b.store(I64(0), request)
        with b.if_then(b.icmp_unsigned("!=", errinfo, ir.Constant(errinfo.type, None))):
            b.store(b.load(errinfo), request)
        handover_ok = b.icmp_signed("==", b.load(request), I64(HANDOVER))
    rows = list(enumerate(zip(sig.results, fn.result_types, results, out_ptrs)))
    for k, (spec, t, comps, out) in rows:  # every check first: nothing is handed over on error
        for axis, d in enumerate(spec.dims):
            want = e.dim_value(d)
            msg = (f"the returned array has size {{d0}} along axis {axis}, "
                   f"but the signature declares {d} = {{d1}}")
            e._require(b.icmp_signed("==", comps[1 + axis], want), msg, comps[1 + axis], want)
        if spec.rank:
            e._require(b.or_(b.icmp_unsigned("!=", out, ir.Constant(out.type, None)), handover_ok),
                       missing, I64(0), I64(0))
    for k, (spec, t, comps, out) in rows:
        if spec.rank == 0:
            v = comps[0]
            b.store(b.zext(v, I8) if v.type == I1 else v, out)
            continue
        # out == NULL and errinfo[0] == HANDOVER: the caller takes the array itself (no copy):
        # its data pointer goes to errinfo[3 + k], or 0 when it cannot be handed over
        has_out = b.icmp_unsigned("!=", out, ir.Constant(out.type, None))
        with b.if_else(has_out) as (copy, handover):
            with copy:
                nbytes = I64(abi.ELEM_BYTES[t.elem.name])
                for d in comps[1:]:
                    nbytes = b.mul(nbytes, d)
                b.call(libc(ml.module, "memmove"), [b.bitcast(out, PTR), b.bitcast(comps[0], PTR), nbytes])
            with handover:
                slot = b.gep(errinfo, [I64(3 + k)])
                data = b.bitcast(comps[0], PTR)
                taken = b.call(ml.module.globals["dad_rt_unlink"], [e.ctx, data])
                b.store(b.select(taken, b.ptrtoint(data, I64), I64(0)), slot)
    e.free_all(b)
    b.ret(I64(0))
    b.ret(_report(e, errinfo))  # error exit: report, free everything, return the site
    return llfn


def sentinel(t) -> ir.Constant:
    """What a scalar entry returns on error: NaN, INT64_MIN, or 2 for a bool."""
    if t.is_float:
        return ir.Constant(abi.scalar_type(t), math.nan)
    if t.is_int:
        return I64(-(1 << 63))
    return I8(2)


def _build_scalar_entry(ml, fn: Function) -> ir.Function:
    sig = parse_signature(fn.attrs["sig"])
    rt = fn.result_types[0]
    fnty = ir.FunctionType(abi.abi_scalar(rt), _abi_params(fn) + [I64.as_pointer()])
    llfn = ir.Function(ml.module, fnty, fn.name)
    e = _Entry(ml, fn, sig, llfn)
    (v,), = e.call()
    b = e.b
    e.free_all(b)
    b.ret(b.zext(v, I8) if rt.is_bool else v)
    _report(e, e.rest[-1])
    b.ret(sentinel(rt))
    return llfn
