"""Lowering of builtin calls: one rule per builtin kind (`LOWER[kind](emitter, call)`).

Contract: each rule emits IR through `em.b` and returns the call's Value. Elementwise rules
(`math1`, `math2`, binary `min`/`max`, `cast`) are scalar rules: on arrays the emitter's fusion
calls them per element. Reductions and matvec accumulate in `scf.for` loops whose accumulating
float op carries `fastmath = "reassoc"`, except `prod`, which multiplies in order (its
derivatives read the running product, so a derived function cannot reorder it, and the plain
function must not either); `matmul` adds the rows `A[i, p] * B[p, :]` into `C[i, :]` for p in
order, so that it needs no reordering to vectorise and gives the same bits in every function.
`max(x)`/`min(x)` have the first extreme element's value and split the derivative evenly
among tied extreme elements (ValueError on an empty array); `logsumexp` is max-shifted. Loads
in these loops are in range by construction (`checked = false`); shape agreements are
`dad.check`s.
"""
from __future__ import annotations

from ..lang import ir
from . import ast as A
from .builtins import BUILTINS, CAST_TARGET
from .types import SCALARS, ir_type

REASSOC = {"fastmath": "reassoc"}


def _loop(em, lb, ub, inits, body, iv="i"):
    """scf.for lb..ub step 1 with carried `inits`; body(i, carried) -> new carried."""
    op, blk = em.b.for_(lb, ub, em.b.i(1), inits, iv_name=iv)
    em.mark_made_loop(op)
    prev = em.b
    em.b = ir.Builder(blk)
    out = body(blk.args[0], list(blk.args[1:]))
    em.b.yield_(out)
    em.b = prev
    return op.results


def _load(em, a, idx):
    if isinstance(a, _Line):
        return a.at(idx[0])
    return em.b.load(a, idx, checked=False)


class _Line:
    """One line of an array along `axis` at the other indices `rest`, read by a reduction as
    if it were a 1-D array (`_load(em, line, [i])`): `sum(A, axis=0)` reduces each column in
    place, with no copy."""

    def __init__(self, em, arr, axis, rest):
        self.em, self.arr, self.axis, self.rest = em, arr, axis, list(rest)
        self.type = arr.type        # `.type.elem`, as an array's

    def at(self, i):
        idx = self.rest[:self.axis] + [i] + self.rest[self.axis:]
        return self.em.b.load(self.arr, idx, checked=False)


def axis_of(e: A.Call):
    """The axis of a reduction along one (set by the type checker, normalised), or None."""
    return e.info[1] if isinstance(e.info, tuple) and e.info[0] == "axis" else None


def along_axis(em, e: A.Call, reduce_line):
    """`f(A, axis=a)`: an array of A's shape without axis a (a scalar for a vector), each
    element `reduce_line(line, n)` of the line of A through it."""
    arr, a = em.ev(e.args[0]), axis_of(e)
    dims = [em.b.dim(arr, k) for k in range(arr.type.rank)]
    rest = dims[:a] + dims[a + 1:]
    if not rest:
        return reduce_line(_Line(em, arr, a, []), dims[a])
    out = em.own_temp(em.b.alloc(ir_type(e.ty.elem), rest, loc=e.span.loc))

    def body(ivs):
        em.b.store(reduce_line(_Line(em, arr, a, ivs), dims[a]), out, ivs, checked=False)
    em.loop_nest(rest, body, (f"{e.func}(..., axis={a})", e.span.loc))
    return out


def _add_acc(em, acc, v):
    if acc.type.is_float:
        return em.b.addf(acc, v, **REASSOC)
    return em.b.addi(acc, v)


# ----------------------------------------------------------------------------- elementwise scalars
def math1(em, e: A.Call):
    v = em.ev(e.args[0])
    if e.func == "abs" and v.type.is_int:
        return em.b.one("math.absi", [v], v.type)
    return em.b.one(BUILTINS[e.func].op, [v], v.type)


def math2(em, e: A.Call):
    a, b = em.ev(e.args[0]), em.ev(e.args[1])
    return em.b.one(BUILTINS[e.func].op, [a, b], a.type)


