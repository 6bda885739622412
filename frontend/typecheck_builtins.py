"""Typing of builtin calls: one rule per builtin kind (`TYPING[kind](checker, call)`).

Contract: `builtin_call(tc, call, sig)` checks the call's arity and keyword arguments against its
`builtins.BUILTINS` row `sig`, then applies the rule for `sig.kind`. Each rule types the arguments
through the checker `tc` (`frontend.typecheck.Checker`: `value`, `infer`, `expect`, `fix`,
`arith`, `unify_scalars`, `dim_of`, `err`) and returns the call's type, or `ERROR` after reporting
the mistake at the offending argument (or at the call). `math1`, `math2` and binary `min`/`max`
apply per element to arrays; array sizes are i64 and `dtype=` defaults to f64; where two array
shapes can only be compared at run time the rule sets `call.info = "shape_check"`.
"""
from __future__ import annotations

from . import ast as A
from .builtins import CAST_TARGET
from .types import (BOOL, ERROR, F64, I64, LIT_FLOAT, LIT_INT, SCALARS, Array, Dyn, Scalar, Tuple,
                    conflicting_dim, elem, is_array, same_dim)


def builtin_call(tc, e: A.Call, sig):
    n = len(e.args)
    if n < sig.min_args or (sig.max_args is not None and n > sig.max_args):
        for a in e.args:
            tc.value(a)
        want = (f"{sig.min_args}" if sig.min_args == sig.max_args else
                f"{sig.min_args} or {sig.max_args}" if sig.max_args else f"at least {sig.min_args}")
        return tc.err(e.span, f"'{e.func}' takes {want} argument{'s' * (want != '1')}, got {n}")
    for kw in e.kwargs:
        if kw.name not in sig.kwargs:
            tc.err(kw.span, f"'{e.func}' has no keyword argument '{kw.name}'")
            return ERROR
    return TYPING[sig.kind](tc, e)


def _array_arg(tc, e, a, what="an array", rank=None, floating=False):
    t = tc.value(a)
    if t is ERROR:
        return ERROR
    if not isinstance(t, Array) or (rank is not None and t.rank != rank) or \
            (floating and not t.elem.is_float) or t.elem.is_bool:
        return tc.err(a.span, f"'{e.func}' expects {what}, found {t}")
    return t


def math1(tc, e):
    a = e.args[0]
    t = tc.infer(a)
    if t is ERROR:
        return ERROR
    if isinstance(t, Tuple) or not elem(t).is_numeric:
        return tc.err(a.span, f"'{e.func}' expects a float argument, found {t}")
    el = elem(t)
    if el.is_int and not el.is_literal and e.func != "abs":
        return tc.err(a.span, f"'{e.func}' expects a float argument, found {t} (use float())")
    if el == LIT_INT and e.func != "abs":
        return LIT_FLOAT
    return t


def math2(tc, e):
    lt, rt = tc.infer(e.args[0]), tc.infer(e.args[1])
    if ERROR in (lt, rt):
        return ERROR
    for a, t in zip(e.args, (lt, rt)):
        if isinstance(t, Tuple) or not elem(t).is_numeric or (elem(t).is_int and not elem(t).is_literal):
            return tc.err(a.span, f"'{e.func}' expects float arguments, found {t}")
    r = tc.arith(e.func, lt, rt, e.args[0], e.args[1], e.span)
    if r is not ERROR and elem(r) == LIT_INT:
        r = LIT_FLOAT
    if _unsure(lt, rt):
        e.info = "shape_check"
    return r


def _reduced(tc, e, t):
    """The type of the reduction `e` of an array of type `t`: its element type, or with
    `axis=a` (an integer literal, negative counting from the end) `t` without axis a (the
    normalised axis goes to `e.info`)."""
    if t is ERROR:
        return ERROR
    kw = next((k for k in e.kwargs if k.name == "axis"), None)
    if kw is None:
        return t.elem
    v = kw.value
    a = v.value if isinstance(v, A.IntLit) else \
        -v.operand.value if isinstance(v, A.Unary) and v.op == "-" and isinstance(v.operand, A.IntLit) else None
    if a is None:
        tc.value(v)
        return tc.err(v.span, f"'axis' must be an integer literal (0 to {t.rank - 1})")
    v.ty = I64
    if not -t.rank <= a < t.rank:
        return tc.err(v.span, f"axis {a} is out of range for {t} (rank {t.rank})")
    a %= t.rank
    e.info = ("axis", a)
    dims = t.dims[:a] + t.dims[a + 1:]
    return Array(t.elem, dims) if dims else t.elem


