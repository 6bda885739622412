"""The IR verifier: `verify(module)` returns None or raises `VerifyError`.

Contract: a module that passes `verify` satisfies every structural rule the passes and the
lowering rely on, so they need not re-check. Checked, per function:
- structure: parent links agree; each op name is in `lang.ops.OPS`, with its operand count
  and region count; every block ends in exactly one terminator, of the kind its owner wants
  (`func.return` in a function body, `scf.condition` in the `before` block of `scf.while`,
  `scf.yield` everywhere else);
- dominance (structured): every operand is a block argument or the result of an earlier op
  of the same block or of an enclosing block, earlier than the op holding the region;
- types: one rule per op name in `_RULES` (arith operand agreement, predicates, casts, memref
  ranks and i64 indices, callee signatures, loop-carried and branch result types, required
  attributes such as `arith.constant {value}` and `memref.dim {index}`).
Messages read `@function: op 'name' (result %r, at body[2].r0[1]): problem`, using the
names the printer would print.
"""
from __future__ import annotations

from .ir import BOOL, I64, Block, Function, MemRefType, Module, Op, Value
from .ops import (BOOL_BINARY, CMPF_PREDICATES, CMPI_PREDICATES, FLOAT_BINARY, INT_BINARY,
                  INT_DIVISION, MATH_BINARY, MATH_UNARY, OPS)
from .printer import _Namer


class VerifyError(ValueError):
    pass


class _Fail(Exception):
    pass


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise _Fail(msg)


def _types(vs) -> str:
    return "(" + ", ".join(str(v.type if isinstance(v, Value) else v) for v in vs) + ")"


def _same_types(got: list[Value], want: list, what: str) -> None:
    wt = [w.type if isinstance(w, Value) else w for w in want]
    _require([v.type for v in got] == wt, f"{what}: types {_types(got)} do not match {_types(wt)}")


def _nresults(op: Op, n: int) -> None:
    _require(len(op.results) == n, f"expects {n} result(s), has {len(op.results)}")


# ----------------------------------------------------------------------------- op rules
def _float_binary(op, m):
    a, b = op.operands
    _require(a.type.is_float and a.type == b.type,
             f"operands must be the same float type, got {a.type} and {b.type}")
    _nresults(op, 1)
    _require(op.result.type == a.type, f"result type {op.result.type} != operand type {a.type}")


def _int_binary(op, m):
    a, b = op.operands
    _require((a.type.is_int or a.type.is_bool) and a.type == b.type,
             f"operands must be the same integer type, got {a.type} and {b.type}")
    _nresults(op, 1)
    _require(op.result.type == a.type, f"result type {op.result.type} != operand type {a.type}")


def _unary_same(pred, what):
    def rule(op, m):
        a, = op.operands
        _require(pred(a.type), f"operand must be {what}, got {a.type}")
        _nresults(op, 1)
        _require(op.result.type == a.type, f"result type {op.result.type} != operand type {a.type}")
    return rule


def _cmp(preds, operand_ok, what):
    def rule(op, m):
        a, b = op.operands
        _require(operand_ok(a.type) and a.type == b.type,
                 f"operands must be the same {what} type, got {a.type} and {b.type}")
        _require(op.attrs.get("pred") in preds,
                 f"attribute 'pred' must be one of {', '.join(preds)}, got {op.attrs.get('pred')!r}")
        _nresults(op, 1)
        _require(op.result.type == BOOL, f"result must be i1, got {op.result.type}")
    return rule


def _cast(src_ok, dst_ok, what):
    def rule(op, m):
        a, = op.operands
        _nresults(op, 1)
        _require(src_ok(a.type) and dst_ok(op.result.type),
                 f"casts {what}, got {a.type} -> {op.result.type}")
    return rule


def _select(op, m):
    c, a, b = op.operands
    _require(c.type == BOOL, f"condition must be i1, got {c.type}")
    _require(a.type == b.type, f"both choices must have one type, got {a.type} and {b.type}")
    _nresults(op, 1)
    _require(op.result.type == a.type, f"result type {op.result.type} != operand type {a.type}")


