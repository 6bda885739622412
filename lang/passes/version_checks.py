"""version_checks: a loop whose bounds-checked accesses are all in range for its whole
index range runs a copy without the checks.

Why: a checked load or store is a compare and a branch to the error exit in every
iteration, and a loop with such exits is not vectorised. Indices like `a * d + b` over a
loop on `b` are beyond what `elide_bounds_checks` proves statically, but are easy to check
once, before the loop.

Contract: for an innermost `scf.for` (no loop in its body: copying a whole loop nest costs
compile time and measured no speed) with a constant step `s > 0` and induction variable
`iv`, take the checked `memref.load`/`memref.store` ops directly in its body block whose array is
defined outside the loop and each of whose indices is affine, `c * iv + inv + k`
(`lang.passes.affine`). Such an index stays, over the iterations `lb <= iv <= ub - 1`,
between its values at the two ends, provided no value of it wraps around i64: each value
the form is made of (`lb`, `ub - 1` and the invariant terms) is checked to be within a bound
that keeps every sum and product of the form below 2^62 in size (an index `i + off` with
`off` near 2^63 would otherwise pass both end checks). The loop becomes

    scf.if (lb >= ub) or (for every such access and axis: 0 <= lo and hi < dim, and the
                          values of the form are within the bound) {
        the loop with those accesses unchecked
    } else {
        the loop as it was (it raises the error where it did)
    }

with `lo`/`hi` the index at the ends. Either branch computes what the loop computed; the
unchecked copy runs only when no check could fail. Run after AD (`lowering_pipeline`) and
after `licm`, which makes invariant index parts visible as such.
"""
from __future__ import annotations

from ..ir import BOOL, I64, Block, Function, Op, Region, replace_all_uses
from .affine import affine, materialise
from .util import NOT_CONST, clone_op, const_of, defined_inside, for_each_function
from ..ops import has_trait, isa, MEMREF_LOAD, MEMREF_STORE, SCF_FOR

ACCESS = (MEMREF_LOAD, MEMREF_STORE)


def _targets(loop: Op) -> list[tuple[int, Op, list]]:
    """(position, op, index forms) of the checked accesses the loop can be versioned on."""
    body = loop.regions[0].block
    iv = body.args[0]
    inside, memo = defined_inside(body), {}
    found = []
    for pos, op in enumerate(body.ops):
        if not isa(op, *ACCESS) or not op.attrs.get("checked", False):
            continue
        arr, idx = (op.operands[0], op.operands[1:]) if isa(op, MEMREF_LOAD) \
            else (op.operands[1], op.operands[2:])
        forms = [affine(i, iv, inside, memo) for i in idx]
        if arr not in inside and all(f is not None for f in forms):
            found.append((pos, op, forms))
    return found


def _condition(ops: list, loop: Op, targets) -> Op:
    """Append to `ops` the i1 value 'every target access is in range, or no iteration'."""
    lb, ub = loop.operands[:2]

    def emit(name, operands, type_, **attrs):
        op = Op(name, operands, [type_], attrs)
        ops.append(op)
        return op.result

    zero = emit("arith.constant", [], I64, value=0)
    one = emit("arith.constant", [], I64, value=1)
    last = emit("arith.subi", [ub, one], I64)
    ok = emit("arith.cmpi", [lb, ub], BOOL, pred="sge")
    good = None

    def conj(c):
        nonlocal good
        good = c if good is None else emit("arith.andi", [good, c], BOOL)

    for _, op, forms in targets:
        arr = op.operands[0 if isa(op, MEMREF_LOAD) else 1]
        for axis, form in enumerate(forms):
            lo_at, hi_at = (lb, last) if form[0] >= 0 else (last, lb)
            lo = materialise(ops, form, lo_at)
            hi = materialise(ops, form, hi_at)
            dim = emit("memref.dim", [arr], I64, index=axis)
            conj(emit("arith.andi", [emit("arith.cmpi", [lo, zero], BOOL, pred="sge"),
                                     emit("arith.cmpi", [hi, dim], BOOL, pred="slt")], BOOL))
            # no value of the form wraps around i64: each value it is made of is small
            # enough that c * iv + inv + k cannot pass 2^62 at any iv between the ends
            c, inv, _ = form
            values = ([lb, last] if c else []) + [v for _, v in inv]
            bound = (1 << 62) // ((len(values) + 1) * max([1, abs(c)] + [abs(k) for k, _ in inv]))
            hi_c, lo_c = emit("arith.constant", [], I64, value=bound), \
                emit("arith.constant", [], I64, value=-bound)
            for v in values:
                conj(emit("arith.andi", [emit("arith.cmpi", [v, lo_c], BOOL, pred="sge"),
                                         emit("arith.cmpi", [v, hi_c], BOOL, pred="sle")], BOOL))
    return emit("arith.ori", [ok, good], BOOL)


def _version(block: Block, pos: int, loop: Op) -> Op | None:
    """Replace `loop` (at `pos` in `block`) by the versioned `scf.if`; return the fast copy."""
    s = const_of(loop.operands[2])
    if s is NOT_CONST or s <= 0:
        return None
    if any(has_trait(o, "loop") for o in loop.regions[0].block.walk()):
        return None   # innermost loops only: a copied loop nest costs compile time, no speed
    targets = _targets(loop)
    if not targets:
        return None
    pre: list[Op] = []
    cond = _condition(pre, loop, targets)
    fast = clone_op(loop, {})
    fbody = fast.regions[0].block
    for p, _, _ in targets:
        fbody.ops[p].attrs["checked"] = False
    types = [r.type for r in loop.results]
    then, other = Block(), Block()
    choice = Op("scf.if", [cond], types, regions=[Region(then), Region(other)],
                result_names=[r.name for r in loop.results])
    for old, new in zip(loop.results, choice.results):
        replace_all_uses(block, old, new)
    then.append(fast)
    then.append(Op("scf.yield", list(fast.results)))
    other.append(loop)
    other.append(Op("scf.yield", list(loop.results)))
    for op in pre + [choice]:
        op.parent = block
    block.ops[pos:pos + 1] = pre + [choice]
    return fast


def _block(block: Block) -> None:
    pos = 0
    while pos < len(block.ops):
        op = block.ops[pos]
        if isa(op, SCF_FOR):
            fast = _version(block, pos, op)
            if fast is not None:   # innermost: nothing inside it to version
                pos = block.ops.index(fast.parent.parent.parent) + 1   # past the new scf.if
                continue
        for r in op.regions:
            _block(r.block)
        pos += 1


def _function(f: Function) -> None:
    _block(f.body)


version_checks = for_each_function(_function, "version_checks")
