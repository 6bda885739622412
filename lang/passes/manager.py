"""The pass manager: runs a list of `Module -> Module` functions, verifying between them.

Contract: `PassManager(passes, verify=None).run(module)` applies each pass in order and
returns the final module. With `verify=True` (or `verify=None` and `DAD_VERIFY=1` in the
environment) the input is verified first and the output of every pass after it; a failure
raises `PassVerifyError` naming the pass (or "input"). `history` holds the names of the
passes run so far, for debugging and tests.

`context` (a module) is for pipelines run on a part of a module: the functions being
optimised are verified against `context`, so calls to functions outside the part resolve
(the compile pipeline optimises the targets of derived functions this way).
"""
from __future__ import annotations

import os
from typing import Callable, Iterable

from ..ir import Module
from ..verifier import VerifyError, verify, verify_function

Pass = Callable[[Module], Module]


class PassVerifyError(VerifyError):
    pass


def pass_name(p: Pass) -> str:
    return getattr(p, "pass_name", None) or getattr(p, "__name__", repr(p))


class PassManager:
    def __init__(self, passes: Iterable[Pass], verify: bool | None = None,
                 context: Module | None = None):
        self.passes = list(passes)
        self.context = context
        self.verify = os.environ.get("DAD_VERIFY") == "1" if verify is None else verify
        self.history: list[str] = []

    def _check(self, module: Module, after: str) -> None:
        try:
            if self.context is None:
                verify(module)
            else:
                whole = Module([*module, *(f for f in self.context
                                           if f.name not in module.functions)])
                for f in module:
                    verify_function(f, whole)
        except VerifyError as e:
            where = "the input of the pipeline" if after == "input" else f"after pass '{after}'"
            raise PassVerifyError(f"IR invalid {where}: {e}") from e

    def run(self, module: Module) -> Module:
        if self.verify:
            self._check(module, "input")
        for p in self.passes:
            out = p(module)
            module = module if out is None else out
            self.history.append(pass_name(p))
            if self.verify:
                self._check(module, pass_name(p))
        return module
