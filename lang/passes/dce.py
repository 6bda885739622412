"""dce: delete what computes nothing that is used.

Contract: repeatedly, until nothing changes,
- an op free of effects (`lang/rewrite.py effect_free`: pure, an unchecked `memref.load`,
  an integer division by a non-zero constant) none of whose results is used is deleted, at
  any depth;
- a result of `scf.if` that is unused is dropped, with the matching `scf.yield` operands;
- a loop-carried value of `scf.for` is dropped (init, body argument, yield operand, result)
  when its result is unused and its body argument only feeds pure ops whose values in turn
  only feed each other or that same yield position;
- an `scf.for` or `scf.if` left without results whose regions hold only such ops and the
  terminator is deleted.
Side effects (stores, calls, checks, loads that may raise) are never removed. The rules
are patterns (`DCE`) of the greedy driver of lang/rewrite.py, which erases dead ops itself
and revisits what an erasure leaves unused, so one run reaches the fixpoint.
"""
from __future__ import annotations

from ..ir import Op
from ..ops import is_pure, isa, SCF_FOR, SCF_IF
from ..rewrite import Patterns, Rewriter, Uses, effect_free, greedy_pass


def _all_pure(op: Op, rw: Rewriter) -> bool:
    """Do `op`'s regions hold only removable ops (or for/if ops that do) besides terminators?"""
    return all(effect_free(o) or (isa(o, SCF_IF, SCF_FOR) and _all_pure(o, rw))
               for r in op.regions for o in rw.live_ops(r.block)[:-1])


def _dead_carried(op: Op, j: int, uses: Uses) -> bool:
    """Is carried value j of scf.for `op` unobservable (see the module docstring)?"""
    if uses.used(op.results[j]):
        return False
    yield_ = op.regions[0].block.terminator
    slice_, frontier = set(), [op.regions[0].block.args[j + 1]]
    while frontier:
        v = frontier.pop()
        for o in uses.of(v):
            if o is yield_:
                if any(w is v for k, w in enumerate(o.operands) if k != j):
                    return False
            elif not is_pure(o.name) or o.regions:
                return False
            elif id(o) not in slice_:
                slice_.add(id(o))
                frontier.extend(o.results)
    return True


DCE = Patterns()


@DCE.add(SCF_IF)
def _unused_if_results(op: Op, rw: Rewriter) -> bool:
    dead = [j for j, r in enumerate(op.results) if not rw.uses.used(r)]
    for j in reversed(dead):
        for r in op.regions:
            rw.drop_operand(r.block.terminator, j)
        rw.drop_result(op, j)
    return bool(dead)


@DCE.add(SCF_FOR)
def _unobservable_carried_values(op: Op, rw: Rewriter) -> bool:
    dead = [j for j in range(len(op.results)) if _dead_carried(op, j, rw.uses)]
    body = op.regions[0].block
    for j in reversed(dead):
        rw.drop_operand(body.terminator, j)
        rw.drop_arg(body, j + 1)
        rw.drop_operand(op, 3 + j)
        rw.drop_result(op, j)
    return bool(dead)


@DCE.add(SCF_IF, SCF_FOR)
def _empty_structure(op: Op, rw: Rewriter) -> bool:
    if op.results or not _all_pure(op, rw):
        return False
    rw.erase(op)
    return True


dce = greedy_pass(DCE, "dce", __name__, erase_dead=True)
