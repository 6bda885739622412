"""Affine index forms shared by the loop passes.

Contract: `affine(v, iv, inside, memo)` writes the i64 value `v` as `c * iv + inv + k`, or
returns None when it is not of that form: `c` and `k` are Python ints and `inv` is a sum of
loop-invariant values (defined outside the loop: not in `inside`) with integer
coefficients, a tuple of `(coefficient, value)` pairs in a canonical order (`Value.serial`:
two forms are equal exactly when their tuples are). The rules: `iv`, integer constants,
outside values, and `addi`, `subi` and `muli` by a constant of such forms; every number in
a form stays within 2**32 in size (else None), so the form's own arithmetic does not wrap
around in i64 (the run-time values of `inv` may; forms that match are equal modulo 2**64).
`materialise(ops, form, at)` appends to `ops` the ops computing the form at `iv = at` and
returns that value.
"""
from __future__ import annotations

from ..ir import I64, Op, Value
from .util import NOT_CONST, const_of
from ..ops import isa, ARITH_ADDI, ARITH_MULI, ARITH_SUBI

_SMALL = 1 << 32


def _terms(pairs) -> tuple:
    """Merge equal values, drop zero coefficients, order canonically."""
    acc: dict[int, list] = {}
    for c, v in pairs:
        if id(v) in acc:
            acc[id(v)][0] += c
        else:
            acc[id(v)] = [c, v]
    return tuple(sorted(((c, v) for c, v in acc.values() if c), key=lambda t: t[1].serial))


def affine(v: Value, iv: Value, inside: set, memo: dict):
    """`v` as (c, inv, k) meaning `c * iv + inv + k`, or None (see the module docstring)."""
    if v in memo:
        return memo[v]
    memo[v] = None
    k = const_of(v)
    if v is iv:
        r = (1, (), 0)
    elif k is not NOT_CONST and isinstance(k, int) and not isinstance(k, bool):
        r = (0, (), k) if -_SMALL <= k <= _SMALL else None
    elif v not in inside:
        r = (0, ((1, v),), 0)
    elif v.op is not None and isa(v.op, ARITH_ADDI, ARITH_SUBI, ARITH_MULI):
        a, b = (affine(x, iv, inside, memo) for x in v.op.operands)
        r = None if a is None or b is None else _combine(v.op, a, b)
    else:
        r = None
    if r is not None and not all(abs(x) <= _SMALL for x in (r[0], r[2], *(c for c, _ in r[1]))):
        r = None    # kept small, so that no coefficient wraps around in 64-bit arithmetic
    memo[v] = r
    return r


def _scale(form, s):
    c, inv, k = form
    return c * s, _terms((t * s, x) for t, x in inv), k * s


def _combine(op: Op, a, b):
    if isa(op, ARITH_SUBI):
        b = _scale(b, -1)
    if isa(op, ARITH_ADDI, ARITH_SUBI):
        return a[0] + b[0], _terms(a[1] + b[1]), a[2] + b[2]
    for x, y in ((a, b), (b, a)):  # muli: one side a plain constant
        if y[0] == 0 and not y[1] and abs(y[2]) <= _SMALL:
            return _scale(x, y[2])
    return None


def materialise(ops: list, form: tuple, at: Value) -> Value:
    """Ops computing `c * at + inv + k` appended to `ops`; returns the value."""
    c, inv, k = form

    def const(x):
        op = Op("arith.constant", [], [I64], {"value": x})
        ops.append(op)
        return op.result

    def arith(name, a, b):
        op = Op(name, [a, b], [I64])
        ops.append(op)
        return op.result

    def add(acc, coef, x):
        term = x if coef in (1, -1) else arith("arith.muli", x, const(coef))
        if acc is None:
            return term if coef != -1 else arith("arith.subi", const(0), x)
        return arith("arith.subi" if coef == -1 else "arith.addi", acc, term)

    v = None if c == 0 else add(None, c, at)
    for coef, x in inv:
        v = add(v, coef, x)
    if v is None:
        return const(k)
    return arith("arith.addi", v, const(k)) if k else v
