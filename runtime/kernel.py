"""Python callables for compiled functions: argument conversion, size checks, results, errors.

For each exported function a small Python function is generated (source text, compiled
once) that converts its arguments as LANGUAGE.md's "Calling from Python" says, binds size
variables, allocates or checks `out=`, and calls the machine code through ctypes:
- functions with one scalar result call their entry without an error-info buffer and, only
  when it returns its error sentinel (NaN, INT64_MIN, 2), again with one, which re-runs the
  pure function to learn the error or to confirm a genuine NaN result;
- the others call their entry with output buffers and an error-info buffer.
Errors from compiled code become IndexError / ZeroDivisionError / ValueError / MemoryError
with the `.dad` location; bad arguments become TypeError / ValueError naming the parameter
(a masked array is a TypeError: its mask would be lost).
"""
from __future__ import annotations

import builtins
import ctypes
import keyword
import math
import weakref

import numpy as np

from ..lang.signature import Signature, TypeSpec, parse_signature
from ..lowering.entry import HANDOVER
from .interrupt import arm_function, raise_interrupt, take_stopped

DTYPES = {"f64": np.float64, "f32": np.float32, "i64": np.int64, "bool": np.bool_}
CTYPES = {"f64": ctypes.c_double, "f32": ctypes.c_float, "i64": ctypes.c_int64,
          "bool": ctypes.c_uint8}
ERRORS = {"IndexError": IndexError, "ZeroDivisionError": ZeroDivisionError,
          "ValueError": ValueError, "MemoryError": MemoryError, "RecursionError": RecursionError}


def as_array(value, name: str, dtype, rank: int) -> np.ndarray:
    """`value` as a C-contiguous array of `dtype` and `rank`, converting only losslessly."""
    if type(value) is np.ndarray and value.dtype == dtype and value.ndim == rank \
            and value.flags.c_contiguous:
        return value
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"parameter '{name}': masked arrays are not supported (the mask would "
                        "be ignored); pass an ndarray, e.g. .filled(...) or .compressed()")
    try:
        a = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"parameter '{name}': cannot convert {type(value).__name__} "
                        f"to an array ({exc})") from None
    if a.ndim != rank:
        raise TypeError(f"parameter '{name}' expects a {rank}-D array of "
                        f"{np.dtype(dtype).name}, got a {a.ndim}-D {type(value).__name__}")
    if a.dtype != dtype:
        lossless = np.can_cast(a.dtype, dtype, "safe") and a.dtype.kind != "O"
        if a.size == 0 and a.dtype == np.float64:
            lossless = True  # an empty list
        if not lossless:
            raise TypeError(f"parameter '{name}' expects {np.dtype(dtype).name} elements; "
                            f"{a.dtype.name} cannot be converted without loss")
        a = a.astype(dtype)
    return np.ascontiguousarray(a)


def check_bool(value, name: str):
    if type(value) is bool or isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"parameter '{name}' expects a bool, got {type(value).__name__}")


def check_int(value, name: str):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"parameter '{name}' expects an i64, got {type(value).__name__}")
    value = int(value)
    if not -(1 << 63) <= value < (1 << 63):
        raise OverflowError(f"parameter '{name}': {value} does not fit in an i64")
    return value


def check_float(value, name: str):
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    raise TypeError(f"parameter '{name}' expects a float, got {type(value).__name__}")


def alloc_out(shape, dtype):
    """The result buffer, or None when the shape cannot be allocated (a negative size, too
    large): the compiled code then reports its own error first (e.g. the negative size it was
    asked for), or MemoryError."""
    try:
        return np.empty(shape, dtype)
    except (MemoryError, ValueError):
        return None


HANDOVER_BYTES = 1 << 18  # results from this size up are taken from the call, not copied
ITEMSIZE = {t: np.dtype(t).itemsize for t in DTYPES.values()}
_free = ctypes.CDLL(None).free
_free.argtypes = [ctypes.c_void_p]
_free.restype = None


