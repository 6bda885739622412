"""Record or recompute (ad/policy.py): the choice follows the cost table, the reverse sweep
does what was chosen, and the tape report says both."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

import dad
from dad.ad import policy
from dad.frontend import compile_to_ir
from dad.runtime.compiler import derive_all

SRC = """
fn f(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n {
        let t = sin(x[i]) * x[i];
        s += t * t;
    }
    return s;
}
fn g = grad(f);
"""


def test_costs_order_the_choice():
    assert policy.COST_CHEAP <= policy.RECORD_COST < policy.COST_OTHER
    assert policy.COST_LOAD <= policy.RECORD_COST


def test_sin_is_recorded_and_what_is_cheap_computed_again():
    ir = compile_to_ir(SRC, "p.dad")
    derive_all(ir)
    [loop] = ir["g"].tape_report if ir["g"].tape_report else ir["f.vjp.x"].tape_report
    assert loop.recorded == ["sin(x[i]): f64"] and loop.nbytes == 8
    assert set(loop.recomputed) == {"t", "x[i]"}


def test_the_report_on_the_command_line(tmp_path):
    p = tmp_path / "p.dad"
    p.write_text(SRC)
    r = subprocess.run([sys.executable, "-m", "dad.cli", "emit", "--stage", "tape", "-f", "g", str(p)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "8 bytes per iteration: sin(x[i]): f64" in r.stdout
    assert "computed again in the reverse sweep: t, x[i]" in r.stdout


def test_the_gradient_is_right():
    m = dad.compile(SRC)
    x = np.linspace(-2.0, 3.0, 7)
    t = np.sin(x) * x
    want = 2 * t * (np.cos(x) * x + np.sin(x))
    assert np.allclose(m.g(x), want, rtol=1e-13, atol=0)
