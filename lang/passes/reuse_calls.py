"""reuse_calls: a call whose results an adjoint call computes again is dropped, and its
results are taken from the adjoint call.

Why: reverse mode reverses `%r = call @f(args)` as a forward call (for `%r`) and, in the
reverse sweep, a call of `f`'s adjoint function, which runs `f`'s forward sweep again and
returns `f`'s results before the adjoints. When `%r` is only needed after that adjoint call
(e.g. a derived function that just calls another and returns its value, as the reverse of a
`jvp` does), the first call is a whole forward sweep for nothing.

Contract: in one block, `A = func.call @f(args)` followed by `B = func.call @g(args, bars)`
where function `g` has `primal_of = "f"` (set by `ad.reverse`: its first results are `f`'s
results for the same arguments), the same argument values, and:
- no use of A's results between A and B;
- the ops between A and B are `arith.*` ops that cannot raise (`lang/rewrite.py
  effect_free`: no division by a divisor that may be 0), `memref.dim`, or `memref.alloc`
  whose sizes are `memref.dim` values or non-negative constants (nothing that could write an
  argument, raise an error of its own first, or depend on A; an allocation can still fail
  for want of memory, the one error that may then come before A's).
Then every use of A's results becomes a use of B's first results, and A is erased. Functions
are pure and deterministic, so B's first results are A's bit for bit, and if A would have
raised, B raises the same error at a point with no side effect in between.
"""
from __future__ import annotations

from ..ir import Block, Function, Module, replace_all_uses
from ..rewrite import effect_free
from .util import NOT_CONST, const_of, uses
from ..ops import dialect, isa, FUNC_CALL, MEMREF_ALLOC, MEMREF_DIM



def _harmless(op) -> bool:
    """May `op` stand between the two calls (see the module docstring)?"""
    if dialect(op) == "arith" or isa(op, MEMREF_DIM):
        return effect_free(op)
    if isa(op, MEMREF_ALLOC):
        return all(isa(d.op, MEMREF_DIM) or (const_of(d) is not NOT_CONST and const_of(d) >= 0)
                   for d in op.operands)
    return False


def _block(module: Module, block: Block) -> None:
    pos = 0
    while pos < len(block.ops):
        a = block.ops[pos]
        for r in a.regions:
            _block(module, r.block)
        if isa(a, FUNC_CALL) and _reuse(module, block, pos, a):
            continue
        pos += 1


def _reuse(module: Module, block: Block, pos: int, a) -> bool:
    results = set(a.results)
    for j in range(pos + 1, len(block.ops)):
        b = block.ops[j]
        if isa(b, FUNC_CALL):
            g = module.functions.get(b.attrs.get("callee"))
            if g is not None and g.attrs.get("primal_of") == a.attrs.get("callee") and \
                    b.operands[:len(a.operands)] == a.operands and \
                    len(b.results) >= len(a.results) and not uses(b, results):
                for old, new in zip(a.results, b.results):
                    replace_all_uses(block, old, new)
                del block.ops[pos]
                return True
        if uses(b, results) or not _harmless(b):
            return False
    return False


def _function(module: Module, f: Function) -> None:
    _block(module, f.body)


def reuse_calls(module: Module) -> Module:
    """Drop calls whose results a later adjoint call of the same callee returns again."""
    for f in module:
        _function(module, f)
    return module


reuse_calls.pass_name = "reuse_calls"
