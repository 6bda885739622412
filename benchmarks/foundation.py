"""Foundation benchmark: is compiled dad as fast as C, cheap to call, and quick to compile?

Run with `python -m benchmarks.foundation` (add `--quick` for a smoke run). Everything is
measured in this run, side by side, and written to `benchmarks/results/foundation.md` (a
Markdown table) and `benchmarks/results/foundation.json` (every median and sample):

1. Kernels over n = 10**6 (functions of `examples/rosenbrock.dad`): dad vs the same loop in
   C (`benchmarks/c/foundation.c`, built here with `cc -O3 -march=native -shared -fPIC
   -ffp-contract=off` -- strict IEEE like dad, no FMA contraction -- and loaded with ctypes;
   skipped when there is no `cc`) vs NumPy. Rounds are interleaved
   (dad, C, NumPy, dad, ...) and each figure is the median of the rounds. Target: dad
   within 1.2x of C.
   - `rosen`: a strict, sequential sum in both.
   - `dot` (builtin, may sum in any order) vs a C loop with `#pragma omp simd reduction`.
   - `dot_loop` (explicit loop, in order) vs the same C loop (no reassociation either).
2. Call overhead of `fn add1(x: f64) -> f64` from Python: dad's function object vs a bare
   ctypes call of the same machine code (`k._cfunc`), both timed with `timeit` minus the
   timing loop's own cost. Target: within 2x. Skipped when `k._cfunc` is missing.
3. Cold compile time of every example: `dad.compile_file` as the first compile of a fresh
   interpreter (after `import dad`), with `DAD_NO_CACHE=1`, median of a few processes; the
   clock also covers looking up every exported function (and its `_cfunc` when there is
   one), so a lazy JIT cannot hide work. Target: 150 ms per 30 lines (non-blank,
   non-comment), i.e. 150 ms for programs of up to 30 lines.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys

from benchmarks._common import finish, interleaved_medians, machine_meta
import tempfile
import textwrap
import timeit

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLES = ROOT / "examples"
RESULTS = HERE / "results"
C_SOURCE = HERE / "c" / "foundation.c"

KERNEL_TARGET = 1.2
CALL_TARGET = 2.0
COMPILE_TARGET_MS_PER_30_LINES = 150.0

ADD1 = "fn add1(x: f64) -> f64 { return x + 1.0; }\n"

_f64p = ctypes.POINTER(ctypes.c_double)


# ---------------------------------------------------------------------------------------
# Building and loading the C reference
# ---------------------------------------------------------------------------------------

def build_c(tmpdir: pathlib.Path) -> tuple[ctypes.CDLL | None, str]:
    """Compile benchmarks/c/foundation.c; returns (library or None, note)."""
    cc = shutil.which("cc")
    if cc is None:
        return None, "no `cc` on PATH: C column skipped"
    out = tmpdir / "libfoundation.so"
    # -ffp-contract=off: GCC would otherwise fuse a*b + c into an FMA, which dad's strict
    # IEEE mode does not do; with it, the in-order loops must agree with dad bit for bit.
    base = [cc, "-O3", "-march=native", "-shared", "-fPIC", "-ffp-contract=off"]
    for extra in (["-fopenmp-simd"], []):
        cmd = base + extra + [str(C_SOURCE), "-o", str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode == 0:
            lib = ctypes.CDLL(str(out))
            for name, nargs in (("rosen", 1), ("dot_loop", 2), ("dot_any_order", 2)):
                f = getattr(lib, name)
                f.argtypes = [_f64p] * nargs + [ctypes.c_int64]
                f.restype = ctypes.c_double
            lib.add1.argtypes = [ctypes.c_double]
            lib.add1.restype = ctypes.c_double
            version = subprocess.run([cc, "--version"], capture_output=True, text=True)
            first = (version.stdout.splitlines() or ["?"])[0]
            return lib, f"{' '.join(cmd[1:-3])} ({first})"
    return None, f"`cc` failed: {r.stderr.strip()[:300]}"


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(_f64p)


# ---------------------------------------------------------------------------------------
# Timing helpers
# ---------------------------------------------------------------------------------------

def per_call_seconds(f, args: tuple, number: int, repeat: int) -> dict:
    """Median seconds per call of `f(*args)` measured with timeit, minus the cost of
    timeit's own loop (an empty statement), over `repeat` runs of `number` calls."""
    stmt = "f(a0)" if len(args) == 1 else "f(*a)"
    t_call = timeit.Timer(stmt, globals={"f": f, "a0": args[0], "a": args})
    t_empty = timeit.Timer("pass")
    runs = []
    t_call.timeit(max(number // 10, 1))  # warm-up
    for _ in range(repeat):
        call = t_call.timeit(number)
        empty = t_empty.timeit(number)
        runs.append(max(call - empty, 0.0) / number)
    return {"median_s": statistics.median(runs), "samples_s": runs}


def _row(**kw) -> dict:
    base = {"name": "", "dad_s": None, "c_s": None, "numpy_s": None, "ratio": None,
            "ratio_of": "", "target": None, "met": None, "note": ""}
    base.update(kw)
    return base


# ---------------------------------------------------------------------------------------
# 1. Kernels
# ---------------------------------------------------------------------------------------

def bench_kernels(lib, n: int, rounds: int) -> list[dict]:
    import dad

    rng = np.random.default_rng(0)
    x = rng.uniform(-2.0, 2.0, n)
    a = rng.standard_normal(n)
    b = rng.standard_normal(n)
    rows = []
    try:
        mod = dad.compile_file(str(EXAMPLES / "rosenbrock.dad"))
    except Exception as e:  # the compiler may not handle this yet: report, don't crash
        msg = f"dad could not compile examples/rosenbrock.dad: {type(e).__name__}: {e}"
        return [_row(name=k, note=msg[:300]) for k in ("rosen", "dot", "dot_loop")]

    def numpy_rosen():
        h = x[:-1]
        return np.sum(100.0 * (x[1:] - h * h) ** 2 + (1.0 - h) ** 2)

    cases = [
        ("rosen", f"rosen, n = {n:,}",
         lambda: mod.rosen(x), (lambda: lib.rosen(_ptr(x), n)) if lib else None, numpy_rosen,
         lambda r_dad, r_c: r_dad == r_c),
        ("dot", f"dot (builtin, any order), n = {n:,}",
         lambda: mod.dot_builtin(a, b),
         (lambda: lib.dot_any_order(_ptr(a), _ptr(b), n)) if lib else None,
         lambda: np.dot(a, b),
         lambda r_dad, r_c: abs(r_dad - r_c) <= 1e-12 * float(np.abs(a * b).sum())),
        ("dot_loop", f"dot_loop (explicit loop, in order), n = {n:,}",
         lambda: mod.dot_loop(a, b),
         (lambda: lib.dot_loop(_ptr(a), _ptr(b), n)) if lib else None,
         lambda: np.dot(a, b),
         lambda r_dad, r_c: r_dad == r_c),
    ]
    for key, title, f_dad, f_c, f_np, agree in cases:
        fns = {"dad": f_dad, "numpy": f_np}
        if f_c is not None:
            fns["c"] = f_c
        try:
            res = interleaved_medians(fns, rounds)
        except Exception as e:
            rows.append(_row(name=title, note=f"dad call failed: {type(e).__name__}: {e}"[:300]))
            continue
        row = _row(name=title, dad_s=res["dad"]["median_s"], numpy_s=res["numpy"]["median_s"],
                   samples={k: v["samples_s"] for k, v in res.items()}, target=KERNEL_TARGET,
                   ratio_of="dad / C")
        if f_c is not None:
            row["c_s"] = res["c"]["median_s"]
            row["ratio"] = row["dad_s"] / row["c_s"]
            row["met"] = row["ratio"] <= KERNEL_TARGET
            same = agree(f_dad(), f_c())
            row["note"] = ("results agree with C" if same else "RESULTS DIFFER FROM C") + \
                (" (bit for bit)" if key != "dot" else " (to 1e-12 of sum |a b|)")
        else:
            row["note"] = "C skipped (no cc)"
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------
# 2. Call overhead
# ---------------------------------------------------------------------------------------

def _ctypes_args(cfunc) -> tuple[tuple, list]:
    """Arguments for `cfunc` standing for add1(1.0): the scalar, then whatever else the ABI
    declares in `argtypes` (pointers get a zeroed scratch buffer). Returns (args, buffers
    to keep alive)."""
    argtypes = list(getattr(cfunc, "argtypes", None) or [ctypes.c_double])
    args, keep = [], []
    for i, t in enumerate(argtypes):
        if i == 0 or t in (ctypes.c_double, ctypes.c_float):
            args.append(1.0 if i == 0 else 0.0)
        elif t in (ctypes.c_int64, ctypes.c_long, ctypes.c_int, ctypes.c_longlong,
                   ctypes.c_size_t):
            args.append(0)
        elif t is ctypes.c_void_p:
            buf = ctypes.create_string_buffer(256)
            keep.append(buf)
            args.append(ctypes.addressof(buf))
        elif isinstance(t, type(ctypes.POINTER(ctypes.c_double))):
            obj = (t._type_ * 32)()
            keep.append(obj)
            args.append(ctypes.cast(obj, t))
        else:
            raise TypeError(f"don't know how to pass a {t!r}")
    return tuple(args), keep


def bench_call_overhead(lib, number: int, repeat: int) -> list[dict]:
    import dad

    try:
        k = dad.compile(ADD1, filename="add1.dad").add1
        assert k(1.0) == 2.0
    except Exception as e:
        return [_row(name="call overhead, add1(x: f64) -> f64",
                     note=f"dad could not compile/call add1: {type(e).__name__}: {e}"[:300])]
    dad_t = per_call_seconds(k, (1.0,), number, repeat)

    def py_add1(x):
        return x + 1.0

    py_t = per_call_seconds(py_add1, (1.0,), number, repeat)
    c_t = per_call_seconds(lib.add1, (1.0,), number, repeat) if lib else None
    row = _row(name="call overhead, add1(x: f64) -> f64", dad_s=dad_t["median_s"],
               numpy_s=py_t["median_s"], target=CALL_TARGET, ratio_of="dad / ctypes(k._cfunc)",
               samples={"dad": dad_t["samples_s"], "python": py_t["samples_s"]})
    notes = ["third column: a Python function `x + 1.0`"]
    if c_t:
        row["c_lib_ctypes_s"] = c_t["median_s"]
        notes.append(f"ctypes call of C add1: {c_t['median_s'] * 1e9:.0f} ns")
    cfunc = getattr(k, "_cfunc", None)
    if cfunc is None:
        print("  skip: call-overhead ratio needs `k._cfunc` (a ctypes function pointer); "
              "the function object has none", flush=True)
        notes.append("ratio skipped: no k._cfunc")
    else:
        try:
            args, keep = _ctypes_args(cfunc)
            r = cfunc(*args)
            t = per_call_seconds(cfunc, args, number, repeat)
            row["c_s"] = t["median_s"]
            row["samples"]["ctypes_cfunc"] = t["samples_s"]
            row["ratio"] = row["dad_s"] / row["c_s"]
            row["met"] = row["ratio"] <= CALL_TARGET
            notes.append(f"C column: ctypes call of k._cfunc ({len(args)} args, returned {r!r})")
            del keep
        except Exception as e:
            notes.append(f"ratio skipped: calling k._cfunc failed: {type(e).__name__}: {e}")
            print(f"  skip: calling k._cfunc failed: {e}", flush=True)
    row["note"] = "; ".join(notes)
    return [row]


# ---------------------------------------------------------------------------------------
# 3. Cold compile time
# ---------------------------------------------------------------------------------------

_COMPILE_SCRIPT = textwrap.dedent("""
    import json, re, sys, time
    import dad
    path = sys.argv[1]
    names = re.findall(r"^fn\\s+([A-Za-z_]\\w*)", open(path).read(), flags=re.M)
    def once():
        t0 = time.perf_counter()
        mod = dad.compile_file(path)
        for name in names:
            getattr(getattr(mod, name), "_cfunc", None)
        return time.perf_counter() - t0
    first = once()
    second = once()
    print(json.dumps({"first_s": first, "second_s": second}))
""")


def code_lines(path: pathlib.Path) -> int:
    return sum(1 for ln in path.read_text().splitlines()
               if ln.strip() and not ln.strip().startswith("#"))


def bench_compile(processes: int) -> list[dict]:
    rows = []
    env = dict(os.environ, DAD_NO_CACHE="1")
    for path in sorted(EXAMPLES.glob("*.dad")):
        lines = code_lines(path)
        target_ms = COMPILE_TARGET_MS_PER_30_LINES * max(1.0, lines / 30.0)
        firsts, seconds, err = [], [], ""
        for _ in range(processes):
            r = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT, str(path)],
                               capture_output=True, text=True, env=env, cwd=str(ROOT),
                               timeout=300)
            if r.returncode != 0:
                err = (r.stderr.strip().splitlines() or ["?"])[-1]
                break
            out = json.loads(r.stdout.strip().splitlines()[-1])
            firsts.append(out["first_s"])
            seconds.append(out["second_s"])
        name = f"cold compile, examples/{path.name} ({lines} lines)"
        if err:
            rows.append(_row(name=name, note=f"compile failed: {err}"[:300],
                             target=target_ms / 1e3, ratio_of="seconds vs target"))
            continue
        first = statistics.median(firsts)
        rows.append(_row(name=name, dad_s=first, target=target_ms / 1e3,
                         ratio_of="seconds vs target", met=first <= target_ms / 1e3,
                         samples={"first_in_process_s": firsts, "second_in_process_s": seconds},
                         note=(f"first compile in a fresh process; a second compile in the "
                               f"same process: {statistics.median(seconds) * 1e3:.0f} ms")))
    return rows


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

