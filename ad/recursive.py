"""Reverse mode through recursion: a split adjoint whose cost is linear in the depth.

The adjoint function of an ordinary call (`ad.reverse`) runs the callee's forward sweep
again and returns a fresh cotangent array for each array argument. Called at every level of
an n-deep recursion that is O(n^2): each level recomputes everything below it and adds up a
full-size array. So a call between two functions of one call-graph cycle (recursion, mutual
recursion: `on_cycle`) reverses instead through a pair of functions made from the callee,
for the set `wrt` of its active parameters:

- `NAME.vjp.WRT.aug(params..., shadows...) -> results...`, the augmented forward function:
  the callee's forward sweep (the primal, its shadow arrays, its own tape records), which
  then pushes on the tape every value of its body's top level that its reverse sweep reads
  (its records, like those of its nested blocks, are marked `xfn = true`: each push and its
  pop are in different functions);
- `NAME.vjp.WRT.rev(params..., result_bars..., shadows...) -> scalar_bars...`, the reverse
  function: pops those records and runs the reverse sweep. It never recomputes the callee.

`shadows` are the shadows of the active array parameters, passed by reference: both
functions use the caller's own shadow arrays, and the reverse sweep accumulates into them in
place (no array is allocated or added up per call). The reverse function returns the adjoints
of the active scalar parameters. The caller calls `.aug` where the primal call was, and
`.rev` at the call's place in its reverse sweep; LIFO order on the tape holds because the
reverse sweep visits calls and blocks in exactly the reverse order. Both functions are made
from one adjoint function built by `ad.reverse._build_vjp`, cut between its forward and its
reverse sweep (`split`): a pass from IR to IR.

Forward mode over these functions (hvp, hessian) must keep the two halves in step: the
`xfn` records always carry tangents, and a call of either half is always differentiated with
every float argument active (`ad.forward`). Reverse mode over them (a reverse-mode Jacobian
of a gradient) differentiates instead a copy of the function in which the calls of the
halves are undone (`unsplit`): the primal call again, and the callee's whole adjoint
(`NAME.vjp.WRT.unsplit`, itself unsplit) with its cotangents added into the shadows; that
second-order derivative keeps the quadratic cost of recomputing.
"""
from __future__ import annotations

from ..lang.callgraph import reachable
from ..lang.ir import Block, Builder, Function, MemRefType, Module, Value, replace_all_uses
from ..lang.irparser import parse_function
from ..lang.printer import print_function
from ..lang.signature import Param, Signature, parse_signature
from .forward import derived_name, wrt_params
from .shadows import accumulate
from .signatures import ADError, derived_signature, unique_name
from ..lang.ops import isa, DAD_TAPE_POP, DAD_TAPE_PUSH, FUNC_CALL


def on_cycle(module: Module, caller: str, callee: str, cache: dict | None = None) -> bool:
    """Does `callee` reach `caller` again (so that the call is on a call-graph cycle)?"""
    if cache is not None and callee in cache:
        return cache[callee]
    out = caller in reachable(module, callee)
    if cache is not None:
        cache[callee] = out
    return out


def pair_names(name: str, wrt: list[str]) -> tuple[str, str]:
    base = derived_name(name, "vjp", wrt)
    return base + ".aug", base + ".rev"


