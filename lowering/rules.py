"""One lowering rule per IR op (scalar arithmetic, math, memory): the table `RULES`.

A rule `rule(lw, op)` emits LLVM through `lw.b` and returns the components of the op's
results (see `lowering.abi`), or None for ops without results. Structured control flow and
calls are in `lowering.function.CONTROL`. `tests/test_lowering_rules.py` checks that every
op of the catalogue has exactly one rule.
"""
from __future__ import annotations

from llvmlite import ir

from ..lang.mathops import MATH
from . import abi, rtlib
from .abi import F64, I1, I32, I64, I8
from ..lang.ops import isa, ARITH_FLOORDIVSI, ARITH_MAXSI

from .ruletable import RULES, rule  # noqa: E402,F401  (the table every rule module fills)


def _flags(op):
    fm = op.attrs.get("fastmath")
    return {"reassoc": ["reassoc"], "reassoc nsz": ["reassoc", "nsz"], "fast": ["fast"]}.get(fm, [])


def _fast_kw(op):
    fl = _flags(op)
    return {"fastmath": fl} if fl else {}


# ----------------------------------------------------------------------------- arith
@rule("arith.constant")
def _constant(lw, op):
    t = op.results[0].type
    v = op.attrs["value"]
    return [[ir.Constant(abi.scalar_type(t), int(v) if t.is_bool else v)]]


_FBIN = {"arith.addf": "fadd", "arith.subf": "fsub", "arith.mulf": "fmul",
         "arith.divf": "fdiv", "arith.remf": "frem"}


@rule(*_FBIN)
def _float_binary(lw, op):
    a, b = (lw.one(v) for v in op.operands)
    return [[getattr(lw.b, _FBIN[op.name])(a, b, flags=_flags(op))]]


@rule("dad.mulz")
def _mulz(lw, op):
    """a * b, but exactly 0 when a == 0 or b == 0 (the other may be inf or NaN)."""
    a, b = (lw.one(v) for v in op.operands)
    zero = ir.Constant(a.type, 0.0)
    prod = lw.b.fmul(a, b, flags=_flags(op))
    either = lw.b.or_(lw.b.fcmp_ordered("==", a, zero), lw.b.fcmp_ordered("==", b, zero))
    return [[lw.b.select(either, zero, prod)]]


@rule("arith.negf")
def _negf(lw, op):
    return [[lw.b.fneg(lw.one(op.operands[0]), flags=_flags(op))]]


_IBIN = {"arith.addi": "add", "arith.subi": "sub", "arith.muli": "mul",
         "arith.andi": "and_", "arith.ori": "or_", "arith.xori": "xor"}


@rule(*_IBIN)
def _int_binary(lw, op):
    a, b = (lw.one(v) for v in op.operands)
    return [[getattr(lw.b, _IBIN[op.name])(a, b)]]


@rule("arith.maxsi", "arith.minsi")
def _minmax_int(lw, op):
    a, b = (lw.one(v) for v in op.operands)
    cmp = lw.b.icmp_signed(">=" if isa(op, ARITH_MAXSI) else "<=", a, b)
    return [[lw.b.select(cmp, a, b)]]


@rule("arith.floordivsi", "arith.floormodsi")
def _floor_division(lw, op):
    """Python's // and % on i64: quotient rounded down, remainder with the divisor's sign."""
    b = lw.b
    x, y = (lw.one(v) for v in op.operands)
    site = lw.m.site("ZeroDivisionError", op.attrs.get("loc", ""),
                     "integer division or modulo by zero")
    lw.check(b.icmp_signed("!=", y, I64(0)), site)
    minus_one = b.icmp_signed("==", y, I64(-1))
    safe_y = b.select(minus_one, I64(1), y)  # avoid the INT64_MIN / -1 trap
    q = b.sdiv(x, safe_y)
    r = b.srem(x, safe_y)
    adjust = b.and_(b.icmp_signed("!=", r, I64(0)),
                    b.icmp_signed("!=", b.icmp_signed("<", r, I64(0)), b.icmp_signed("<", y, I64(0))))
    if isa(op, ARITH_FLOORDIVSI):
        res = b.select(adjust, b.sub(q, I64(1)), q)
        res = b.select(minus_one, b.sub(I64(0), x), res)
    else:
        res = b.select(adjust, b.add(r, y), r)
        res = b.select(minus_one, I64(0), res)
    return [[res]]


_FCMP = {"oeq": "==", "one": "!=", "olt": "<", "ole": "<=", "ogt": ">", "oge": ">=",
         "ord": "ord", "uno": "uno"}
_ICMP = {"eq": "==", "ne": "!=", "slt": "<", "sle": "<=", "sgt": ">", "sge": ">="}


@rule("arith.cmpf")
def _cmpf(lw, op):
    a, b = (lw.one(v) for v in op.operands)
    pred = op.attrs["pred"]
    if pred == "une":
        return [[lw.b.fcmp_unordered("!=", a, b)]]
    return [[lw.b.fcmp_ordered(_FCMP[pred], a, b)]]


@rule("arith.cmpi")
def _cmpi(lw, op):
    a, b = (lw.one(v) for v in op.operands)
    return [[lw.b.icmp_signed(_ICMP[op.attrs["pred"]], a, b)]]


