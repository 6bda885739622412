"""cache_invariants: an expensive value an inner loop nest computes again in every iteration of
an outer loop is computed in the first iteration only, kept in an array, and read back after.

Why: written naturally, `for i in 0..n { for j in 0..k { let q = exp(icf[j][0..d]) * ...` asks
for `exp(icf[j, c])` n times per (j, c), though it depends on j and c only. `licm` cannot
move it (it depends on the inner loops' indices); this pass expands it over them instead.

Contract: for an `scf.for` L (the outer loop) and the ops E in it that are
- pure, without regions, not `cheap` (a math function: exp, log, sin, ...), one float result;
- nested in L only through `scf.for` loops (the path; at least one, each of whose bounds is
  defined outside L or is the size of an array L allocates with a size defined outside L),
  directly in the innermost one's body (so E runs in every iteration of
  every path loop, the same iterations in each iteration of L);
- invariant in L: every operand is defined outside L, is the index of a path loop, or is the
  result of a pure op without regions, a view, or a `memref.load` (of an array that is a
  parameter or an allocation that nothing in L can write, `lang/passes/util.py
  unwritten_in`) whose operands are invariant in turn, or the size of an array allocated
  with an invariant size;
L is replaced by `scf.if` on "L runs at least twice and each cache has at most 2^20
elements": then L's first iteration runs as it is (peeled, its errors and effects in the
same order), storing each E's value in its cache (`f64[trips of each path loop]`, indexed by
the path loops' iteration numbers, lang/loops.py), and the other iterations run in a loop
that reads E's value from the cache instead of computing it (what computed it is left to
`dce`: an op that may raise still runs); else L as it was. Values are bit for bit those of
L. Machine pipeline only (after `licm`), so derivations never see it; it applies to the
loops of derived functions too. An L is transformed once; loops nested in it are not
considered again for the same values.
"""
from __future__ import annotations

from ..ir import F64, I64, Block, Builder, Function, Op, Value, replace_all_uses
from ..loops import iteration, trip_count
from ..ops import has_trait, is_pure, isa, MEMREF_ALLOC, MEMREF_DIM, MEMREF_LOAD, SCF_FOR
from .util import clone_op, defined_inside, for_each_function, root_of, unwritten_in

LIMIT = 1 << 20   # elements per cache


def _path(op: Op, loop: Op) -> list[Op] | None:
    """The scf.for ops strictly between `loop` and `op`, outermost first, or None when
    something else (a branch, a while loop) is in between or `op` is not inside `loop`."""
    path = []
    block = op.parent
    while block is not None:
        holder = block.parent.parent if block.parent is not None else None
        if holder is loop:
            return path[::-1]
        if holder is None or not isa(holder, SCF_FOR):
            return None
        path.append(holder)
        block = holder.parent
    return None


class _Invariance:
    """Which values inside `loop` are the same in every iteration of it, given the indices
    of the path loops (memoised)."""

    def __init__(self, loop: Op, params: set):
        self.loop, self.params = loop, params
        self.inside = defined_inside(loop.regions[0].block)
        self.ivs: set = set()
        self.memo: dict = {}

    def array_unwritten(self, a: Value) -> bool:
        root = root_of(a)
        if not (root in self.params or (root.op is not None and isa(root.op, MEMREF_ALLOC))):
            return False
        return unwritten_in(self.loop, root)

    def __call__(self, v: Value) -> bool:
        if v not in self.inside or v in self.ivs:
            return True
        if v in self.memo:
            return self.memo[v]
        self.memo[v] = False   # a cycle (carried values) is not invariant
        op = v.op
        ok = False
        if op is not None and not op.regions:
            src = op.operands[0].op if op.operands else None
            if isa(op, MEMREF_LOAD):
                ok = self.array_unwritten(op.operands[0]) and all(map(self, op.operands))
            elif isa(op, MEMREF_DIM) and isa(src, MEMREF_ALLOC):   # the size it was made with
                ok = self(src.operands[op.attrs["index"]])
            elif is_pure(op.name) or has_trait(op, "view"):
                ok = all(map(self, op.operands))
        self.memo[v] = ok
        return ok


def _outside(v: Value, inside: set) -> Value | None:
    """`v`, or the value it equals that is defined outside the loop (`memref.dim` of an
    allocation is its size operand: sizes inlining left as `dim` of an array the loop
    allocates), or None."""
    while v in inside:
        op = v.op
        if op is None or not isa(op, MEMREF_DIM) or op.operands[0].op is None or \
                not isa(op.operands[0].op, MEMREF_ALLOC):
            return None
        v = op.operands[0].op.operands[op.attrs["index"]]
    return v


