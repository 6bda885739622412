"""Signatures of derived functions, as LANGUAGE.md's table of transforms fixes them.

`derived_signature(kind, sig, wrt)` gives the `.dad` signature of `kind(f, wrt=...)` from
the signature of `f`; `resolve_wrt(kind, sig, wrt)` the parameters differentiated (default:
every float parameter). Both raise `ADError` with a message for the user when the transform
does not apply (a non-float `wrt`, `grad` of a function whose result is not a float
scalar, ...). Generated parameter names get `_` appended until they clash with nothing.
"""
from __future__ import annotations

from ..lang.signature import Param, Signature, TypeSpec


class ADError(Exception):
    """A function cannot be differentiated as asked (the message says why)."""


FLOATS = ("f64", "f32")
KINDS = ("grad", "value_and_grad", "jvp", "vjp", "jacobian", "hessian", "hvp", "vmap")


def unique_name(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def resolve_wrt(kind: str, sig: Signature, wrt: list[str] | None) -> list[Param]:
    by_name = {p.name: p for p in sig.params}
    if wrt is None:
        out = [p for p in sig.params if p.type.dtype in FLOATS]
        if not out:
            raise ADError(f"'{kind}' needs a float parameter to differentiate, and there is none")
    else:
        out = []
        for w in wrt:
            if w not in by_name:
                raise ADError(f"wrt names '{w}', which is not a parameter")
            if by_name[w].type.dtype not in FLOATS:
                raise ADError(f"cannot differentiate with respect to '{w}': "
                              f"it is {by_name[w].type.dtype}, not a float")
            if by_name[w] in out:
                raise ADError(f"'{w}' is named twice in wrt")
            out.append(by_name[w])
    if kind == "jacobian" and len(out) != 1:
        raise ADError(f"'{kind}' differentiates with respect to one parameter; "
                      f"say which with wrt=NAME (candidates: {', '.join(p.name for p in out)})")
    return out


def _scalar_float_result(kind: str, sig: Signature) -> TypeSpec:
    if len(sig.results) != 1 or sig.results[0].dims or sig.results[0].dtype not in FLOATS:
        got = str(sig).split("->")[1].strip()
        raise ADError(f"'{kind}' needs a function returning one float scalar, not {got}")
    return sig.results[0]


def _vmap_signature(sig: Signature, wrt: list[str] | None) -> Signature:
    """vmap(f, wrt=[x, ...]): the named parameters (default: all) and every result get a new
    leading axis of size `batch` (a fresh size variable)."""
    names = [p.name for p in sig.params] if wrt is None else list(wrt)
    known = {p.name for p in sig.params}
    for w in names:
        if w not in known:
            raise ADError(f"wrt names '{w}', which is not a parameter")
    if len(set(names)) != len(names):
        raise ADError("a parameter is named twice in wrt")
    if not names:
        raise ADError("'vmap' needs a parameter to batch")
    if not sig.results:
        raise ADError("'vmap' needs a function with a result")
    batch = unique_name("batch", {d for p in sig.params for d in p.type.dims if isinstance(d, str)})

    def add(t: TypeSpec) -> TypeSpec:
        return TypeSpec(t.dtype, (batch,) + t.dims)
    params = tuple(Param(p.name, add(p.type)) if p.name in names else p for p in sig.params)
    return Signature(params, tuple(add(r) for r in sig.results), tuple_result=sig.tuple_result)


def derived_signature(kind: str, sig: Signature, wrt: list[str] | None) -> Signature:
    if kind not in KINDS:
        raise ADError(f"unknown transform '{kind}'")
    if kind == "vmap":
        return _vmap_signature(sig, wrt)
    ps = resolve_wrt(kind, sig, wrt)
    taken = {p.name for p in sig.params}
    floats = [r for r in sig.results if r.dtype in FLOATS]
    if kind in ("jvp", "vjp", "jacobian") and len(floats) != len(sig.results):
        raise ADError(f"'{kind}' needs float results only")
    if kind == "grad":
        _scalar_float_result(kind, sig)
        return Signature(sig.params, tuple(p.type for p in ps), tuple_result=len(ps) > 1)
    if kind == "value_and_grad":
        r = _scalar_float_result(kind, sig)
        return Signature(sig.params, (r,) + tuple(p.type for p in ps), tuple_result=True)
    if kind == "jvp":
        extra = tuple(Param(unique_name(p.name + "_dot", taken), p.type) for p in ps)
        return Signature(sig.params + extra, sig.results + sig.results, tuple_result=True)
    if kind == "vjp":
        if len(sig.results) == 1 and not sig.tuple_result:
            names = ["out_bar"]
        else:
            names = [f"out{k}_bar" for k in range(len(sig.results))]
        extra = tuple(Param(unique_name(n, taken), r) for n, r in zip(names, sig.results))
        return Signature(sig.params + extra, sig.results + tuple(p.type for p in ps),
                         tuple_result=True)
    if kind == "hessian" and (len(ps) > 1 or wrt is not None and len(wrt) > 1):
        # the blocks H_pq = d(df/dp)/dq, row by row: (H_aa, H_ab, H_ba, H_bb)
        r = _scalar_float_result(kind, sig)
        return Signature(sig.params, tuple(TypeSpec(r.dtype, p.type.dims + q.type.dims)
                                           for p in ps for q in ps), tuple_result=True)
    if kind == "hvp" and (len(ps) > 1 or wrt is not None and len(wrt) > 1):
        _scalar_float_result(kind, sig)
        vs = tuple(Param(unique_name(p.name + "_v", taken), p.type) for p in ps)
        return Signature(sig.params + vs, tuple(p.type for p in ps), tuple_result=True)
    x = ps[0]
    if kind == "jacobian":
        if len(sig.results) != 1:
            raise ADError("'jacobian' needs a function with one result, not a tuple")
        out = sig.results[0]
        return Signature(sig.params, (TypeSpec(out.dtype, out.dims + x.type.dims),))
    if kind == "hessian":
        r = _scalar_float_result(kind, sig)
        return Signature(sig.params, (TypeSpec(r.dtype, x.type.dims + x.type.dims),))
    _scalar_float_result(kind, sig)  # hvp
    v = Param(unique_name("v", taken), x.type)
    return Signature(sig.params + (v,), (x.type,))
