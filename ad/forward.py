"""Forward mode: a function's tangent program, as a transformation from IR to IR.

`jvp_function(module, name, wrt, new_name, width=1)` adds to `module` (and returns) the
function `new_name(params..., p_dot...) -> (results..., results_dot...)` that computes the
primal and, in the same sweep, the tangents of its results given tangents of the `wrt`
parameters. With `width = k` every `wrt` parameter takes k tangents and every result gives
k tangents (vector mode: k directions for the price of one primal), in the order
`(results..., r1_dot_0..k-1, r2_dot_0..k-1, ...)`.

Only active values (see `ad.activity`) get tangent code. The additions a tangent rule emits
for an op that may be reordered (`fastmath`, e.g. a builtin reduction's accumulation) may be
reordered too: the tangent of such a sum is the same kind of sum. Tangents of scalars are SSA values
named `%v.dot`; tangents of arrays are shadow arrays allocated, viewed, loaded, stored and
freed alongside their primal. Structured ops carry tangents as extra loop-carried values or
`scf.if` results. A call of an active function calls that function's own tangent function,
derived once per combination of active arguments and reused.
"""
from __future__ import annotations

from ..lang.ir import Block, Builder, Function, MemRefType, Module, Op, Value
from ..lang.signature import Param, Signature, parse_signature
from .activity import Activity, _can_be_active, analyze
from .rules import NONDIFF, RULES
from .signatures import ADError, derived_signature, unique_name
from ..lang.ops import has_trait


# the ops a tangent of a sum is made of, which inherit the sum's licence to be reordered
LINEAR_FLOAT = ("arith.addf", "arith.subf", "arith.negf")


