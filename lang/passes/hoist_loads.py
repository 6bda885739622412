"""hoist_loads: a load a loop repeats with the same array and indices is done once before it.

Contract: a `memref.load` directly in the body of an `scf.for`, unchecked (its bounds were
proven), whose array and indices are defined outside the loop, moves to just before the loop
when nothing in the loop can write the element: every op of the loop (at any depth) that
may write memory is a `memref.store` or `memref.copy` into an array whose root (through
views) is a `memref.alloc` of the function other than the load's root. (Parameters are never
written, and two allocations never share memory.) The moved load runs only when the loop
would run (`scf.if lb < ub`, else 0.0, a value no iteration reads), so it never reads where
the loop would not have. Reverse mode runs it on the copy it differentiates (the `reverse`
pipeline): `xc[a]` read in every iteration of `for b in a + 1..d` is then one value per
iteration of the loop over `a`, recorded (or recomputed) once there instead of once per `b`.
"""
from __future__ import annotations

from ..ir import Block, Builder, Function, Op, replace_all_uses
from ..ops import isa, MEMREF_ALLOC, MEMREF_LOAD, SCF_FOR
from .util import defined_inside, for_each_function, guarded, root_of, unwritten_in


def _hoist(loop: Op, f: Function) -> list[Op]:
    body = loop.regions[0].block
    inside = defined_inside(body)
    lb, ub = loop.operands[:2]
    params = set(f.params)
    out = []
    for op in list(body.ops):
        if not isa(op, MEMREF_LOAD) or op.attrs.get("checked", True) or \
                any(v in inside for v in op.operands):
            continue
        root = root_of(op.operands[0])
        if not (root in params or (root.op is not None and isa(root.op, MEMREF_ALLOC))):
            continue
        if not unwritten_in(loop, root):
            continue
        body.ops.remove(op)
        then = Block()
        then.ops.append(op)
        Builder(then).yield_([op.result])
        guard = guarded(lb, ub, then, [op.result.type])
        hoisted = guard[-1].results[0]
        replace_all_uses(body, op.result, hoisted)
        out += guard
    return out


def _block(block: Block, f: Function) -> None:
    new = []
    for op in block.ops:
        for r in op.regions:
            _block(r.block, f)
        if isa(op, SCF_FOR):
            new += _hoist(op, f)
        new.append(op)
    for op in new:
        op.parent = block
    block.ops[:] = new


def _function(f: Function) -> None:
    _block(f.body, f)


hoist_loads = for_each_function(_function, "hoist_loads")
