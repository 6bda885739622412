"""ascend_loops: a loop that walks its arrays downwards runs upwards instead, when its
iterations commute.

Why: reverse mode runs a loop's adjoint over the iterations backwards (`i = C - it`), so it
streams through memory from high addresses to low. Hardware prefetchers and the vectoriser
prefer the other way (a reversed vector needs a shuffle per load and store; on the AMD
machine of the benchmarks a descending stream runs ~1.4x slower). When the order of the
iterations cannot be observed, the loop can run as `iv = lb + ub - 1 - it`.

Contract: an `scf.for` with step 1 is turned around (its body reads `lb + ub - 1 - iv`
where it read `iv`) when
- every top-level array index in its body that depends on `iv` is `c * iv + inv + k`
  (`lang.passes.affine`) with `c < 0`, and there is at least one (profitability);
- every carried value is yielded unchanged, or is a sum `acc + v` with `fastmath` reassoc
  whose argument and result have no other use (the program fixes no order for such sums);
- the body, at any depth, holds only pure ops, `memref.dim`, unchecked `memref.load`s and
  unchecked `memref.store`s at its top level, and `scf.if`s holding pure ops and unchecked
  loads (nothing may raise, record, call or allocate, so no effect but memory is ordered);
- each array stored into is a `memref.alloc` of the function that no view op takes and
  that no other array the loop uses can reach (`util.separate`), and either every store
  into it adds to the element just loaded from it (`store (addf (load A[i]) y) {reassoc},
  A[i]`, the same index values, the load used once, nothing touching `A` in between, the
  sum used only by the store) and every load of it is such a load, or every load and store
  of it has the same index values, one of them `c * iv + ...` with `c != 0` (each
  iteration its own element, which no other iteration touches).
Then each element ends as its initial value plus the same contributions as before, summed
in another order (allowed by reassoc), or read and written by the same single iteration.
"""
from __future__ import annotations

from ..ir import I64, Function, Op
from ..ops import has_trait, is_pure, isa, ARITH_ADDF, MEMREF_DIM, MEMREF_LOAD, MEMREF_STORE, SCF_FOR, SCF_IF, SCF_YIELD
from .affine import affine
from .util import allows, const_of, defined_inside, for_each_function, separate, uses


def _reassoc(op: Op) -> bool:
    return isa(op, ARITH_ADDF) and allows(op, "reassoc")


def _users(body) -> dict:
    users: dict = {}
    for o in body.walk():
        for k, v in enumerate(o.operands):
            users.setdefault(v, []).append((o, k))
    return users


def _carries_ok(body, users) -> bool:
    term = body.terminator
    for j, y in enumerate(term.operands):
        arg = body.args[j + 1]
        if y is arg:
            continue
        d = y.op
        if d is None or d.parent is not body or not _reassoc(d) or arg not in d.operands or \
                len(users.get(arg, [])) != 1 or users.get(y, []) != [(term, j)]:
            return False
    return True


def _effects_ok(body) -> bool:
    for o in body.walk():
        if is_pure(o.name) or isa(o, MEMREF_DIM, SCF_YIELD):
            continue
        unchecked = not o.attrs.get("checked", False)
        if isa(o, MEMREF_LOAD) and unchecked:
            continue
        if isa(o, MEMREF_STORE) and unchecked and o.parent is body:
            continue
        if isa(o, SCF_IF) and not any(isa(x, MEMREF_STORE) for x in o.walk()):
            continue
        return False
    return True


def _accumulates(store: Op, body, users, a):
    """The load of `store`'s element when `store` is `A[idx] = A[idx] + y` (reassoc) with
    nothing touching `A` in between; else None."""
    v, idx = store.operands[0], store.operands[2:]
    add = v.op
    if add is None or add.parent is not body or not _reassoc(add) or \
            users.get(v, []) != [(store, 0)]:
        return None
    for k, x in enumerate(add.operands):
        ld = x.op
        if ld is None or not isa(ld, MEMREF_LOAD) or ld.operands[0] is not a or \
                ld.parent is not body or ld.operands[1:] != idx or users.get(x) != [(add, k)]:
            continue
        between = body.ops[body.ops.index(ld) + 1:body.ops.index(store)]
        if any(uses(o, {a}) for o in between):
            return None
        return ld
    return None


def _arrays_ok(loop, iv, users, viewed, f) -> bool:
    body = loop.regions[0].block
    inside, memo = defined_inside(body), {}
    stored = {o.operands[1] for o in body.ops if isa(o, MEMREF_STORE)}
    for a in stored:
        if a in viewed or a in inside or not separate(loop, a, f):
            return False
        stores = [o for o in body.ops if isa(o, MEMREF_STORE) and o.operands[1] is a]
        loads = [o for o in body.walk() if isa(o, MEMREF_LOAD) and o.operands[0] is a]
        matched = [_accumulates(s, body, users, a) for s in stores]
        if all(matched) and {id(ld) for ld in loads} <= {id(ld) for ld in matched}:
            continue
        idx = stores[0].operands[2:]
        if all(o.operands[2:] == idx for o in stores) and \
                all(o.operands[1:] == idx for o in loads) and \
                any((form := affine(v, iv, inside, memo)) is not None and form[0] != 0
                    for v in idx):
            continue        # one element per iteration, touched by that iteration alone
        return False
    return True


def _computed_from(v, inside) -> set:
    """The values inside the loop that `v` is computed from (`v` included)."""
    seen, todo = set(), [v]
    while todo:
        x = todo.pop()
        if x in seen or x not in inside:
            continue
        seen.add(x)
        if x.op is not None:
            todo.extend(x.op.operands)
    return seen


def _descends(body, iv) -> bool:
    inside, memo = defined_inside(body), {}
    coefs = []
    for o in body.ops:
        if not isa(o, MEMREF_LOAD, MEMREF_STORE):
            continue
        for v in o.operands[1 if isa(o, MEMREF_LOAD) else 2:]:
            f = affine(v, iv, inside, memo)
            if f is None:
                if iv in _computed_from(v, inside):
                    return False
                continue
            if f[0]:
                coefs.append(f[0])
    return bool(coefs) and all(c < 0 for c in coefs)


def _turn(loop: Op, block) -> None:
    lb, ub = loop.operands[0], loop.operands[1]
    body = loop.regions[0].block
    iv = body.args[0]
    top = Op("arith.addi", [lb, ub], [I64])
    one = Op("arith.constant", [], [I64], {"value": 1})
    last = Op("arith.subi", [top.result, one.result], [I64])
    pos = block.ops.index(loop)
    for o in (top, one, last):
        o.parent = block
    block.ops[pos:pos] = [top, one, last]
    rev = Op("arith.subi", [last.result, iv], [I64])
    rev.parent = body
    for o in body.walk():
        o.operands = [rev.result if v is iv else v for v in o.operands]
    body.ops.insert(0, rev)


def _function(f: Function) -> None:
    viewed = {o.operands[0] for o in f.body.walk() if has_trait(o, "view")}
    for loop in [o for o in f.body.walk() if isa(o, SCF_FOR)]:
        if const_of(loop.operands[2]) != 1:
            continue
        body = loop.regions[0].block
        iv = body.args[0]
        users = _users(body)
        if _descends(body, iv) and _carries_ok(body, users) and _effects_ok(body) and \
                _arrays_ok(loop, iv, users, viewed, f):
            _turn(loop, loop.parent)


ascend_loops = for_each_function(_function, "ascend_loops")