def minmax(em, e: A.Call):
    if axis_of(e) is not None:
        return along_axis(em, e, lambda line, n: extreme(em, e, line, n))
    if len(e.args) == 1:
        return extreme(em, e)
    a, b = em.ev(e.args[0]), em.ev(e.args[1])
    if a.type.is_int:
        return em.b.one("arith.maxsi" if e.func == "max" else "arith.minsi", [a, b], a.type)
    c = em.b.cmpf("oge" if e.func == "max" else "ole", a, b)  # ties pick `a`
    # `tie = "split"`: on a tie the derivative goes half to each operand (ad/rules.py)
    return em.b.one("arith.select", [c, a, b], a.type, tie="split")


_CASTS = {  # (from, to) -> op
    ("i64", "f64"): "arith.sitofp", ("i64", "f32"): "arith.sitofp",
    ("f64", "i64"): "arith.fptosi", ("f32", "i64"): "arith.fptosi",
    ("f32", "f64"): "arith.extf", ("f64", "f32"): "arith.truncf",
    ("i1", "i64"): "arith.extui",
}


def cast(em, e: A.Call):
    v = em.ev(e.args[0])
    to = ir_type(SCALARS[CAST_TARGET[e.func]])
    if v.type == to:
        return v
    return em.b.cast(_CASTS[(v.type.name, to.name)], v, to)


def select(em, e: A.Call):
    c, a, b = (em.ev(x) for x in e.args)
    return em.b.select(c, a, b)


def where(em, e: A.Call):
    """Per element (the elementwise loop evaluates it on scalars), or on three scalars."""
    c, a, b = (em.ev(x) for x in e.args)
    return em.b.select(c, a, b)


def anyall(em, e: A.Call):
    f, n = _flat(em, e.args[0])
    init = em.b.const(e.func == "all", ir.BOOL)
    op = "ori" if e.func == "any" else "andi"   # on the loop body's builder (em.b then)
    return _loop(em, em.b.i(0), n, [init],
                 lambda i, c: [getattr(em.b, op)(c[0], _load(em, f, [i]))])[0]


# ----------------------------------------------------------------------------- reductions
def _flat(em, e):
    v = em.ev(e)
    f = em.collapse(v)
    return f, em.b.dim(f, 0)


def reduce(em, e: A.Call, f=None, n=None):
    if f is None and axis_of(e) is not None:
        return along_axis(em, e, lambda line, k: reduce(em, e, line, k))
    if f is None:
        f, n = _flat(em, e.args[0])
    t = f.type.elem
    if e.func == "sum":
        init, step = em.b.const(0, t), lambda acc, v: _add_acc(em, acc, v)
    else:  # prod
        # in order: every derivative of a product reads its running value (recorded by
        # reverse mode, carried by forward mode), which keeps a derived function's loop in
        # order; reordering the plain one would give a primal that differs in the last bits
        init = em.b.const(1, t)
        step = (lambda acc, v: em.b.mulf(acc, v)) if t.is_float else (lambda acc, v: em.b.muli(acc, v))
    return _loop(em, em.b.i(0), n, [init], lambda i, c: [step(c[0], _load(em, f, [i]))])[0]


