"""licm: loop-invariant pure ops move out of `scf.for` bodies.

Contract: an op directly in the body block of an `scf.for`, pure (`lang.ops.is_pure`: no
side effect, cannot raise), without regions, whose operands are all defined outside the
loop, moves to just before the loop; repeated (an op whose operands just moved may follow),
innermost loops first so that an op can leave several loops. Moving a pure op never changes
a value, and a pure op may run even when the loop runs no iteration. It serves the loop
passes that reason about indices (`forward_stores`, `version_checks`): `a * d + b` in a loop
over `b` is then the invariant `a * d` plus the induction variable.
"""
from __future__ import annotations

from ..ir import Block, Function
from ..ops import is_pure, isa, SCF_FOR
from .util import defined_inside, for_each_function


def _block(block: Block) -> None:
    out = []
    for op in block.ops:
        for r in op.regions:
            _block(r.block)
        if isa(op, SCF_FOR):
            out += _hoist(op)
        out.append(op)
    for op in out:
        op.parent = block
    block.ops[:] = out


def _hoist(loop) -> list:
    body = loop.regions[0].block
    inside = defined_inside(body)
    moved, kept = [], []
    for op in body.ops:
        if is_pure(op.name) and not op.regions and not any(v in inside for v in op.operands):
            moved.append(op)
            inside.difference_update(op.results)
        else:
            kept.append(op)
    body.ops[:] = kept
    return moved


def _function(f: Function) -> None:
    _block(f.body)


licm = for_each_function(_function, "licm")
