"""tape_reserve: a counted loop that records writes its records at computed slots of room
made before it starts, instead of pushing them one by one.

Why: a push checks the tape's capacity (and may grow it) and bumps the tape's size in the
call context every iteration; that stops loop vectorisation. With the room made beforehand
and the slot a function of the iteration number, a loop that records one value per element
vectorises like one that does not.

Contract: for an `scf.for` with step 1 whose body block holds `dad.tape_push` ops of one
level directly, and nothing inside the loop (at any depth) pushes elsewhere, pops, or calls
a function (a callee may record on the same tape):
- before the loop, `%base = dad.tape_reserve %trips {level, bytes}` with `trips` the loop's
  trip count (lang/loops.py: saturated where `ub - lb` wraps, so that the room is refused
  rather than too small) and `bytes` the pushes' size per iteration (8 per scalar, 8 (1 + rank) per
  array) makes room for `trips * bytes` bytes (MemoryError when it cannot) and gives the
  address of the first free slot;
- each push becomes `dad.tape_put %v, %base, %slot` with `slot = (iv - lb) * (bytes / 8) +`
  the slots of the pushes before it in the iteration;
- after the loop, `dad.tape_commit %trips {level, bytes}` adds what was written to the
  tape's size.
The tape then holds exactly what the pushes would have left on it, in the same places, so
the reverse sweep's pops are unchanged. It runs only on the way to machine code
(`machine_pipeline`).
"""
from __future__ import annotations

from ..ir import I64, PTR, Block, Builder, Function, MemRefType, Op
from ..loops import trip_count
from .util import const_of, for_each_function
from ..ops import isa, DAD_TAPE_POP, DAD_TAPE_PUSH, DAD_TAPE_PUT, DAD_TAPE_RESERVE, FUNC_CALL, SCF_FOR

FORBIDDEN = (DAD_TAPE_POP, DAD_TAPE_RESERVE, DAD_TAPE_PUT, FUNC_CALL)


def _slots(op: Op) -> int:
    t = op.operands[0].type
    return 1 + t.rank if isinstance(t, MemRefType) else 1


def _rewrite(loop: Op) -> tuple[list[Op], list[Op]]:
    lb, ub, step = loop.operands[:3]
    body = loop.regions[0].block
    pushes = [op for op in body.ops if isa(op, DAD_TAPE_PUSH)]
    if const_of(step) != 1 or not pushes:
        return [], []
    for op in body.walk():
        if isa(op, *FORBIDDEN) or (isa(op, DAD_TAPE_PUSH) and op.parent is not body):
            return [], []
    levels = {op.attrs.get("level", 0) for op in pushes}
    if len(levels) != 1:
        return [], []
    level, per = levels.pop(), sum(_slots(p) for p in pushes)
    attrs = {"level": level, "bytes": 8 * per}
    head = Builder(Block())
    trips = trip_count(head, lb, ub, step)
    reserve = head.op("dad.tape_reserve", [trips], [PTR], **attrs)
    base = reserve.result
    iv = body.args[0]
    it = Op("arith.subi", [iv, lb], [I64])
    width = Op("arith.constant", [], [I64], {"value": per})
    first = Op("arith.muli", [it.result, width.result], [I64])
    new_ops = [it, width, first]
    off = 0
    for op in body.ops:
        if isa(op, DAD_TAPE_PUSH):
            k = Op("arith.constant", [], [I64], {"value": off})
            slot = Op("arith.addi", [first.result, k.result], [I64])
            new_ops += [k, slot, Op("dad.tape_put", [op.operands[0], base, slot.result], [],
                                    {"level": level})]
            off += _slots(op)
        else:
            new_ops.append(op)
    for op in new_ops:
        op.parent = body
    body.ops[:] = new_ops
    commit = Op("dad.tape_commit", [trips], [], dict(attrs))
    return head.block.ops, [commit]


def _block(block: Block) -> None:
    out = []
    for op in block.ops:
        for r in op.regions:
            _block(r.block)
        before, after = _rewrite(op) if isa(op, SCF_FOR) else ([], [])
        for new in before + [op] + after:
            new.parent = block
            out.append(new)
    block.ops[:] = out


def _function(f: Function) -> None:
    _block(f.body)


tape_reserve = for_each_function(_function, "tape_reserve")
