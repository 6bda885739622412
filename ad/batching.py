"""vmap: a function applied to a batch, as an IR-to-IR transformation.

Contract: `vmap_function(module, fname, wrt, new_name)` adds `new_name`, whose parameters
named in `wrt` (default: all of them) have a new leading axis of size `batch` (a scalar
becomes a vector), the others are shared, and every result has the leading axis:
`new(x[b], ...)` is `f(x[b], ...)` for each b. Its body is a loop over the batch calling `f`
on row views (no copies of the inputs) and storing each result into its row of the output;
so it is exactly the hand-written loop, and every transform composes with it
(`grad(vmap(f))` differentiates the loop, `vmap(grad(f))` loops over gradients). Batched
parameters of different batch sizes raise ValueError; results' sizes come from the sizes of
the parameters that bind them (the signature says which).
"""
from __future__ import annotations

from ..lang.ir import Builder, Function, MemRefType, Module, Value
from ..lang.signature import parse_signature
from .signatures import derived_signature


def _copy_into(b: Builder, src: Value, dst: Value, row: Value, dims: list[Value]) -> None:
    """dst[row, ...] = src[...] element by element, as nested loops over `dims` (the sizes
    `dst` was allocated with): stores that index `dst` itself over its own sizes, so that
    `skip_zero_fill` sees every element written and leaves the output unfilled."""
    ivs: list[Value] = []
    builders = [b]
    for d in dims:
        _, blk = builders[-1].for_(builders[-1].i(0), d, builders[-1].i(1), [], iv_name="k")
        ivs.append(blk.args[0])
        builders.append(Builder(blk))
    inner = builders[-1]
    inner.store(inner.load(src, list(ivs), checked=False), dst, [row, *ivs], checked=False)
    for bb in reversed(builders[1:]):
        bb.yield_([])


def vmap_function(module: Module, fname: str, wrt: list[str] | None, new_name: str) -> Function:
    fn = module[fname]
    sig = parse_signature(fn.attrs["sig"])
    new_sig = derived_signature("vmap", sig, wrt)
    batched = {p.name for p, q in zip(sig.params, new_sig.params) if p.type != q.type}
    types = []
    for p, t in zip(sig.params, fn.param_types):
        if p.name not in batched:
            types.append(t)
        elif isinstance(t, MemRefType):
            types.append(MemRefType(t.elem, t.rank + 1))
        else:
            types.append(MemRefType(t, 1))
    res_types = [MemRefType(t.elem, t.rank + 1) if isinstance(t, MemRefType) else MemRefType(t, 1)
                 for t in fn.result_types]
    new = module.add(Function(new_name, types, res_types, [p.name for p in new_sig.params],
                              {"sig": str(new_sig)}))
    b = Builder(new.body)
    params = dict(zip([p.name for p in sig.params], new.params))
    first = next(p.name for p in sig.params if p.name in batched)
    batch = b.dim(params[first], 0)
    for name in [p.name for p in sig.params if p.name in batched][1:]:
        d = b.dim(params[name], 0)
        b.op("dad.check", [b.cmpi("eq", d, batch), d, batch], kind="ValueError",
             msg=f"vmap of '{fname}': '{name}' has batch size {{d0}}, '{first}' {{d1}}",
             loc=fn.attrs.get("loc", ""))
    # the results' sizes: each size variable from the parameter (and axis) that binds it
    where = sig.size_vars()

    def size(d) -> Value:
        if isinstance(d, int):
            return b.i(d)
        pname, axis = where[d]
        return b.dim(params[pname], axis + (1 if pname in batched else 0))
    out_dims = [[size(d) for d in r.dims] for r in sig.results]
    outs = [b.alloc(t.elem, [batch] + dims) for t, dims in zip(res_types, out_dims)]
    _, body = b.for_(b.i(0), batch, b.i(1), [], iv_name="batch_index")
    lb = Builder(body)
    i = body.args[0]
    args = []
    for p, t in zip(sig.params, fn.param_types):
        v = params[p.name]
        if p.name not in batched:
            args.append(v)
        elif isinstance(t, MemRefType):
            args.append(lb.one("memref.row", [v, i], t))
        else:
            args.append(lb.load(v, [i], checked=False))
    results = lb.call(fname, args, fn.result_types)
    for r, out, dims in zip(results, outs, out_dims):
        if isinstance(r.type, MemRefType):
            _copy_into(lb, r, out, i, dims)
            lb.dealloc(r)
        else:
            lb.store(r, out, [i], checked=False)
    lb.yield_([])
    b.ret(outs)
    return new


__all__ = ["vmap_function"]
