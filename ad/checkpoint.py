"""Checkpointing: bounded tape memory for long loops, by recomputing segments.

`plan(fn, records)` chooses the `scf.for` loops of `fn` to checkpoint (at the top level of
its body, or inside `if`s there) for its reverse-mode derivative,
and says why each other loop that records stays as it is (`Note`s, reported as
`CheckpointWarning`s at the loop's source line). `segment(fn, paths)` returns a copy of
`fn` in which each chosen loop runs as ⌈n/K⌉ segments of K = ⌊√n⌋ + 1 iterations: an outer
loop over segments (marked `segments = true`) whose body runs one segment as an inner loop
marked `checkpoint = true`.

What reverse mode does with them (`forward` in the forward sweep, `reverse` in the reverse
sweep):
- The forward sweep runs each segment without recording. At the start of a segment it
  records the checkpoint: the loop-carried scalars (the outer loop's body arguments, on the
  tape like any value the reverse reads) and a copy of each array the loop reads that is
  written from the loop on (`snapshot_arrays`: its own state, in memory, and anything later
  code overwrites).
- The reverse sweep, segment by segment from the last: copies the saved arrays back,
  replays the segment forward, recording, then reverses it. So the tape holds one segment's
  records at a time plus one checkpoint per segment: O(√n) instead of O(n), for about one
  extra forward sweep. Around the whole outer loop the arrays' final contents are saved and
  put back, so the function's results and the rest of the reverse sweep see them as the
  forward sweep left them.

The replay executes exactly the operations of the forward sweep on exactly the same
values, so a checkpointed derivative equals the plain one (up to the order in which the
adjoint sums of values used in every iteration are added). A loop stays as it is when it is
a `while` loop (or a `for` with `break`/`return`: its trip count is not known in advance),
carries an array as a value from one iteration to the next, holds the tape operations of
reverse-mode code being differentiated again (a replay would record them twice), or is
nested in another statement than an `if` (a loop nested in a checkpointed loop is replayed
with it).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..lang.ir import F64, I64, Block, Builder, Function, MemRefType, Op, Region, Value, replace_all_uses
from ..lang.loops import induction_value, trip_count
from ..lang.passes.util import clone_op
from ..lang.ops import has_trait, isa, DAD_TAPE_PUSH, SCF_FOR, SCF_IF


class CheckpointWarning(UserWarning):
    """`checkpoint=true` left a loop that records on the tape as it is (its tape memory
    still grows with its trip count); the message names the loop and the reason."""


@dataclass(frozen=True)
class Note:
    """A loop `checkpoint=true` leaves as it is: where (`file:line:col` or None) and why."""
    loc: str | None
    reason: str

    def render(self, fname: str, derived: str) -> str:
        where = self.loc or f"in function '{fname}'"
        return (f"{where}: warning: '{derived}' (checkpoint=true) records this loop in full: "
                f"{self.reason}")


WHILE = "a 'while' loop (or a 'for' with 'break' or 'return') has no trip count known in advance"
CARRIES_ARRAY = "it carries an array from one iteration to the next as a value"
TAPED = "it holds the tape operations of reverse-mode code: a replay would record them twice"
NESTED = "only loops at the top level of the function body, or inside an 'if' there, are checkpointed"


def _reason(op: Op) -> str | None:
    """Why the top-level loop `op` cannot be checkpointed, or None."""
    if not isa(op, SCF_FOR):
        return WHILE
    if any(isinstance(r.type, MemRefType) for r in op.results):
        return CARRIES_ARRAY
    if any(has_trait(o, "tape") for o in op.walk()):
        return TAPED
    return None


@dataclass
class Pick:
    """A loop to segment: where (`path`: `(k,)` for `fn.body.ops[k]`, `(k, r, j, ...)` for
    op `j` of region `r` of it, ...), the arrays its checkpoints copy and the 8-byte words
    one iteration records (at least 1)."""
    path: tuple[int, ...]
    arrays: list[Value]
    words: int


def records(rev, op: Op) -> bool:
    """Whether the forward sweep of `op` pushes anything on the tape."""
    return _words(rev, op) > 0


def _words(rev, op: Op) -> int:
    """8-byte words the forward sweep of `op` pushes per iteration (nested blocks counted
    once; an array as its pointer, dimensions and a small heap block)."""
    n = 0
    for blk in (r.block for o in op.walk() for r in o.regions):
        fblock = rev.fwd_blocks.get(blk)
        if fblock is None:
            continue
        for o in fblock.ops:
            if isa(o, DAD_TAPE_PUSH):
                t = o.operands[0].type
                n += 1 + (t.rank + 2 if isinstance(t, MemRefType) else 0)
    return n


def plan(fn: Function, rev) -> tuple[list[Pick], list[Note]]:
    """The loops of `fn` to segment, and the notes on the loops that record but stay as
    they are; `rev` has derived `fn` without checkpoints (what each loop records). Loops are
    looked for at the top level and inside `if`s there."""
    picks: list[Pick] = []
    notes: list[Note] = []

    def visit(block: Block, path: tuple[int, ...]) -> None:
        for k, op in enumerate(block.ops):
            if not op.regions or not records(rev, op):
                continue
            if has_trait(op, "loop"):
                why = _reason(op)
                if why is None:
                    picks.append(Pick(path + (k,), snapshot_arrays(rev, op), _words(rev, op)))
                else:
                    notes.append(Note(op.attrs.get("loc"), why))
            elif isa(op, SCF_IF):
                for r, region in enumerate(op.regions):
                    visit(region.block, path + (k, r))
            else:
                for loop in _outermost_loops(op):
                    if records(rev, loop):
                        notes.append(Note(loop.attrs.get("loc"), NESTED))

    visit(fn.body, ())
    return picks, notes


def _outermost_loops(op: Op) -> list[Op]:
    out = []
    for r in op.regions:
        for o in r.block.ops:
            if has_trait(o, "loop"):
                out.append(o)
            elif o.regions:
                out += _outermost_loops(o)
    return out


# ----------------------------------------------------------------------------- the rewrite
def segment(fn: Function, picks: list[Pick]) -> Function:
    """A copy of `fn` with the loops `picks` segmented."""
    copy = Function(fn.name, fn.param_types, fn.result_types, [p.name for p in fn.params], dict(fn.attrs))
    vmap = dict(zip(fn.params, copy.params))
    for op in fn.body.ops:
        copy.body.append(clone_op(op, vmap))
    # last first: segmenting a loop inserts ops before it in its block, moving later ones
    for pick in sorted(picks, key=lambda p: p.path, reverse=True):
        block = copy.body
        for k, r in zip(pick.path[:-1:2], pick.path[1::2]):
            block = block.ops[k].regions[r].block
        _segment_loop(block, block.ops[pick.path[-1]], [vmap[a] for a in pick.arrays], pick.words)
    return copy


def _segment_loop(parent: Block, op: Op, arrays: list[Value], words: int) -> None:
    """Segments of K = ⌊√(n·S/R)⌋ + 1 iterations, where a checkpoint holds S words (the
    arrays' elements, the carried scalars, the segment's start) and an iteration records R:
    K minimises the peak (n/K)·S + K·R; for a scalar state this is about √n."""
    lb, ub, st, *inits = op.operands
    pos = parent.ops.index(op)
    head = Block()
    b = Builder(head)
    trips = trip_count(b, lb, ub, st)
    size = b.i(1 + len(inits))
    for arr in arrays:
        n = b.i(1)
        for d in range(arr.type.rank):
            n = b.muli(n, b.dim(arr, d))
        size = b.addi(size, n)
    ratio = b.divf(b.cast("arith.sitofp", size, F64), b.f(float(max(words, 1))))
    k = b.math("sqrt", b.mulf(b.cast("arith.sitofp", trips, F64), ratio))
    k = b.one("arith.minsi", [b.cast("arith.fptosi", k, I64), trips], I64)  # (no i64 overflow)
    k = b.addi(k, b.i(1))
    # ⌈trips / k⌉ without forming trips + k - 1 (which wraps for trips near 2^63)
    nseg = b.addi(b.one("arith.floordivsi", [trips, k], I64),
                  b.select(b.cmpi("sgt", b.one("arith.floormodsi", [trips, k], I64), b.i(0)),
                           b.i(1), b.i(0)))
    span = b.muli(k, st)
    outer, obody = b.for_(b.i(0), nseg, b.i(1), inits, "segment",
                          [a.name for a in op.regions[0].block.args[1:]],
                          [r.name for r in op.results])
    outer.attrs["segments"] = True
    if "loc" in op.attrs:
        outer.attrs["loc"] = op.attrs["loc"]
    ob = Builder(obody)
    first = ob.muli(obody.args[0], k)        # the segment's first iteration
    slb = induction_value(ob, lb, first, st)
    # the last segment ends at ub; another at slb + span, which is then an iteration of the
    # loop (in range), whereas slb + span past the last segment may wrap
    last = ob.cmpi("sle", ob.subi(trips, first), k)
    sub = ob.select(last, ub, ob.addi(slb, span))
    inner = ob.op("scf.for", [slb, sub, st, *obody.args[1:]], [r.type for r in op.results],
                  regions=[Region(op.regions[0].block)], names=[r.name for r in op.results],
                  checkpoint=True)
    if "loc" in op.attrs:
        inner.attrs["loc"] = op.attrs["loc"]
    ob.yield_(list(inner.results))
    for old, new in zip(op.results, outer.results):
        replace_all_uses(parent, old, new)
    parent.ops[pos:pos + 1] = []
    for o in reversed(head.ops):
        o.parent = parent
        parent.ops.insert(pos, o)


# ----------------------------------------------------------------------------- reverse mode
def snapshot_arrays(rev, loop: Op) -> list[Value]:
    """The arrays defined outside the segment `loop` that it reads or writes and that are
    written from its top-level op on: a replay must find them as the segment did."""
    inside: set[Value] = set()
    for o in loop.walk():
        inside.update(o.results)
        for r in o.regions:
            inside.update(r.block.args)
    k = rev.top_of[id(loop)]
    later = rev.stored_from[k]
    out: list[Value] = []
    for o in loop.walk():
        for v in o.operands:
            if isinstance(v.type, MemRefType) and v not in inside and v not in out and \
                    rev.act.find(v) in later:
                out.append(v)
    return out


def _copy_of(b: Builder, arr: Value) -> Value:
    snap = b.alloc(arr.type.elem, [b.dim(arr, d) for d in range(arr.type.rank)])
    b.op("memref.copy", [arr, snap])
    return snap


class _Outer(dict):
    """`clone_op`'s value map: the clone's own values, else the forward sweep's."""

    def __init__(self, env):
        super().__init__()
        self.env = env

    def get(self, v, default=None):
        return self[v] if v in self else self.env[v]


