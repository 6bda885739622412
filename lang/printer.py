"""Canonical text form of the IR.

Every op prints in one uniform shape, so the parser (`lang.irparser`) needs no per-op code:

    %r1, %r2 = op.name %a, %b {key = value, ...} : (t1, t2) {
    ^(%arg: t, ...):
      ...
    } {
      ...
    }

The `: types` part is always present (`: ()` for no results), so a `{` after it opens a
region. Names are deterministic: a value's name hint, made unique within its function by a
numeric suffix, or a number in order of definition. Tangents read `%x.dot`, adjoints `%x.bar`.
"""
from __future__ import annotations

import json
import math
import re

from .ir import Block, Function, Module, Op, Value

_NAME_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def format_attr(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        r = repr(v)
        return r if any(c in r for c in ".en") else r + ".0"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(format_attr(x) for x in v) + "]"
    raise TypeError(f"attribute value {v!r} cannot be printed")


def _types(ts) -> str:
    ts = list(ts)
    if len(ts) == 1:
        return str(ts[0])
    return "(" + ", ".join(str(t) for t in ts) + ")"


class _Namer:
    def __init__(self):
        self.names: dict[Value, str] = {}
        self.used: set[str] = set()
        self.counter = 0

    def define(self, v: Value) -> str:
        hint = v.name if v.name and _NAME_OK.match(v.name) else None
        if hint is None:
            while str(self.counter) in self.used:
                self.counter += 1
            name = str(self.counter)
            self.counter += 1
        else:
            name, k = hint, 1
            while name in self.used:
                name = f"{hint}_{k}"
                k += 1
        self.used.add(name)
        self.names[v] = name
        return "%" + name

    def __getitem__(self, v: Value) -> str:
        try:
            return "%" + self.names[v]
        except KeyError:
            return "%<undefined " + (v.name or "?") + ">"


def _print_block(block: Block, namer: _Namer, indent: int, out: list[str], header: bool) -> None:
    pad = "  " * indent
    if header:
        args = ", ".join(f"{namer.define(a)}: {a.type}" for a in block.args)
        out.append("  " * (indent - 1) + f"^({args}):")
    for op in block.ops:
        _print_op(op, namer, indent, out)


def _print_op(op: Op, namer: _Namer, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    operands = ", ".join(namer[v] for v in op.operands)
    results = ", ".join(namer.define(r) for r in op.results)
    line = pad + (results + " = " if results else "") + op.name
    if operands:
        line += " " + operands
    if op.attrs:
        line += " {" + ", ".join(f"{k} = {format_attr(op.attrs[k])}" for k in sorted(op.attrs)) + "}"
    line += " : " + _types(r.type for r in op.results)
    if not op.regions:
        out.append(line)
        return
    out.append(line + " {")
    for i, region in enumerate(op.regions):
        if i:
            out.append(pad + "} {")
        _print_block(region.block, namer, indent + 1, out, header=True)
    out.append(pad + "}")


def print_function(f: Function) -> str:
    namer = _Namer()
    params = ", ".join(f"{namer.define(a)}: {a.type}" for a in f.params)
    head = f"func.func @{f.name}({params}) -> {_types(f.result_types) if len(f.result_types) == 1 else '(' + ', '.join(map(str, f.result_types)) + ')'}"
    if f.attrs:
        head += " attributes {" + ", ".join(f"{k} = {format_attr(f.attrs[k])}" for k in sorted(f.attrs)) + "}"
    out = [head + " {"]
    _print_block(f.body, namer, 1, out, header=False)
    out.append("}")
    return "\n".join(out) + "\n"


def print_module(m: Module) -> str:
    return "\n".join(print_function(f) for f in m)
