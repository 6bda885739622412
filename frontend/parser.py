"""`.dad` text -> `frontend.ast.Program`.

Contract: `parse(source, filename)` returns a Program or raises `CompileError` listing every
syntax error found. The LALR parser is built once (and cached on disk by Lark) from
`lang/dad.lark`. Recovery uses Lark's interactive error handling: at an unexpected token we
try inserting one token (`;`, `)`, `]`, `}`, a name) that lets parsing continue, else drop the
token; errors within a few tokens of the previous one are not reported (cascades).
"""
from __future__ import annotations

import math
import os
import re
from functools import lru_cache

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from . import ast as A
from .builtins import BUILTINS
from .diagnostics import CompileError, Diagnostic

_GRAMMAR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lang", "dad.lark")
if not os.path.exists(_GRAMMAR):  # installed layout: dad/lang/dad.lark beside dad/frontend
    _GRAMMAR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lang", "dad.lark")

I64_MAX = (1 << 63) - 1
RESERVED = frozenset("fn let var if else for in while break continue return and or not true false".split())


class _Track:
    """Tokens seen by the lexer (for error positions and cascade suppression)."""
    count = 0
    prev: Token | None = None
    last: Token | None = None

    @classmethod
    def reset(cls):
        cls.count, cls.prev, cls.last = 0, None, None

    @classmethod
    def see(cls, tok: Token) -> Token:
        cls.count += 1
        cls.prev, cls.last = cls.last, tok
        return tok


@lru_cache(maxsize=1)
def _lark() -> Lark:
    with open(_GRAMMAR) as f:
        grammar = f.read()
    kw = dict(parser="lalr", lexer="contextual", propagate_positions=True,
              maybe_placeholders=True, postlex=_PostLex())
    try:
        return Lark(grammar, cache=True, **kw)
    except Exception:  # pragma: no cover - unwritable cache dir
        return Lark(grammar, **kw)


class _PostLex:
    """Counts tokens on their way to the parser (no rewriting)."""
    always_accept = ()

    def process(self, stream):
        for tok in stream:
            yield _Track.see(tok)


