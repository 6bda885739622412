"""The lowering rules' table: `RULES[op name] = fn(lw, op)`, filled by the `@rule(names...)`
decorator in lowering/rules.py, memory.py and tape.py (each imports only this module for it,
so none of them imports another to register)."""
from __future__ import annotations

RULES: dict = {}


def rule(*names):
    def deco(fn):
        for n in names:
            RULES[n] = fn
        return fn
    return deco
