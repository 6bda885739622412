"""inline_calls: a call of a small function of the module becomes a copy of its body.

Why: users write helpers (`qtimesx(icf[j], xc) -> f64[d]`, `cross(a, b) -> f64[3]`) and
call them in loops. Each call of a helper returning an array allocates that array inside the
callee, where no pass of the caller can reuse it; and the caller's temporaries passed to it
look like escaping. Inlined, the helper's arrays are the caller's temporaries
(`hoist_allocs` moves them out of the loop) and its loops meet the caller's.

Contract: a `func.call` (without `records`: an augmented call of a recursion shares the tape
with its partner) of a function of the module that is not on a call-graph cycle, is not
`cold`, has at most `INLINE_OPS` ops, returns an array or holds a loop (a straight-line
function of scalars stays a call: `speculate_zero_safe` may give it a fast version as a
whole, and LLVM inlines it afterwards), and whose body ends in its only `func.return`, is
replaced by a copy of that body, the parameters read as the call's operands and the call's
results as the return's operands. Parameters are never written (the language forbids it) and
returned arrays are fresh, so the copy computes what the call computed. Callees are inlined
into their callers first (callees before callers), so a chain of helpers flattens. Machine
pipeline only: derivatives are made from the functions as written.
"""
from __future__ import annotations

from ..callgraph import postorder, recursive
from ..ir import Function, MemRefType, Module, replace_all_uses
from ..ops import has_trait, isa, FUNC_CALL, FUNC_RETURN
from .util import clone_op

INLINE_OPS = 200


def _size(fn: Function) -> int:
    return sum(1 for _ in fn.walk())


def _inlinable(m: Module, name: str, cycles: set) -> bool:
    if name not in m.functions or name in cycles:
        return False
    fn = m[name]
    ops = fn.body.ops
    if fn.attrs.get("cold") or not ops or not isa(ops[-1], FUNC_RETURN):
        return False
    if any(isa(o, FUNC_RETURN) for o in fn.walk() if o is not ops[-1]):
        return False
    if not (any(isinstance(t, MemRefType) for t in fn.result_types) or
            any(has_trait(o, "loop") for o in fn.walk())):
        return False
    return _size(fn) <= INLINE_OPS


def _inline_in(fn: Function, m: Module, ok: dict) -> bool:
    changed = False
    for call in [o for o in fn.walk() if isa(o, FUNC_CALL)]:
        callee = call.attrs["callee"]
        if call.attrs.get("records") or not ok.get(callee):
            continue
        body = m[callee].body
        vmap = dict(zip(m[callee].params, call.operands))
        copies = [clone_op(o, vmap) for o in body.ops[:-1]]
        results = [vmap.get(v, v) for v in body.ops[-1].operands]
        block = call.parent
        at = block.ops.index(call)
        for o in copies:
            o.parent = block
        block.ops[at:at + 1] = copies
        for r, v in zip(call.results, results):
            replace_all_uses(block, r, v)
        changed = True
    return changed


def inline_calls(module: Module) -> Module:
    cycles = recursive(module)
    ok: dict[str, bool] = {}
    for name in postorder(module, [f.name for f in module]):
        fn = module[name]
        _inline_in(fn, module, ok)       # its callees first: they are already flat
        ok[name] = _inlinable(module, name, cycles)
    return module


inline_calls.pass_name = "inline_calls"