class _Forward:
    def __init__(self, module: Module, fn: Function, act: Activity, width: int):
        self.module, self.fn, self.act, self.k = module, fn, act, width
        self.env: dict[Value, Value] = {}
        self.tan: dict[Value, list[Value]] = {}
        self.tape_tangents: dict = {}  # tape id -> whether its push carried tangents
        self.tape_tangent_ids: dict = {}  # tape id -> the ids of its tangents' push/pop pairs
        self.next_tape_id: int | None = None

    # ------------------------------------------------------------------ tangents
    def get(self, v: Value) -> Value:
        return self.env[v]

    def dots(self, v: Value) -> list[Value] | None:
        return self.tan.get(v)

    def tangent_type(self, t):
        """The type of a tangent of a value of type `t` (its own type, in forward mode)."""
        return t

    def zero(self, b: Builder, v: Value) -> list[Value]:
        """Explicit zero tangents of `v` (scalars: constants; arrays: zero-filled shadows)."""
        t = self.tangent_type(v.type)
        if isinstance(t, MemRefType):
            p = self.env[v]
            dims = [b.dim(p, d) for d in range(t.rank)]
            return [b.alloc(t.elem, dims, _dot_name(v, j, self.k)) for j in range(self.k)]
        return [b.const(0, t) for _ in range(self.k)]

    def dots_or_zero(self, b: Builder, v: Value) -> list[Value]:
        d = self.dots(v)
        return d if d is not None else self.zero(b, v)

    # ------------------------------------------------------------------ walking
    def block(self, old: Block, b: Builder) -> None:
        for op in old.ops:
            handler = getattr(self, "op_" + op.name.replace(".", "_"), None)
            if handler is not None:
                handler(op, b)
            elif op.name in RULES or op.name in NONDIFF:
                self.simple(op, b)
            else:
                raise ADError(f"forward mode has no rule for op '{op.name}'")

    def clone(self, op: Op, b: Builder, operands=None) -> Op:
        new = b.op(op.name, operands if operands is not None else [self.env[o] for o in op.operands],
                   [r.type for r in op.results], names=[r.name for r in op.results], **op.attrs)
        for r, nr in zip(op.results, new.results):
            self.env[r] = nr
        return new

    def simple(self, op: Op, b: Builder) -> None:
        new = self.clone(op, b)
        if op.name in NONDIFF or not any(self.act.active(r) for r in op.results):
            return
        rule = RULES[op.name](b, new.operands, new.results[0])
        ins = [self.dots(o) for o in op.operands]
        outs = []
        start = len(b.block.ops)
        for j in range(self.k):
            t = rule.tangent([d[j] if d is not None else None for d in ins])
            if t is None:
                break
            if t.name is None and op.results[0].name:
                t.name = _dot_name(op.results[0], j, self.k)
            outs.append(t)
        if len(outs) == self.k:
            self.tan[op.results[0]] = outs
        fm = op.attrs.get("fastmath")
        if fm is not None:  # the tangent of a reordered sum is a sum that may be reordered
            for t in b.block.ops[start:]:
                if t.name in LINEAR_FLOAT:
                    t.attrs.setdefault("fastmath", fm)

    # ------------------------------------------------------------------ memory
    def op_memref_alloc(self, op, b):
        new = self.clone(op, b)
        if self.act.active(op.results[0]):
            t = self.tangent_type(op.results[0].type)
            self.tan[op.results[0]] = [b.alloc(t.elem, list(new.operands), _dot_name(op.results[0], j, self.k))
                                       for j in range(self.k)]

    def op_memref_dealloc(self, op, b):
        self.clone(op, b)
        for s in self.dots(op.operands[0]) or []:
            b.dealloc(s)

    def _view(self, op, b):
        new = self.clone(op, b)
        src = self.dots(op.operands[0])
        if src is not None and self.act.active(op.results[0]):
            self.tan[op.results[0]] = [
                b.op(op.name, [s, *new.operands[1:]], [self.tangent_type(new.results[0].type)],
                     **op.attrs).results[0]
                for s in src]

    op_memref_row = op_memref_slice = op_memref_collapse = _view

    def op_memref_load(self, op, b):
        new = self.clone(op, b)
        src = self.dots(op.operands[0])
        if src is not None and self.act.active(op.results[0]):
            idx = new.operands[1:]
            self.tan[op.results[0]] = [b.load(s, idx, checked=False) for s in src]

    def written_dots(self, op) -> list[Value] | None:
        """The tangents of the array `op` writes (operand 1); None when it is inactive. An
        active array always has them: dropping the write's tangent would be silently wrong."""
        arr = op.operands[1]
        dst = self.dots(arr)
        if dst is None and self.act.active(arr):
            raise ADError(f"internal error: active array '{arr.name or '?'}' written by "
                          f"{op.name} has no tangent")
        return dst

    def op_memref_store(self, op, b):
        new = self.clone(op, b)
        dst = self.written_dots(op)
        if dst is None:
            return
        vals = self.dots_or_zero(b, op.operands[0])
        for v, s in zip(vals, dst):
            b.store(v, s, new.operands[2:], checked=False)

    def op_memref_copy(self, op, b):
        self.clone(op, b)
        dst = self.written_dots(op)
        if dst is None:
            return
        src = self.dots_or_zero(b, op.operands[0])
        for s, d in zip(src, dst):
            b.op("memref.copy", [s, d])

    def op_memref_dim(self, op, b):
        self.clone(op, b)

    # ------------------------------------------------------------------ control flow
    def _carried(self, group_values) -> list[int]:
        return [k for k, vs in enumerate(group_values) if any(self.act.active(v) for v in vs)]

    def op_scf_for(self, op, b):
        body = op.regions[0].block
        active = self._carried([[body.args[1 + k], r] for k, r in enumerate(op.results)])
        inits = [self.env[o] for o in op.operands[3:]]
        tinits = [t for k in active for t in self.dots_or_zero(b, op.operands[3 + k])]
        lb, ub, step = (self.env[o] for o in op.operands[:3])
        names = [a.name for a in body.args[1:]] + [_dot_name(body.args[1 + k], j, self.k)
                                                  for k in active for j in range(self.k)]
        new, nbody = b.for_(lb, ub, step, inits + tinits, body.args[0].name, names,
                            [r.name for r in op.results] +
                            [_dot_name(op.results[k], j, self.k) for k in active for j in range(self.k)])
        if "loc" in op.attrs:  # the source loop, for warnings about the derived one
            new.attrs["loc"] = op.attrs["loc"]
        n = len(op.results)
        self.env[body.args[0]] = nbody.args[0]
        for k in range(n):
            self.env[body.args[1 + k]] = nbody.args[1 + k]
            self.env[op.results[k]] = new.results[k]
        self._bind_tangents(active, [body.args[1 + k] for k in range(n)], nbody.args[1 + n:])
        self._bind_tangents(active, op.results, new.results[n:])
        bb = Builder(nbody)
        self.block(body, bb)
        self._yield(body.terminator, active, bb, "scf.yield", [])

    def _bind_tangents(self, active, olds, news):
        news = list(news)
        for i, k in enumerate(active):
            self.tan[olds[k]] = news[i * self.k:(i + 1) * self.k]

    def _yield(self, term, active, b, name, prefix):
        vals = [self.env[v] for v in term.operands[len(prefix):]]
        tv = [t for k in active for t in self.dots_or_zero(b, term.operands[len(prefix) + k])]
        b.op(name, [self.env[p] for p in prefix] + vals + tv)

    def op_scf_if(self, op, b):
        then, other = (r.block for r in op.regions)
        groups = [[r] for r in op.results]
        active = self._carried(groups)
        types = [r.type for r in op.results] + [self.tangent_type(op.results[k].type)
                                                for k in active for _ in range(self.k)]
        names = [r.name for r in op.results] + [_dot_name(op.results[k], j, self.k)
                                                for k in active for j in range(self.k)]
        new, nt, ne = b.if_(self.env[op.operands[0]], types, names)
        for old, nb in ((then, nt), (other, ne)):
            bb = Builder(nb)
            self.block(old, bb)
            self._yield(old.terminator, active, bb, "scf.yield", [])
        n = len(op.results)
        for k in range(n):
            self.env[op.results[k]] = new.results[k]
        self._bind_tangents(active, op.results, new.results[n:])

    def op_scf_while(self, op, b):
        before, after = (r.block for r in op.regions)
        n = len(op.results)
        active = self._carried([[before.args[k], after.args[k], op.results[k]] for k in range(n)])
        inits = [self.env[o] for o in op.operands]
        tinits = [t for k in active for t in self.dots_or_zero(b, op.operands[k])]
        names = [a.name for a in before.args] + [_dot_name(before.args[k], j, self.k)
                                                for k in active for j in range(self.k)]
        new, nb, na = b.while_(inits + tinits, names)
        if "loc" in op.attrs:
            new.attrs["loc"] = op.attrs["loc"]
        for old, nblk in ((before, nb), (after, na)):
            for k in range(n):
                self.env[old.args[k]] = nblk.args[k]
            self._bind_tangents(active, old.args, nblk.args[n:])
        for k in range(n):
            self.env[op.results[k]] = new.results[k]
        self._bind_tangents(active, op.results, new.results[n:])
        bb = Builder(nb)
        self.block(before, bb)
        cond = before.terminator
        self._yield(cond, active, bb, "scf.condition", [cond.operands[0]])
        ba = Builder(na)
        self.block(after, ba)
        self._yield(after.terminator, active, ba, "scf.yield", [])

    # ------------------------------------------------------------------ tapes (of reverse mode)
    def _tangent_tape_ids(self, tape_id) -> list[int]:
        """Fresh ids for the pushes and pops of the tangents of one recorded value, so that
        every push/pop pair of the derived function has an id of its own."""
        if tape_id not in self.tape_tangent_ids:
            if self.next_tape_id is None:
                self.next_tape_id = 1 + max([o.attrs.get("tape", 0) for o in self.fn.walk()
                                             if has_trait(o, "tape")] + [0])
            self.tape_tangent_ids[tape_id] = list(range(self.next_tape_id, self.next_tape_id + self.k))
            self.next_tape_id += self.k
        return self.tape_tangent_ids[tape_id]

    def op_dad_tape_push(self, op, b):
        """Push the tangents after the value, when it has them; its pop takes them back."""
        self.clone(op, b)
        d = self.dots(op.operands[0])
        if op.attrs.get("xfn") and _can_be_active(op.operands[0]):
            d = self.dots_or_zero(b, op.operands[0])  # its pop, in another function, takes them
        tape_id = op.attrs.get("tape")
        self.tape_tangents[tape_id] = d is not None
        level = op.attrs.get("level", 0)
        for t, tid in zip(d or [], self._tangent_tape_ids(tape_id)):
            b.op("dad.tape_push", [t], tape=tid, level=level)

    def op_dad_tape_pop(self, op, b):
        r = op.results[0]
        tape_id = op.attrs.get("tape")
        if self.tape_tangents.get(tape_id) or (op.attrs.get("xfn") and _can_be_active(r)):
            ids = self._tangent_tape_ids(tape_id)
            dots = [b.op("dad.tape_pop", [], [self.tangent_type(r.type)], names=[_dot_name(r, j, self.k)],
                         tape=ids[self.k - 1 - j], level=op.attrs.get("level", 0)).results[0]
                    for j in range(self.k)]
            self.tan[r] = dots[::-1]
        self.clone(op, b)

    def op_scf_yield(self, op, b):  # handled by the parent op
        pass

    op_scf_condition = op_scf_yield

    def op_func_call(self, op, b):
        callee = self.module[op.attrs["callee"]]
        mask = [self.act.active(o) and self.dots(o) is not None for o in op.operands]
        records = callee.attrs.get("records")
        if records:  # a half of a split adjoint (`ad.recursive`): its tape records carry
            # tangents, so both halves are always differentiated, every float argument active
            mask = [_can_be_active(o) for o in op.operands]
        elif not any(mask) or not any(self.act.active(r) for r in op.results):
            self.clone(op, b)
            for r in op.results:
                # constant inputs give a constant result, but an array result can still be
                # active (a later store or update makes it varied): its tangent starts at zero
                if isinstance(r.type, MemRefType) and self.act.active(r):
                    self.tan[r] = self.zero(b, r)
            return
        if callee.attrs.get("custom_jvp") and self.kind == "jvp":
            return self._custom_jvp(op, b, callee)
        if callee.attrs.get("custom_of"):  # a custom rule for reverse mode only
            callee = self.module[callee.attrs["custom_of"]]
        wrt = [p.name for p, m in zip(callee.params, mask) if m]
        dname = derived_name(callee.name, self.kind, wrt, self.k)
        if dname not in self.module.functions:
            self.derive_callee(callee.name, wrt, dname)
        derived = self.module[dname]
        args = [self.env[o] for o in op.operands]
        targs = [t for o, m in zip(op.operands, mask) if m for t in self.dots_or_zero(b, o)]
        n = len(op.results)
        rtypes = derived.result_types
        names = [r.name for r in op.results] + [_dot_name(op.results[i], j, self.k)
                                                for i in range(n) for j in range(self.k)]
        new = b.op("func.call", args + targs, rtypes, names=names, callee=dname,
                   **{k: v for k, v in op.attrs.items() if k in ("loc", "records")})
        for i, r in enumerate(op.results):
            self.env[r] = new.results[i]
            self.tan[r] = new.results[n + i * self.k: n + (i + 1) * self.k]

    kind = "jvp"

    def derive_callee(self, name: str, wrt: list[str], new_name: str) -> None:
        jvp_function(self.module, name, wrt, new_name, self.k, internal=True)

    def _custom_jvp(self, op, b, callee):
        """The user's tangent rule: every float parameter gets a tangent (zero if none),
        one call per direction of vector mode."""
        from .custom import float_params, zeros_like
        rule = self.module[callee.attrs["custom_jvp"]]
        args = [self.env[o] for o in op.operands]
        n = len(op.results)
        outs, dots = None, [[] for _ in range(n)]
        for j in range(self.k):
            tans = []
            for k in float_params(callee):
                d = self.dots(op.operands[k])
                tans.append(d[j] if d is not None else zeros_like(b, args[k]))
            res = b.op("func.call", args + tans, rule.result_types, callee=rule.name).results
            outs = outs or res[:n]
            for i in range(n):
                dots[i].append(res[n + i])
        for i, r in enumerate(op.results):
            self.env[r] = outs[i]
            self.tan[r] = dots[i]

    def op_func_return(self, op, b):
        vals = [self.env[v] for v in op.operands]
        tv = [t for v in op.operands for t in self.dots_or_zero(b, v)]
        b.ret(vals + tv)


