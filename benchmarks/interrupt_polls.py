"""The cost of the Ctrl-C polls in loops (lowering/interrupt.py): the same programs compiled
with and without them, timed interleaved in one process (medians of 30 x 3 calls).

    python benchmarks/interrupt_polls.py

Measured on the 2-vCPU EPYC (DAD_NO_CACHE=1): ratios with/without 0.998 (while sum over 2^20
elements), 0.974 (collatz while loops), 0.998 (nested-for matvec 2000 x 2000): within noise.
"""
import timeit, numpy as np, dad
import dad.lowering.interrupt as li
SRC = """
fn wsum(x: f64[n]) -> f64 { var s = 0.0; var i = 0; while i < n { s += x[i] * x[i]; i += 1; } return s; }
fn collatz(k: i64) -> i64 { var steps = 0; var j = k; while j != 1 { if j % 2 == 0 { j = j / 2; } else { j = 3 * j + 1; } steps += 1; } return steps; }
fn csum(k: i64) -> i64 { var t = 0; for i in 1..k { t += collatz(i); } return t; }
fn mv(A: f64[n, m], x: f64[m]) -> f64[n] { var y = zeros(n); for i in 0..n { var s = 0.0; for j in 0..m { s += A[i, j] * x[j]; } y[i] = s; } return y; }
"""
with_polls = dad.compile(SRC)
saved = li.poll_every, li.poll
li.poll_every = lambda lw, count: None
li.poll = lambda lw: None
without = dad.compile(SRC + "\n")
li.poll_every, li.poll = saved
x = np.random.rand(1 << 20); A = np.random.rand(2000, 2000); v = np.random.rand(2000)
cases = [("while sum, 2^20 iterations", lambda m: m.wsum(x)),
         ("collatz while loops, k < 30000", lambda m: m.csum(30000)),
         ("nested-for matvec 2000x2000", lambda m: m.mv(A, v))]
for name, f in cases:
    a, b = [], []
    for _ in range(30):   # interleaved
        a += timeit.repeat(lambda: f(with_polls), number=3, repeat=1)
        b += timeit.repeat(lambda: f(without), number=3, repeat=1)
    ma, mb = np.median(a) / 3, np.median(b) / 3
    print(f"{name}: with polls {ma*1e3:.3f} ms, without {mb*1e3:.3f} ms, ratio {ma/mb:.3f} (min {min(a)/min(b):.3f})")