def recursive_pair(module: Module, name: str, wrt: list[str], build) -> tuple[str, str]:
    """The names of `name`'s augmented forward and reverse functions for the active
    parameters `wrt`, made (and added to `module`) on first use from the adjoint function
    `build(module, fn, wrt, new_name, internal=True) -> (function, reverse state)` makes."""
    aug_name, rev_name = pair_names(name, wrt)
    if aug_name in module.functions:
        return aug_name, rev_name
    fn = module[name]
    wrt_vals = wrt_params(fn, wrt)
    arrays = [p for p in wrt_vals if isinstance(p.type, MemRefType)]
    scalars = [p for p in wrt_vals if not isinstance(p.type, MemRefType)]
    sig = parse_signature(fn.attrs["sig"])
    spec = {p.name: p.type for p in sig.params}
    vsig = derived_signature("vjp", sig, wrt)
    taken = {p.name for p in vsig.params}
    shadow_params = tuple(Param(unique_name(p.name + "_bar", taken), spec[p.name]) for p in arrays)
    aug_sig = Signature(sig.params + shadow_params, sig.results, tuple_result=True)
    rev_sig = Signature(vsig.params + shadow_params, tuple(spec[p.name] for p in scalars),
                        tuple_result=True)
    attrs = {"internal": True, "records": True, "split_of": name, "split_wrt": ",".join(wrt)}
    # registered first: the callee's own recursive calls refer to them while they are built
    aug = module.add(Function(aug_name, fn.param_types + [p.type for p in arrays], fn.result_types,
                              [p.name for p in aug_sig.params], {**attrs, "sig": str(aug_sig)}))
    rev = module.add(Function(rev_name, list(fn.param_types) + list(fn.result_types) +
                              [p.type for p in arrays], [p.type for p in scalars],
                              [p.name for p in rev_sig.params], {**attrs, "sig": str(rev_sig)}))
    tmp = unique_name(derived_name(name, "vjp", wrt) + ".whole", set(module.functions))
    whole, r = build(module, fn, wrt, tmp, internal=True)
    del module.functions[tmp]
    # the parameters of the function AD differentiated (reverse mode may work on a copy)
    split(whole, r, aug, rev, len(fn.params), len(fn.result_types), wrt_params(r.fn, wrt))
    return aug_name, rev_name


def split(whole: Function, r, aug: Function, rev: Function, n: int, m: int, wrt_vals) -> None:
    """Move the forward sweep of the adjoint function `whole` (params: n primal, m seeds)
    into `aug` and its reverse sweep into `rev`, the values the reverse reads from the
    forward sweep's top level going through the tape."""
    shadows = [r.fwd_env[("shadow", p)] for p in wrt_vals if isinstance(p.type, MemRefType)]
    fwd = r.fwd_ops
    fwd_ids = {id(op) for op in fwd}
    pre_ids = {id(op) for op in r.pre_ops}
    body = whole.body.ops
    ret = body[-1]
    back = [op for op in body[:-1] if id(op) not in fwd_ids and id(op) not in pre_ids]
    fwd = [op for op in body if id(op) in fwd_ids]  # deallocs the reverse took are gone
    defined: dict[Value, None] = {}
    for op in fwd:
        for v in op.results:
            defined[v] = None
    used: dict[Value, None] = {}
    for op in back:
        for o in op.walk():
            for v in o.operands:
                if v in defined:
                    used[v] = None
    bars = ret.operands[m:]
    for v in bars:
        if v in defined:
            used[v] = None
    records = list(used)

    amap = dict(zip(whole.params[:n], aug.params[:n]))
    amap.update(zip(shadows, aug.params[n:]))
    ab = Builder(aug.body)
    for op in fwd:
        _move(op, aug.body, amap)
    ids = {}
    for v in records:
        r.tape_ids += 1
        ids[v] = r.tape_ids
        ab.op("dad.tape_push", [_m(amap, v)], tape=r.tape_ids, level=r.level, xfn=True)
    ab.ret([_m(amap, v) for v in ret.operands[:m]])

    rmap = dict(zip(whole.params[:n + m], rev.params[:n + m]))
    rmap.update(zip(shadows, rev.params[n + m:]))
    rb = Builder(rev.body)
    for v in reversed(records):
        rmap[v] = rb.op("dad.tape_pop", [], [v.type], names=[v.name], tape=ids[v],
                        level=r.level, xfn=True).results[0]
    for op in back:
        _move(op, rev.body, rmap)
    rb.ret([_m(rmap, v) for p, v in zip(wrt_vals, bars) if not isinstance(p.type, MemRefType)])
    # every record of this level is pushed by `aug` and popped by `rev`
    for f, kind in ((aug, DAD_TAPE_PUSH), (rev, DAD_TAPE_POP)):
        for op in f.walk():
            if isa(op, kind) and op.attrs.get("level", 0) == r.level:
                op.attrs["xfn"] = True