def alloc_big(shape, dtype):
    """Like `alloc_out`, but None for a large result: the call hands its own buffer over."""
    if math.prod(shape) * ITEMSIZE[dtype] >= HANDOVER_BYTES:
        return None
    return alloc_out(shape, dtype)


def adopt(ptr: int, shape, dtype):
    """A NumPy array over memory a compiled call handed over (freed when the array dies),
    or None when the call could not hand it over."""
    if not ptr:
        return None
    count = math.prod(shape)
    buf = (ctypes.c_char * max(1, count * ITEMSIZE[dtype])).from_address(ptr)
    weakref.finalize(buf, _free, ptr - 16)
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)


_char_at = ctypes.c_char.from_buffer
_address_of = ctypes.addressof


def data_address(a) -> int:
    """The address of an array's data (0 for None). Through the buffer protocol, four times
    faster than `a.ctypes.data`, which stays the way for what that cannot take (read-only or
    empty arrays)."""
    if a is None:
        return 0
    try:
        return _address_of(_char_at(a))
    except (TypeError, ValueError):
        return a.ctypes.data


def raise_error(sites, errinfo) -> None:
    site = sites[errinfo[0] - 1]
    if site.kind == "KeyboardInterrupt":
        raise_interrupt()
    raise ERRORS.get(site.kind, RuntimeError)(site.render(errinfo[1], errinfo[2]))


def _pyname(name: str, taken: set[str]) -> str:
    out = name if not keyword.iskeyword(name) and not hasattr(builtins, name) else name + "_"
    while out in taken:
        out += "_"
    taken.add(out)
    return out


def _out_shape(spec: TypeSpec, dims: dict[str, str]) -> str:
    parts = [str(d) if isinstance(d, int) else dims[d] for d in spec.dims]
    return "(" + "".join(p + ", " for p in parts) + ")"


