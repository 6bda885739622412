"""IR-to-IR passes and the pass manager that runs them.

Contract: every pass is a plain function `Module -> Module` named after what it does (it
may rewrite the module in place and returns it); `PassManager(passes).run(module)` runs them
in order and, when asked (tests, or the environment variable `DAD_VERIFY=1`), verifies the
module before the first pass and after each one, naming the pass that broke it.
`default_pipeline()` is the standard clean-up list run before and after AD.
"""
from __future__ import annotations

from .bounds import elide_bounds_checks
from .constant_fold import constant_fold
from .cse import cse
from .dce import dce
from .load_cse import load_cse
from .manager import PassManager, PassVerifyError


def default_pipeline() -> list:
    return [constant_fold, cse, load_cse, dce, elide_bounds_checks, constant_fold, dce]


__all__ = ["PassManager", "PassVerifyError", "default_pipeline", "constant_fold", "cse", "dce",
           "elide_bounds_checks", "load_cse"]
