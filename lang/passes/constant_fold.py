"""constant_fold: evaluate ops on constants and apply IEEE-exact simplifications.

Contract (the result computes bit-for-bit what the input computes, but for the sign of a
zero that an op's `fastmath = "... nsz"` declares insignificant):
- an arith op, cast or IEEE-exact math op (`sqrt`, `absf`, `floor`, `ceil`) whose operands
  are all `arith.constant` becomes an `arith.constant` (same result value, so its name
  survives). Floats are evaluated in numpy float64 / float32 as the type says; i64 wraps at
  64 bits; `floordivsi`/`floormodsi` by zero are left alone (they raise at run time);
  transcendental functions are not folded (their last bit depends on the libm);
- identities, only where IEEE-exact: `x*1.0`, `1.0*x`, `x/1.0`, `x-0.0`, `x+(-0.0)`,
  `-0.0+x` → x (`x+0.0` only when the add has `nsz`: it turns -0.0 into 0.0); `x+0`,
  `x-0`, `x*1`, `x*0`, `x floordiv 1` on i64;
  `x and true`, `x or false`, `x xor false`, `x and false`, `x or true` on i1;
  `select(c, x, x)` → x;
- `arith.select` with a constant condition → the chosen operand; `scf.if` with a constant
  condition → the chosen block inlined; `scf.for` with constant `lb >= ub` → its inits;
  `memref.dim` of a `memref.alloc` → the alloc's dimension operand; `memref.dim` of a row
  (or of a slice, on an axis after the first) → the `memref.dim` of the viewed array; of a
  slice `lo..hi` on its first axis → `hi - lo`.
Constants that become unused are left for `dce`. Each rule is a pattern (`FOLD`) applied
by the greedy driver of lang/rewrite.py, so what a fold enables (an inlined branch, a
constant operand) is folded next.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import Op
from ..mathops import BY_OP
from ..ops import (isa, ARITH_ADDF, ARITH_CONSTANT, ARITH_SELECT, ARITH_SUBI, MEMREF_ALLOC, MEMREF_DIM, MEMREF_ROW,
                   MEMREF_SLICE, SCF_FOR, SCF_IF)
from ..rewrite import Patterns, Rewriter, greedy_pass
from .util import NOT_CONST, allows, const_of, wrap64

_DTYPE = {"f64": np.float64, "f32": np.float32}


def _ieee(fn):
    """Wrap a numpy function of floats: evaluate in the result's precision, return a float."""
    def run(op, args):
        dt = _DTYPE[op.results[0].type.name]
        with np.errstate(all="ignore"):
            return float(dt(fn(*[_DTYPE[v.type.name](a) for v, a in zip(op.operands, args)])))
    return run


def _int(fn):
    def run(op, args):
        if not op.results[0].type.is_int:
            return NOT_CONST
        r = fn(*args)
        return NOT_CONST if r is NOT_CONST else wrap64(r)
    return run


def _bool_or_int(fn):
    def run(op, args):
        r = fn(*args)
        return bool(r) if op.results[0].type.is_bool else wrap64(r)
    return run


def _round(x: float, type_name: str) -> float:
    """`x` rounded to the precision of f64 or f32."""
    with np.errstate(all="ignore"):
        return float(_DTYPE[type_name](x))


def _cmpf(op, args):
    a, b = (_round(x, op.operands[0].type.name) for x in args)
    unordered = math.isnan(a) or math.isnan(b)
    p = op.attrs.get("pred")
    table = {"oeq": a == b, "one": a != b, "olt": a < b, "ole": a <= b, "ogt": a > b,
             "oge": a >= b}
    if p in table:
        return table[p] and not unordered
    return {"une": unordered or a != b, "ord": not unordered, "uno": unordered}.get(p, NOT_CONST)


def _cmpi(op, args):
    a, b = (-1 if x is True else 0 if x is False else x for x in args)  # i1 is signed
    return {"eq": a == b, "ne": a != b, "slt": a < b, "sle": a <= b, "sgt": a > b,
            "sge": a >= b}.get(op.attrs.get("pred"), NOT_CONST)


def _fptosi(op, args):
    x = _round(args[0], op.operands[0].type.name)
    if math.isnan(x):
        return 0
    if math.isinf(x):
        return (1 << 63) - 1 if x > 0 else -(1 << 63)
    return max(-(1 << 63), min((1 << 63) - 1, math.trunc(x)))


def _sitofp(op, args):
    if not op.operands[0].type.is_int:
        return NOT_CONST
    dt = _DTYPE[op.results[0].type.name]
    with np.errstate(all="ignore"):
        return float(np.array(args[0], dtype=np.int64).astype(dt))


