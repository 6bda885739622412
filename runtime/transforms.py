"""Transforms at run time: derived functions of an already compiled function, from Python.

`derive_kernel(kernel, kind, wrt)` clones the compiled module's (optimised) IR, adds the
derived function with `dad.ad.derive`, compiles it and returns its callable. Results are
cached on the kernel per (kind, wrt), so asking twice compiles once. The functions of the
original module are kept (the derived one may call them) but get no entry points of their own.
"""
from __future__ import annotations

import threading

from ..ad import ADError, derive
from ..lang.irparser import parse_module
from ..lang.printer import print_module

_lock = threading.Lock()


def _normalize_wrt(wrt) -> tuple[str, ...] | None:
    if wrt is None:
        return None
    if isinstance(wrt, str):
        return (wrt,)
    return tuple(wrt)


def derive_kernel(kernel, kind: str, wrt=None, **options):
    """`options` go to `dad.ad.derive` (e.g. `width=1` for one tangent per sweep)."""
    from .compiler import compile_module
    key = (kind, _normalize_wrt(wrt), tuple(sorted(options.items())))
    with _lock:
        cache = kernel.__dict__.setdefault("_derived", {})
        if key in cache:
            return cache[key]
        source = kernel.module.ir_module
        m = parse_module(print_module(source))
        for f in m:
            f.attrs["internal"] = True
        name = f"{kernel.name}_{kind}"
        while name in m.functions:
            name += "_"
        derive(m, kind, kernel.name, list(key[1]) if key[1] is not None else None, name, **options)
        compiled = compile_module(m, filename=kernel.module.filename)
        k = compiled.kernels[name]
        cache[key] = k
        return k


def jvp(fn, wrt=None):
    """The Jacobian-vector product of a compiled function: `jvp(mod.f, wrt="x")`."""
    return derive_kernel(fn, "jvp", wrt)


def jacobian(fn, wrt=None):
    """The dense Jacobian of a compiled function: `J[out..., x...]`."""
    return derive_kernel(fn, "jacobian", wrt)


def vjp(fn, wrt=None):
    """The vector-Jacobian product (reverse mode): `vjp(mod.f, wrt="x")(x, ..., out_bar)`."""
    return derive_kernel(fn, "vjp", wrt)


def grad(fn, wrt=None):
    """The gradient of a function returning a float scalar (reverse mode)."""
    return derive_kernel(fn, "grad", wrt)


def value_and_grad(fn, wrt=None):
    """`(f(...), gradient...)` in one call (reverse mode)."""
    return derive_kernel(fn, "value_and_grad", wrt)


__all__ = ["ADError", "derive_kernel", "jvp", "jacobian", "vjp", "grad", "value_and_grad"]