def _fmt_t(s: float | None) -> str:
    if s is None:
        return "—"
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def _status(row) -> str:
    if row["met"] is None:
        return "skipped" if not row["note"].startswith(("dad ", "compile failed")) else "error"
    return "met" if row["met"] else "MISSED"


def _ratio_and_target(row) -> tuple[str, str]:
    if row["ratio_of"] == "seconds vs target":
        return "—", f"< {row['target'] * 1e3:.0f} ms"
    ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}×"
    target = "—" if row["target"] is None else f"≤ {row['target']:.1f}×"
    return ratio, target


def render_markdown(meta: dict, rows: list[dict]) -> str:
    out = ["# Foundation benchmark", "",
           f"Generated by `python -m benchmarks.foundation` on {meta['date']}.", "",
           f"- machine: {meta['cpu']} ({meta['machine']}), {meta['cores']} cores",
           f"- python {meta['python']}, numpy {meta['numpy']}, dad {meta['dad']}",
           f"- C: {meta['c']}",
           f"- kernels: median of {meta['rounds']} interleaved rounds; call overhead: median of "
           f"{meta['call_repeat']} × {meta['call_number']:,} calls; compile: median of "
           f"{meta['compile_processes']} fresh processes", "",
           "| benchmark | dad | C | NumPy / Python | ratio | target | status | notes |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio, target = _ratio_and_target(r)
        if r["ratio_of"] and r["ratio"] is not None:
            ratio = f"{ratio} ({r['ratio_of']})"
        out.append(f"| {r['name']} | {_fmt_t(r['dad_s'])} | {_fmt_t(r['c_s'])} | "
                   f"{_fmt_t(r['numpy_s'])} | {ratio} | {target} | {_status(r)} | "
                   f"{r['note'].replace('|', chr(92) + '|')} |")
    return "\n".join(out) + "\n"


def print_row(r: dict) -> None:
    ratio, target = _ratio_and_target(r)
    print(f"  {r['name']:<58} dad {_fmt_t(r['dad_s']):>10}  C {_fmt_t(r['c_s']):>10}  "
          f"NumPy/Py {_fmt_t(r['numpy_s']):>10}  ratio {ratio:>6}  target {target:>8}  "
          f"{_status(r)}" + (f"  [{r['note']}]" if r["note"] else ""), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.foundation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repetitions: a smoke run")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)

    n = 10**6
    rounds = 5 if args.quick else 31
    call_number, call_repeat = (20_000, 3) if args.quick else (200_000, 7)
    processes = 1 if args.quick else 3

    try:
        import dad
        dad_version = getattr(dad, "__version__", "?")
    except Exception as e:  # pragma: no cover
        print(f"cannot import dad: {e}")
        return 1

    with tempfile.TemporaryDirectory(prefix="dad-bench-") as tmp:
        lib, c_note = build_c(pathlib.Path(tmp))
        if lib is None:
            print(f"  skip: {c_note}", flush=True)
        rows: list[dict] = []
        print("kernels:", flush=True)
        for r in bench_kernels(lib, n, rounds):
            rows.append(r)
            print_row(r)
        print("call overhead:", flush=True)
        for r in bench_call_overhead(lib, call_number, call_repeat):
            rows.append(r)
            print_row(r)
    print("cold compile:", flush=True)
    for r in bench_compile(processes):
        rows.append(r)
        print_row(r)

    meta = machine_meta(
        dad=dad_version, c=c_note, n=n, rounds=rounds, call_number=call_number,
        call_repeat=call_repeat, compile_processes=processes, quick=args.quick,
        targets={"kernel_ratio_vs_c": KERNEL_TARGET, "call_ratio_vs_ctypes": CALL_TARGET,
                 "compile_ms_per_30_lines": COMPILE_TARGET_MS_PER_30_LINES})
    return finish("foundation", meta, rows, render_markdown(meta, rows), not args.no_write,
                  not_run="skipped or failed")


if __name__ == "__main__":
    sys.exit(main())
