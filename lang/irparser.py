"""Parser for the canonical text form written by `lang.printer`.

Contract: `parse_module(text)` reads what `print_module` writes and returns a fresh `Module`
such that `print_module(parse_module(print_module(m))) == print_module(m)`; `parse_function`
reads a single `func.func`. The grammar is the printer's uniform op shape and nothing more:

    module   := function*
    function := 'func.func' '@'name '(' [%v ':' type, ...] ')' '->' types
                ['attributes' attrs] '{' op* '}'
    op       := [%r, ... '='] opname [%v, ...] [attrs] ':' types region*
    region   := '{' '^' '(' [%a ':' type, ...] ')' ':' op* '}'
    types    := type | '(' [type, ...] ')'
    attrs    := '{' key '=' value, ... '}'   value: int | float | inf | -inf | nan | true |
                                                    false | "json string" | '[' value, ... ']'

`//` starts a comment that runs to the end of the line (as in MLIR: golden test files carry
their RUN and CHECK lines that way). Printed value names become name hints (purely numeric names are dropped, so the printer
numbers them again in the same order). Names are unique within a function, so one table per
function resolves operands; a name used before it is defined, or defined twice, is an error.
Every error is a `ValueError` whose message starts with `line:col:`. Lists parse as tuples.
"""
from __future__ import annotations

import json
import re

