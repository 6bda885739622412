"""Custom derivative rules: `fn f = custom(f_impl, jvp=f_jvp, vjp=f_vjp);`.

`f` computes what `f_impl` computes, but AD uses the user's rules instead of differentiating
`f_impl`: `f_jvp` has exactly the signature of `jvp(f_impl)` (every float parameter gets a
tangent) and `f_vjp` that of `vjp(f_impl)` (returns the results and one adjoint per float
parameter). Either may be left out; the mode without a rule differentiates `f_impl` itself.
The rules are ordinary functions, so every transform composes with them: forward mode over
a reverse-mode program that calls `f_vjp` differentiates `f_vjp` like any other function.

`custom_function` makes `f` (a call of `f_impl` carrying the attributes `custom_of`,
`custom_jvp`, `custom_vjp`); `trampoline` gives the transformations a one-call body to
differentiate when they are asked for a derivative of `f` itself.
"""
from __future__ import annotations

from ..lang.ir import Builder, Function, MemRefType, Module, Value
from ..lang.signature import parse_signature
from .signatures import ADError, derived_signature


def _shape(sig):
    return ([p.type for p in sig.params], list(sig.results))


def check_rule(module: Module, impl: str, kind: str, rule: str) -> None:
    want = derived_signature(kind, parse_signature(module[impl].attrs["sig"]), None)
    got = parse_signature(module[rule].attrs["sig"])
    if _shape(got) != _shape(want):
        raise ADError(f"the {kind} rule '{rule}' must have the signature of {kind}({impl}): "
                      f"{want}, not {got}")


def custom_function(module: Module, impl: str, new_name: str, jvp: str | None,
                    vjp: str | None) -> Function:
    if jvp is None and vjp is None:
        raise ADError("custom(...) needs jvp=NAME, vjp=NAME or both")
    for kind, rule in (("jvp", jvp), ("vjp", vjp)):
        if rule is not None:
            check_rule(module, impl, kind, rule)
    f = module[impl]
    attrs = {"sig": f.attrs["sig"], "custom_of": impl}
    if jvp:
        attrs["custom_jvp"] = jvp
    if vjp:
        attrs["custom_vjp"] = vjp
    new = module.add(Function(new_name, f.param_types, f.result_types, [p.name for p in f.params], attrs))
    b = Builder(new.body)
    b.ret(b.call(impl, list(new.params), f.result_types))
    return new


def trampoline(fn: Function) -> Function:
    """`fn`'s signature, body `return fn(params)`: what AD differentiates for `fn` itself."""
    t = Function(fn.name + ".trampoline", fn.param_types, fn.result_types,
                 [p.name for p in fn.params], dict(fn.attrs))
    b = Builder(t.body)
    b.ret(b.call(fn.name, list(t.params), fn.result_types))
    return t


def float_params(fn: Function) -> list[int]:
    return [k for k, p in enumerate(fn.params)
            if getattr(p.type, "is_float", False) or
            (isinstance(p.type, MemRefType) and p.type.elem.is_float)]


def zeros_like(b: Builder, v: Value) -> Value:
    t = v.type
    if isinstance(t, MemRefType):
        return b.alloc(t.elem, [b.dim(v, d) for d in range(t.rank)])
    return b.const(0.0, t)