def minmax(tc, e):
    if e.kwargs and len(e.args) == 2:
        return tc.err(e.kwargs[0].span, f"'axis' goes with one array: {e.func}(A, axis=0)")
    if len(e.args) == 1:
        return _reduced(tc, e, _array_arg(tc, e, e.args[0], "a numeric array (or two scalars)"))
    lt, rt = tc.infer(e.args[0]), tc.infer(e.args[1])
    if ERROR in (lt, rt):
        return ERROR
    for a, t in zip(e.args, (lt, rt)):
        if isinstance(t, Tuple):
            return tc.err(a.span, f"'{e.func}' expects numbers or arrays, found {t}")
    r = tc.arith(e.func, lt, rt, e.args[0], e.args[1], e.span)
    if _unsure(lt, rt):
        e.info = "shape_check"
    return r


def _unsure(*types) -> bool:
    """Whether array shapes among `types` may differ at run time (trailing dimensions aligned,
    as broadcasting does)."""
    arrs = [t for t in types if isinstance(t, Array)]
    for a in arrs:
        for b in arrs:
            m = min(a.rank, b.rank)
            if any(not same_dim(x, y) for x, y in zip(a.dims[a.rank - m:], b.dims[b.rank - m:])):
                return True
    return False


def reduce(tc, e):
    return _reduced(tc, e, _array_arg(tc, e, e.args[0], "a numeric array"))


def reduce_float(tc, e):
    return _reduced(tc, e, _array_arg(tc, e, e.args[0], "a float array", floating=True))


def dot(tc, e):
    a = _array_arg(tc, e, e.args[0], "float arrays", floating=True)
    b = _array_arg(tc, e, e.args[1], "float arrays", floating=True)
    if ERROR in (a, b):
        return ERROR
    r = tc.arith("dot", a, b, e.args[0], e.args[1], e.span, broadcast=False)
    if r is not ERROR and any(not same_dim(x, y) for x, y in zip(a.dims, b.dims)):
        e.info = "shape_check"
    return a.elem if r is not ERROR else ERROR


def _inner(tc, e, da, db, ta, tb):
    if conflicting_dim(da, db):
        return tc.err(e.span, f"shape mismatch in '{e.func}': {ta} and {tb} (the inner sizes "
                              f"{da} and {db} differ)")
    if not same_dim(da, db):
        e.info = "shape_check"
    return None


def matvec(tc, e):
    return _product(tc, e, "matvec", rank_b=1)


def matmul(tc, e):
    return _product(tc, e, "matmul", rank_b=2)


def _product(tc, e, name: str, rank_b: int):
    """matvec (A: 2-D, x: 1-D) and matmul (A, B: 2-D): inner dimensions agree."""
    A_ = _array_arg(tc, e, e.args[0], "a 2-D float array", rank=2, floating=True)
    B = _array_arg(tc, e, e.args[1], f"a {rank_b}-D float array", rank=rank_b, floating=True)
    if ERROR in (A_, B):
        return ERROR
    if A_.elem != B.elem:
        return tc.err(e.span, f"type mismatch in '{name}': {A_} and {B}")
    if _inner(tc, e, A_.dims[1], B.dims[0], A_, B) is ERROR:
        return ERROR
    return Array(A_.elem, (A_.dims[0],) + tuple(B.dims[1:]))


def transpose(tc, e):
    t = tc.value(e.args[0])
    if t is ERROR:
        return ERROR
    if not isinstance(t, Array) or t.rank != 2:
        return tc.err(e.args[0].span, f"'transpose' expects a 2-D array, found {t}")
    return Array(t.elem, (t.dims[1], t.dims[0]))


