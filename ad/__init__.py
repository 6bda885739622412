"""dad.ad — automatic differentiation as IR-to-IR transformations.

`derive(module, kind, fname, wrt, new_name)` adds the derived function `new_name` of
`fname` to `module` and returns it; `kind` is one of `TRANSFORMS`. Input and output are IR:
this package never imports the front end or the lowering. A derivation that succeeds but not
quite as asked says so with a Python warning (`CheckpointWarning`: `checkpoint=true` left a
recording loop as it is), its message `file:line:col: warning: ...`.
"""
from __future__ import annotations

import warnings

from ..lang.ir import Function, Module
from .activity import analyze, report
from .checkpoint import CheckpointWarning
from .forward import jvp_function, wrt_params
from .signatures import ADError, derived_signature
from .jacobian import jacobian_function
from .custom import custom_function
from .sparsity import sparsity_function
from .higher import hessian_function, hvp_function
from .reverse import grad_function, vjp_function
from .batching import vmap_function
from .rules import HigherOrderError

TRANSFORMS = ("jvp", "jacobian", "vjp", "grad", "value_and_grad", "hvp", "hessian", "custom", "vmap")
PLANNED = ()


def derive(module: Module, kind: str, fname: str, wrt: list[str] | None, new_name: str,
           width: int | None = None, mode: str | None = None, checkpoint: bool = False,
           route: str = "forward-over-reverse", jvp: str | None = None,
           vjp: str | None = None) -> Function:
    """`width`: tangents per sweep of vector mode (jacobian), chosen by the compiler when None;
    `mode`: "forward", "reverse" or "auto" for jacobian; `checkpoint`: reverse mode records
    long loops in √n segments (bounded tape memory, one extra forward sweep); `route`: how
    hvp composes the modes ("forward-over-reverse" or "reverse-over-forward")."""
    fn = _derive(module, kind, fname, wrt, new_name, width, mode, checkpoint, route, jvp, vjp)
    for note in getattr(fn, "checkpoint_notes", ()):
        warnings.warn(note.render(fname, new_name), CheckpointWarning, stacklevel=2)
    return fn


def _derive(module, kind, fname, wrt, new_name, width, mode, checkpoint, route, jvp, vjp):
    if fname not in module.functions:
        raise ADError(f"no function '{fname}' to differentiate")
    try:
        if kind == "custom":
            return custom_function(module, fname, new_name, jvp, vjp)
        if kind == "sparsity":
            return sparsity_function(module, fname, wrt, new_name)
        if kind == "jvp":
            return jvp_function(module, fname, wrt, new_name)
        if kind == "vmap":
            return vmap_function(module, fname, wrt, new_name)
        if kind == "jacobian":
            return jacobian_function(module, fname, wrt, new_name, width, mode or "auto")
        if kind == "vjp":
            return vjp_function(module, fname, wrt, new_name, checkpoint=checkpoint)
        if kind == "hvp":
            return hvp_function(module, fname, wrt, new_name, route)
        if kind == "hessian":
            return hessian_function(module, fname, wrt, new_name)
        if kind in ("grad", "value_and_grad"):
            return grad_function(module, fname, wrt, new_name, with_value=kind == "value_and_grad",
                                 checkpoint=checkpoint)
    except HigherOrderError as exc:
        raise ADError(str(exc)) from None
    if kind in PLANNED:
        raise ADError(f"'{kind}' is not implemented yet")
    raise ADError(f"unknown transform '{kind}'")


def activity_report(module: Module, fname: str, wrt: list[str] | None) -> str:
    fn = module[fname]
    return report(analyze(fn, wrt_params(fn, wrt)))


__all__ = ["ADError", "CheckpointWarning", "TRANSFORMS", "derive", "derived_signature", "activity_report"]
