"""A worker process: `python -m tests.fuzz.worker LLVM_LEVEL VERIFY` reads one JSON request
per line on stdin — {"id", "text", "programs": [program info, ...]} — compiles the text,
checks every program (`oracles.compile_and_check`) and answers one JSON line on its original
stdout: {"id", "results": {prefix: outcome}}. Anything else the process prints goes to
stderr. A segfault or a hang kills only this process; the runner restarts it."""
from __future__ import annotations

import json
import os
import sys


def main() -> None:
    level, verify = int(sys.argv[1]), sys.argv[2]
    os.environ["DAD_NO_CACHE"] = "1"
    os.environ["DAD_VERIFY"] = verify
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                       # stray prints must not corrupt the protocol
    sys.stdout = sys.stderr
    from .llvm_level import set_llvm_level
    from .oracles import compile_and_check
    set_llvm_level(level)
    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        req = json.loads(line)
        res = compile_and_check(req["text"], req["programs"])
        proto.write(json.dumps({"id": req["id"],
                                "results": {k: v.to_json() for k, v in res.items()}}) + "\n")


if __name__ == "__main__":
    main()
