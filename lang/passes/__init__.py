"""IR-to-IR passes and the pass manager that runs them.

Contract: every pass is a plain function `Module -> Module` named after what it does (it
may rewrite the module in place and returns it); `PassManager(passes).run(module)` runs them
in order and, when asked (tests, or the environment variable `DAD_VERIFY=1`), verifies the
module before the first pass and after each one, naming the pass that broke it.
`default_pipeline()` is the standard clean-up list run before and after AD;
`machine_pipeline()` the rewrites meant only for machine code (run on the copy that is
lowered, so that derivations never see them); `lowering_pipeline()` is the two in turn.
The lists and every pass's name live in `registry.py` (`PASSES`, `PIPELINES`), which is
what `dadc opt -p NAMES` runs.
"""
from __future__ import annotations

from .ascend_loops import ascend_loops
from .bounds import elide_bounds_checks
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
from .manager import PassManager, PassVerifyError
from .move_copies import move_copies
from .promote_sums import promote_sums
from .prune_results import prune_results
from .registry import PASSES, PIPELINES, UnknownPass, pipeline, resolve
from .reuse_calls import reuse_calls
from .skip_zero_fill import skip_zero_fill
from .speculate_zero_safe import speculate_zero_safe
from .tape_reserve import tape_reserve
from .tidy_stores import tidy_stores
from .version_checks import version_checks
from .zero_loads import zero_loads


def default_pipeline() -> list:
    return pipeline("default")


def machine_pipeline() -> list:
    """The rewrites meant only for machine code, run after AD and `default_pipeline` on the
    copy of a module that is lowered (derivations never see their output)."""
    return pipeline("machine")


def lowering_pipeline() -> list:
    """Everything a module goes through on its way to machine code after AD."""
    return pipeline("lowering")


__all__ = ["PASSES", "PIPELINES", "PassManager", "PassVerifyError", "UnknownPass",
           "ascend_loops", "canonicalize", "constant_fold", "cse", "dce", "default_pipeline",
           "elide_bounds_checks", "expand_math", "forward_stores", "hoist_allocs", "hoist_loads", "induction", "inline_calls", "licm", "load_cse",
           "lowering_pipeline", "machine_pipeline", "move_copies", "pipeline",
           "promote_sums", "prune_results", "resolve", "reuse_calls", "skip_zero_fill",
           "speculate_zero_safe", "tape_reserve", "tidy_stores", "version_checks",
           "zero_loads"]
