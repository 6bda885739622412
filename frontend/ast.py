"""The `.dad` abstract syntax tree: plain dataclasses, each with a source `Span`.

Contract: `frontend.parser.parse` builds these nodes; `frontend.typecheck` annotates every
expression in place with its type (`node.ty`, a `frontend.types` type) and a few facts the
emitter needs (`Name.kind`, `Binary.shape_check`, `Call.kind`); `frontend.emit` reads them.
Nodes never hold Lark objects. `If.orelse` is a `Block` (an `else if` chain is a block holding
one `If`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Span:
    file: str
    line: int
    col: int
    end_line: int
    end_col: int  # exclusive, 1-based

    @property
    def loc(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def to(self, other: "Span") -> "Span":
        return Span(self.file, self.line, self.col, other.end_line, other.end_col)


# ----------------------------------------------------------------------------- types (syntax)
@dataclass
class Dim:
    value: int | str
    span: Span


@dataclass
class TypeExpr:
    name: str
    dims: list[Dim] | None  # None for a scalar
    span: Span


@dataclass
class TupleTypeExpr:
    items: list[TypeExpr]
    span: Span


# ----------------------------------------------------------------------------- expressions
@dataclass
class Expr:
    span: Span
    ty: Any = field(default=None, kw_only=True, compare=False, repr=False)


@dataclass
class IntLit(Expr):
    value: int


@dataclass
class FloatLit(Expr):
    value: float


@dataclass
class BoolLit(Expr):
    value: bool


@dataclass
class Name(Expr):
    id: str
    kind: str | None = field(default=None, kw_only=True, compare=False, repr=False)  # set by typecheck


@dataclass
class Unary(Expr):
    op: str  # "-" | "not"
    operand: Expr


@dataclass
class Binary(Expr):
    op: str  # + - * / % ** < <= > >= == != and or
    left: Expr
    right: Expr
    shape_check: bool = field(default=False, kw_only=True, compare=False, repr=False)


@dataclass
class Keyword:
    name: str
    value: Expr
    span: Span


@dataclass
class Call(Expr):
    func: str
    func_span: Span
    args: list[Expr]
    kwargs: list[Keyword]
    kind: str | None = field(default=None, kw_only=True, compare=False, repr=False)  # "user" | "builtin"
    info: Any = field(default=None, kw_only=True, compare=False, repr=False)


@dataclass
class Slice(Expr):
    start: Expr
    stop: Expr


@dataclass
class Index(Expr):
    base: Expr
    indices: list[Expr]  # one per dimension at most; each an index or a Slice


@dataclass
class TupleExpr(Expr):
    items: list[Expr]


@dataclass
class ArrayLit(Expr):
    items: list[Expr]  # scalars of one type, or arrays of one type and shape (a new first axis)


# ----------------------------------------------------------------------------- statements
@dataclass
class Stmt:
    span: Span


@dataclass
class Block:
    stmts: list[Stmt]
    span: Span


@dataclass
class Let(Stmt):
    mutable: bool          # `var` (True) or `let`
    names: list[str]
    name_spans: list[Span]
    destructure: bool      # `let (a, b) = ...`
    type: TypeExpr | None
    value: Expr


@dataclass
class Assign(Stmt):
    target: Name | Index
    op: str  # "=" "+=" "-=" "*=" "/="
    value: Expr


@dataclass
class If(Stmt):
    cond: Expr
    then: Block
    orelse: Block | None


@dataclass
class For(Stmt):
    var: str
    var_span: Span
    start: Expr
    stop: Expr
    step: Expr | None
    body: Block


@dataclass
class While(Stmt):
    cond: Expr
    body: Block


@dataclass
class Break(Stmt):
    pass


@dataclass
class Continue(Stmt):
    pass


@dataclass
class Return(Stmt):
    value: Expr


# ----------------------------------------------------------------------------- top level
@dataclass
class Param:
    name: str
    type: TypeExpr
    span: Span


@dataclass
class FnDef:
    name: str
    name_span: Span
    params: list[Param]
    ret: TypeExpr | TupleTypeExpr
    body: Block
    span: Span


@dataclass
class TransformOption:
    name: str
    value: Any  # str | list[str] | int | float | bool
    span: Span


@dataclass
class Transform:
    name: str           # grad, hvp, ...
    name_span: Span
    fn: "str | Transform"
    fn_span: Span
    options: list[TransformOption]
    span: Span


@dataclass
class DerivedDef:
    name: str
    name_span: Span
    transform: Transform
    span: Span


@dataclass
class Program:
    items: list[FnDef | DerivedDef]
    file: str
    source: str
