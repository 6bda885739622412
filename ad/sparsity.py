"""Jacobian sparsity patterns, derived from the IR like a tangent program.

`sparsity_function(module, name, wrt, new_name)` adds `new_name(params..., x_mask) ->
(results..., result_masks)`: forward mode where a tangent is an i64 bit set instead of a
number. Seeding bit b of `x_mask[j]` marks input j; every differentiable op ORs its operands'
sets, loads, stores, loops, branches and calls move them like tangents, and ops with
derivative 0 (comparisons, floor, integer arithmetic) drop them. Bit b of a result's set then
says that the result depends on the input marked with bit b: 64 inputs per sweep. The
pattern is that of the data flow (control dependence does not count), a superset of the
Jacobian's nonzeros at every point.
"""
from __future__ import annotations

from ..lang.ir import I64, Builder, Function, MemRefType, Module
from ..lang.signature import Param, Signature, TypeSpec, parse_signature
from .activity import analyze
from .forward import _Forward, wrt_params
from .rules import NONDIFF


class _Sparsity(_Forward):
    kind = "sparsity"

    def tangent_type(self, t):
        if isinstance(t, MemRefType):
            return MemRefType(I64, t.rank) if t.elem.is_float else t
        return I64 if getattr(t, "is_float", False) else t

    def derive_callee(self, name: str, wrt: list[str], new_name: str) -> None:
        sparsity_function(self.module, name, wrt, new_name, internal=True)

    def simple(self, op, b: Builder) -> None:
        self.clone(op, b)
        if op.name in NONDIFF or not any(self.act.active(r) for r in op.results):
            return
        sets = [self.dots(o)[0] for o in op.operands if self.dots(o) is not None]
        if not sets:
            return
        acc = sets[0]
        for s in sets[1:]:
            acc = b.one("arith.ori", [acc, s], I64)
        self.tan[op.results[0]] = [acc]


def _mask_spec(t: TypeSpec) -> TypeSpec:
    return TypeSpec("i64", t.dims) if t.dtype in ("f64", "f32") else t


def sparsity_function(module: Module, name: str, wrt: list[str] | None, new_name: str,
                      internal: bool = False) -> Function:
    fn = module[name]
    if fn.attrs.get("custom_of"):
        fn = module[fn.attrs["custom_of"]]
    xs = wrt_params(fn, wrt)
    sp = _Sparsity(module, fn, analyze(fn, xs), 1)
    sig = parse_signature(fn.attrs["sig"])
    taken = {p.name for p in sig.params}
    extra = []
    for p in xs:
        nm = p.name + "_mask"
        while nm in taken:
            nm += "_"
        taken.add(nm)
        extra.append(Param(nm, _mask_spec(sig.params[fn.params.index(p)].type)))
    new_sig = Signature(sig.params + tuple(extra), sig.results + tuple(_mask_spec(r) for r in sig.results),
                        tuple_result=True)
    attrs = {"sig": str(new_sig)}
    if internal:
        attrs["internal"] = True
    params = list(fn.param_types) + [sp.tangent_type(p.type) for p in xs]
    results = list(fn.result_types) + [sp.tangent_type(t) for t in fn.result_types]
    new = module.add(Function(new_name, params, results, [p.name for p in new_sig.params], attrs))
    n = len(fn.params)
    for old, p in zip(fn.params, new.params):
        sp.env[old] = p
    for i, p in enumerate(xs):
        sp.tan[p] = [new.params[n + i]]
    sp.block(fn.body, Builder(new.body))
    return new
