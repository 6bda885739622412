"""Dense Jacobians, by forward sweeps (columns) or reverse sweeps (rows).

`jacobian_function(module, name, wrt, new_name)` adds `new_name(params...) -> J` where `J` has
shape `out.shape + x.shape` (`x` the one `wrt` parameter, `out` the one result). Forward:
⌈numel(x)/k⌉ sweeps of the width-k tangent function, seeding k unit directions per sweep and
scattering the k output tangents into columns of `J` (`choose_width` picks k). Reverse: one
sweep of the adjoint function per output element, each giving a row. With mode "auto" the
function picks at run time: reverse when the output has fewer elements than x.
"""
from __future__ import annotations

from ..lang.ir import I64, Builder, Function, MemRefType, Module, ScalarType, Value
from ..lang.signature import Signature, TypeSpec, parse_signature
from .forward import derived_name, jvp_function, wrt_params
from .reverse import vjp_function
from .signatures import ADError

MAX_WIDTH = 8


def choose_width(x_type) -> int:
    """k directions per sweep: one for a scalar, otherwise a short vector the SLP vectoriser
    packs into registers (8 doubles = one AVX-512 register, two AVX2 registers)."""
    return 1 if not isinstance(x_type, MemRefType) else MAX_WIDTH


def _numel(b: Builder, a: Value) -> Value:
    n = b.i(1)
    for d in range(a.type.rank):
        n = b.muli(n, b.dim(a, d))
    return n


def _size_value(b: Builder, fn: Function, sig: Signature, d) -> Value:
    """The run-time value of a dimension of the signature: literal, size variable, or i64 param."""
    if isinstance(d, int):
        return b.i(d)
    where = sig.size_vars()
    if d in where:
        pname, axis = where[d]
        return b.dim(fn.params[[p.name for p in sig.params].index(pname)], axis)
    return fn.params[[p.name for p in sig.params].index(d)]


def jacobian_function(module: Module, name: str, wrt: list[str] | None, new_name: str,
                      width: int | None = None, mode: str = "auto") -> Function:
    """`mode`: "forward" (vector mode), "reverse" (one adjoint sweep per output) or "auto"
    (reverse when the output has fewer elements than x, decided at run time)."""
    f = module[name]
    sig = parse_signature(f.attrs["sig"])
    xs = wrt_params(f, wrt)
    if len(xs) != 1:
        raise ADError(f"jacobian of '{name}' needs exactly one parameter to differentiate "
                      f"(wrt=...), got {len(xs)}")
    if len(f.result_types) != 1:
        raise ADError(f"jacobian of '{name}' needs a function with one result, not a tuple")
    x = xs[0]
    xi = f.params.index(x)
    xspec = sig.params[xi].type
    out_t, out_spec = f.result_types[0], sig.results[0]
    elem: ScalarType = out_t.elem if isinstance(out_t, MemRefType) else out_t
    if not elem.is_float:
        raise ADError(f"jacobian of '{name}': its result is not a float")
    k = (width or choose_width(x.type)) if isinstance(x.type, MemRefType) else 1
    jsig = Signature(sig.params, (TypeSpec(out_spec.dtype, tuple(out_spec.dims) + tuple(xspec.dims)),))
    rank = len(out_spec.dims) + len(xspec.dims)
    J_t = MemRefType(elem, rank)
    new = module.add(Function(new_name, f.param_types, [J_t] if rank else [elem],
                              [p.name for p in sig.params], {"sig": str(jsig)}))
    b = Builder(new.body)
    P = new.params
    X = P[xi]
    if rank == 0:  # scalar in, scalar out: one sweep with a unit seed
        jname = derived_name(name, "jvp", [x.name], 1)
        if jname not in module.functions:
            jvp_function(module, name, [x.name], jname, 1, internal=True)
        one = b.const(1.0, x.type)
        r = b.call(jname, [*P, one], [out_t, out_t])
        b.ret([r[1]])
        return new
    dims = [_size_value(b, new, sig, d) for d in out_spec.dims] + \
           [_size_value(b, new, sig, d) for d in xspec.dims]
    J = b.alloc(elem, dims, "J")
    Jf = b.one("memref.collapse", [J], MemRefType(elem, 1))
    nx = _numel(b, X) if isinstance(x.type, MemRefType) else b.i(1)
    nout = b.i(1)
    for d in dims[:len(out_spec.dims)]:
        nout = b.muli(nout, d)
    J_info = (J, Jf, nx, nout, elem, dims[:len(out_spec.dims)])
    scalar_out = not isinstance(out_t, MemRefType)
    scalar_x = not isinstance(x.type, MemRefType)
    if mode == "auto" and tuple(out_spec.dims) == tuple(xspec.dims):
        mode = "forward"  # as many outputs as inputs: forward sweeps share the primal
    if mode == "forward" or (mode == "auto" and scalar_x):
        _fill_forward(b, module, name, P, X, x, out_t, J_info, k)
    elif mode == "reverse" or (mode == "auto" and scalar_out):
        _fill_reverse(b, module, name, P, X, x, out_t, J_info)
    else:  # fewer outputs than inputs: one reverse sweep per output, else forward sweeps
        _, fwd, rev = b.if_(b.cmpi("slt", nout, nx), [])
        _fill_reverse(Builder(rev), module, name, P, X, x, out_t, J_info)
        Builder(rev).yield_([])
        _fill_forward(Builder(fwd), module, name, P, X, x, out_t, J_info, k)
        Builder(fwd).yield_([])
    b.ret([J])
    return new


