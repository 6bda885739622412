"""The ADBench harness runs (`--quick`, without the optional peers) and writes its tables."""
from __future__ import annotations

import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.adbench import io  # noqa: E402
from benchmarks.adbench.harness import main  # noqa: E402


@pytest.mark.skipif(not (io.DATA / "gmm").is_dir(), reason=f"ADBench data not found in {io.DATA}")
def test_harness_quick_writes_results(tmp_path):
    assert main(["--quick", "--no-peers", "--budget", "0.05", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "adbench.json").read_text())
    problems = [r["problem"] for r in data["rows"]]
    assert problems == ["gmm", "ba", "lstm"]
    for r in data["rows"]:
        assert r["times_s"]["dad.primal"] > 0 and r["times_s"]["dad.deriv"] > 0
        assert r["agreement_rel"]["numpy.primal"] < 1e-10
    md = (tmp_path / "adbench.md").read_text()
    assert "| gmm |" in md and "| ba |" in md and "| lstm |" in md
