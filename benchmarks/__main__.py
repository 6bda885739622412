"""Run every benchmark module and subpackage of this package (each one's `main()`), in name order."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import benchmarks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run every benchmark (benchmarks.NAME, each with its own --help) in name "
                    "order and write its results to benchmarks/results/NAME.md and NAME.json.")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    args = ap.parse_args(argv)
    status = 0
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "c" or \
                (args.only and info.name not in args.only):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        if not hasattr(module, "main"):
            continue
        print(f"== benchmarks.{info.name} ==", flush=True)
        status |= int(module.main([]) or 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
