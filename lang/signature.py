"""Source-level signatures of exported functions: names, dtypes and symbolic shapes.

A signature is written in `.dad` syntax, `(x: f64[n], A: f64[n, 3], k: i64) -> (f64, f64[n])`,
and kept on each IR function as the attribute `sig`. The runtime reads it to check and
convert arguments, bind size variables and allocate results; `str(parse_signature(s)) == s`
for every signature the front end writes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

Dim = int | str  # a literal size or a size-variable name


@dataclass(frozen=True)
class TypeSpec:
    dtype: str                 # "f64" | "f32" | "i64" | "bool"
    dims: tuple[Dim, ...] = ()  # () for a scalar

    @property
    def rank(self) -> int:
        return len(self.dims)

    def __str__(self) -> str:
        if not self.dims:
            return self.dtype
        return f"{self.dtype}[{', '.join(str(d) for d in self.dims)}]"


@dataclass(frozen=True)
class Param:
    name: str
    type: TypeSpec

    def __str__(self) -> str:
        return f"{self.name}: {self.type}"


@dataclass(frozen=True)
class Signature:
    params: tuple[Param, ...]
    results: tuple[TypeSpec, ...]
    tuple_result: bool = False  # declared as a tuple `-> (a, b)` (even of one element)

    def __str__(self) -> str:
        ps = ", ".join(str(p) for p in self.params)
        if self.tuple_result or len(self.results) != 1:
            rs = "(" + ", ".join(str(r) for r in self.results) + ")"
        else:
            rs = str(self.results[0])
        return f"({ps}) -> {rs}"

    def size_vars(self) -> dict[str, tuple[str, int]]:
        """Each size variable -> (parameter, axis) of the first parameter that names it."""
        out: dict[str, tuple[str, int]] = {}
        for p in self.params:
            for axis, d in enumerate(p.type.dims):
                if isinstance(d, str) and d not in out:
                    out[d] = (p.name, axis)
        return out


_TYPE = re.compile(r"\s*(f64|f32|i64|bool)\s*(?:\[([^\]]*)\])?\s*")


def _parse_type(text: str) -> TypeSpec:
    m = _TYPE.fullmatch(text)
    if not m:
        raise ValueError(f"bad type in signature: {text!r}")
    dims: tuple[Dim, ...] = ()
    if m.group(2) is not None:
        dims = tuple(int(d) if d.strip().isdigit() else d.strip() for d in m.group(2).split(","))
    return TypeSpec(m.group(1), dims)


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def parse_signature(text: str) -> Signature:
    m = re.fullmatch(r"\s*\((.*)\)\s*->\s*(.*?)\s*", text)
    if not m:
        raise ValueError(f"bad signature: {text!r}")
    params = []
    for part in _split_top(m.group(1)):
        name, _, ty = part.partition(":")
        params.append(Param(name.strip(), _parse_type(ty)))
    rtext = m.group(2)
    if rtext.startswith("("):
        results = tuple(_parse_type(r) for r in _split_top(rtext[1:-1]))
        return Signature(tuple(params), results, tuple_result=True)
    return Signature(tuple(params), (_parse_type(rtext),))