_FOLD = {
    "arith.addf": _ieee(np.add), "arith.subf": _ieee(np.subtract),
    "arith.mulf": _ieee(np.multiply), "arith.divf": _ieee(np.divide),
    "arith.remf": _ieee(np.fmod), "arith.negf": _ieee(np.negative),
    "arith.extf": _ieee(lambda x: x), "arith.truncf": _ieee(lambda x: x),
    "arith.addi": _int(lambda a, b: a + b), "arith.subi": _int(lambda a, b: a - b),
    "arith.muli": _int(lambda a, b: a * b), "arith.maxsi": _int(max), "arith.minsi": _int(min),
    "arith.floordivsi": _int(lambda a, b: a // b if b else NOT_CONST),
    "arith.floormodsi": _int(lambda a, b: a % b if b else NOT_CONST),
    "math.absi": _int(abs),
    "arith.andi": _bool_or_int(lambda a, b: a & b), "arith.ori": _bool_or_int(lambda a, b: a | b),
    "arith.xori": _bool_or_int(lambda a, b: a ^ b),
    "arith.cmpf": _cmpf, "arith.cmpi": _cmpi,
    "arith.fptosi": _fptosi, "arith.sitofp": _sitofp,
    "arith.extui": lambda op, args: int(args[0]),
}
_FOLD.update({n: _ieee(m.fold) for n, m in BY_OP.items() if m.fold is not None})


def _is(v, x) -> bool:
    """`v` is the constant `x`, compared by bits for floats (so -0.0 is not 0.0)."""
    c = const_of(v)
    if c is NOT_CONST or type(c) is not type(x):
        return False
    return math.copysign(1.0, c) == math.copysign(1.0, x) and c == x if isinstance(x, float) else c == x


# x op unit -> x: (position of the unit operand, unit), tried in order. Only IEEE-exact ones:
# x + 0.0 is missing on purpose (-0.0 + 0.0 is 0.0); x + (-0.0) and x - 0.0 are exact.
_UNITS = {
    "arith.mulf": ((1, 1.0), (0, 1.0)), "arith.divf": ((1, 1.0),),
    "arith.addf": ((1, -0.0), (0, -0.0)), "arith.subf": ((1, 0.0),),
    "arith.addi": ((1, 0), (0, 0)), "arith.subi": ((1, 0),), "arith.muli": ((1, 1), (0, 1)),
    "arith.floordivsi": ((1, 1),),
    "arith.andi": ((1, True), (0, True)), "arith.ori": ((1, False), (0, False)),
    "arith.xori": ((1, False), (0, False)),
}
# x op zero -> zero (integers only; 0.0 * x is not 0.0 for inf, nan or negative x)
_ABSORBING = {"arith.muli": 0, "arith.andi": False, "arith.ori": True}


def _identity(op: Op):
    """The existing value `op`'s result always equals, or None."""
    n, ops = op.name, op.operands
    for k, unit in _UNITS.get(n, ()):
        if _is(ops[k], unit):
            return ops[1 - k]
    if isa(op, ARITH_ADDF) and allows(op, "nsz"):
        # the op declares the sign of a zero result insignificant, so x + 0.0 is x
        return next((ops[1 - k] for k in (0, 1) if _is(ops[k], 0.0)), None)
    if n in _ABSORBING:
        return next((v for v in ops if _is(v, _ABSORBING[n])), None)
    if isa(op, ARITH_SELECT):
        c = const_of(ops[0])
        if c is not NOT_CONST:
            return ops[1] if c else ops[2]
        return ops[1] if ops[1] is ops[2] else None
    if isa(op, MEMREF_DIM):
        src = ops[0].op
        if src is not None and isa(src, MEMREF_ALLOC) and op.attrs.get("index") in range(len(src.operands)):
            return src.operands[op.attrs["index"]]
    return None


FOLD = Patterns()


@FOLD.add(SCF_IF)
def _if_on_a_constant(op: Op, rw: Rewriter) -> bool:
    c = const_of(op.operands[0])
    if c is NOT_CONST:
        return False
    chosen = op.regions[0 if c else 1].block
    values = list(chosen.terminator.operands)
    rw.inline_before(chosen, op)
    rw.replace(op, values)
    return True


@FOLD.add(SCF_FOR)
def _loop_that_never_runs(op: Op, rw: Rewriter) -> bool:
    lb, ub = const_of(op.operands[0]), const_of(op.operands[1])
    if lb is NOT_CONST or ub is NOT_CONST or lb < ub:
        return False
    rw.replace(op, op.operands[3:])
    return True


@FOLD.add(MEMREF_DIM)
def _dim_of_a_view(op: Op, rw: Rewriter) -> bool:
    """The length of axis k of a row of A is that of axis k + 1 of A (and of a slice's axis
    k >= 1, A's axis k); a slice `lo..hi` is `hi - lo` long on its first axis (the slice,
    before, checked lo <= hi): the size stops depending on which row, so it can leave a
    loop."""
    src = op.operands[0].op
    k = op.attrs.get("index")
    if isa(src, MEMREF_SLICE) and k == 0:
        rw.mutate(op, ARITH_SUBI, [src.operands[2], src.operands[1]], {})
        return True
    if isa(src, MEMREF_ROW):
        k = k + 1
    elif not (isa(src, MEMREF_SLICE) and k >= 1):
        return False
    rw.mutate(op, MEMREF_DIM, [src.operands[0]], dict(op.attrs, index=k))
    return True


@FOLD.add()
def _identity_or_constant(op: Op, rw: Rewriter) -> bool:
    same = _identity(op) if len(op.results) == 1 else None
    if same is not None:
        rw.replace(op, [same])
        return True
    if op.name in _FOLD and op.operands:
        args = [const_of(v) for v in op.operands]
        if all(a is not NOT_CONST for a in args):
            value = _FOLD[op.name](op, args)
            if value is not NOT_CONST:
                rw.mutate(op, ARITH_CONSTANT, [], {"value": value})
                return True
    return False


constant_fold = greedy_pass(FOLD, "constant_fold", __name__)