def _constant(op, m):
    _nresults(op, 1)
    _require("value" in op.attrs, "needs attribute 'value'")
    v, t = op.attrs["value"], op.result.type
    if t.is_float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    elif t.is_int:
        ok = isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63
    elif t.is_bool:
        ok = isinstance(v, bool)
    else:
        ok = False
    _require(ok, f"value {v!r} does not fit type {t}")


def _memref(v: Value, what: str = "operand") -> MemRefType:
    _require(isinstance(v.type, MemRefType), f"{what} must be a memref, got {v.type}")
    return v.type


def _indices(idx: list[Value], t: MemRefType) -> None:
    _require(len(idx) == t.rank, f"needs {t.rank} index(es) for {t}, got {len(idx)}")
    for v in idx:
        _require(v.type == I64, f"indices must be i64, got {v.type}")


def _checked(op):
    if "checked" in op.attrs:
        _require(isinstance(op.attrs["checked"], bool), "attribute 'checked' must be a bool")


def _load(op, m):
    _require(len(op.operands) >= 1, "needs a memref operand")
    t = _memref(op.operands[0])
    _indices(op.operands[1:], t)
    _nresults(op, 1)
    _require(op.result.type == t.elem, f"result type {op.result.type} != element type {t.elem}")
    _checked(op)


def _store(op, m):
    _require(len(op.operands) >= 2, "needs a value and a memref operand")
    v, a, *idx = op.operands
    t = _memref(a, "second operand")
    _indices(idx, t)
    _require(v.type == t.elem, f"stored value type {v.type} != element type {t.elem}")
    _nresults(op, 0)
    _checked(op)


def _alloc(op, m):
    _nresults(op, 1)
    t = _memref(op.result, "result")
    _require(len(op.operands) == t.rank, f"needs {t.rank} dimension(s) for {t}, got {len(op.operands)}")
    for v in op.operands:
        _require(v.type == I64, f"dimensions must be i64, got {v.type}")
    _require(isinstance(op.attrs.get("zeroed", True), bool), "attribute 'zeroed' must be a bool")


def _zero_range(op, m):
    _require(len(op.operands) == 3, "needs an array and two bounds")
    _memref(op.operands[0])          # any rank: the bounds count elements in row-major order
    for v in op.operands[1:]:
        _require(v.type == I64, f"bounds must be i64, got {v.type}")
    _nresults(op, 0)


def _dim(op, m):
    t = _memref(op.operands[0])
    k = op.attrs.get("index")
    _require(isinstance(k, int) and not isinstance(k, bool) and 0 <= k < t.rank,
             f"attribute 'index' must be an int in [0, {t.rank}), got {k!r}")
    _nresults(op, 1)
    _require(op.result.type == I64, f"result must be i64, got {op.result.type}")


def _dealloc(op, m):
    _memref(op.operands[0])
    _nresults(op, 0)


def _row(op, m):
    t = _memref(op.operands[0])
    _require(t.rank >= 1 and op.operands[1].type == I64, "needs a memref of rank >= 1 and an i64 row")
    _nresults(op, 1)
    _require(op.result.type == MemRefType(t.elem, t.rank - 1),
             f"result must be {MemRefType(t.elem, t.rank - 1)}, got {op.result.type}")


def _slice(op, m):
    t = _memref(op.operands[0])
    _require(t.rank >= 1 and all(v.type == I64 for v in op.operands[1:]),
             "needs a memref of rank >= 1 and i64 bounds")
    _nresults(op, 1)
    _require(op.result.type == t, f"result must be {t}, got {op.result.type}")


def _collapse(op, m):
    t = _memref(op.operands[0])
    _nresults(op, 1)
    _require(op.result.type == MemRefType(t.elem, 1), f"result must be {MemRefType(t.elem, 1)}")


def _copy(op, m):
    a, b = _memref(op.operands[0]), _memref(op.operands[1])
    _require(a.elem == b.elem, f"element types differ: {a.elem} and {b.elem}")
    _nresults(op, 0)


def _call(op, m: Module):
    callee = op.attrs.get("callee")
    _require(isinstance(callee, str), "needs a string attribute 'callee'")
    _require(callee in m.functions, f"callee @{callee} is not in the module")
    f = m.functions[callee]
    _same_types(op.operands, f.param_types, f"arguments of @{callee}")
    _same_types(op.results, f.result_types, f"results of @{callee}")


