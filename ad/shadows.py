"""Shadow arrays of reverse mode: how adjoints are added up and made.

Contract: `ACC` is the fastmath flag set every adjoint addition carries. `zeros_like(b,
arr, name)` allocates an array of `arr`'s shape for a shadow (the allocation is zero-filled,
as every `memref.alloc`). `accumulate(b, src, dst, accumulate_only)` adds `src` into `dst`
element by element and then zeroes `src` (unless `accumulate_only`); `src` and `dst` may be
the same array.
"""
from __future__ import annotations

from ..lang.ir import Builder, MemRefType, Value

# An adjoint is a sum of contributions whose order the program does not fix (a value used
# in every iteration of a loop gets one per iteration): its additions may be reordered, which
# lets a reversed loop's adjoint sums run as vector partial sums; and the sign of a zero sum
# is free, so `0 + g` is `g` (an in-place update's adjoint then costs nothing).
ACC = {"fastmath": "reassoc nsz"}


def zeros_like(b: Builder, arr: Value, name: str | None) -> Value:
    t = arr.type
    return b.alloc(t.elem, [b.dim(arr, d) for d in range(t.rank)], name)


def accumulate(b: Builder, src: Value, dst: Value | None, accumulate_only: bool = False) -> None:
    """dst += src over all elements; then src = 0 unless `accumulate_only`. Element by
    element, src[k] is read and zeroed before dst[k] is updated, so that src and dst may be
    the same array (the adjoint of `memref.copy %u, %u` leaves u's adjoint as it was)."""
    t = src.type
    flat = MemRefType(t.elem, 1)

    def flatten(a):  # a rank-1 array is its own flat view (no view op for later passes)
        return a if t.rank == 1 else b.one("memref.collapse", [a], flat)

    s = flatten(src)
    d = flatten(dst) if dst is not None else None
    n = b.dim(s, 0)
    _, body = b.for_(b.i(0), n, b.i(1), [], "k")
    lb = Builder(body)
    k = body.args[0]
    v = lb.load(s, [k])
    if not accumulate_only:
        lb.store(lb.const(0.0, t.elem), s, [k])
    if d is not None:
        lb.store(lb.addf(lb.load(d, [k]), v, **ACC), d, [k])
    lb.yield_([])
