"""Run every benchmark module and subpackage of this package (each one's `main()`), in name order."""
from __future__ import annotations

import importlib
import pkgutil
import sys

import benchmarks


def main() -> int:
    status = 0
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "c":
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        if not hasattr(module, "main"):
            continue
        print(f"== benchmarks.{info.name} ==", flush=True)
        status |= int(module.main([]) or 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
