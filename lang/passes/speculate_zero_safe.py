"""speculate_zero_safe: a loop that only computes scalars runs first with plain products in
place of AD's zero-safe ones, and again as it was only when a result came out NaN.

Why: `dad.mulz(t, a)` (AD's product of a tangent or adjoint `t` by a local derivative `a`)
is `t * a` except exactly 0 when `t == 0`, so that a `0 * inf` from a branch not taken never
turns a derivative into NaN. That guard is a compare and a mask per product, a third or more
of the work in a reduction's tangent loop. It changes a result only where `t == 0` and `a` is
inf or NaN, and there the plain product is NaN.

Contract: for an `scf.for` whose body (nested loops and branches included) has a `dad.mulz`
and nothing but `arith.*`, `math.*`, `dad.mulz`, `dad.check`, `memref.load`, `memref.dim`,
`scf.for`, `scf.if` and `scf.yield` ops (no stores, calls, allocations or tape), follow the
values computed from the `dad.mulz` results ("tainted"). Each may only flow into
`addf`/`subf`/`mulf`/`negf`/`extf`/`truncf`/`mulz`, the numerator of `divf`, a data operand
of `select`, and `scf.yield`/loop-carried values; each of those gives NaN when an operand is
NaN. So in the copy with `arith.mulf` in place of every `dad.mulz`, a tainted value differs
from the original only by being NaN where the original is not, or by the sign of a zero.
The loop becomes

    %fast... = the copy
    scf.if (some tainted result of %fast is NaN) { the loop as it was } else { %fast }

A function without loops whose body is made of the same ops and whose tainted values reach
only `func.return` gets the same treatment as a whole (`_speculate_function`): its body with
`arith.mulf` in place of every `dad.mulz`, then `scf.if (a tainted result is NaN) {
func.call @NAME.zero_safe(params) } else { the fast results }`, where `NAME.zero_safe` is the
function as it was, marked `cold` (lowered `cold noinline`): the fast function stays the size
of the original, so it is still inlined into its callers.

The signs of zeros are kept out of sight: either every tainted result is a sum that starts
at +0.0 and is only added to (never -0.0, so zero signs of its terms do not show; its order
is free as any `reassoc` sum's), or, outside the loop, the tainted results flow only through
the same ops into `func.return`, comparisons and one another (never into a divisor, a math
function, a store or a call), so the function's results are those of the original up to the
sign of a zero derivative, which the language leaves unspecified. Not run under
`fast_math`, nor on a loop with an op marked `fastmath = "fast"` (either may fold the NaN
test away). Machine pipeline only: derivations never see the copies.
"""
from __future__ import annotations

import math

from ..ir import BOOL, Block, Function, Module, Op, Region, replace_all_uses
from .util import NOT_CONST, clone_op, const_of
from ..ops import (dialect, isa, ARITH_ADDF, ARITH_DIVF, ARITH_EXTF, ARITH_MULF, ARITH_NEGF, ARITH_SELECT,
                   ARITH_SUBF, ARITH_TRUNCF, DAD_CHECK, DAD_MULZ, FUNC_RETURN, MEMREF_DIM, MEMREF_LOAD,
                   SCF_FOR, SCF_IF, SCF_YIELD)

_BODY_DIALECTS = ("arith", "math")
_BODY_OPS = (DAD_MULZ, DAD_CHECK, MEMREF_LOAD, MEMREF_DIM, SCF_FOR, SCF_IF, SCF_YIELD)
# Ops through which a tainted operand gives a tainted result (NaN in, NaN out; zero signs
# only change zero signs).
_THROUGH = (ARITH_ADDF, ARITH_SUBF, ARITH_MULF, ARITH_NEGF, ARITH_EXTF, ARITH_TRUNCF, DAD_MULZ)


def _owner(block: Block) -> Op:
    return block.parent.parent


