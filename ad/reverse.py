"""Reverse mode: a function's adjoint program, as a transformation from IR to IR.

`vjp_function(module, name, wrt, new_name)` adds `new_name(params..., out_bar...) ->
(results..., p_bar...)`: an *augmented forward sweep* (the primal, plus shadow arrays and
tape records) followed by a *reverse sweep* that accumulates adjoints (`%x.bar`) from the
results back to the `wrt` parameters, op by op in reverse order.

What the reverse sweep needs. Each nested block (loop body, branch) is reversed in a block
of its own, where the forward block's values are not visible. A value a derivative rule
reads there is, in order of preference: visible (defined in an enclosing block; at the top
level everything the forward sweep computed is visible), recomputed (cheap pure ops, and
loads from arrays nothing stores into from the top-level op holding the load on, so that
they hold at the end of the forward sweep what the load saw), exported (a scalar of a branch
nested only in branches: the forward `scf.if` yields it as an extra result), or recorded: pushed on the call's tape at the
end of the forward block and popped at the start of its reverse block (LIFO order matches
because the reverse sweep visits blocks in exactly the reverse order). Rules fetch operands
lazily, so a value is recorded only when an adjoint actually reads it (`ad.rules.USES_RESULT`).

Loops run backwards over their trip count (`scf.for`) or over an iteration count the forward
sweep keeps (`scf.while`); adjoints of loop-carried values and of outer values used inside
are carried by the reverse loop. An array a loop carries (an array returned from inside it)
has its shadow carried beside it in the forward sweep, as a branch yields the shadows of its
array results: whichever array leaves the loop, its shadow is that array's own, and adjoints
reach it through memory, so the reverse loop carries nothing for it.
The additions that sum an adjoint's contributions carry
`fastmath = "reassoc nsz"` (the program fixes no order for them, nor the sign of a zero), so such sums in a reversed
loop can be vectorised as partial sums. `scf.if` reverses into an `scf.if` on the same condition.
Arrays: every active array has a zero-filled shadow; a load's reverse accumulates into the
shadow, a store's reverse moves the shadow element into the stored value's adjoint and
zeroes it (an overwritten element's history is carried by the tape of the loaded values,
not by restoring memory). Arrays the reverse sweep still reads are freed there, not in the
forward sweep, in the reverse of the op that made them; in reverse-mode code an array popped
from a tape is the array pushed, so it is freed after the uses of all its names. A call
reverses through the callee's own adjoint function (derived once per set of active
arguments), which recomputes the callee's forward sweep; a call between functions of one
call-graph cycle (recursion) goes instead through the callee's augmented forward and reverse
functions (`ad.recursive`), which do not recompute, and take the shadows of its array
arguments by reference.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..lang.ir import I64, Block, Builder, Function, MemRefType, Module, Op, ScalarType, Value
from ..lang.describe import describe, describe_loop
from ..lang.loops import induction_value, trip_count
from ..lang.ops import (dialect, has_trait, isa, DAD_TAPE_POP, DAD_TAPE_PUSH, FUNC_RETURN,
                        MEMREF_ALLOC, MEMREF_COPY, MEMREF_STORE, SCF_IF)
from ..lang.signature import parse_signature
from .activity import Activity, analyze
from . import checkpoint as ckpt
from . import policy
from .recursive import has_split_calls, on_cycle, recursive_pair, unsplit
from .shadows import ACC, accumulate, zeros_like
from .forward import derived_name, wrt_params
from .rules import NONDIFF, RULES, USES_RESULT
from .signatures import ADError, derived_signature



def _is_float_scalar(v: Value) -> bool:
    return getattr(v.type, "is_float", False)


def _block_of(key) -> Block:
    if isinstance(key, Value):
        return key.owner if isinstance(key.owner, Block) else key.owner.parent
    tag, x = key[0], key[1]
    if tag == "shadow":
        return _block_of(x)
    return x.parent  # ("count", while op), ("arg", call op, k), ("export", if op, key)


class _PrefixBuilder(Builder):
    """Inserts at the front part of a block (its prefix), keeping insertion order."""

    def __init__(self, ctx: "_Ctx"):
        super().__init__(ctx.rblock)
        self.ctx = ctx

    def insert(self, op: Op) -> Op:
        op.parent = self.block
        self.block.ops.insert(self.ctx.prefix_at, op)
        self.ctx.prefix_at += 1
        return op


class _Args:
    """An op's operands, fetched from the reverse context only when a rule reads them."""

    def __init__(self, ctx: "_Ctx", operands):
        self.ctx, self.operands = ctx, operands

    def __getitem__(self, k):
        return self.ctx.get(self.operands[k])

    def __iter__(self):
        return (self.ctx.get(o) for o in self.operands)

    def __len__(self):
        return len(self.operands)


