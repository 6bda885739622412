"""Second order by composition: Hessian-vector products and Hessians.

A derivative is a program, so transforms compose: `hvp(f, wrt=x)` is forward mode applied to
the reverse-mode gradient (forward-over-reverse: one tangent sweep through the adjoint
program, tapes and shadow arrays included), and `hessian(f, wrt=x)` is the Jacobian of the
gradient by vector-mode forward sweeps (⌈n/k⌉ of them). `route="reverse-over-forward"` gives
the other HVP: the gradient of the directional derivative `∇f(x)·v`.
"""
from __future__ import annotations

from ..lang.ir import Builder, Function, Module
from ..lang.signature import parse_signature
from .forward import derived_name, jvp_function, wrt_params
from .jacobian import jacobian_function
from .reverse import grad_function
from .signatures import ADError, derived_signature


def _internal_grad(module: Module, name: str, x: str) -> str:
    gname = derived_name(name, "grad", [x])
    if gname not in module.functions:
        grad_function(module, name, [x], gname).attrs["internal"] = True
    return gname


def hvp_function(module: Module, name: str, wrt: list[str] | None, new_name: str,
                 route: str = "forward-over-reverse") -> Function:
    fn = module[name]
    sig = derived_signature("hvp", parse_signature(fn.attrs["sig"]), wrt)
    if sig.tuple_result:
        return _hvp_several(module, fn, wrt, new_name, sig, route)
    x = wrt_params(fn, wrt)[0].name
    if route == "forward-over-reverse":
        gname = _internal_grad(module, name, x)
        jname = derived_name(gname, "jvp", [x])
        if jname not in module.functions:
            jvp_function(module, gname, [x], jname, internal=True)
        new = module.add(Function(new_name, fn.param_types + [fn.param_types[_index(fn, x)]],
                                  [fn.param_types[_index(fn, x)]], [p.name for p in sig.params],
                                  {"sig": str(sig)}))
        b = Builder(new.body)
        j = module[jname]
        res = b.call(jname, list(new.params), j.result_types)
        b.ret([res[1]])
        return new
    if route != "reverse-over-forward":
        raise ADError(f"unknown hvp route '{route}'")
    jname = derived_name(name, "jvp", [x])
    if jname not in module.functions:
        jvp_function(module, name, [x], jname, internal=True)
    # w(params..., v) = ∇f(params)·v, the tangent part of the jvp
    wname = derived_name(name, "dirderiv", [x])
    if wname not in module.functions:
        j = module[jname]
        w = module.add(Function(wname, j.param_types, [j.result_types[1]], [p.name for p in sig.params],
                                {"sig": str(_dir_sig(sig)), "internal": True}))
        b = Builder(w.body)
        b.ret([b.call(jname, list(w.params), j.result_types)[1]])
    new = grad_function(module, wname, [x], new_name)
    new.attrs["sig"] = str(sig)
    return new


def _hvp_several(module: Module, fn: Function, wrt, new_name: str, sig, route: str) -> Function:
    """hvp(f, wrt=[a, b, ...]): jvp(grad(f, wrt=[a, b, ...])) with one tangent per parameter,
    returning the tangent part (Hv_a, Hv_b, ...)."""
    if route != "forward-over-reverse":
        raise ADError("hvp with several wrt parameters is computed forward over reverse only")
    xs = [p.name for p in wrt_params(fn, wrt)]
    gname = derived_name(fn.name, "grad", xs)
    if gname not in module.functions:
        grad_function(module, fn.name, xs, gname).attrs["internal"] = True
    jname = derived_name(gname, "jvp", xs)
    if jname not in module.functions:
        jvp_function(module, gname, xs, jname, internal=True)
    types = [fn.param_types[_index(fn, x)] for x in xs]
    new = module.add(Function(new_name, fn.param_types + types, types,
                              [p.name for p in sig.params], {"sig": str(sig)}))
    b = Builder(new.body)
    j = module[jname]
    res = b.call(jname, list(new.params), j.result_types)
    b.ret(list(res[len(xs):]))
    return new


def _dir_sig(sig):
    from ..lang.signature import Signature
    return Signature(sig.params, (sig.results[0].__class__("f64" if sig.results[0].dtype == "f64" else "f32"),))


def _index(fn: Function, pname: str) -> int:
    return [p.name for p in fn.params].index(pname)


def hessian_function(module: Module, name: str, wrt: list[str] | None, new_name: str) -> Function:
    fn = module[name]
    sig = derived_signature("hessian", parse_signature(fn.attrs["sig"]), wrt)
    if sig.tuple_result:
        return _hessian_blocks(module, fn, wrt, new_name, sig)
    x = wrt_params(fn, wrt)[0].name
    gname = _internal_grad(module, name, x)
    new = jacobian_function(module, gname, [x], new_name, mode="forward")
    new.attrs["sig"] = str(sig)
    return new


def _hessian_blocks(module: Module, fn: Function, wrt, new_name: str, sig) -> Function:
    """hessian(f, wrt=[a, b, ...]): the blocks H_pq = jacobian(grad(f, wrt=p), wrt=q), row by
    row ((H_aa, H_ab, H_ba, H_bb)), each by vector-mode forward sweeps through the gradient."""
    xs = [p.name for p in wrt_params(fn, wrt)]
    calls = []
    for p in xs:
        gname = _internal_grad(module, fn.name, p)
        for q in xs:
            jname = derived_name(gname, "jacobian", [q])
            if jname not in module.functions:
                jacobian_function(module, gname, [q], jname, mode="forward").attrs["internal"] = True
            calls.append(jname)
    types = [t for c in calls for t in module[c].result_types]
    new = module.add(Function(new_name, fn.param_types, types, [p.name for p in fn.params],
                              {"sig": str(sig)}))
    b = Builder(new.body)
    b.ret([r for c in calls for r in b.call(c, list(new.params), module[c].result_types)])
    return new
