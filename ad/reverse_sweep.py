"""The reverse sweep of reverse mode: adjoints from the results back to the parameters.

Contract: `ReverseSweep` is the half of `ad.reverse._Reverse` that visits the function's
ops in reverse order (`reverse_op(ctx, op)`), reading primal values through the `Ctx` of
the block being reversed (ad/recorder.py) and accumulating adjoints there. An op with a
rule in ad/rules.py gets the adjoints of its operands from it; the ops that move memory,
calls, tape ops and structured control flow have their own `rev_<dialect>_<op>` method:
a load adds into its array's shadow, a store moves the shadow element into the stored
value's adjoint and zeroes it; a call reverses through the callee's adjoint function (or
its reverse function, on a call-graph cycle); `scf.for` runs backwards over its trip count,
`scf.while` over the iteration count the forward sweep kept, `scf.if` reverses into an
`scf.if` on the same condition; adjoints of loop-carried values and of outer scalars used
inside are carried by the reverse loop. Arrays the reverse sweep still reads are freed
here, in the reverse of the op that made them, not in the forward sweep.
"""
from __future__ import annotations

from ..lang.ir import Block, Builder, MemRefType, Op, Value
from ..lang.loops import induction_value, trip_count
from ..lang.ops import has_trait, isa, DAD_TAPE_POP, DAD_TAPE_PUSH, MEMREF_COPY, MEMREF_STORE
from . import checkpoint as ckpt
from .forward import derived_name
from .recorder import Args, Ctx, Reuse, bar_name, is_float_scalar
from .rules import NONDIFF, RULES, USES_RESULT
from .shadows import ACC, accumulate, zeros_like
from .signatures import ADError


class ReverseSweep:
    def reverse_op(self, c: Ctx, op: Op) -> None:
        n = op.name
        if has_trait(op, "terminator"):
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
        rule = RULES[n](Reuse(c, op), Args(c, op.operands), y)
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

    def rev_dad_tape_pop(self, c, op):
        """The value popped was the value pushed: send its adjoint back on the same tape."""
        r = op.results[0]
        # an array popped in reverse-mode code is freed there after its last use; if this
        # reverse sweep reads it too (an argument of a call's adjoint), it is freed in the
        # reverse of what made it (this pop if the push is not of this function)
        self._free_here(c, r)
        if is_float_scalar(r) and self.active(r):
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
                self.adjoint_function(callee.name, wrt, name)
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
                if v not in inside and is_float_scalar(v) and self.active(v) and v not in out:
                    out.append(v)
        return out

    def _child(self, c: Ctx, old: Block, rblock: Block) -> Ctx:
        child = Ctx(self, c, old, rblock)
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
        act = [k for k in range(n) if is_float_scalar(op.results[k]) and
               (self.active(op.results[k]) or self.active(body.args[1 + k]))]
        S = self.outer_scalars(op)
        if not act and not S and not self._has_active(op):
            return
        b = c.b
        lb, ub, st = (c.get(o) for o in op.operands[:3])
        trips = trip_count(b, lb, ub, st)
        inits = [c.bar_or_zero(op.results[k]) for k in act] + [c.bar_or_zero(s) for s in S]
        names = [bar_name(body.args[1 + k]) for k in act] + [bar_name(s) for s in S]
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
        act = [k for k, r in enumerate(op.results) if is_float_scalar(r) and self.active(r)]
        S = self.outer_scalars(op)
        if not act and not S and not self._has_active(op):
            return
        b = c.b
        for s in S:
            c.bar[s] = c.bar_or_zero(s)
        seeds = {k: c.bar.get(op.results[k]) for k in act}
        rif, rt, re_ = b.if_(c.get(op.operands[0]), [s.type for s in S], [bar_name(s) for s in S])
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
        act = [k for k in range(n) if is_float_scalar(op.results[k]) and
               any(self.active(v) for v in (op.results[k], before.args[k], after.args[k]))]
        S = self.outer_scalars(op)
        if not act and not S and not self._has_active(op):
            return
        b = c.b
        trips = c.get(("count", op))
        inits = [c.bar_or_zero(op.results[k]) for k in act] + [c.bar_or_zero(s) for s in S]
        rloop, rbody = b.for_(b.i(0), b.addi(trips, b.i(1)), b.i(1), inits, "it",
                              [bar_name(op.results[k]) for k in act] + [bar_name(s) for s in S])
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