def _m(mapping: dict, v: Value) -> Value:
    return mapping.get(v, v)


def _move(op, block, mapping: dict) -> None:
    """Append `op` to `block`, its operands (at any depth) renamed by `mapping`."""
    for o in op.walk():
        o.operands = [mapping.get(v, v) for v in o.operands]
    op.parent = block
    block.ops.append(op)


def has_split_calls(fn: Function) -> bool:
    return any(isa(op, FUNC_CALL) and op.attrs.get("records") for op in fn.walk())


def unsplit(module: Module, fn: Function, adjoint) -> Function:
    """A copy of `fn` (same name) whose calls of split halves are undone: `.aug` becomes a
    call of the primal, `.rev` a call of the whole adjoint `NAME.vjp.WRT.unsplit` whose
    array cotangents are added into the shadows the call was given. `adjoint(module, name,
    wrt, new_name, internal=True)` adds an adjoint function to the module (`ad.reverse`)."""
    copy = parse_function(print_function(fn))
    copy.attrs = dict(fn.attrs)
    _unsplit_calls(module, copy, adjoint)
    return copy


def whole_adjoint(module: Module, name: str, wrt: list[str], adjoint) -> str:
    """`NAME.vjp.WRT.unsplit`: `name`'s adjoint function with no split calls in it."""
    base = derived_name(name, "vjp", wrt)
    whole = base + ".unsplit"
    if whole in module.functions:
        return whole
    if base not in module.functions:
        adjoint(module, name, wrt, base, internal=True)
    copy = parse_function(print_function(module[base]))
    copy.attrs = dict(module[base].attrs)
    copy.name = whole
    module.add(copy)  # first: its own recursive calls refer to it
    _unsplit_calls(module, copy, adjoint)
    return whole


def _unsplit_calls(module: Module, fn: Function, adjoint) -> None:
    for call in [op for op in fn.walk() if isa(op, FUNC_CALL) and op.attrs.get("records")]:
        half = module[call.attrs["callee"]]
        primal = half.attrs.get("split_of")
        if primal is None:
            raise ADError(f"reverse mode over '{half.name}' is not supported")
        wrt = half.attrs["split_wrt"].split(",")
        pfn = module[primal]
        n, m = len(pfn.params), len(pfn.result_types)
        del call.attrs["records"]
        if half.name.endswith(".aug"):
            call.attrs["callee"] = primal
            call.operands = call.operands[:n]
            continue
        whole = whole_adjoint(module, primal, wrt, adjoint)
        args, shadows = call.operands[:n + m], call.operands[n + m:]
        block = call.parent
        tmp = Block()
        b = Builder(tmp)
        res = b.op("func.call", args, module[whole].result_types, callee=whole,
                   **{k: v for k, v in call.attrs.items() if k == "loc"}).results
        outs, pbars = res[:m], res[m:]
        scalars = []
        k = 0
        for p, pb in zip(wrt_params(pfn, wrt), pbars):
            if isinstance(p.type, MemRefType):
                accumulate(b, pb, shadows[k], accumulate_only=True)
                b.dealloc(pb)
                k += 1
            else:
                scalars.append(pb)
        for o in outs:
            if isinstance(o.type, MemRefType):
                b.dealloc(o)
        pos = block.ops.index(call)
        for op in tmp.ops:
            op.parent = block
        block.ops[pos:pos + 1] = tmp.ops
        for old, new in zip(call.results, scalars):
            replace_all_uses(fn.body, old, new)
