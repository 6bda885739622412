"""Values and loops described in the words of the source, for reports (the tape report).

Contract: `describe(v)` is a short source-like text for an IR value: its name when it has
one (a source variable, or a name AD derived from one, such as `x.bar`), else the expression
that computes it, rebuilt from its ops to a small depth (`sin(x[i] * 2.0)`, `exp(x[i])`),
with `…` past the depth; a result of an `scf.if` whose other branch yields a constant (a
value computed only when a loop would run, say) is described by what its first branch
yields. `describe_loop(op)` names an `scf.for`/`scf.while` by its index,
its source place (`file:line:col`) and, for a loop the compiler made, what it was made for
(`in logsumexp(...)`). Nothing here changes the IR.
"""
from __future__ import annotations

from .ir import Op, Value
from .printer import format_attr
from .ops import isa, ARITH_CONSTANT, ARITH_NEGF, MEMREF_LOAD, SCF_FOR, SCF_IF, SCF_WHILE

_INFIX = {"arith.addf": "+", "arith.subf": "-", "arith.mulf": "*", "arith.divf": "/",
          "arith.remf": "%", "arith.addi": "+", "arith.subi": "-", "arith.muli": "*",
          "arith.floordivsi": "/", "arith.floormodsi": "%", "dad.mulz": "*"}
_SAME = ("arith.extf", "arith.truncf", "arith.sitofp", "arith.extui")


def describe(v: Value, depth: int = 3) -> str:
    if v.name:
        return v.name
    op = v.op
    if op is None:   # a block argument: a loop's index or carried value, or a parameter
        blk = v.owner
        loop = blk.parent.parent if blk is not None and blk.parent is not None else None
        if loop is not None and isa(loop, SCF_FOR):
            return "the loop index" if v.index == 0 else f"the value the loop carries (#{v.index})"
        return "?"
    if depth == 0:
        return "…"
    if isa(op, SCF_IF):
        then, other = (r.block.terminator for r in op.regions)
        alt = other.operands[v.index].op if other is not None else None
        if then is not None and isa(alt, ARITH_CONSTANT):
            return describe(then.operands[v.index], depth)
    args = [describe(a, depth - 1) for a in op.operands]
    n = op.name
    if isa(op, ARITH_CONSTANT):
        return format_attr(op.attrs.get("value"))
    if isa(op, MEMREF_LOAD):
        return f"{args[0]}[{', '.join(args[1:])}]"
    if n in _INFIX:
        return f"{_paren(op.operands[0], args[0])} {_INFIX[n]} {_paren(op.operands[1], args[1])}"
    if isa(op, ARITH_NEGF):
        return f"-{_paren(op.operands[0], args[0])}"
    if n in _SAME and args:
        return args[0]
    word = n.split(".", 1)[-1]
    return f"{op.attrs.get('of', word)}({', '.join(args)})"


def _paren(v: Value, text: str) -> str:
    """`text` in parentheses when it is an infix expression (so `(a + b) * c` reads right)."""
    return f"({text})" if not v.name and v.op is not None and v.op.name in _INFIX else text


def describe_loop(op: Op) -> str:
    what = "while" if isa(op, SCF_WHILE) else "for"
    if isa(op, SCF_FOR):
        block = op.regions[0].block
        iv = block.args[0].name if block.args and block.args[0].name else None
        made = op.attrs.get("of")
        what = f"in {made}(...)" if made else f"for {iv or '?'}"
    loc = op.attrs.get("loc")
    return f"{what} at {loc}" if loc else what
