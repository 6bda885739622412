"""Benchmarks of dad. Each module here with a `main()` is one benchmark; run one with
`python -m benchmarks.NAME` and all with `python -m benchmarks`. Results go to
`benchmarks/results/NAME.md` and `NAME.json`, written by the benchmark itself.

dad's code runs on one thread. NumPy's BLAS is held to one thread too (unless the caller
set it): its idle worker threads otherwise spin on the CPU for a while after every BLAS call
(NumPy checks and peers), taking a core from whatever is timed next on a small machine."""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
