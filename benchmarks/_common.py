"""What every benchmark module shares: the machine description and writing its results.

`machine_meta(**extra)` is the `meta` dict of a results file (date, CPU, cores, versions)
plus the benchmark's own settings; `finish(name, meta, rows, markdown, write)` writes
`results/NAME.md` and `results/NAME.json` (unless `write` is false), prints the met/missed
summary and returns the exit status (0: the benchmark ran; a missed target is reported,
not an error). `interleaved_medians(fns, rounds | budget_s=...)` is the one timing loop
of the side-by-side comparisons.
"""
from __future__ import annotations

import ctypes
import datetime
import gc
import json
import os
import pathlib
import platform
import re
import statistics
import time

import numpy as np

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def rel_diff(a, b) -> float:
    """The largest difference between two results (arrays, scalars or tuples of them),
    relative to the largest magnitude of `b`: how far two programs of one problem agree."""
    def flat(v):
        parts = v if isinstance(v, tuple) else (v,)
        return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])
    a, b = flat(a), flat(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            m = re.search(r"model name\s*:\s*(.*)", fh.read())
            if m:
                return m.group(1).strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine_meta(**extra) -> dict:
    import dad
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_name(), "machine": platform.machine(), "cores": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__,
        "dad": getattr(dad, "__version__", "?"),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    }
    meta.update(extra)
    return meta


def finish(name: str, meta: dict, rows: list[dict], markdown: str, write: bool = True,
           not_run: str = "skipped or failed") -> int:
    if write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{name}.md").write_text(markdown)
        (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        print(f"written: {RESULTS / (name + '.md')} and {name}.json", flush=True)
    missed = [r["name"] for r in rows if r["met"] is False]
    print(f"{sum(r['met'] is True for r in rows)} met, {len(missed)} missed, "
          f"{sum(r['met'] is None for r in rows)} {not_run}", flush=True)
    return 0


def _libc():
    try:
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def settle_heap() -> None:
    """One 4 KB malloc and free, outside the timing. glibc puts freed small blocks aside
    and merges them all (`malloc_consolidate`) at the next request of 1 KB or more. Eager
    PyTorch frees tens of thousands of small tensors per call, and without this the merge
    (up to ~20 ms seen) would land in the next timed callable's first array allocation,
    whichever it is: LSTM l=4 c=1024's gradient took 4 ms or 20 ms depending on what ran
    before it."""
    if _LIBC is not None:
        _LIBC.free(_LIBC.malloc(4096))


def interleaved_medians(fns: dict, rounds: int | None = None, *, budget_s: float | None = None,
                        min_rounds: int = 3, max_rounds: int = 25, max_reps: int = 1) -> dict:
    """Each zero-argument callable once per round, in rotating order, after one untimed
    warm-up call each; per name the median and all samples, in seconds. `rounds` fixed, or
    (`budget_s`) as many as fit the budget at the warm-up's pace, within [min_rounds,
    max_rounds]. With `max_reps` > 1, a callable k times faster than the slowest takes
    part in min(k, max_reps) times more rounds than the slowest (which then sits out the
    rounds in between): next to a peer that takes seconds, a millisecond call still gets
    tens of samples, each still taken between calls of the others. As `timeit` does,
    Python's cyclic garbage collector is off while timing (it runs before each round in
    which every callable takes part). Before each timed call the C heap is settled
    (`settle_heap`), so that no callable pays for the small blocks the one before it freed."""
    names = list(fns)
    warm = {}
    for name, f in fns.items():
        t0 = time.perf_counter()
        f()
        warm[name] = max(time.perf_counter() - t0, 1e-9)
    slowest = max(warm.values())
    reps = {k: max(1, min(max_reps, int(slowest / warm[k]))) for k in names}
    most = max(reps.values())
    period = {k: max(1, round(most / reps[k])) for k in names}
    if rounds is None:
        per_round = sum(reps[k] * warm[k] for k in names)
        rounds = int(min(max_rounds, max(min_rounds, budget_s / per_round)))
    samples: dict = {k: [] for k in names}
    enabled = gc.isenabled()
    try:
        for r in range(rounds * most):
            if r % most == 0:
                gc.enable()
                gc.collect()
                gc.disable()
            for name in names[r % len(names):] + names[:r % len(names)]:
                if r % period[name]:
                    continue
                settle_heap()
                t0 = time.perf_counter()
                fns[name]()
                samples[name].append(time.perf_counter() - t0)
    finally:
        if enabled:
            gc.enable()
        else:
            gc.disable()
    return {k: {"median_s": statistics.median(v), "samples_s": v} for k, v in samples.items()}
