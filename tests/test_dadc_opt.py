"""`dadc opt -p PASSES FILE`: any registered pass or pipeline on printed IR or a `.dad` file.

Expectations are written by hand from the IR's meaning (constant folding of 1.0 + 2.0 is
3.0; two identical products are one after CSE; an unused subtraction is dead), checked with
tests/golden.py (FileCheck); every registered pass is run on the IR of real programs with the
verifier on, and its output must parse back and verify.
"""
from __future__ import annotations

import pytest

from dad.lang.irparser import parse_module
from dad.lang.passes import PASSES, PIPELINES, default_pipeline, lowering_pipeline, machine_pipeline
from dad.lang.verifier import verify
from tests.golden import filecheck
from tests.test_cli import EXAMPLES, dadc

SMALL = """\
func.func @k(%x: f64) -> f64 attributes {sig = "(x: f64) -> f64"} {
  %0 = arith.constant {value = 1.0} : f64
  %1 = arith.constant {value = 2.0} : f64
  %c = arith.addf %0, %1 : f64
  %u = arith.subf %x, %x : f64
  %2 = arith.mulf %x, %c : f64
  %3 = arith.mulf %x, %c : f64
  %4 = arith.addf %2, %3 : f64
  func.return %4 : ()
}
"""

LOOP = """\
fn f(x: f64[n], c: f64) -> f64 {
    var s = 0.0;
    for i in 0..len(x) {
        let a = x[i] * c * exp(c);
        s += sin(a) * a;
    }
    return s;
}
fn g = grad(f, wrt=x);
fn h = hvp(f, wrt=x);
fn j = jvp(f);
"""


@pytest.fixture
def small(tmp_path):
    p = tmp_path / "k.ir"
    p.write_text(SMALL)
    return p


@pytest.fixture
def loop(tmp_path):
    p = tmp_path / "loop.dad"
    p.write_text(LOOP)
    return p


def test_fold_cse_dce_on_printed_ir(capsys, small):
    rc, out, err = dadc(capsys, "opt", "-p", "constant_fold,cse,dce", small)
    assert rc == 0 and err == ""
    filecheck(out, """
        CHECK-LABEL: func.func @k(
        CHECK-NEXT: arith.constant {value = 3.0}
        CHECK-NEXT: [[P:%[0-9]+]] = arith.mulf %x
        CHECK-NOT: arith.mulf
        CHECK-NOT: arith.subf
        CHECK: arith.addf [[P]]
        CHECK-NEXT: func.return
    """)
    assert out.count("arith.mulf") == 1 and "arith.subf" not in out  # x - x is kept by fold, cut by dce
    verify(parse_module(out))


def test_one_pass_does_only_its_work(capsys, small):
    rc, out, _ = dadc(capsys, "opt", "-p", "constant-fold", small)   # '-' and '_' alike
    assert rc == 0
    assert "value = 3.0" in out and out.count("arith.mulf") == 2 and "arith.subf" in out


def test_print_after_all_and_print_after(capsys, small):
    rc, out, err = dadc(capsys, "opt", "-p", "constant_fold,cse,dce", "--print-after-all", small)
    assert rc == 0
    heads = [ln for ln in err.splitlines() if ln.startswith("// -----// IR Dump After")]
    assert heads == [f"// -----// IR Dump After {p} //----- //" for p in ("constant_fold", "cse", "dce")]
    # the dump after cse still has the dead subtraction, and one product
    after_cse = err.split("IR Dump After cse")[1].split("IR Dump After dce")[0]
    assert "arith.subf" in after_cse and after_cse.count("arith.mulf") == 1
    rc, out2, err = dadc(capsys, "opt", "-p", "constant_fold,cse,dce", "--print-after", "cse", small)
    assert rc == 0 and out2 == out
    assert err.count("IR Dump After") == 1 and "IR Dump After cse" in err


def test_unknown_pass_is_a_usage_error_with_suggestions(capsys, small):
    rc, out, err = dadc(capsys, "opt", "-p", "cse,lcim", small)
    assert rc == 2 and out == ""
    assert "unknown pass 'lcim'" in err and "did you mean licm" in err and "pipelines:" in err
    rc, _, err = dadc(capsys, "opt", "-p", "cse", "--print-after", "nope", small)
    assert rc == 2 and "unknown pass 'nope'" in err
    rc, _, err = dadc(capsys, "opt", "-p", "default", "--print-after", "default", small)
    assert rc == 2 and "takes a pass, not the pipeline 'default'" in err