# ----------------------------------------------------------------------------- tree -> AST
class _ToAst(Transformer):
    def __init__(self, file: str):
        super().__init__()
        self.file = file
        self.errors: list[Diagnostic] = []   # literals out of range
        self._min_i64: list[A.IntLit] = []   # 2**63 literals, valid only right after '-'

    def sp(self, meta) -> A.Span:
        return A.Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def tsp(self, tok: Token) -> A.Span:
        return A.Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    # -- top level
    def start(self, items):
        return list(items)

    @v_args(meta=True)
    def fn_def(self, meta, ch):
        name, *rest = ch
        body = rest[-1]
        ret = rest[-2]
        params = [p for p in rest[:-2] if isinstance(p, A.Param)]
        return A.FnDef(str(name), self.tsp(name), params, ret, body, self.sp(meta))

    @v_args(meta=True)
    def param(self, meta, ch):
        return A.Param(str(ch[0]), ch[1], self.sp(meta))

    @v_args(meta=True)
    def derived_def(self, meta, ch):
        return A.DerivedDef(str(ch[0]), self.tsp(ch[0]), ch[1], self.sp(meta))

    @v_args(meta=True)
    def tfm(self, meta, ch):
        name, fn, *opts = ch
        fn_name, fn_span = (fn.name, fn.span) if isinstance(fn, A.Transform) else fn
        fnv = fn if isinstance(fn, A.Transform) else fn_name
        return A.Transform(str(name), self.tsp(name), fnv, fn_span, opts, self.sp(meta))

    def fn_name(self, ch):
        return (str(ch[0]), self.tsp(ch[0]))

    @v_args(meta=True)
    def t_option(self, meta, ch):
        return A.TransformOption(str(ch[0]), ch[1], self.sp(meta))

    def t_name(self, ch): return str(ch[0])
    def t_list(self, ch): return [str(c) for c in ch]
    def t_int(self, ch): return self._int(ch[0])
    def t_float(self, ch): return self._float(ch[0])

    def _int(self, tok: Token, minus_ok: bool = False) -> int:
        """An integer literal's value; beyond i64 it is an error (2**63 is left to `neg`)."""
        value = int(tok)
        if value > I64_MAX + (1 if minus_ok else 0):
            self.errors.append(Diagnostic(self.tsp(tok), f"integer literal {tok} is out of "
                                          f"range for i64 (at most {I64_MAX})"))
            return 0
        return value

    def _float(self, tok: Token) -> float:
        value = float(tok)
        if math.isinf(value):
            self.errors.append(Diagnostic(self.tsp(tok), f"float literal {tok} is out of range "
                                          "for f64"))
            return 0.0
        return value
    def t_true(self, ch): return True
    def t_false(self, ch): return False

    # -- types
    @v_args(meta=True)
    def type(self, meta, ch):
        name, *dims = ch
        return A.TypeExpr(str(name), dims if dims else None, self.sp(meta))

    @v_args(meta=True)
    def dim(self, meta, ch):
        t = ch[0]
        return A.Dim(self._int(t) if t.type == "INT" else str(t), self.tsp(t))

    def ret_type(self, ch):
        return ch[0]

    @v_args(meta=True)
    def tuple_type(self, meta, ch):
        return A.TupleTypeExpr([c for c in ch if c is not None], self.sp(meta))

    # -- statements
    @v_args(meta=True)
    def block(self, meta, ch):
        return A.Block(list(ch), self.sp(meta))

    def single_binder(self, ch):
        return ([str(ch[0])], [self.tsp(ch[0])], False)

    def tuple_binder(self, ch):
        toks = [c for c in ch if c is not None]
        return ([str(t) for t in toks], [self.tsp(t) for t in toks], True)

    def _let(self, meta, ch, mutable):
        (names, spans, destr), ty, value = ch
        return A.Let(self.sp(meta), mutable, names, spans, destr, ty, value)

    @v_args(meta=True)
    def let_stmt(self, meta, ch): return self._let(meta, ch, False)

    @v_args(meta=True)
    def var_stmt(self, meta, ch): return self._let(meta, ch, True)

    @v_args(meta=True)
    def name_target(self, meta, ch):
        return A.Name(self.sp(meta), str(ch[0]))

    @v_args(meta=True)
    def index_target(self, meta, ch):
        base = A.Name(self.tsp(ch[0]), str(ch[0]))
        return A.Index(self.sp(meta), base, ch[1])

    @v_args(meta=True)
    def assign_stmt(self, meta, ch):
        return A.Assign(self.sp(meta), ch[0], str(ch[1]), ch[2])

    @v_args(meta=True)
    def if_stmt(self, meta, ch):
        cond, then, other = ch
        if isinstance(other, A.If):
            other = A.Block([other], other.span)
        return A.If(self.sp(meta), cond, then, other)

    @v_args(meta=True)
    def for_stmt(self, meta, ch):
        var, start, _rng, stop, _step_kw, step, body = ch
        return A.For(self.sp(meta), str(var), self.tsp(var), start, stop, step, body)

    @v_args(meta=True)
    def while_stmt(self, meta, ch): return A.While(self.sp(meta), ch[0], ch[1])

    @v_args(meta=True)
    def break_stmt(self, meta, ch): return A.Break(self.sp(meta))

    @v_args(meta=True)
    def continue_stmt(self, meta, ch): return A.Continue(self.sp(meta))

    @v_args(meta=True)
    def return_stmt(self, meta, ch): return A.Return(self.sp(meta), ch[0])

    # -- expressions
    @v_args(meta=True)
    def or_op(self, meta, ch): return A.Binary(self.sp(meta), "or", ch[0], ch[1])

    @v_args(meta=True)
    def and_op(self, meta, ch): return A.Binary(self.sp(meta), "and", ch[0], ch[1])

    @v_args(meta=True)
    def not_op(self, meta, ch): return A.Unary(self.sp(meta), "not", ch[0])

    @v_args(meta=True)
    def neg(self, meta, ch):
        if isinstance(ch[0], A.IntLit) and any(lit is ch[0] for lit in self._min_i64):
            self._min_i64 = [lit for lit in self._min_i64 if lit is not ch[0]]  # -2**63
            return A.IntLit(self.sp(meta), -I64_MAX - 1)
        return A.Unary(self.sp(meta), "-", ch[0])

    @v_args(meta=True)
    def binop(self, meta, ch):
        if str(ch[1]) == "@":   # matmul, matvec or dot by the operands' ranks (the type checker)
            return A.Call(self.sp(meta), "@", self.tsp(ch[1]), [ch[0], ch[2]], [])
        return A.Binary(self.sp(meta), str(ch[1]), ch[0], ch[2])

    @v_args(meta=True)
    def call(self, meta, ch):
        name, *args = ch
        pos = [a for a in args if isinstance(a, A.Expr)]
        kws = [a for a in args if isinstance(a, A.Keyword)]
        return A.Call(self.sp(meta), str(name), self.tsp(name), pos, kws)

    @v_args(meta=True)
    def var_call(self, meta, ch):
        """`var(x)`: the variance builtin, spelled like the `var` keyword (no expression starts
        a statement, so the two never meet)."""
        pos = [a for a in ch if isinstance(a, A.Expr)]
        kws = [a for a in ch if isinstance(a, A.Keyword)]
        name = A.Span(self.file, meta.line, meta.column, meta.line, meta.column + 3)
        return A.Call(self.sp(meta), "var", name, pos, kws)

    def pos_arg(self, ch): return ch[0]

    @v_args(meta=True)
    def kw_arg(self, meta, ch): return A.Keyword(str(ch[0]), ch[1], self.sp(meta))

    @v_args(meta=True)
    def index(self, meta, ch): return A.Index(self.sp(meta), ch[0], ch[1])

    def indices(self, ch): return list(ch)

    @v_args(meta=True)
    def slice(self, meta, ch): return A.Slice(self.sp(meta), ch[0], ch[2])

    @v_args(meta=True)
    def int_lit(self, meta, ch):
        lit = A.IntLit(self.sp(meta), self._int(ch[0], minus_ok=True))
        if lit.value == I64_MAX + 1:
            self._min_i64.append(lit)
        return lit

    def literal_errors(self) -> list[Diagnostic]:
        return self.errors + [Diagnostic(lit.span, f"integer literal {lit.value} is out of range "
                                         f"for i64 (at most {I64_MAX})") for lit in self._min_i64]

    @v_args(meta=True)
    def float_lit(self, meta, ch): return A.FloatLit(self.sp(meta), self._float(ch[0]))

    @v_args(meta=True)
    def true_lit(self, meta, ch): return A.BoolLit(self.sp(meta), True)

    @v_args(meta=True)
    def false_lit(self, meta, ch): return A.BoolLit(self.sp(meta), False)

    @v_args(meta=True)
    def name(self, meta, ch): return A.Name(self.sp(meta), str(ch[0]))

    @v_args(meta=True)
    def tuple_expr(self, meta, ch):
        return A.TupleExpr(self.sp(meta), [c for c in ch if c is not None])

    @v_args(meta=True)
    def array_lit(self, meta, ch):
        return A.ArrayLit(self.sp(meta), [c for c in ch if c is not None])


