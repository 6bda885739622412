"""elide_bounds_checks: set `checked = false` on loads and stores proved in range.

Contract: an index `i` of `memref.load`/`memref.store` along axis `k` of array `%A` is proved
in `0 <= i < dim(%A, k)` by one of these rules (anything else keeps its check):
- `i` is `%iv + c` (`%iv`, `addi %iv, c`, `addi c, %iv` or `subi %iv, -c`, `c` constant)
  where `%iv` is the induction variable of an `scf.for` with constant step > 0, constant
  `lb >= -c`, and an upper bound `ub` with `ub + c <= dim(%A, k)`, proved either
  symbolically — `ub` is the very SSA value of `dim(%A, k)` (a `memref.dim %A {index = k}`
  or the k-th operand of the `memref.alloc` that made `%A`), possibly `subi ub, m` /
  `addi ub, -m` with constant `m >= c` — or numerically, with both `ub` and the dimension
  constants;
- `i` is a constant within a dimension known as a constant (an alloc operand).
Array sizes never change, so SSA identity of the dimension value is enough.
"""
from __future__ import annotations

from ..ir import Block, Function, Op, Value
from .util import NOT_CONST, const_of, for_each_function
from ..ops import isa, ARITH_ADDI, ARITH_SUBI, MEMREF_ALLOC, MEMREF_DIM, MEMREF_LOAD, MEMREF_STORE, SCF_FOR

_SMALL = 1 << 32  # offsets beyond this are not worth reasoning about (and could wrap)


def _small(c) -> bool:
    return c is not NOT_CONST and -_SMALL <= c <= _SMALL


def _plus_const(v: Value) -> tuple[Value, int]:
    """Write `v` as `base + c` with `c` a small constant (c = 0 when nothing matches)."""
    op = v.op
    if op is not None and isa(op, ARITH_ADDI, ARITH_SUBI):
        a, b = op.operands
        cb, ca = const_of(b), const_of(a)
        if _small(cb):
            return a, cb if isa(op, ARITH_ADDI) else -cb
        if isa(op, ARITH_ADDI) and _small(ca):
            return b, ca
    return v, 0


def _is_dim(v: Value, array: Value, k: int) -> bool:
    """Is `v` the SSA value of `dim(array, k)`?"""
    op, src = v.op, array.op
    if op is not None and isa(op, MEMREF_DIM) and op.operands[0] is array \
            and op.attrs.get("index") == k:
        return True
    return src is not None and isa(src, MEMREF_ALLOC) and k < len(src.operands) \
        and src.operands[k] is v


def _const_dim(array: Value, k: int):
    src = array.op
    if src is not None and isa(src, MEMREF_ALLOC) and k < len(src.operands):
        return const_of(src.operands[k])
    return NOT_CONST


def _loop_of(iv: Value) -> Op | None:
    """The scf.for whose induction variable `iv` is, or None."""
    block = iv.owner
    if not isinstance(block, Block) or iv.index != 0 or block.parent is None:
        return None
    op = block.parent.parent
    return op if op is not None and isa(op, SCF_FOR) else None


def _in_range(i: Value, array: Value, k: int) -> bool:
    n = _const_dim(array, k)
    c = const_of(i)
    if c is not NOT_CONST:
        return n is not NOT_CONST and 0 <= c < n
    iv, off = _plus_const(i)
    loop = _loop_of(iv)
    if loop is None:
        return False
    lb, ub, step = loop.operands[:3]
    clb, cstep = const_of(lb), const_of(step)
    if clb is NOT_CONST or cstep is NOT_CONST or cstep <= 0 or clb + off < 0:
        return False
    cub = const_of(ub)
    if cub is not NOT_CONST:
        return n is not NOT_CONST and cub + off <= n
    base, shift = _plus_const(ub)  # ub = base + shift = dim - m with m = -shift
    return _is_dim(base, array, k) and shift + off <= 0


def _elide_block(block: Block) -> None:
    for op in block.walk():
        if not isa(op, MEMREF_LOAD, MEMREF_STORE) or op.attrs.get("checked") is not True:
            continue
        array, *idx = op.operands if isa(op, MEMREF_LOAD) else op.operands[1:]
        if all(_in_range(i, array, k) for k, i in enumerate(idx)):
            op.attrs["checked"] = False


def _elide_function(f: Function) -> None:
    _elide_block(f.body)


elide_bounds_checks = for_each_function(_elide_function, "elide_bounds_checks")
