"""forward_stores: a value stored into an array element in one iteration of an `scf.for`
and loaded back from that element in the next iteration is carried in a register instead.

Why: `g[i] += u; g[i + 1] += v` (a stencil's adjoint, a hand-written gradient) makes each
iteration load the element the previous one stored, a memory dependence of distance one
that stops loop vectorisation. Carrying the value turns it into a first-order recurrence,
which the vectoriser handles.

Contract: in the body block of an `scf.for` with a constant step `s > 0` and induction
variable `iv`, take an array `%A` made by `memref.alloc` in this function, of rank 1, that
no view op (`memref.row`, `memref.slice`, `memref.collapse`) anywhere in the function takes
and that nothing in the loop uses except `memref.load`/`memref.store` ops directly in the
body block. Every such access must index `c * iv + inv + k` (`lang.passes.affine`) with one
integer `c != 0` and one loop-invariant part `inv` for all of them, constants `k`, and the stores must
have distinct `k`. For a store at offset `a` and an unchecked load at offset `b = a - c * s`
with no store at offset `b` before it in the block, the load in iteration `t + 1` reads the
element the store wrote in iteration `t` (nothing else writes it in between), so:
- the load is deleted and its uses read a new carried value of the loop;
- the body yields the stored value in that position;
- the initial value is that load's element at `iv = lb`, loaded before the loop under
  `scf.if lb < ub` (zero when the loop runs no iteration, a value nobody reads);
- when `s = 1`, the store is unchecked, a store at offset `b` follows every load at `b`
  (all of them forwarded) and no load at offset `a` follows the store, the next iteration
  overwrites what it wrote before anything reads it: it leaves the loop, and the last
  carried value is stored once after it, at `c * ub + inv + b`, under `scf.if lb < ub`.
Then the stores of such arrays move to the end of the body when all are unchecked and no
load of the same offset follows one (within an iteration they touch other elements than the
loads they pass; with loads first, the vectoriser meets no load-after-store between
iterations). Memory after the loop holds what it held before and the loop computes the same
values:
the pass changes which instruction delivers each value, never a value (bit for bit).
It runs only on the way to machine code (`lowering_pipeline`), after AD, so differentiation
never sees the carried values.
"""
from __future__ import annotations

from ..ir import Block, Function, Op, Value
from .affine import affine, materialise
from ..ops import has_trait, isa, MEMREF_ALLOC, MEMREF_LOAD, MEMREF_STORE, SCF_FOR
from .util import NOT_CONST, const_of, defined_inside, for_each_function, guarded


def _candidates(loop: Op, viewed: set) -> dict:
    """Per array: its top-level accesses [(position, op, offset)] and their common (c, inv)."""
    body = loop.regions[0].block
    iv = body.args[0]
    inside, memo = defined_inside(body), {}
    found: dict[Value, list] = {}
    bad: set[Value] = set()
    shape: dict[Value, tuple] = {}
    for pos, op in enumerate(body.ops):
        if isa(op, MEMREF_LOAD, MEMREF_STORE):
            arr = op.operands[0 if isa(op, MEMREF_LOAD) else 1]
            idx = op.operands[1:] if isa(op, MEMREF_LOAD) else op.operands[2:]
            form = affine(idx[0], iv, inside, memo) if len(idx) == 1 else None
            if form is None or form[0] == 0 or shape.setdefault(arr, form[:2]) != form[:2]:
                bad.add(arr)
                continue
            found.setdefault(arr, []).append((pos, op, form[2]))
            continue
        for nested in op.walk():  # any other use inside the loop disqualifies the array
            bad.update(v for v in nested.operands if v.type.__class__.__name__ == "MemRefType")
    out = {}
    for arr, accs in found.items():
        src = arr.op
        if arr in bad or arr in viewed or arr in inside or src is None \
                or not isa(src, MEMREF_ALLOC) or arr.type.rank != 1:
            continue
        offs = [k for _, op, k in accs if isa(op, MEMREF_STORE)]
        if len(offs) == len(set(offs)):
            out[arr] = (accs, shape[arr])
    return out


