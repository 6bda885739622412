"""The builtin functions of `.dad`: one table row per name, used by the type checker and the
emitter.

Contract: `BUILTINS[name]` gives the kind (which typing rule applies), the accepted number of
positional arguments and, for math functions, the IR op of the scalar case. Typing rules live in
`frontend.typecheck_builtins` (keyed by kind), lowering rules in `frontend.lower_builtins` (keyed by
kind or name). Everything elementwise (`math1`, `math2`, binary `min`/`max`, `cast`) is applied per
element when given arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..lang.mathops import MATH


@dataclass(frozen=True)
class BuiltinSig:
    kind: str
    min_args: int
    max_args: int | None  # None: unbounded
    op: str | None = None
    kwargs: tuple = ()


_SAME = object()


def _row(kind, lo, hi=_SAME, op=None, kwargs=()):
    return BuiltinSig(kind, lo, lo if hi is _SAME else hi, op, kwargs)


BUILTINS: dict[str, BuiltinSig] = {}
for _m in MATH:   # the elementary functions, declared in lang/mathops.py
    if _m.builtin is not None:
        BUILTINS[_m.builtin] = _row("math%d" % _m.arity, _m.arity, op="math." + _m.op)
BUILTINS["min"] = _row("minmax", 1, 2, kwargs=("axis",))
BUILTINS["max"] = _row("minmax", 1, 2, kwargs=("axis",))
for _n in ["sum", "prod"]:
    BUILTINS[_n] = _row("reduce", 1, kwargs=("axis",))
for _n in ["logsumexp", "norm", "mean", "var"]:
    BUILTINS[_n] = _row("reduce_float", 1, kwargs=("axis",) if _n in ("logsumexp", "mean") else ())
BUILTINS["dot"] = _row("dot", 2)
BUILTINS["matvec"] = _row("matvec", 2)
BUILTINS["matmul"] = _row("matmul", 2)
BUILTINS["transpose"] = _row("transpose", 1)
BUILTINS["outer"] = _row("outer", 2)
BUILTINS["len"] = _row("size", 1)
BUILTINS["rows"] = _row("size", 1)
BUILTINS["cols"] = _row("size", 1)
BUILTINS["zeros"] = _row("make", 1, None, kwargs=("dtype",))
BUILTINS["ones"] = _row("make", 1, None, kwargs=("dtype",))
BUILTINS["full"] = _row("full", 2, None, kwargs=("dtype",))
BUILTINS["copy"] = _row("copy", 1)
BUILTINS["ravel"] = _row("ravel", 1)
BUILTINS["reshape"] = _row("reshape", 2, None)
BUILTINS["concat"] = _row("concat", 1, None)
BUILTINS["stack"] = _row("stack", 1, None)
BUILTINS["softmax"] = _row("softmax", 1, kwargs=("axis",))
BUILTINS["log_softmax"] = _row("softmax", 1, kwargs=("axis",))
BUILTINS["select"] = _row("select", 3)
BUILTINS["where"] = _row("where", 3)          # elementwise select
BUILTINS["any"] = _row("anyall", 1)
BUILTINS["all"] = _row("anyall", 1)
for _n in ["float", "int", "f32", "f64"]:
    BUILTINS[_n] = _row("cast", 1)

# Builtins added by the contract's additions of December 2026. A program may define a function
# of one of these names (written before they existed): its own function is called, in that file.
ADDED_2026 = frozenset({"cbrt", "exp2", "log2", "log10", "hypot", "relu", "softplus", "log_sigmoid",
                        "stop_gradient", "where", "any", "all", "mean", "var", "softmax",
                        "log_softmax", "ravel", "reshape", "concat", "stack"})
assert ADDED_2026 <= set(BUILTINS)

CAST_TARGET = {"float": "f64", "f64": "f64", "f32": "f32", "int": "i64"}
CONSTANTS = {"pi": 3.141592653589793, "inf": float("inf"), "nan": float("nan")}
ELEMENTWISE_KINDS = {"math1", "math2", "cast", "where"}  # plus minmax with two arguments
TRANSFORMS = {"grad", "value_and_grad", "jvp", "vjp", "jacobian", "hessian", "hvp", "custom", "vmap"}


def is_elementwise_call(name: str, nargs: int) -> bool:
    sig = BUILTINS.get(name)
    if sig is None:
        return False
    return sig.kind in ELEMENTWISE_KINDS or (sig.kind == "minmax" and nargs == 2)