@rule("arith.select")
def _select(lw, op):
    c, a, b = (lw.get(v) for v in op.operands)
    return [[lw.b.select(c[0], x, y) for x, y in zip(a, b)]]


@rule("arith.sitofp")
def _sitofp(lw, op):
    return [[lw.b.sitofp(lw.one(op.operands[0]), abi.scalar_type(op.results[0].type))]]


@rule("arith.fptosi")
def _fptosi(lw, op):
    x = lw.one(op.operands[0])
    name = "llvm.fptosi.sat.i64." + ("f64" if x.type == F64 else "f32")
    mod = lw.m.module
    fn = mod.globals.get(name) or ir.Function(mod, ir.FunctionType(I64, [x.type]), name)
    return [[lw.b.call(fn, [x])]]


@rule("arith.extf")
def _extf(lw, op):
    return [[lw.b.fpext(lw.one(op.operands[0]), F64)]]


@rule("arith.truncf")
def _truncf(lw, op):
    return [[lw.b.fptrunc(lw.one(op.operands[0]), abi.F32)]]


@rule("arith.extui")
def _extui(lw, op):
    return [[lw.b.zext(lw.one(op.operands[0]), I64)]]


# ----------------------------------------------------------------------------- math
# how each elementary function lowers is declared with it (lang/mathops.py)
_INTRINSIC = {m.op: m.lower for m in MATH if m.lower.startswith("llvm.")}
_LIBM = {m.op for m in MATH if m.lower == "libm"}


def _libm(lw, name, t, nargs):
    cname = lw.m.target.math_function(name, "f64" if t == F64 else "f32")
    mod = lw.m.module
    if cname in mod.globals:
        return mod.globals[cname]
    return ir.Function(mod, ir.FunctionType(t, [t] * nargs), cname)


@rule(*("math." + n for n in list(_INTRINSIC) + sorted(_LIBM)))
def _math_call(lw, op):
    args = [lw.one(v) for v in op.operands]
    name = op.name[5:]
    t = args[0].type
    if name in _INTRINSIC:
        fn = lw.m.module.declare_intrinsic(_INTRINSIC[name], [t])
    else:
        fn = _libm(lw, name, t, len(args))
    return [[lw.b.call(fn, args, **_fast_kw(op))]]


@rule("math.lgamma")
def _lgamma(lw, op):
    """Thread-safe lgamma_r (the sign goes to a stack slot)."""
    x = lw.one(op.operands[0])
    name = lw.m.target.math_function("lgamma_r", "f64" if x.type == F64 else "f32")
    mod = lw.m.module
    fn = mod.globals.get(name) or ir.Function(
        mod, ir.FunctionType(x.type, [x.type, I32.as_pointer()]), name)
    with lw.b.goto_entry_block():
        slot = lw.b.alloca(I32)
    return [[lw.b.call(fn, [x, slot])]]


@rule("math.digamma", "math.trigamma")
def _polygamma(lw, op):
    x = lw.one(op.operands[0])
    fn = rtlib.function(lw.m.module, "dad_rt_%s_f64" % op.name[5:])
    if x.type == F64:
        return [[lw.b.call(fn, [x])]]
    return [[lw.b.fptrunc(lw.b.call(fn, [lw.b.fpext(x, F64)]), x.type)]]


@rule("math.sigmoid")
def _sigmoid(lw, op):
    """1/(1+e^-x) for x >= 0 and e^x/(1+e^x) below: no overflow on either side."""
    b = lw.b
    x = lw.one(op.operands[0])
    t = x.type
    exp = lw.m.module.declare_intrinsic("llvm.exp", [t])
    one = ir.Constant(t, 1.0)
    e = b.call(exp, [b.fneg(b.call(lw.m.module.declare_intrinsic("llvm.fabs", [t]), [x]))])
    pos = b.fdiv(one, b.fadd(one, e))
    neg = b.fdiv(e, b.fadd(one, e))
    return [[b.select(b.fcmp_ordered(">=", x, ir.Constant(t, 0.0)), pos, neg)]]


@rule("math.sign")
def _sign(lw, op):
    b = lw.b
    x = lw.one(op.operands[0])
    t = x.type
    neg = b.select(b.fcmp_ordered("<", x, ir.Constant(t, 0.0)), ir.Constant(t, -1.0), x)
    return [[b.select(b.fcmp_ordered(">", x, ir.Constant(t, 0.0)), ir.Constant(t, 1.0), neg)]]


@rule("math.absi")
def _absi(lw, op):
    x = lw.one(op.operands[0])
    return [[lw.b.select(lw.b.icmp_signed("<", x, I64(0)), lw.b.sub(I64(0), x), x)]]


@rule("dad.undef")
def _undef(lw, op):
    return [[ir.Constant(t, None) for t in abi.components(op.results[0].type)]]


@rule("dad.check")
def _check(lw, op):
    site = lw.m.site(op.attrs.get("kind", "ValueError"), op.attrs.get("loc", ""),
                     op.attrs.get("msg", "check failed"))
    lw.check(lw.one(op.operands[0]), site, *[lw.one(d) for d in op.operands[1:]])
    return None


from . import memory, tape  # noqa: E402,F401  (register the memref and tape rules)