def make_kernel(name: str, sig_text: str, c_addr: int, scalar: bool, sites) -> "type":
    """Build the Python callable of one function (see the module docstring); `scalar`: its
    entry returns its one scalar result (`lowering.entry`)."""
    sig = parse_signature(sig_text)
    taken = {"self", "out", "np", "ctypes"}
    local = [_pyname(p.name, taken) for p in sig.params]
    env: dict = {"np": np, "_as_array": as_array, "_alloc_out": alloc_out, "_data": data_address,
                 "_alloc_big": alloc_big, "_adopt": adopt, "_HANDOVER": HANDOVER, "_check_bool": check_bool,
                 "_check_int": check_int, "_check_float": check_float,
                 "_raise": raise_error, "_sites": sites, "_ctypes": ctypes,
                 "_stopped": take_stopped, "_interrupt": raise_interrupt}
    arg_ctypes: list = []
    call_args: list[str] = []
    body: list[str] = []
    dims: dict[str, str] = {}
    first: dict[str, str] = {}
    for p, v in zip(sig.params, local):
        t = p.type
        if t.rank == 0:
            conv = {"f64": "_check_float", "f32": "_check_float", "i64": "_check_int",
                    "bool": "_check_bool"}[t.dtype]
            if t.dtype in ("f64", "f32"):
                # fast path: exact Python floats pass straight to ctypes
                body.append(f"    if type({v}) is not float: {v} = {conv}({v}, {p.name!r})")
            else:
                body.append(f"    {v} = {conv}({v}, {p.name!r})")
            arg_ctypes.append(CTYPES[t.dtype])
            call_args.append(v)
            continue
        env[f"_dt_{v}"] = DTYPES[t.dtype]
        body.append(f"    {v} = _as_array({v}, {p.name!r}, _dt_{v}, {t.rank})")
        body.append(f"    _shape_{v} = {v}.shape")
        arg_ctypes.append(ctypes.c_void_p)
        call_args.append(f"_data({v})")
        for axis, d in enumerate(t.dims):
            arg_ctypes.append(ctypes.c_int64)
            got = f"_shape_{v}[{axis}]"
            call_args.append(got)
            if isinstance(d, int):
                body.append(f"    if {got} != {d}: raise ValueError(\"parameter '{p.name}' must have "
                            f"size {d} along axis {axis}, not \" + str({got}))")
            elif d in dims:
                body.append(f"    if {got} != {dims[d]}: raise ValueError(\"size mismatch: parameter "
                            f"'{p.name}' has size \" + str({got}) + \" along axis {axis}, but parameter "
                            f"'{first[d]}' gives {d} = \" + str({dims[d]}))")
            else:
                dims[d] = got
                first[d] = p.name
    for p, v in zip(sig.params, local):  # `-> f64[k]` for a `k: i64` parameter
        if p.type.dtype == "i64" and not p.type.dims and p.name not in dims:
            dims[p.name] = v
    params = ", ".join(local)
    if scalar:
        cfunc_type = ctypes.CFUNCTYPE(CTYPES[sig.results[0].dtype], *arg_ctypes, ctypes.c_void_p)
    else:
        cfunc_type = ctypes.CFUNCTYPE(ctypes.c_int64, *arg_ctypes,
                                      *([ctypes.c_void_p] * len(sig.results)), ctypes.c_void_p)
    env["_centry"] = cfunc_type(c_addr)
    array_results = [k for k, r in enumerate(sig.results) if r.rank]
    lines = [f"def __call__(self{', ' if params else ''}{params}"
             + (", *, out=None):" if array_results else "):")]
    lines += body
    # the C entry call with output buffers
    slow = []
    outs = []
    for k, r in enumerate(sig.results):
        if r.rank:
            env[f"_rdt{k}"] = DTYPES[r.dtype]
            shape = _out_shape(r, dims)
            slow.append(f"    _o{k} = _alloc_big({shape}, _rdt{k}) if _outs is None else "
                        f"_outs[{array_results.index(k)}]")
            outs.append(f"_data(_o{k})")
        else:
            env[f"_rct{k}"] = CTYPES[r.dtype]
            slow.append(f"    _o{k} = _rct{k}()")
            outs.append(f"_ctypes.addressof(_o{k})")
    if array_results:
        env["_check_out"] = _make_out_checker(sig, array_results)
        lines.append(f"    _outs = None if out is None else _check_out(out, "
                     f"[{', '.join(_out_shape(sig.results[k], dims) for k in array_results)}])")
    else:
        lines.append("    _outs = None")
    result_exprs = []
    for k, r in enumerate(sig.results):
        if r.rank:
            result_exprs.append(f"_o{k}")
        else:
            conv = {"f64": "{}.value", "f32": "np.float32({}.value)", "i64": "{}.value",
                    "bool": "bool({}.value)"}[r.dtype]
            result_exprs.append(conv.format(f"_o{k}"))
    ret = result_exprs[0] if len(result_exprs) == 1 and not sig.tuple_result else \
        "(" + ", ".join(result_exprs) + ("," if len(result_exprs) == 1 else "") + ")"
    nerr = 3 + len(sig.results)
    arm = arm_function() if any(s.kind == "KeyboardInterrupt" for s in sites) else None
    if arm is not None:   # the module polls for Ctrl-C: each call starts armed (runtime.interrupt)
        env["_arm"] = arm

    def call(indent: str, stmt: str) -> list[str]:
        """The lines of a statement that enters the compiled function (armed first if polled)."""
        return [indent + "_arm()"] * (arm is not None) + [indent + stmt]

    slow_call = [*slow, f"    _err = (_ctypes.c_int64 * {nerr})()"]
    if array_results:
        handed = " or ".join(f"_o{k} is None" for k in array_results)
        slow_call += [f"    _hand = {handed}", "    if _hand: _err[0] = _HANDOVER"]
    slow_call += call("    ", f"if _centry({', '.join(call_args + outs)}, _err): _raise(_sites, _err)")
    if array_results:
        # taken over from the call; a result it could not hand over (the same array returned
        # twice, say) makes the (pure) function run again into buffers of our own
        slow_call += ["    if _hand:"]
        for k in array_results:
            shape = _out_shape(sig.results[k], dims)
            slow_call.append(f"        _o{k} = _adopt(_err[{3 + k}], {shape}, _rdt{k}) if _o{k} is None else _o{k}")
        missing = " or ".join(f"_o{k} is None" for k in array_results)
        slow_call += [f"        if {missing}:"]
        for k in array_results:
            shape = _out_shape(sig.results[k], dims)
            slow_call.append(f"            _o{k} = _alloc_out({shape}, _rdt{k})")
        slow_call += [f"            _err = (_ctypes.c_int64 * {nerr})()",
                      *call("            ", f"if _centry({', '.join(call_args + outs)}, _err): _raise(_sites, _err)")]
    slow_call.append(f"    return {ret}")
    if scalar:
        r = sig.results[0]
        sentinel = {"f64": "_r != _r", "f32": "_r != _r", "i64": "_r == -9223372036854775808",
                    "bool": "_r == 2"}[r.dtype]
        conv = {"f64": "_r", "f32": "np.float32(_r)", "i64": "_r", "bool": "_r == 1"}[r.dtype]
        lines += call("    ", f"_r = _centry({', '.join(call_args + ['None'])})")
        lines.append(f"    if not ({sentinel}): return {conv}")
        # the sentinel: an error, or a genuine NaN (say); run again to learn which (not
        # after a Ctrl-C, which stopped it)
        lines += ["    if _stopped(): _interrupt()",
                  "    _err = (_ctypes.c_int64 * 3)()",
                  *call("    ", f"_r = _centry({', '.join(call_args + ['_err'])})"),
                  "    if _err[0]: _raise(_sites, _err)",
                  f"    return {conv}"]
    else:
        lines += slow_call
    src = "\n".join(lines) + "\n"
    try:
        exec(compile(src, f"<dad kernel {name}>", "exec"), env)
    except SyntaxError as exc:  # pragma: no cover - generated code is ours
        raise RuntimeError(f"internal error generating the caller of {name}: {exc}\n{src}") from exc
    call = env["__call__"]
    kernel_cls = type(f"Kernel_{name}", (Kernel,), {"__call__": call})
    k = kernel_cls(name, sig)
    k._cfunc = env["_centry"]
    k._centry = env["_centry"]
    k._caller_source = src
    return k


