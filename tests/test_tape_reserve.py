"""tape_reserve (machine IR only): a counted loop that records writes its records at slots
reserved before it; the gradient is the same bit for bit as with one push per record."""
import numpy as np

import dad.lang.passes as passes
from dad.frontend import compile_to_ir
from dad.lang.printer import print_function
from dad.runtime.compiler import CompiledModule, derive_all, machine_ir, optimize_ir
from example_inputs import RECORDING

SOURCE = RECORDING + """fn g = grad(f, wrt=x);

# the outer loop's body holds a loop that records: only the inner loop is rewritten
fn nested(x: f64[n]) -> f64 {
    var s = 0.0;
    for a in 0..3 {
        var t = 0.0;
        for i in 0..n {
            t += exp(x[i] * t * 0.001);
        }
        s += t * t;
    }
    return s;
}
fn gn = grad(nested);
"""


def _module():
    return optimize_ir(derive_all(compile_to_ir(SOURCE, "t.dad")))


ALL = passes.machine_pipeline


def _compiled(with_pass: bool, monkeypatch) -> CompiledModule:
    m = _module()
    pipeline = ALL() if with_pass else [p for p in ALL() if p is not passes.tape_reserve]
    monkeypatch.setattr(passes, "machine_pipeline", lambda: pipeline)
    return CompiledModule(m, "", filename="t.dad")


def test_recording_loops_use_reserved_slots():
    m = machine_ir(_module())
    text = print_function(m["f.vjp.x"])
    assert "dad.tape_reserve" in text and "dad.tape_commit" in text
    assert "dad.tape_put" in text and "dad.tape_push" not in text
    nested = print_function(m["nested.vjp.x"])
    # the inner loop is rewritten; the outer one keeps its pushes (its body holds the inner)
    assert nested.count("dad.tape_reserve") >= 1 and "dad.tape_push" in nested


def test_same_gradients_bit_for_bit(monkeypatch):
    on = _compiled(True, monkeypatch)
    off = _compiled(False, monkeypatch)
    rng = np.random.default_rng(8)
    for n, m in ((1, 0), (3, 1), (5, 40), (8, 1000)):
        x = rng.uniform(0.1, 1.0, n)
        assert on.g(x, m).tolist() == off.g(x, m).tolist()
        assert on.gn(x).tolist() == off.gn(x).tolist()


def test_gradient_matches_finite_differences(monkeypatch):
    on = _compiled(True, monkeypatch)
    x = np.random.default_rng(9).uniform(0.1, 1.0, 6)
    g, h = on.g(x, 200), 1e-5
    for i in range(6):
        e = np.zeros(6)
        e[i] = h
        fd = (on.f(x + e, 200) - on.f(x - e, 200)) / (2 * h)
        assert abs(g[i] - fd) <= 1e-7 * (1 + abs(fd))
