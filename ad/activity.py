"""Activity analysis: which values of a function carry derivatives. Changes nothing.

A value is *varied* when it depends, through differentiable ops, on a `wrt` parameter, and
*useful* when it reaches a result through differentiable ops; it is *active* when both.
Only float scalars and arrays can be active. Arrays are tracked by alias class: an array,
its views, and the values a loop or branch carries it through share one class, which is
varied when any varied value is stored into a member (or a member is a `wrt` parameter) and
useful when a useful value is loaded from a member (or a member is returned). A call marked
`records` (`ad.recursive`) also writes its array arguments; a value it records on the tape
(`xfn`) is useful, and a value popped from another function's records is varied. Loops are
handled by iterating to a fixed point. `explain()` gives the reason for each named value, as
printed by `dadc emit --stage activity`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..lang.ir import Block, Function, MemRefType, Op, Value
from ..lang.ops import (has_trait, isa, ARITH_SELECT, DAD_TAPE_POP, DAD_TAPE_PUSH, FUNC_CALL, FUNC_RETURN,
                        MEMREF_COPY, MEMREF_LOAD, MEMREF_STORE, SCF_FOR, SCF_IF, SCF_WHILE)
from .rules import RULES


def _is_array(v: Value) -> bool:
    return isinstance(v.type, MemRefType)


def _can_be_active(v: Value) -> bool:
    t = v.type
    return (isinstance(t, MemRefType) and t.elem.is_float) or getattr(t, "is_float", False)


@dataclass
class Activity:
    fn: Function
    wrt: list[Value]
    varied_values: set[Value] = field(default_factory=set)
    useful_values: set[Value] = field(default_factory=set)
    parent: dict[Value, Value] = field(default_factory=dict)
    varied_classes: set[Value] = field(default_factory=set)
    useful_classes: set[Value] = field(default_factory=set)

    # ------------------------------------------------------------------ alias classes
    def find(self, v: Value) -> Value:
        root = v
        while self.parent.get(root, root) is not root:
            root = self.parent[root]
        while v is not root:  # path compression
            nxt = self.parent.get(v, v)
            self.parent[v] = root
            v = nxt
        return root

    def union(self, *vs: Value) -> None:
        arrays = [v for v in vs if _is_array(v)]
        if not arrays:
            return
        r0 = self.find(arrays[0])
        for v in arrays[1:]:
            r = self.find(v)
            if r is not r0:
                self.parent[r] = r0

    # ------------------------------------------------------------------ queries
    def varied(self, v: Value) -> bool:
        if _is_array(v):
            return self.find(v) in self.varied_classes
        return v in self.varied_values

    def useful(self, v: Value) -> bool:
        if _is_array(v):
            return self.find(v) in self.useful_classes
        return v in self.useful_values

    def active(self, v: Value) -> bool:
        return _can_be_active(v) and self.varied(v) and self.useful(v)

    def explain(self, v: Value) -> str:
        if not _can_be_active(v):
            kind = {"i64": "integer", "i1": "bool"}.get(getattr(v.type, "name", ""), "not a float")
            if _is_array(v):
                kind = f"{v.type.elem} array"
            return f"inactive ({kind})"
        names = ", ".join(w.name or "?" for w in self.wrt) or "nothing"
        if not self.varied(v):
            return f"inactive (not varied by {names})"
        if not self.useful(v):
            return "inactive (does not reach a result)"
        return "active"


def _groups(op: Op) -> list[tuple[list[Value], list[Value]]]:
    """Per carried position of a structured op: (the values flowing in, the values they
    become): loop inits and yields flow into the block arguments and the op's results."""
    if isa(op, SCF_FOR):
        body = op.regions[0].block
        y = body.terminator.operands
        return [([op.operands[3 + k], y[k]], [body.args[1 + k], r]) for k, r in enumerate(op.results)]
    if isa(op, SCF_IF):
        t, e = (r.block.terminator.operands for r in op.regions)
        return [([t[k], e[k]], [r]) for k, r in enumerate(op.results)]
    if isa(op, SCF_WHILE):
        before, after = (r.block for r in op.regions)
        cond = before.terminator.operands[1:]
        y = after.terminator.operands
        return [([op.operands[k], y[k]], [before.args[k]]) for k in range(len(op.results))] + \
            [([cond[k]], [after.args[k], r]) for k, r in enumerate(op.results)]
    return []


def _ops(block: Block) -> list[Op]:
    return list(block.walk())


