"""The recorder: how the reverse sweep gets the primal values its rules read.

Contract. Reverse mode (ad/reverse.py) reverses each block of the function in a block of its
own, through a `Ctx`. `ctx.get(key)` gives the value a rule reads there, in order of
preference:
- visible: defined in an enclosing block (at the top level, everything the forward sweep
  computed is visible);
- recomputed: the policy (ad/policy.py) chose to compute it again: cheap pure ops, loads
  from arrays nothing stores into from the top-level op holding the load on;
- exported: a scalar of a branch nested only in branches, which the forward `scf.if`
  yields as an extra result;
- recorded: a `dad.tape_pop` at the start of the reverse block, paired by its `tape` id
  with the `dad.tape_push` that `insert_pushes` puts at the end of the forward block (LIFO
  order matches because the reverse sweep visits blocks in exactly the reverse order).
Rules fetch operands lazily (`Args`), so a value is recorded only when an adjoint reads it.
Keys are values, or tuples naming what is not a value of the function: `("shadow", v)`
(the shadow array of `v`), `("count", while_op)` (its iteration count), `("arg", call, k)`
(a copy of a call's array argument), `("export", if_op, key)`, `("ckpt", loop, arr)`.
`ctx.acc(v, g)` adds `g` to the adjoint of `v` in this block. `tape_report(rev)` says, per
loop, what each iteration records and what is computed again instead.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..lang.ir import I64, Block, Builder, MemRefType, Op, ScalarType, Value
from ..lang.describe import describe, describe_loop
from ..lang.ops import has_trait, isa, DAD_TAPE_PUSH, MEMREF_ALLOC, SCF_IF
from . import policy
from .shadows import ACC
from .signatures import ADError


def is_float_scalar(v: Value) -> bool:
    return getattr(v.type, "is_float", False)


def block_of(key) -> Block:
    if isinstance(key, Value):
        return key.owner if isinstance(key.owner, Block) else key.owner.parent
    tag, x = key[0], key[1]
    if tag == "shadow":
        return block_of(x)
    return x.parent  # ("count", while op), ("arg", call op, k), ("export", if op, key)


class PrefixBuilder(Builder):
    """Inserts at the front part of a block (its prefix), keeping insertion order."""

    def __init__(self, ctx: "Ctx"):
        super().__init__(ctx.rblock)
        self.ctx = ctx

    def insert(self, op: Op) -> Op:
        op.parent = self.block
        self.block.ops.insert(self.ctx.prefix_at, op)
        self.ctx.prefix_at += 1
        return op


class Args:
    """An op's operands, fetched from the reverse context only when a rule reads them."""

    def __init__(self, ctx: "Ctx", operands):
        self.ctx, self.operands = ctx, operands

    def __getitem__(self, k):
        return self.ctx.get(self.operands[k])

    def __iter__(self):
        return (self.ctx.get(o) for o in self.operands)

    def __len__(self):
        return len(self.operands)