def _fill_forward(b: Builder, module, name, P, X, x, out_t, J_info, k) -> None:
    """J column by column: ⌈numel(x)/k⌉ sweeps of the width-k tangent function."""
    J, Jf, nx, nout, elem, _ = J_info
    jname = derived_name(name, "jvp", [x.name], k)
    if jname not in module.functions:
        jvp_function(module, name, [x.name], jname, k, internal=True)
    xelem = x.type.elem if isinstance(x.type, MemRefType) else x.type
    scalar_x = not isinstance(x.type, MemRefType)
    if scalar_x:
        seeds = [b.const(1.0, xelem)]
    else:
        xdims = [b.dim(X, d) for d in range(x.type.rank)]
        seeds = [b.alloc(xelem, xdims, f"seed{j}") for j in range(k)]
        flat_seeds = [b.one("memref.collapse", [s], MemRefType(xelem, 1)) for s in seeds]
    kc = b.i(k)
    chunks = b.one("arith.floordivsi", [b.addi(nx, b.i(k - 1)), kc], I64)
    loop, body = b.for_(b.i(0), chunks, b.i(1), [], "c")
    lb = Builder(body)
    c = body.args[0]
    base = lb.muli(c, kc)

    def each_direction(fill):
        for j in range(k):
            idx = lb.addi(base, lb.i(j))
            _, then, other = lb.if_(lb.cmpi("slt", idx, nx), [])
            tb = Builder(then)
            fill(tb, j, idx)
            tb.yield_([])
            Builder(other).yield_([])

    one = lb.const(1.0, xelem)
    zero = lb.const(0.0, xelem)
    if not scalar_x:
        each_direction(lambda tb, j, idx: tb.store(one, flat_seeds[j], [idx]))
    res = lb.call(jname, [*P, *seeds], [out_t] * (1 + k))
    dots = res[1:]

    def scatter(tb, j, idx):
        if isinstance(out_t, MemRefType):
            df = tb.one("memref.collapse", [dots[j]], MemRefType(elem, 1))
            inner, ib = tb.for_(tb.i(0), nout, tb.i(1), [], "o")
            ibb = Builder(ib)
            o = ib.args[0]
            v = ibb.load(df, [o])
            ibb.store(v, Jf, [ibb.addi(ibb.muli(o, nx), idx)])
            ibb.yield_([])
        else:
            tb.store(dots[j], Jf, [idx])
        if not scalar_x:
            tb.store(zero, flat_seeds[j], [idx])

    each_direction(scatter)
    if isinstance(out_t, MemRefType):
        for v in res:
            lb.dealloc(v)
    lb.yield_([])
    if not scalar_x:
        for s in seeds:
            b.dealloc(s)


def _fill_reverse(b: Builder, module, name, P, X, x, out_t, J_info) -> None:
    """J row by row: one sweep of the adjoint function per output element."""
    J, Jf, nx, nout, elem, out_dims = J_info
    vname = derived_name(name, "vjp", [x.name])
    if vname not in module.functions:
        vjp_function(module, name, [x.name], vname, internal=True)
    scalar_out = not isinstance(out_t, MemRefType)
    loop, body = b.for_(b.i(0), nout, b.i(1), [], "o")
    lb = Builder(body)
    o = body.args[0]
    if scalar_out:
        seed = lb.const(1.0, out_t)
    else:
        seed = lb.alloc(elem, out_dims, "seed")
        lb.store(lb.const(1.0, elem), lb.one("memref.collapse", [seed], MemRefType(elem, 1)), [o])
    res = lb.call(vname, [*P, seed], [out_t, x.type])
    xbar = res[1]
    if isinstance(x.type, MemRefType):
        xf = lb.one("memref.collapse", [xbar], MemRefType(elem, 1))
        inner, ib = lb.for_(lb.i(0), nx, lb.i(1), [], "j")
        ibb = Builder(ib)
        j = ib.args[0]
        ibb.store(ibb.load(xf, [j]), Jf, [ibb.addi(ibb.muli(o, nx), j)])
        ibb.yield_([])
        lb.dealloc(xbar)
    else:
        lb.store(xbar, Jf, [o])
    if not scalar_out:
        lb.dealloc(res[0])
        lb.dealloc(seed)
    lb.yield_([])
