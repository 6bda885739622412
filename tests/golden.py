"""Golden checks on printed IR from Python tests, with LLVM FileCheck semantics (the
`filecheck` package, the same tool the golden files of tests/ir/ run under lit).

`filecheck(text, checks)` matches `text` against the `CHECK` lines of `checks` and raises
AssertionError with FileCheck's report on a mismatch; `check_passes(ir, passes, checks)`
parses `ir`, runs `passes` with the verifier on, checks the printed result and returns it.
Use these where a test also asserts things FileCheck cannot say; a pure golden test is a
file in tests/ir/."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

_TOOL = shutil.which("filecheck", path=os.path.dirname(sys.executable)) or shutil.which("filecheck")


def filecheck(text: str, checks: str) -> None:
    assert _TOOL, "the filecheck tool is not installed (pip install -e '.[test]')"
    with tempfile.NamedTemporaryFile("w", suffix=".checks", delete=False) as f:
        f.write(checks)
    try:
        r = subprocess.run([_TOOL, f.name], input=text, capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        raise AssertionError(f"FileCheck failed:\n{r.stdout}{r.stderr}\ninput:\n{text}")


def check_passes(ir: str, passes: list, checks: str) -> str:
    """Parse `ir`, run `passes` with verification on, FileCheck the printed result, return it."""
    from dad.lang.irparser import parse_module
    from dad.lang.passes import PassManager
    from dad.lang.printer import print_module

    out = print_module(PassManager(passes, verify=True).run(parse_module(ir)))
    filecheck(out, checks)
    return out


def allocs_in_loops(fn) -> list:
    """The `memref.alloc` ops of `fn` that have a loop (`scf.for`, `scf.while`) among their
    enclosing ops: what must be empty after `hoist_allocs` in the natural-code tests."""
    out = []
    for op in fn.walk():
        if op.name != "memref.alloc":
            continue
        up = op.parent.parent.parent if op.parent.parent is not None else None
        while up is not None and up.name not in ("scf.for", "scf.while"):
            up = up.parent.parent.parent if up.parent.parent is not None else None
        if up is not None:
            out.append(op)
    return out
