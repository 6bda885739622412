"""The golden IR tests of tests/ir/ (printed IR or .dad in, a pipeline, CHECK lines out),
run by LLVM's `lit` one file per test, as MLIR and xDSL run theirs: each file's `RUN:`
line (`dadc opt -p PASS %s | filecheck %s`) and `CHECK` lines are the whole test."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

IR = pathlib.Path(__file__).resolve().parent / "ir"
FILES = sorted(p.relative_to(IR).as_posix() for p in IR.rglob("*")
               if p.suffix in (".ir", ".dad") and "Output" not in p.parts)   # lit's scratch


def test_there_are_golden_files():
    assert len(FILES) >= 15


@pytest.mark.parametrize("name", FILES)
def test_golden(name):
    r = subprocess.run([sys.executable, "-c", "from lit.main import main; main()", "-v",
                        str(IR / name)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "Passed: 1" in r.stdout, r.stdout[-6000:] + r.stderr[-2000:]