def _taint(root_ops, tainted: set, sinks: set, seed: bool) -> bool:
    """Grow `tainted` to a fixed point over the ops `root_ops` walks (with `seed`, every
    `dad.mulz` result is tainted); False when a tainted value reaches an op it may not
    (`sinks` are the extra ops it may reach, as sinks)."""
    changed = True
    while changed:
        changed = False
        for op in root_ops():
            hit = [i for i, v in enumerate(op.operands) if v in tainted]
            if seed and isa(op, DAD_MULZ) and op.results[0] not in tainted:
                tainted.add(op.results[0])
                changed = True
            if not hit:
                continue
            if isa(op, *_THROUGH) or (isa(op, ARITH_DIVF) and hit == [0]) or \
                    (isa(op, ARITH_SELECT) and 0 not in hit):
                new = list(op.results)
            elif isa(op, SCF_YIELD):
                owner = _owner(op.parent)
                new = [owner.results[i] for i in hit]
                if isa(owner, SCF_FOR):
                    new += [op.parent.args[i + 1] for i in hit]
            elif isa(op, SCF_FOR) and min(hit) >= 3:
                body = op.regions[0].block
                new = [op.results[i - 3] for i in hit] + [body.args[i - 2] for i in hit]
            elif op.name in sinks:
                continue
            else:
                return False
            for v in new:
                if v not in tainted:
                    tainted.add(v)
                    changed = True
    return True


def _exact_sum(loop: Op, i: int) -> bool:
    """Is loop result `i` a sum that starts at +0.0 and is only added to (`acc + v` at the
    top of the body, `acc` used nowhere else)? Such a sum is never -0.0 (x + y is +0.0 when
    it is zero, unless both are -0.0), so terms that differ only in the signs of zeros give
    the same sum, in any order."""
    init = const_of(loop.operands[3 + i])
    if init is NOT_CONST or init != 0.0 or math.copysign(1.0, init) < 0:
        return False
    body = loop.regions[0].block
    acc, y = body.args[i + 1], body.terminator.operands[i]
    if y.op is None or not isa(y.op, ARITH_ADDF) or y.op.parent is not body or \
            acc not in y.op.operands:
        return False
    return sum(v is acc for o in body.walk() for v in o.operands) == 1


def _candidate(body_ops: list[Op]) -> bool:
    """Ops that may be speculated: some `dad.mulz`, only the ops the contract lists, and no
    `fastmath = "fast"` (which may fold the NaN test away)."""
    return (any(isa(o, DAD_MULZ) for o in body_ops)
            and all(isa(o, *_BODY_OPS) or dialect(o) in _BODY_DIALECTS for o in body_ops)
            and not any(o.attrs.get("fastmath") == "fast" for o in body_ops))


def _tainted_floats(values, tainted: set) -> list[int]:
    """The positions of the tainted `values`; none unless every one of them is a float."""
    outs = [i for i, v in enumerate(values) if v in tainted]
    return outs if all(values[i].type.is_float for i in outs) else []


def _plain_products(ops) -> None:
    """Every `dad.mulz` among `ops` becomes `arith.mulf`."""
    for o in ops:
        if isa(o, DAD_MULZ):
            o.name = "arith.mulf"


def _any_nan(values: list) -> list[Op]:
    """The ops that test whether any of `values` is NaN; the last one's result says so."""
    ops: list[Op] = []
    bad = None
    for v in values:
        nan = Op("arith.cmpf", [v, v], [BOOL], {"pred": "uno"})
        ops.append(nan)
        if bad is not None:
            ops.append(Op("arith.ori", [bad, nan.result], [BOOL]))
        bad = ops[-1].result
    return ops


