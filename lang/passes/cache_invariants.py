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
Before L, `use` = "L runs at least twice and each cache has at most 2^20 elements", and a
cache per E (`f64[trips of each path loop]`, no elements unless `use`; freed after L),
indexed by the path loops' iteration numbers (lang/loops.py). In L's body, the innermost
path loop of each E becomes `if use and iv != lb { it, reading E's value from the cache }
else if use { it, storing E's value in the cache as it computes it } else { it }` (in the
reading copy, what computed E is left to `dce`: an op that may raise still runs). Only that
inner loop is copied, so code grows by two small loops, not two copies of L. Every op runs
where and when it ran (errors included); values are bit for bit those of L. Machine
pipeline only (after `licm`), so derivations never see it; not to a loop that records on
the tape (an adjoint's forward sweep: measured slower). An L is transformed once; loops nested in it are not considered again
for the same values.
"""
from __future__ import annotations

from ..ir import I64, Block, Builder, Function, Op, Value, replace_all_uses
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
    if any(has_trait(o, "tape") for o in loop.walk()):
        return []   # measured: an adjoint's forward sweep got slower (d10 K25 GMM, 0.66x)
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
    ivs = [p.regions[0].block.args[0] for p, _ in path]
    return [iteration(b, vmap.get(v, v), lb, st) for v, (_, (lb, _, st)) in zip(ivs, path)]


def _splice_after(op: Op, ops: list[Op]) -> None:
    block = op.parent
    at = block.ops.index(op) + 1
    for o in ops:
        o.parent = block
    block.ops[at:at] = ops


def _version_inner(inner: Op, group, caches, first: Value, use: Value) -> None:
    """Replace `inner` (the innermost path loop of the cached ops in `group`) in its block by
    `if use and not first { inner reading the caches } else if use { inner filling them }
    else { inner }`."""
    block = inner.parent
    pos = block.ops.index(inner)
    head = Builder(Block())
    types = [r.type for r in inner.results]
    names = [r.name for r in inner.results]
    read = head.andi(use, head.noti(first))
    ifop, rblk, other = head.if_(read, types, names)
    fill, fblk, oblk = Builder(other).if_(use, types, names)

    def copy(into: Block, after_made) -> None:
        vmap: dict = {}
        op = clone_op(inner, vmap)
        op.parent = into
        into.ops.append(op)
        for (e, path), cache in zip(group, caches):
            after_made(vmap[e.results[0]].op, path, cache, vmap, op)
        Builder(into).yield_(list(op.results))

    def load(made, path, cache, vmap, loop_copy):
        b = Builder(Block())
        got = b.load(cache, _indices(b, path, vmap), checked=False)
        _splice_after(made, b.block.ops)
        replace_all_uses(loop_copy.regions[0].block, made.results[0], got)
        made.parent.ops.remove(made)

    def store(made, path, cache, vmap, loop_copy):
        b = Builder(Block())
        b.store(made.results[0], cache, _indices(b, path, vmap), checked=False)
        _splice_after(made, b.block.ops)

    copy(rblk, load)
    copy(fblk, store)
    inner.parent = oblk
    oblk.ops.append(inner)
    Builder(oblk).yield_(list(inner.results))
    Builder(other).yield_(list(fill.results))
    for r, nr in zip(inner.results, ifop.results):   # (the branches are not in `block` yet)
        replace_all_uses(block, r, nr)
    for o in head.block.ops:
        o.parent = block
    block.ops[pos:pos + 1] = head.block.ops


def _rewrite(loop: Op, cands) -> tuple[list[Op], list[Op]]:
    """Version the inner loops of `loop` that compute the cached values (see the module
    docstring); return the ops to put before `loop` (the caches) and after it (their frees)."""
    lb, ub, st = loop.operands[:3]
    body = loop.regions[0].block
    head = Builder(Block())
    trips = trip_count(head, lb, ub, st)
    use = head.cmpi("sge", trips, head.i(2))
    cap = head.i(LIMIT + 1)
    sizes = []
    for _, path in cands:
        dims = [trip_count(head, *bounds) for _, bounds in path]
        n = head.i(1)
        for d in dims:
            n = head.muli(head.one("arith.minsi", [n, cap], I64),
                          head.one("arith.minsi", [d, cap], I64))
        use = head.andi(use, head.cmpi("sle", n, head.i(LIMIT)))
        sizes.append(dims)
    zero = head.i(0)
    # no room is made when the caches go unused (too big, or fewer than two iterations)
    caches = [head.alloc(e.results[0].type, [head.select(use, d, zero) for d in dims], "cache",
                         zeroed=False) for (e, _), dims in zip(cands, sizes)]
    fb = Builder(Block())
    first = fb.cmpi("eq", body.args[0], lb)
    for o in fb.block.ops:
        o.parent = body
    body.ops[0:0] = fb.block.ops
    groups: dict = {}
    for (e, path), cache in zip(cands, caches):
        groups.setdefault(id(path[-1][0]), (path[-1][0], []))[1].append(((e, path), cache))
    # innermost first: an outer group's copies of its inner loop then hold the versioned
    # loops of the groups nested in it
    for inner, members in sorted(groups.values(), key=lambda g: -len(g[1][0][0][1])):
        _version_inner(inner, [m for m, _ in members], [c for _, c in members], first, use)
    return head.block.ops, [Op("memref.dealloc", [c]) for c in caches]


def _block(block: Block, params: set) -> None:
    out = []
    for op in block.ops:
        cands = _candidates(op, params) if isa(op, SCF_FOR) else []
        if cands:     # the loops inside are not considered again for the same values
            before, after = _rewrite(op, cands)
            out += before + [op] + after
            continue
        for r in op.regions:
            _block(r.block, params)
        out.append(op)
    for op in out:
        op.parent = block
    block.ops[:] = out


def _function(f: Function) -> None:
    _block(f.body, set(f.params))


cache_invariants = for_each_function(_function, "cache_invariants")
