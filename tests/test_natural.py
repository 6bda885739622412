"""examples/natural/: ADBench problems written as users write them. They must compute what
the hand-arranged examples and the independent NumPy references compute, and (issue #18)
the optimiser must remove the allocations their natural form makes per iteration."""
from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

import dad
from golden import allocs_in_loops
from dad.frontend import compile_to_ir
from dad.lang.passes import PassManager, pipeline
from dad.runtime.compiler import derive_all

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.adbench import reference as ref  # noqa: E402

NATURAL = ROOT / "examples" / "natural" / "gmm.dad"


@pytest.fixture(scope="module")
def mods():
    return dad.compile_file(str(NATURAL)), dad.compile_file(str(ROOT / "examples" / "gmm.dad"))


def _inputs(n, d, k, seed):
    rng = np.random.default_rng(seed)
    t = d * (d + 1) // 2
    return (rng.standard_normal(k), rng.standard_normal((k, d)), 0.3 * rng.standard_normal((k, t)),
            rng.standard_normal((n, d)), 1.3, 2)


@pytest.mark.parametrize("n, d, k", [(40, 2, 3), (25, 5, 4), (10, 1, 1)])
def test_gmm_objective_and_gradient(mods, n, d, k):
    nat, arranged = mods
    args = _inputs(n, d, k, seed=n + d + k)
    want = ref.gmm_objective(*args)
    assert nat.gmm_objective(*args) == pytest.approx(want, rel=1e-12)
    g_nat, g_arr = nat.gmm_grad(*args), arranged.gmm_grad(*args)
    for a, b in zip(g_nat, g_arr):
        assert np.allclose(a, b, rtol=1e-11, atol=1e-12 * np.max(np.abs(b)))
    # and against finite differences of the objective, on the means
    means = args[1]
    h = 1e-6
    fd = np.zeros_like(means)
    for idx in np.ndindex(means.shape):
        e = np.zeros_like(means)
        e[idx] = h
        fd[idx] = (nat.gmm_objective(args[0], means + e, *args[2:]) -
                   nat.gmm_objective(args[0], means - e, *args[2:])) / (2 * h)
    assert np.allclose(g_nat[1], fd, rtol=1e-6, atol=1e-6)


def test_the_objective_allocates_nothing_per_iteration():
    """The helper `qtimesx` is inlined (inline_calls) and every temporary it and the loop
    make leaves the loops (hoist_allocs)."""
    ir = compile_to_ir(NATURAL.read_text(), str(NATURAL))
    derive_all(ir)
    PassManager(pipeline("lowering"), verify=True).run(ir)
    fn = ir["gmm_objective"]
    assert not any(op.name == "func.call" for op in fn.walk())
    assert not allocs_in_loops(fn)


def test_the_gradient_allocates_nothing_per_iteration():
    """Before AD the helper is inlined into the loop that calls it (inline_helpers): the
    adjoint is one loop nest, with no per-iteration call of the helper's adjoint (which ran
    the helper's forward sweep again and allocated its result and shadows every time), and
    hoist_allocs takes every temporary of the nest out of its loops."""
    ir = compile_to_ir(NATURAL.read_text(), str(NATURAL))
    derive_all(ir)
    PassManager(pipeline("lowering"), verify=True).run(ir)
    fn = ir["gmm_objective.vjp.alphas_means_icf"]
    assert not any(op.name == "func.call" for op in fn.walk())
    assert not allocs_in_loops(fn), [op.attrs.get("loc") for op in allocs_in_loops(fn)]
    assert "qtimesx.vjp.icf_v" not in ir.functions


def test_the_benchmark_runs(capsys):
    from benchmarks.natural import main
    assert main(["--quick", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "GMM objective d2 K5 n1000" in out and "GMM grad d2 K5 n1000" in out