from .ir import PTR, SCALARS, Block, Function, MemRefType, Module, Op, Region, Type, Value

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*)
  | (?P<arrow>->)
  | (?P<memref>memref<(?:\?x)*[a-z0-9]+>)
  | (?P<number>-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
  | (?P<neginf>-inf\b)
  | (?P<value>%[A-Za-z0-9_.]+)
  | (?P<symbol>@[A-Za-z0-9_.$]+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[(){}\[\],:=^])
""", re.VERBOSE)


class _Tok:
    __slots__ = ("kind", "text", "line", "col")

    def __init__(self, kind, text, line, col):
        self.kind, self.text, self.line, self.col = kind, text, line, col

    def __repr__(self):
        return f"{self.text!r}"


def _tokenize(text: str) -> list[_Tok]:
    toks, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"{line}:{pos - line_start + 1}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind == "comment":
            pass
        elif kind != "ws":
            toks.append(_Tok(kind, m.group(), line, pos - line_start + 1))
        else:
            nl = m.group().count("\n")
            if nl:
                line += nl
                line_start = m.start() + m.group().rindex("\n") + 1
        pos = m.end()
    toks.append(_Tok("eof", "<end of input>", line, pos - line_start + 1))
    return toks


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokenize(text)
        self.i = 0
        self.values: dict[str, Value] = {}

    # -- token helpers
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def error(self, msg: str, tok: _Tok | None = None):
        t = tok or self.tok
        raise ValueError(f"{t.line}:{t.col}: {msg}")

    def next(self) -> _Tok:
        t = self.tok
        self.i += 1
        return t

    def at(self, text: str) -> bool:
        return self.tok.text == text and self.tok.kind in ("punct", "arrow", "ident")

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> _Tok:
        if not self.at(text):
            self.error(f"expected '{text}', found {self.tok.text!r}")
        return self.next()

    def expect_kind(self, kind: str, what: str) -> _Tok:
        if self.tok.kind != kind:
            self.error(f"expected {what}, found {self.tok.text!r}")
        return self.next()

    # -- types
    def type(self) -> Type:
        t = self.tok
        if t.kind == "memref":
            body = t.text[len("memref<"):-1]
            rank = body.count("?x")
            elem = SCALARS.get(body[2 * rank:])
            if elem is None:
                self.error(f"unknown element type in {t.text!r}")
            self.i += 1
            return MemRefType(elem, rank)
        if t.kind == "ident" and (t.text in SCALARS or t.text == "ptr"):
            self.i += 1
            return PTR if t.text == "ptr" else SCALARS[t.text]
        self.error(f"expected a type, found {t.text!r}")

    def types(self) -> list[Type]:
        if not self.accept("("):
            return [self.type()]
        out = []
        if not self.accept(")"):
            out.append(self.type())
            while self.accept(","):
                out.append(self.type())
            self.expect(")")
        return out

    # -- attributes
    def attr_value(self):
        t = self.next()
        if t.kind == "number":
            return float(t.text) if any(c in t.text for c in ".eE") else int(t.text)
        if t.kind == "neginf":
            return float("-inf")
        if t.kind == "string":
            try:
                return json.loads(t.text)
            except json.JSONDecodeError as e:
                self.error(f"bad string literal: {e.msg}", t)
        if t.kind == "ident" and t.text in _ATTR_WORDS:
            return _ATTR_WORDS[t.text]
        if t.kind == "punct" and t.text == "[":
            items = []
            if not self.accept("]"):
                items.append(self.attr_value())
                while self.accept(","):
                    items.append(self.attr_value())
                self.expect("]")
            return tuple(items)
        self.error(f"expected an attribute value, found {t.text!r}", t)

    def attrs(self) -> dict:
        self.expect("{")
        out: dict = {}
        if self.accept("}"):
            return out
        while True:
            key = self.expect_kind("ident", "an attribute name")
            if key.text in out:
                self.error(f"duplicate attribute '{key.text}'", key)
            self.expect("=")
            out[key.text] = self.attr_value()
            if self.accept("}"):
                return out
            self.expect(",")

    # -- values
    def define(self, tok: _Tok, v: Value) -> Value:
        name = tok.text[1:]
        if name in self.values:
            self.error(f"value %{name} is defined twice", tok)
        self.values[name] = v
        v.name = None if name.isdigit() else name
        return v

    def use(self) -> Value:
        t = self.expect_kind("value", "a value")
        try:
            return self.values[t.text[1:]]
        except KeyError:
            self.error(f"use of undefined value {t.text}", t)

    def typed_args(self) -> list[tuple[_Tok, Type]]:
        """`(%a: t, ...)`"""
        self.expect("(")
        out = []
        if not self.accept(")"):
            while True:
                name = self.expect_kind("value", "a value name")
                self.expect(":")
                out.append((name, self.type()))
                if self.accept(")"):
                    break
                self.expect(",")
        return out

    # -- ops, blocks, functions
    def op(self, block: Block) -> None:
        result_toks = []
        if self.tok.kind == "value":
            result_toks.append(self.next())
            while self.accept(","):
                result_toks.append(self.expect_kind("value", "a result name"))
            self.expect("=")
        name_tok = self.expect_kind("ident", "an op name")
        if "." not in name_tok.text:
            self.error(f"expected an op name (dialect.op), found {name_tok.text!r}", name_tok)
        operands = []
        if self.tok.kind == "value":
            operands.append(self.use())
            while self.accept(","):
                operands.append(self.use())
        attrs = self.attrs() if self.at("{") else {}
        colon = self.expect(":")
        rtypes = self.types()
        if len(rtypes) != len(result_toks):
            self.error(f"{name_tok.text} names {len(result_toks)} result(s) but has "
                       f"{len(rtypes)} result type(s)", colon)
        op = Op(name_tok.text, operands, rtypes, attrs)
        for tok, r in zip(result_toks, op.results):
            self.define(tok, r)
        while self.at("{"):
            self.next()
            self.expect("^")
            region = Region(self.block_body(self.typed_args(), header=True))
            region.parent = op
            op.regions.append(region)
        block.append(op)

    def block_body(self, args, header: bool) -> Block:
        block = Block([t for _, t in args])
        for (tok, _), v in zip(args, block.args):
            self.define(tok, v)
        if header:
            self.expect(":")
        while not self.at("}"):
            if self.tok.kind == "eof":
                self.error("unexpected end of input: missing '}'")
            self.op(block)
        self.next()
        return block

    def function(self) -> Function:
        self.values = {}
        self.expect("func.func")
        name = self.expect_kind("symbol", "a function name '@name'").text[1:]
        params = self.typed_args()
        self.expect("->")
        results = self.types()
        attrs = self.attrs() if self.accept("attributes") else {}
        self.expect("{")
        f = Function(name, [], results, attrs=attrs)
        f.body = self.block_body(params, header=False)
        return f

    def module(self) -> Module:
        m = Module()
        while self.tok.kind != "eof":
            t = self.tok
            f = self.function()
            if f.name in m.functions:
                self.error(f"function @{f.name} is defined twice", t)
            m.add(f)
        return m


_ATTR_WORDS = {"true": True, "false": False, "inf": float("inf"), "nan": float("nan")}


def parse_module(text: str) -> Module:
    return _Parser(text).module()


def parse_function(text: str) -> Function:
    p = _Parser(text)
    f = p.function()
    if p.tok.kind != "eof":
        p.error(f"expected end of input after function @{f.name}, found {p.tok.text!r}")
    return f