def _for(op, m):
    _require(len(op.operands) >= 3, "needs lb, ub, step operands")
    for v, what in zip(op.operands[:3], ("lb", "ub", "step")):
        _require(v.type == I64, f"{what} must be i64, got {v.type}")
    inits = op.operands[3:]
    _same_types(op.results, inits, "results vs initial values")
    body = op.regions[0].block
    _same_types(body.args, [I64] + [v.type for v in inits], "body arguments vs (i64, carried...)")
    _same_types(body.terminator.operands, inits, "scf.yield vs carried values")


def _if(op, m):
    _require(op.operands[0].type == BOOL, f"condition must be i1, got {op.operands[0].type}")
    for i, r in enumerate(op.regions):
        b = r.block
        _require(not b.args, f"{('then', 'else')[i]} block takes no arguments")
        _same_types(b.terminator.operands, op.results, f"scf.yield of {('then', 'else')[i]} vs results")


def _while(op, m):
    before, after = op.regions[0].block, op.regions[1].block
    _same_types(before.args, op.operands, "before-block arguments vs initial values")
    cond = before.terminator
    _require(len(cond.operands) >= 1 and cond.operands[0].type == BOOL,
             "scf.condition needs an i1 condition first")
    _same_types(cond.operands[1:], op.results, "scf.condition values vs results")
    _same_types(after.args, op.results, "after-block arguments vs results")
    _same_types(after.terminator.operands, op.operands, "scf.yield of after vs initial values")


def _check(op, m):
    _require(1 <= len(op.operands) <= 3, f"needs a condition and at most two details, got {len(op.operands)} operands")
    _require(op.operands[0].type == BOOL, f"condition must be i1, got {op.operands[0].type}")
    for d in op.operands[1:]:
        _require(d.type == I64, f"details must be i64, got {d.type}")
    _nresults(op, 0)


def _no_results(op, m):
    _nresults(op, 0)


def _undef(op, m):
    _nresults(op, 1)


_is_float = lambda t: t.is_float  # noqa: E731
_is_int = lambda t: t.is_int  # noqa: E731
_is_bool = lambda t: t.is_bool  # noqa: E731

_RULES = {
    "arith.constant": _constant,
    "arith.negf": _unary_same(_is_float, "a float"),
    "arith.cmpf": _cmp(CMPF_PREDICATES, _is_float, "float"),
    "arith.cmpi": _cmp(CMPI_PREDICATES, lambda t: t.is_int or t.is_bool, "integer"),
    "arith.select": _select,
    "arith.sitofp": _cast(lambda t: t.is_int or t.is_bool, _is_float, "integer -> float"),
    "arith.fptosi": _cast(_is_float, _is_int, "float -> i64"),
    "arith.extf": _cast(lambda t: t.name == "f32", lambda t: t.name == "f64", "f32 -> f64"),
    "arith.truncf": _cast(lambda t: t.name == "f64", lambda t: t.name == "f32", "f64 -> f32"),
    "arith.extui": _cast(_is_bool, _is_int, "i1 -> i64"),
    "math.absi": _unary_same(_is_int, "i64"),
    "memref.alloc": _alloc, "memref.dealloc": _dealloc, "memref.dim": _dim,
    "memref.load": _load, "memref.store": _store, "memref.row": _row,
    "memref.slice": _slice, "memref.collapse": _collapse, "memref.copy": _copy,
    "func.call": _call, "func.return": _no_results,
    "scf.for": _for, "scf.if": _if, "scf.while": _while,
    "scf.yield": _no_results, "scf.condition": _no_results,
    "dad.undef": _undef, "dad.check": _check, "dad.zero_range": _zero_range,
    "dad.tape_push": _no_results, "dad.tape_pop": _undef, "dad.tape_reserve": _undef,
    "dad.tape_put": _no_results, "dad.tape_commit": _no_results,
}
_RULES.update({n: _float_binary for n in FLOAT_BINARY + ["dad.mulz"]})
_RULES.update({n: _int_binary for n in INT_BINARY + INT_DIVISION + BOOL_BINARY})
_RULES.update({"math." + n: _unary_same(_is_float, "a float") for n in MATH_UNARY})
_RULES.update({"math." + n: _float_binary for n in MATH_BINARY})

