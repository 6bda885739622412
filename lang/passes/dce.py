"""dce: delete what computes nothing that is used.

Contract: repeatedly, until nothing changes,
- a pure op (`lang.ops.is_pure`) or an unchecked `memref.load` (it reads and cannot
  raise) none of whose results is used is deleted, at any depth;
- a result of `scf.if` that is unused is dropped, with the matching `scf.yield` operands;
- a loop-carried value of `scf.for` is dropped (init, body argument, yield operand, result)
  when its result is unused and its body argument only feeds pure ops whose values in turn
  only feed each other or that same yield position;
- an `scf.for` or `scf.if` left without results whose regions hold only such ops and the
  terminator is deleted.
Side effects (stores, calls, checks, loads that may raise) are never removed.
"""
from __future__ import annotations

from ..ir import Block, Function, Op, Value
from ..ops import is_pure, isa, MEMREF_LOAD, SCF_FOR, SCF_IF
from .util import erase_arg, erase_result, for_each_function, use_counts


def _free(op: Op) -> bool:
    """Can `op` go when its results are unused: pure, or an unchecked load?"""
    return is_pure(op.name) or (isa(op, MEMREF_LOAD) and not op.attrs.get("checked", False))


def _all_pure(op: Op) -> bool:
    """Do `op`'s regions hold only removable ops (or for/if ops that do) besides terminators?"""
    return all(_free(o) or (isa(o, SCF_IF, SCF_FOR) and _all_pure(o))
               for r in op.regions for o in r.block.ops[:-1])


def _dead_carried(op: Op, j: int, counts: dict[Value, int]) -> bool:
    """Is carried value j of scf.for `op` unobservable (see the module docstring)?"""
    if counts.get(op.results[j], 0):
        return False
    body = op.regions[0].block
    yield_ = body.terminator
    slice_, frontier = set(), [body.args[j + 1]]
    users: dict[Value, list[tuple[Op, int]]] = {}
    for o in body.walk():
        for k, v in enumerate(o.operands):
            users.setdefault(v, []).append((o, k))
    while frontier:
        v = frontier.pop()
        for o, k in users.get(v, []):
            if o is yield_:
                if k != j:
                    return False
            elif not is_pure(o.name) or o.regions:
                return False
            elif o not in slice_:
                slice_.add(o)
                frontier.extend(o.results)
    return True


def _shrink(op: Op, counts: dict[Value, int]) -> bool:
    changed = False
    if isa(op, SCF_IF):
        for j in reversed(range(len(op.results))):
            if not counts.get(op.results[j], 0):
                for r in op.regions:
                    del r.block.terminator.operands[j]
                erase_result(op, j)
                changed = True
    elif isa(op, SCF_FOR):
        for j in reversed(range(len(op.results))):
            if _dead_carried(op, j, counts):
                body = op.regions[0].block
                del body.terminator.operands[j]
                erase_arg(body, j + 1)
                del op.operands[3 + j]
                erase_result(op, j)
                changed = True
    return changed


def _sweep(block: Block, counts: dict[Value, int]) -> bool:
    changed = False
    for i in reversed(range(len(block.ops))):
        op = block.ops[i]
        if isa(op, SCF_IF, SCF_FOR):
            changed |= _shrink(op, counts)
        unused = not any(counts.get(r, 0) for r in op.results)
        removable = _free(op) or (isa(op, SCF_IF, SCF_FOR) and not op.results
                                         and _all_pure(op))
        if unused and removable:
            for o in op.walk():
                for v in o.operands:
                    counts[v] -= 1
            del block.ops[i]
            changed = True
            continue
        for region in op.regions:
            changed |= _sweep(region.block, counts)
    return changed


def _dce_function(f: Function) -> None:
    while _sweep(f.body, use_counts(f.body)):
        pass


dce = for_each_function(_dce_function, "dce")