def analyze(fn: Function, wrt: list[Value]) -> Activity:
    a = Activity(fn, list(wrt))
    ops = _ops(fn.body)
    for op in ops:
        if has_trait(op, "view"):
            a.union(op.results[0], op.operands[0])
        elif isa(op, ARITH_SELECT) and op.results and _is_array(op.results[0]):
            a.union(*op.operands[1:], op.results[0])
        for ins, outs in _groups(op):
            a.union(*ins, *outs)

    # reverse-mode code: a value popped from the tape is the value pushed with the same id
    pushed = {op.attrs.get("tape"): op.operands[0] for op in ops if isa(op, DAD_TAPE_PUSH)}
    popped = [(op.results[0], pushed.get(op.attrs.get("tape"))) for op in ops if isa(op, DAD_TAPE_POP)
              and not op.attrs.get("xfn")]
    # records of `ad.recursive`: pushed by an augmented forward function, popped by a reverse one
    xfn_popped = [op.results[0] for op in ops if isa(op, DAD_TAPE_POP) and op.attrs.get("xfn")]
    for r, src in popped:
        if src is not None:
            a.union(r, src)  # an array popped is the array pushed
    for p in wrt:
        if _is_array(p):
            a.varied_classes.add(a.find(p))
        elif _can_be_active(p):
            a.varied_values.add(p)

    def mark_varied(v: Value) -> bool:
        if not _can_be_active(v) or a.varied(v):
            return False
        if _is_array(v):
            a.varied_classes.add(a.find(v))
        else:
            a.varied_values.add(v)
        return True

    for op in ops:  # an array another function pops may be written there: it needs its
        # tangent from the start, one per alias class (a zero one made at the push would not
        # be shared by the array's aliases)
        if isa(op, DAD_TAPE_PUSH) and op.attrs.get("xfn") and _is_array(op.operands[0]):
            mark_varied(op.operands[0])

    def mark_useful(v: Value) -> bool:
        if not _can_be_active(v) or a.useful(v):
            return False
        if _is_array(v):
            a.useful_classes.add(a.find(v))
        else:
            a.useful_values.add(v)
        return True

    changed = True
    while changed:  # varied: forward to a fixed point
        changed = False
        for op in ops:
            n = op.name
            if n in RULES:
                if any(a.varied(o) for o in op.operands):
                    changed |= any(mark_varied(r) for r in op.results)
            elif isa(op, MEMREF_LOAD):
                if a.varied(op.operands[0]):
                    changed |= mark_varied(op.results[0])
            elif isa(op, MEMREF_STORE):
                if a.varied(op.operands[0]):
                    changed |= mark_varied(op.operands[1])
            elif isa(op, MEMREF_COPY):
                if a.varied(op.operands[0]):
                    changed |= mark_varied(op.operands[1])
            elif isa(op, FUNC_CALL):
                if any(a.varied(o) for o in op.operands):
                    changed |= any([mark_varied(r) for r in op.results])
                    if op.attrs.get("records"):  # it accumulates into its array arguments
                        changed |= any([mark_varied(o) for o in op.operands if _is_array(o)])
            for ins, outs in _groups(op):
                if any(a.varied(v) for v in ins):
                    changed |= any([mark_varied(v) for v in outs])
        for r, src in popped:
            if src is not None and a.varied(src):
                changed |= mark_varied(r)
        for r in xfn_popped:  # pushed by another function: may be varied
            changed |= mark_varied(r)

    for op in ops:
        if isa(op, FUNC_RETURN) and op.parent is fn.body:
            for v in op.operands:
                mark_useful(v)
        elif isa(op, DAD_TAPE_PUSH) and op.attrs.get("xfn"):  # popped by another function
            mark_useful(op.operands[0])
    if fn.attrs.get("records"):  # its array parameters are outputs too (written in place)
        for p in fn.params:
            if _is_array(p):
                mark_useful(p)
    for r in xfn_popped:  # an array popped may alias another one popped, which is read
        if _is_array(r):
            mark_useful(r)
    changed = True
    while changed:  # useful: backward to a fixed point
        changed = False
        for op in reversed(ops):
            n = op.name
            if n in RULES:
                if any(a.useful(r) for r in op.results):
                    changed |= any([mark_useful(o) for o in op.operands])
            elif isa(op, MEMREF_LOAD):
                if a.useful(op.results[0]):
                    changed |= mark_useful(op.operands[0])
            elif isa(op, MEMREF_STORE):
                if a.useful(op.operands[1]):
                    changed |= mark_useful(op.operands[0])
            elif isa(op, MEMREF_COPY):
                if a.useful(op.operands[1]):
                    changed |= mark_useful(op.operands[0])
            elif isa(op, FUNC_CALL):
                if any(a.useful(r) for r in op.results) or (op.attrs.get("records") and any(
                        a.useful(o) for o in op.operands if _is_array(o))):
                    changed |= any([mark_useful(o) for o in op.operands])
            for ins, outs in _groups(op):
                if any(a.useful(v) for v in outs):
                    changed |= any([mark_useful(v) for v in ins + outs])
        for r, src in popped:
            if src is not None and a.useful(r):
                changed |= mark_useful(src)
    return a


def report(a: Activity) -> str:
    """Every parameter and named local of the function with its activity and the reason."""
    lines = [f"activity of @{a.fn.name} with respect to "
             f"{', '.join(w.name or '?' for w in a.wrt) or 'nothing'}:"]
    seen: dict[str, str] = {}
    values = list(a.fn.params)
    for op in a.fn.walk():
        values += op.results
        for r in op.regions:
            values += r.block.args
    for v in values:
        if not v.name or v.name.startswith(("$", "_")) or not v.name[0].isalpha():
            continue
        verdict = a.explain(v)
        if v.name in seen:
            if seen[v.name] != "active" and verdict == "active":
                seen[v.name] = verdict  # a variable is active when any of its SSA values is
            continue
        seen[v.name] = verdict
    width = max((len(n) for n in seen), default=0)
    for name, verdict in seen.items():
        lines.append(f"  {name.ljust(width)} : {verdict}")
    return "\n".join(lines) + "\n"
