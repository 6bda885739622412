"""Peak resident memory of one call of a compiled function, measured in a fresh process.

`peak_growth(tmp_path, source, name, setup, warm, call)` writes `source` and a script that
compiles it, binds `kernel` to its function `name`, runs the Python statements `setup`
(the arguments), `warm` (one call that compiles and touches memory first), resets the peak
resident set (VmHWM, through /proc/self/clear_refs), runs `call`, and prints how many bytes
the peak rose above the resident set before `call`; that number is returned. Linux only."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import numpy as np
import dad

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

kernel = getattr(dad.compile(open(sys.argv[1]).read()), sys.argv[2])
{setup}
{warm}
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")                   # reset the peak resident set (VmHWM) to the current one
before = status("VmRSS")
{call}
print(status("VmHWM") - before)
"""


def peak_growth(tmp_path, source: str, name: str, setup: str, warm: str, call: str,
                timeout: float = 300) -> int:
    src = tmp_path / "peak.dad"
    src.write_text(source)
    script = tmp_path / "peak.py"
    script.write_text(SCRIPT.format(setup=setup, warm=warm, call=call))
    out = subprocess.run([sys.executable, str(script), str(src), name], capture_output=True,
                         text=True, check=True, timeout=timeout)
    return int(out.stdout.strip().splitlines()[-1])
