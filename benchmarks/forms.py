"""The new forms against the loops they replace: `vmap(grad(f))` against a loop of
`grad(f)`, and an MLP layer written with broadcasting and `@` against the same layer written
with loops (its value and the gradient of an energy of it).

Run with `python -m benchmarks.forms` (`--quick`: smaller sizes, few rounds; `--no-write`:
print only). The programs are in `benchmarks/forms.dad`; each pair is compiled in this
process and timed side by side, interleaved (form, loops, form, ...; medians of the rounds),
after checking that the two give the same results (the largest relative difference is
recorded). Written to `benchmarks/results/forms.md` and `forms.json`.

Target (issue #19): each form no slower than its loops (`form / loops <= 1.0`, with 5%
allowed for timing noise).
"""
from __future__ import annotations

import argparse
import pathlib

import numpy as np

from benchmarks._common import finish, interleaved_medians, machine_meta, rel_diff

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET = 1.05


def cases(quick: bool):
    """(name, form function, loop function, arguments) per row."""
    rng = np.random.default_rng(0)
    out = []
    for b, n in ([(256, 8)] if quick else [(1000, 8), (1000, 64)]):
        X, w = rng.standard_normal((b, n)), rng.standard_normal(n)
        y = rng.choice([-1.0, 1.0], b)
        out.append((f"vmap(grad(f)) vs loop of grad(f), batch {b}, n {n}",
                    "batch_vmap", "batch_loop", (X, w, y)))
    for m, p, q in ([(64, 16, 8)] if quick else [(256, 64, 32), (1024, 128, 64)]):
        X, W, c = rng.standard_normal((m, p)), rng.standard_normal((p, q)) / np.sqrt(p), rng.standard_normal(q)
        out.append((f"layer tanh(X @ W + c) vs loops, {m}x{p} @ {p}x{q}",
                    "layer_broadcast", "layer_loops", (X, W, c)))
        out.append((f"grad of 0.5 |layer|^2 wrt W, c vs loops, {m}x{p} @ {p}x{q}",
                    "energy_broadcast_grad", "energy_loops_grad", (X, W, c)))
    return out


def render_markdown(meta, rows) -> str:
    out = ["# The new forms against the loops they replace", "",
           f"{meta['date']}, {meta['cpu']}, {meta['cores']} cores; medians of interleaved "
           f"rounds in one process (`python -m benchmarks.forms`; programs in "
           f"`benchmarks/forms.dad`).", "",
           f"Target: form / loops <= {TARGET} (no slower, 5% for timing noise).", "",
           "| problem | form | loops | form / loops | results differ by | target met |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['name']} | {r['form_s'] * 1e3:.3f} ms | {r['loops_s'] * 1e3:.3f} ms "
                   f"| {r['form_over_loops']:.2f} | {r['rel_diff']:.1e} | "
                   f"{'yes' if r['met'] else 'no'} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.forms", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, few rounds")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    import dad
    mod = dad.compile_file(str(ROOT / "benchmarks" / "forms.dad"))
    budget = 1.0 if args.quick else 6.0
    rows = []
    for name, form, loops, a in cases(args.quick):
        ff, fl = getattr(mod, form), getattr(mod, loops)
        rel = rel_diff(ff(*a), fl(*a))
        med = interleaved_medians({"form": lambda: ff(*a), "loops": lambda: fl(*a)},
                                  budget_s=budget, min_rounds=5, max_rounds=41)
        ratio = med["form"]["median_s"] / med["loops"]["median_s"]
        rows.append({"name": name, "form_s": med["form"]["median_s"],
                     "loops_s": med["loops"]["median_s"], "form_over_loops": ratio,
                     "rel_diff": rel, "target": TARGET, "met": ratio <= TARGET and rel < 1e-12,
                     "samples": {k: v["samples_s"] for k, v in med.items()}})
        print(f"{name:58s} form {rows[-1]['form_s'] * 1e3:8.3f} ms  loops "
              f"{rows[-1]['loops_s'] * 1e3:8.3f} ms  ratio {ratio:.2f}", flush=True)
    meta = machine_meta(quick=args.quick, target=TARGET)
    return finish("forms", meta, rows, render_markdown(meta, rows), not args.no_write)


if __name__ == "__main__":
    raise SystemExit(main())