def _make_out_checker(sig: Signature, array_results: list[int]):
    specs = [sig.results[k] for k in array_results]

    def check_out(out, shapes):
        arrays = out if isinstance(out, tuple) else (out,)
        if len(arrays) != len(specs):
            raise ValueError(f"out= needs {len(specs)} array(s), got {len(arrays)}")
        for a, spec, shape in zip(arrays, specs, shapes):
            if not isinstance(a, np.ndarray) or isinstance(a, np.ma.MaskedArray):
                raise TypeError(f"out= expects numpy arrays, got {type(a).__name__}")
            if a.dtype != DTYPES[spec.dtype]:
                raise TypeError(f"out= array has dtype {a.dtype}, expected {np.dtype(DTYPES[spec.dtype]).name}")
            if a.shape != tuple(shape):
                raise ValueError(f"out= array has shape {a.shape}, expected {tuple(shape)}")
            if not (a.flags.c_contiguous and a.flags.writeable):
                raise ValueError("out= array must be C-contiguous and writeable")
        return arrays
    return check_out


class Kernel:
    """A compiled function. Call it; read `signature`, `ir`, `llvm_ir`, `asm`."""

    def __init__(self, name: str, sig: Signature):
        self.name = name
        self.sig = sig
        self.signature = str(sig)
        self.module = None  # set by the owning CompiledModule

    @property
    def ir(self) -> str:
        return self.module.function_ir(self.name)

    @property
    def llvm_ir(self) -> str:
        return self.module.function_llvm_ir(self.name)

    @property
    def asm(self) -> str:
        return self.module.function_asm(self.name)

    def __repr__(self) -> str:
        return f"<dad function {self.name}{self.signature}>"
