"""Front-end types: scalars, arrays with symbolic dimensions, tuples, and literal types.

Contract: a dimension is an `int` (literal), a `str` (a size variable of the enclosing
function) or a `Dyn` (a size known only at run time; two `Dyn`s are equal only if they are the
same object). `LIT_INT`/`LIT_FLOAT` are the types of untyped literal expressions before the
type checker fixes them from context (int literal -> i64 or any float; float literal -> f64
or f32). `ir_type` maps a front-end type to the IR type; `spec` to a `lang.signature.TypeSpec`.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from ..lang import ir
from ..lang.signature import TypeSpec

_ids = count()


class Dyn:
    """A run-time dimension (unique identity)."""
    __slots__ = ("id",)

    def __init__(self):
        self.id = next(_ids)

    def __repr__(self):
        return "?"


Dim = int | str | Dyn


@dataclass(frozen=True)
class Scalar:
    name: str  # f64 f32 i64 bool, or "int literal" / "float literal"

    @property
    def is_float(self): return self.name in ("f64", "f32", "float literal")

    @property
    def is_int(self): return self.name in ("i64", "int literal")

    @property
    def is_bool(self): return self.name == "bool"

    @property
    def is_literal(self): return self.name.endswith("literal")

    @property
    def is_numeric(self): return self.is_float or self.is_int

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Array:
    elem: Scalar
    dims: tuple

    @property
    def rank(self): return len(self.dims)

    def __str__(self):
        return f"{self.elem}[{', '.join('?' if isinstance(d, Dyn) else str(d) for d in self.dims)}]"


@dataclass(frozen=True)
class Tuple:
    items: tuple

    def __str__(self):
        return "(" + ", ".join(map(str, self.items)) + ")"


F64, F32, I64, BOOL = Scalar("f64"), Scalar("f32"), Scalar("i64"), Scalar("bool")
LIT_INT, LIT_FLOAT = Scalar("int literal"), Scalar("float literal")
SCALARS = {"f64": F64, "f32": F32, "i64": I64, "bool": BOOL}
ERROR = Scalar("<error>")  # the type of an expression that already produced a diagnostic

_IR_SCALAR = {"f64": ir.F64, "f32": ir.F32, "i64": ir.I64, "bool": ir.BOOL,
              "int literal": ir.I64, "float literal": ir.F64}


def is_array(t) -> bool:
    return isinstance(t, Array)


def elem(t) -> Scalar:
    return t.elem if isinstance(t, Array) else t


def default(t):
    """Fix a literal type to its default (i64, f64)."""
    if t == LIT_INT:
        return I64
    if t == LIT_FLOAT:
        return F64
    if isinstance(t, Array) and t.elem.is_literal:
        return Array(default(t.elem), t.dims)
    return t


def ir_type(t) -> ir.Type:
    if isinstance(t, Array):
        return ir.MemRefType(_IR_SCALAR[t.elem.name], t.rank)
    return _IR_SCALAR[t.name]


def spec(t) -> TypeSpec:
    if isinstance(t, Array):
        return TypeSpec(t.elem.name, tuple(t.dims))
    return TypeSpec(t.name)


def from_spec(t: TypeSpec):
    """The inverse of `spec`: a signature type as a front-end type."""
    s = SCALARS[t.dtype]
    return Array(s, tuple(t.dims)) if t.dims else s


def same_dim(a: Dim, b: Dim) -> bool:
    """Statically known to be equal."""
    if isinstance(a, Dyn) or isinstance(b, Dyn):
        return a is b
    return a == b


def is_one(d: Dim) -> bool:
    """A literal size 1 (an axis NumPy's broadcasting stretches)."""
    return isinstance(d, int) and not isinstance(d, bool) and d == 1


def conflicting_dim(a: Dim, b: Dim) -> bool:
    """Statically known to differ: two different literals, or two different size variables
    of the function's signature (each names its own size; LANGUAGE.md: `matvec(A, x)` with
    `A: f64[n, m]`, `x: f64[n]` is a compile-time error). A size variable against a literal,
    and anything against a run-time size (`?`), is checked when the program runs."""
    if isinstance(a, int) and isinstance(b, int):
        return a != b
    return isinstance(a, str) and isinstance(b, str) and a != b
