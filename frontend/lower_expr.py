"""Expression lowering (mixed into `frontend.emit.FnEmitter`).

Contract: `ev(expr)` emits IR for a typed expression at the current insertion point and returns
its Value; fresh arrays are registered as statement temporaries (`own_temp`), views remember
their base (`view_root`). Elementwise array expressions (arithmetic, unary minus, elementwise
builtins) are fused into one `scf.for` over the collapsed arrays, after one `dad.check` per
operation whose operand shapes are not statically equal. Scalar operators are tables keyed by
operator; integer `/` and `%` are `arith.floordivsi`/`floormodsi` carrying `loc`; indexing loads
are checked with the `loc` of the indexing expression. Indices and slices mixed one per
dimension (`read_part`) give a view when the part is contiguous, else a gathered copy; the
same helpers (`check_parts`, `part_dims`, `part_indices`, `loop_nest`) serve assignments to
parts in `emit`. Builtins are in `lower_builtins`.
"""
from __future__ import annotations

from ..lang import ir
from . import ast as A
from . import lower_builtins as LB
from .builtins import BUILTINS, CONSTANTS, is_elementwise_call
from .types import Array, elem, ir_type, is_array, is_one

FLOAT_BIN = {"+": "arith.addf", "-": "arith.subf", "*": "arith.mulf", "/": "arith.divf", "%": "arith.remf"}
INT_BIN = {"+": "arith.addi", "-": "arith.subi", "*": "arith.muli", "/": "arith.floordivsi",
           "%": "arith.floormodsi"}
CMPF = {"<": "olt", "<=": "ole", ">": "ogt", ">=": "oge", "==": "oeq", "!=": "une"}
CMPI = {"<": "slt", "<=": "sle", ">": "sgt", ">=": "sge", "==": "eq", "!=": "ne"}
ARITH = set(FLOAT_BIN) | {"**"}


def is_ew(n: A.Expr) -> bool:
    """An elementwise array operation (fused into one loop)."""
    if not is_array(n.ty):
        return False
    if isinstance(n, A.Binary):
        return n.op in ARITH or n.op in CMPF
    if isinstance(n, A.Unary):
        return n.op == "-"
    return isinstance(n, A.Call) and n.kind == "builtin" and is_elementwise_call(n.func, len(n.args))


def ew_children(n: A.Expr):
    if isinstance(n, A.Binary):
        return [n.left, n.right]
    if isinstance(n, A.Unary):
        return [n.operand]
    return list(n.args)


def _int_literal(e: A.Expr):
    """The value of an integer literal, possibly negated (`3`, `-2`); None otherwise."""
    if isinstance(e, A.IntLit):
        return e.value
    if isinstance(e, A.Unary) and e.op == "-" and isinstance(e.operand, A.IntLit):
        return -e.operand.value
    return None



def _stretched(t, result) -> bool:
    """Has array type `t` an axis of literal size 1 that the result's (on the trailing
    axes) is not: an axis broadcasting stretches?"""
    off = result.rank - t.rank
    return any(is_one(d) and not is_one(result.dims[off + k]) for k, d in enumerate(t.dims))

