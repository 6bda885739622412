"""The op catalogue: every op of the dad IR, its operand/region shape and its effects.

One row per op name. `operands` is the exact operand count or None (variadic); `regions` is
the number of single-block regions; `pure` ops have no side effects and may be folded, CSE'd
and deleted when unused; `terminator` ops end a block. The verifier, the passes, the lowering
and the AD rule tables are all keyed by these names, and a test checks that each of them
covers the whole catalogue.

Semantics in brief (see docs/IR.md for the long form):
- arith.*: scalar arithmetic; float ops are IEEE; integer ops wrap; `floordivsi`/`floormodsi`
  are Python's `//` and `%` and raise ZeroDivisionError (attr `loc`) on a zero divisor.
  A float op may carry `fastmath = "reassoc"` (reductions may be reordered), `"reassoc nsz"`
  (also the sign of a zero result is free: adjoint sums) or `"fast"`.
- math.*: elementary functions of scalars (one operand unless noted: atan2, powf take two).
- memref.*: arrays. `alloc(dims)` makes a zero-initialised heap array (ValueError on a
  negative dim, MemoryError on failure); `load`/`store` index with one i64 per dimension and
  check bounds when attr `checked` is true (IndexError at attr `loc`); `row`, `slice` and
  `collapse` are read-only views; `copy(src, dst)` copies all elements (same element count).
- scf.*: structured control flow. `for(lb, ub, step, inits...)` has a body block
  `(iv, carried...)` ending in `scf.yield`; `while(inits...)` has a `before` block ending in
  `scf.condition(cond, values...)` and an `after` block ending in `scf.yield`; `if(cond)` has
  `then` and `else` blocks ending in `scf.yield`.
- func.call(args) {callee}, func.return(values).
- dad.mulz(a, b): `a * b`, except exactly 0 when `a == 0` or `b == 0` (even if the other is
  inf or NaN): how AD multiplies an incoming tangent or adjoint by a local derivative, so
  that a zero on either side (no tangent, or a local derivative that is exactly zero) makes
  the path contribute zero in every mode.
- dad.undef: a value of any type that is never read. dad.tape_push(v) / dad.tape_pop: a
  per-call LIFO stack the reverse mode records values on (any type, memrefs included);
  machine IR only: `%base = dad.tape_reserve(trips) {level, bytes}` makes room for a loop's
  records, `dad.tape_put(v, base, slot)` writes one at 8-byte slot `slot` past `base`, and
  `dad.tape_commit(trips) {level, bytes}` adds them to the tape's size. dad.check(cond[, d0[, d1]]) {kind, msg, loc}:
  raises `kind` with `msg` when `cond` is false; the optional i64 operands fill `{d0}`, `{d1}`
  in `msg` (actual sizes and indices).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .mathops import MATH


@dataclass(frozen=True)
class OpInfo:
    operands: int | None
    regions: int = 0
    pure: bool = True
    terminator: bool = False
    traits: frozenset = frozenset()


# What passes ask of an op, instead of its name (`has_trait(op, "view")`). `pure` and
# `terminator` are traits too (the fields above).
TRAITS = {
    "pure": "no side effects: may be folded, CSE'd, hoisted and deleted when unused",
    "terminator": "ends a block",
    "view": "the result is a read-only view of operand 0's memory (no copy, no new array)",
    "writes": "may write memory: no load or store moves across it",
    "owner": "makes an array the function must free or hand over",
    "cheap": "cheap enough that reverse mode recomputes it rather than recording it",
    "loop": "a loop: its region runs zero or more times (scf.for, scf.while)",
    "tape": "touches the reverse mode's tape (records or reads back a value, or reserves room)",
}


FLOAT_BINARY = ["arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.remf"]
INT_BINARY = ["arith.addi", "arith.subi", "arith.muli", "arith.maxsi", "arith.minsi"]
INT_DIVISION = ["arith.floordivsi", "arith.floormodsi"]
BOOL_BINARY = ["arith.andi", "arith.ori", "arith.xori"]
CASTS = ["arith.sitofp", "arith.fptosi", "arith.extf", "arith.truncf", "arith.extui"]
MATH_UNARY = [m.op for m in MATH if m.arity == 1]     # lang/mathops.py declares them
MATH_BINARY = [m.op for m in MATH if m.arity == 2]

OPS: dict[str, OpInfo] = {}
OPS["arith.constant"] = OpInfo(0)
for _n in FLOAT_BINARY + INT_BINARY + BOOL_BINARY:
    OPS[_n] = OpInfo(2)
for _n in INT_DIVISION:
    OPS[_n] = OpInfo(2, pure=False)  # may raise
OPS["arith.negf"] = OpInfo(1)
OPS["arith.cmpf"] = OpInfo(2)
OPS["arith.cmpi"] = OpInfo(2)
OPS["arith.select"] = OpInfo(3)
for _n in CASTS:
    OPS[_n] = OpInfo(1)
for _n in MATH_UNARY:
    OPS["math." + _n] = OpInfo(1)
for _n in MATH_BINARY:
    OPS["math." + _n] = OpInfo(2)
OPS["math.absi"] = OpInfo(1)
OPS.update({
    "memref.alloc": OpInfo(None, pure=False),
    "memref.dealloc": OpInfo(1, pure=False),
    "memref.dim": OpInfo(1),
    "memref.load": OpInfo(None, pure=False),   # reads memory; may raise when checked
    "memref.store": OpInfo(None, pure=False),
    "memref.row": OpInfo(2, pure=False),       # may raise (row index checked)
    "memref.slice": OpInfo(3, pure=False),     # may raise (bounds checked)
    "memref.collapse": OpInfo(1),
    "memref.copy": OpInfo(2, pure=False),
    "func.call": OpInfo(None, pure=False),
    "func.return": OpInfo(None, pure=False, terminator=True),
    "scf.for": OpInfo(None, regions=1, pure=False),
    "scf.while": OpInfo(None, regions=2, pure=False),
    "scf.if": OpInfo(1, regions=2, pure=False),
    "scf.yield": OpInfo(None, pure=False, terminator=True),
    "scf.condition": OpInfo(None, pure=False, terminator=True),
    "dad.undef": OpInfo(0),
    "dad.mulz": OpInfo(2),  # a * b, but exactly 0 when a == 0 or b == 0 (AD's zero-safe product)
    "dad.tape_push": OpInfo(1, pure=False),  # AD: push a value on the call's tape
    "dad.tape_pop": OpInfo(0, pure=False),   # AD: pop the last pushed value
    "dad.tape_reserve": OpInfo(1, pure=False),  # machine IR: room for a loop's records
    "dad.tape_put": OpInfo(3, pure=False),      # machine IR: a record at a reserved slot
    "dad.tape_commit": OpInfo(1, pure=False),   # machine IR: the reserved records are in
    "dad.check": OpInfo(None, pure=False),  # cond, then up to two i64 details
    "dad.zero_range": OpInfo(3, pure=False),  # machine IR: zero elements lo..hi-1 of a, in
                                              # row-major order (0 <= lo, hi <= their count)
})

_TRAIT_OPS = {
    "loop": ["scf.for", "scf.while"],
    "tape": ["dad.tape_push", "dad.tape_pop", "dad.tape_reserve", "dad.tape_put",
             "dad.tape_commit"],
    "view": ["memref.row", "memref.slice", "memref.collapse"],
    "writes": ["memref.store", "memref.copy", "memref.dealloc", "func.call", "dad.tape_push",
               "dad.tape_pop", "dad.tape_put", "dad.tape_reserve", "dad.tape_commit",
               "dad.zero_range"],
    "owner": ["memref.alloc", "func.call", "dad.tape_pop"],
    "cheap": ["arith.constant", "arith.addf", "arith.subf", "arith.mulf", "arith.divf",
              "arith.negf", "arith.addi", "arith.subi", "arith.muli", "arith.maxsi", "arith.minsi",
              "arith.andi", "arith.floordivsi", "arith.floormodsi", "arith.ori", "arith.xori",
              "arith.cmpf", "arith.cmpi", "arith.select", "arith.sitofp", "arith.fptosi",
              "arith.extf", "arith.truncf", "arith.extui", "math.absf", "math.absi", "memref.dim",
              "memref.row", "memref.slice", "memref.collapse", "dad.undef", "dad.mulz"],
}
for _n, _i in OPS.items():
    _t = {t for t, names in _TRAIT_OPS.items() if _n in names}
    _t |= {"pure"} if _i.pure else set()
    _t |= {"terminator"} if _i.terminator else set()
    OPS[_n] = replace(_i, traits=frozenset(_t))
assert all(n in OPS for names in _TRAIT_OPS.values() for n in names), "trait of an unknown op"


class OpDef(str):
    """The definition of one op, by which code outside this module names it: `SCF_FOR` is
    `scf.for` (each op's name upper-cased, `.` as `_`). A `str` (its name), so that `isa` is
    a membership test; a name that is not in the catalogue cannot be made, so a misspelt op
    is an ImportError, never a test that is silently false."""
    __slots__ = ()

    def __new__(cls, name: str):
        if name not in OPS:
            raise KeyError(f"unknown op '{name}'")
        return super().__new__(cls, name)

    @property
    def info(self) -> OpInfo:
        return OPS[self]


def isa(op, *defs: OpDef) -> bool:
    """Is `op` (an `Op`, or None) one of the ops `defs` (the MLIR `isa<ForOp, WhileOp>`)?"""
    return op is not None and op.name in defs


def dialect(op) -> str:
    """The dialect of `op` (`math` for `math.sin`)."""
    return op.name.partition(".")[0]


for _n in OPS:
    globals()[_n.replace(".", "_").upper()] = OpDef(_n)


def has_trait(op, trait: str) -> bool:
    """Has the op (an `Op`, or an op name) the trait (a key of `TRAITS`)?"""
    assert trait in TRAITS, trait
    name = op if isinstance(op, str) else op.name
    i = OPS.get(name)
    return i is not None and trait in i.traits


def ops_with(trait: str) -> frozenset:
    """The names of the ops that have `trait`."""
    assert trait in TRAITS, trait
    return frozenset(n for n, i in OPS.items() if trait in i.traits)


CMPF_PREDICATES = ("oeq", "one", "olt", "ole", "ogt", "oge", "une", "ord", "uno")
CMPI_PREDICATES = ("eq", "ne", "slt", "sle", "sgt", "sge")


def info(name: str) -> OpInfo:
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op '{name}'") from None


def is_pure(name: str) -> bool:
    return name in OPS and OPS[name].pure
