"""Reverse mode: a function's adjoint program, as a transformation from IR to IR.

`vjp_function(module, name, wrt, new_name)` adds `new_name(params..., out_bar...) ->
(results..., p_bar...)`: an *augmented forward sweep* (the primal, plus shadow arrays and
tape records) followed by a *reverse sweep* that accumulates adjoints (`%x.bar`) from the
results back to the `wrt` parameters, op by op in reverse order. `grad_function` seeds it
with 1 for a scalar result.

The pieces, each with its contract:
- ad/forward_sweep.py: the forward sweep (the primal's copy, shadows, iteration counts);
- ad/reverse_sweep.py: the reverse sweep (one method per op that moves memory or control,
  the rule table ad/rules.py for the rest);
- ad/recorder.py: how the reverse sweep gets a primal value (visible, recomputed, exported
  from a branch or recorded on the tape), where the records go, and the tape report;
- ad/policy.py: record or recompute, per value, from op traits and cost;
- ad/checkpoint.py: loops run in segments, replayed in the reverse sweep;
- ad/recursive.py: calls on a call-graph cycle, through split forward/reverse functions.
This module holds what the sweeps share (`_Reverse`) and builds the adjoint function.

The additions that sum an adjoint's contributions carry `fastmath = "reassoc nsz"` (the
program fixes no order for them, nor the sign of a zero), so such sums in a reversed loop
can be vectorised as partial sums. Arrays: every active array has a zero-filled shadow;
adjoints reach an array's elements through its shadow. A call reverses through the
callee's own adjoint function (derived once per set of active arguments), which recomputes
the callee's forward sweep; a call between functions of one call-graph cycle (recursion)
goes instead through the callee's augmented forward and reverse functions
(`ad.recursive`), which do not recompute, and take the shadows of its array arguments by
reference.
"""
from __future__ import annotations

from ..lang.ir import Block, Builder, Function, MemRefType, Module, Op, Value
from ..lang.ops import dialect, has_trait, isa, FUNC_RETURN, MEMREF_ALLOC, MEMREF_COPY, MEMREF_STORE
from ..lang.signature import parse_signature
from .activity import Activity, analyze
from . import checkpoint as ckpt
from . import policy
from .forward import derived_name, wrt_params
from .forward_sweep import ForwardSweep
from .recorder import Ctx, LoopTape, bar_name, insert_pushes, tape_report
from .recursive import has_split_calls, on_cycle, recursive_pair, unsplit
from .reverse_sweep import ReverseSweep
from .shadows import accumulate, zeros_like
from .signatures import ADError, derived_signature

__all__ = ["vjp_function", "grad_function", "LoopTape"]


class _Reverse(ForwardSweep, ReverseSweep):
    """The state the two sweeps share: the activity of the function's values, the forward
    sweep's copies of them (`fwd_env`, keyed as in ad/recorder.py), the blocks reversed
    (`ctxs`), the tape level and ids, and which arrays the reverse sweep still reads."""

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
        self.ctxs: list[Ctx] = []
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

    def _paired_id(self, tape_id) -> int:
        """A fresh id for a push/pop pair derived from the pair `tape_id` (ids stay unique)."""
        if tape_id not in self.derived_ids:
            self.tape_ids += 1
            self.derived_ids[tape_id] = self.tape_ids
        return self.derived_ids[tape_id]

    def adjoint_function(self, callee: str, wrt: list[str], name: str) -> None:
        """Add the adjoint function `name` of `callee` for `wrt` (a call's reverse calls it)."""
        vjp_function(self.module, callee, wrt, name, internal=True)


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
    new.tape_report = tape_report(rev)
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
            rev.fwd_env[("shadow", p)] = zeros_like(b, rev.fwd_env[p], bar_name(p))
    rev.pre_ops = list(new.body.ops)  # the wrt arrays' shadows (ad.recursive splits here)
    rev.forward_block(fn.body, new.body)
    rev.fwd_ops = [op for op in new.body.ops if op not in rev.pre_ops]
    ret = fn.body.terminator
    if ret is None or not isa(ret, FUNC_RETURN):
        raise ADError(f"'{name}' does not end in a return")
    top = Ctx(rev, None, fn.body, new.body)
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
    insert_pushes(rev)
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