def test_missing_arguments_are_usage_errors(capsys, small):
    assert dadc(capsys, "opt", small)[0] == 2
    assert dadc(capsys, "opt", "-p", "cse")[0] == 2


def test_malformed_ir_points_at_the_place(capsys, tmp_path):
    p = tmp_path / "bad.ir"
    p.write_text(SMALL.replace("%c = arith.addf %0, %1", "%c = arith.addf %0 %1"))
    rc, out, err = dadc(capsys, "opt", "-p", "cse", p)
    assert rc == 1 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"{p}:4:") and ": error:" in lines[0]
    assert lines[1].strip().startswith("%c = arith.addf") and lines[2].strip().startswith("^")


def test_invalid_ir_input_is_refused_by_the_verifier(capsys, tmp_path):
    p = tmp_path / "bad.ir"
    p.write_text(SMALL.replace("%4 = arith.addf %2, %3 : f64", "%4 = arith.addf %2, %3 : f32"))
    rc, out, err = dadc(capsys, "opt", "-p", "cse", p)
    assert rc == 1 and out == ""
    assert "the input of the pipeline" in err
    rc, out, err = dadc(capsys, "opt", "-p", "cse", "--no-verify", p)
    assert rc == 0 and "arith.addf %2, %2 : f32" in out   # not checked: cse ran on it


def test_dad_file_is_taken_after_ad(capsys, loop):
    rc, out, _ = dadc(capsys, "opt", "-p", "dce", loop)
    assert rc == 0
    names = [ln.split("(")[0].split("@")[1] for ln in out.splitlines() if ln.startswith("func.func")]
    assert {"f", "g", "h", "j"} <= set(names) and "f.vjp.x" in names
    rc, out, _ = dadc(capsys, "opt", "-p", "licm", "-f", "f.vjp.x", loop)
    assert rc == 0 and out.startswith("func.func @f.vjp.x(") and out.count("func.func") == 1


def test_lowering_pipeline_is_what_the_compiler_runs(capsys, loop):
    """`opt -p lowering` on a .dad file is the IR `emit --stage opt-ir` shows (the machine
    IR dad.compile lowers)."""
    rc, opt, _ = dadc(capsys, "opt", "-p", "lowering", loop)
    rc2, emitted, _ = dadc(capsys, "emit", "--stage", "opt-ir", loop)
    assert rc == rc2 == 0 and opt == emitted


def test_pipelines_come_from_the_registry():
    names = lambda fns: [getattr(f, "pass_name", f.__name__) for f in fns]  # noqa: E731
    assert names(default_pipeline()) == list(PIPELINES["default"])
    assert names(machine_pipeline()) == list(PIPELINES["machine"])
    assert names(lowering_pipeline()) == list(PIPELINES["default"] + PIPELINES["machine"])
    used = {p for ps in PIPELINES.values() for p in ps}
    assert used == set(PASSES), "a registered pass no pipeline runs, or a pipeline entry not registered"


@pytest.mark.parametrize("name", sorted(PASSES))
@pytest.mark.parametrize("program", ["loop", "gmm.dad", "lstm.dad"])
def test_every_pass_runs_alone_on_real_programs(capsys, loop, name, program):
    """Each registered pass, alone, on the IR after AD of a loop with grad/hvp/jvp and of
    two shipped examples: the verifier runs before and after it (rc 0), and its output
    parses back and verifies."""
    path = loop if program == "loop" else EXAMPLES / program
    rc, out, err = dadc(capsys, "opt", "-p", name, path)
    assert rc == 0, err
    verify(parse_module(out))


def test_list_passes_names_every_pass_and_pipeline(capsys):
    rc, out, _ = dadc(capsys, "opt", "--list-passes")
    assert rc == 0
    listed = [ln.split()[0] for ln in out.splitlines() if ln.startswith("  ")]
    assert listed == [*PASSES, *PIPELINES]
    for info in PASSES.values():
        assert info.summary and info.summary in out
    assert "[machine]" in out


def test_help(capsys):
    rc, out, _ = dadc(capsys, "opt", "--help")
    assert rc == 0 and "--list-passes" in out and "--print-after-all" in out and "example:" in out
