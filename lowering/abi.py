"""How IR types become LLVM types, and the calling conventions of generated functions.

Every IR value is a list of LLVM *components*: a scalar is one component; a
`memref<?x..xT>` of rank r is r + 1 components `(data pointer, dim0, ..., dim r-1)`.

- Internal functions `dad.impl.NAME(ctx, components of each parameter...)` return their one
  scalar result directly, or a literal struct of the components of all results (void when
  there are none). On error they set `ctx.status` and return undef; callers check it.
- Each exported function has one C entry, `NAME` (see `lowering.entry`). Bool parameters
  and results are bytes (C `_Bool`); `errinfo`, when not null, receives
  `(site, detail0, detail1)` on error (site numbers: `Lowered.sites`, from 1).
  - One scalar result: `NAME(components of each parameter..., i64 *errinfo) -> scalar`
    returns the result; on error a sentinel (NaN, INT64_MIN, or 2 for a bool), which a
    genuine result can equal: the caller tells them apart by `errinfo[0]` (0: no error),
    re-running the (pure) function with an `errinfo` buffer when it passed none.
  - Otherwise: `NAME(components of each parameter..., out pointer per result,
    i64 *errinfo) -> i64` returns 0 or the error site; array results are copied into
    caller-provided buffers of the declared shape. A caller may instead take an array
    result itself (no copy): it passes a NULL out pointer, sets `errinfo[0]` to
    `entry.HANDOVER` and gives `errinfo` 3 + (number of results) slots; slot `3 + k` then
    receives the data pointer of result k, which the caller frees with `free(ptr - 16)`, or
    0 when that result cannot be handed over (then it calls again with a buffer).
The context `ctx` is `{i64 status, i64 detail0, i64 detail1, ptr alloc_list}` followed by
`{ptr data, i64 size, i64 cap}` for each tape level (see `lowering.tape`) and the lowest
stack address calls of recursive functions may reach (`lowering.stack`) and the SIGINT
count when the call started (`lowering.interrupt`), on the stack of the entry; all heap arrays of one call are linked in its list so an error frees them all.
"""
from __future__ import annotations

from llvmlite import ir

from ..lang.ir import MemRefType, PtrType, ScalarType

F64 = ir.DoubleType()
F32 = ir.FloatType()
I64 = ir.IntType(64)
I32 = ir.IntType(32)
I8 = ir.IntType(8)
I1 = ir.IntType(1)
PTR = I8.as_pointer()
TAPE_LEVELS = 4  # nested reverse modes each record on a tape of their own
CTX = ir.LiteralStructType([I64, I64, I64, PTR] + [PTR, I64, I64] * TAPE_LEVELS  # + tapes: data, size, cap
                          + [I64, I64])  # stack limit (lowering.stack), SIGINTs seen (lowering.interrupt)
CTX_STACK_LIMIT = 4 + 3 * TAPE_LEVELS
CTX_INTERRUPTS = CTX_STACK_LIMIT + 1
CTX_PTR = CTX.as_pointer()

_SCALAR = {"f64": F64, "f32": F32, "i64": I64, "i1": I1}
ELEM_BYTES = {"f64": 8, "f32": 4, "i64": 8, "i1": 1}


def scalar_type(t: ScalarType) -> ir.Type:
    return _SCALAR[t.name]


def elem_ptr_type(t: MemRefType) -> ir.Type:
    return memory_type(t.elem).as_pointer()


def memory_type(t: ScalarType) -> ir.Type:
    """How a scalar is stored in an array (bools as bytes)."""
    return I8 if t.is_bool else scalar_type(t)


def components(t) -> list[ir.Type]:
    if isinstance(t, ScalarType):
        return [scalar_type(t)]
    if isinstance(t, MemRefType):
        return [elem_ptr_type(t)] + [I64] * t.rank
    if isinstance(t, PtrType):
        return [PTR]
    raise TypeError(f"no LLVM type for {t}")


def flat_types(types) -> list[ir.Type]:
    return [c for t in types for c in components(t)]


def internal_return_type(result_types) -> ir.Type:
    flat = flat_types(result_types)
    if not flat:
        return ir.VoidType()
    if len(result_types) == 1 and isinstance(result_types[0], ScalarType):
        return flat[0]
    return ir.LiteralStructType(flat)


def internal_function_type(param_types, result_types) -> ir.FunctionType:
    return ir.FunctionType(internal_return_type(result_types), [CTX_PTR] + flat_types(param_types))


def abi_scalar(t: ScalarType) -> ir.Type:
    """A scalar as it crosses the C boundary."""
    return I8 if t.is_bool else scalar_type(t)