class Ctx:
    """The reverse of one block: where its code goes, how it gets primal values, adjoints."""

    def __init__(self, rev, parent: "Ctx | None", old: Block, rblock: Block,
                 b: Builder | None = None):
        self.rev, self.parent, self.old, self.rblock = rev, parent, old, rblock
        self.b = b or Builder(rblock)
        # where the forward sweep of this block is, and its values (a checkpointed loop
        # is replayed in the reverse sweep: its pushes go into the replay)
        self.fblock = rev.fwd_blocks.get(old)
        self.fenv = rev.fwd_env
        self.env: dict = {}
        self.bar: dict[Value, Value] = {}
        self.pops: list = []
        self.recomputed: list[Value] = []   # what the policy chose to compute again here
        self.prefix_at = len(rblock.ops)
        self.pre = PrefixBuilder(self)

    @property
    def top(self) -> bool:
        return self.parent is None

    # ------------------------------------------------------------------ primal values
    def get(self, key):
        if key in self.env:
            return self.env[key]
        if self.top:
            if key not in self.fenv:
                raise ADError(f"internal error: no forward value for {key!r}")
            v = self.fenv[key]
        elif block_of(key) is not self.old:
            v = self.parent.get(key)
        else:
            v = self.recompute(key)
            if v is None:
                v = self.export(key)
            if v is None:
                self.rev.tape_ids += 1
                v = self.pre.op("dad.tape_pop", [], [key_type(key)],
                                names=[key_name(key)], tape=self.rev.tape_ids,
                                level=self.rev.level).results[0]
                self.pops.append((key, self.rev.tape_ids))
        self.env[key] = v
        if isinstance(key, Value) and isinstance(key.type, MemRefType):
            self.rev.request(key)
        return v

    def recompute(self, key):
        """Re-emit a cheap pure op (or a load from a never-written array), or None."""
        if isinstance(key, tuple):
            tag, v = key[0], key[1]
            if tag == "shadow" and v.op is not None and has_trait(v.op, "view"):
                op = v.op
                base = self.get(("shadow", op.operands[0]))
                rest = [self.get(o) for o in op.operands[1:]]
                return self.pre.op(op.name, [base, *rest], [v.type], **op.attrs).results[0]
            if tag == "shadow" and isa(v.op, MEMREF_ALLOC) and self.rev.shadow_only_reversed(v):
                # an array this block allocates: its adjoints live only in this block's
                # reverse, so its shadow is made there (zeros), not recorded
                dims = [self.get(o) for o in v.op.operands]
                return self.pre.alloc(v.type.elem, dims, bar_name(v))
            return None
        op = key.op
        if op is None or policy.choose(op, self.rev).kind != policy.RECOMPUTE:
            return None
        self.recomputed.append(key)
        args = [self.get(o) for o in op.operands]
        new = self.pre.op(op.name, args, [r.type for r in op.results],
                          names=[r.name for r in op.results], **op.attrs)
        for r, nr in zip(op.results, new.results):
            if r is not key:
                self.env.setdefault(r, nr)
        return new.results[op.results.index(key)]

    def export(self, key):
        """A scalar of a branch whose enclosing blocks are all branches, up to the function
        body: the forward `scf.if` also yields it (a zero from the other branch), and the
        reverse takes that result from the block around the `scf.if`, with no tape."""
        op = self.old.parent.parent if self.old.parent is not None else None
        if op is None or not isa(op, SCF_IF) or not isinstance(key_type(key), ScalarType):
            return None
        ctx = self.parent
        while not ctx.top:
            up = ctx.old.parent.parent if ctx.old.parent is not None else None
            if up is None or not isa(up, SCF_IF):
                return None
            ctx = ctx.parent
        new = self.rev.fwd_if[op]
        t = key_type(key)
        for region, old in zip(new.regions, op.regions):
            fb = region.block
            if old.block is self.old:
                v = self.fenv[key]
            else:
                zero = Op("arith.constant", [], [t], {"value": False if t.is_bool else
                                                      (0.0 if t.is_float else 0)})
                zero.parent = fb
                fb.ops.insert(len(fb.ops) - 1, zero)
                v = zero.result
            fb.terminator.operands.append(v)
        out = Value(t, key_name(key), new, len(new.results))
        new.results.append(out)
        ekey = ("export", op, key)
        top = ctx  # the function body's context: its forward values (during the replay
        top.fenv[ekey] = out  # of a checkpointed loop `rev.fwd_env` is the replay's own)
        return self.parent.get(ekey)

    def shadow(self, v: Value) -> Value:
        return self.get(("shadow", v))

    # ------------------------------------------------------------------ adjoints
    def acc(self, v: Value, g: Value | None) -> None:
        if g is None or not is_float_scalar(v) or not self.rev.act.active(v):
            return
        cur = self.bar.get(v)
        if cur is None and not self.top and block_of(v) is not self.old:
            raise ADError(f"internal error: adjoint of an outer value {v!r} is not carried")
        self.bar[v] = g if cur is None else self.b.addf(cur, g, **ACC)

    def zero(self, t) -> Value:
        return self.b.const(0.0, t)

    def bar_or_zero(self, v: Value) -> Value:
        g = self.bar.get(v)
        return g if g is not None else self.zero(v.type)

    # ------------------------------------------------------------------ the sweep
    def reverse_ops(self, ops: list[Op]) -> None:
        for op in reversed(ops):
            self.rev.reverse_op(self, op)


