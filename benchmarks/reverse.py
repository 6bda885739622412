"""Reverse-mode benchmark: what does a gradient cost relative to the function itself?

Run with `python -m benchmarks.reverse` (add `--quick` for a smoke run); `python -m
benchmarks` runs it too. Everything is measured in this run, side by side (rounds
interleaved: primal, gradient, [JAX], primal, ...), each figure the median of the rounds,
and written to `benchmarks/results/reverse.md` and `benchmarks/results/reverse.json`.

1. Gradient time / primal time, n = 10**6 (targets: <= 2 where the tape is empty, <= 3
   otherwise; the tape is empty when every value the adjoint reads can be recomputed):
   - `rosen` (examples/rosenbrock.dad, strict loop): `grad(rosen)` — records nothing.
   - dot product: `grad(dot_builtin, wrt=a)` of `dot(a, b)` — records nothing.
   - while-loop solver: Newton for sqrt over an array of inputs (`newton_sqrt` of
     examples/newton.dad, a `while` loop run to a relative tolerance 1e-14, called per
     element), `grad` w.r.t. the array of inputs — records the iterates.
2. `grad(rosen)` vs `jax.jit(jax.grad(rosen))` on the same data (f64, `jax_enable_x64`), when
   JAX is importable (an optional extra; a skip line otherwise). Target: dad faster than JAX
   (ratio dad / JAX < 1). JAX's compile happens in the untimed warm-up. JAX keeps its default
   threads; the note records how many cores its gradient kept busy (CPU time / wall time
   over as many calls as rounds), dad's code runs on one.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from benchmarks._common import finish, interleaved_medians, machine_meta
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLES = ROOT / "examples"
RESULTS = HERE / "results"

EMPTY_TAPE_TARGET = 2.0
TAPE_TARGET = 3.0
JAX_TARGET = 1.0

SOLVER_SRC = """
fn newton_sqrt(a: f64, tol: f64) -> f64 {
    var x = select(a > 1.0, a, 1.0);
    var it = 0;
    while true {
        let dx = (x * x - a) / (2.0 * x);
        x -= dx;
        it += 1;
        if abs(dx) <= tol * x or it >= 100 {
            break;
        }
    }
    return x;
}