# ----------------------------------------------------------------------------- errors
_INSERTIONS = [("SEMICOLON", ";"), ("RPAR", ")"), ("RSQB", "]"), ("RBRACE", "}"), ("NAME", "_")]


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    return f"'{tok.value}'"


def _describe_expected(lark: Lark, expected: set[str]) -> str:
    if {"NAME", "INT", "FLOAT"} <= expected:
        return "an expression"
    words = []
    for name in sorted(expected):
        if name == "NAME":
            words.append("a name")
        elif name in ("INT", "FLOAT"):
            words.append("a number")
        elif name == "$END":
            words.append("end of file")
        else:
            try:
                pat = lark.get_terminal(name).pattern
                words.append(f"'{pat.value}'" if pat.type == "str" else name.lower())
            except KeyError:
                words.append(name.lower())
    words = sorted(set(words))
    if len(words) > 6:
        return ""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


_MODULES = ("np", "jnp", "numpy", "jax", "math", "scipy", "torch")


def _dot_hint(source: str, pos: int) -> str:
    """What a NumPy or JAX user meant by `a.b` at `pos` (the '.'), as a hint, or ""."""
    before = re.search(r"([A-Za-z_]\w*)$", source[:pos])
    after = re.match(r"([A-Za-z_]\w*)\s*(\()?", source[pos + 1:])
    if not before or not after:
        return ""
    obj, attr, call = before.group(1), after.group(1), after.group(2)
    if obj in _MODULES:
        return (f" (dad's builtins have no module prefix: write '{attr}(...)')" if attr in BUILTINS
                else f" (dad's builtins have no module prefix, and '{attr}' is not one of them)")
    if attr == "T":
        return f" (dad has functions, not attributes: write 'transpose({obj})')"
    if attr == "shape":
        return f" (dad has functions, not attributes: write 'len({obj})', 'rows({obj})', 'cols({obj})')"
    if attr in BUILTINS and call:
        return f" (dad has functions, not methods: write '{attr}({obj})')"
    return ""