def _candidates(loop: Op, params: set) -> list[tuple[Op, list]]:
    """(E, [(path loop, (lb, ub, step) defined outside `loop`), ...]) per cached op E."""
    inv = _Invariance(loop, params)
    out = []
    for op in loop.regions[0].block.walk():
        if op.regions or not is_pure(op.name) or has_trait(op, "cheap") or \
                len(op.results) != 1 or not getattr(op.results[0].type, "is_float", False):
            continue
        loops = _path(op, loop)
        if not loops:
            continue
        bounds = [tuple(_outside(v, inv.inside) for v in p.operands[:3]) for p in loops]
        if any(v is None for bs in bounds for v in bs):
            continue
        path = list(zip(loops, bounds))
        inv.ivs = {p.regions[0].block.args[0] for p in loops}
        inv.memo = {}
        if all(map(inv, op.operands)):
            out.append((op, path))
    return out


def _indices(b: Builder, path: list, vmap: dict) -> list[Value]:
    return [iteration(b, vmap[p.regions[0].block.args[0]], lb, st) for p, (lb, _, st) in path]


def _splice_after(op: Op, ops: list[Op]) -> None:
    block = op.parent
    at = block.ops.index(op) + 1
    for o in ops:
        o.parent = block
    block.ops[at:at] = ops


def _rewrite(loop: Op, cands) -> tuple[list[Op], dict]:
    """The ops that replace `loop` in its block (see the module docstring), and what its
    results become."""
    lb, ub, st, *inits = loop.operands
    body = loop.regions[0].block
    head = Builder(Block())
    trips = trip_count(head, lb, ub, st)
    ok = head.cmpi("sge", trips, head.i(2))
    cap = head.i(LIMIT + 1)
    sizes = []
    for _, path in cands:
        dims = [trip_count(head, *bounds) for _, bounds in path]
        n = head.i(1)
        for d in dims:
            n = head.muli(head.one("arith.minsi", [n, cap], I64),
                          head.one("arith.minsi", [d, cap], I64))
        ok = head.andi(ok, head.cmpi("sle", n, head.i(LIMIT)))
        sizes.append(dims)
    types = [r.type for r in loop.results]
    ifop, then, other = head.if_(ok, types, [r.name for r in loop.results])

    tb = Builder(then)
    caches = [tb.alloc(F64, dims, "cache", zeroed=False) for dims in sizes]
    # the first iteration, with each cached value stored as it is computed
    vmap = {body.args[0]: lb, **dict(zip(body.args[1:], inits))}
    for op in body.ops[:-1]:
        then.append(clone_op(op, vmap))
    for (e, path), cache in zip(cands, caches):
        made = vmap[e.results[0]].op
        b = Builder(Block())
        b.store(made.results[0], cache, _indices(b, path, vmap), checked=False)
        _splice_after(made, b.block.ops)
    firsts = [vmap.get(v, v) for v in body.terminator.operands]
    # the other iterations, reading the cached values
    rest, rbody = tb.for_(tb.addi(lb, st), ub, st, firsts, body.args[0].name,
                          [a.name for a in body.args[1:]], [r.name for r in loop.results])
    rest.attrs.update(loop.attrs)
    vmap = {body.args[0]: rbody.args[0], **dict(zip(body.args[1:], rbody.args[1:]))}
    for op in body.ops:
        rbody.append(clone_op(op, vmap))
    for (e, path), cache in zip(cands, caches):
        made = vmap[e.results[0]].op
        b = Builder(Block())
        got = b.load(cache, _indices(b, path, vmap), checked=False)
        _splice_after(made, b.block.ops)
        replace_all_uses(rbody, made.results[0], got)
        made.parent.ops.remove(made)
    for cache in caches:
        tb.dealloc(cache)
    tb.yield_(list(rest.results))

    loop.parent = other
    other.ops.append(loop)
    Builder(other).yield_(list(loop.results))
    for r, nr in zip(loop.results, ifop.results):
        nr.name = r.name
    return head.block.ops, dict(zip(loop.results, ifop.results))


def _block(block: Block, params: set, renames: dict) -> None:
    out = []
    for op in block.ops:
        op.operands = [renames.get(v, v) for v in op.operands]
        cands = _candidates(op, params) if isa(op, SCF_FOR) else []
        if cands:
            new, mapping = _rewrite(op, cands)
            renames.update(mapping)
            out += new
            continue
        for r in op.regions:
            _block(r.block, params, renames)
        out.append(op)
    for op in out:
        op.parent = block
    block.ops[:] = out


def _function(f: Function) -> None:
    # a transformed loop's results are used only after it, in ops visited after it
    _block(f.body, set(f.params), {})


cache_invariants = for_each_function(_function, "cache_invariants")
