"""Natural code against hand-arranged code: the same problem written as users write it.

Run with `python -m benchmarks.natural` (`--quick`: the smallest size, few rounds;
`--no-write`: print only). For the ADBench GMM (n = 1000 points; d2 K5, d10 K25, d20 K50),
`examples/natural/gmm.dad` (point by point, a temporary per point and component, a helper
for Q x, logsumexp per point) and `examples/gmm.dad` (loops arranged by hand for the
machine) are compiled in this process and timed side by side, interleaved (natural,
arranged, natural, ...; medians of the rounds), objective and gradient; their results are
checked to agree (relative difference recorded). Written to `benchmarks/results/natural.md`
and `natural.json`.

Target (issue #18): the natural gradient and objective within 1.3x of the arranged ones
(`natural / arranged <= 1.3`).
"""
from __future__ import annotations

import argparse
import pathlib

import numpy as np

from benchmarks._common import finish, interleaved_medians, machine_meta, rel_diff

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET = 1.3
SIZES = [(2, 5), (10, 25), (20, 50)]


def _inputs(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    t = d * (d + 1) // 2
    return (rng.standard_normal(k), rng.standard_normal((k, d)),
            0.3 * rng.standard_normal((k, t)), rng.standard_normal((n, d)), 1.0, 0)


def bench(natural, arranged, n, d, k, budget):
    args = _inputs(n, d, k)
    rows = []
    for what in ("gmm_objective", "gmm_grad"):
        fn, fa = getattr(natural, what), getattr(arranged, what)
        rel = rel_diff(fn(*args), fa(*args))
        med = interleaved_medians({"natural": lambda: fn(*args), "arranged": lambda: fa(*args)},
                                  budget_s=budget, min_rounds=5, max_rounds=41)
        ratio = med["natural"]["median_s"] / med["arranged"]["median_s"]
        rows.append({"name": f"GMM {what.split('_')[1]} d{d} K{k} n{n}",
                     "natural_s": med["natural"]["median_s"], "arranged_s": med["arranged"]["median_s"],
                     "natural_over_arranged": ratio, "rel_diff": rel, "target": TARGET,
                     "met": ratio <= TARGET and rel < 1e-9,
                     "samples": {k2: v["samples_s"] for k2, v in med.items()}})
    return rows


def render_markdown(meta, rows) -> str:
    out = ["# Natural code against hand-arranged code", "",
           f"{meta['date']}, {meta['cpu']}, {meta['cores']} cores; medians of interleaved "
           f"rounds in one process (`python -m benchmarks.natural`).", "",
           "`examples/natural/gmm.dad` (written as ADBench's C++ reads) against "
           "`examples/gmm.dad` (loops arranged by hand). Target: natural / arranged <= "
           f"{TARGET}.", "",
           "| problem | natural | arranged | natural / arranged | results differ by | target met |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['name']} | {r['natural_s'] * 1e3:.3f} ms | {r['arranged_s'] * 1e3:.3f} ms "
                   f"| {r['natural_over_arranged']:.2f} | {r['rel_diff']:.1e} | "
                   f"{'yes' if r['met'] else 'no'} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.natural", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the smallest size, few rounds")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    import dad
    natural = dad.compile_file(str(ROOT / "examples" / "natural" / "gmm.dad"))
    arranged = dad.compile_file(str(ROOT / "examples" / "gmm.dad"))
    n = 1000
    sizes = SIZES[:1] if args.quick else SIZES
    budget = 1.0 if args.quick else 8.0
    rows = []
    for d, k in sizes:
        for r in bench(natural, arranged, n, d, k, budget):
            rows.append(r)
            print(f"{r['name']:28s} natural {r['natural_s'] * 1e3:8.3f} ms  arranged "
                  f"{r['arranged_s'] * 1e3:8.3f} ms  ratio {r['natural_over_arranged']:.2f}",
                  flush=True)
    meta = machine_meta(n=n, sizes=sizes, quick=args.quick, target=TARGET)
    return finish("natural", meta, rows, render_markdown(meta, rows), not args.no_write)


if __name__ == "__main__":
    raise SystemExit(main())