def extreme(em, e: A.Call, f=None, n=None):
    """max(x)/min(x): the first extreme element; ValueError on an empty array. On floats the
    result is `m + t / k`, with `k` the number of elements equal to the extreme `m` and `t` the
    sum of their `x_i - m` (all zero), so its value is `m` and its derivative the mean of the
    tied elements' derivatives (LANGUAGE.md); for an infinite `m` it is `sum(ties) / k`. This
    costs a second pass only when there is a tie (k > 1)."""
    if f is None:
        f, n = _flat(em, e.args[0])
    t = f.type.elem
    said = getattr(e, "written", e.func)   # softmax's logsumexp reports as softmax
    em.emit_check([em.b.cmpi("sgt", n, em.b.i(0))], f"{said}() of an empty array", e.span)
    first = _load(em, f, [em.b.i(0)])
    big = e.func in ("max", "logsumexp")
    if not t.is_float:
        def body(i, c):
            v = _load(em, f, [i])
            return [em.b.select(em.b.cmpi("sgt" if big else "slt", v, c[0]), v, c[0])]
        return _loop(em, em.b.i(1), n, [first], body)[0]

    def count(i, c):
        v = _load(em, f, [i])
        better = em.b.cmpf("ogt" if big else "olt", v, c[0])
        k = em.b.select(em.b.cmpf("oeq", v, c[0]), em.b.addi(c[1], em.b.i(1)), c[1])
        return [em.b.select(better, v, c[0]), em.b.select(better, em.b.i(1), k)]
    m, k = _loop(em, em.b.i(1), n, [first, em.b.i(1)], count)
    op, tied, single = em.b.if_(em.b.cmpi("sgt", k, em.b.i(1)), [t])
    ir.Builder(single).yield_([m])
    prev, em.b = em.b, ir.Builder(tied)

    def ties(i, c):
        v = _load(em, f, [i])
        tie = em.b.cmpf("oeq", v, m)
        zero = em.b.const(-0.0, t)
        # -(m - v), not v - m: -0.0 when v == m, so that m + dev / k keeps the sign of a zero m
        return [em.b.addf(c[0], em.b.select(tie, em.b.negf(em.b.subf(m, v)), zero)),
                em.b.addf(c[1], em.b.select(tie, v, zero))]
    dev, total = _loop(em, em.b.i(0), n, [em.b.const(-0.0, t), em.b.const(-0.0, t)], ties)
    kf = em.b.cast("arith.sitofp", k, t)
    finite = em.b.cmpf("olt", em.b.math("absf", m), em.b.const(float("inf"), t))
    em.b.yield_([em.b.select(finite, em.b.addf(m, em.b.divf(dev, kf)), em.b.divf(total, kf))])
    em.b = prev
    return op.results[0]


def mean_var(em, f, n, t, func):
    """mean(x) = sum(x) / n; var(x) = sum((x - mean(x))²) / n (the population variance, in two
    passes: no cancellation of a sum of squares against a squared sum). NaN for no elements."""
    total = _loop(em, em.b.i(0), n, [em.b.const(0, t)],
                  lambda i, c: [_add_acc(em, c[0], _load(em, f, [i]))])[0]
    count = em.b.cast("arith.sitofp", n, t)
    mu = em.b.divf(total, count)
    if func == "mean":
        return mu

    def body(i, c):
        d = em.b.subf(_load(em, f, [i]), mu)
        return [_add_acc(em, c[0], em.b.mulf(d, d))]
    return em.b.divf(_loop(em, em.b.i(0), n, [em.b.const(0, t)], body)[0], count)


def reduce_float(em, e: A.Call, f=None, n=None):
    if f is None and axis_of(e) is not None:
        return along_axis(em, e, lambda line, k: reduce_float(em, e, line, k))
    if f is None:
        f, n = _flat(em, e.args[0])
    t = f.type.elem
    if e.func == "norm":
        return norm(em, f, n, t)
    if e.func in ("mean", "var"):
        return mean_var(em, f, n, t, e.func)
    # logsumexp: m + log(sum(exp(x - m))), m = max(x); m itself when m is not finite (+inf:
    # its derivative is then max's, split evenly among the +inf entries; -inf: all entries are
    # -inf, split evenly among all), the limits of softmax
    m = extreme(em, e, f, n)
    finite = em.b.cmpf("olt", em.b.math("absf", m), em.b.const(float("inf"), t))
    shift = em.b.select(finite, m, em.b.const(0, t))

    def body(i, c):
        v = _load(em, f, [i])
        return [em.b.addf(c[0], em.b.math("exp", em.b.subf(v, shift)), **REASSOC)]
    s = _loop(em, em.b.i(0), n, [em.b.const(0, t)], body)[0]
    return em.b.select(finite, em.b.addf(shift, em.b.math("log", s)), m)


# norm: the plain sum of squares is used when it lies in [2^-LO, 2^HI] (its square root and
# the derivatives' 1/S, 1/S^1.5 then stay in range); else the elements are scaled by a power of
# two near 1/max|x| (exact, and derived through integers, so it is a constant to AD). KMAX keeps
# that power and its inverse normal numbers.
_NORM_RANGE = {"f64": (500, 500, 1020), "f32": (60, 60, 126)}


def _sum_squares(em, f, n, t, c=None):
    def body(i, acc):
        v = _load(em, f, [i])
        if c is not None:
            v = em.b.mulf(v, c)
        return [em.b.addf(acc[0], em.b.mulf(v, v), **REASSOC)]
    return _loop(em, em.b.i(0), n, [em.b.const(0, t)], body)[0]