# Newton's method for the square root of every element; the sum of the roots.
fn sqrt_sum(a: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n {
        s += newton_sqrt(a[i], 1e-14);
    }
    return s;
}
"""


def _row(**kw) -> dict:
    base = {"name": "", "grad_s": None, "primal_s": None, "ref_s": None, "ratio": None,
            "ratio_of": "", "target": None, "met": None, "note": ""}
    base.update(kw)
    return base


def bench_ratios(n: int, rounds: int) -> list[dict]:
    import dad

    rng = np.random.default_rng(0)
    x = rng.uniform(-2.0, 2.0, n)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    rows = []
    try:
        ros = dad.compile_file(str(EXAMPLES / "rosenbrock.dad"))
        cases = [("rosen", f"grad(rosen), n = {n:,}", ros.rosen, dad.grad(ros.rosen), (x,),
                  EMPTY_TAPE_TARGET, "tape empty"),
                 ("dot", f"grad(dot(a, b), wrt=a), n = {n:,}", ros.dot_builtin,
                  dad.grad(ros.dot_builtin, wrt="a"), (a, b), EMPTY_TAPE_TARGET, "tape empty")]
    except Exception as e:  # report, don't crash
        return [_row(name="rosen / dot", note=f"dad failed: {type(e).__name__}: {e}"[:300])]
    try:
        sol = dad.compile(SOLVER_SRC, filename="solver.dad")
        m = max(n // 10, 1)
        inputs = rng.uniform(0.1, 100.0, m)
        cases.append(("solver", f"grad of Newton sqrt (while loop) over {m:,} inputs",
                      sol.sqrt_sum, dad.grad(sol.sqrt_sum), (inputs,), TAPE_TARGET,
                      "records the iterates"))
    except Exception as e:
        rows.append(_row(name="while-loop solver", note=f"dad failed: {type(e).__name__}: {e}"[:300]))
    for key, title, f, g, args, target, tape in cases:
        try:
            res = interleaved_medians({"primal": lambda: f(*args), "grad": lambda: g(*args)},
                                      rounds)
        except Exception as e:
            rows.append(_row(name=title, note=f"call failed: {type(e).__name__}: {e}"[:300]))
            continue
        ratio = res["grad"]["median_s"] / res["primal"]["median_s"]
        row = _row(name=title, key=key, grad_s=res["grad"]["median_s"],
                   primal_s=res["primal"]["median_s"], ratio=ratio, ratio_of="grad / primal",
                   target=target, met=ratio <= target, note=tape,
                   samples={k: v["samples_s"] for k, v in res.items()})
        if key == "solver":  # check the answer while we are here: d sqrt(a)/da
            gr = g(*args)
            err = float(np.max(np.abs(gr - 0.5 / np.sqrt(args[0])) * 2 * np.sqrt(args[0])))
            row["note"] += f"; max rel. error vs 1/(2 sqrt a): {err:.1e}"
        rows.append(row)
    return rows


def bench_jax(n: int, rounds: int) -> list[dict]:
    title = f"grad(rosen) vs jax.jit(jax.grad(rosen)), n = {n:,}"
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
    except Exception as e:
        print(f"  skip: JAX comparison (JAX not importable: {type(e).__name__}: {e})", flush=True)
        return [_row(name=title, note="skipped: JAX not importable", target=JAX_TARGET,
                     ratio_of="dad / JAX")]
    import dad

    rng = np.random.default_rng(0)
    x = rng.uniform(-2.0, 2.0, n)
    ros = dad.compile_file(str(EXAMPLES / "rosenbrock.dad"))
    g = dad.grad(ros.rosen)

    def rosen_jax(v):
        h = v[:-1]
        return jnp.sum(100.0 * (v[1:] - h * h) ** 2 + (1.0 - h) ** 2)

    jg = jax.jit(jax.grad(rosen_jax))
    xj = jnp.asarray(x)
    res = interleaved_medians({"dad": lambda: g(x),
                               "jax": lambda: jg(xj).block_until_ready()}, rounds)
    t_cpu, t_wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        jg(xj).block_until_ready()
    cores = (time.process_time() - t_cpu) / (time.perf_counter() - t_wall)
    same = float(np.max(np.abs(g(x) - np.asarray(jg(xj)))) /
                 max(1.0, float(np.max(np.abs(g(x))))))
    ratio = res["dad"]["median_s"] / res["jax"]["median_s"]
    return [_row(name=title, key="jax", grad_s=res["dad"]["median_s"], ref_s=res["jax"]["median_s"],
                 ratio=ratio, ratio_of="dad / JAX", target=JAX_TARGET, met=ratio < JAX_TARGET,
                 samples={k: v["samples_s"] for k, v in res.items()},
                 note=f"jax {jax.__version__} on {jax.devices()[0].platform}, x64, kept "
                      f"{cores:.1f} cores busy (CPU / wall time; dad runs on one); "
                      f"gradients agree to {same:.1e} (relative)")]


def _fmt_t(s):
    if s is None:
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def _status(r):
    if r["met"] is None:
        return "skipped" if r["note"].startswith("skipped") else "error"
    return "met" if r["met"] else "MISSED"


def _cmp(r):
    if r["target"] is None:
        return "—"
    return f"< {r['target']:.1f}×" if r.get("key") == "jax" or r["ratio_of"] == "dad / JAX" \
        else f"≤ {r['target']:.1f}×"


def print_row(r):
    ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}×"
    print(f"  {r['name']:<58} grad {_fmt_t(r['grad_s']):>10}  primal {_fmt_t(r['primal_s']):>10}"
          f"  JAX {_fmt_t(r['ref_s']):>10}  {r['ratio_of'] or 'ratio'} {ratio:>6}  target "
          f"{_cmp(r):>6}  {_status(r)}" + (f"  [{r['note']}]" if r["note"] else ""), flush=True)


def render_markdown(meta, rows):
    out = ["# Reverse-mode benchmark", "",
           f"Generated by `python -m benchmarks.reverse` on {meta['date']}.", "",
           f"- machine: {meta['cpu']} ({meta['machine']}), {meta['cores']} cores",
           f"- python {meta['python']}, numpy {meta['numpy']}, dad {meta['dad']}",
           f"- median of {meta['rounds']} interleaved rounds each; n = {meta['n']:,}", "",
           "| benchmark | dad grad | dad primal | JAX grad | ratio | target | status | notes |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}× ({r['ratio_of']})"
        out.append(f"| {r['name']} | {_fmt_t(r['grad_s'])} | {_fmt_t(r['primal_s'])} | "
                   f"{_fmt_t(r['ref_s'])} | {ratio} | {_cmp(r)} | {_status(r)} | "
                   f"{r['note'].replace('|', chr(92) + '|')} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.reverse", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repetitions: a smoke run")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    n = 10**6
    rounds = 5 if args.quick else 21
    try:
        import dad  # noqa: F401  (fail early with a message, not in the middle of a run)
    except Exception as e:  # pragma: no cover
        print(f"cannot import dad: {e}")
        return 1
    rows = []
    print("gradient / primal:", flush=True)
    for r in bench_ratios(n, rounds):
        rows.append(r)
        print_row(r)
    print("vs JAX:", flush=True)
    for r in bench_jax(n, rounds):
        rows.append(r)
        print_row(r)
    meta = machine_meta(
        n=n, rounds=rounds, quick=args.quick,
        targets={"grad_over_primal_empty_tape": EMPTY_TAPE_TARGET,
                 "grad_over_primal_with_tape": TAPE_TARGET, "dad_over_jax": JAX_TARGET})
    return finish("reverse", meta, rows, render_markdown(meta, rows), not args.no_write,
                  not_run="skipped or failed")


if __name__ == "__main__":
    sys.exit(main())
