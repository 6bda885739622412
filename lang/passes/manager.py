"""The pass manager: runs a list of `Module -> Module` functions, verifying between them.

Contract: `PassManager(passes, verify=None).run(module)` applies each pass in order and
returns the final module. With `verify=True` (or `verify=None` and `DAD_VERIFY=1` in the
environment) the input is verified first and the output of every pass after it; a failure
raises `PassVerifyError` naming the pass (or "input"). `history` holds the names of the
passes run so far, for debugging and tests.

`print_after` asks for the module after some passes: a set of pass names, or "all"; each
dump goes to `dump(name, module)` (by default: printed to stderr under the header
`// -----// IR Dump After NAME //----- //`, as MLIR's `--mlir-print-ir-after` does).

`context` (a module) is for pipelines run on a part of a module: the functions being
optimised are verified against `context`, so calls to functions outside the part resolve
(the compile pipeline optimises the targets of derived functions this way).
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Iterable

from ..ir import Module
from ..printer import print_module
from ..verifier import VerifyError, verify, verify_function

Pass = Callable[[Module], Module]


class PassVerifyError(VerifyError):
    pass


def pass_name(p: Pass) -> str:
    return getattr(p, "pass_name", None) or getattr(p, "__name__", repr(p))


class PassManager:
    def __init__(self, passes: Iterable[Pass], verify: bool | None = None,
                 context: Module | None = None, print_after: str | Iterable[str] = (),
                 dump: Callable[[str, Module], None] | None = None):
        self.passes = list(passes)
        self.context = context
        self.print_after = print_after if print_after == "all" else set(print_after)
        self.dump = dump or _dump_to_stderr
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
            if self.print_after == "all" or pass_name(p) in self.print_after:
                self.dump(pass_name(p), module)
        return module


def _dump_to_stderr(name: str, module: Module) -> None:
    print(f"// -----// IR Dump After {name} //----- //", file=sys.stderr)
    print(print_module(module), file=sys.stderr, end="")
