"""Typed AST -> IR `Module` (functions, statements, control flow, ownership).

Contract: `emit_module(checked, fast_math=False)` builds one IR function per `.dad` function
following docs/IR.md. Scalars are SSA: an environment maps each name to its current Value;
variables assigned inside `if`/loops become `scf.if` results / loop-carried values. A `var` array
owns one buffer for its whole scope (assignments copy into it, with a run-time shape check), so
arrays are never carried. `break`/`continue`/early `return` become boolean flags (`$brk`, `$cont`,
`$ret` and return slots) guarding the rest of each block with `scf.if`; a `for` containing `break`
or `return` becomes `scf.while`. Returns only in tail position (possibly under if/else) need no
flags. Whoever allocates frees: statement temporaries after the statement, scope-owned buffers
at the end of the scope; returned arrays are always fresh buffers owned by the caller.
Expressions and builtins are lowered in `frontend.lower_expr` and `frontend.lower_builtins`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..lang import ir
from ..lang.ir import Block, Builder, Function, Module
from . import ast as A
from .lower_expr import ExprLowering
from .typecheck import CheckedProgram, FnInfo
from .types import Array, I64 as T_I64, ir_type, is_array, same_dim
from ..lang.ops import dialect, isa, MATH_ABSI

FAST_OPS = {"arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.remf", "arith.negf",
            "arith.cmpf"}


@dataclass
class EVar:
    kind: str           # param sizevar let var loop flag
    ty: object          # front-end type
    value: ir.Value
    hint: str | None = None


@dataclass
class Scope:
    vars: dict = field(default_factory=dict)
    owned: list = field(default_factory=list)


@dataclass
class LoopCtx:
    brk: str | None
    cont: str | None


_counter = [0]


def _fresh(prefix: str) -> str:
    _counter[0] += 1
    return f"${prefix}{_counter[0]}"


# ----------------------------------------------------------------------------- AST queries
def _walk_exits(stmts, depth: int, out: set, loop: LoopCtx | None, flags_mode: bool):
    for s in stmts:
        if isinstance(s, A.Break) and depth == 0 and loop and loop.brk:
            out.add(loop.brk)
        elif isinstance(s, A.Continue) and depth == 0 and loop and loop.cont:
            out.add(loop.cont)
        elif isinstance(s, A.Return) and flags_mode:
            out.add("$ret")
        elif isinstance(s, A.If):
            _walk_exits(s.then.stmts, depth, out, loop, flags_mode)
            if s.orelse:
                _walk_exits(s.orelse.stmts, depth, out, loop, flags_mode)
        elif isinstance(s, (A.For, A.While)):
            _walk_exits(s.body.stmts, depth + 1, out, loop, flags_mode)


def _assigned_names(stmts, out: list):
    for s in stmts:
        if isinstance(s, A.Assign) and isinstance(s.target, A.Name) and s.target.id not in out:
            out.append(s.target.id)
        elif isinstance(s, A.If):
            _assigned_names(s.then.stmts, out)
            if s.orelse:
                _assigned_names(s.orelse.stmts, out)
        elif isinstance(s, (A.For, A.While)):
            _assigned_names(s.body.stmts, out)


def contains(stmts, kinds, depth0_only: bool) -> bool:
    for s in stmts:
        if isinstance(s, kinds):
            return True
        if isinstance(s, A.If):
            if contains(s.then.stmts, kinds, depth0_only) or (s.orelse and contains(s.orelse.stmts, kinds, depth0_only)):
                return True
        elif isinstance(s, (A.For, A.While)) and not depth0_only:
            if contains(s.body.stmts, kinds, depth0_only):
                return True
    return False


def always_returns(stmts) -> bool:
    for s in stmts:
        if isinstance(s, A.Return):
            return True
        if isinstance(s, A.If) and s.orelse is not None and always_returns(s.then.stmts) \
                and always_returns(s.orelse.stmts):
            return True
    return False


def tail_ok(stmts) -> bool:
    """Every return is in tail position (through if/else whose other branch takes the rest)."""
    for k, s in enumerate(stmts):
        if isinstance(s, A.Return):
            return True
        if not contains([s], A.Return, False):
            continue
        if not isinstance(s, A.If):
            return False
        rest = stmts[k + 1:]
        t, e = s.then.stmts, (s.orelse.stmts if s.orelse else [])
        rt, re_ = always_returns(t), always_returns(e)
        if not (rt or re_):
            return False
        return tail_ok(t if rt else t + rest) and tail_ok(e if re_ else e + rest)
    return True


# ----------------------------------------------------------------------------- function emitter
class FnEmitter(ExprLowering):
    def __init__(self, module_ctx: "ModuleEmitter", info: FnInfo):
        self.mod = module_ctx
        self.info = info
        self.file = info.node.span.file
        self.scopes: list[Scope] = []
        self.temps: list[ir.Value] = []
        self.view_root: dict[ir.Value, ir.Value] = {}
        self.loops: list[LoopCtx] = []
        self.flags_mode = False
        self.in_ew = False
        self.ew_env: dict[int, ir.Value] = {}

    # ------------------------------------------------------------------ env
    def lookup(self, name: str) -> EVar:
        for s in reversed(self.scopes):
            if name in s.vars:
                return s.vars[name]
        raise KeyError(name)

    def visible(self, name: str) -> bool:
        return any(name in s.vars for s in self.scopes)

    def declare(self, name: str, kind: str, ty, value: ir.Value, hint: str | None = None):
        hint = name if hint is None else hint
        if value.name is None and hint and not hint.startswith("$"):
            value.name = hint
        self.scopes[-1].vars[name] = EVar(kind, ty, value, hint)

    def set(self, name: str, value: ir.Value):
        var = self.lookup(name)
        if value.name is None and var.hint and not var.hint.startswith("$"):
            value.name = var.hint
        var.value = value

    def push(self):
        self.scopes.append(Scope())

    def pop(self):
        scope = self.scopes.pop()
        for buf in reversed(scope.owned):
            self.b.dealloc(buf)

    def carried(self, names: list[str]) -> list[str]:
        """The visible scalar variables among `names` (those a region may redefine)."""
        out = []
        for n in names:
            if self.visible(n):
                v = self.lookup(n)
                if v.kind == "flag" or (v.kind == "var" and not is_array(v.ty)):
                    out.append(n)
        return out

    def assigned(self, stmts) -> list[str]:
        names: list[str] = []
        _assigned_names(stmts, names)
        exits: set = set()
        _walk_exits(stmts, 0, exits, self.loops[-1] if self.loops else None, self.flags_mode)
        if "$ret" in exits:
            exits |= {"$ret"} | {f"$rv{k}" for k in range(len(self.info.results))}
        return self.carried(names + sorted(exits))

    def values(self, names):
        return [self.lookup(n).value for n in names]

    def hints(self, names):
        return [self.lookup(n).hint if not self.lookup(n).hint.startswith("$") else None for n in names]

    def rebind(self, names, values):
        for n, v in zip(names, values):
            self.lookup(n).value = v

    def region(self, block: Block):
        """Switch the insertion point; returns the previous builder."""
        prev = self.b
        self.b = Builder(block)
        return prev

    # ------------------------------------------------------------------ ownership
    def own_temp(self, v: ir.Value) -> ir.Value:
        self.temps.append(v)
        return v

    def take(self, v: ir.Value) -> bool:
        """Move a statement temporary out of the temps list (the caller now owns it)."""
        for k, t in enumerate(self.temps):
            if t is v:
                del self.temps[k]
                return True
        return False

    def in_var_buffer(self, v: ir.Value) -> bool:
        """Whether `v` is, or views, the buffer of a `var` array in scope."""
        root = self.root(v)
        return any(var.kind == "var" and self.root(var.value) is root
                   for scope in self.scopes for var in scope.vars.values())

    def root(self, v: ir.Value) -> ir.Value:
        while v in self.view_root:
            v = self.view_root[v]
        return v

    def free_temps(self):
        for t in reversed(self.temps):
            self.b.dealloc(t)
        self.temps = []

    def now(self, e: A.Expr) -> ir.Value:
        """Evaluate a scalar expression and free its temporaries immediately."""
        saved, self.temps = self.temps, []
        v = self.ev(e)
        self.free_temps()
        self.temps = saved
        return v

    def copy_array(self, v: ir.Value, name: str | None = None) -> ir.Value:
        dims = [self.b.dim(v, k) for k in range(v.type.rank)]
        out = self.b.alloc(v.type.elem, dims, name)
        self.b.op("memref.copy", [v, out])
        return out

    def fresh_owned(self, v: ir.Value) -> ir.Value:
        """`v` as a buffer the caller owns (moved when it is a temporary, else copied)."""
        if self.take(v):
            return v
        return self.copy_array(v)

    # ------------------------------------------------------------------ function
    def emit(self) -> Function:
        info = self.info
        fn = Function(info.name, [ir_type(t) for _, t in info.params], [ir_type(t) for t in info.results],
                      [n for n, _ in info.params], attrs={"sig": str(info.signature)})
        self.b = Builder(fn.body)
        self.push()
        for (name, ty), arg in zip(info.params, fn.params):
            self.declare(name, "param", ty, arg)
        for sv, (k, axis) in info.size_vars.items():
            d = self.b.one("memref.dim", [fn.params[k]], ir.I64, sv, index=axis)
            self.declare(sv, "sizevar", T_I64, d)
        body = info.node.body.stmts
        if tail_ok(body):
            vals = self.emit_tail(body)
            self.pop()
        else:
            self.flags_mode = True
            self.declare("$ret", "flag", None, self.b.const(False, ir.BOOL), "$ret")
            for k, t in enumerate(info.results):
                u = self.b.one("dad.undef", [], ir_type(t))
                self.declare(f"$rv{k}", "flag", t, u, "$rv")
            self.emit_stmts(body)
            vals = [self.lookup(f"$rv{k}").value for k in range(len(info.results))]
            self.pop()
        self.b.ret(vals)
        return fn

    # ------------------------------------------------------------------ blocks
    def emit_tail(self, stmts) -> list[ir.Value]:
        for k, s in enumerate(stmts):
            if isinstance(s, A.Return):
                saved, self.temps = self.temps, []
                vals = self.return_values(s.value)
                self.free_temps()
                self.temps = saved
                return vals
            if isinstance(s, A.If) and contains([s], A.Return, False):
                rest = stmts[k + 1:]
                c = self.now(s.cond)
                op, tb, eb = self.b.if_(c, [ir_type(t) for t in self.info.results])
                snapshot = self.snapshot()
                t, e = s.then.stmts, (s.orelse.stmts if s.orelse else [])
                for blk, part in ((tb, t if always_returns(t) else t + rest),
                                  (eb, e if always_returns(e) else e + rest)):
                    self.restore(snapshot)
                    prev = self.region(blk)
                    self.push()
                    vals = self.emit_tail(part)
                    self.pop()
                    self.b.yield_(vals)
                    self.b = prev
                return op.results
            self.emit_stmt(s)
        raise AssertionError("tail_ok guarantees a return")  # pragma: no cover

    def snapshot(self):
        return [(v, v.value) for s in self.scopes for v in s.vars.values()]

    def restore(self, snap):
        for v, val in snap:
            v.value = val

    def emit_stmts(self, stmts):
        for k, s in enumerate(stmts):
            self.emit_stmt(s)
            if isinstance(s, (A.Break, A.Continue, A.Return)):
                return  # the rest of the block is unreachable
            exits: set = set()
            _walk_exits([s], 0, exits, self.loops[-1] if self.loops else None, self.flags_mode)
            if exits and k + 1 < len(stmts):
                self.guarded(sorted(exits), stmts[k + 1:])
                return

    def guarded(self, flags: list[str], rest):
        """`if not (flag or ...) { rest }` with the variables `rest` may assign as results."""
        any_flag = self.lookup(flags[0]).value
        for f in flags[1:]:
            any_flag = self.b.ori(any_flag, self.lookup(f).value)
        cond = self.b.noti(any_flag)
        names = self.assigned(rest)
        pre = self.values(names)
        op, tb, eb = self.b.if_(cond, [v.type for v in pre], self.hints(names))
        prev = self.region(tb)
        self.push()
        self.emit_stmts(rest)
        self.pop()
        self.b.yield_(self.values(names))
        self.b = Builder(eb)
        self.b.yield_(pre)
        self.b = prev
        self.rebind(names, pre)
        self.rebind(names, op.results)

    def emit_stmt(self, s: A.Stmt):
        saved, self.temps = self.temps, []
        getattr(self, "s_" + type(s).__name__)(s)
        self.free_temps()
        self.temps = saved

    # ------------------------------------------------------------------ statements
    def s_Let(self, s: A.Let):
        kind = "var" if s.mutable else "let"
        if s.destructure:
            if isinstance(s.value, A.TupleExpr):
                vals = [self.ev(i) for i in s.value.items]
                types = [i.ty for i in s.value.items]
            else:
                vals = self.ev_multi(s.value)
                types = list(s.value.ty.items)
        else:
            vals, types = [self.ev(s.value)], [s.value.ty]
            if s.type is not None and is_array(s.value.ty):
                declared = self.lookup_type(s.type)
                self.check_same_shape(vals[0], s.value.ty, declared, s.value.span,
                                      f"shape mismatch in declaration of '{s.names[0]}'")
        for name, v, ty in zip(s.names, vals, types):
            if is_array(ty):
                fresh = self.take(v)  # (takes ownership of a temporary)
                if kind == "var" or (not fresh and self.in_var_buffer(v)):
                    # a `var` owns its buffer; a `let` of (part of) a `var`'s buffer takes a
                    # copy, so later element updates of the `var` do not show through it
                    v = v if fresh else self.copy_array(v, name)
                    self.scopes[-1].owned.append(v)
                elif fresh:
                    self.scopes[-1].owned.append(v)
                elif self.take(self.root(v)):
                    self.scopes[-1].owned.append(self.root(v))
            self.declare(name, kind, ty, v)

    def lookup_type(self, t: A.TypeExpr):
        from .types import SCALARS
        return Array(SCALARS[t.name], tuple(d.value for d in t.dims))

    def s_Assign(self, s: A.Assign):
        tgt = s.target
        if isinstance(tgt, A.Name):
            var = self.lookup(tgt.id)
            if is_array(var.ty) and s.op == "=" and not is_array(s.value.ty):
                self.assign_part(s, var)  # `u = 0.0`: a scalar broadcasts
                return
            if is_array(var.ty):
                if s.op == "=":
                    src = self.ev(s.value)
                else:
                    node = A.Binary(s.span, s.op[0], A.Name(tgt.span, tgt.id, ty=var.ty), s.value, ty=var.ty)
                    node.shape_check = is_array(s.value.ty)
                    src = self.ev(node)
                if s.op == "=":  # (`op=` is elementwise with the buffer itself: shapes already agree)
                    self.check_same_shape(src, s.value.ty, var.ty, s.span,
                                          f"shape mismatch in assignment to '{tgt.id}'", buf=var.value)
                self.b.op("memref.copy", [src, var.value])
                return
            rhs = self.ev(s.value)
            if s.op != "=":
                rhs = self.binop(s.op[0], var.value, rhs, var.ty, s.span)
            self.set(tgt.id, rhs)
            return
        var = self.lookup(tgt.base.id)
        if is_array(tgt.ty):
            self.assign_part(s, var)
            return
        idx = [self.ev(i) for i in tgt.indices]
        loc = tgt.span.loc
        rhs = self.ev(s.value)
        if s.op != "=":
            old = self.b.load(var.value, idx, checked=True, loc=loc)
            rhs = self.binop(s.op[0], old, rhs, var.ty.elem, s.span)
        self.b.store(rhs, var.value, idx, checked=True, loc=loc)

    def assign_part(self, s: A.Assign, var):
        """`A[i] op= e`, `x[a..b] op= e`, `A[i, a..b] op= e`: bounds are checked (IndexError),
        an array `e` must have the part's shape (ValueError with both sizes) and is read in
        full before any element is written (copied when it may view the target's buffer); a
        scalar `e` is evaluated once and broadcast."""
        tgt, loc = s.target, s.target.span.loc
        buf = var.value
        name = tgt.base.id if isinstance(tgt, A.Index) else tgt.id
        specs = self.index_specs(tgt.indices) if isinstance(tgt, A.Index) else []
        rhs = self.ev(s.value)
        self.check_parts(buf, specs, loc)
        dims = self.part_dims(buf, specs)
        if is_array(s.value.ty):
            for k, d in enumerate(dims):
                self.b.op("dad.check", [self.b.cmpi("eq", self.b.dim(rhs, k), d), self.b.dim(rhs, k), d],
                          kind="ValueError", loc=s.span.loc,
                          msg=f"shape mismatch in assignment to a part of '{name}': the value "
                              f"has size {{d0}} on axis {k}, the target {{d1}}")
            if self.root(rhs) is self.root(buf):
                rhs = self.own_temp(self.copy_array(rhs))

        def body(ivs):
            idx = self.part_indices(specs, ivs)
            x = self.b.load(rhs, ivs, checked=False) if is_array(s.value.ty) else rhs
            if s.op != "=":
                old = self.b.load(buf, idx, checked=False)
                x = self.binop(s.op[0], old, x, var.ty.elem, s.span)
            self.b.store(x, buf, idx, checked=False)
        self.loop_nest(dims, body, ("assignment to a part", s.span.loc))

    def s_If(self, s: A.If):
        c = self.now(s.cond)
        names = self.assigned(s.then.stmts + (s.orelse.stmts if s.orelse else []))
        pre = self.values(names)
        op, tb, eb = self.b.if_(c, [v.type for v in pre], self.hints(names))
        for blk, part in ((tb, s.then.stmts), (eb, s.orelse.stmts if s.orelse else [])):
            self.rebind(names, pre)
            prev = self.region(blk)
            self.push()
            self.emit_stmts(part)
            self.pop()
            self.b.yield_(self.values(names))
            self.b = prev
        self.rebind(names, op.results)

    def s_For(self, s: A.For):
        lb, ub = self.now(s.start), self.now(s.stop)
        step = self.b.i(s.step.value if s.step is not None else 1)
        body = s.body.stmts
        has_break = contains(body, A.Break, True)
        has_ret = self.flags_mode and contains(body, A.Return, False)
        ctx = LoopCtx(_fresh("brk") if has_break else None,
                      _fresh("cont") if contains(body, A.Continue, True) else None)
        self.push()  # holds the break flag
        if ctx.brk:
            self.declare(ctx.brk, "flag", None, self.b.const(False, ir.BOOL), "$brk")
        self.loops.append(ctx)
        names = self.assigned(body)
        if not has_break and not has_ret:
            op, blk = self.b.for_(lb, ub, step, self.values(names), iv_name=s.var,
                                  carried_names=self.hints(names), result_names=self.hints(names))
            op.attrs["loc"] = s.span.loc  # where a loop is, for compile-time warnings about it
            prev = self.region(blk)
            self.loop_body(s.var, blk.args[0], names, blk.args[1:], body, ctx)
            self.b.yield_(self.values(names))
            self.b = prev
            self.rebind(names, op.results)
        else:
            op, before, after = self.b.while_([lb] + self.values(names), [s.var] + self.hints(names))
            op.attrs["loc"] = s.span.loc
            prev = self.region(before)
            self.rebind(names, before.args[1:])
            c = self.b.cmpi("slt", before.args[0], ub)
            for flag in (ctx.brk, "$ret" if has_ret else None):
                if flag:
                    c = self.b.andi(c, self.b.noti(self.lookup(flag).value))
            self.b.op("scf.condition", [c, *before.args])
            self.b = Builder(after)
            self.loop_body(s.var, after.args[0], names, after.args[1:], body, ctx)
            nxt = self.b.addi(after.args[0], step)
            self.b.yield_([nxt] + self.values(names))
            self.b = prev
            self.rebind(names, op.results[1:])
        self.loops.pop()
        self.scopes.pop()  # only flags live here: nothing to free

    def loop_body(self, var, iv, names, args, body, ctx: LoopCtx):
        self.rebind(names, args)
        self.push()
        if var is not None:
            self.declare(var, "loop", T_I64, iv)
        if ctx.cont:
            self.declare(ctx.cont, "flag", None, self.b.const(False, ir.BOOL), "$cont")
        self.emit_stmts(body)
        self.pop()

    def s_While(self, s: A.While):
        body = s.body.stmts
        has_ret = self.flags_mode and contains(body, A.Return, False)
        ctx = LoopCtx(_fresh("brk") if contains(body, A.Break, True) else None,
                      _fresh("cont") if contains(body, A.Continue, True) else None)
        self.push()
        if ctx.brk:
            self.declare(ctx.brk, "flag", None, self.b.const(False, ir.BOOL), "$brk")
        self.loops.append(ctx)
        names = self.assigned(body)
        op, before, after = self.b.while_(self.values(names), self.hints(names))
        op.attrs["loc"] = s.span.loc
        prev = self.region(before)
        self.rebind(names, before.args)
        flags = [f for f in (ctx.brk, "$ret" if has_ret else None) if f]
        if flags:
            stop = self.lookup(flags[0]).value
            for f in flags[1:]:
                stop = self.b.ori(stop, self.lookup(f).value)
            iop, tb, eb = self.b.if_(self.b.noti(stop), [ir.BOOL])
            outer = self.region(tb)
            self.b.yield_([self.now(s.cond)])
            self.b = Builder(eb)
            self.b.yield_([self.b.const(False, ir.BOOL)])
            self.b = outer
            c = iop.result
        else:
            c = self.now(s.cond)
        self.b.op("scf.condition", [c, *before.args])
        self.b = Builder(after)
        self.loop_body(None, None, names, after.args, body, ctx)
        self.b.yield_(self.values(names))
        self.b = prev
        self.rebind(names, op.results)
        self.loops.pop()
        self.scopes.pop()

    def s_Break(self, s):
        self.set(self.loops[-1].brk, self.b.const(True, ir.BOOL))

    def s_Continue(self, s):
        self.set(self.loops[-1].cont, self.b.const(True, ir.BOOL))

    def s_Return(self, s: A.Return):
        vals = self.return_values(s.value)
        for k, v in enumerate(vals):
            self.set(f"$rv{k}", v)
        self.set("$ret", self.b.const(True, ir.BOOL))

    def return_values(self, e: A.Expr) -> list[ir.Value]:
        if isinstance(e, A.TupleExpr):
            vals, types = [self.ev(i) for i in e.items], [i.ty for i in e.items]
        elif self.info.tuple_result:
            vals, types = self.ev_multi(e), list(e.ty.items)
        else:
            vals, types = [self.ev(e)], [e.ty]
        out = []
        for v, t, declared in zip(vals, types, self.info.results):
            if is_array(t):
                self.check_same_shape(v, t, declared, e.span, f"shape mismatch in return value: expected {declared}")
                v = self.fresh_owned(v)
            out.append(v)
        return out

    # ------------------------------------------------------------------ shape checks
    def dim_value(self, d):
        """The run-time value of a static dimension (a literal or a size variable)."""
        if isinstance(d, int):
            return self.b.i(d)
        return self.lookup(d).value

    def check_same_shape(self, v, actual, declared, span, msg, force=False, buf=None):
        """dad.check that array `v` (type `actual`) has the shape of `declared` (or of `buf`)."""
        conds = []
        for k, (da, dd) in enumerate(zip(actual.dims, declared.dims)):
            if same_dim(da, dd):
                continue
            want = self.b.dim(buf, k) if buf is not None else self.dim_value(dd)
            conds.append(self.b.cmpi("eq", self.b.dim(v, k), want))
        self.emit_check(conds, msg + f" (found {actual}, expected {declared})", span)

    def emit_check(self, conds, msg, span, details=()):
        """ValueError `msg` at `span` unless all `conds` hold; up to two i64 `details` fill
        `{d0}`, `{d1}` in `msg` (the actual sizes)."""
        if not conds:
            return
        c = conds[0]
        for x in conds[1:]:
            c = self.b.andi(c, x)
        self.b.op("dad.check", [c, *details], kind="ValueError", msg=msg, loc=span.loc)


class ModuleEmitter:
    def __init__(self, checked: CheckedProgram):
        self.checked = checked

    def emit(self) -> Module:
        m = Module()
        for info in self.checked.functions.values():
            if info.node is not None:  # derived functions are made from the IR, after emission
                m.add(FnEmitter(self, info).emit())
        m.derivations = list(self.checked.derivations)
        return m


def _apply_fast_math(m: Module):
    for f in m:
        for op in f.walk():
            if op.name in FAST_OPS or (dialect(op) == "math" and not isa(op, MATH_ABSI)
                                       and op.results and op.results[0].type.is_float):
                op.attrs["fastmath"] = "fast"


def emit_module(checked: CheckedProgram, fast_math: bool = False) -> Module:
    m = ModuleEmitter(checked).emit()
    if fast_math:
        _apply_fast_math(m)
    m.fast_math = fast_math
    return m