# The terminator each region of an op must end in (function bodies end in func.return).
_TERMINATORS = {"scf.for": ("scf.yield",), "scf.if": ("scf.yield", "scf.yield"),
                "scf.while": ("scf.condition", "scf.yield")}

_FASTMATH = ("reassoc", "reassoc nsz", "fast")


# ----------------------------------------------------------------------------- walk
class _Verifier:
    def __init__(self, module: Module, f: Function):
        self.module, self.f = module, f
        self.namer = _Namer()
        for a in f.params:
            self.namer.define(a)

    def fail(self, msg: str, op: Op | None = None, path: str = "") -> None:
        where = f"@{self.f.name}"
        if op is not None:
            res = ", ".join(self.namer[r] for r in op.results)
            where += f": op '{op.name}'" + (f" (result {res}, at {path})" if res else f" (at {path})")
        raise VerifyError(f"{where}: {msg}")

    def block(self, block: Block, visible: set[Value], terminator: str, path: str) -> None:
        visible = visible | set(block.args)
        for a in block.args:
            if path != "body":
                self.namer.define(a)
            if a.owner is not block:
                self.fail(f"block argument {self.namer[a]} does not belong to its block (at {path})")
        if not block.ops:
            self.fail(f"block at {path} is empty; it must end in '{terminator}'")
        for i, op in enumerate(block.ops):
            self.op(op, block, visible, f"{path}[{i}]", last=i == len(block.ops) - 1,
                    terminator=terminator)
            visible.update(op.results)

    def op(self, op: Op, block: Block, visible: set[Value], path: str, last: bool,
           terminator: str) -> None:
        for r in op.results:
            self.namer.define(r)
        try:
            if op.parent is not block:
                raise _Fail("its parent link does not point at the block holding it")
            for j, r in enumerate(op.results):
                _require(r.owner is op and r.index == j, f"result #{j} does not belong to this op")
            info = OPS.get(op.name)
            _require(info is not None, "unknown op name")
            for j, v in enumerate(op.operands):
                _require(isinstance(v, Value), f"operand #{j} is not a Value: {v!r}")
                _require(v in visible, f"operand #{j} {self.namer[v]} is not defined before its "
                         "use in this or an enclosing block")
            if info.operands is not None:
                _require(len(op.operands) == info.operands,
                         f"expects {info.operands} operand(s), has {len(op.operands)}")
            _require(len(op.regions) == info.regions,
                     f"expects {info.regions} region(s), has {len(op.regions)}")
            if info.terminator:
                _require(last, "terminator is not the last op of its block")
                _require(op.name == terminator, f"block must end in '{terminator}', not '{op.name}'")
            elif last:
                raise _Fail(f"block does not end in a terminator (expected '{terminator}')")
            if "fastmath" in op.attrs:
                _require(op.attrs["fastmath"] in _FASTMATH,
                         f"attribute 'fastmath' must be one of {_FASTMATH}")
        except _Fail as e:
            self.fail(str(e), op, path)
        for k, (region, term) in enumerate(zip(op.regions, _TERMINATORS.get(op.name, ()))):
            if region.parent is not op or region.block.parent is not region:
                self.fail(f"region #{k} parent links are broken", op, path)
            self.block(region.block, visible, term, f"{path}.r{k}")
        try:
            _RULES[op.name](op, self.module)
        except _Fail as e:
            self.fail(str(e), op, path)

    def function(self) -> None:
        f = self.f
        self.block(f.body, set(), "func.return", "body")
        try:
            _same_types(f.body.terminator.operands, f.result_types, "func.return vs function results")
        except _Fail as e:
            self.fail(str(e), f.body.terminator, f"body[{len(f.body.ops) - 1}]")


def verify_function(f: Function, module: Module | None = None) -> None:
    _Verifier(module if module is not None else Module([f]), f).function()


def verify(module: Module) -> None:
    """Raise `VerifyError` on the first rule a function of `module` breaks."""
    for name, f in module.functions.items():
        if f.name != name:
            raise VerifyError(f"@{f.name}: registered in the module under the name '{name}'")
        verify_function(f, module)
