"""The forward sweep of reverse mode: the primal, plus the shadows of its active arrays.

Contract: `ForwardSweep` is the half of `ad.reverse._Reverse` that copies the function's
ops into the adjoint function, in order, binding each old value to its copy in
`self.fwd_env` (keys as in ad/recorder.py). Besides the copy it makes: a zero-filled shadow
for each active array an alloc, a call or a view makes (`("shadow", v)`); for a loop or a
branch that yields active arrays, their shadows carried or yielded beside them (whichever
array leaves, its shadow is its own); for `scf.while`, an iteration count (`("count",
op)`), which the reverse sweep runs backwards over; for a call whose array argument is
written after it, a copy of that argument as the call saw it (`("arg", op, k)`); for a
call on a call-graph cycle, a call of the callee's augmented forward function
(ad/recursive.py). Checkpointed loops go to ad/checkpoint.py. What the reverse sweep reads
is recorded afterwards (ad/recorder.py `insert_pushes`), not here.
"""
from __future__ import annotations

from ..lang.ir import Block, Builder, MemRefType, Op
from ..lang.ops import (has_trait, isa, DAD_TAPE_POP, DAD_TAPE_PUSH, DAD_UNDEF, FUNC_CALL, FUNC_RETURN,
                        MEMREF_ALLOC, MEMREF_DEALLOC, SCF_FOR, SCF_IF, SCF_WHILE)
from . import checkpoint as ckpt
from .recorder import bar_name
from .shadows import zeros_like


class ForwardSweep:
    def forward_block(self, old: Block, new: Block) -> None:
        self.fwd_blocks[old] = new
        b = Builder(new)
        for op in old.ops:
            self.forward_op(op, b)

    def forward_op(self, op: Op, b: Builder) -> None:
        if isa(op, FUNC_RETURN) and op.parent is self.fn.body:
            return
        if isa(op, SCF_FOR):
            return self._forward_for(op, b)
        if isa(op, SCF_IF):
            return self._forward_if(op, b)
        if isa(op, SCF_WHILE):
            return self._forward_while(op, b)
        self._forward_plain(op, b)

    def _forward_for(self, op: Op, b: Builder) -> None:
        lb, ub, st, *inits = (self.fwd_env[o] for o in op.operands)
        body = op.regions[0].block
        if op.attrs.get("checkpoint") and not ckpt.replaying(self):
            return ckpt.forward(self, op, b)
        arrays = self._carried_arrays(op)
        sinits = [self._shadow_or_zero(b, op.operands[3 + k]) for k in arrays]
        new, nbody = b.for_(lb, ub, st, inits + sinits, body.args[0].name,
                            [a.name for a in body.args[1:]] + [bar_name(body.args[1 + k]) for k in arrays],
                            [r.name for r in op.results] + [bar_name(op.results[k]) for k in arrays])
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

    def _forward_if(self, op: Op, b: Builder) -> None:
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

    def _forward_while(self, op: Op, b: Builder) -> None:
        before, after = (r.block for r in op.regions)
        zero = b.i(0)
        arrays = self._carried_arrays(op)
        sinits = [self._shadow_or_zero(b, op.operands[k]) for k in arrays]
        new, nb, na = b.while_([self.fwd_env[o] for o in op.operands] + sinits + [zero],
                               [a.name for a in before.args] +
                               [bar_name(before.args[k]) for k in arrays] + ["trips"])
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

    def _forward_plain(self, op: Op, b: Builder) -> None:
        """An op without regions: copied; then the shadow of an active array it makes, the
        copy of an array argument a call needs, the shadow record beside a tape record."""
        n = op.name
        if isa(op, DAD_TAPE_POP) and self.shadow_pushed.get(op.attrs.get("tape")):
            r = op.results[0]  # pushes were (array, shadow): the shadow comes off first
            self.fwd_env[("shadow", r)] = b.op(
                "dad.tape_pop", [], [r.type], tape=self._paired_id(("shadow", op.attrs.get("tape"))),
                level=op.attrs.get("level", 0)).results[0]
        operands, attrs = [self.fwd_env[o] for o in op.operands], op.attrs
        pair = self.recursive_pair(op) if isa(op, FUNC_CALL) else None
        if pair:  # the callee's augmented forward function, given the arrays' shadows
            operands += [self.fwd_env[("shadow", o)] for o in self._shadowed(op)]
            attrs = {**attrs, "callee": pair[0], "records": True}
        new = b.op(n, operands, [r.type for r in op.results], names=[r.name for r in op.results], **attrs)
        self._bind(op.results, new.results)
        if isa(op, DAD_TAPE_PUSH):
            v = op.operands[0]
            if isinstance(v.type, MemRefType) and self.active(v):
                b.op("dad.tape_push", [self.fwd_env[("shadow", v)]],
                     tape=self._paired_id(("shadow", op.attrs.get("tape"))), level=op.attrs.get("level", 0))
                self.shadow_pushed[op.attrs.get("tape")] = True
        elif isa(op, MEMREF_DEALLOC):
            self.fwd_deallocs[op.operands[0]] = new
        elif isa(op, MEMREF_ALLOC) and self.active(op.results[0]):
            t = op.results[0].type
            self.fwd_env[("shadow", op.results[0])] = b.alloc(t.elem, list(new.operands), bar_name(op.results[0]))
        elif has_trait(op, "view") and self.active(op.results[0]):
            base = self.fwd_env[("shadow", op.operands[0])]
            self.fwd_env[("shadow", op.results[0])] = b.op(n, [base, *new.operands[1:]], [new.results[0].type],
                                                          **op.attrs).results[0]
        elif isa(op, FUNC_CALL):
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
                    self.fwd_env[("shadow", r)] = zeros_like(b, nr, bar_name(r))
        elif isa(op, DAD_UNDEF) and isinstance(op.results[0].type, MemRefType):
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
