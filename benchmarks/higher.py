"""Second-order benchmark: what does a Hessian-vector product or a Hessian cost?

Run with `python -m benchmarks.higher` (add `--quick` for a smoke run). Everything is
measured in this run, side by side, and written to `benchmarks/results/higher.md` (a Markdown
table) and `benchmarks/results/higher.json` (every median and sample):

1. HVP time / gradient time, n = 10**6, for
   - `rosen` (Rosenbrock, the loop of `examples/rosenbrock.dad`): the gradient records
     nothing on the tape;
   - `recur`, a recurrence `s = s + 0.1 sin(s x_i) + 0.05 exp(-s^2) x_i` whose gradient
     records `s` every iteration (a tape of n values), so the HVP's forward sweep over the
     reverse program carries tangents of the tape.
   Both `hvp` routes (forward over reverse, the default, and reverse over forward) are
   timed against `grad`, interleaved (grad, hvp, hvp-rof, grad, ...); medians of the rounds.
   Target: hvp / grad <= 2.5 (the theoretical cost of forward over reverse is ~2-3 gradients).
2. The dense Hessian of an R^100 -> R function with real coupling (a chained Rosenbrock-like
   term, log1p of neighbour products and a squared norm that couples every pair):
   `dad.hessian` vs `jax.hessian` under `jax.jit` with x64 enabled, per call from Python,
   results checked to agree. Target: dad faster. JAX is optional: without it the row is
   skipped with a note.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys

from benchmarks._common import finish, interleaved_medians, machine_meta
import timeit

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"

HVP_TARGET = 2.5
HESSIAN_TARGET = 1.0  # dad / jax

SOURCE = """
fn rosen(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    return s;
}
fn recur(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n {
        s = s + 0.1 * sin(s * x[i]) + 0.05 * exp(-s * s) * x[i];
    }
    return s;
}
fn coupled(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n - 1 {
        let a = x[i + 1] - x[i] * x[i];
        s += 10.0 * a * a + log1p(x[i] * x[i + 1] * x[i] * x[i + 1]);
    }
    let q = dot(x, x);
    return s + 0.01 * q * q + sin(sum(x));
}
fn rosen_grad = grad(rosen);
fn rosen_hvp = hvp(rosen, wrt=x);
fn recur_grad = grad(recur);
fn recur_hvp = hvp(recur, wrt=x);
fn coupled_hess = hessian(coupled, wrt=x);
"""


def per_call(f, number: int, repeat: int) -> dict:
    t = timeit.Timer(f)
    t.timeit(max(1, number // 10))
    runs = [t.timeit(number) / number for _ in range(repeat)]
    return {"median_s": statistics.median(runs), "samples_s": runs}


def _row(**kw) -> dict:
    base = {"name": "", "a_s": None, "b_s": None, "ratio": None, "ratio_of": "",
            "target": None, "met": None, "note": ""}
    base.update(kw)
    return base


def bench_hvp(mod, n: int, rounds: int) -> list[dict]:
    import dad  # noqa: F401
    from dad.runtime.transforms import derive_kernel

    rng = np.random.default_rng(0)
    rows = []
    cases = [("rosen", rng.uniform(-2.0, 2.0, n), "no tape"),
             ("recur", rng.uniform(-1.0, 1.0, n), f"tape of {n:,} values")]
    for name, x, what in cases:
        v = rng.standard_normal(n)
        g, hv = getattr(mod, name + "_grad"), getattr(mod, name + "_hvp")
        rof = derive_kernel(getattr(mod, name), "hvp", wrt="x", route="reverse-over-forward")
        # the two routes agree (sanity: a fast wrong answer is no result)
        a, b = hv(x, v), rof(x, v)
        agree = float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-300))
        res = interleaved_medians({"grad": lambda: g(x), "hvp": lambda: hv(x, v),
                                   "hvp_rof": lambda: rof(x, v)}, rounds)
        t_g, t_h, t_r = (res[k]["median_s"] for k in ("grad", "hvp", "hvp_rof"))
        samples = {k: r["samples_s"] for k, r in res.items()}
        rows.append(_row(name=f"{name} hvp (forward over reverse) / grad, n = {n:,} ({what})",
                         a_s=t_h, b_s=t_g, ratio=t_h / t_g, ratio_of="hvp / grad",
                         target=HVP_TARGET, met=t_h / t_g <= HVP_TARGET, samples=samples,
                         note=f"routes agree to {agree:.1e} (max rel.)"))
        rows.append(_row(name=f"{name} hvp (reverse over forward) / grad, n = {n:,} ({what})",
                         a_s=t_r, b_s=t_g, ratio=t_r / t_g, ratio_of="hvp / grad",
                         target=HVP_TARGET, met=t_r / t_g <= HVP_TARGET,
                         note="route=\"reverse-over-forward\" (derive_kernel)"))
    return rows


JAX_COUPLED = """
def coupled(x):
    a = x[1:] - x[:-1] * x[:-1]
    p = x[:-1] * x[1:]
    q = jnp.dot(x, x)
    return jnp.sum(10.0 * a * a + jnp.log1p(p * p)) + 0.01 * q * q + jnp.sin(jnp.sum(x))