class _Recovery:
    def __init__(self, lark: Lark, file: str, source: str = ""):
        self.lark = lark
        self.file = file
        self.source = source
        self.diags: list[Diagnostic] = []
        self.last_error_count = -100

    def report(self, span: A.Span, msg: str, force: bool = False) -> None:
        if force or _Track.count - self.last_error_count > 2:
            self.diags.append(Diagnostic(span, msg))
        self.last_error_count = _Track.count

    def span_of(self, tok: Token) -> A.Span:
        if tok.type == "$END" or tok.line is None:
            prev = _Track.last
            if prev is None:
                return A.Span(self.file, 1, 1, 1, 2)
            return A.Span(self.file, prev.end_line, prev.end_column, prev.end_line, prev.end_column + 1)
        return A.Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    def __call__(self, e: UnexpectedInput) -> bool:
        if isinstance(e, UnexpectedCharacters):
            hint = _dot_hint(self.source, e.pos_in_stream) if e.char == "." else ""
            if e.char == "?":
                hint = " (there is no ternary operator: use 'select(c, a, b)' or 'where', or an 'if')"
            self.report(A.Span(self.file, e.line, e.column, e.line, e.column + 1),
                        f"unexpected character '{e.char}'{hint}", force=True)
            return True
        if not isinstance(e, UnexpectedToken):
            return False
        tok, ip = e.token, e.interactive_parser
        at_end = tok.type == "$END"
        accepts = ip.accepts()
        if tok.value in RESERVED and "NAME" in accepts:
            self.report(self.span_of(tok), f"'{tok.value}' is a reserved word and cannot be used as a name")
            ip.feed_token(Token("NAME", "_" + tok.value, tok.start_pos, tok.line, tok.column,
                                tok.end_line, tok.end_column, tok.end_pos))
            return True
        for ttype, text in _INSERTIONS:
            if ttype not in accepts:
                continue
            fake = Token(ttype, text, tok.start_pos, tok.line, tok.column, tok.end_line, tok.end_column, tok.end_pos)
            trial = ip.copy()
            try:
                trial.feed_token(fake)
                if at_end:
                    trial.feed_eof(tok)
                else:
                    trial.feed_token(tok)
            except UnexpectedInput:
                continue
            p = _Track.prev if _Track.last is not None and _Track.last.start_pos == tok.start_pos else _Track.last
            if ttype == "SEMICOLON" and p is not None and not at_end:
                self.report(A.Span(self.file, p.end_line, p.end_column, p.end_line, p.end_column + 1),
                            f"expected ';' before {_describe_token(tok)}")
            else:
                what = {"NAME": "an expression"}.get(ttype, f"'{text}'")
                self.report(self.span_of(tok), f"unexpected {_describe_token(tok)}, expected {what}")
            ip.feed_token(fake)
            if not at_end:
                ip.feed_token(tok)
            return True
        exp = _describe_expected(self.lark, set(e.expected or accepts))
        msg = f"unexpected {_describe_token(tok)}" + (f", expected {exp}" if exp else "")
        self.report(self.span_of(tok), msg)
        return not at_end


MAX_NESTING = 3000
"""How deeply syntax may nest (parse-tree levels: about 1 per operator of a chain such as
`x + x + ... + x`, 4 per nested `if`). Deeper programs are refused with a diagnostic at the
deepest point; every phase handles this depth (on `runtime.deep`'s large stack)."""


def _deepest(tree, filename: str) -> tuple[int, A.Span]:
    """The depth of a Lark tree and the span of its deepest node, without recursion."""
    best, where = 0, None
    stack = [(tree, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, Token):
            if d > best and node.line is not None:
                best, where = d, node
            continue
        if node is None:
            continue
        if d > best and not node.meta.empty:
            best, where = d, node.meta
        stack.extend((c, d + 1) for c in node.children)
    if where is None:
        return best, A.Span(filename, 1, 1, 1, 2)
    if isinstance(where, Token):
        return best, A.Span(filename, where.line, where.column, where.end_line, where.end_column)
    return best, A.Span(filename, where.line, where.column, where.end_line, where.end_column)


def deepest_point(source: str, filename: str = "<string>") -> tuple[A.Span, int]:
    """Where `source` nests most deeply and how deep (for a program too deep to compile);
    the start of the file when it does not parse."""
    if source.startswith("\ufeff"):
        source = source[1:]
    _Track.reset()
    try:
        tree = _lark().parse(source)
    except UnexpectedInput:
        return A.Span(filename, 1, 1, 1, 2), 0
    depth, span = _deepest(tree, filename)
    return span, depth


def parse(source: str, filename: str = "<string>") -> A.Program:
    """Parse `.dad` source; raises CompileError with every syntax error found. A byte-order
    mark at the start is skipped."""
    if source.startswith("\ufeff"):
        source = source[1:]
    lark = _lark()
    _Track.reset()
    rec = _Recovery(lark, filename, source)
    try:
        tree = lark.parse(source, on_error=rec)
    except UnexpectedInput as e:
        if not rec.diags:
            tok = getattr(e, "token", None)
            span = rec.span_of(tok) if tok is not None else A.Span(filename, e.line, e.column, e.line, e.column + 1)
            rec.diags.append(Diagnostic(span, "syntax error"))
        tree = None
    if rec.diags:
        raise CompileError(rec.diags, source)
    depth, span = _deepest(tree, filename)
    if depth > MAX_NESTING:
        raise CompileError([Diagnostic(span, f"nested too deeply: {depth} levels of syntax "
                                             f"(at most {MAX_NESTING})")], source)
    to_ast = _ToAst(filename)
    try:
        items = to_ast.transform(tree)
    except VisitError as e:  # pragma: no cover - a bug, not a user mistake
        raise e.orig_exc
    if to_ast.literal_errors():
        raise CompileError(to_ast.literal_errors(), source)
    prog = A.Program(items, filename, source)
    return prog
