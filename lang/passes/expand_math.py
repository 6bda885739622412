"""expand_math: an elementary function declared by its expansion becomes that expansion.

Why: `relu`, `softplus` and `log_sigmoid` are ops to AD (so each has an exact rule: softplus'
is sigmoid, smooth at 0, where the stable formula `max(x, 0) + log1p(exp(-|x|))` has two
kinks whose second derivatives AD would see as 0) but need no lowering of their own: their
value is that formula, built from ops that have one.

Contract: every `math.NAME` op whose row in lang/mathops.py has `expand` is replaced, in
place, by the ops `expand(b, x)` builds (same operand, same value), and the uses of its result
by the expansion's result. Machine pipeline only: derivations see the op.
"""
from __future__ import annotations

from ..ir import Block, Builder, Function
from ..mathops import BY_OP
from .util import Subst, for_each_function


def _expand_block(block: Block, subst: Subst) -> None:
    out = []
    for op in block.ops:
        subst.apply(op)
        m = BY_OP.get(op.name)
        if m is not None and m.expand is not None:
            tmp = Block()
            subst[op.results[0]] = m.expand(Builder(tmp), *op.operands)
            for new in tmp.ops:
                new.parent = block
            out += tmp.ops
            continue
        for region in op.regions:
            _expand_block(region.block, subst)
        out.append(op)
    block.ops = out


def _expand_function(f: Function) -> None:
    _expand_block(f.body, Subst())


expand_math = for_each_function(_expand_function, "expand_math")