class _Ctx:
    """The reverse of one block: where its code goes, how it gets primal values, adjoints."""

    def __init__(self, rev: "_Reverse", parent: "_Ctx | None", old: Block, rblock: Block,
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
        self.pre = _PrefixBuilder(self)

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
        elif _block_of(key) is not self.old:
            v = self.parent.get(key)
        else:
            v = self.recompute(key)
            if v is None:
                v = self.export(key)
            if v is None:
                self.rev.tape_ids += 1
                v = self.pre.op("dad.tape_pop", [], [self.rev.key_type(key)],
                                names=[self.rev.key_name(key)], tape=self.rev.tape_ids,
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
                return self.pre.alloc(v.type.elem, dims, _bar_name(v))
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
        if op is None or not isa(op, SCF_IF) or not isinstance(self.rev.key_type(key), ScalarType):
            return None
        ctx = self.parent
        while not ctx.top:
            up = ctx.old.parent.parent if ctx.old.parent is not None else None
            if up is None or not isa(up, SCF_IF):
                return None
            ctx = ctx.parent
        new = self.rev.fwd_if[op]
        t = self.rev.key_type(key)
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
        out = Value(t, self.rev.key_name(key), new, len(new.results))
        new.results.append(out)
        ekey = ("export", op, key)
        top = ctx  # the function body's context: its forward values (during the replay
        top.fenv[ekey] = out  # of a checkpointed loop `rev.fwd_env` is the replay's own)
        return self.parent.get(ekey)

    def shadow(self, v: Value) -> Value:
        return self.get(("shadow", v))

    # ------------------------------------------------------------------ adjoints
    def acc(self, v: Value, g: Value | None) -> None:
        if g is None or not _is_float_scalar(v) or not self.rev.act.active(v):
            return
        cur = self.bar.get(v)
        if cur is None and not self.top and _block_of(v) is not self.old:
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


class _Reuse(Builder):
    """The builder a derivative rule of `op` gets: a math function of `op`'s operand that the
    program itself computes where `op` can see it (the cos(x) beside a sin(x)) is taken from
    the forward sweep instead of computed again."""

    def __init__(self, ctx: "_Ctx", op: Op):
        super().__init__(ctx.b.block)
        self.ctx, self.of = ctx, op

    def math(self, fn: str, *args, **kw) -> Value:
        if len(args) == 1 and self.of.operands and not kw:
            x = self.of.operands[0]
            if args[0] is self.ctx.get(x):
                for other in self.ctx.rev.math_users(x):
                    if other.name == "math." + fn and _encloses(other.parent, self.of.parent):
                        return self.ctx.get(other.results[0])
        return super().math(fn, *args, **kw)


def _encloses(outer: Block, inner: Block) -> bool:
    """Is `outer` the block `inner` or a block around it?"""
    while inner is not None:
        if inner is outer:
            return True
        region = inner.parent
        op = region.parent if region is not None else None
        inner = op.parent if op is not None else None
    return False


class _Reverse:
    def __init__(self, module: Module, fn: Function, act: Activity):
        self.module, self.fn, self.act = module, fn, act
        self.fwd_env: dict = {}
        self.fwd_blocks: dict[Block, Block] = {}
        self.fwd_deallocs: dict[Value, Op] = {}
        self.requested: set[Value] = set()
        self.fwd_if: dict[Op, Op] = {}  # scf.if of the function -> its forward sweep copy
        self._math_users: dict | None = None
        self.stored_classes = {act.find(op.operands[1])
                               for op in fn.walk() if isa(op, MEMREF_STORE, MEMREF_COPY)}
        # per top-level op: the classes stored from it to the end; and which one holds an op
        self.stored_from: list[set] = []
        self.top_of: dict[int, int] = {}
        later: set = set()
        for k in range(len(fn.body.ops) - 1, -1, -1):
            for op in fn.body.ops[k].walk():
                self.top_of[id(op)] = k
                if isa(op, MEMREF_STORE, MEMREF_COPY):
                    later.add(act.find(op.operands[1]))
            self.stored_from.insert(0, set(later))
        self.ctxs: list[_Ctx] = []
        self.tape_ids = 0  # each push and its pop share a `tape` id (forward mode pairs them)
        # reverse mode of reverse-mode code records on the next tape level; the tape ops of
        # the code being differentiated carry adjoints back on their own level
        levels = [op.attrs.get("level", 0) for op in fn.walk() if has_trait(op, "tape")]
        self.level = 1 + max(levels) if levels else 0
        self.tape_ids = max([op.attrs.get("tape", 0) for op in fn.walk()
                             if has_trait(op, "tape")] + [0])
        self.adjoint_pushed: dict = {}   # tape id -> its pop's reverse pushed an adjoint
        self.derived_ids: dict = {}      # (purpose, tape id) -> id of a derived push/pop pair
        self.shadow_pushed: dict = {}    # tape id -> its push also pushed the array's shadow
        self._cycle: dict = {}           # callee -> on a call-graph cycle through fn
        self._pushed: dict | None = None  # tape id -> the value its push records (alias_root)
        self._fwd_used: set | None = None  # ids of the values the forward sweep uses
        self.reverse_shadows: list[Value] = []  # forward shadows the reverse made its own of

    # ------------------------------------------------------------------ helpers
    def active(self, v: Value) -> bool:
        return self.act.active(v)

    def stable(self, arr: Value) -> bool:
        """Nothing ever stores into this array: a load from it can simply be repeated."""
        return self.act.find(arr) not in self.stored_classes

    def math_users(self, x: Value) -> list[Op]:
        """The `math.*` ops of the function applied to `x`."""
        if self._math_users is None:
            self._math_users = {}
            for op in self.fn.walk():
                if dialect(op) == "math" and len(op.operands) == 1:
                    self._math_users.setdefault(op.operands[0], []).append(op)
        return self._math_users.get(x, [])

    def unchanged_after(self, load: Op, arr: Value | None = None) -> bool:
        """Nothing stores into the loaded array (or `arr`, an array operand of `load`) from
        the top-level op holding `load` on: the array ends the forward sweep as `load` saw
        it, so the load can simply be repeated (an array filled before a loop and only read
        by it is not recorded per iteration), and a call reading it needs no copy of it."""
        arr = load.operands[0] if arr is None else arr
        k = self.top_of.get(id(load))
        return self.stable(arr) or (k is not None and self.act.find(arr) not in self.stored_from[k])

    def request(self, arr: Value) -> None:
        """The reverse sweep reads `arr` (and so the arrays it views): keep them alive."""
        while True:
            self.requested.add(arr)
            if arr.op is None or not has_trait(arr.op, "view"):
                return
            arr = arr.op.operands[0]

    def shadow_only_reversed(self, arr: Value) -> bool:
        """Is the forward sweep's shadow of `arr` (an alloc of a nested block) used by
        nothing in the forward sweep (no call, tape record or loop takes it)? Then the
        reverse sweep makes its own and the forward one goes (`drop_unused_shadows`)."""
        fs = self.fwd_env.get(("shadow", arr))
        if fs is None or fs.op is None or not isa(fs.op, MEMREF_ALLOC):
            return False
        if self._fwd_used is None:     # the forward sweep is complete when the reverse starts
            ops = [o for op in self.fwd_ops for o in op.walk()]
            self._fwd_used = {id(v) for o in ops for v in o.operands}
            self._fwd_op_ids = {id(o) for o in ops}
        if id(fs) in self._fwd_used or id(fs.op) not in self._fwd_op_ids:
            return False              # used there, or made by a checkpoint's replay
        self.reverse_shadows.append(fs)
        return True

    def drop_unused_shadows(self) -> None:
        for fs in self.reverse_shadows:
            fs.op.parent.ops.remove(fs.op)

    def fwd(self, key):
        if key not in self.fwd_env:
            raise ADError(f"internal error: no forward value for {key!r}")
        return self.fwd_env[key]

    def key_type(self, key):
        if isinstance(key, Value):
            return key.type
        tag, x = key[0], key[1]
        if tag == "arg":
            return x.operands[key[2]].type
        if tag in ("export", "ckpt"):
            return self.key_type(key[2])
        return x.type if tag == "shadow" else I64

    def key_name(self, key):
        if isinstance(key, Value):
            return key.name
        tag, x = key[0], key[1]
        if tag == "export":
            return self.key_name(key[2])
        return f"{x.name}.bar" if tag == "shadow" and x.name else None

    # ------------------------------------------------------------------ forward sweep
    def forward_block(self, old: Block, new: Block) -> None:
        self.fwd_blocks[old] = new
        b = Builder(new)
        for op in old.ops:
            self.forward_op(op, b)

    def forward_op(self, op: Op, b: Builder) -> None:
        n = op.name
        if n == "func.return" and op.parent is self.fn.body:
            return
        if n == "scf.for":
            lb, ub, st, *inits = (self.fwd_env[o] for o in op.operands)
            body = op.regions[0].block
            if op.attrs.get("checkpoint") and not ckpt.replaying(self):
                return ckpt.forward(self, op, b)
            arrays = self._carried_arrays(op)
            sinits = [self._shadow_or_zero(b, op.operands[3 + k]) for k in arrays]
            new, nbody = b.for_(lb, ub, st, inits + sinits, body.args[0].name,
                                [a.name for a in body.args[1:]] + [_bar_name(body.args[1 + k]) for k in arrays],
                                [r.name for r in op.results] + [_bar_name(op.results[k]) for k in arrays])
            if "loc" in op.attrs:  # the source loop, for warnings about the derived one
                new.attrs["loc"] = op.attrs["loc"]
            self._bind(body.args, nbody.args)
            self._bind(op.results, new.results)
            m = len(op.results)
            for i, k in enumerate(arrays):
                self.fwd_env[("shadow", body.args[1 + k])] = nbody.args[1 + m + i]
                self.fwd_env[("shadow", op.results[k])] = new.results[m + i]
            self.forward_block(body, nbody)
            self._yield_shadows(nbody, body.terminator.operands, arrays)
            return
        if n == "scf.if":
            arrays = [k for k, r in enumerate(op.results) if isinstance(r.type, MemRefType) and self.active(r)]
            types = [r.type for r in op.results] + [op.results[k].type for k in arrays]
            new, nt, ne = b.if_(self.fwd_env[op.operands[0]], types, [r.name for r in op.results] +
                                [f"{op.results[k].name}.bar" if op.results[k].name else None for k in arrays])
            for old, nb in zip((r.block for r in op.regions), (nt, ne)):
                self.fwd_blocks[old] = nb
                bb = Builder(nb)
                for o in old.ops[:-1]:
                    self.forward_op(o, bb)
                y = old.terminator.operands
                bb.yield_([self.fwd_env[v] for v in y] + [self._shadow_or_zero(bb, y[k]) for k in arrays])
            self._bind(op.results, new.results)
            self.fwd_if[op] = new
            for i, k in enumerate(arrays):
                self.fwd_env[("shadow", op.results[k])] = new.results[len(op.results) + i]
            return
        if n == "scf.while":
            before, after = (r.block for r in op.regions)
            zero = b.i(0)
            arrays = self._carried_arrays(op)
            sinits = [self._shadow_or_zero(b, op.operands[k]) for k in arrays]
            new, nb, na = b.while_([self.fwd_env[o] for o in op.operands] + sinits + [zero],
                                   [a.name for a in before.args] +
                                   [_bar_name(before.args[k]) for k in arrays] + ["trips"])
            if "loc" in op.attrs:
                new.attrs["loc"] = op.attrs["loc"]
            self._bind(before.args, nb.args)
            self._bind(after.args, na.args)
            self._bind(op.results, new.results)
            m = len(op.results)
            for i, k in enumerate(arrays):
                for old, nw in ((before.args, nb.args), (after.args, na.args), (op.results, new.results)):
                    self.fwd_env[("shadow", old[k])] = nw[m + i]
            self.fwd_env[("count", op)] = new.results[-1]
            self.fwd_blocks[before] = nb
            bb = Builder(nb)
            for o in before.ops[:-1]:
                self.forward_op(o, bb)
            cond = before.terminator.operands
            bb.op("scf.condition", [self.fwd_env[v] for v in cond] +
                  [self._shadow_or_zero(bb, cond[1 + k]) for k in arrays] + [nb.args[-1]])
            self.fwd_blocks[after] = na
            ba = Builder(na)
            for o in after.ops[:-1]:
                self.forward_op(o, ba)
            y = after.terminator.operands
            ba.yield_([self.fwd_env[v] for v in y] + [self._shadow_or_zero(ba, y[k]) for k in arrays] +
                      [ba.addi(na.args[-1], ba.i(1))])
            return
        if n == "dad.tape_pop" and self.shadow_pushed.get(op.attrs.get("tape")):
            r = op.results[0]  # pushes were (array, shadow): the shadow comes off first
            self.fwd_env[("shadow", r)] = b.op(
                "dad.tape_pop", [], [r.type], tape=self._paired_id(("shadow", op.attrs.get("tape"))),
                level=op.attrs.get("level", 0)).results[0]
        operands, attrs = [self.fwd_env[o] for o in op.operands], op.attrs
        pair = self.recursive_pair(op) if n == "func.call" else None
        if pair:  # the callee's augmented forward function, given the arrays' shadows
            operands += [self.fwd_env[("shadow", o)] for o in self._shadowed(op)]
            attrs = {**attrs, "callee": pair[0], "records": True}
        new = b.op(n, operands, [r.type for r in op.results], names=[r.name for r in op.results], **attrs)
        self._bind(op.results, new.results)
        if n == "dad.tape_push":
            v = op.operands[0]
            if isinstance(v.type, MemRefType) and self.active(v):
                b.op("dad.tape_push", [self.fwd_env[("shadow", v)]],
                     tape=self._paired_id(("shadow", op.attrs.get("tape"))), level=op.attrs.get("level", 0))
                self.shadow_pushed[op.attrs.get("tape")] = True
        elif n == "memref.dealloc":
            self.fwd_deallocs[op.operands[0]] = new
        elif n == "memref.alloc" and self.active(op.results[0]):
            t = op.results[0].type
            self.fwd_env[("shadow", op.results[0])] = b.alloc(t.elem, list(new.operands), _bar_name(op.results[0]))
        elif has_trait(op, "view") and self.active(op.results[0]):
            base = self.fwd_env[("shadow", op.operands[0])]
            self.fwd_env[("shadow", op.results[0])] = b.op(n, [base, *new.operands[1:]], [new.results[0].type],
                                                          **op.attrs).results[0]
        elif n == "func.call":
            for k, o in enumerate(op.operands):
                # an array argument written after the call (from the top-level op holding
                # it on): its adjoint call needs it as it was, so keep a copy (freed in the
                # reverse sweep)
                if isinstance(o.type, MemRefType) and not self.unchanged_after(op, o) and \
                        self._call_active(op):
                    arg = new.operands[k]
                    snap = zeros_like(b, arg, None)
                    b.op("memref.copy", [arg, snap])
                    self.fwd_env[("arg", op, k)] = snap
            for r, nr in zip(op.results, new.results):
                if isinstance(r.type, MemRefType) and self.active(r):
                    self.fwd_env[("shadow", r)] = zeros_like(b, nr, _bar_name(r))
        elif n == "dad.undef" and isinstance(op.results[0].type, MemRefType):
            self.fwd_env[("shadow", op.results[0])] = b.op("dad.undef", [], [op.results[0].type]).results[0]

    def _carried_arrays(self, op: Op) -> list[int]:
        """Positions of the active arrays a loop carries: each gets its shadow carried
        beside it, so that the shadow of whatever array a result holds is that array's own
        (adjoints then reach it through memory, as for a branch's array results)."""
        return [k for k, r in enumerate(op.results) if isinstance(r.type, MemRefType) and self.active(r)]

    def _yield_shadows(self, nblock: Block, yielded, arrays) -> None:
        """Append to the terminator of `nblock` the shadows of the `arrays` it yields."""
        if not arrays:
            return
        term = nblock.ops.pop()
        b = Builder(nblock)
        term.operands.extend(self._shadow_or_zero(b, yielded[k]) for k in arrays)
        nblock.append(term)

    def _bind(self, olds, news):
        for o, nw in zip(olds, news):
            self.fwd_env[o] = nw

    def _shadow_or_zero(self, b, v):
        key = ("shadow", v)
        if key in self.fwd_env:
            return self.fwd_env[key]
        return zeros_like(b, self.fwd_env[v], None)

    # ------------------------------------------------------------------ reverse sweep
    def reverse_op(self, c: _Ctx, op: Op) -> None:
        n = op.name
        if n in ("scf.yield", "scf.condition", "func.return"):
            return
        handler = getattr(self, "rev_" + n.replace(".", "_"), None)
        if handler is not None:
            handler(c, op)
            return
        if n in NONDIFF or has_trait(op, "view"):
            return
        if n not in RULES:
            raise ADError(f"reverse mode has no rule for op '{n}'")
        r = op.results[0]
        g = c.bar.get(r)
        if g is None or not self.active(r):
            return
        y = c.get(r) if n in USES_RESULT else None
        rule = RULES[n](_Reuse(c, op), _Args(c, op.operands), y)
        for o, a in zip(op.operands, rule.adjoint(g)):
            c.acc(o, a)

    def rev_memref_load(self, c, op):
        r = op.results[0]
        g = c.bar.get(r)
        if g is None or not self.active(op.operands[0]):
            return
        sh = c.shadow(op.operands[0])
        idx = [c.get(i) for i in op.operands[1:]]
        c.b.store(c.b.addf(c.b.load(sh, idx), g, **ACC), sh, idx)

    def rev_memref_store(self, c, op):
        v, arr = op.operands[0], op.operands[1]
        if not self.active(arr):
            return
        sh = c.shadow(arr)
        idx = [c.get(i) for i in op.operands[2:]]
        if self.active(v):
            c.acc(v, c.b.load(sh, idx))
        c.b.store(c.zero(arr.type.elem), sh, idx)

    def rev_memref_copy(self, c, op):
        src, dst = op.operands
        if not self.active(dst):
            return
        dsh = c.shadow(dst)
        ssh = c.shadow(src) if self.active(src) else None
        accumulate(c.b, dsh, ssh)

    def alias_root(self, v: Value) -> Value:
        """The array a value popped from a tape of reverse-mode code is (the array pushed,
        back to the alloc or call that made it): one buffer under several names."""
        if self._pushed is None:
            self._pushed = {op.attrs.get("tape"): op.operands[0] for op in self.fn.walk()
                            if isa(op, DAD_TAPE_PUSH)}
        while v.op is not None and isa(v.op, DAD_TAPE_POP):
            src = self._pushed.get(v.op.attrs.get("tape"))
            if src is None or src.op is None or not has_trait(src.op, "owner"):
                break
            v = src
        return v

    def _free_here(self, c, r: Value) -> None:
        """An array the reverse sweep reads (under any of its names, `alias_root`), freed in
        the forward sweep: move that free to here, the reverse of the op that made the array,
        which the reverse sweep reaches after every use of every name of it."""
        if not isinstance(r.type, MemRefType) or self.alias_root(r) is not r:
            return
        frees = [v for v in self.fwd_deallocs if self.alias_root(v) is r]
        if not frees or not any(self.alias_root(v) is r for v in self.requested):
            return
        for v in frees:
            d = self.fwd_deallocs.pop(v)
            d.parent.ops.remove(d)
        c.b.dealloc(c.get(r))

    def rev_memref_alloc(self, c, op):
        r = op.results[0]
        self._free_here(c, r)
        if self.active(r):
            c.b.dealloc(c.shadow(r))

    def rev_memref_dealloc(self, c, op):
        pass

    def _paired_id(self, tape_id) -> int:
        """A fresh id for a push/pop pair derived from the pair `tape_id` (ids stay unique)."""
        if tape_id not in self.derived_ids:
            self.tape_ids += 1
            self.derived_ids[tape_id] = self.tape_ids
        return self.derived_ids[tape_id]

    def rev_dad_tape_pop(self, c, op):
        """The value popped was the value pushed: send its adjoint back on the same tape."""
        r = op.results[0]
        # an array popped in reverse-mode code is freed there after its last use; if this
        # reverse sweep reads it too (an argument of a call's adjoint), it is freed in the
        # reverse of what made it (this pop if the push is not of this function)
        self._free_here(c, r)
        if _is_float_scalar(r) and self.active(r):
            c.b.op("dad.tape_push", [c.bar_or_zero(r)], tape=self._paired_id(("adj", op.attrs.get("tape"))),
                   level=op.attrs.get("level", 0))
            self.adjoint_pushed[op.attrs.get("tape")] = True

    def rev_dad_tape_push(self, c, op):
        if self.adjoint_pushed.get(op.attrs.get("tape")):
            v = op.operands[0]
            g = c.b.op("dad.tape_pop", [], [v.type], tape=self._paired_id(("adj", op.attrs.get("tape"))),
                       level=op.attrs.get("level", 0)).results[0]
            c.acc(v, g)

    def rev_dad_undef(self, c, op):
        pass

    def _release(self, c, op):
        """Free the call's array results here if the reverse sweep kept them alive."""
        for r in op.results:
            if r in self.requested and r in self.fwd_deallocs:
                d = self.fwd_deallocs.pop(r)
                d.parent.ops.remove(d)
                c.b.dealloc(c.get(r))
            if ("shadow", r) in self.fwd_env:
                c.b.dealloc(c.shadow(r))

    def rev_func_call(self, c, op):
        self._call_adjoint(c, op)
        self._release(c, op)
        for r in op.results:  # an array result freed under another name (a tape pop)
            self._free_here(c, r)

    def _call_active(self, op) -> bool:
        return any(self.active(o) for o in op.operands) and any(self.active(r) for r in op.results)

    def recursive_pair(self, op: Op) -> tuple[str, str] | None:
        """For an active call of a function on a call-graph cycle through the function
        differentiated: its augmented forward and reverse functions (`ad.recursive`)."""
        callee = self.module[op.attrs["callee"]]
        if not self._call_active(op) or callee.attrs.get("custom_vjp") or callee.attrs.get("custom_of"):
            return None
        if not on_cycle(self.module, self.fn.name, callee.name, self._cycle):
            return None
        wrt = [p.name for p, o in zip(callee.params, op.operands) if self.active(o)]
        return recursive_pair(self.module, callee.name, wrt, _build_vjp)

    def _shadowed(self, op: Op) -> list[Value]:
        """The active array arguments of a call: their shadows go by reference."""
        return [o for o in op.operands if isinstance(o.type, MemRefType) and self.active(o)]

    def _call_adjoint(self, c, op):
        callee = self.module[op.attrs["callee"]]
        mask = [self.active(o) for o in op.operands]
        if not self._call_active(op):
            return
        pair = self.recursive_pair(op)
        if pair:
            return self._rev_recursive_call(c, op, pair[1])
        custom = callee.attrs.get("custom_vjp")
        if callee.attrs.get("custom_of") and not custom:  # a custom rule for forward mode only
            callee = self.module[callee.attrs["custom_of"]]
        if custom:
            from .custom import float_params
            name = custom
            floats = float_params(callee)
        else:
            wrt = [p.name for p, m in zip(callee.params, mask) if m]
            name = derived_name(callee.name, "vjp", wrt)
            if name not in self.module.functions:
                vjp_function(self.module, callee.name, wrt, name, internal=True)
        b = c.b
        args, bars, snaps = self._call_seeds(c, op)
        derived = self.module[name]
        res = b.op("func.call", args + bars, derived.result_types, callee=name,
                   **{k: v for k, v in op.attrs.items() if k == "loc"}).results
        outs, pbars = res[:len(op.results)], res[len(op.results):]
        for key in snaps:
            b.dealloc(c.get(key))
        if custom:  # the rule gives every float parameter's adjoint: keep the active ones
            keep = [pbars[floats.index(k)] for k, m in enumerate(mask) if m]
            for k, pb in zip(floats, pbars):
                if not mask[k] and isinstance(pb.type, MemRefType):
                    b.dealloc(pb)
            pbars = keep
        for r, o in zip(op.results, outs):
            if isinstance(r.type, MemRefType):
                b.dealloc(o)
        k = 0
        for o, m in zip(op.operands, mask):
            if not m:
                continue
            pb = pbars[k]
            k += 1
            if isinstance(o.type, MemRefType):
                accumulate(b, pb, c.shadow(o), accumulate_only=True)
                b.dealloc(pb)
            else:
                c.acc(o, pb)

    def _call_seeds(self, c, op):
        """The call's arguments as the forward sweep passed them (kept copies where the
        caller overwrote them), the adjoints of its results, and the copies to free."""
        b = c.b
        snaps = [("arg", op, k) for k in range(len(op.operands)) if ("arg", op, k) in self.fwd_env]
        args = [c.get(("arg", op, k)) if ("arg", op, k) in snaps else c.get(o)
                for k, o in enumerate(op.operands)]
        bars = []
        for r in op.results:
            if isinstance(r.type, MemRefType):
                bars.append(c.shadow(r) if self.active(r) else zeros_like(b, c.get(r), None))
            else:
                bars.append(c.bar_or_zero(r) if r.type.is_float else b.const(0, r.type))
        return args, bars, snaps

    def _rev_recursive_call(self, c, op, rev_name: str) -> None:
        """The callee's reverse function: pops what its augmented forward call recorded,
        adds into the arrays' shadows in place, returns the scalars' adjoints."""
        b = c.b
        args, bars, snaps = self._call_seeds(c, op)
        shadows = [c.shadow(o) for o in self._shadowed(op)]
        res = b.op("func.call", args + bars + shadows, self.module[rev_name].result_types,
                   callee=rev_name, records=True, **{k: v for k, v in op.attrs.items() if k == "loc"}).results
        for key in snaps:
            b.dealloc(c.get(key))
        for r, g in zip(op.results, bars):
            if isinstance(r.type, MemRefType) and not self.active(r):
                b.dealloc(g)
        scalars = [o for o in op.operands if self.active(o) and not isinstance(o.type, MemRefType)]
        for o, g in zip(scalars, res):
            c.acc(o, g)

    def outer_scalars(self, op: Op) -> list[Value]:
        """Active float scalars defined outside `op` that ops inside it use."""
        inside: set[Value] = set()
        for o in op.walk():
            if o is not op:
                inside.update(o.results)
            for r in o.regions:
                inside.update(r.block.args)
        out: list[Value] = []
        for o in op.walk():
            if o is op:
                continue
            for v in o.operands:
                if v not in inside and _is_float_scalar(v) and self.active(v) and v not in out:
                    out.append(v)
        return out

    def _child(self, c: _Ctx, old: Block, rblock: Block) -> _Ctx:
        child = _Ctx(self, c, old, rblock)
        self.ctxs.append(child)
        return child

    def rev_scf_for(self, c, op):
        if op.attrs.get("checkpoint") or op.attrs.get("segments"):
            ckpt.reverse(self, c, op, self._rev_for)
        else:
            self._rev_for(c, op)
        self._free_results(c, op)

    def _rev_for(self, c, op):
        body = op.regions[0].block
        n = len(op.results)
        act = [k for k in range(n) if _is_float_scalar(op.results[k]) and
               (self.active(op.results[k]) or self.active(body.args[1 + k]))]
        S = self.outer_scalars(op)
        if not act and not S and not self._has_active(op):
            return
        b = c.b
        lb, ub, st = (c.get(o) for o in op.operands[:3])
        trips = trip_count(b, lb, ub, st)
        inits = [c.bar_or_zero(op.results[k]) for k in act] + [c.bar_or_zero(s) for s in S]
        names = [_bar_name(body.args[1 + k]) for k in act] + [_bar_name(s) for s in S]
        rloop, rbody = b.for_(b.i(0), trips, b.i(1), inits, "it", names)
        child = self._child(c, body, rbody)
        p = child.pre
        r = p.subi(p.subi(trips, p.i(1)), rbody.args[0])
        child.env[body.args[0]] = induction_value(p, lb, r, st)
        for i, s in enumerate(S):
            child.bar[s] = rbody.args[1 + len(act) + i]
        y = body.terminator.operands
        for i, k in enumerate(act):
            child.acc(y[k], rbody.args[1 + i])
        child.reverse_ops(body.ops[:-1])
        child.b.yield_([child.bar_or_zero(body.args[1 + k]) for k in act] + [child.bar_or_zero(s) for s in S])
        for i, s in enumerate(S):  # first: an init may itself be one of the outer values
            c.bar[s] = rloop.results[len(act) + i]
        for i, k in enumerate(act):
            c.acc(op.operands[3 + k], rloop.results[i])

    def _has_active(self, op: Op) -> bool:
        return any(self.active(r) for o in op.walk() for r in o.results) or \
            any(isa(o, MEMREF_STORE, MEMREF_COPY) and self.active(o.operands[1]) for o in op.walk())

    def _free_results(self, c, op):
        """Arrays a structured op yields (a branch or an iteration made them), freed in the
        forward sweep but read by the reverse sweep: freed after the op's reverse, which
        comes after every use of them (`_free_here`), the reverse of its body included."""
        for r in op.results:
            self._free_here(c, r)

    def rev_scf_if(self, c, op):
        self._rev_if(c, op)
        self._free_results(c, op)

    def _rev_if(self, c, op):
        act = [k for k, r in enumerate(op.results) if _is_float_scalar(r) and self.active(r)]
        S = self.outer_scalars(op)
        if not act and not S and not self._has_active(op):
            return
        b = c.b
        for s in S:
            c.bar[s] = c.bar_or_zero(s)
        seeds = {k: c.bar.get(op.results[k]) for k in act}
        rif, rt, re_ = b.if_(c.get(op.operands[0]), [s.type for s in S], [_bar_name(s) for s in S])
        for old, rblock in zip((r.block for r in op.regions), (rt, re_)):
            child = self._child(c, old, rblock)
            for s in S:
                child.bar[s] = c.bar[s]
            y = old.terminator.operands
            for k in act:
                child.acc(y[k], seeds[k])
            child.reverse_ops(old.ops[:-1])
            child.b.yield_([child.bar[s] for s in S])
        for i, s in enumerate(S):
            c.bar[s] = rif.results[i]

    def rev_scf_while(self, c, op):
        self._rev_while(c, op)
        self._free_results(c, op)

    def _rev_while(self, c, op):
        before, after = (r.block for r in op.regions)
        n = len(op.results)
        act = [k for k in range(n) if _is_float_scalar(op.results[k]) and
               any(self.active(v) for v in (op.results[k], before.args[k], after.args[k]))]
        S = self.outer_scalars(op)
        if not act and not S and not self._has_active(op):
            return
        b = c.b
        trips = c.get(("count", op))
        inits = [c.bar_or_zero(op.results[k]) for k in act] + [c.bar_or_zero(s) for s in S]
        rloop, rbody = b.for_(b.i(0), b.addi(trips, b.i(1)), b.i(1), inits, "it",
                              [_bar_name(op.results[k]) for k in act] + [_bar_name(s) for s in S])
        # the reverse of `before` (run N+1 times), then of `after` (all but the last time)
        bc = self._child(c, before, rbody)
        for i, s in enumerate(S):
            bc.bar[s] = rbody.args[1 + len(act) + i]
        cond = before.terminator.operands[1:]
        for i, k in enumerate(act):
            bc.acc(cond[k], rbody.args[1 + i])
        bc.reverse_ops(before.ops[:-1])
        argbar = [bc.bar_or_zero(before.args[k]) for k in act]
        for s in S:
            bc.bar[s] = bc.bar_or_zero(s)
        more = bc.b.cmpi("slt", rbody.args[0], trips)
        types = [op.results[k].type for k in act] + [s.type for s in S]
        rif, rt, re_ = bc.b.if_(more, types)
        ac = self._child(c, after, rt)
        for s in S:
            ac.bar[s] = bc.bar[s]
        y = after.terminator.operands
        for i, k in enumerate(act):
            ac.acc(y[k], argbar[i])
        ac.reverse_ops(after.ops[:-1])
        ac.b.yield_([ac.bar_or_zero(after.args[k]) for k in act] + [ac.bar[s] for s in S])
        Builder(re_).yield_(argbar + [bc.bar[s] for s in S])
        bc.b.yield_(list(rif.results))
        for i, s in enumerate(S):  # first: an init may itself be one of the outer values
            c.bar[s] = rloop.results[len(act) + i]
        for i, k in enumerate(act):
            c.acc(op.operands[k], rloop.results[i])

    # ------------------------------------------------------------------ records
    def insert_pushes(self) -> None:
        """Each nested block pushes, at its end, what its reverse block pops (LIFO order)."""
        for ctx in self.ctxs:
            if not ctx.pops:
                continue
            fblock = ctx.fblock
            term = fblock.ops.pop()
            b = Builder(fblock)
            for key, tape_id in reversed(ctx.pops):
                b.op("dad.tape_push", [ctx.fenv[key]], tape=tape_id, level=self.level)
            fblock.append(term)

    def tape_report(self) -> list["LoopTape"]:
        """Per loop of the forward sweep: what loop, what each iteration records and its
        bytes, and what the reverse sweep computes again instead (ad/policy.py)."""
        out = []
        again: dict[Block, list[str]] = {}
        for ctx in self.ctxs:
            names = again.setdefault(ctx.old, [])
            # index arithmetic is always computed again and says nothing: floats only
            names += [describe(v) for v in ctx.recomputed
                      if getattr(v.type, "is_float", False) and describe(v) not in names]
        for old, fblock in self.fwd_blocks.items():
            loop = old.parent.parent if old.parent is not None else None
            if loop is None or not has_trait(loop, "loop"):
                continue
            pushed = [o.operands[0] for o in fblock.ops if isa(o, DAD_TAPE_PUSH)
                      and o.attrs.get("level", 0) == self.level]
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


def _bar_name(v: Value) -> str | None:
    return f"{v.name}.bar" if v.name else None


def vjp_function(module: Module, name: str, wrt: list[str] | None, new_name: str,
                 internal: bool = False, checkpoint: bool = False) -> Function:
    """With `checkpoint`, top-level loops that record run in √n segments (`ad.checkpoint`);
    the loops that record and stay as they are get `checkpoint.Note`s (`.checkpoint_notes`)."""
    fn = policy.prepared(module[name])   # what the checkpoint plan and the adjoint both see
    src = fn
    notes = []
    if checkpoint:
        scratch = Module(list(module))
        _, rev = _build_vjp(scratch, fn, wrt, new_name, internal)
        picks, notes = ckpt.plan(fn, rev)
        if picks:
            src = ckpt.segment(fn, picks)
    new, rev = _build_vjp(module, src, wrt, new_name, internal)
    new.tape_report = rev.tape_report()
    new.checkpoint_notes = notes
    return new


def _build_vjp(module: Module, fn: Function, wrt, new_name: str, internal: bool):
    primal = fn.name
    if fn.attrs.get("custom_of"):  # differentiate a call of it, so its rule is used
        from .custom import trampoline
        fn = trampoline(fn)
    if has_split_calls(fn):  # reverse mode over reverse-mode code (ad.recursive)
        fn = unsplit(module, fn, vjp_function)
    fn = policy.prepared(fn)
    name = fn.name
    wrt_vals = wrt_params(fn, wrt)
    wrt_names = [p.name for p in wrt_vals]
    act = analyze(fn, wrt_vals)
    sig = derived_signature("vjp", parse_signature(fn.attrs["sig"]), wrt_names)
    params = list(fn.param_types) + list(fn.result_types)
    results = list(fn.result_types) + [p.type for p in wrt_vals]
    # its first results are `primal(params...)`'s (lang.passes.reuse_calls relies on it)
    attrs = {"sig": str(sig), "primal_of": primal}
    if internal:
        attrs["internal"] = True
    new = module.add(Function(new_name, params, results, [p.name for p in sig.params], attrs))
    rev = _Reverse(module, fn, act)
    n = len(fn.params)
    rev._bind(fn.params, new.params)
    b = Builder(new.body)
    for p in wrt_vals:
        if isinstance(p.type, MemRefType):
            rev.fwd_env[("shadow", p)] = zeros_like(b, rev.fwd_env[p], _bar_name(p))
    rev.pre_ops = list(new.body.ops)  # the wrt arrays' shadows (ad.recursive splits here)
    rev.forward_block(fn.body, new.body)
    rev.fwd_ops = [op for op in new.body.ops if op not in rev.pre_ops]
    ret = fn.body.terminator
    if ret is None or not isa(ret, FUNC_RETURN):
        raise ADError(f"'{name}' does not end in a return")
    top = _Ctx(rev, None, fn.body, new.body)
    for k, r in enumerate(ret.operands):
        seed = new.params[n + k]
        if not rev.active(r):
            continue
        if isinstance(r.type, MemRefType):
            accumulate(b, seed, top.shadow(r), accumulate_only=True)
        else:
            top.acc(r, seed)
    top.reverse_ops(fn.body.ops[:-1])
    outs = [rev.fwd_env[r] for r in ret.operands]
    bars = []
    for p in wrt_vals:
        if isinstance(p.type, MemRefType):
            bars.append(rev.fwd_env[("shadow", p)])
        else:
            bars.append(top.bar_or_zero(p))
    b.ret(outs + bars)
    rev.insert_pushes()
    rev.drop_unused_shadows()
    return new, rev


def grad_function(module: Module, name: str, wrt: list[str] | None, new_name: str,
                  with_value: bool = False, checkpoint: bool = False) -> Function:
    """`grad` (or `value_and_grad`): the adjoint function seeded with 1 for the result."""
    fn = module[name]
    kind = "value_and_grad" if with_value else "grad"
    sig = derived_signature(kind, parse_signature(fn.attrs["sig"]), wrt)
    wrt_names = [p.name for p in wrt_params(fn, wrt)]
    vname = derived_name(name, "vjp", wrt_names) + (".ckpt" if checkpoint else "")
    if vname not in module.functions:
        vjp_function(module, name, wrt_names, vname, internal=True, checkpoint=checkpoint)
    v = module[vname]
    rt = fn.result_types[0]
    results = ([rt] if with_value else []) + v.result_types[1:]
    new = module.add(Function(new_name, fn.param_types, results, [p.name for p in sig.params],
                              {"sig": str(sig)}))
    b = Builder(new.body)
    res = b.call(vname, list(new.params) + [b.const(1.0, rt)], v.result_types)
    b.ret(res if with_value else res[1:])
    new.tape_report = getattr(v, "tape_report", [])
    new.checkpoint_notes = getattr(v, "checkpoint_notes", [])
    return new