"""


def bench_hessian(mod, m: int, number: int, repeat: int) -> list[dict]:
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.0, 1.0, m)
    h_dad = mod.coupled_hess
    H = h_dad(x)
    name = f"hessian of coupled: R^{m} -> R (dense {m}x{m})"
    t_dad = per_call(lambda: h_dad(x), number, repeat)
    row = _row(name=name, a_s=t_dad["median_s"], ratio_of="dad / jax.jit(jax.hessian)",
               target=HESSIAN_TARGET, samples={"dad": t_dad["samples_s"]})
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
    except Exception as e:  # optional dependency
        print(f"  skip: jax.hessian comparison needs JAX ({type(e).__name__}: {e})", flush=True)
        row["note"] = "JAX not installed: comparison skipped"
        return [row]
    ns = {"jnp": jnp}
    exec(JAX_COUPLED, ns)
    hj = jax.jit(jax.hessian(ns["coupled"]))
    xj = jnp.asarray(x)
    Hj = np.asarray(hj(xj).block_until_ready())
    err = float(np.max(np.abs(H - Hj)) / np.max(np.abs(Hj)))
    # per call from Python, including the conversion of the result to NumPy on both sides
    t_jax = per_call(lambda: np.asarray(hj(xj).block_until_ready()), number, repeat)
    row.update(b_s=t_jax["median_s"], ratio=row["a_s"] / t_jax["median_s"])
    row["met"] = row["ratio"] <= HESSIAN_TARGET and err < 1e-12
    row["samples"]["jax"] = t_jax["samples_s"]
    row["note"] = (f"jax {jax.__version__}, x64, jit (compile excluded); results agree to "
                   f"{err:.1e} (max rel.); both timed per call from Python, result as NumPy")
    return [row]


def _fmt_t(s):
    if s is None:
        return "—"
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def _status(r):
    if r["met"] is None:
        return "skipped"
    return "met" if r["met"] else "MISSED"


def print_row(r):
    ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}×"
    print(f"  {r['name']:<72} {_fmt_t(r['a_s']):>10} vs {_fmt_t(r['b_s']):>10}  "
          f"{r['ratio_of']} {ratio:>6}  target ≤ {r['target']:.1f}×  {_status(r)}"
          + (f"  [{r['note']}]" if r["note"] else ""), flush=True)


def render_markdown(meta, rows) -> str:
    out = ["# Second-order benchmark", "",
           f"Generated by `python -m benchmarks.higher` on {meta['date']}.", "",
           f"- machine: {meta['cpu']} ({meta['machine']}), {meta['cores']} cores",
           f"- python {meta['python']}, numpy {meta['numpy']}, dad {meta['dad']}",
           f"- hvp: median of {meta['rounds']} interleaved rounds (grad, hvp, hvp-rof); "
           f"hessian: median of {meta['repeat']} × {meta['number']} calls", "",
           "| benchmark | time | against | ratio | target | status | notes |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}× ({r['ratio_of']})"
        out.append(f"| {r['name']} | {_fmt_t(r['a_s'])} | {_fmt_t(r['b_s'])} | {ratio} | "
                   f"≤ {r['target']:.1f}× | {_status(r)} | {r['note'].replace('|', '/')} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.higher", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repetitions: a smoke run")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    n, m = 10**6, 100
    rounds = 5 if args.quick else 21
    number, repeat = (20, 3) if args.quick else (200, 7)
    try:
        import dad
        mod = dad.compile(SOURCE, filename="higher_bench.dad")
    except Exception as e:
        print(f"cannot compile the benchmark program: {type(e).__name__}: {e}")
        return 1
    rows = []
    print("hvp / grad:", flush=True)
    for r in bench_hvp(mod, n, rounds):
        rows.append(r)
        print_row(r)
    print("dense Hessian:", flush=True)
    for r in bench_hessian(mod, m, number, repeat):
        rows.append(r)
        print_row(r)
    meta = machine_meta(
        n=n, m=m, rounds=rounds, number=number, repeat=repeat, quick=args.quick,
        targets={"hvp_over_grad": HVP_TARGET, "hessian_dad_over_jax": HESSIAN_TARGET})
    return finish("higher", meta, rows, render_markdown(meta, rows), not args.no_write,
                  not_run="skipped")


if __name__ == "__main__":
    sys.exit(main())