def _speculate(f: Function, block: Block, pos: int, loop: Op) -> bool:
    if not _candidate(list(loop.regions[0].block.walk())):
        return False
    tainted: set = set()
    if not _taint(lambda: loop.regions[0].block.walk(), tainted, set(), True):
        return False
    outs = _tainted_floats(loop.results, tainted)
    if not outs:
        return False
    if not all(_exact_sum(loop, i) for i in outs):
        # Everywhere else, the loop's own body included (an enclosing loop may carry a
        # result back into it); a result carried back in as an initial value is refused.
        outside: set = {loop.results[i] for i in outs}
        if not _taint(f.body.walk, outside, {"func.return", "arith.cmpf"}, False) or \
                any(v in outside for v in loop.operands):
            return False

    fast = clone_op(loop, {})
    _plain_products(fast.walk())
    pre = [fast] + _any_nan([fast.results[i] for i in outs])
    bad = pre[-1].result
    then, other = Block(), Block()
    choice = Op("scf.if", [bad], [r.type for r in loop.results],
                regions=[Region(then), Region(other)],
                result_names=[r.name for r in loop.results])
    for old, new in zip(loop.results, choice.results):
        replace_all_uses(block, old, new)
    then.append(loop)
    then.append(Op("scf.yield", list(loop.results)))
    other.append(Op("scf.yield", list(fast.results)))
    for op in pre + [choice]:
        op.parent = block
    block.ops[pos:pos + 1] = pre + [choice]
    return True


def _speculate_function(m: Module, f: Function) -> bool:
    """The same for a whole function body without loops (those are left to the loops'
    speculation): arithmetic on scalars (no stores, calls, allocations or tape; branches
    may be in it) whose `dad.mulz` results reach only `func.return`, such as a `vjp` of a
    scalar function called once per observation in a loop. The body runs with
    plain products; the function as it was becomes `NAME.zero_safe` (attribute `cold`:
    never inlined, so the fast body stays as small as the original and is still inlined
    where the original was), called only when a returned derivative came out NaN."""
    ops = f.body.ops
    if f.attrs.get("cold") or not ops or not isa(ops[-1], FUNC_RETURN):
        return False
    ret = ops[-1]
    body_ops = [o for o in f.body.walk() if o is not ret]
    if not _candidate(body_ops) or any(isa(o, SCF_FOR) for o in body_ops):
        return False
    tainted: set = set()
    if not _taint(f.body.walk, tainted, {"func.return"}, True):
        return False
    outs = _tainted_floats(ret.operands, tainted)
    if not outs:
        return False
    name = f.name + ".zero_safe"
    while name in m.functions:
        name += "_"
    slow = Function(name, f.param_types, f.result_types, [a.name for a in f.params],
                    {"internal": True, "cold": True})
    vmap = dict(zip(f.params, slow.params))
    for o in ops:
        slow.body.append(clone_op(o, vmap))
    m.functions[name] = slow
    _plain_products(body_ops)
    pre = _any_nan([ret.operands[i] for i in outs])
    bad = pre[-1].result
    then, other = Block(), Block()
    call = then.append(Op("func.call", list(f.params), list(f.result_types), {"callee": name}))
    then.append(Op("scf.yield", list(call.results)))
    other.append(Op("scf.yield", list(ret.operands)))
    choice = Op("scf.if", [bad], list(f.result_types), regions=[Region(then), Region(other)])
    ret.operands = list(choice.results)
    ops.pop()
    for o in pre + [choice, ret]:
        f.body.append(o)
    return True


def _block(f: Function, block: Block) -> None:
    pos = 0
    while pos < len(block.ops):
        op = block.ops[pos]
        if isa(op, SCF_FOR) and _speculate(f, block, pos, op):
            pos = block.ops.index(op.parent.parent.parent) + 1   # past the new scf.if
            continue
        for r in op.regions:
            _block(f, r.block)
        pos += 1


def speculate_zero_safe(module: Module) -> Module:
    """Loops of scalars run with plain products first; the zero-safe loop only after a NaN."""
    if not module.fast_math:
        for f in list(module):
            if not _speculate_function(module, f):
                _block(f, f.body)
    return module


speculate_zero_safe.pass_name = "speculate_zero_safe"
