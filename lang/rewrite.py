"""Use-lists, a rewriter and a greedy pattern driver (MLIR's `applyPatternsGreedily`).

Contract:
- `Uses(root)`: the users of every value under `root` (one walk), an op listed once per
  operand slot that reads the value. Kept exact by the `Rewriter` for every change made
  through it; code that edits operands behind its back must not use it afterwards.
- A *pattern* is a function `(op, rw) -> bool` that either changes the IR through `rw` and
  returns True, or changes nothing and returns False. `Patterns` is a table from op
  definitions (lang/ops.py; None: every op) to the patterns rooted there, tried in order.
- `Rewriter` (what a pattern may do): `replace(op, values)` (every use of op's results
  becomes the given values, then op is erased), `erase(op)` (results unused), `replace_uses(old,
  new)`, `set_operands(op, values)`, `mutate(op, name, operands, attrs)` (an op becomes
  another in place, keeping its results), `inline_before(block, op)` (a region's ops, but for
  its terminator, moved before `op`), `insert_before(op, ops)` (new ops, made by a
  `Builder` on a scratch block, put before `op`), `drop_result(op, j)`, `drop_operand(op, j)`,
  `drop_arg(block, j)`. Every change puts the ops it may enable on the worklist: the users of
  replaced values, the ops defining the operands an erased op read (they may be dead now),
  the parent of a block argument whose users changed, the op holding a block an op was
  erased from, a mutated op and the ops it moved (each op is on the worklist once at most).
  Erased ops stay in their blocks until the run ends: a pattern reading a block's ops asks
  `rw.live_ops(block)`.
- `apply_greedily(function, patterns, erase_dead)` visits every op (program order first,
  then as the worklist says) and applies the first pattern that matches, until no pattern
  applies anywhere; with `erase_dead`, an op that `is_dead` (free of effects, results
  unused) is erased first, as MLIR's driver does. Each change costs time in proportion to the
  uses it touches, not to the function's size. Erased ops leave their blocks at the end.
  Returns whether anything changed.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable

from .ir import Block, Function, Op, Value
from .ops import (OpDef, is_pure, isa, ARITH_CONSTANT, ARITH_FLOORDIVSI, ARITH_FLOORMODSI,
                  MEMREF_LOAD)

Pattern = Callable[[Op, "Rewriter"], bool]


class Patterns:
    """Patterns by the op definition they are rooted at (None: any op)."""

    def __init__(self):
        self.by_root: dict[OpDef | None, list[Pattern]] = defaultdict(list)

    def add(self, *roots: OpDef | None):
        """Decorator: register a pattern rooted at `roots` (none given: every op)."""
        def reg(fn: Pattern) -> Pattern:
            for r in roots or (None,):
                self.by_root[r].append(fn)
            return fn
        return reg

    def __or__(self, other: "Patterns") -> "Patterns":
        out = Patterns()
        for src in (self, other):
            for root, fns in src.by_root.items():
                out.by_root[root].extend(fns)
        return out

    def for_op(self, op: Op) -> list[Pattern]:
        return self.by_root.get(op.name, []) + self.by_root.get(None, [])


class Uses:
    def __init__(self, root: Block):
        # value -> {id(user): [user, number of its operand slots reading the value]}
        self.users: dict[Value, dict[int, list]] = defaultdict(dict)
        for op in root.walk():
            self.add(op)

    def add(self, op: Op) -> None:
        for v in op.operands:
            entry = self.users[v].setdefault(id(op), [op, 0])
            entry[1] += 1

    def remove(self, op: Op) -> None:
        for v in op.operands:
            users = self.users[v]
            entry = users[id(op)]
            entry[1] -= 1
            if not entry[1]:
                del users[id(op)]

    def of(self, v: Value) -> list[Op]:
        return [e[0] for e in self.users.get(v, {}).values()]

    def used(self, v: Value) -> bool:
        return bool(self.users.get(v))


def effect_free(op: Op) -> bool:
    """May `op` go when its results are unused: pure, an unchecked load (it reads and cannot
    raise), or an integer division by a non-zero constant (it cannot raise)?"""
    if is_pure(op.name) or (isa(op, MEMREF_LOAD) and not op.attrs.get("checked", False)):
        return True
    if isa(op, ARITH_FLOORDIVSI, ARITH_FLOORMODSI):
        d = op.operands[1].op
        return isa(d, ARITH_CONSTANT) and d.attrs.get("value") not in (0, None)
    return False


def is_dead(op: Op, uses: Uses) -> bool:
    """Free of effects (`effect_free`, no regions) and no result used."""
    return not op.regions and effect_free(op) and not any(uses.used(r) for r in op.results)


class Rewriter:
    def __init__(self, uses: Uses):
        self.uses = uses
        self.worklist: list[Op] = []
        self.queued: set[int] = set()        # ids of the ops on the worklist (once each)
        self.erased: set[int] = set()
        self.blocks: dict[int, Block] = {}   # blocks holding erased ops (compacted at the end)
        self.changed = False

    # -- the worklist
    def push(self, op: Op | None) -> None:
        if op is not None and id(op) not in self.erased and id(op) not in self.queued:
            self.queued.add(id(op))
            self.worklist.append(op)

    def pop(self) -> Op:
        op = self.worklist.pop()
        self.queued.discard(id(op))
        return op

    def live_ops(self, block: Block) -> list[Op]:
        """`block`'s ops without those erased in this run (blocks are compacted at the end)."""
        return [o for o in block.ops if id(o) not in self.erased]

    def _push_definer(self, v: Value) -> None:
        if v.op is not None:
            self.push(v.op)
        elif isinstance(v.owner, Block) and v.owner.parent is not None:
            self.push(v.owner.parent.parent)   # a block argument: its region's op

    # -- changes
    def replace_uses(self, old: Value, new: Value) -> None:
        if old is new:
            return
        moved = self.uses.users.pop(old, {})
        into = self.uses.users[new]
        for key, (user, n) in moved.items():
            user.operands = [new if v is old else v for v in user.operands]
            into.setdefault(key, [user, 0])[1] += n
            self.push(user)
        self.changed = True

    def set_operands(self, op: Op, values: Iterable[Value]) -> None:
        old = list(op.operands)
        self.uses.remove(op)
        op.operands = list(values)
        self.uses.add(op)
        for v in old:
            self._push_definer(v)
        self.push(op)
        self.changed = True

    def mutate(self, op: Op, name: str, operands: Iterable[Value], attrs: dict) -> None:
        op.name, op.attrs = name, dict(attrs)
        self.set_operands(op, operands)
        for r in op.results:
            for u in self.uses.of(r):
                self.push(u)

    def erase(self, op: Op) -> None:
        for r in op.results:
            assert not self.uses.used(r), f"erasing {op.name} whose result is used"
        for o in op.walk():
            if id(o) in self.erased:      # nested and erased before (its block not compacted yet)
                continue
            self.uses.remove(o)
            self.erased.add(id(o))
            for v in o.operands:
                self._push_definer(v)
        if op.parent is not None:
            self.blocks[id(op.parent)] = op.parent
            region = op.parent.parent      # the op holding the block may now be empty
            if region is not None:
                self.push(region.parent)
        self.changed = True

    def replace(self, op: Op, values: Iterable[Value]) -> None:
        for r, v in zip(op.results, list(values)):
            self.replace_uses(r, v)
        self.erase(op)

    def inline_before(self, block: Block, op: Op) -> None:
        """Move `block`'s ops but its terminator to just before `op` (in `op`'s block)."""
        dest = op.parent
        body = block.ops[:-1]
        i = dest.ops.index(op)
        for o in body:
            o.parent = dest
        dest.ops[i:i] = body
        block.ops[:-1] = []
        for o in body:
            self.push(o)
        self.changed = True

    def insert_before(self, anchor: Op, ops: list[Op]) -> None:
        """Put the new ops `ops` (without regions) just before `anchor`, in its block."""
        block = anchor.parent
        i = block.ops.index(anchor)
        for o in ops:
            o.parent = block
            self.uses.add(o)
            self.push(o)
        block.ops[i:i] = ops
        self.changed = True

    def drop_result(self, op: Op, j: int) -> None:
        assert not self.uses.used(op.results[j])
        op.drop_result(j)
        self.push(op)
        self.changed = True

    def drop_operand(self, op: Op, j: int) -> None:
        self.set_operands(op, op.operands[:j] + op.operands[j + 1:])

    def drop_arg(self, block: Block, j: int) -> None:
        """Drop argument j of `block`; its remaining users must be going too (dead ops that
        the driver erases next: they are put on the worklist)."""
        for u in self.uses.of(block.args[j]):
            self.push(u)
        block.drop_arg(j)
        self.changed = True

    def compact(self) -> None:
        for blk in self.blocks.values():
            blk.ops[:] = [o for o in blk.ops if id(o) not in self.erased]


def apply_greedily(f: Function, patterns: Patterns, erase_dead: bool = False) -> bool:
    uses = Uses(f.body)
    rw = Rewriter(uses)
    for op in reversed(list(f.body.walk())):   # pop() visits in program order first
        rw.push(op)
    while rw.worklist:
        op = rw.pop()
        if id(op) in rw.erased:
            continue
        if erase_dead and is_dead(op, uses):
            rw.erase(op)
            continue
        for p in patterns.for_op(op):
            if p(op, rw):
                break
    rw.compact()
    return rw.changed


def greedy_pass(patterns: Patterns, name: str, module: str, erase_dead: bool = False):
    """A module pass called `name` applying `patterns` greedily to every function; `module`
    is the pass's own module (its docstring is the pass's contract and summary)."""
    def run(m):
        for f in m:
            apply_greedily(f, patterns, erase_dead)
        return m
    run.__name__ = run.pass_name = name
    run.__module__ = module
    return run