def norm(em, f, n, t):
    """sqrt(sum(x²)) without overflow or underflow: when the plain sum of squares is out of
    range (huge or tiny elements, or all zero), sqrt(sum((c x)²)) / c with c = 2^-k, k ~
    log2(max|x|); 0 (derivative 0, LANGUAGE.md) when every element is 0; with infinite
    elements, inf with the derivative sign(x_i)/sqrt(k) on the k infinite ones."""
    lo, hi, kmax = _NORM_RANGE[t.name]
    s = _sum_squares(em, f, n, t)
    ok = em.b.andi(em.b.cmpf("oge", s, em.b.const(2.0 ** -lo, t)), em.b.cmpf("ole", s, em.b.const(2.0 ** hi, t)))
    op, plain, scaled = em.b.if_(ok, [t])
    ir.Builder(plain).yield_([ir.Builder(plain).math("sqrt", s)])
    prev, em.b = em.b, ir.Builder(scaled)

    inf = em.b.const(float("inf"), t)

    def biggest(i, c):  # max |x_i|, and the number and sum of the infinite |x_i|
        v = em.b.math("absf", _load(em, f, [i]))
        is_inf = em.b.cmpf("oeq", v, inf)
        return [em.b.select(em.b.cmpf("ogt", v, c[0]), v, c[0]),
                em.b.select(is_inf, em.b.addi(c[1], em.b.i(1)), c[1]),
                em.b.addf(c[2], em.b.select(is_inf, v, em.b.const(0, t)))]
    m, kinf, sinf = _loop(em, em.b.i(0), n, [em.b.const(0, t), em.b.i(0), em.b.const(0, t)], biggest)
    k = em.b.cast("arith.fptosi", em.b.mulf(em.b.math("log", m), em.b.const(1 / 0.6931471805599453, t)), ir.I64)
    k = em.b.one("arith.minsi", [em.b.one("arith.maxsi", [k, em.b.i(-kmax)], ir.I64), em.b.i(kmax)], ir.I64)
    two = em.b.const(2.0, t)
    c = em.b.math("powf", two, em.b.cast("arith.sitofp", em.b.subi(em.b.i(0), k), t))
    inv = em.b.math("powf", two, em.b.cast("arith.sitofp", k, t))
    s2 = _sum_squares(em, f, n, t, c)
    zero = em.b.const(0, t)
    # the select makes the derivative at 0 exactly 0, not 0 * inf
    r = em.b.select(em.b.cmpf("oeq", s2, zero), zero, em.b.mulf(em.b.math("sqrt", s2), inv))
    # k infinite entries: sum |x_i| / sqrt(k) over them, whose derivative sign(x_i) / sqrt(k) is
    # the limit of x / |x| along x = t (±1, ..., ±1, finite) (inf / inf otherwise)
    r_inf = em.b.divf(sinf, em.b.math("sqrt", em.b.cast("arith.sitofp", kinf, t)))
    # (a NaN element keeps the result NaN: then s2 is NaN, not inf)
    em.b.yield_([em.b.select(em.b.cmpf("oeq", s2, inf), r_inf, r)])
    em.b = prev
    return op.results[0]


def dot(em, e: A.Call):
    a, b = em.ev(e.args[0]), em.ev(e.args[1])
    if e.info == "shape_check":
        dims = [(em.b.dim(a, k), em.b.dim(b, k)) for k in range(a.type.rank)]
        sizes = " (sizes {d0} and {d1})" if len(dims) == 1 else ""
        em.emit_check([em.b.cmpi("eq", da, db) for da, db in dims],
                      f"shape mismatch in 'dot': {e.args[0].ty} and {e.args[1].ty}{sizes}", e.span,
                      details=list(dims[0]) if len(dims) == 1 else ())
    fa, fb = em.collapse(a), em.collapse(b)
    n = em.b.dim(fa, 0)

    def body(i, c):
        return [em.b.addf(c[0], em.b.mulf(_load(em, fa, [i]), _load(em, fb, [i])), **REASSOC)]
    return _loop(em, em.b.i(0), n, [em.b.const(0, fa.type.elem)], body)[0]


