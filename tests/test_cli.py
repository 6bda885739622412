"""`dadc`, the command-line compiler: every command in-process through `dad.cli.main(argv)`
(with capsys), plus real runs of the installed script. Exit status: 0 success, 1 an error in
the program or its inputs, 2 bad usage."""
from __future__ import annotations

import importlib
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dad.cli import main

inline_calls = importlib.import_module("dad.lang.passes.inline_calls")  # the module

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ROSEN = str(EXAMPLES / "rosenbrock.dad")
STAGES = ("ast", "ir", "opt-ir", "llvm", "asm")

BAD = """\
fn f(x: f64) -> f64 {
    let y = x + true;
    return z;
}
fn g(a: f64[n]) -> i64 {
    return a[0];
}
"""

DERIVED = """\
fn f(x: f64[n], c: f64) -> f64 {
    var s = 0.0;
    for i in 0..n {
        let a = x[i] * c;
        s += a * a;
    }
    return s;
}
fn g = jvp(f, wrt=x);
"""

PROG = """\
fn at(x: f64[n], i: i64) -> f64 {
    return x[i];
}
fn total(A: f64[m, n]) -> f64 {
    return sum(A);
}
fn flip(b: bool) -> bool {
    return not b;
}
fn pair(x: f64, k: i64) -> (f64, i64) {
    return (2.0 * x, k + 1);
}
fn scale(x: f64[n], a: f64) -> f64[n] {
    return a * x;
}
"""


