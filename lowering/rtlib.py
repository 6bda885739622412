"""The run-time support every compiled module carries with it, written as LLVM IR.

- `dad_rt_alloc(ctx, nbytes) -> ptr`: zero-filled heap memory linked into the call's list
  (a 16-byte header `{prev, next}` sits before the data); null when out of memory. Its
  result is `noalias`, so LLVM knows a fresh array shares no memory with the arguments.
  `dad_rt_alloc_raw` is the same with the data left as malloc gives it.
- `dad_rt_free(ctx, ptr)`: unlinks and frees one array (null is ignored).
- `dad_rt_free_all(ctx)`: frees everything still linked and gives the AD tape up (end of an
  entry; `lowering.tape` keeps one tape buffer for the next call).
- `dad_rt_digamma_f64(x)`, `dad_rt_trigamma_f64(x)`: digamma and trigamma (reflection with
  the argument of tan/sin reduced to [-1/2, 1/2] first, recurrence up to 10, then the
  asymptotic series: a few ulps relative, near the poles too).
All are `internal`, so a shared library built from the module needs only libc and libm.
`build` defines the memory helpers, which are `noinline` (the calloc/free they wrap dominates
their cost, and inlining them at every allocation only gives LLVM more code to optimise);
the special functions are defined on first use, through `function(module, name)`.
"""
from __future__ import annotations

import math

from llvmlite import ir

from .abi import CTX_PTR, F64, I1, I32, I64, I8, PTR
from .libc import advise_huge, declare as _declare, libc

HDR = ir.LiteralStructType([PTR, PTR])
HDR_PTR = HDR.as_pointer()


def _head_ptr(b: ir.IRBuilder, ctx):
    return b.gep(ctx, [I32(0), I32(3)])


def _hdr_field(b, hdr, k):
    return b.gep(hdr, [I32(0), I32(k)])


def build(module: ir.Module) -> None:
    """Define the run-time helpers in `module` (idempotent)."""
    if "dad_rt_alloc" in module.globals:
        return
    _build_alloc(module, "dad_rt_alloc", zeroed=True)
    _build_alloc(module, "dad_rt_alloc_raw", zeroed=False)
    from . import tape
    tape.build(module)          # first: dad_rt_free_all gives the tape up to its cache
    _build_free(module)
    _build_free_all(module)
    _build_unlink(module)
    for name in ("dad_rt_alloc", "dad_rt_alloc_raw", "dad_rt_free", "dad_rt_free_all", "dad_rt_unlink"):
        module.globals[name].attributes.add("noinline")


def function(module: ir.Module, name: str) -> ir.Function:
    """The helper `name` of `module`, defined there on first use."""
    if name not in module.globals:
        _ON_DEMAND[name](module)
    return module.globals[name]


def _build_alloc(module, name: str, zeroed: bool):
    fn = ir.Function(module, ir.FunctionType(PTR, [CTX_PTR, I64]), name)
    fn.linkage = "internal"
    # like malloc's: no other pointer the caller holds reaches the data (the list in ctx
    # reaches only the header, touched by the run-time helpers alone)
    fn.return_value.add_attribute("noalias")
    ctx, nbytes = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    size = b.add(nbytes, I64(16))
    base = b.call(libc(module, "calloc"), [I64(1), size]) if zeroed else \
        b.call(libc(module, "malloc"), [size])
    ok = b.icmp_unsigned("!=", base, ir.Constant(PTR, None))
    with b.if_then(ok):
        hdr = b.bitcast(base, HDR_PTR)
        head_slot = _head_ptr(b, ctx)
        head = b.load(head_slot)
        b.store(ir.Constant(PTR, None), _hdr_field(b, hdr, 0))
        b.store(head, _hdr_field(b, hdr, 1))
        with b.if_then(b.icmp_unsigned("!=", head, ir.Constant(PTR, None))):
            b.store(base, _hdr_field(b, b.bitcast(head, HDR_PTR), 0))
        b.store(base, head_slot)
        advise_huge(b, module, base, b.add(nbytes, I64(16)))
    data = b.gep(base, [I64(16)])
    b.ret(b.select(ok, data, ir.Constant(PTR, None)))


