"""The pass registry: every IR pass by name, with its precondition, and the pipelines.

Contract: `PASSES` maps a name to a `PassInfo` (the function `Module -> Module`, a one-line
summary taken from its module's docstring, and `machine`: True for a rewrite meant only for
the copy of a module that is lowered to machine code, whose output is never differentiated
(it may add ops AD has no rule for, such as the tape's `dad.tape_reserve`, or rely on the
module being final)). `PIPELINES` names the lists the compiler runs, in one place:

    default    the clean-up run before and after AD (on what derivations see)
    machine    the machine-code rewrites, after AD and `default`
    lowering   `default` then `machine`: everything between AD and LLVM
    reverse    what reverse mode runs on its own copy of a function before differentiating
               it (ad/policy.py `prepared`)

`resolve("cse,dce")` turns a comma-separated list of pass and pipeline names (`-` and `_`
alike) into pass functions, raising `UnknownPass` (with the closest names) for a name that
is neither. `dadc opt -p` and `runtime/compiler.py` both go through here.
"""
from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from typing import Callable

from ..ir import Module
from .ascend_loops import ascend_loops
from .bounds import elide_bounds_checks
from .cache_invariants import cache_invariants
from .canonicalize import canonicalize
from .constant_fold import constant_fold
from .cse import cse
from .dce import dce
from .expand_math import expand_math
from .forward_stores import forward_stores
from .hoist_allocs import hoist_allocs
from .hoist_loads import hoist_loads
from .induction import induction
from .inline_calls import inline_calls
from .licm import licm
from .load_cse import load_cse
from .manager import pass_name
from .move_copies import move_copies
from .promote_sums import promote_sums
from .prune_results import prune_results
from .reuse_calls import reuse_calls
from .skip_zero_fill import skip_zero_fill
from .speculate_zero_safe import speculate_zero_safe
from .tape_reserve import tape_reserve
from .tidy_stores import tidy_stores
from .unit_steps import unit_steps
from .version_checks import version_checks
from .zero_loads import zero_loads


@dataclass(frozen=True)
class PassInfo:
    name: str
    run: Callable[[Module], Module]
    summary: str
    machine: bool


def _summary(fn) -> str:
    """The first sentence of the pass's module docstring, without its leading `name: `."""
    doc = (sys.modules[fn.__module__].__doc__ or "").strip()
    first = " ".join(doc.split("\n\n")[0].split())
    head = first.split(": ", 1)[1] if ": " in first[:40] else first
    return head.split(". ")[0].rstrip(".")


# (pass, machine-only); the order is the order of `dadc opt --list-passes`
_TABLE = [
    (constant_fold, False), (induction, False), (hoist_loads, False), (cse, False), (load_cse, False), (dce, False), (canonicalize, False),
    (elide_bounds_checks, False),
    (expand_math, True), (move_copies, True), (reuse_calls, True), (prune_results, True), (inline_calls, True),
    (licm, True), (cache_invariants, True),
    (version_checks, True), (tidy_stores, True), (promote_sums, True), (ascend_loops, True),
    (forward_stores, True), (zero_loads, True), (skip_zero_fill, True), (hoist_allocs, True),
    (speculate_zero_safe, True), (unit_steps, True), (tape_reserve, True),
]

PASSES: dict[str, PassInfo] = {
    pass_name(fn): PassInfo(pass_name(fn), fn, _summary(fn), machine) for fn, machine in _TABLE}

PIPELINES: dict[str, tuple[str, ...]] = {
    "default": ("constant_fold", "cse", "load_cse", "dce", "elide_bounds_checks",
                "canonicalize"),
    "machine": ("expand_math", "move_copies", "reuse_calls", "prune_results", "inline_calls", "licm",
                "cache_invariants", "version_checks",
                "tidy_stores", "promote_sums", "ascend_loops", "forward_stores", "zero_loads",
                "skip_zero_fill", "hoist_allocs", "speculate_zero_safe", "unit_steps", "tape_reserve",
                "cse", "dce"),
}
PIPELINES["lowering"] = PIPELINES["default"] + PIPELINES["machine"]
PIPELINES["reverse"] = ("induction", "hoist_loads", "canonicalize")


class UnknownPass(ValueError):
    """A name in a pass list that is neither a registered pass nor a pipeline."""

    def __init__(self, name: str):
        known = sorted(PASSES) + sorted(PIPELINES)
        close = difflib.get_close_matches(name.replace("-", "_"), known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        super().__init__(f"unknown pass '{name}'{hint}; passes: {', '.join(PASSES)}; "
                         f"pipelines: {', '.join(PIPELINES)}")
        self.name = name


def pipeline(name: str) -> list:
    """The pass functions of pipeline `name`, in order."""
    return [PASSES[p].run for p in PIPELINES[name]]


def resolve(spec: str) -> list:
    """The pass functions a comma-separated list of pass and pipeline names stands for."""
    out = []
    for raw in spec.split(","):
        name = raw.strip().replace("-", "_")
        if not name:
            continue
        if name in PASSES:
            out.append(PASSES[name].run)
        elif name in PIPELINES:
            out += pipeline(name)
        else:
            raise UnknownPass(raw.strip())
    return out
