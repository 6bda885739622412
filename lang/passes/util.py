"""Small helpers shared by the passes: constants, value substitution, erasing.

Contract: `Subst` maps replaced values to their replacements (following chains) and rewrites
an op's operands on demand, so a pass walking in program order replaces uses without a
second walk (structured dominance puts every use after its definition). `const_of(v)` is
the Python value of a constant (wrapped to i64 / bool / float by type) or `NOT_CONST`.
`uses(op, values)` tells whether an op (or one nested in it) reads any of `values`;
`clone_op` deep-copies an op through a value map, `clone_module` a module;
`defined_inside` lists a block's values. Arrays: `root_of(v)` (the
array a view is of), `separate(loop, a, f)` (no other array `loop` uses reaches `a`'s
memory). `allows(op, flag)` reads an op's `fastmath`. `writes(op)`: may it (or an op nested
in it) write memory (the `writes` trait). `guarded(lb, ub, then, results)`: `then` run only when a loop would run.
"""
from __future__ import annotations

from typing import Callable

from ..ir import BOOL, Block, Function, Module, Op, Region, Value
from ..ops import has_trait, isa, ARITH_CONSTANT, MEMREF_ALLOC, MEMREF_COPY, MEMREF_DEALLOC, MEMREF_STORE

NOT_CONST = object()


def wrap64(x: int) -> int:
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >= 1 << 63 else x


def const_of(v: Value):
    op = v.op
    if op is None or not isa(op, ARITH_CONSTANT) or "value" not in op.attrs:
        return NOT_CONST
    x, t = op.attrs["value"], v.type
    if t.is_float:
        return float(x)
    if t.is_int:
        return wrap64(int(x))
    if t.is_bool:
        return bool(x)
    return NOT_CONST


class Subst:
    def __init__(self):
        self.map: dict[Value, Value] = {}

    def __setitem__(self, old: Value, new: Value) -> None:
        if old is not new:
            self.map[old] = new

    def resolve(self, v: Value) -> Value:
        while v in self.map:
            v = self.map[v]
        return v

    def apply(self, op: Op) -> None:
        if self.map:
            op.operands = [self.resolve(v) for v in op.operands]


def for_each_function(fn: Callable[[Function], None], name: str) -> Callable[[Module], Module]:
    """Lift a per-function rewrite to a module pass called `name`."""
    def run(module: Module) -> Module:
        for f in module:
            fn(f)
        return module
    run.__name__ = run.pass_name = name
    run.__doc__ = fn.__doc__
    run.__module__ = fn.__module__   # the pass's own module (its docstring is its summary)
    return run


def uses(op: Op, values: set) -> bool:
    """Does `op`, or an op nested in it, read one of `values`?"""
    return any(v in values for o in op.walk() for v in o.operands)


def use_counts(block: Block, counts: dict[Value, int] | None = None) -> dict[Value, int]:
    counts = {} if counts is None else counts
    for op in block.walk():
        for v in op.operands:
            counts[v] = counts.get(v, 0) + 1
    return counts


def clone_op(op: Op, vmap: dict) -> Op:
    """A deep copy of `op` (regions included) whose operands go through `vmap` (values not
    in it are kept); the copy's results and block arguments are added to `vmap`."""
    new = Op(op.name, [vmap.get(v, v) for v in op.operands], [r.type for r in op.results],
             dict(op.attrs), (), [r.name for r in op.results])
    for r, nr in zip(op.results, new.results):
        vmap[r] = nr
    for region in op.regions:
        blk = region.block
        nb = Block([a.type for a in blk.args], [a.name for a in blk.args])
        for a, na in zip(blk.args, nb.args):
            vmap[a] = na
        for o in blk.ops:
            nb.append(clone_op(o, vmap))
        copy = Region(nb)
        copy.parent = new
        new.regions.append(copy)
    return new


def defined_inside(block: Block) -> set:
    """Every value defined in `block` or below it (arguments and results)."""
    vals = set(block.args)
    for op in block.walk():
        vals.update(op.results)
        for r in op.regions:
            vals.update(r.block.args)
    return vals


def clone_module(m: Module) -> Module:
    """A deep copy of `m`'s functions (attributes shared by value; derivations not copied)."""
    out = Module()
    out.fast_math = m.fast_math
    for f in m:
        g = Function(f.name, f.param_types, f.result_types, [p.name for p in f.params],
                     dict(f.attrs))
        vmap = dict(zip(f.params, g.params))
        for op in f.body.ops:
            g.body.append(clone_op(op, vmap))
        out.add(g)
    return out


def allows(op: Op, flag: str) -> bool:
    """Does `op`'s `fastmath` attribute allow `flag` ("reassoc", "nsz"; "fast" allows all)?"""
    fm = op.attrs.get("fastmath", "")
    return flag in fm.split() or fm == "fast"


def root_of(v: Value) -> Value:
    """The array `v` is a view of (through ops with the `view` trait), or `v` itself."""
    while v.op is not None and has_trait(v.op, "view"):
        v = v.op.operands[0]
    return v


def unwritten_in(loop: Op, root: Value) -> bool:
    """Can nothing in `loop` write the array `root` (a parameter or a `memref.alloc`)? Every
    op of the loop (at any depth) that may write memory is a `memref.store` or `memref.copy`
    into, or a `memref.dealloc` of, an array whose root is a `memref.alloc` other than
    `root` (parameters are never written, and two allocations never share memory), or a tape
    op (the tape is memory of its own: a record holds an array's address, not its elements)."""
    for o in loop.walk():
        if not has_trait(o, "writes") or has_trait(o, "tape"):
            continue
        if isa(o, MEMREF_STORE, MEMREF_COPY, MEMREF_DEALLOC):
            target = root_of(o.operands[1 if not isa(o, MEMREF_DEALLOC) else 0])
            if target is not root and target.op is not None and isa(target.op, MEMREF_ALLOC):
                continue
        return False
    return True


def separate(loop: Op, a: Value, f: Function) -> bool:
    """Is `a` a `memref.alloc` of `f` whose memory no other array `loop` uses can reach?
    (Every other array the loop uses is reached through views from a parameter of `f` or
    another `memref.alloc`; values of other origins, such as call or tape results, might be
    `a` itself.)"""
    if a.op is None or not isa(a.op, MEMREF_ALLOC):
        return False
    params = set(f.params)
    for o in loop.walk():
        for v in o.operands:
            if v is a or not hasattr(v.type, "rank"):
                continue
            r = root_of(v)
            if r is a or not (r in params or (r.op is not None and isa(r.op, MEMREF_ALLOC))):
                return False
    return True


def writes(op: Op) -> bool:
    """May `op`, or an op nested in it, write memory?"""
    return any(has_trait(o, "writes") for o in op.walk())


def guarded(lb: Value, ub: Value, then: Block, results: list) -> list[Op]:
    """`scf.if lb < ub` around `then` (whose ops need parents) with an else yielding zeros
    of the result types; returns the ops to insert."""
    for o in then.ops:
        o.parent = then
    other = Block()
    zeros = []
    for t in results:
        z = other.append(Op("arith.constant", [], [t], {"value": 0.0 if t.is_float else
                                                      (False if t.is_bool else 0)}))
        zeros.append(z.result)
    other.append(Op("scf.yield", zeros))
    nonempty = Op("arith.cmpi", [lb, ub], [BOOL], {"pred": "slt"})
    return [nonempty, Op("scf.if", [nonempty.result], results,
                         regions=[Region(then), Region(other)])]