def _forward(loop: Op, viewed: set) -> tuple[list[Op], list[Op]]:
    """Rewrite `loop`; return the ops to insert before it and after it."""
    lb, ub, step = loop.operands[:3]
    s = const_of(step)
    if s is NOT_CONST or s <= 0:
        return [], []
    body = loop.regions[0].block
    for arr, (accs, (c, inv)) in _candidates(loop, viewed).items():
        stores = {k: (pos, op) for pos, op, k in accs if isa(op, MEMREF_STORE)}
        for a, (pos_a, store) in stores.items():
            b = a - c * s
            first_store_b = stores[b][0] if b in stores else len(body.ops)
            loads_b = [(pos, op) for pos, op, k in accs if isa(op, MEMREF_LOAD) and k == b
                       and pos < first_store_b]
            loads = [op for _, op in loads_b if not op.attrs.get("checked", False)]
            if not loads:
                continue
            elem = arr.type.elem
            then = Block()
            idx = materialise(then.ops, (c, inv, b), lb)
            then.ops += [Op("memref.load", [arr, idx], [elem], dict(loads[0].attrs))]
            then.ops += [Op("scf.yield", [then.ops[-1].result])]
            before = guarded(lb, ub, then, [elem])
            carried = body.add_arg(elem, "fwd")
            loop.operands.append(before[-1].result)
            out = Value(elem, None, loop, len(loop.results))
            loop.results.append(out)
            body.terminator.operands.append(store.operands[0])
            dead = {id(op) for op in loads}
            for op in body.walk():
                op.operands = [carried if v.op is not None and id(v.op) in dead else v
                               for v in op.operands]
            after = []
            # The store is dead but in the last iteration when the next iteration's store at
            # offset b overwrites it and nothing reads it in between: store once, after.
            if s == 1 and b in stores and len(loads) == len(loads_b) \
                    and not store.attrs.get("checked", False) \
                    and not any(isa(op, MEMREF_LOAD) and k == a and pos > pos_a
                                for pos, op, k in accs):
                dead.add(id(store))
                last = Block()
                idx = materialise(last.ops, (c, inv, b), ub)
                last.ops += [Op("memref.store", [out, arr, idx], [], dict(store.attrs)),
                             Op("scf.yield", [])]
                after = guarded(lb, ub, last, [])
            body.ops[:] = [op for op in body.ops if id(op) not in dead]
            more_before, more_after = _forward(loop, viewed)  # positions moved: look again
            return before + more_before, after + more_after
    return [], []


def _sink_stores(loop: Op, viewed: set) -> None:
    """Move the candidate arrays' stores to the end of the body when every store is unchecked
    and no load of the same element follows it: within an iteration they touch other
    elements than the loads they pass, and with loads first the vectoriser meets no
    load-after-store between iterations."""
    body = loop.regions[0].block
    for arr, (accs, _) in _candidates(loop, viewed).items():
        stores = [(pos, op, k) for pos, op, k in accs if isa(op, MEMREF_STORE)]
        if any(op.attrs.get("checked", False) for _, op, _ in stores):
            continue
        if any(isa(op, MEMREF_LOAD) and k == ks and pos > ps
               for ps, _, ks in stores for pos, op, k in accs):
            continue
        moved = {id(op) for _, op, _ in stores}
        body.ops[:] = [op for op in body.ops[:-1] if id(op) not in moved] + \
            [op for _, op, _ in stores] + [body.ops[-1]]


def _block(block: Block, viewed: set) -> None:
    out = []
    for op in block.ops:
        for r in op.regions:
            _block(r.block, viewed)
        before, after = ([], [])
        if isa(op, SCF_FOR):
            before, after = _forward(op, viewed)
            _sink_stores(op, viewed)
        for new in before + [op] + after:
            new.parent = block
            out.append(new)
    block.ops[:] = out


def _function(f: Function) -> None:
    viewed = {op.operands[0] for op in f.walk() if has_trait(op, "view")}
    _block(f.body, viewed)


forward_stores = for_each_function(_function, "forward_stores")
