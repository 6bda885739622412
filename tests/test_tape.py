"""What reverse mode records, and checkpointing's bounded tape memory."""
import importlib
import sys

import numpy as np
import pytest

import dad
from dad.cli import main
from example_inputs import RECORDING
from peak_memory import peak_growth

inline_calls = importlib.import_module("dad.lang.passes.inline_calls")  # the module

SOURCE = RECORDING + """fn axpy_sum(a: f64, x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n { s += a * x[i]; }
    return s;
}
fn g = grad(f, wrt=x);
fn gc = grad(f, wrt=x, checkpoint=true);
fn ga = grad(axpy_sum);
"""


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SOURCE, filename="tape.dad")


def test_loop_whose_adjoint_needs_nothing_records_nothing(tmp_path, capsys):
    path = tmp_path / "tape.dad"
    path.write_text(SOURCE)
    assert main(["emit", "--stage", "tape", str(path), "-f", "ga"]) == 0
    out = capsys.readouterr().out
    assert f"loop for i at {path}:" in out and ": records nothing" in out
    assert "bytes per iteration" not in out


def test_recording_loop_reports_its_bytes(tmp_path, capsys):
    path = tmp_path / "tape.dad"
    path.write_text(SOURCE)
    assert main(["emit", "--stage", "tape", str(path), "-f", "g"]) == 0
    out = capsys.readouterr().out
    # p (carried, read by the product's adjoint), sin(...) and exp(...) results: 3 x 8 bytes
    line = 1 + RECORDING.splitlines().index("    for k in 0..m {")
    assert f"loop for k at {path}:{line}:5: 24 bytes per iteration" in out
    # named by what they hold: the carried p, and the two results the adjoint reads
    assert "p: f64" in out and "sin(x[i] * p): f64" in out and "exp(0.01 * x[i]): f64" in out
    assert main(["emit", "--stage", "tape", str(path), "-f", "gc"]) == 0
    out = capsys.readouterr().out
    assert f"loop for segment at {path}:{line}:5: 16 bytes per iteration" in out
    assert "checkpointed segment" in out


def test_gradient_of_recording_loop_matches_finite_differences(mod):
    rng = np.random.default_rng(3)
    x = rng.uniform(0.1, 1.0, 8)
    g = mod.g(x, 50)
    h = 1e-4
    for i in range(8):
        e = np.zeros(8)
        e[i] = h
        fd = (mod.f(x + e, 50) - mod.f(x - e, 50)) / (2 * h)
        # central differences: truncation ~h^2 |f'''| / 6 ~ 1e-9 and rounding ~eps |f| / h
        # ~ 1e-10 (|f| ~ 50), so 1e-8 absolute bounds both
        assert g[i] == pytest.approx(fd, rel=1e-7, abs=1e-8)


@pytest.mark.parametrize("m", [0, 1, 2, 3, 8, 9, 10, 99, 1000, 1001])
def test_checkpointed_gradient_equals_plain_gradient_exactly(mod, m):
    x = np.random.default_rng(m).uniform(0.1, 1.0, 7)
    assert np.array_equal(mod.gc(x, m), mod.g(x, m))


def _peak_growth(tmp_path, name: str) -> int:
    return peak_growth(tmp_path, SOURCE, name, "x = np.linspace(0.1, 1.0, 16)",
                       "kernel(x, 10)", "kernel(x, 2_000_000)", timeout=120)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status (Linux)")
def test_checkpointing_bounds_peak_tape_memory(tmp_path):
    plain = _peak_growth(tmp_path, "g")
    checkpointed = _peak_growth(tmp_path, "gc")
    # 2e6 iterations x 24 bytes = 48 MB of records without checkpoints; with them, about
    # sqrt(2e6) segments x 16 bytes plus one segment's 24-byte records: well under 1 MB
    assert plain > 40e6
    assert checkpointed < 4e6


def test_loops_of_called_helpers_are_reported_under_their_adjoint(tmp_path, capsys, monkeypatch):
    # small helpers are inlined before AD (their loops are then the caller's); a helper that
    # is not (too big, recursive) is differentiated on its own, and its loops are listed
    monkeypatch.setattr(inline_calls, "INLINE_OPS", 0)
    src = ("fn helper(x: f64[n]) -> f64 {\n    var s = 0.0;\n    for i in 0..n { s += sin(x[i]) * s; }\n"
           "    return s;\n}\nfn twice(x: f64[n]) -> f64 { return helper(x) * 2.0; }\n"
           "fn og = grad(twice);\n")
    path = tmp_path / "calls.dad"
    path.write_text(src)
    assert main(["emit", "--stage", "tape", str(path), "-f", "og"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tape of og = grad(twice):\n"), out
    assert "  in helper.vjp.x (the adjoint of helper, which it calls):\n" in out, out
    # the helper's loop, by its source line, indented under it, recording sin(x[i]) and s
    [line] = [ln for ln in out.splitlines() if f"loop for i at {path}:3:5" in ln]
    assert line.startswith("    loop") and "sin(x[i]): f64" in line and "s: f64" in line, out