def _dot_name(v: Value, j: int, k: int) -> str | None:
    if not v.name:
        return None
    return f"{v.name}.dot" if k == 1 else f"{v.name}.dot{j}"


def derived_name(fname: str, kind: str, wrt: list[str], width: int = 1) -> str:
    suffix = "_".join(wrt)
    return f"{fname}.{kind}" + (f".{suffix}" if suffix else "") + (f".k{width}" if width > 1 else "")


def wrt_params(fn: Function, wrt: list[str] | None) -> list[Value]:
    by_name = {p.name: p for p in fn.params}
    if wrt is None:
        return [p for p in fn.params if p.type.is_float or
                (isinstance(p.type, MemRefType) and p.type.elem.is_float)]
    out = []
    for w in wrt:
        if w not in by_name:
            raise ADError(f"'{fn.name}' has no parameter '{w}'")
        p = by_name[w]
        if not (p.type.is_float or (isinstance(p.type, MemRefType) and p.type.elem.is_float)):
            raise ADError(f"cannot differentiate with respect to '{w}': it is not a float")
        out.append(p)
    return out


def jvp_signature(sig: Signature, wrt: list[str], width: int = 1) -> Signature:
    if width == 1:
        return derived_signature("jvp", sig, wrt)
    taken = {p.name for p in sig.params}
    by_name = {p.name: p for p in sig.params}
    extra = []
    for w in wrt:
        for j in range(width):
            base = f"{w}_dot" if width == 1 else f"{w}_dot{j}"
            extra.append(Param(unique_name(base, taken), by_name[w].type))
    results = tuple(sig.results) + tuple(r for r in sig.results for _ in range(width))
    return Signature(tuple(sig.params) + tuple(extra), results, tuple_result=True)