class ExprLowering:
    # ------------------------------------------------------------------ dispatch
    def ev(self, e: A.Expr) -> ir.Value:
        if self.in_ew and id(e) in self.ew_env:
            return self.ew_env[id(e)]
        if not self.in_ew and is_ew(e):
            return self.elementwise(e)
        return getattr(self, "x_" + type(e).__name__)(e)

    def scalar_type(self, e: A.Expr) -> ir.ScalarType:
        return ir_type(elem(e.ty))

    def x_IntLit(self, e):
        return self.b.const(e.value, self.scalar_type(e))

    def x_FloatLit(self, e):
        return self.b.const(e.value, self.scalar_type(e))

    def x_BoolLit(self, e):
        return self.b.const(e.value, ir.BOOL)

    def x_Name(self, e: A.Name):
        if e.kind == "const":
            return self.b.const(CONSTANTS[e.id], self.scalar_type(e))
        return self.lookup(e.id).value

    def x_Unary(self, e: A.Unary):
        if e.op == "not":
            return self.b.noti(self.ev(e.operand))
        t = self.scalar_type(e)
        if isinstance(e.operand, (A.IntLit, A.FloatLit)) and not self.in_ew:
            return self.b.const(-e.operand.value, t)
        v = self.ev(e.operand)
        if t.is_float:
            return self.b.negf(v)
        return self.b.subi(self.b.i(0), v)

    def x_Binary(self, e: A.Binary):
        if e.op in ("and", "or"):
            return self.logical(e)
        if e.op in CMPF:
            a, b = self.ev(e.left), self.ev(e.right)
            if a.type.is_float:
                return self.b.cmpf(CMPF[e.op], a, b)
            return self.b.cmpi(CMPI[e.op], a, b)
        if e.op == "**":
            return self.power(e)
        a, b = self.ev(e.left), self.ev(e.right)
        return self.binop(e.op, a, b, e.ty, e.span)

    def binop(self, op: str, a: ir.Value, b: ir.Value, ty, span: A.Span) -> ir.Value:
        t = ir_type(elem(ty))
        if t.is_float:
            return self.b.one(FLOAT_BIN[op], [a, b], t)
        if op in ("/", "%"):
            return self.b.one(INT_BIN[op], [a, b], t, loc=span.loc)
        return self.b.one(INT_BIN[op], [a, b], t)

    def power(self, e: A.Binary) -> ir.Value:
        """`x ** n` for an integer literal `n` (negated or not) with |n| <= 4 on floats, any
        literal `n >= 0` on integers: exact products by squaring (`1 / product` for n < 0; the
        constant 1 for n = 0), so value and derivatives are exact at every x, 0 included.
        Other exponents are `math.powf`."""
        base = self.ev(e.left)
        n = _int_literal(e.right)
        if base.type.is_int or (n is not None and -4 <= n <= 4):
            if n == 0:
                return self.b.const(1, base.type)
            mul = self.b.mulf if base.type.is_float else self.b.muli
            result, sq, k = None, base, abs(n)
            while k:  # square and multiply
                if k & 1:
                    result = sq if result is None else mul(result, sq)
                k >>= 1
                if k:
                    sq = mul(sq, sq)
            if n < 0:
                result = self.b.divf(self.b.const(1, base.type), result)
            return result
        return self.b.math("powf", base, self.ev(e.right))

    def logical(self, e: A.Binary) -> ir.Value:
        """Short-circuit `and`/`or`: a plain andi/ori when the right side is pure, else scf.if."""
        from ..lang.ops import is_pure
        a = self.ev(e.left)
        scratch = ir.Block()
        prev, saved_temps = self.b, self.temps
        self.b, self.temps = ir.Builder(scratch), []
        r = self.ev(e.right)
        temps, self.temps, self.b = self.temps, saved_temps, prev
        if not temps and all(is_pure(op.name) and not op.regions for op in scratch.ops):
            for op in scratch.ops:
                self.b.insert(op)
            return self.b.andi(a, r) if e.op == "and" else self.b.ori(a, r)
        op, tb, eb = self.b.if_(a, [ir.BOOL])
        taken, other = (tb, eb) if e.op == "and" else (eb, tb)
        for o in scratch.ops:
            taken.append(o)
        bt = ir.Builder(taken)
        for t in reversed(temps):
            bt.dealloc(t)
        bt.yield_([r])
        ir.Builder(other).yield_([ir.Builder(other).const(e.op == "or", ir.BOOL)])
        return op.result

    # ------------------------------------------------------------------ arrays
    def x_Index(self, e: A.Index) -> ir.Value:
        base = self.ev(e.base)
        return self.read_part(base, self.index_specs(e.indices), e.span.loc)

    def index_specs(self, indices) -> list[tuple]:
        """Evaluate indices: `("i", v)` for an index, `("s", lo, hi)` for a slice `lo..hi`."""
        out = []
        for i in indices:
            if isinstance(i, A.Slice):
                out.append(("s", self.ev(i.start), self.ev(i.stop)))
            else:
                out.append(("i", self.ev(i)))
        return out

    def read_part(self, base: ir.Value, specs, loc: str) -> ir.Value:
        """`base[specs]`: an element (checked load); a view when the part is contiguous (leading
        indices are `memref.row`s, then at most one slice with nothing after it is a
        `memref.slice`); otherwise (a column, a block) a fresh copy gathered by a loop nest."""
        if len(specs) == base.type.rank and all(s[0] == "i" for s in specs):
            return self.b.load(base, [s[1] for s in specs], checked=True, loc=loc)
        v, axis = base, 0
        while specs and specs[0][0] == "i":
            nv = self.b.one("memref.row", [v, specs[0][1]], ir.MemRefType(v.type.elem, v.type.rank - 1),
                            loc=loc)
            self.view_root[nv] = v
            v, specs, axis = nv, specs[1:], axis + 1
        if not specs:
            return v
        if len(specs) == 1:
            nv = self.b.one("memref.slice", [v, specs[0][1], specs[0][2]], v.type, loc=loc)
            self.view_root[nv] = v
            return nv
        self.check_parts(v, specs, loc, axis)
        dims = self.part_dims(v, specs)
        out = self.own_temp(self.b.alloc(v.type.elem, dims))

        def body(ivs):
            x = self.b.load(v, self.part_indices(specs, ivs), checked=False)
            self.b.store(x, out, ivs, checked=False)
        self.loop_nest(dims, body, ("slice", loc))
        return out

    def check_parts(self, v: ir.Value, specs, loc: str, axis0: int = 0):
        """IndexError (with the actual index or bounds) unless every index and slice of `specs`
        fits the dimensions of `v` (`axis0` numbers the first one in the message)."""
        for k, s in enumerate(specs):
            d = self.b.dim(v, k)
            if s[0] == "i":
                ok = self.b.andi(self.b.cmpi("sge", s[1], self.b.i(0)), self.b.cmpi("slt", s[1], d))
                self.b.op("dad.check", [ok, s[1], d], kind="IndexError", loc=loc,
                          msg="index {d0} is out of bounds for axis %d with size {d1}" % (axis0 + k))
            else:
                lo, hi = s[1], s[2]
                ok = self.b.andi(self.b.cmpi("sge", lo, self.b.i(0)), self.b.cmpi("sle", lo, hi))
                self.b.op("dad.check", [ok, lo, hi], kind="IndexError", loc=loc,
                          msg="slice {d0}..{d1} is out of bounds for axis %d (0 <= start <= end is "
                              "required)" % (axis0 + k))
                self.b.op("dad.check", [self.b.cmpi("sle", hi, d), hi, d], kind="IndexError", loc=loc,
                          msg="slice end {d0} is out of bounds for axis %d with size {d1}" % (axis0 + k))

    def part_dims(self, v: ir.Value, specs) -> list[ir.Value]:
        """The dimensions of `v[specs]`: one per slice, then the unindexed trailing ones."""
        dims = [self.b.subi(s[2], s[1]) for s in specs if s[0] == "s"]
        return dims + [self.b.dim(v, k) for k in range(len(specs), v.type.rank)]

    def part_indices(self, specs, ivs) -> list[ir.Value]:
        """Indices into the whole array of element `ivs` of the part `specs`."""
        out, ivs = [], list(ivs)
        for s in specs:
            out.append(s[1] if s[0] == "i" else self.b.addi(s[1], ivs.pop(0)))
        return out + ivs

    def loop_nest(self, dims, body, site=None):
        """`for i0 in 0..d0 { for i1 in 0..d1 { body([i0, i1, ...]) } }` at the insertion point
        (loops the compiler made for `site`: (what, loc), see `mark_made_loop`)."""
        prev, ivs, blocks = self.b, [], []
        for d in dims:
            loop, blk = self.b.for_(self.b.i(0), d, self.b.i(1), [], iv_name="k")
            self.mark_made_loop(loop, site)
            self.b = ir.Builder(blk)
            ivs.append(blk.args[0])
            blocks.append(blk)
        body(ivs)
        for blk in blocks:
            ir.Builder(blk).yield_([])
        self.b = prev

    def collapse(self, v: ir.Value) -> ir.Value:
        if v.type.rank == 1:
            return v
        c = self.b.one("memref.collapse", [v], ir.MemRefType(v.type.elem, 1))
        self.view_root[c] = v
        return c

    def elementwise(self, e: A.Expr) -> ir.Value:
        leaves: dict[int, ir.Value] = {}
        arrays: list[tuple[A.Expr, ir.Value]] = []

        def collect(n):
            if is_ew(n):
                for c in ew_children(n):
                    collect(c)
                return
            v = self.ev(n)
            leaves[id(n)] = v
            if is_array(n.ty):
                arrays.append((n, v))

        collect(e)
        self.elementwise_checks(e, leaves)
        if any(v.type.rank != e.ty.rank or _stretched(n.ty, e.ty) for n, v in arrays):
            return self.broadcast_loops(e, leaves, arrays)
        rep = arrays[0][1]
        out = self.own_temp(self.b.alloc(ir_type(e.ty.elem), [self.b.dim(rep, k) for k in range(rep.type.rank)]))
        flat_out = self.collapse(out)
        flats = {id(n): self.collapse(v) for n, v in arrays}
        total = self.b.dim(flat_out, 0)
        op, blk = self.b.for_(self.b.i(0), total, self.b.i(1), [], iv_name="k")
        self.mark_made_loop(op, ("elementwise", e.span.loc))
        prev = self.b
        self.b = ir.Builder(blk)
        k = blk.args[0]
        env = dict(leaves)
        for n, _ in arrays:
            env[id(n)] = self.b.load(flats[id(n)], [k], checked=False)
        saved = (self.in_ew, self.ew_env)
        self.in_ew, self.ew_env = True, env
        v = self.ev(e)
        self.in_ew, self.ew_env = saved
        self.b.store(v, flat_out, [k], checked=False)
        self.b.yield_([])
        self.b = prev
        return out

    def broadcast_loops(self, e: A.Expr, leaves, arrays) -> ir.Value:
        """An elementwise expression whose arrays have different ranks, or axes of literal
        size 1 that stretch (broadcasting): a loop nest over the result's shape, each array
        read at the trailing indices of its own rank, at index 0 on a stretched axis."""
        rank = e.ty.rank

        def size(j):   # the result's size on axis j: an array's that is not stretched there
            for n, v in arrays:
                k = j - (rank - v.type.rank)
                if k >= 0 and not is_one(n.ty.dims[k]):
                    return self.b.dim(v, k)
            return self.b.i(1)
        dims = [size(j) for j in range(rank)]
        # every array against the result's shape, on its trailing axes (the per-operation
        # checks compare operands only, and trailing sizes do not chain through them)
        for n, v in arrays:
            for k in range(v.type.rank):
                if is_one(n.ty.dims[k]):
                    continue
                dk, dr = self.b.dim(v, k), dims[rank - v.type.rank + k]
                self.emit_check([self.b.cmpi("eq", dk, dr)],
                                f"shape mismatch in a broadcast expression: an operand ({n.ty}) "
                                f"has size {{d0}} on axis {k}, the result {{d1}}", n.span,
                                details=[dk, dr])
        out = self.own_temp(self.b.alloc(ir_type(e.ty.elem), dims))

        def body(ivs):
            env = dict(leaves)
            zero = self.b.i(0)
            for n, v in arrays:
                idx = [zero if is_one(d) else iv for d, iv in zip(n.ty.dims, ivs[rank - v.type.rank:])]
                env[id(n)] = self.b.load(v, idx, checked=False)
            saved = (self.in_ew, self.ew_env)
            self.in_ew, self.ew_env = True, env
            x = self.ev(e)
            self.in_ew, self.ew_env = saved
            self.b.store(x, out, ivs, checked=False)
        self.loop_nest(dims, body, ("elementwise", e.span.loc))
        return out

    def elementwise_checks(self, e: A.Expr, leaves):
        """One dad.check per elementwise operation whose operand shapes may differ."""
        def rep(n, axis):
            """An array leaf under `n` not stretched on `n`'s trailing axis `axis` (counted
            from the end), and its axis; or None."""
            if id(n) in leaves:
                v = leaves[id(n)]
                if not is_array(n.ty) or axis > n.ty.rank or is_one(n.ty.dims[-axis]):
                    return None
                return v, v.type.rank - axis
            for c in ew_children(n):
                r = rep(c, axis)
                if r is not None:
                    return r
            return None

        def walk(n):
            if not is_ew(n):
                return
            kids = ew_children(n)
            for c in kids:
                walk(c)
            needs = getattr(n, "shape_check", False) or getattr(n, "info", None) == "shape_check"
            arrs = [c for c in kids if is_array(c.ty)]
            for other in arrs[1:] if needs else ():
                what = n.op if isinstance(n, A.Binary) else n.func
                m = min(arrs[0].ty.rank, other.ty.rank)   # trailing dimensions (broadcasting)
                for axis in range(m, 0, -1):
                    a, b = rep(arrs[0], axis), rep(other, axis)
                    if a is None or b is None:   # a literal size 1 stretches: no check
                        continue
                    da, db = self.b.dim(a[0], a[1]), self.b.dim(b[0], b[1])
                    self.emit_check([self.b.cmpi("eq", da, db)],
                                    f"shape mismatch in '{what}': {arrs[0].ty} and {other.ty} "
                                    f"(sizes {{d0}} and {{d1}})", n.span, details=[da, db])
        walk(e)

    # ------------------------------------------------------------------ calls
    def x_ArrayLit(self, e: A.ArrayLit) -> ir.Value:
        """A fresh array: element k is item k (a scalar, or a whole array copied into
        `out[k, ...]`, whose shape must be the first item's)."""
        vals = [self.ev(i) for i in e.items]
        n = self.b.i(len(vals))
        if not isinstance(vals[0].type, ir.MemRefType):
            out = self.own_temp(self.b.alloc(self.scalar_type(e), [n], loc=e.span.loc))
            for k, v in enumerate(vals):
                self.b.store(v, out, [self.b.i(k)], checked=False)
            return out
        first = vals[0]
        dims = [self.b.dim(first, a) for a in range(first.type.rank)]
        out = self.own_temp(self.b.alloc(first.type.elem, [n, *dims], loc=e.span.loc))
        for k, (item, v) in enumerate(zip(e.items, vals)):
            for a, d in enumerate(dims):
                if k:
                    dk = self.b.dim(v, a)
                    self.emit_check([self.b.cmpi("eq", dk, d)],
                                    f"shape mismatch in an array literal: element {k} has size "
                                    f"{{d0}} on axis {a}, element 0 {{d1}}", item.span, details=[dk, d])

            def body(ivs, v=v, k=k):
                self.b.store(self.b.load(v, ivs, checked=False), out, [self.b.i(k), *ivs],
                             checked=False)
            self.loop_nest(dims, body, ("array literal", e.span.loc))
        return out

    def x_Call(self, e: A.Call) -> ir.Value:
        if e.kind == "user":
            vals = self.user_call(e)
            return vals[0]
        sig = BUILTINS[e.func]
        outer, self.made_site = getattr(self, "made_site", None), (e.func, e.span.loc)
        try:
            return LB.LOWER[sig.kind](self, e)
        finally:
            self.made_site = outer

    def mark_made_loop(self, op: ir.Op, site: tuple[str, str] | None = None) -> None:
        """A loop the compiler made (for a builtin, or a whole-array expression) says where
        and for what: `of` (the builtin's name, or "elementwise") and `loc` (the call's
        place), which the tape report and run-time errors show instead of its made-up
        index name."""
        site = site or getattr(self, "made_site", None)
        if site is not None and "loc" not in op.attrs:
            op.attrs["of"], op.attrs["loc"] = site

    def ev_multi(self, e: A.Expr) -> list[ir.Value]:
        return self.user_call(e)

    def user_call(self, e: A.Call) -> list[ir.Value]:
        info = self.mod.checked.functions[e.func]
        args = [self.ev(a) for a in e.args]
        # size variables must agree (the callee reads them from the first parameter naming them)
        conds, first = [], {}
        for a, v, (pname, pt) in zip(e.args, args, info.params):
            if not isinstance(pt, Array):
                continue
            for axis, (dp, da) in enumerate(zip(pt.dims, a.ty.dims)):
                if isinstance(dp, int):
                    if da != dp:
                        conds.append(self.b.cmpi("eq", self.b.dim(v, axis), self.b.i(dp)))
                elif dp in first:
                    v0, axis0, da0 = first[dp]
                    from .types import same_dim
                    if not same_dim(da0, da):
                        conds.append(self.b.cmpi("eq", self.b.dim(v, axis), self.b.dim(v0, axis0)))
                else:
                    first[dp] = (v, axis, da)
        self.emit_check(conds, f"size mismatch in call to '{e.func}': the arguments do not agree with "
                               f"{info.signature}", e.span)
        results = self.b.op("func.call", args, [ir_type(t) for t in info.results], callee=e.func,
                            loc=e.span.loc).results
        for r in results:
            if isinstance(r.type, ir.MemRefType):
                self.own_temp(r)
        return results
