"""Names, types and symbolic shapes of a parsed `.dad` program.

Contract: `check(program)` annotates every expression with its type (`expr.ty`, see
`frontend.types`; no literal types remain afterwards), every `Name` with its binding kind, and
returns a `CheckedProgram` holding each function's signature; it raises one `CompileError` with
every mistake found, each at the offending expression. Rules: let/params/loop variables and
size variables are immutable, element updates only on `var` arrays, no shadowing of a visible
name, every path returns, int literals become floats where a float is expected and float
literals take the float type of their context, size variables agree at calls. Builtin calls are
typed by `frontend.typecheck_builtins`, a table keyed by `builtins.BUILTINS[name].kind`.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ..lang.signature import Param as SigParam, Signature
from . import ast as A
from .builtins import ADDED_2026, BUILTINS, CONSTANTS, TRANSFORMS, is_elementwise_call
from .diagnostics import Reporter
from .typecheck_builtins import builtin_call
from .types import (BOOL, ERROR, I64, LIT_FLOAT, LIT_INT, SCALARS, Array, Dyn, Scalar, Tuple,
                    conflicting_dim, default, elem, from_spec, is_array, is_one, same_dim, spec)

ARITH = {"+", "-", "*", "/", "%", "**"}
COMPARE = {"<", "<=", ">", ">=", "==", "!="}
LOGIC = {"and", "or"}


@dataclass
class FnInfo:
    name: str
    node: A.FnDef
    params: list[tuple[str, object]]   # (name, type)
    results: list[object]              # flattened result types
    tuple_result: bool
    size_vars: dict[str, tuple[int, int]] = field(default_factory=dict)  # var -> (param, axis)
    signature: Signature | None = None

    @property
    def ret_type(self):
        return Tuple(tuple(self.results)) if self.tuple_result else self.results[0]


@dataclass
class Derivation:
    """`name = kind(target, wrt=...)`, one transform (nested ones are split, inner first)."""
    name: str
    kind: str
    target: str
    wrt: list[str] | None
    span: A.Span
    internal: bool = False
    options: dict = field(default_factory=dict)  # e.g. checkpoint=true for reverse mode


@dataclass
class CheckedProgram:
    program: A.Program
    functions: dict[str, FnInfo]
    derived: list[A.DerivedDef]
    derivations: list[Derivation] = field(default_factory=list)


@dataclass
class Var:
    kind: str      # param sizevar let var loop
    ty: object
    span: A.Span
    dim: object = None  # a symbolic dimension this i64 is known to equal


def _children(e: A.Expr):
    """Sub-expressions whose literal type follows the parent's (for `fix`)."""
    if isinstance(e, A.Unary) and e.op == "-":
        return [e.operand]
    if isinstance(e, A.Binary) and e.op in ARITH:
        return [e.left, e.right] if e.op != "**" else [e.left, e.right]
    if isinstance(e, A.Call) and e.kind == "builtin" and is_elementwise_call(e.func, len(e.args)) \
            and BUILTINS[e.func].kind != "cast":
        return list(e.args)
    if isinstance(e, A.Call) and e.func in ("select", "where") and e.kind == "builtin":
        return list(e.args[1:])
    if isinstance(e, A.ArrayLit):
        return list(e.items)
    if isinstance(e, A.Index):            # `[1.0, 2.0][k]`: the literal array takes the type
        return [e.base]
    if isinstance(e, A.Call) and e.func == "stack" and isinstance(e.info, tuple):
        return [e.info[1]]                # the array literal stack stands for
    return []