# ----------------------------------------------------------------------------- linear algebra
def _inner_check(em, e, da, db):
    if e.info == "shape_check":
        em.emit_check([em.b.cmpi("eq", da, db)],
                      f"shape mismatch in '{e.func}': {e.args[0].ty} and {e.args[1].ty} "
                      f"(the inner sizes are {{d0}} and {{d1}})", e.span, details=[da, db])


def matvec(em, e: A.Call):
    A_, x = em.ev(e.args[0]), em.ev(e.args[1])
    n, m = em.b.dim(A_, 0), em.b.dim(A_, 1)
    _inner_check(em, e, m, em.b.dim(x, 0))
    t = x.type.elem
    y = em.own_temp(em.b.alloc(t, [n]))

    def row(i, _):
        def col(j, c):
            return [em.b.addf(c[0], em.b.mulf(_load(em, A_, [i, j]), _load(em, x, [j])), **REASSOC)]
        acc = _loop(em, em.b.i(0), m, [em.b.const(0, t)], col, iv="j")[0]
        em.b.store(acc, y, [i], checked=False)
        return []
    _loop(em, em.b.i(0), n, [], row)
    return y


def matmul(em, e: A.Call):
    A_, B = em.ev(e.args[0]), em.ev(e.args[1])
    n, k, m = em.b.dim(A_, 0), em.b.dim(A_, 1), em.b.dim(B, 1)
    _inner_check(em, e, k, em.b.dim(B, 0))
    t = A_.type.elem
    C = em.own_temp(em.b.alloc(t, [n, m]))

    # C[i, :] += A[i, p] * B[p, :] for p in order: each element sums its terms in order (the
    # same bits in a function and in its derived functions, however each is vectorised),
    # and the vectors run along the rows of B and C
    def row(i, _):
        def term(p, _):
            a = _load(em, A_, [i, p])

            def col(j, _):
                c = _load(em, C, [i, j])
                em.b.store(em.b.addf(c, em.b.mulf(a, _load(em, B, [p, j]))), C, [i, j], checked=False)
                return []
            _loop(em, em.b.i(0), m, [], col, iv="j")
            return []
        _loop(em, em.b.i(0), k, [], term, iv="p")
        return []
    _loop(em, em.b.i(0), n, [], row)
    return C


def transpose(em, e: A.Call):
    A_ = em.ev(e.args[0])
    n, m = em.b.dim(A_, 0), em.b.dim(A_, 1)
    T = em.own_temp(em.b.alloc(A_.type.elem, [m, n]))

    def row(i, _):
        def col(j, _):
            em.b.store(_load(em, A_, [i, j]), T, [j, i], checked=False)
            return []
        _loop(em, em.b.i(0), m, [], col, iv="j")
        return []
    _loop(em, em.b.i(0), n, [], row)
    return T


def outer(em, e: A.Call):
    a, b = em.ev(e.args[0]), em.ev(e.args[1])
    n, m = em.b.dim(a, 0), em.b.dim(b, 0)
    O = em.own_temp(em.b.alloc(a.type.elem, [n, m]))

    def row(i, _):
        ai = _load(em, a, [i])

        def col(j, _):
            em.b.store(em.b.mulf(ai, _load(em, b, [j])), O, [i, j], checked=False)
            return []
        _loop(em, em.b.i(0), m, [], col, iv="j")
        return []
    _loop(em, em.b.i(0), n, [], row)
    return O


# ----------------------------------------------------------------------------- sizes and construction
def size(em, e: A.Call):
    v = em.ev(e.args[0])
    return em.b.dim(v, 1 if e.func == "cols" else 0)


def _fill(em, buf, value):
    f = em.collapse(buf)

    def body(i, _):
        em.b.store(value, f, [i], checked=False)
        return []
    _loop(em, em.b.i(0), em.b.dim(f, 0), [], body)


def make(em, e: A.Call):
    t = ir_type(e.ty.elem)
    dims = [em.ev(a) for a in e.args]
    buf = em.own_temp(em.b.alloc(t, dims, loc=e.span.loc))
    if e.func == "ones":
        _fill(em, buf, em.b.const(1, t))
    return buf


def full(em, e: A.Call):
    t = ir_type(e.ty.elem)
    dims = [em.ev(a) for a in e.args[:-1]]
    value = em.ev(e.args[-1])
    buf = em.own_temp(em.b.alloc(t, dims, loc=e.span.loc))
    _fill(em, buf, value)
    return buf