def outer(tc, e):
    a = _array_arg(tc, e, e.args[0], "1-D float arrays", rank=1, floating=True)
    b = _array_arg(tc, e, e.args[1], "1-D float arrays", rank=1, floating=True)
    if ERROR in (a, b):
        return ERROR
    if a.elem != b.elem:
        return tc.err(e.span, f"type mismatch in 'outer': {a} and {b}")
    return Array(a.elem, (a.dims[0], b.dims[0]))


def size(tc, e):
    t = tc.value(e.args[0])
    if t is ERROR:
        return ERROR
    rank = 2 if e.func in ("rows", "cols") else None
    if not isinstance(t, Array) or (rank and t.rank != rank):
        return tc.err(e.args[0].span, f"'{e.func}' expects {'a 2-D array' if rank else 'an array'}, found {t}")
    return I64


def _dtype(tc, e, default_=F64):
    for kw in e.kwargs:
        if kw.name == "dtype":
            if isinstance(kw.value, A.Name) and kw.value.id in SCALARS:
                kw.value.ty = SCALARS[kw.value.id]
                return SCALARS[kw.value.id]
            name = kw.value.id if isinstance(kw.value, A.Name) else "?"
            tc.err(kw.value.span, f"unknown dtype '{name}' (expected f64, f32, i64 or bool)")
            return ERROR
    return default_


def _dims(tc, args):
    dims, ok = [], True
    for a in args:
        t = tc.infer(a)
        if t is ERROR:
            ok = False
            continue
        if t not in (I64, LIT_INT):
            tc.fix(a, None)
            tc.err(a.span, f"an array size must be i64, found {a.ty}")
            ok = False
            continue
        tc.fix(a, I64)
        dims.append(tc.dim_of(a))
    return tuple(dims) if ok else ERROR


def make(tc, e):
    dt = _dtype(tc, e)
    dims = _dims(tc, e.args)
    if ERROR in (dt, dims):
        return ERROR
    return Array(dt, dims)


def full(tc, e):
    dt = _dtype(tc, e)
    dims = _dims(tc, e.args[:-1])
    if ERROR in (dt, dims):
        tc.value(e.args[-1])
        return ERROR
    tc.expect(e.args[-1], dt, "fill value")
    return Array(dt, dims)


def copy(tc, e):
    t = tc.value(e.args[0])
    if t is ERROR:
        return ERROR
    if not isinstance(t, Array):
        return tc.err(e.args[0].span, f"'copy' expects an array, found {t}")
    return t


def select(tc, e):
    c, a, b = e.args
    ct = tc.value(c)
    if ct is not ERROR and ct != BOOL:
        tc.err(c.span, f"the condition of 'select' must be bool, found {ct}")
    at, bt = tc.infer(a), tc.infer(b)
    if ERROR in (at, bt, ct):
        return ERROR
    if is_array(at) or is_array(bt) or isinstance(at, Tuple) or isinstance(bt, Tuple):
        return tc.err(e.span, f"'select' expects scalars, found {at} and {bt}")
    return tc.unify_scalars(at, bt, a, b, e.span, "'select'")


def ravel(tc, e):
    t = _array_arg(tc, e, e.args[0], "an array")
    if t is ERROR:
        return ERROR
    known = all(isinstance(d, int) for d in t.dims)
    return Array(t.elem, (_count(t.dims) if known else Dyn(),))


def _count(dims):
    out = 1
    for d in dims:
        out *= d
    return out


def reshape(tc, e):
    t = tc.value(e.args[0])
    dims = _dims(tc, e.args[1:])
    if ERROR in (t, dims):
        return ERROR
    if not isinstance(t, Array):
        return tc.err(e.args[0].span, f"'reshape' expects an array, found {t}")
    if all(isinstance(d, int) for d in (*t.dims, *dims)) and _count(t.dims) != _count(dims):
        return tc.err(e.span, f"'reshape' of {t} ({_count(t.dims)} elements) to "
                              f"{_count(dims)} elements")
    return Array(t.elem, dims)


