"""Transforms at run time: derived functions of an already compiled function, from Python.

`derive_kernel(kernel, kind, wrt)` clones the compiled module's (optimised) IR, adds the
derived function with `dad.ad.derive`, compiles it and returns its callable. Results are
cached on the kernel per (kind, wrt), so asking twice compiles once. The functions of the
original module are kept (the derived one may call them) but get no entry points of their own.
"""
from __future__ import annotations

import threading

from ..ad import ADError, derive
from . import deep
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
        m.fast_math = source.fast_math
        for f in m:
            f.attrs["internal"] = True
        name = f"{kernel.name}_{kind}"
        while name in m.functions:
            name += "_"
        deep.run(derive, m, kind, kernel.name, list(key[1]) if key[1] is not None else None,
                 name, **options)
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


def hvp(fn, wrt=None):
    """Hessian-vector products, forward over reverse: `hvp(mod.f, wrt="x")(x, ..., v)`."""
    return derive_kernel(fn, "hvp", wrt)


def hessian(fn, wrt=None):
    """The dense Hessian of a function returning a float scalar: `x.shape + x.shape`."""
    return derive_kernel(fn, "hessian", wrt)


class SparseJacobian:
    """`J = sparse_jacobian(mod.f, wrt="x")(args...)`: the Jacobian of a function whose
    outputs each depend on few inputs, in as many forward sweeps as colours.

    Each call finds the pattern from the IR-derived sparsity program (⌈n/64⌉ sweeps of bit
    sets), colours the columns greedily so that no two columns of one colour share a row,
    and runs one tangent sweep per colour with the sum of that colour's unit vectors; each
    row's single nonzero of the colour is read off the compressed result. `pattern`,
    `colors` and `sweeps` describe the last call.
    """

    def __init__(self, fn, wrt=None):
        self.fn = fn
        names = [p.name for p in fn.sig.params]
        floats = [p.name for p in fn.sig.params if p.type.dtype in ("f64", "f32")]
        x = (wrt if isinstance(wrt, str) else (wrt[0] if wrt else None)) or (floats[0] if len(floats) == 1 else None)
        if x is None:
            raise ADError("sparse_jacobian needs wrt=NAME (one parameter)")
        self.x, self.xi = x, names.index(x)
        self.masks = derive_kernel(fn, "sparsity", x)
        self.tangents = derive_kernel(fn, "jvp", x)
        self.pattern = self.colors = None
        self.sweeps = 0

    def find_pattern(self, args):
        import numpy as np
        x = np.asarray(args[self.xi], dtype=float)
        n = x.size
        rows = None
        for c in range(0, max(n, 1), 64):
            seed = np.zeros(n, np.int64)
            idx = np.arange(c, min(n, c + 64))
            seed[idx] = np.left_shift(np.int64(1), (idx - c).astype(np.int64))
            res = self.masks(*args, seed.reshape(x.shape))
            out_mask = np.asarray(res[-1]).reshape(-1).view(np.uint64)
            bits = ((out_mask[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(bool)
            block = bits[:, :len(idx)]
            rows = block if rows is None else np.concatenate([rows, block], axis=1)
        return rows

    @staticmethod
    def colour(pattern):
        import numpy as np
        nrow, ncol = pattern.shape
        colors = np.full(ncol, -1, np.int64)
        row_colors: list[set] = [set() for _ in range(nrow)]
        for j in range(ncol):
            rs = np.flatnonzero(pattern[:, j])
            used = set().union(*(row_colors[r] for r in rs)) if len(rs) else set()
            c = 0
            while c in used:
                c += 1
            colors[j] = c
            for r in rs:
                row_colors[r].add(c)
        return colors

    def __call__(self, *args):
        import numpy as np
        x = np.asarray(args[self.xi], dtype=float)
        self.pattern = P = self.find_pattern(args)
        self.colors = colors = self.colour(P)
        self.sweeps = int(colors.max()) + 1 if colors.size else 0
        out = None
        J = None
        for c in range(self.sweeps):
            v = (colors == c).astype(float).reshape(x.shape)
            res = self.tangents(*args, v)
            y, dy = res[0], np.asarray(res[1]).reshape(-1)
            if J is None:
                out = np.shape(y)
                J = np.zeros((dy.size, x.size))
            cols = np.flatnonzero(colors == c)
            sub = P[:, cols]
            has = sub.any(axis=1)
            J[np.flatnonzero(has), cols[sub.argmax(axis=1)[has]]] = dy[has]
        if J is None:
            y = self.fn(*args)
            out = np.shape(y)
            J = np.zeros((int(np.prod(out)), x.size))
        return J.reshape(tuple(out) + x.shape)


def sparse_jacobian(fn, wrt=None) -> SparseJacobian:
    """A Jacobian computed from its sparsity pattern (see `SparseJacobian`)."""
    return SparseJacobian(fn, wrt)


__all__ = ["ADError", "derive_kernel", "jvp", "jacobian", "vjp", "grad", "value_and_grad",
           "hvp", "hessian", "sparse_jacobian", "SparseJacobian"]
