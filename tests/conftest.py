"""Suite-wide setup: the compile cache lives in a temporary folder for the whole session, so
tests never write to the user's cache (`~/.cache/dad`). It is set when pytest configures
itself, before any test module is imported (some compile at import time), and inherited by
the subprocesses tests start. A DAD_CACHE_DIR set by the caller is respected.

Every pipeline of IR passes verifies the IR after each pass (`DAD_VERIFY=1`, read by
`lang.passes.PassManager`), so a pass that breaks the IR fails the test that ran it, naming
the pass. The compile cache keys on the setting, so a cached module built unverified is never
reused here. `DAD_VERIFY=0` set by the caller turns it off (e.g. to time the suite without it)."""
from __future__ import annotations

import os
import shutil
import tempfile

_made: list[str] = []


def pytest_configure(config):
    os.environ.setdefault("DAD_VERIFY", "1")
    if "DAD_CACHE_DIR" not in os.environ:
        path = tempfile.mkdtemp(prefix="dad-test-cache-")
        _made.append(path)
        os.environ["DAD_CACHE_DIR"] = path


def pytest_unconfigure(config):
    for path in _made:
        shutil.rmtree(path, ignore_errors=True)
        if os.environ.get("DAD_CACHE_DIR") == path:
            del os.environ["DAD_CACHE_DIR"]