def _build_free(module):
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [CTX_PTR, PTR]), "dad_rt_free")
    fn.linkage = "internal"
    ctx, data = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    with b.if_then(b.icmp_unsigned("!=", data, ir.Constant(PTR, None))):
        base = b.gep(data, [I64(-16)])
        hdr = b.bitcast(base, HDR_PTR)
        prev = b.load(_hdr_field(b, hdr, 0))
        nxt = b.load(_hdr_field(b, hdr, 1))
        has_prev = b.icmp_unsigned("!=", prev, ir.Constant(PTR, None))
        with b.if_else(has_prev) as (then, other):
            with then:
                b.store(nxt, _hdr_field(b, b.bitcast(prev, HDR_PTR), 1))
            with other:
                b.store(nxt, _head_ptr(b, ctx))
        with b.if_then(b.icmp_unsigned("!=", nxt, ir.Constant(PTR, None))):
            b.store(prev, _hdr_field(b, b.bitcast(nxt, HDR_PTR), 0))
        b.call(libc(module, "free"), [base])
    b.ret_void()


def _build_unlink(module):
    """`dad_rt_unlink(ctx, data) -> i1`: take an array out of the call's list (its memory is
    handed to the caller, who frees `data - 16`); false when `data` is not in the list."""
    fn = ir.Function(module, ir.FunctionType(I1, [CTX_PTR, PTR]), "dad_rt_unlink")
    fn.linkage = "internal"
    ctx, data = fn.args
    entry = fn.append_basic_block("entry")
    loop = fn.append_basic_block("loop")
    step = fn.append_basic_block("step")
    found = fn.append_basic_block("found")
    missing = fn.append_basic_block("missing")
    b = ir.IRBuilder(entry)
    base = b.gep(data, [I64(-16)])
    first = b.load(_head_ptr(b, ctx))
    b.branch(loop)
    b.position_at_end(loop)
    cur = b.phi(PTR)
    cur.add_incoming(first, entry)
    b.cbranch(b.icmp_unsigned("==", cur, ir.Constant(PTR, None)), missing, step)
    b.position_at_end(step)
    nxt_of_cur = b.load(_hdr_field(b, b.bitcast(cur, HDR_PTR), 1))
    cur.add_incoming(nxt_of_cur, step)
    b.cbranch(b.icmp_unsigned("==", cur, base), found, loop)
    b.position_at_end(found)
    hdr = b.bitcast(base, HDR_PTR)
    prev = b.load(_hdr_field(b, hdr, 0))
    nxt = b.load(_hdr_field(b, hdr, 1))
    with b.if_else(b.icmp_unsigned("!=", prev, ir.Constant(PTR, None))) as (then, other):
        with then:
            b.store(nxt, _hdr_field(b, b.bitcast(prev, HDR_PTR), 1))
        with other:
            b.store(nxt, _head_ptr(b, ctx))
    with b.if_then(b.icmp_unsigned("!=", nxt, ir.Constant(PTR, None))):
        b.store(prev, _hdr_field(b, b.bitcast(nxt, HDR_PTR), 0))
    b.ret(ir.Constant(I1, 1))
    b.position_at_end(missing)
    b.ret(ir.Constant(I1, 0))


def _build_free_all(module):
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [CTX_PTR]), "dad_rt_free_all")
    fn.linkage = "internal"
    ctx, = fn.args
    entry = fn.append_basic_block("entry")
    loop = fn.append_basic_block("loop")
    done = fn.append_basic_block("done")
    b = ir.IRBuilder(entry)
    head_slot = _head_ptr(b, ctx)
    first = b.load(head_slot)
    b.branch(loop)
    b.position_at_end(loop)
    cur = b.phi(PTR)
    cur.add_incoming(first, entry)
    body = fn.append_basic_block("body")
    b.cbranch(b.icmp_unsigned("!=", cur, ir.Constant(PTR, None)), body, done)
    b.position_at_end(body)
    nxt = b.load(_hdr_field(b, b.bitcast(cur, HDR_PTR), 1))
    b.call(libc(module, "free"), [cur])
    cur.add_incoming(nxt, body)
    b.branch(loop)
    b.position_at_end(done)
    b.store(ir.Constant(PTR, None), head_slot)
    from .tape import free_tape
    free_tape(b, module, ctx)
    b.ret_void()