def _did_you_mean(name: str, known) -> str:
    """ " (did you mean 'sum'?)" for a name close to a known one, else ""."""
    close = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Checker:
    def __init__(self, program: A.Program):
        self.prog = program
        self.rep = Reporter(program.source)
        self.functions: dict[str, FnInfo] = {}
        self.scopes: list[dict[str, Var]] = []
        self.loops = 0
        self.fn: FnInfo | None = None
        self.refused: set[str] = set()   # definitions already reported as errors

    def err(self, span: A.Span, msg: str):
        self.rep.error(span, msg)
        return ERROR

    # ------------------------------------------------------------------ program
    def run(self) -> CheckedProgram:
        derived = []
        defined: dict[str, A.Span] = {}
        for item in self.prog.items:
            if item.name in defined:
                self.err(item.name_span, f"duplicate definition of function '{item.name}'")
                continue
            if item.name in BUILTINS and item.name not in ADDED_2026:
                self.err(item.name_span, f"'{item.name}' is a builtin function and cannot be redefined")
                self.refused.add(item.name)   # uses of it are not reported again
                continue
            defined[item.name] = item.name_span
            if isinstance(item, A.FnDef):
                info = self.signature(item)
                if info is not None:
                    self.functions[item.name] = info
            else:
                derived.append(item)
        self.derivations: list[Derivation] = []
        self.check_derived(derived, defined)
        for info in self.functions.values():
            if info.node is not None:
                self.check_body(info)
        self.rep.raise_if_any()
        return CheckedProgram(self.prog, self.functions, derived, self.derivations)

    def check_derived(self, derived: list[A.DerivedDef], defined) -> None:
        """Signatures of derived functions, in an order where each target comes first."""
        pending = {d.name: d for d in derived}
        visiting: set[str] = set()

        def resolve(name: str, span) -> bool:
            if name in self.functions:
                return True
            if name not in pending:
                if name not in defined and name not in self.refused:
                    self.err(span, f"unknown function '{name}'" + _did_you_mean(name, [*defined]))
                return False
            if name in visiting:
                self.err(span, f"derived function '{name}' is defined in terms of itself")
                return False
            visiting.add(name)
            d = pending[name]
            ok = self.derive_transform(d.transform, d.name, internal=False)
            visiting.discard(name)
            pending.pop(name, None)
            return ok

        def derive_transform_targets(t: A.Transform) -> bool:
            if isinstance(t.fn, A.Transform):
                return derive_transform_targets(t.fn)
            return resolve(t.fn, t.fn_span)

        self._resolve_target = derive_transform_targets
        self._resolve_name = resolve
        for d in derived:
            if d.name in pending:
                resolve(d.name, d.name_span)

    def derive_transform(self, t: A.Transform, name: str, internal: bool) -> bool:
        from ..ad.signatures import ADError, derived_signature
        if t.name not in TRANSFORMS:
            self.err(t.name_span, f"unknown transform '{t.name}' (expected one of: {', '.join(sorted(TRANSFORMS))})")
            return False
        from ..ad import TRANSFORMS as IMPLEMENTED
        if t.name not in IMPLEMENTED:
            self.err(t.name_span, f"'{t.name}' is not implemented yet")
            return False
        if isinstance(t.fn, A.Transform):
            target = f"{name}.{t.fn.name}"
            if not self.derive_transform(t.fn, target, internal=True):
                return False
        else:
            if not self._resolve_target(t):
                return False
            target = t.fn
        wrt = None
        options = {}
        for opt in t.options:
            if t.name == "custom" and opt.name in ("jvp", "vjp"):
                if not isinstance(opt.value, str) or not self._resolve_name(opt.value, opt.span):
                    if not isinstance(opt.value, str):
                        self.err(opt.span, f"{opt.name}= names the function that is the rule")
                    return False
                options[opt.name] = opt.value
                continue
            if opt.name == "checkpoint" and t.name in ("grad", "value_and_grad", "vjp"):
                if not isinstance(opt.value, bool):
                    self.err(opt.span, "checkpoint= takes true or false")
                    return False
                options["checkpoint"] = opt.value
                continue
            if opt.name != "wrt" or t.name == "custom":
                allowed = {"custom": "jvp= or vjp="}.get(
                    t.name, "wrt= or checkpoint=" if t.name in ("grad", "value_and_grad", "vjp") else "wrt=")
                self.err(opt.span, f"unknown option '{opt.name}' for '{t.name}' (expected {allowed})")
                return False
            wrt = [opt.value] if isinstance(opt.value, str) else list(opt.value)
        tinfo = self.functions[target]
        try:
            if t.name == "custom":
                sig = tinfo.signature
                if not options:
                    raise ADError("custom(...) needs jvp=NAME, vjp=NAME or both")
                for kind, rule in options.items():
                    want = derived_signature(kind, sig, None)
                    got = self.functions[rule].signature
                    if [p.type for p in got.params] != [p.type for p in want.params] or \
                            list(got.results) != list(want.results):
                        raise ADError(f"the {kind} rule '{rule}' must have the signature of "
                                      f"{kind}({target}): {want}, not {got}")
            else:
                sig = derived_signature(t.name, tinfo.signature, wrt)
        except ADError as exc:
            self.err(t.span, f"cannot derive '{name}' = {t.name}({target}): {exc}")
            return False
        params = [(p.name, from_spec(p.type)) for p in sig.params]
        results = [from_spec(r) for r in sig.results]
        size_vars = {}
        for k, (_, ty) in enumerate(params):
            if isinstance(ty, Array):
                for axis, d in enumerate(ty.dims):
                    if isinstance(d, str):
                        size_vars.setdefault(d, (k, axis))
        self.functions[name] = FnInfo(name, None, params, results, sig.tuple_result or len(results) != 1,
                                      size_vars, sig)
        self.derivations.append(Derivation(name, t.name, target, wrt, t.span, internal, options))
        return True

    def resolve_type(self, t: A.TypeExpr, allow_dyn=False):
        if t.name not in SCALARS:
            return self.err(t.span, f"unknown type '{t.name}'")
        s = SCALARS[t.name]
        if t.dims is None:
            return s
        return Array(s, tuple(d.value for d in t.dims))

    def signature(self, fn: A.FnDef) -> FnInfo | None:
        params, seen, ok = [], {}, True
        size_vars: dict[str, tuple[int, int]] = {}
        for p in fn.params:
            if p.name in seen:
                self.err(p.span, f"duplicate parameter '{p.name}'")
                ok = False
            seen[p.name] = p
            ty = self.resolve_type(p.type)
            ok &= ty is not ERROR
            params.append((p.name, ty))
        for k, (pname, ty) in enumerate(params):
            if isinstance(ty, Array):
                for axis, d in enumerate(ty.dims):
                    if isinstance(d, str):
                        if d in seen:
                            dspan = fn.params[k].type.dims[axis].span
                            self.err(dspan, f"size variable '{d}' has the same name as a parameter")
                            ok = False
                        size_vars.setdefault(d, (k, axis))
        rets = fn.ret.items if isinstance(fn.ret, A.TupleTypeExpr) else [fn.ret]
        results = []
        for r in rets:
            ty = self.resolve_type(r)
            ok &= ty is not ERROR
            if isinstance(ty, Array):
                for d, dn in zip(ty.dims, r.dims):
                    if isinstance(d, str) and d not in size_vars:
                        self.err(dn.span, f"size variable '{d}' in the return type is not bound by any parameter")
                        ok = False
            results.append(ty)
        if not ok:
            return None
        sig = Signature(tuple(SigParam(n, spec(t)) for n, t in params), tuple(spec(t) for t in results),
                        tuple_result=isinstance(fn.ret, A.TupleTypeExpr))
        return FnInfo(fn.name, fn, params, results, isinstance(fn.ret, A.TupleTypeExpr), size_vars, sig)

    # ------------------------------------------------------------------ scopes
    def lookup(self, name: str) -> Var | None:
        for s in reversed(self.scopes):
            if name in s:
                return s[name]
        return None

    def declare(self, name: str, var: Var):
        if self.lookup(name) is not None:
            self.err(var.span, f"'{name}' is already defined")
        self.scopes[-1][name] = var

    def check_body(self, info: FnInfo):
        self.fn = info
        self.scopes = [{}]
        for (name, ty), p in zip(info.params, info.node.params):
            self.scopes[0][name] = Var("param", ty, p.span)
        for sv in info.size_vars:
            self.scopes[0][sv] = Var("sizevar", I64, info.node.name_span, dim=sv)
        self.block(info.node.body)
        if not self.always_returns(info.node.body.stmts):
            self.err(info.node.name_span, f"function '{info.name}' may reach its end without returning a value")

    def always_returns(self, stmts) -> bool:
        for s in stmts:
            if isinstance(s, A.Return):
                return True
            if isinstance(s, A.If) and s.orelse is not None and \
                    self.always_returns(s.then.stmts) and self.always_returns(s.orelse.stmts):
                return True
        return False

    # ------------------------------------------------------------------ statements
    def block(self, b: A.Block, extra: dict[str, Var] | None = None):
        self.scopes.append(dict(extra or {}))
        for s in b.stmts:
            getattr(self, "s_" + type(s).__name__)(s)
        self.scopes.pop()

    def s_Let(self, s: A.Let):
        if s.destructure:
            if s.type is not None:
                self.err(s.type.span, "a type annotation cannot be used when destructuring")
            t = self.infer(s.value)
            if isinstance(s.value, A.TupleExpr):
                for item in s.value.items:
                    self.fix(item, None)
            if t is ERROR:
                types = [ERROR] * len(s.names)
            elif not isinstance(t, Tuple):
                self.err(s.value.span, f"cannot destructure a value of type {t}: it is not a tuple")
                types = [ERROR] * len(s.names)
            elif len(t.items) != len(s.names):
                self.err(s.value.span, f"cannot destructure a tuple of {len(t.items)} values into {len(s.names)} names")
                types = [ERROR] * len(s.names)
            else:
                types = [default(x) for x in t.items]
        else:
            if s.type is not None:
                target = self.resolve_type(s.type)
                if isinstance(target, Array):
                    for d, dn in zip(target.dims, s.type.dims):
                        if isinstance(d, str) and self.lookup(d) is None:
                            self.err(dn.span, f"unknown size variable '{d}'")
                self.expect(s.value, target)
                t = target
            else:
                t = self.value(s.value)
                if isinstance(t, Tuple):
                    self.err(s.value.span, f"a tuple of {len(t.items)} values must be destructured: "
                                           f"{'var' if s.mutable else 'let'} (a, b, ...) = ...")
                    t = ERROR
            types = [t]
        kind = "var" if s.mutable else "let"
        for name, span, ty in zip(s.names, s.name_spans, types):
            dim = self.dim_of(s.value) if (ty == I64 and not s.mutable and not s.destructure) else None
            self.declare(name, Var(kind, ty, span, dim=dim if not isinstance(dim, Dyn) else None))

    def s_Assign(self, s: A.Assign):
        tgt = s.target
        if isinstance(tgt, A.Name):
            v = self.lookup(tgt.id)
            if v is None:
                self.err(tgt.span, f"unknown name '{tgt.id}'")
                self.value(s.value)
                return
            tgt.kind, tgt.ty = v.kind, v.ty
            msg = {"param": f"cannot assign to parameter '{tgt.id}'",
                   "let": f"cannot assign to '{tgt.id}': it is declared with 'let' (use 'var' for a mutable variable)",
                   "loop": f"cannot assign to loop variable '{tgt.id}'",
                   "sizevar": f"cannot assign to size variable '{tgt.id}'"}.get(v.kind)
            if msg:
                self.err(tgt.span, msg)
                self.value(s.value)
                return
            if isinstance(v.ty, Array) and s.op == "=" and isinstance(self.infer(s.value), Scalar):
                self.expect(s.value, v.ty.elem)  # `u = 0.0`: a scalar broadcasts
                return
            self.assign_value(s, v.ty)
            return
        # element update a[i, j] op= e
        base = tgt.base
        v = self.lookup(base.id)
        if v is None:
            self.err(base.span, f"unknown name '{base.id}'")
            self.value(s.value)
            return
        base.kind, base.ty = v.kind, v.ty
        if not isinstance(v.ty, Array):
            if v.ty is not ERROR:
                self.err(base.span, f"cannot index '{base.id}' of type {v.ty}")
            self.value(s.value)
            return
        if v.kind != "var":
            how = {"param": "it is a parameter", "let": "it is declared with 'let'"}.get(v.kind, "it is immutable")
            self.err(tgt.span, f"cannot update an element of '{base.id}': {how} (only 'var' arrays can be updated)")
        if len(tgt.indices) > v.ty.rank:
            self.err(tgt.span, f"element update of '{base.id}' needs at most {v.ty.rank} "
                               f"ind{'ex' if v.ty.rank == 1 else 'ices'}, got {len(tgt.indices)}")
            self.value(s.value)
            return
        for i in tgt.indices:
            if isinstance(i, A.Slice):
                self.index_expr(i.start), self.index_expr(i.stop)
                i.ty = I64
            else:
                self.index_expr(i)
        tt = self.indexed_type(v.ty, tgt.indices)
        tgt.ty = tt
        if isinstance(tt, Array):  # a row, a slice or a block: elementwise, a scalar broadcasts
            self.assign_part(s, tt)
            return
        self.assign_value(s, v.ty.elem)

    def assign_part(self, s: A.Assign, tt: Array):
        """`A[i] op= e`, `x[a..b] op= e`, `A[i, a..b] op= e`: `e` is a scalar or an array of
        the target's shape (checked at run time where the sizes are not known)."""
        t = self.infer(s.value)
        if t is ERROR:
            self.fix(s.value, None)
            return
        if isinstance(t, Array):
            self.expect(s.value, tt)
            return
        self.expect(s.value, tt.elem)

    def assign_value(self, s: A.Assign, ty):
        if ty is ERROR:
            self.value(s.value)
            return
        if s.op == "=":
            self.expect(s.value, ty)
            return
        op = s.op[0]
        t = self.infer(s.value)
        if t is ERROR:
            return
        res = self.arith(op, ty, t, A.Name(s.target.span, "_", ty=ty), s.value, s.span, broadcast=False)
        if res is ERROR:
            return
        if isinstance(res, Array) != isinstance(ty, Array) or elem(res) != elem(ty):
            self.err(s.span, f"type mismatch: '{s.op}' on {ty} with {t} gives {res}")
        self.fix(s.value, elem(ty))

    def s_If(self, s: A.If):
        self.cond(s.cond)
        self.block(s.then)
        if s.orelse is not None:
            self.block(s.orelse)

    def s_For(self, s: A.For):
        self.expect(s.start, I64, "loop bound")
        self.expect(s.stop, I64, "loop bound")
        if s.step is not None:
            if not (isinstance(s.step, A.IntLit) and s.step.value > 0):
                self.err(s.step.span, "the step of a for loop must be a positive integer literal")
            else:
                s.step.ty = I64
        self.loops += 1
        if self.lookup(s.var) is not None:
            self.err(s.var_span, f"'{s.var}' is already defined")
        self.block(s.body, {s.var: Var("loop", I64, s.var_span)})
        self.loops -= 1

    def s_While(self, s: A.While):
        self.cond(s.cond)
        self.loops += 1
        self.block(s.body)
        self.loops -= 1

    def s_Break(self, s):
        if not self.loops:
            self.err(s.span, "'break' outside a loop")

    def s_Continue(self, s):
        if not self.loops:
            self.err(s.span, "'continue' outside a loop")

    def s_Return(self, s: A.Return):
        info = self.fn
        if info.tuple_result:
            if isinstance(s.value, A.TupleExpr):
                if len(s.value.items) != len(info.results):
                    self.err(s.value.span, f"return type mismatch: '{info.name}' returns {len(info.results)} values, got {len(s.value.items)}")
                    return
                for item, rt in zip(s.value.items, info.results):
                    self.expect(item, rt, "return value")
                s.value.ty = Tuple(tuple(info.results))
                return
            t = self.infer(s.value)
            if t is not ERROR and t != Tuple(tuple(info.results)):
                if not (isinstance(t, Tuple) and len(t.items) == len(info.results) and
                        all(self.compatible(a, b) for a, b in zip(t.items, info.results))):
                    self.err(s.value.span, f"return type mismatch: expected {info.ret_type}, found {t}")
            return
        if isinstance(s.value, A.TupleExpr):
            self.err(s.value.span, f"return type mismatch: expected {info.results[0]}, found a tuple")
            return
        self.expect(s.value, info.results[0], "return value")

    # ------------------------------------------------------------------ expressions: entry points
    def value(self, e: A.Expr):
        """Infer and fix literal types to their defaults."""
        t = self.infer(e)
        if isinstance(t, Tuple):
            return t
        self.fix(e, None)
        return e.ty

    def cond(self, e: A.Expr):
        t = self.value(e)
        if t is not ERROR and t != BOOL:
            self.err(e.span, f"condition must be bool, found {t}")

    def index_expr(self, e: A.Expr):
        t = self.infer(e)
        if t is ERROR:
            return
        if t == LIT_INT or t == I64:
            self.fix(e, I64)
            if isinstance(e, A.Unary) and e.op == "-" and isinstance(e.operand, A.IntLit) \
                    and e.operand.value > 0:
                self.err(e.span, f"negative index -{e.operand.value}: indices count from 0, never "
                                 f"from the end (element -{e.operand.value} of x is "
                                 f"x[len(x) - {e.operand.value}])")
            return
        self.fix(e, None)
        self.err(e.span, f"index must be i64, found {e.ty}")

    def compatible(self, actual, target) -> bool:
        if isinstance(target, Array):
            return isinstance(actual, Array) and actual.elem == target.elem and actual.rank == target.rank \
                and not any(conflicting_dim(a, b) for a, b in zip(actual.dims, target.dims))
        return actual == target

    def expect(self, e: A.Expr, target, what: str = "value"):
        """Check that `e` can be used where `target` is expected (fixing literals)."""
        t = self.infer(e)
        if t is ERROR or target is ERROR:
            self.fix(e, None)
            return
        if isinstance(target, Scalar) and isinstance(t, Scalar) and t.is_literal:
            if t == LIT_FLOAT and not target.is_float:
                self.fix(e, None)
                self.err(e.span, f"type mismatch: expected {target}, found a float")
                return
            if t == LIT_INT and target.is_bool:
                self.fix(e, None)
                self.err(e.span, f"type mismatch: expected {target}, found an integer")
                return
            self.fix(e, target)
            return
        if isinstance(t, Array) and t.elem.is_literal:
            self.fix(e, target.elem if isinstance(target, Array) else None)
            t = e.ty
        else:
            self.fix(e, None)
        if isinstance(t, Tuple) or not self.compatible(t, target):
            if isinstance(t, Array) and isinstance(target, Array) and t.elem == target.elem and t.rank == target.rank:
                self.err(e.span, f"shape mismatch: expected {target}, found {t}")
            else:
                self.err(e.span, f"type mismatch: expected {target}, found {t}")

    def fix(self, e: A.Expr, target: Scalar | None):
        """Give literal-typed sub-expressions their final type (`target`, or the default)."""
        t = e.ty
        if isinstance(t, Scalar) and t.is_literal:
            new = target if target is not None and not (t == LIT_FLOAT and target.is_int) else default(t)
            if isinstance(e, A.Binary) and e.op in COMPARE | LOGIC:
                new = BOOL
            e.ty = new
            for c in _children(e):
                self.fix(c, new)
        elif isinstance(t, Array) and t.elem.is_literal:
            e.ty = Array(target or default(t.elem), t.dims)
            for c in _children(e):
                self.fix(c, target or default(t.elem))
        else:
            for c in _children(e):
                if isinstance(c.ty, (Scalar, Array)) and elem(c.ty).is_literal:
                    self.fix(c, elem(t) if isinstance(t, (Scalar, Array)) and t is not ERROR else None)

    def infer(self, e: A.Expr):
        if e.ty is not None:
            return e.ty
        e.ty = getattr(self, "e_" + type(e).__name__)(e)
        return e.ty

    # ------------------------------------------------------------------ expressions: nodes
    def e_IntLit(self, e): return LIT_INT
    def e_FloatLit(self, e): return LIT_FLOAT
    def e_BoolLit(self, e): return BOOL

    def e_Name(self, e: A.Name):
        v = self.lookup(e.id)
        if v is not None:
            e.kind = v.kind
            return v.ty
        if e.id in CONSTANTS:
            e.kind = "const"
            return LIT_FLOAT
        if e.id in self.functions or e.id in BUILTINS:
            return self.err(e.span, f"'{e.id}' is a function; call it with ({'...'})")
        names = [n for s in self.scopes for n in s] + list(CONSTANTS)
        return self.err(e.span, f"unknown name '{e.id}'" + _did_you_mean(e.id, names))

    def e_Unary(self, e: A.Unary):
        t = self.infer(e.operand)
        if t is ERROR:
            return ERROR
        if e.op == "not":
            if t != BOOL:
                return self.err(e.operand.span, f"'not' needs a bool operand, found {t}")
            return BOOL
        if isinstance(t, Tuple) or not elem(t).is_numeric:
            return self.err(e.operand.span, f"unary '-' needs a number, found {t}")
        return t

    def e_Binary(self, e: A.Binary):
        lt, rt = self.infer(e.left), self.infer(e.right)
        if lt is ERROR or rt is ERROR:
            return ERROR
        for side, t in ((e.left, lt), (e.right, rt)):
            if isinstance(t, Tuple):
                return self.err(side.span, "a tuple cannot be used in an expression")
        if e.op in LOGIC:
            for side, t in ((e.left, lt), (e.right, rt)):
                if t != BOOL:
                    return self.err(side.span, f"'{e.op}' needs bool operands, found {t}")
            return BOOL
        if e.op in COMPARE:
            if is_array(lt) or is_array(rt):    # elementwise: a bool array
                if elem(lt) == BOOL or elem(rt) == BOOL:
                    return self.err(e.span, f"comparison '{e.op}' of arrays needs numbers, found "
                                            f"{lt} and {rt}")
                r = self.arith(e.op, lt, rt, e.left, e.right, e.span, node=e)
                return r if r is ERROR else Array(BOOL, r.dims)
            if lt == BOOL or rt == BOOL:
                if lt != rt or e.op not in ("==", "!="):
                    return self.err(e.span, f"cannot compare {lt} with {rt} using '{e.op}'")
                return BOOL
            r = self.unify_scalars(lt, rt, e.left, e.right, e.span, f"'{e.op}'")
            if r is not ERROR and r.is_literal:
                self.fix(e.left, default(r)), self.fix(e.right, default(r))
            return BOOL if r is not ERROR else ERROR
        return self.arith(e.op, lt, rt, e.left, e.right, e.span, node=e)

    def unify_scalars(self, lt: Scalar, rt: Scalar, l, r, span, what):
        if lt == rt:
            return lt
        if lt.is_literal and rt.is_literal:
            return LIT_FLOAT
        if lt.is_literal or rt.is_literal:
            lit, conc, lit_e = (lt, rt, l) if lt.is_literal else (rt, lt, r)
            if conc.is_bool or (lit == LIT_FLOAT and not conc.is_float):
                return self.err(span, f"type mismatch in {what}: {lt} and {rt}")
            self.fix(lit_e, conc)
            return conc
        return self.err(span, f"type mismatch in {what}: {lt} and {rt} (no implicit conversion; "
                              f"use float(), int(), f32() or f64())")

    def arith(self, op, lt, rt, l, r, span, node: A.Binary | None = None, broadcast: bool = True):
        """Type of an arithmetic (elementwise when arrays are involved) binary operation. Arrays
        of different ranks broadcast as NumPy's on the trailing dimensions (`A + b` for
        `A: f64[n, h]`, `b: f64[h]`) when `broadcast`, and an axis of literal size 1 stretches
        to the other operand's (`A * c` for `c: f64[1, h]`); sizes not known to agree set
        `node.shape_check` (a run-time check)."""
        el, er = elem(lt), elem(rt)
        if el.is_bool or er.is_bool:
            return self.err(span, f"arithmetic '{op}' on bool ({lt} and {rt})")
        if op == "**" and (el.is_int and er.is_int) and not (el.is_literal and er.is_literal):
            if not (isinstance(r, A.IntLit)):
                return self.err(span, "integer '**' needs a non-negative integer literal exponent "
                                      "(use float() for a float power)")
        if is_array(lt) and is_array(rt) and (el == er or not (el.is_literal or er.is_literal)):
            s = el if el == er else self.err(span, f"type mismatch in '{op}': {lt} and {rt}")
        else:
            s = self.unify_scalars(el, er, l, r, span, f"'{op}'")
        if s is ERROR:
            return ERROR
        if is_array(lt) and is_array(rt):
            if lt.rank != rt.rank and not broadcast:
                return self.err(span, f"shape mismatch in '{op}': {lt} and {rt} have different ranks")
            hi, lo = (lt, rt) if lt.rank >= rt.rank else (rt, lt)
            dims = list(hi.dims)
            for k, b in enumerate(lo.dims):
                j = hi.rank - lo.rank + k
                a = hi.dims[j]
                if is_one(a) or is_one(b):   # a literal size 1 stretches (NumPy)
                    dims[j] = b if is_one(a) else a
                    continue
                if conflicting_dim(a, b):
                    what = "" if lt.rank == rt.rank else " (broadcasting matches the trailing dimensions)"
                    return self.err(span, f"shape mismatch in '{op}': {lt} and {rt}{what}")
                if not same_dim(a, b) and node is not None:
                    node.shape_check = True
                dims[j] = b if isinstance(a, Dyn) else a
            return Array(s, tuple(dims))
        if is_array(lt):
            return Array(s, lt.dims)
        if is_array(rt):
            return Array(s, rt.dims)
        if s.is_literal and op == "/" and lt == LIT_INT and rt == LIT_INT:
            return LIT_INT
        return s

    def e_Index(self, e: A.Index):
        t = self.infer(e.base)
        for i in e.indices:
            if isinstance(i, A.Slice):
                self.index_expr(i.start), self.index_expr(i.stop)
                i.ty = I64
            else:
                self.index_expr(i)
        if t is ERROR:
            return ERROR
        if not isinstance(t, Array):
            return self.err(e.base.span, f"cannot index a value of type {t}")
        if len(e.indices) > t.rank:
            return self.err(e.span, f"index rank mismatch: array of type {t} has rank {t.rank}, "
                                    f"indexed with {len(e.indices)} indices")
        return self.indexed_type(t, e.indices)

    @staticmethod
    def indexed_type(t: Array, indices):
        """The type of `t` indexed by `indices` (at most one per dimension): an index drops its
        dimension, a slice keeps it with a run-time size, unindexed trailing ones stay."""
        dims = [Dyn() for i in indices if isinstance(i, A.Slice)] + list(t.dims[len(indices):])
        return Array(t.elem, tuple(dims)) if dims else t.elem

    def e_Slice(self, e):
        return self.err(e.span, "a range is only allowed in 'for' loops and slices")

    def e_ArrayLit(self, e: A.ArrayLit):
        """`[a, b, c]`: scalars of one type (literals take it, as in arithmetic) give a vector;
        arrays of one type and shape give an array with a new first axis."""
        if not e.items:
            return self.err(e.span, "an empty array literal has no element type; use zeros(0)")
        types = [self.infer(i) for i in e.items]
        if ERROR in types:
            return ERROR
        for item, t in zip(e.items, types):
            if isinstance(t, Tuple):
                return self.err(item.span, "a tuple cannot be an element of an array literal")
        if all(not is_array(t) for t in types):
            el = types[0]
            for item, t in zip(e.items[1:], types[1:]):
                if t == el:
                    continue
                if el == BOOL or t == BOOL:
                    return self.err(item.span, f"array literal elements of different types: {el} and {t}")
                el = self.unify_scalars(el, t, e.items[0], item, item.span, "an array literal")
                if el is ERROR:
                    return ERROR
            if not el.is_literal:
                for item in e.items:
                    self.fix(item, el)
            return Array(el, (len(e.items),))
        first = types[0]
        base = default(first) if first.elem.is_literal else first
        for item, t in zip(e.items, types):
            el = default(t).elem if is_array(t) and t.elem.is_literal else elem(t)
            if not is_array(t) or t.rank != first.rank or el != base.elem \
                    or any(conflicting_dim(a, b) for a, b in zip(t.dims, first.dims)):
                return self.err(item.span, f"array literal elements must all be scalars or all arrays "
                                           f"of one type and shape: {first} and {t}")
        # sizes not known to agree are checked at run time (the emitter)
        dims = [d if all(same_dim(d, t.dims[a]) for t in types) else Dyn()
                for a, d in enumerate(first.dims)]
        return Array(first.elem, (len(e.items),) + tuple(dims))

    def e_TupleExpr(self, e: A.TupleExpr):
        items = [self.infer(i) for i in e.items]
        if ERROR in items:
            return ERROR
        return Tuple(tuple(items))

    def e_Call(self, e: A.Call):
        if e.func == "@":
            return self.matmul_operator(e)
        if e.func in self.functions:
            return self.user_call(e, self.functions[e.func])
        if e.func in BUILTINS:
            e.kind = "builtin"
            return builtin_call(self, e, BUILTINS[e.func])
        for a in e.args:
            self.value(a)
        if e.func in {d.name for d in self.prog.items}:
            return ERROR  # a derived function (already reported) or a function with a bad signature
        if e.func in TRANSFORMS:
            return self.err(e.func_span, f"'{e.func}' can only be used in a derived-function declaration: fn g = {e.func}(f);")
        return self.err(e.func_span, f"unknown function '{e.func}'"
                        + _did_you_mean(e.func, [*self.functions, *BUILTINS]))

    def matmul_operator(self, e: A.Call):
        """`a @ b` is `matmul(a, b)` (ranks 2, 2), `matvec(a, b)` (2, 1), `dot(a, b)` (1, 1) or
        `matvec(transpose(b), a)` (1, 2), as NumPy's (builtins cannot be redefined)."""
        lt, rt = self.infer(e.args[0]), self.infer(e.args[1])
        if lt is ERROR or rt is ERROR:
            return ERROR
        ranks = tuple(t.rank if is_array(t) else 0 for t in (lt, rt))
        if ranks == (1, 2):
            e.args = [A.Call(e.args[1].span, "transpose", e.func_span, [e.args[1]], []), e.args[0]]
        name = {(2, 2): "matmul", (2, 1): "matvec", (1, 1): "dot", (1, 2): "matvec"}.get(ranks)
        if name is None:
            return self.err(e.func_span, f"'@' needs arrays of rank 1 or 2 on both sides, found "
                                         f"{lt} and {rt}")
        e.func = name
        return self.e_Call(e)

    def user_call(self, e: A.Call, f: FnInfo):
        e.kind = "user"
        pnames = [n for n, _ in f.params]
        args: list = list(e.args)
        if e.kwargs:
            args = args + [None] * (len(pnames) - len(args)) if len(args) < len(pnames) else args
            for kw in e.kwargs:
                if kw.name not in pnames:
                    self.err(kw.span, f"'{f.name}' has no parameter '{kw.name}'")
                    continue
                k = pnames.index(kw.name)
                if k < len(args) and args[k] is not None:
                    self.err(kw.span, f"parameter '{kw.name}' given twice")
                    continue
                args[k] = kw.value
            if None in args:
                missing = [pnames[k] for k, a in enumerate(args) if a is None]
                return self.err(e.span, f"missing argument '{missing[0]}' in call to '{f.name}'")
            e.args, e.kwargs = args, []
        if len(e.args) != len(f.params):
            for a in e.args:
                self.value(a)
            return self.err(e.span, f"'{f.name}' takes {len(f.params)} argument{'s' * (len(f.params) != 1)}, got {len(e.args)}")
        bound: dict[str, object] = {}
        ok = True
        for a, (pname, pt) in zip(e.args, f.params):
            if isinstance(pt, Array):
                at = self.value(a)
                if at is ERROR:
                    ok = False
                    continue
                if not (isinstance(at, Array) and at.elem == pt.elem and at.rank == pt.rank):
                    self.err(a.span, f"argument '{pname}' of '{f.name}' must be {pt}, found {at}")
                    ok = False
                    continue
                for d_p, d_a in zip(pt.dims, at.dims):
                    if isinstance(d_p, int):
                        if conflicting_dim(d_p, d_a):
                            self.err(a.span, f"argument '{pname}' of '{f.name}' must be {pt}, found {at}")
                            ok = False
                    elif d_p in bound:
                        if conflicting_dim(bound[d_p], d_a):
                            self.err(a.span, f"conflicting sizes for size variable '{d_p}' in call to "
                                             f"'{f.name}': {bound[d_p]} and {d_a}")
                            ok = False
                    else:
                        bound[d_p] = d_a
            else:
                self.expect(a, pt, f"argument '{pname}'")
        if not ok:
            return ERROR

        def subst(t):
            if isinstance(t, Array):
                return Array(t.elem, tuple(bound.get(d, d) if isinstance(d, str) else d for d in t.dims))
            return t
        results = [subst(t) for t in f.results]
        return Tuple(tuple(results)) if f.tuple_result else results[0]

    # ------------------------------------------------------------------ symbolic dims
    def dim_of(self, e: A.Expr):
        if isinstance(e, A.IntLit):
            return e.value
        if isinstance(e, A.Name):
            v = self.lookup(e.id)
            if v is not None and v.dim is not None:
                return v.dim
        if isinstance(e, A.Call) and e.func in ("len", "rows", "cols") and e.kind == "builtin" \
                and len(e.args) == 1 and isinstance(e.args[0].ty, Array):
            t = e.args[0].ty
            k = 1 if e.func == "cols" else 0
            if k < t.rank:
                return t.dims[k]
        return Dyn()


def check(program: A.Program) -> CheckedProgram:
    """Type-check `program` in place; raises CompileError with every mistake."""
    return Checker(program).run()
