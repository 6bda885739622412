"""Delta debugging of a failing generated program.

Contract: `minimize(program, evaluate, signature, budget_s=120, max_evals=400) -> Program`
shrinks `program` (a `gen.Program`, edited in place and returned) while
`evaluate(program) -> Outcome` keeps giving an outcome whose `signature()` equals
`signature` (same kind, same oracle, same kind of message). It tries, repeatedly until
nothing more goes: dropping derived-function declarations, dropping helper functions,
dropping chunks of every statement list (halves, then single statements), replacing an
`if`/`for`/`while` by its body, and replacing each expression by a leaf of its type or by
one of its operands of the same type. Candidates that do not compile fail the signature and
are undone. Statements marked `keep` (the base case of a recursion) stay."""
from __future__ import annotations

import time

from .gen import Expr


def minimize(program, evaluate, signature: str, budget_s: float = 120.0,
             max_evals: int = 400):
    t_end = time.monotonic() + budget_s
    evals = [0]

    def still_fails() -> bool:
        if evals[0] >= max_evals or time.monotonic() > t_end:
            return False     # out of budget: every further candidate is undone
        evals[0] += 1
        return evaluate(program).signature() == signature

    progress = True
    while progress and evals[0] < max_evals and time.monotonic() < t_end:
        progress = _drop_items(program.decls, still_fails, keep_min=1)
        progress |= _drop_helpers(program, still_fails)
        lists, _ = program.nodes()
        for lst in lists:
            progress |= _drop_items(lst, still_fails)
            progress |= _splice(lst, still_fails)
        _, exprs = program.nodes()
        for e in exprs:
            progress |= _simplify(e, still_fails)
    program.evaluations = evals[0]
    return program


def _drop_items(lst, still_fails, keep_min=0) -> bool:
    """ddmin-style: remove chunks of decreasing size."""
    changed = False
    size = max(1, len(lst) // 2)
    while size >= 1:
        i = 0
        while i < len(lst) and len(lst) - size >= keep_min:
            saved = lst[:]
            if any(getattr(st, "keep", False) for st in lst[i:i + size]):
                i += size
                continue
            del lst[i:i + size]
            if still_fails():
                changed = True
            else:
                lst[:] = saved
                i += size
        size //= 2
    return changed


def _drop_helpers(program, still_fails) -> bool:
    changed = False
    for fn in list(program.functions):
        if fn.name.endswith("_f") or any(f"({fn.name}" in d for d in program.decls):
            continue     # the checked function, or the target of a derived one
        i = program.functions.index(fn)
        program.functions.remove(fn)
        if still_fails():
            changed = True
        else:
            program.functions.insert(i, fn)
    return changed


def _splice(lst, still_fails) -> bool:
    changed = False
    i = 0
    while i < len(lst):
        s = lst[i]
        if s.kind in ("if", "for", "while") and not s.keep:
            for repl in ([s.body] + ([s.orelse] if s.orelse else [])):
                saved = lst[:]
                lst[i:i + 1] = repl
                if still_fails():
                    changed = True
                    break
                lst[:] = saved
        i += 1
    return changed


def _simplify(e: Expr, still_fails) -> bool:
    if not e.args:
        return False
    saved = (e.fmt, e.args)
    cands = [(a.fmt, a.args) for a in e.args if a.ty == e.ty]
    if e.alt is not None:
        cands.insert(0, (e.alt, []))
    for fmt, args in cands:
        e.fmt, e.args = fmt, list(args)
        if still_fails():
            return True
    e.fmt, e.args = saved
    return False