class Reuse(Builder):
    """The builder a derivative rule of `op` gets: a math function of `op`'s operand that the
    program itself computes where `op` can see it (the cos(x) beside a sin(x)) is taken from
    the forward sweep instead of computed again."""

    def __init__(self, ctx: "Ctx", op: Op):
        super().__init__(ctx.b.block)
        self.ctx, self.of = ctx, op

    def math(self, fn: str, *args, **kw) -> Value:
        if len(args) == 1 and self.of.operands and not kw:
            x = self.of.operands[0]
            if args[0] is self.ctx.get(x):
                for other in self.ctx.rev.math_users(x):
                    if other.name == "math." + fn and encloses(other.parent, self.of.parent):
                        return self.ctx.get(other.results[0])
        return super().math(fn, *args, **kw)


def encloses(outer: Block, inner: Block) -> bool:
    """Is `outer` the block `inner` or a block around it?"""
    while inner is not None:
        if inner is outer:
            return True
        region = inner.parent
        op = region.parent if region is not None else None
        inner = op.parent if op is not None else None
    return False


def key_type(key):
    if isinstance(key, Value):
        return key.type
    tag, x = key[0], key[1]
    if tag == "arg":
        return x.operands[key[2]].type
    if tag in ("export", "ckpt"):
        return key_type(key[2])
    return x.type if tag == "shadow" else I64

def key_name(key):
    if isinstance(key, Value):
        return key.name
    tag, x = key[0], key[1]
    if tag == "export":
        return key_name(key[2])
    return f"{x.name}.bar" if tag == "shadow" and x.name else None


def bar_name(v: Value) -> str | None:
    return f"{v.name}.bar" if v.name else None


def insert_pushes(rev) -> None:
    """Each nested block pushes, at its end, what its reverse block pops (LIFO order)."""
    for ctx in rev.ctxs:
        if not ctx.pops:
            continue
        fblock = ctx.fblock
        term = fblock.ops.pop()
        b = Builder(fblock)
        for key, tape_id in reversed(ctx.pops):
            b.op("dad.tape_push", [ctx.fenv[key]], tape=tape_id, level=rev.level)
        fblock.append(term)


def tape_report(rev) -> list["LoopTape"]:
    """Per loop of the forward sweep: what loop, what each iteration records and its
    bytes, and what the reverse sweep computes again instead (ad/policy.py)."""
    out = []
    again: dict[Block, list[str]] = {}
    for ctx in rev.ctxs:
        names = again.setdefault(ctx.old, [])
        # index arithmetic is always computed again and says nothing: floats only
        names += [describe(v) for v in ctx.recomputed
                  if getattr(v.type, "is_float", False) and describe(v) not in names]
    for old, fblock in rev.fwd_blocks.items():
        loop = old.parent.parent if old.parent is not None else None
        if loop is None or not has_trait(loop, "loop"):
            continue
        pushed = [o.operands[0] for o in fblock.ops if isa(o, DAD_TAPE_PUSH)
                  and o.attrs.get("level", 0) == rev.level]
        nbytes = sum(8 * (1 + (v.type.rank if isinstance(v.type, MemRefType) else 0)) for v in pushed)
        what = describe_loop(loop)
        if loop.attrs.get("checkpoint"):
            what += " (checkpointed segment, recorded while replaying)"
        out.append(LoopTape(what, [f"{describe(v)}: {v.type}" for v in pushed], nbytes,
                            again.get(old, [])))
    return out


@dataclass(frozen=True)
class LoopTape:
    """One loop of a tape report."""
    loop: str               # the loop, by its source line and index name
    recorded: list[str]     # per iteration, "expression: type"
    nbytes: int             # bytes recorded per iteration
    recomputed: list[str]   # what the reverse sweep computes again instead (ad/policy.py)