def copy(em, e: A.Call):
    return em.own_temp(em.copy_array(em.ev(e.args[0])))


def ravel(em, e: A.Call):
    """A flat view of the array (no copy)."""
    return em.collapse(em.ev(e.args[0]))


def reshape(em, e: A.Call):
    """A fresh array of the new shape holding the elements in order (ValueError when the
    element counts differ)."""
    v = em.ev(e.args[0])
    dims = [em.ev(a) for a in e.args[1:]]
    have = em.b.dim(em.collapse(v), 0)
    want = dims[0]
    for d in dims[1:]:
        want = em.b.muli(want, d)
    em.emit_check([em.b.cmpi("eq", have, want)],
                  "'reshape' of an array of {d0} elements to {d1} elements", e.span, details=[have, want])
    out = em.own_temp(em.b.alloc(v.type.elem, dims, loc=e.span.loc))
    em.b.op("memref.copy", [v, out])
    return out


def concat(em, e: A.Call):
    vals = [em.ev(a) for a in e.args]
    rank = vals[0].type.rank
    rest = [em.b.dim(vals[0], k) for k in range(1, rank)]
    if e.info == "shape_check":
        for a, v in zip(e.args[1:], vals[1:]):
            for k in range(1, rank):
                dk, d0 = em.b.dim(v, k), rest[k - 1]
                em.emit_check([em.b.cmpi("eq", dk, d0)], f"shape mismatch in 'concat': size {{d0}} on "
                              f"axis {k}, the first array's {{d1}}", a.span, details=[dk, d0])
    total = em.b.dim(vals[0], 0)
    for v in vals[1:]:
        total = em.b.addi(total, em.b.dim(v, 0))
    out = em.own_temp(em.b.alloc(vals[0].type.elem, [total, *rest], loc=e.span.loc))
    offset = em.b.i(0)
    for v in vals:
        n = em.b.dim(v, 0)

        def body(ivs, v=v, offset=offset):
            em.b.store(em.b.load(v, ivs, checked=False), out, [em.b.addi(offset, ivs[0]), *ivs[1:]],
                       checked=False)
        em.loop_nest([n, *rest], body, ("concat", e.span.loc))
        offset = em.b.addi(offset, n)
    return out


class _Site:
    """The reduction `func` computed for the call the user wrote (softmax's logsumexp): its
    errors point at that call and name it (`written`)."""

    def __init__(self, func, span, written):
        self.func, self.span, self.written = func, span, written


def softmax(em, e: A.Call):
    """exp(x - logsumexp(x)) (log_softmax: x - logsumexp(x)) along the axis, line by line:
    stable for every input (logsumexp's shift by the maximum)."""
    arr, a = em.ev(e.args[0]), axis_of(e)
    dims = [em.b.dim(arr, k) for k in range(arr.type.rank)]
    out = em.own_temp(em.b.alloc(arr.type.elem, dims, loc=e.span.loc))
    site = _Site("logsumexp", e.span, e.func)

    def line(rest):
        lse = reduce_float(em, site, _Line(em, arr, a, rest), dims[a])

        def body(i, _):
            idx = rest[:a] + [i] + rest[a:]
            d = em.b.subf(em.b.load(arr, idx, checked=False), lse)
            em.b.store(em.b.math("exp", d) if e.func == "softmax" else d, out, idx, checked=False)
            return []
        _loop(em, em.b.i(0), dims[a], [], body)
    rest = dims[:a] + dims[a + 1:]
    if rest:
        em.loop_nest(rest, line, (e.func, e.span.loc))
    else:
        line([])
    return out


def stack(em, e: A.Call):
    return em.ev(e.info[1])


LOWER = {
    "math1": math1, "math2": math2, "minmax": minmax, "cast": cast, "select": select,
    "where": where, "anyall": anyall,
    "reduce": reduce, "reduce_float": reduce_float, "dot": dot,
    "matvec": matvec, "matmul": matmul, "transpose": transpose, "outer": outer,
    "size": size, "make": make, "full": full, "copy": copy, "ravel": ravel, "reshape": reshape,
    "concat": concat, "stack": stack, "softmax": softmax,
}
