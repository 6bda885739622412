"""Record or recompute: how the reverse sweep gets a primal value of a loop body.

Contract: the reverse of a block needs some primal values of the forward sweep. One still in
scope is used as it is; one of an enclosing `scf.if` branch is exported through the branch's
results (ad/reverse.py); for the others `choose(op, rev)` decides, from the op's traits and a
cost table, between
- `RECOMPUTE`: the reverse sweep computes the value again from its operands (each of which is
  got the same way, decided on its own). Only for ops without effects: those with the `cheap`
  trait (cost `COST_CHEAP`) and loads from an array nothing stores into after the load
  (`rev.unchanged_after`, cost `COST_LOAD`);
- `RECORD`: the forward sweep pushes the value on the tape and the reverse sweep pops it.
  Every other op: an elementary function or integer division (cost `COST_OTHER`) costs more
  to compute again than `RECORD_COST`, writing 8 bytes to the tape and reading them back
  (about 2 ns at 10 GB/s, against 5-20 ns for `sin` or `exp`); an op with effects (a call, a
  load from an array written later) cannot be repeated.
Each choice is kept with its reason, and the tape report (`dadc emit --stage tape`) lists
what each loop recomputes beside what it records.

Before any of that, `prepared(fn)` gives reverse mode a copy of the function to differentiate
after the `reverse` pipeline of lang/passes/registry.py: an integer counter a loop steps by a
fixed amount (`idx += 1` beside `for b in ...`) is a closed form of the loop index
(`induction`: the loop carries nothing, and the counter is computed again, `cheap` integer
arithmetic, instead of being recorded in every iteration), and a load an inner loop repeats
(`xc[a]` in `for b in ...`) is done once before it (`hoist_loads`: recorded once per outer
iteration instead of once per inner one). Only the copy changes: the function as compiled
keeps its form (a closed form can make LLVM vectorise a short inner loop, which costs more
than it gains). Both rewrites move exact operations, so the forward sweep computes bit for
bit what the function computes.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..lang.ir import I64, Function, Module, Op
from ..lang.ops import has_trait, isa, MEMREF_LOAD, SCF_FOR
from ..lang.passes import pipeline
from ..lang.passes.util import clone_module

RECORD_COST = 4
COST_CHEAP = 1
COST_LOAD = 1
COST_OTHER = 20


@dataclass(frozen=True)
class Choice:
    kind: str      # RECOMPUTE or RECORD
    cost: int      # of computing it again (None: it cannot be)
    reason: str


RECOMPUTE, RECORD = "recompute", "record"


def choose(op: Op, rev) -> Choice:
    if isa(op, MEMREF_LOAD):
        if rev.unchanged_after(op):
            return Choice(RECOMPUTE, COST_LOAD, "a load from an array nothing writes later")
        return Choice(RECORD, None, "a load from an array written later")
    if has_trait(op, "cheap"):
        return Choice(RECOMPUTE, COST_CHEAP, "cheap to compute again")
    if has_trait(op, "pure"):
        return Choice(RECORD, COST_OTHER, f"computing it again costs more than recording it "
                                          f"({COST_OTHER} > {RECORD_COST})")
    return Choice(RECORD, None, "an op with effects cannot be repeated")


def _has_work(op: Op) -> bool:
    """Is `op` a loop that carries an integer or holds another loop?"""
    return isa(op, SCF_FOR) and (I64 in (r.type for r in op.results) or
                                 any(isa(o, SCF_FOR) for o in op.regions[0].block.walk()))


def prepared(fn: Function) -> Function:
    """`fn`, or, when it has a loop nest, a copy of it (same name, attributes and value
    names) after the `reverse` pipeline (marked, so that preparing it again returns it)."""
    if getattr(fn, "prepared", False) or not any(_has_work(op) for op in fn.walk()):
        return fn
    m = clone_module(Module([fn]))
    for run in pipeline("reverse"):
        m = run(m)
    copy = m[fn.name]
    copy.prepared = True
    return copy