def forward(rev, loop: Op, b: Builder) -> None:
    """Forward sweep of segment `loop`: copy the arrays its replay needs (the reverse sweep
    reads each copy as the forward value ("ckpt", loop, array): taped once per segment),
    then run the segment as the program does, with no shadows, copies or records."""
    for arr in snapshot_arrays(rev, loop):
        rev.fwd_env[("ckpt", loop, arr)] = _copy_of(b, rev.fwd_env[arr])
    plain = clone_op(loop, _Outer(rev.fwd_env))
    del plain.attrs["checkpoint"]
    b.insert(plain)
    for r, nr in zip(loop.results, plain.results):
        rev.fwd_env[r] = nr


class ReplayEnv(dict):
    """Forward values while replaying inside the reverse sweep: the replay's own, or else
    whatever the reverse context can give."""

    def __init__(self, ctx):
        super().__init__()
        self.ctx = ctx

    def __missing__(self, key):
        return self.ctx.get(key)


def replaying(rev) -> bool:
    return isinstance(rev.fwd_env, ReplayEnv)


def reverse(rev, c, op: Op, rev_for) -> None:
    """The reverse of a segmented loop: `rev_for(c, op)` reverses a loop as usual."""
    b = c.b
    if op.attrs.get("checkpoint"):
        # one segment: put its arrays back as they were at its start, run it forward again,
        # recording (the records of its blocks go into this replay), then reverse it
        snaps = [(c.get(("ckpt", op, arr)), c.get(arr)) for arr in snapshot_arrays(rev, op)]
        for snap, arr in snaps:
            b.op("memref.copy", [snap, arr])
        saved = rev.fwd_env
        rev.fwd_env = ReplayEnv(c)
        try:
            rev.forward_op(op, b)
            rev_for(c, op)
        finally:
            rev.fwd_env = saved
        for snap, _ in snaps:
            c.b.dealloc(snap)
        return
    # the loop over segments: the replays leave its arrays as they were after the first
    # segment; give them back their final contents afterwards
    inner = [o for o in op.regions[0].block.ops if o.attrs.get("checkpoint")]
    arrays = snapshot_arrays(rev, inner[0]) if inner else []
    finals = [(c.get(arr), _copy_of(b, c.get(arr))) for arr in arrays]
    rev_for(c, op)
    for arr, final in finals:
        c.b.op("memref.copy", [final, arr])
        c.b.dealloc(final)