def jvp_function(module: Module, name: str, wrt: list[str] | None, new_name: str,
                 width: int = 1, internal: bool = False) -> Function:
    fn = module[name]
    if fn.attrs.get("custom_of"):  # differentiate a call of it, so its rule is used
        from .custom import trampoline
        fn = trampoline(fn)
    wrt_vals = wrt_params(fn, wrt)
    wrt_names = [p.name for p in wrt_vals]
    act = analyze(fn, wrt_vals)
    sig = jvp_signature(parse_signature(fn.attrs["sig"]), wrt_names, width)
    params = list(fn.param_types) + [p.type for p in wrt_vals for _ in range(width)]
    pnames = [p.name for p in sig.params]
    results = list(fn.result_types) + [t for t in fn.result_types for _ in range(width)]
    attrs = {"sig": str(sig)}
    if internal:
        attrs["internal"] = True
    if fn.attrs.get("records"):
        attrs["records"] = True
    new = Function(new_name, params, results, pnames, attrs)
    module.add(new)
    fw = _Forward(module, fn, act, width)
    n = len(fn.params)
    for old, p in zip(fn.params, new.params):
        fw.env[old] = p
    for i, p in enumerate(wrt_vals):
        fw.tan[p] = new.params[n + i * width: n + (i + 1) * width]
    fw.block(fn.body, Builder(new.body))
    return new
