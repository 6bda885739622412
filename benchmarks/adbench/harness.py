"""ADBench in dad: GMM, bundle adjustment and LSTM, side by side with the peers.

Run with `python -m benchmarks.adbench` (`--quick`: the smallest size of each problem;
`--no-peers`: dad, NumPy and C only; `--out DIR`: where to write adbench.md / adbench.json,
default benchmarks/results). For each problem and size, in one run and interleaved
(dad, peer, dad, ... in rotating order, one warm-up call each; a callable much faster than
the slowest takes part in up to 20 times more rounds, so that it gets enough samples next to
eager PyTorch's seconds-long calls), the median of repeated calls:

- dad's primal and derivative (`gmm_objective` / `gmm_grad`, `ba_objective` / `ba_jacobian`
  (+ CSR assembly, timed separately), `lstm_objective` / `lstm_grad`) and their ratio;
- JAX (jit, x64; BA: jit(vmap(jacfwd))), PyTorch (eager autograd, 1 thread), NumPy (primal)
  and, for the GMM primal, C (`gmm.c`, cc -O3 -march=native -ffp-contract=off);
- every peer's result checked against dad's (relative difference recorded).

Targets: derivative / primal <= 3 (GMM, LSTM), <= 4 (BA); GMM gradient >= 2x faster than
jax.jit(jax.grad); LSTM gradient >= 2x faster than JAX; BA Jacobian >= 3x faster than JAX's
vmap(jacfwd); GMM primal within 1.2x of C.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np

from .._common import interleaved_medians
from . import io, peers, reference as R

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXAMPLES = ROOT / "examples"
RESULTS = HERE.parent / "results"

GMM_SIZES = [(2, 5), (10, 25), (20, 50), (64, 200)]
LSTM_SIZES = [(2, 1024), (2, 4096), (4, 1024), (4, 4096)]
TARGETS = {"gmm": {"ratio": 3.0, "vs_jax": 2.0, "vs_c": 1.2},
           "ba": {"ratio": 4.0, "vs_jax": 3.0},
           "lstm": {"ratio": 3.0, "vs_jax": 2.0}}


def _rel(a, b) -> float:
    a = np.concatenate([np.ravel(np.asarray(x, dtype=float)) for x in (a if isinstance(a, (tuple, list)) else [a])])
    b = np.concatenate([np.ravel(np.asarray(x, dtype=float)) for x in (b if isinstance(b, (tuple, list)) else [b])])
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def _compile(name):
    import dad
    return dad.compile_file(str(EXAMPLES / f"{name}.dad"))


def _measure(problem: str, size: str, source: str, dad_primal, dad_deriv, peer_sets: dict,
             numpy_primal, c_primal, budget: float, extra: dict | None = None) -> dict:
    """peer_sets: name -> (callables or None, note)."""
    fns = {"dad.primal": dad_primal, "dad.deriv": dad_deriv}
    notes = {}
    checks = {}
    want_p, want_d = dad_primal(), dad_deriv()
    for name, (calls, note) in peer_sets.items():
        notes[name] = note
        if calls is None:
            continue
        fns[f"{name}.primal"] = calls["primal"]
        fns[f"{name}.deriv"] = calls["deriv"]
        try:
            checks[f"{name}.primal"] = _rel(_to_np(calls["primal"]()), want_p)
            checks[f"{name}.deriv"] = _rel(_to_np(calls["deriv"]()), want_d)
        except Exception as e:
            checks[name] = f"check failed: {type(e).__name__}: {e}"[:200]
    if numpy_primal is not None:
        fns["numpy.primal"] = numpy_primal
        checks["numpy.primal"] = _rel(numpy_primal(), want_p)
    if c_primal is not None:
        fns["c.primal"] = c_primal
        checks["c.primal"] = _rel(c_primal(), want_p)
    res = interleaved_medians(fns, budget_s=budget, max_reps=20)
    t = {k: v["median_s"] for k, v in res.items()}
    if "jax.deriv" in fns:
        extra = dict(extra or {}, jax_deriv_cores=_cores(fns["jax.deriv"], t["jax.deriv"]))
    row = {"problem": problem, "size": size, "input": source, "times_s": t,
           "samples_s": {k: v["samples_s"] for k, v in res.items()}, "agreement_rel": checks,
           "peer_notes": notes, "ratio": t["dad.deriv"] / t["dad.primal"]}
    for name in peer_sets:
        if f"{name}.deriv" in t:
            row[f"speedup_deriv_vs_{name}"] = t[f"{name}.deriv"] / t["dad.deriv"]
            row[f"speedup_primal_vs_{name}"] = t[f"{name}.primal"] / t["dad.primal"]
    if "numpy.primal" in t:
        row["speedup_primal_vs_numpy"] = t["numpy.primal"] / t["dad.primal"]
    if "c.primal" in t:
        row["primal_dad_over_c"] = t["dad.primal"] / t["c.primal"]
    if extra:
        row.update(extra)
    tg = TARGETS[problem]
    row["met"] = {"ratio": row["ratio"] <= tg["ratio"]}
    if "speedup_deriv_vs_jax" in row:
        row["met"]["vs_jax"] = row["speedup_deriv_vs_jax"] >= tg["vs_jax"]
    if "primal_dad_over_c" in row:
        row["met"]["vs_c"] = row["primal_dad_over_c"] <= tg["vs_c"]
    return row


def _cores(f, per_call_s: float) -> float:
    """How many cores `f` keeps busy: CPU time over wall time of about 0.2 s of calls."""
    n = max(1, min(200, int(0.2 / max(per_call_s, 1e-9))))
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        f()
    return (time.process_time() - c0) / (time.perf_counter() - w0)


# Why a target is missed, from profiles of dad's code (the numbers are in the table).
CAUSES = {
    ("gmm", "vs_jax"): "JAX keeps more than one core busy (listed per row above; dad runs "
                       "on one), and its time varies between runs of this benchmark "
                       "more than dad's does. dad's remaining cost: the reverse of `sq[i] += "
                       "qx[a, i] * qx[a, i]`, which reads qx back from the tape (qx is "
                       "overwritten for each component, so each component records d * n values; "
                       "the forward sweep's copy onto the tape is a memcpy), and the per-point "
                       "`lse.vjp.v` calls (each returns a fresh k-array).",
    ("gmm", "ratio"): "See the gmm vs JAX note: the tape of qx per component.",
    ("lstm", "ratio"): "The derivative's samples vary with what ran before them: the "
                       "benchmark settles the C heap before each timed call (`settle_heap`), "
                       "without which eager PyTorch's freed blocks were merged inside the next "
                       "call (4 ms or 20 ms by turns); what varies beyond that is this "
                       "machine's noise (see the samples in adbench.json).",
    ("lstm", "vs_jax"): "See the lstm ratio note.",
    ("ba", "ratio"): "The Jacobian takes one reverse sweep of `res` per residual, two per "
                     "observation (LLVM hoists the projection's forward part out of the loop "
                     "over the two residuals: one sin and one cos per observation in the "
                     "optimised code), and writes 31 entries per observation; the primal "
                     "writes 3.",
}


def _missed(rows) -> list[str]:
    """Each missed target: by how much, with the measured context and the profiled cause."""
    out = []
    for r in rows:
        tg = TARGETS[r["problem"]]
        for key, ok in r["met"].items():
            if ok:
                continue
            if key == "ratio":
                what = (f"derivative / primal {r['ratio']:.2f}× against ≤ {tg['ratio']:g} "
                        f"({r['ratio'] / tg['ratio'] - 1:.0%} over)")
            elif key == "vs_jax":
                v = r["speedup_deriv_vs_jax"]
                what = (f"{v:.2f}× faster than JAX against ≥ {tg['vs_jax']:g} "
                        f"({1 - v / tg['vs_jax']:.0%} short); JAX's gradient kept "
                        f"{r.get('jax_deriv_cores', float('nan')):.1f} cores busy")
            else:
                v = r["primal_dad_over_c"]
                what = f"primal {v:.2f}× C's against ≤ {tg['vs_c']:g}"
            out.append(f"- {r['problem']} {r['size']}: {what}. "
                       f"{CAUSES.get((r['problem'], key), '')}".rstrip())
    return out


def _to_np(x):
    if isinstance(x, (tuple, list)):
        return [_to_np(v) for v in x]
    if hasattr(x, "detach"):
        return x.detach().numpy()
    return np.asarray(x)


def _peers(builders, inp, use_peers):
    if not use_peers:
        return {}
    return {name: b(inp) for name, b in builders}


def bench_gmm(sizes, use_peers, budget, clib):
    m = _compile("gmm")
    rows = []
    for d, k in sizes:
        g, source = io.gmm_input(d, k)
        a = g.args()
        ps = _peers([("jax", peers.jax_gmm), ("torch", peers.torch_gmm)], g, use_peers)
        rows.append(_measure("gmm", f"d={d} K={k} n={g.x.shape[0]}", source,
                             lambda: m.gmm_objective(*a), lambda: m.gmm_grad(*a), ps,
                             lambda: R.gmm_objective(*a), peers.c_gmm(clib, g), budget))
        print(_line(rows[-1]), flush=True)
    return rows


def bench_ba(files, use_peers, budget):
    m = _compile("ba")
    rows = []
    for f in files:
        b = io.read_ba(f)
        n, mm, p = b.sizes
        a = b.args()
        ps = _peers([("jax", peers.jax_ba), ("torch", peers.torch_ba)], b, use_peers)
        jac, wjac = m.ba_jacobian(*a)
        t0 = time.perf_counter()
        reps = 5
        for _ in range(reps):
            R.ba_sparse_jacobian(n, mm, b.obs, jac, wjac)
        t_csr = (time.perf_counter() - t0) / reps
        rows.append(_measure("ba", f"n={n} m={mm} p={p}", f"ADBench file {f.name}",
                             lambda: m.ba_objective(*a), lambda: m.ba_jacobian(*a), ps,
                             lambda: R.ba_objective(*a), None, budget,
                             {"csr_assembly_s": t_csr}))
        print(_line(rows[-1]), flush=True)
    return rows


def bench_lstm(sizes, use_peers, budget):
    m = _compile("lstm")
    rows = []
    for l, c in sizes:
        s, source = io.lstm_input(l, c)
        a = s.args()
        ps = _peers([("jax", peers.jax_lstm), ("torch", peers.torch_lstm)], s, use_peers)
        if "torch" in ps and c > 1024 and ps["torch"][0] is not None:
            # eager PyTorch takes seconds per call here (a Python loop of c * l steps)
            ps["torch"] = (None, "skipped for c > 1024 (eager Python loop: seconds per call)")
        rows.append(_measure("lstm", f"l={l} c={c} b=14", source,
                             lambda: m.lstm_objective(*a), lambda: m.lstm_grad(*a), ps,
                             lambda: R.lstm_objective(*a), None, budget))
        print(_line(rows[-1]), flush=True)
    return rows


def _fmt_t(s):
    if s is None:
        return "—"
    return f"{s * 1e3:.3g} ms" if s >= 1e-3 else f"{s * 1e6:.3g} µs"


def _fmt_x(v, good=None):
    if v is None:
        return "—"
    mark = "" if good is None else (" ✓" if good else " ✗")
    return f"{v:.2f}×{mark}"


def _line(r):
    t = r["times_s"]
    parts = [f"{r['problem']} {r['size']}: dad {_fmt_t(t['dad.primal'])} / {_fmt_t(t['dad.deriv'])}"
             f" (ratio {r['ratio']:.2f})"]
    for k in ("jax", "torch"):
        if f"{k}.deriv" in t:
            parts.append(f"{k} {_fmt_t(t[k + '.primal'])} / {_fmt_t(t[k + '.deriv'])}")
    if "c.primal" in t:
        parts.append(f"C {_fmt_t(t['c.primal'])}")
    return "; ".join(parts)


def write_results(rows, meta, out_dir: pathlib.Path):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "adbench.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    L = [f"# ADBench in dad (`python -m benchmarks.adbench{' --quick' if meta['quick'] else ''}`)", "",
         f"Measured {meta['date']} on {meta['machine']}; Python {meta['python']}, NumPy "
         f"{meta['numpy']}. Every figure is the median of interleaved repeated calls in this "
         "one run (samples in `adbench.json`). Derivative = `gmm_grad` / `ba_jacobian` (dense "
         "2×15 blocks; CSR assembly in NumPy listed separately) / `lstm_grad`. "
         "\"speed-up\" = peer time / dad time (higher is better for dad).", "",
         "Peers: " + "; ".join(f"{k}: {v}" for k, v in meta["peers"].items()), "",
         "| problem | size | input | dad primal | dad derivative | deriv/primal (target) "
         "| JAX primal | JAX deriv | speed-up vs JAX deriv (target) | PyTorch deriv "
         "| speed-up vs PyTorch | NumPy primal | C primal | dad/C primal (target) |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["times_s"]
        tg = TARGETS[r["problem"]]
        met = r["met"]
        L.append("| " + " | ".join([
            r["problem"], r["size"], r["input"], _fmt_t(t["dad.primal"]), _fmt_t(t["dad.deriv"]),
            f"{_fmt_x(r['ratio'], met['ratio'])} (≤ {tg['ratio']:g})",
            _fmt_t(t.get("jax.primal")), _fmt_t(t.get("jax.deriv")),
            (f"{_fmt_x(r.get('speedup_deriv_vs_jax'), met.get('vs_jax'))} (≥ {tg['vs_jax']:g})"
             if "speedup_deriv_vs_jax" in r else "—"),
            _fmt_t(t.get("torch.deriv")), _fmt_x(r.get("speedup_deriv_vs_torch")),
            _fmt_t(t.get("numpy.primal")), _fmt_t(t.get("c.primal")),
            (f"{_fmt_x(r['primal_dad_over_c'], met.get('vs_c'))} (≤ {tg['vs_c']:g})"
             if "primal_dad_over_c" in r else "—")]) + " |")
    L += ["", "Agreement of every peer with dad (max relative difference over all outputs):", ""]
    for r in rows:
        agree = ", ".join(f"{k} {v:.1e}" if isinstance(v, float) else f"{k}: {v}"
                          for k, v in r["agreement_rel"].items())
        extra = f"; CSR assembly (NumPy) {_fmt_t(r['csr_assembly_s'])}" if "csr_assembly_s" in r else ""
        cores = (f"; JAX's gradient kept {r['jax_deriv_cores']:.1f} cores busy"
                 if "jax_deriv_cores" in r else "")
        L.append(f"- {r['problem']} {r['size']}: {agree or 'no peers'}{extra}{cores}")
    missed = _missed(rows)
    if missed:
        L += ["", "Missed targets (by how much, and why):", "", *missed]
    if meta.get("notes"):
        L += ["", *meta["notes"]]
    (out_dir / "adbench.md").write_text("\n".join(L) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.adbench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smallest size of each problem only")
    ap.add_argument("--no-peers", action="store_true", help="skip JAX and PyTorch")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds of timing per problem size (default 1.5, quick 0.3)")
    ap.add_argument("--out", type=pathlib.Path, default=RESULTS)
    ap.add_argument("--only", choices=["gmm", "ba", "lstm"], action="append")
    args = ap.parse_args(argv)
    budget = args.budget if args.budget is not None else (0.3 if args.quick else 1.5)
    use_peers = not args.no_peers
    only = set(args.only or ["gmm", "ba", "lstm"])
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {platform.processor() or ''} ({os.cpu_count()} CPUs)".strip(),
            "python": platform.python_version(), "numpy": np.__version__, "quick": args.quick,
            "peers": {}, "notes": []}
    if use_peers:
        meta["peers"]["jax"] = peers.jax_module()[2]
        meta["peers"]["torch"] = peers.torch_module()[1]
    else:
        meta["peers"]["jax/torch"] = "skipped (--no-peers)"
    for k, v in meta["peers"].items():
        print(f"{k}: {v}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clib, cnote = peers.build_c(pathlib.Path(tmp))
        meta["peers"]["c"] = cnote
        if "gmm" in only:
            rows += bench_gmm(GMM_SIZES[:1] if args.quick else GMM_SIZES, use_peers, budget, clib)
        if "ba" in only:
            files = io.ba_files()
            rows += bench_ba(files[:1] if args.quick else files, use_peers, budget)
        if "lstm" in only:
            rows += bench_lstm(LSTM_SIZES[:1] if args.quick else LSTM_SIZES, use_peers, budget)
    write_results(rows, meta, args.out)
    print(f"wrote {args.out / 'adbench.md'} and {args.out / 'adbench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
