"""The machine pipeline as the pass tests vary it.

`MACHINE` is the real `machine_pipeline`, taken before any test patches the attribute;
`without(p)` and `with_after(p, extra)` are pipelines with one pass left out or with a pass
(a test's mutant) run right after it; `machine_pipeline(make)` compiles with `make()` as the
machine pipeline inside the block; `upto(m, p, on)` is a copy of module `m` after the
pipeline up to pass `p` (included when `on`), verified after every pass.
`reverse_pipeline(names)` makes reverse mode prepare the functions it differentiates with
the passes `names` inside the block (a test of a machine pass on the adjoint shape those
passes would otherwise change, say `hoist_loads` doing part of `promote_sums`'s work).
"""
from __future__ import annotations

from contextlib import contextmanager

import dad.lang.passes as passes
from dad.lang.passes import PassManager, registry
from dad.lang.passes.util import clone_module

MACHINE = passes.machine_pipeline


def without(p):
    return lambda: [q for q in MACHINE() if q is not p]


def with_after(p, extra):
    return lambda: [r for q in MACHINE() for r in ([q, extra] if q is p else [q])]


@contextmanager
def machine_pipeline(make):
    saved = passes.machine_pipeline
    passes.machine_pipeline = make
    try:
        yield
    finally:
        passes.machine_pipeline = saved


@contextmanager
def reverse_pipeline(names: tuple):
    saved = registry.PIPELINES["reverse"]
    registry.PIPELINES["reverse"] = tuple(names)
    try:
        yield
    finally:
        registry.PIPELINES["reverse"] = saved


def upto(m, p, on: bool = True):
    pl = MACHINE()
    k = pl.index(p)
    return PassManager(pl[:k + 1] if on else pl[:k], verify=True).run(clone_module(m))


def loops(f) -> list:
    return [o for o in f.walk() if o.name == "scf.for"]
