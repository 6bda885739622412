"""prune_results: a result of an internal function that no call site uses is no longer
computed.

Why: `grad(f)` calls `f`'s adjoint function, which returns `f`'s value before the gradient;
the value is then dropped. Computing it can be a sum whose rounding order is fixed, a serial
chain as long as the whole primal (Rosenbrock's `s += ...`), for nothing.

Contract: for a function marked `internal` (called only from this module) whose body ends in
`func.return`, every result that no `func.call` of it uses is removed from the function's
results, its return and every call; `dce` (run after) then deletes what computed it. The
function's `primal_of` attribute, which promises its first results, is dropped when any
result is removed. Repeats until nothing changes (a pruned caller can leave its callees'
results unused in turn).
"""
from __future__ import annotations

from ..ir import Module
from ..ops import isa, FUNC_CALL, FUNC_RETURN


def prune_results(module: Module) -> Module:
    """Drop results of internal functions that no call site uses."""
    changed = True
    while changed:
        changed = False
        counts: dict = {}
        sites: dict[str, list] = {}
        for f in module:
            for op in f.body.walk():
                for v in op.operands:
                    counts[v] = counts.get(v, 0) + 1
                if isa(op, FUNC_CALL):
                    sites.setdefault(op.attrs.get("callee"), []).append(op)
        for f in module:
            ret = f.body.ops[-1] if f.body.ops else None
            if not f.attrs.get("internal") or ret is None or not isa(ret, FUNC_RETURN):
                continue
            calls = sites.get(f.name, [])
            dead = [k for k in range(len(f.result_types))
                    if all(not counts.get(c.results[k], 0) for c in calls)]
            if len(dead) == len(f.result_types):
                dead = dead[1:]   # a call keeps a result: it still runs (it may raise)
            if not dead or not calls:
                continue
            for k in reversed(dead):
                del ret.operands[k]
                del f.result_types[k]
                for c in calls:
                    c.drop_result(k)
            f.attrs.pop("primal_of", None)
            changed = True
    return module


prune_results.pass_name = "prune_results"