def _poly(b, z, coeffs):
    """coeffs[0] + z*(coeffs[1] + z*(...)) by Horner's rule."""
    acc = F64(coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = b.fadd(F64(c), b.fmul(z, acc))
    return acc


def _polygamma(module, name: str, term, reflection, series_value, combine, pole_value):
    """The skeleton digamma and trigamma share: for x < 0.5 work at 1 - x (the reflection
    formula), add `term(x)` while stepping x up to 10, then the asymptotic series; poles at
    the non-positive integers. `reflection(b, x0)` gives the reflection term,
    `series_value(b, x)` the series at x >= 10, and `combine(b, value, refl, neg)` the result
    from the shifted value."""
    fn = ir.Function(module, ir.FunctionType(F64, [F64]), name)
    fn.linkage = "internal"
    x0, = fn.args
    floor = module.declare_intrinsic("llvm.floor", [F64])
    entry = fn.append_basic_block("entry")
    b = ir.IRBuilder(entry)
    neg = b.fcmp_ordered("<", x0, F64(0.5))
    refl = b.select(neg, reflection(b, x0), F64(0.0))
    x1 = b.select(neg, b.fsub(F64(1.0), x0), x0)
    pole = b.and_(b.fcmp_ordered("<=", x0, F64(0.0)), b.fcmp_ordered("==", b.call(floor, [x0]), x0))
    loop = fn.append_basic_block("recur")
    body = fn.append_basic_block("step")
    tail = fn.append_basic_block("series")
    b.branch(loop)
    b.position_at_end(loop)
    x = b.phi(F64)
    acc = b.phi(F64)
    x.add_incoming(x1, entry)
    acc.add_incoming(F64(0.0), entry)
    b.cbranch(b.fcmp_ordered("<", x, F64(10.0)), body, tail)
    b.position_at_end(body)
    acc.add_incoming(b.fadd(acc, term(b, x)), body)
    x.add_incoming(b.fadd(x, F64(1.0)), body)
    b.branch(loop)
    b.position_at_end(tail)
    val = b.fadd(series_value(b, x), acc)
    b.ret(b.select(pole, F64(pole_value), combine(b, val, refl, neg)))


def _pi_reduced(module, b, x0):
    """pi * (x0 - round(x0)): the argument of the reflection's tan and sin² (both of period 1
    in x0), reduced exactly before the multiplication by pi. `pi * x0` itself would carry an
    absolute error of ~1e-16 |x0|, all of the distance to the pole near a negative integer."""
    rnd = module.declare_intrinsic("llvm.round", [F64])
    return b.fmul(F64(math.pi), b.fsub(x0, b.call(rnd, [x0])))


def _build_digamma(module):
    # psi(x) = psi(x + 1) - 1/x;  psi(x) = psi(1 - x) - pi / tan(pi x)
    tan = _declare(module, "tan", F64, [F64])
    log = _declare(module, "log", F64, [F64])

    def series(b, x):  # ln x - 1/(2x) - sum_k B_2k / (2k x^2k), k = 1..7
        inv = b.fdiv(F64(1.0), x)
        z = b.fmul(inv, inv)
        terms = _poly(b, z, [1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12])
        return b.fsub(b.fsub(b.call(log, [x]), b.fmul(F64(0.5), inv)), b.fmul(z, terms))

    _polygamma(module, "dad_rt_digamma_f64",
               term=lambda b, x: b.fneg(b.fdiv(F64(1.0), x)),
               reflection=lambda b, x0: b.fdiv(F64(math.pi), b.call(tan, [_pi_reduced(module, b, x0)])),
               series_value=series,
               combine=lambda b, val, refl, neg: b.fsub(val, refl),
               pole_value=math.nan)


def _build_trigamma(module):
    # psi1(x) = psi1(x + 1) + 1/x^2;  psi1(x) = pi^2 / sin^2(pi x) - psi1(1 - x)
    sin = module.declare_intrinsic("llvm.sin", [F64])

    def reflection(b, x0):
        s = b.call(sin, [_pi_reduced(module, b, x0)])
        return b.fdiv(F64(math.pi ** 2), b.fmul(s, s))

    def series(b, x):  # 1/x + 1/(2x^2) + sum_k B_2k / x^(2k+1)
        inv = b.fdiv(F64(1.0), x)
        z = b.fmul(inv, inv)
        terms = _poly(b, z, [1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6])
        return b.fadd(b.fadd(inv, b.fmul(F64(0.5), z)), b.fmul(b.fmul(z, inv), terms))

    _polygamma(module, "dad_rt_trigamma_f64",
               term=lambda b, x: b.fdiv(F64(1.0), b.fmul(x, x)),
               reflection=reflection,
               series_value=series,
               # for x < 0.5 the shifted value is psi1(1 - x)
               combine=lambda b, val, refl, neg: b.select(neg, b.fsub(refl, val), val),
               pole_value=math.inf)


_ON_DEMAND = {"dad_rt_digamma_f64": _build_digamma, "dad_rt_trigamma_f64": _build_trigamma}