def dadc(capsys, *argv):
    """(exit status, stdout, stderr) of `dadc argv...`, argparse exits included."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


@pytest.fixture
def prog(tmp_path):
    p = tmp_path / "prog.dad"
    p.write_text(PROG)
    return p


@pytest.fixture
def derived(tmp_path):
    p = tmp_path / "derived.dad"
    p.write_text(DERIVED)
    return p


# ---------------------------------------------------------------------------- help, usage

def test_help(capsys):
    rc, out, _ = dadc(capsys, "--help")
    assert rc == 0
    for word in ("check", "emit", "run", "--version"):
        assert word in out


@pytest.mark.parametrize("command, options", [
    ("check", ["FILE"]),
    ("emit", ["--stage", "FILE", "--function", "--fast-math", "activity", "opt-ir", "asm"]),
    ("run", ["FILE", "--function", "--arg", "NAME=VALUE", "--fast-math", "--time", ".npy"]),
])
def test_subcommand_help(capsys, command, options):
    rc, out, _ = dadc(capsys, command, "--help")
    assert rc == 0
    for opt in options:
        assert opt in out, opt


def test_version(capsys):
    import dad
    rc, out, _ = dadc(capsys, "--version")
    assert rc == 0 and dad.__version__ in out


@pytest.mark.parametrize("argv", [
    [], ["frobnicate"], ["check"], ["emit", ROSEN], ["emit", "--stage", "bogus", ROSEN],
    ["run", ROSEN], ["check", ROSEN, "--no-such-option"],
])
def test_argparse_errors_exit_2(capsys, argv):
    rc, _, err = dadc(capsys, *argv)
    assert rc == 2
    assert "usage:" in err


# ---------------------------------------------------------------------------- check

@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.dad")), ids=lambda p: p.name)
def test_check_examples(capsys, path):
    rc, out, err = dadc(capsys, "check", path)
    assert rc == 0, err
    assert out.startswith(f"{path}: ok (") and err == ""


def test_check_reports_every_error(capsys, tmp_path):
    bad = tmp_path / "bad.dad"
    bad.write_text(BAD)
    rc, out, err = dadc(capsys, "check", bad)
    assert rc == 1 and out == ""
    heads = re.findall(rf"^{re.escape(str(bad))}:(\d+):(\d+): error: .+$", err, re.M)
    assert [(int(a), int(b)) for a, b in heads] == [(2, 13), (3, 12), (6, 12)]
    lines = err.splitlines()
    for i, line in enumerate(lines):
        if ": error: " in line:
            ln, col = map(int, re.match(r".*:(\d+):(\d+): error", line).groups())
            src = BAD.splitlines()[ln - 1]
            assert lines[i + 1].strip() == src.strip()          # the source line
            caret = lines[i + 2]
            indent = len(lines[i + 1]) - len(src)
            assert caret[indent + col - 1] == "^"               # the caret under the column
    assert lines[-1] == "3 errors"


def test_check_counts_one_error(capsys, tmp_path):
    p = tmp_path / "one.dad"
    p.write_text("fn f(x: f64) -> f64 {\n    return y;\n}\n")
    rc, _, err = dadc(capsys, "check", p)
    assert rc == 1 and err.splitlines()[-1] == "1 error"
    assert f"{p}:2:12: error: unknown name 'y'" in err


def test_check_syntax_error(capsys, tmp_path):
    p = tmp_path / "syn.dad"
    p.write_text("fn f(x: f64) -> f64 {\n    return x +;\n}\n")
    rc, _, err = dadc(capsys, "check", p)
    assert rc == 1 and re.search(rf"{re.escape(str(p))}:2:\d+: error: ", err)


def test_check_empty_file(capsys, tmp_path):
    p = tmp_path / "empty.dad"
    p.write_text("# nothing\n")
    rc, out, _ = dadc(capsys, "check", p)
    assert rc == 0 and out.strip() == f"{p}: ok (0 functions)"


def test_check_lists_derived_functions(capsys, derived):
    rc, out, _ = dadc(capsys, "check", derived)
    assert rc == 0 and out.strip() == f"{derived}: ok (2 functions: f, g)"


@pytest.mark.parametrize("command", [["check"], ["emit", "--stage", "ir"], ["run", "-f", "f"]])
def test_unreadable_files(capsys, tmp_path, command):
    missing = tmp_path / "missing.dad"
    rc, out, err = dadc(capsys, *command, missing)
    assert rc == 1 and out == ""
    assert err.strip() == f"dadc: error: cannot read {missing}: No such file or directory"
    rc, _, err = dadc(capsys, *command, tmp_path)                  # a directory
    assert rc == 1 and f"cannot read {tmp_path}" in err
    latin = tmp_path / "latin1.dad"
    latin.write_bytes("# caf\u00e9\nfn f(x: f64) -> f64 { return x; }\n".encode("latin-1"))
    rc, _, err = dadc(capsys, *command, latin)
    assert rc == 1 and f"cannot read {latin}: not UTF-8 text (byte 0xe9" in err


# ---------------------------------------------------------------------------- emit

@pytest.mark.parametrize("stage", STAGES)
def test_emit_every_stage(capsys, stage):
    rc, out, err = dadc(capsys, "emit", "--stage", stage, ROSEN)
    assert rc == 0, err
    for name in ("rosen", "rosen_sliced", "dot_loop"):
        assert name in out
    rc, one, err = dadc(capsys, "emit", "--stage", stage, ROSEN, "-f", "rosen")
    assert rc == 0, err
    assert "rosen" in one and "dot_loop" not in one and len(one) < len(out)


def test_emit_ir_shapes(capsys):
    _, ast, _ = dadc(capsys, "emit", "--stage", "ast", ROSEN, "-f", "rosen")
    assert ast.startswith("FnDef name='rosen' @2:1\n") and "source=" not in ast
    assert "Binary op='*'" in ast and "Name id='x'" in ast
    _, ir, _ = dadc(capsys, "emit", "--stage", "ir", ROSEN, "-f", "rosen")
    assert ir.startswith("func.func @rosen(")
    _, llvm, _ = dadc(capsys, "emit", "--stage", "llvm", ROSEN, "-f", "rosen")
    assert "define" in llvm
    _, fast, _ = dadc(capsys, "emit", "--stage", "llvm", "--fast-math", ROSEN, "-f", "rosen")
    assert "fast" in fast


@pytest.mark.parametrize("stage", STAGES)
def test_emit_unknown_function(capsys, stage):
    rc, out, err = dadc(capsys, "emit", "--stage", stage, ROSEN, "-f", "nope")
    assert rc == 2 and out == ""
    assert "'nope'" in err and "rosen, rosen_sliced" in err


def test_emit_activity(capsys, derived):
    rc, out, err = dadc(capsys, "emit", "--stage", "activity", derived, "-f", "g")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "activity of @f with respect to x:"
    assert "  x : active" in lines and "  a : active" in lines and "  s : active" in lines
    assert any(line.startswith("  c : inactive") for line in lines)
    assert any(line.startswith("  i : inactive") for line in lines)


def test_emit_activity_lists_unused_locals_and_nested_transforms(capsys, tmp_path):
    """Every local as written, one the clean-up passes would delete included; the activity
    of a derived function differentiated again (its own tangents among its values)."""
    p = tmp_path / "act.dad"
    p.write_text("fn f(x: f64, scale: f64, n: i64) -> f64 {\n"
                 "    var s = 0.0;\n"
                 "    for i in 0..n { s += sin(x * float(i)) * scale; }\n"
                 "    let unused = scale * 2.0;\n"
                 "    let dead = x * 3.0;\n"
                 "    return s;\n}\n"
                 "fn fj = jvp(f, wrt=x);\nfn fjj = jvp(fj, wrt=x);\n")
    rc, out, err = dadc(capsys, "emit", "--stage", "activity", str(p), "-f", "fj")
    assert rc == 0, err
    lines = [line.split() for line in out.splitlines()[1:]]
    verdicts = {w[0]: " ".join(w[2:]) for w in lines}
    assert verdicts == {"x": "active", "scale": "inactive (not varied by x)",
                        "n": "inactive (integer)", "s": "active", "i": "inactive (integer)",
                        "unused": "inactive (not varied by x)",
                        "dead": "inactive (does not reach a result)"}
    rc, out, err = dadc(capsys, "emit", "--stage", "activity", str(p), "-f", "fjj")
    assert rc == 0, err
    assert out.splitlines()[0] == "activity of @fj with respect to x:"
    assert "  s.dot : active" in out.splitlines()


def test_emit_ad(capsys, derived):
    rc, out, err = dadc(capsys, "emit", "--stage", "ad", derived, "-f", "g")
    assert rc == 0, err
    assert out.startswith("func.func @g(%x: ")
    assert "%x_dot" in out and "%a.dot" in out and "%s.dot" in out
    rc, out, _ = dadc(capsys, "emit", "--stage", "opt-ir", derived, "-f", "g")
    assert rc == 0 and out.startswith("func.func @g(")
    rc, out, _ = dadc(capsys, "emit", "--stage", "asm", derived, "-f", "g")
    assert rc == 0 and "g" in out


@pytest.mark.parametrize("stage", ["activity", "ad"])
def test_emit_derived_needs_a_derived_name(capsys, derived, stage):
    rc, out, err = dadc(capsys, "emit", "--stage", stage, derived)
    assert rc == 2 and out == ""
    assert "-f NAME is required" in err and "derived functions: g" in err
    rc, _, err = dadc(capsys, "emit", "--stage", stage, derived, "-f", "f")
    assert rc == 2 and "'f' is not a derived function" in err
    rc, _, err = dadc(capsys, "emit", "--stage", stage, ROSEN, "-f", "rosen")
    assert rc == 2 and "derived functions: none" in err


def test_emit_ad_shows_the_functions_ad_made(capsys, tmp_path, monkeypatch):
    """A derived function is often a wrapper around the adjoint AD made (`f.vjp.x`): `--stage
    ad -f g` prints g and then every AD-made function it calls, and `-f f.vjp.x` prints that
    one (and what it calls in turn). (Small helpers are inlined before AD: with inlining off,
    `h` stays a call whose adjoint AD makes.)"""
    monkeypatch.setattr(inline_calls, "INLINE_OPS", 0)
    src = tmp_path / "two.dad"
    src.write_text("fn h(x: f64[n]) -> f64 { var s = 0.0; for i in 0..len(x) { s += sin(x[i]); } return s; }\n"
                   "fn f(x: f64[n]) -> f64 { return h(x) * h(x); }\n"
                   "fn g = grad(f);\n")
    rc, out, err = dadc(capsys, "emit", "--stage", "ad", src, "-f", "g")
    assert rc == 0, err
    heads = [ln.split("(")[0] for ln in out.splitlines() if ln.startswith("func.func")]
    assert heads[0] == "func.func @g" and "func.func @f.vjp.x" in heads
    assert any(h.startswith("func.func @h.") for h in heads)     # the adjoint of the callee too
    assert "func.func @f(" not in out and "func.func @h(" not in out   # source functions: not AD's
    assert len(heads) == len(set(heads))
    rc, out2, _ = dadc(capsys, "emit", "--stage", "ad", src, "-f", "f.vjp.x")
    assert rc == 0 and out2.startswith("func.func @f.vjp.x(") and out2 in out
    rc, _, err = dadc(capsys, "emit", "--stage", "ad", src, "-f", "nope")
    assert rc == 2 and "functions AD made: " in err and "f.vjp.x" in err


def test_emit_ir_of_derived_function_hints(capsys, derived):
    rc, _, err = dadc(capsys, "emit", "--stage", "ir", derived, "-f", "g")
    assert rc == 2 and "derived function" in err


def test_emit_compile_error(capsys, tmp_path):
    bad = tmp_path / "bad.dad"
    bad.write_text(BAD)
    for stage in ("ir", "llvm"):
        rc, out, err = dadc(capsys, "emit", "--stage", stage, bad)
        assert rc == 1 and out == "" and err.splitlines()[-1] == "3 errors"


# ---------------------------------------------------------------------------- run

def test_run_scalar_result(capsys):
    rc, out, err = dadc(capsys, "run", ROSEN, "-f", "rosen", "--arg", "x=[1.5,2.0,-0.5,1.0]")
    assert rc == 0 and err == ""
    x = np.array([1.5, 2.0, -0.5, 1.0])
    expected = sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3))
    assert float(out) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("args, expected", [
    (["-f", "at", "--arg", "x=[1,2,3]", "--arg", "i=2"], "3.0"),
    (["-f", "at", "--arg", "x=[1.5, -2e3]", "--arg", "i=1"], "-2000.0"),
    (["-f", "at", "--arg", "x=[1,inf]", "--arg", "i=1"], "inf"),
    (["-f", "at", "--arg", "x=[-inf,0]", "--arg", "i=0"], "-inf"),
    (["-f", "at", "--arg", "x=[nan]", "--arg", "i=0"], "nan"),
    (["-f", "at", "--arg", "x=[]", "--arg", "i=-1"], None),
    (["-f", "total", "--arg", "A=[[1,2],[3,4]]"], "10.0"),
    (["-f", "total", "--arg", "A = [[1, 2], [3, nan]]"], "nan"),
    (["-f", "flip", "--arg", "b=true"], "False"),
    (["-f", "flip", "--arg", "b=false"], "True"),
    (["-f", "pair", "--arg", "x=inf", "--arg", "k=-3"], "inf\n-2"),
    (["-f", "pair", "--arg", "k=41", "--arg", "x=-0.25"], "-0.5\n42"),
])
def test_run_values(capsys, prog, args, expected):
    rc, out, err = dadc(capsys, "run", prog, *args)
    if expected is None:
        assert rc == 1 and "IndexError" in err
    else:
        assert rc == 0, err
        assert out.strip() == expected


def test_run_array_result(capsys, prog):
    rc, out, _ = dadc(capsys, "run", prog, "-f", "scale", "--arg", "x=[1,2.5,-1]", "--arg", "a=2")
    assert rc == 0 and out.strip() == "[ 2.  5. -2.]"


def test_run_tuple_results(capsys):
    rc, out, _ = dadc(capsys, "run", EXAMPLES / "stats.dad", "-f", "mean_var", "--arg", "x=[1,2,3,4]")
    assert rc == 0
    mean, var = out.split()
    assert float(mean) == 2.5 and float(var) == pytest.approx(5 / 3)
    rc, out, _ = dadc(capsys, "run", EXAMPLES / "nbody.dad", "-f", "step",
                      "--arg", "pos=[[0,0,0],[1,0,0]]", "--arg", "vel=[[0,0,0],[0,1,0]]",
                      "--arg", "mass=[1,1]", "--arg", "dt=0.01", "--arg", "eps=0.1")
    assert rc == 0
    assert out.count("[[") == 2                                  # two 2x3 arrays


def test_run_npy_files(capsys, prog, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.array([0.5, 1.5, 2.5]))
    A = tmp_path / "A.npy"
    np.save(A, np.arange(6.0).reshape(2, 3))
    ints = tmp_path / "ints.npy"
    np.save(ints, np.array([1, 2, 3], dtype=np.int64))             # converted losslessly
    zero_d = tmp_path / "s.npy"
    np.save(zero_d, np.float64(3.0))                                 # a 0-d array is a scalar
    rc, out, _ = dadc(capsys, "run", prog, "-f", "at", "--arg", f"x={x}", "--arg", "i=2")
    assert rc == 0 and out.strip() == "2.5"
    rc, out, _ = dadc(capsys, "run", prog, "-f", "total", "--arg", f"A={A}")
    assert rc == 0 and out.strip() == "15.0"
    rc, out, _ = dadc(capsys, "run", prog, "-f", "at", "--arg", f"x={ints}", "--arg", "i=0")
    assert rc == 0 and out.strip() == "1.0"
    rc, out, _ = dadc(capsys, "run", prog, "-f", "scale", "--arg", f"x={x}", "--arg", f"a={zero_d}")
    assert rc == 0 and out.strip() == "[1.5 4.5 7.5]"


def test_run_bad_npy_files(capsys, prog, tmp_path):
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([1, "a", None], dtype=object), allow_pickle=True)
    junk = tmp_path / "junk.npy"
    junk.write_text("not numpy")
    trunc = tmp_path / "trunc.npy"
    np.save(trunc, np.arange(100.0))
    trunc.write_bytes(trunc.read_bytes()[:30])
    dirnpy = tmp_path / "dir.npy"
    dirnpy.mkdir()
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones((2, 2)))
    for path, message in [(obj, "cannot load"), (junk, "is not a .npy file"),
                          (trunc, "cannot load"), (tmp_path / "missing.npy", "No such file"),
                          (dirnpy, "cannot load"), (wrong, "expects a 1-D array")]:
        rc, out, err = dadc(capsys, "run", prog, "-f", "at", "--arg", f"x={path}", "--arg", "i=0")
        assert rc == 1 and out == "", path
        assert err.startswith("dadc: error: ") and message in err, err


@pytest.mark.parametrize("value", ["[1,2", "[1,'a']", "hello", "1+2", "{1: 2}", "1j",
                                   "__import__('os')", "", "[" * 500 + "]" * 500, "truex"])
def test_run_bad_value_syntax(capsys, prog, value):
    rc, out, err = dadc(capsys, "run", prog, "-f", "at", "--arg", f"x={value}", "--arg", "i=0")
    assert rc == 1 and out == ""
    assert err.startswith("dadc: error: --arg x: cannot read the value")


@pytest.mark.parametrize("args, message", [
    (["--arg", "x=[1]"], "missing --arg for 'i'"),
    (["--arg", "x=[1]", "--arg", "i=0", "--arg", "y=2"], "no parameter 'y'"),
    (["--arg", "x=[1]", "--arg", "i=0", "--arg", "x=[2]"], "--arg x is given twice"),
    (["--arg", "x", "--arg", "i=0"], "--arg 'x': expected NAME=VALUE"),
    (["--arg", "=[1]", "--arg", "i=0"], "expected NAME=VALUE"),
])
def test_run_keyword_mismatch_is_usage(capsys, prog, args, message):
    rc, out, err = dadc(capsys, "run", prog, "-f", "at", *args)
    assert rc == 2 and out == ""
    assert err.startswith("dadc: error: ") and message in err
    if "NAME=VALUE" not in message and "twice" not in message:
        assert "signature: at(x: f64[n], i: i64) -> f64" in err


def test_run_unknown_function(capsys, prog):
    rc, _, err = dadc(capsys, "run", prog, "-f", "nope")
    assert rc == 2 and "no function 'nope'" in err and "have: at, total" in err


@pytest.mark.parametrize("args, kind", [
    (["-f", "at", "--arg", "x=[1,2]", "--arg", "i=2"], "IndexError"),
    (["-f", "at", "--arg", "x=[[1,2]]", "--arg", "i=0"], "TypeError"),
    (["-f", "at", "--arg", "x=[1,2]", "--arg", "i=1.5"], "TypeError"),
    (["-f", "at", "--arg", "x=[1,2]", "--arg", "i=true"], "TypeError"),
    (["-f", "at", "--arg", "x=[1,2]", "--arg", f"i={2**70}"], "OverflowError"),
    (["-f", "at", "--arg", "x=[[1],[2,3]]", "--arg", "i=0"], "TypeError"),
    (["-f", "flip", "--arg", "b=1"], "TypeError"),
])
def test_run_errors_at_run_time(capsys, prog, args, kind):
    rc, out, err = dadc(capsys, "run", prog, *args)
    assert rc == 1 and out == ""
    assert err.startswith(f"dadc: error: {kind}: ")
    if kind == "IndexError":
        assert f"{prog}:2:12:" in err


def test_run_division_by_zero(capsys, tmp_path):
    p = tmp_path / "div.dad"
    p.write_text("fn q(a: i64, b: i64) -> i64 {\n    return a / b;\n}\n")
    rc, _, err = dadc(capsys, "run", p, "-f", "q", "--arg", "a=1", "--arg", "b=0")
    assert rc == 1 and "ZeroDivisionError" in err and f"{p}:2:" in err


def test_run_compile_error(capsys, tmp_path):
    bad = tmp_path / "bad.dad"
    bad.write_text(BAD)
    rc, out, err = dadc(capsys, "run", bad, "-f", "f", "--arg", "x=1")
    assert rc == 1 and out == "" and err.splitlines()[-1] == "3 errors"


def test_run_time(capsys):
    rc, out, err = dadc(capsys, "run", ROSEN, "-f", "rosen", "--arg", "x=[1,1]", "--time")
    assert rc == 0 and out.strip() == "0.0"
    assert re.fullmatch(r"compile \d+\.\d ms, run \d+\.\d{3} ms\n", err)


def test_run_derived_function(capsys, derived):
    rc, out, _ = dadc(capsys, "run", derived, "-f", "g", "--arg", "x=[1,2]", "--arg", "c=3",
                      "--arg", "x_dot=[1,0]")
    assert rc == 0
    value, tangent = map(float, out.split())
    assert value == 45.0 and tangent == 18.0


# ---------------------------------------------------------------------------- the script

def _dadc_script():
    exe = shutil.which("dadc")
    if exe is None:
        pytest.skip("the dadc script is not installed")
    return exe


def test_script_run_and_exit_statuses(tmp_path):
    exe = _dadc_script()
    r = subprocess.run([exe, "run", ROSEN, "-f", "rosen", "--arg", "x=[1.5,2.0,-0.5,1.0]"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert math.isfinite(float(r.stdout))
    bad = tmp_path / "bad.dad"
    bad.write_text(BAD)
    r = subprocess.run([exe, "check", str(bad)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "3 errors" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([exe, "emit", "--stage", "ir", ROSEN, "-f", "nope"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = subprocess.run([exe], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "usage:" in r.stderr


def test_script_closed_pipe():
    """`dadc emit ... | head -1` stops quietly."""
    exe = _dadc_script()
    p = subprocess.Popen([exe, "emit", "--stage", "asm", str(EXAMPLES / "stats.dad")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "dad.cli", "check", ROSEN],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": ""})
    assert r.returncode == 0 and "ok (5 functions" in r.stdout
