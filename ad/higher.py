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


def _dir_sig(sig):
    from ..lang.signature import Signature
    return Signature(sig.params, (sig.results[0].__class__("f64" if sig.results[0].dtype == "f64" else "f32"),))


def _index(fn: Function, pname: str) -> int:
    return [p.name for p in fn.params].index(pname)


def hessian_function(module: Module, name: str, wrt: list[str] | None, new_name: str) -> Function:
    fn = module[name]
    sig = derived_signature("hessian", parse_signature(fn.attrs["sig"]), wrt)
    x = wrt_params(fn, wrt)[0].name
    gname = _internal_grad(module, name, x)
    new = jacobian_function(module, gname, [x], new_name, mode="forward")
    new.attrs["sig"] = str(sig)
    return new
