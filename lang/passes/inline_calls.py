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
into their callers first (callees before callers), so a chain of helpers flattens.

Two uses. As a machine pass (`inline_calls`), on the copy that is lowered. And before AD
(`inline_helpers(m, names, derived)`, run by `runtime/compiler.py` on the functions a
derivation reaches, before it differentiates them): a helper's loops then meet its caller's,
so the adjoint of `for j { let qx = qtimesx(icf[j], xc); ... }` is one loop nest whose
temporaries `hoist_allocs` reuses and whose values the record-or-recompute policy sees,
instead of a call per iteration that runs the helper's forward sweep again and allocates its
shadows. Before AD only functions as the user wrote them are inlined: not a function with a
custom derivative rule (the rule must apply), not one AD made (`derived`, or with
`internal`, `primal_of` or `split_of`), and none holding tape ops.
"""
from __future__ import annotations

from ..callgraph import postorder, recursive
from ..ir import Function, MemRefType, Module, replace_all_uses
from ..ops import has_trait, isa, FUNC_CALL, FUNC_RETURN
from .util import clone_op

INLINE_OPS = 200


def _size(fn: Function) -> int:
    return sum(1 for _ in fn.walk())


AD_MADE = ("custom_of", "internal", "primal_of", "split_of")


def _inlinable(m: Module, name: str, cycles: set, derived: set | None = None) -> bool:
    """May calls of `name` be inlined (`derived` given: before AD, see the docstring)?"""
    if name not in m.functions or name in cycles:
        return False
    fn = m[name]
    if derived is not None and (name in derived or any(fn.attrs.get(a) for a in AD_MADE) or
                                any(has_trait(o, "tape") for o in fn.walk())):
        return False
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


def _inline_from(module: Module, roots: list[str], derived: set | None) -> None:
    cycles = recursive(module)
    ok: dict[str, bool] = {}
    for name in postorder(module, roots):
        fn = module[name]
        _inline_in(fn, module, ok)       # its callees first: they are already flat
        ok[name] = _inlinable(module, name, cycles, derived)


def inline_calls(module: Module) -> Module:
    _inline_from(module, [f.name for f in module], None)
    return module


def inline_helpers(module: Module, names: list[str], derived: set) -> None:
    """Before AD: inline the helpers the functions `names` call (see the docstring)."""
    _inline_from(module, names, derived)


inline_calls.pass_name = "inline_calls"
