"""hoist_loads end to end (reverse mode runs it on the copy it differentiates): a load an
inner loop repeats (`u[a]` in `for b in a + 1..n`) is recorded once per outer iteration,
not once per inner one; derivatives match finite differences, including when the inner loop
runs no iteration (the hoisted load is guarded) and when the inner loop writes the array
the load reads (the load stays). tests/ir/hoist_loads/ holds the golden IR of the pass."""
from __future__ import annotations

import numpy as np
import pytest

import dad
from dad.cli import main
from generators import fd_gradient

SRC = """
fn pairs(x: f64[n]) -> f64 {
    let u = sin(x) * 2.0;              # a temporary: reverse mode cannot reread x for it
    var s = 0.0;
    for a in 0..n {
        for b in a + 1..n {
            s += u[a] * cos(u[b]) * u[a];
        }
    }
    return s;
}
fn running(x: f64[n]) -> f64 {
    var u = sin(x);
    var s = 0.0;
    for a in 0..n {
        for b in 0..n {
            s += u[a] * u[b];
            u[b] = 0.5 * u[b] + 0.1 * u[a];   # writes the array the loads read
        }
    }
    return s;
}
fn pg = grad(pairs);
fn rg = grad(running);
"""


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SRC, filename="hoist_loads.dad")


def _pairs(x):
    u = np.sin(x) * 2.0
    return sum(u[a] * np.cos(u[b]) * u[a] for a in range(len(x)) for b in range(a + 1, len(x)))


@pytest.mark.parametrize("n", [1, 2, 5])
def test_pairs_value_and_gradient(mod, n):
    x = np.random.default_rng(n).normal(size=n)
    assert mod.pairs(x) == pytest.approx(_pairs(x), rel=1e-13, abs=1e-15)
    np.testing.assert_allclose(mod.pg(x), fd_gradient(mod.pairs, x, 1e-6), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("n", [1, 3, 6])
def test_loop_writing_the_array_keeps_its_loads(mod, n):
    x = np.random.default_rng(10 + n).normal(size=n)
    np.testing.assert_allclose(mod.rg(x), fd_gradient(mod.running, x, 1e-6), rtol=1e-6, atol=1e-8)


def test_the_inner_loop_records_nothing_for_the_repeated_load(tmp_path, capsys):
    path = tmp_path / "hoist_loads.dad"
    path.write_text(SRC)
    assert main(["emit", "--stage", "tape", str(path), "-f", "pg"]) == 0
    out = capsys.readouterr().out
    lines = SRC.splitlines()
    inner = lines.index("        for b in a + 1..n {") + 1
    outer = lines.index("    for a in 0..n {") + 1
    [b_loop] = [ln for ln in out.splitlines() if f"loop for b at {path}:{inner}:" in ln]
    [a_loop] = [ln for ln in out.splitlines() if f"loop for a at {path}:{outer}:" in ln]
    assert "u[a]" not in b_loop, out      # once per iteration over a, not over b
    assert "u[a]: f64" in a_loop, out


CHECKED = """
fn picked(x: f64[n], k: i64, m: i64) -> f64 {
    let u = sin(x);
    var s = 0.0;
    for a in 0..m {
        s += u[k] * x[a % n] * u[k];   # u[k] needs its check: k is anything the caller gives
    }
    return s;
}
fn picked_grad = grad(picked, wrt=x);
"""


def test_a_checked_load_is_not_moved_ahead_of_its_loop():
    """Only loads proven in range move: `u[k]` with a caller's `k` keeps its check inside
    the loop, so a loop that runs no iteration never reads u[k] (no IndexError where the plain
    call returns 0) and one that runs reports the bad index as the plain call does."""
    m = dad.compile(CHECKED, filename="checked.dad")
    x = np.array([0.3, -1.2, 0.8])
    assert m.picked(x, 10**6, 0) == 0.0
    np.testing.assert_array_equal(m.picked_grad(x, 10**6, 0), np.zeros(3))
    for f in (m.picked, m.picked_grad):
        with pytest.raises(IndexError):
            f(x, 10**6, 2)
    np.testing.assert_allclose(m.picked_grad(x, 1, 4),
                               fd_gradient(lambda z: m.picked(z, 1, 4), x, 1e-6), rtol=1e-6)