def concat(tc, e):
    """concat(a, b, ...): along the first axis; one element type and rank, the other sizes
    equal (checked at run time when not known)."""
    ts = [_array_arg(tc, e, a, "arrays of one type") for a in e.args]
    if ERROR in ts:
        return ERROR
    first = ts[0]
    for a, t in zip(e.args, ts):
        if t.elem != first.elem or t.rank != first.rank or \
                any(conflicting_dim(x, y) for x, y in zip(t.dims[1:], first.dims[1:])):
            return tc.err(a.span, f"'concat' joins arrays of one type and shape but the first "
                                  f"axis: {first} and {t}")
    if _unsure(*[Array(t.elem, t.dims[1:]) for t in ts if t.rank > 1]):
        e.info = "shape_check"
    lead = [t.dims[0] for t in ts]
    n = sum(lead) if all(isinstance(d, int) for d in lead) else Dyn()
    rest = [d if all(same_dim(d, t.dims[k + 1]) for t in ts) else Dyn() for k, d in enumerate(first.dims[1:])]
    return Array(first.elem, (n, *rest))


def softmax(tc, e):
    """softmax(x), log_softmax(x): the shape of x, normalised along `axis` (default: the
    last)."""
    t = _array_arg(tc, e, e.args[0], "a float array", floating=True)
    if t is ERROR:
        return ERROR
    if not any(k.name == "axis" for k in e.kwargs):
        e.info = ("axis", t.rank - 1)
    elif _reduced(tc, e, t) is ERROR:
        return ERROR
    return t


def stack(tc, e):
    """stack(a, b, ...) is the array literal [a, b, ...] (a new first axis)."""
    lit = A.ArrayLit(e.span, list(e.args))
    t = tc.infer(lit)
    e.info = ("stack", lit)
    if t is not ERROR and not is_array(e.args[0].ty):
        return tc.err(e.args[0].span, f"'stack' joins arrays, found {e.args[0].ty} (use [a, b, ...])")
    return t


def where(tc, e):
    """where(c, a, b): elementwise select; any of the three may be an array (one shape), the
    others scalars; a and b of one numeric type (literals take it)."""
    c, a, b = e.args
    ct, at, bt = tc.infer(c), tc.infer(a), tc.infer(b)
    if ERROR in (ct, at, bt):
        return ERROR
    for x, t in ((c, ct), (a, at), (b, bt)):
        if isinstance(t, Tuple):
            return tc.err(x.span, "'where' expects scalars or arrays, found a tuple")
    if elem(ct) != BOOL:
        return tc.err(c.span, f"the condition of 'where' must be bool or a bool array, found {ct}")
    if elem(at) == BOOL or elem(bt) == BOOL:
        return tc.err(e.span, f"'where' chooses between numbers, found {at} and {bt}")
    r = tc.arith("where", at, bt, a, b, e.span)
    if r is ERROR:
        return ERROR
    if _unsure(ct, at, bt):
        e.info = "shape_check"
    if not is_array(ct):
        return r
    if not is_array(r):
        return Array(r, ct.dims)
    hi, lo = (ct, r) if ct.rank >= r.rank else (r, ct)
    if any(conflicting_dim(x, y) for x, y in zip(hi.dims[hi.rank - lo.rank:], lo.dims)):
        return tc.err(e.span, f"shape mismatch in 'where': {ct} and {r}")
    return Array(r.elem, hi.dims)


def anyall(tc, e):
    t = tc.infer(e.args[0])
    if t is ERROR:
        return ERROR
    if not is_array(t) or t.elem != BOOL:
        return tc.err(e.args[0].span, f"'{e.func}' expects a bool array (a comparison of "
                                      f"arrays, say), found {t}")
    return BOOL


def cast(tc, e):
    t = tc.value(e.args[0])
    if t is ERROR:
        return ERROR
    if not isinstance(t, Scalar):
        return tc.err(e.args[0].span, f"'{e.func}' expects a scalar, found {t}")
    if t.is_bool and e.func != "int":
        return tc.err(e.args[0].span, f"'{e.func}' cannot convert bool (use select)")
    return SCALARS[CAST_TARGET[e.func]]


TYPING = {
    "math1": math1, "math2": math2, "minmax": minmax, "cast": cast, "select": select,
    "where": where, "anyall": anyall, "ravel": ravel, "reshape": reshape, "concat": concat,
    "stack": stack, "softmax": softmax,
    "reduce": reduce, "reduce_float": reduce_float, "dot": dot,
    "matvec": matvec, "matmul": matmul, "transpose": transpose, "outer": outer,
    "size": size, "make": make, "full": full, "copy": copy,
}
