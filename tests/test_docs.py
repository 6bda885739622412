"""The documentation's examples compile, and what docs/LANGUAGE.md states about the language holds.

Every ```dad block of docs/LANGUAGE.md and README.md is a complete program and must compile
with `dad.compile`; every ```dad-error block must raise `dad.CompileError`. README.md's
untagged blocks that are .dad programs (their first code line starts with `fn `) are
compiled too. Below those, a few of the reference's statements about semantics the contract
leaves open are checked by running small programs, so the page cannot drift from the
compiler unnoticed.
"""
from __future__ import annotations

import math
import pathlib
import re

import numpy as np
import pytest

import dad

ROOT = pathlib.Path(__file__).resolve().parent.parent
LANGUAGE = ROOT / "docs" / "LANGUAGE.md"
README = ROOT / "README.md"

_FENCE = re.compile(r"^```([A-Za-z0-9_-]*)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def blocks(path: pathlib.Path):
    """(info string, code, 1-based line of the opening fence) for each fenced block."""
    text = path.read_text(encoding="utf-8")
    for m in _FENCE.finditer(text):
        yield m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1


def _looks_like_dad(code: str) -> bool:
    for line in code.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line.startswith("fn ")
    return False


def _cases():
    cases = []
    for path in (LANGUAGE, README):
        if not path.exists():
            continue
        for info, code, line in blocks(path):
            if info == "dad" or (path == README and info == "" and _looks_like_dad(code)):
                kind = "ok"
            elif info == "dad-error":
                kind = "error"
            else:
                continue
            cases.append(pytest.param(kind, code, f"{path.name}:{line}", id=f"{path.name}:{line}"))
    return cases


CASES = _cases()


def test_language_reference_exists_and_has_examples():
    assert LANGUAGE.exists(), "README links to docs/LANGUAGE.md"
    kinds = [c.values[0] for c in CASES if c.values[2].startswith("LANGUAGE.md")]
    assert kinds.count("ok") >= 5 and kinds.count("error") >= 3


@pytest.mark.parametrize("kind,code,where", CASES)
def test_doc_block(kind, code, where):
    if kind == "ok":
        try:
            dad.compile(code, filename=where)
        except dad.CompileError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"example at {where} does not compile:\n{exc}")
    else:
        with pytest.raises(dad.CompileError):
            dad.compile(code, filename=where)


# ----------------------------------------------------------------------------- stated semantics
def _f(src: str, name: str = "f"):
    return getattr(dad.compile(src), name)


def test_float_rem_is_fmod_and_int_rem_is_floored():
    fr = _f("fn f(a: f64, b: f64) -> f64 { return a % b; }")
    assert fr(-7.0, 3.0) == math.fmod(-7.0, 3.0) == -1.0
    assert fr(7.0, -3.0) == 1.0
    assert math.isnan(fr(1.0, 0.0))
    ir_ = _f("fn f(a: i64, b: i64) -> i64 { return a % b; }")
    idiv = _f("fn f(a: i64, b: i64) -> i64 { return a / b; }")
    for a, b in [(-7, 3), (7, -3), (-7, -3), (7, 3)]:
        assert ir_(a, b) == a % b and idiv(a, b) == a // b
    with pytest.raises(ZeroDivisionError):
        ir_(1, 0)


def test_literal_expressions_follow_context():
    assert _f("fn f() -> f64 { return 7 / 2; }")() == 3.5
    assert _f("fn f() -> i64 { let k = 7 / 2; return k; }")() == 3
    assert _f("fn f(x: f64) -> f64 { return -x ** 2; }")(3.0) == -9.0
    assert _f("fn f(x: f64) -> f64 { return 2 ** 3 ** 2 + x; }")(0.0) == 512.0


def test_conversions_and_overflow():
    to_int = _f("fn f(x: f64) -> i64 { return int(x); }")
    assert to_int(-2.7) == -2 and to_int(float("nan")) == 0 and to_int(1e30) == 2**63 - 1
    assert _f("fn f(b: bool) -> i64 { return int(b); }")(True) == 1
    assert _f("fn f(x: i64, y: i64) -> i64 { return x * y; }")(2**62, 4) == 0


def test_empty_arrays():
    e = np.zeros(0)
    assert _f("fn f(x: f64[n]) -> f64 { return norm(x); }")(e) == 0.0
    assert _f("fn f(x: f64[n]) -> f64 { return sum(x) + 10.0 * prod(x) + dot(x, x); }")(e) == 10.0
    for fn in ("max", "min", "logsumexp"):
        with pytest.raises(ValueError, match="empty array"):
            _f(f"fn f(x: f64[n]) -> f64 {{ return {fn}(x); }}")(e)


def test_minmax_nan_and_logsumexp_infinities():
    mx = _f("fn f(a: f64, b: f64) -> f64 { return max(a, b); }")
    assert mx(float("nan"), 1.0) == 1.0 and math.isnan(mx(1.0, float("nan"))) and mx(2.0, 1.0) == 2.0
    red = _f("fn f(x: f64[n]) -> f64 { return max(x); }")
    assert red([1.0, float("nan"), 3.0]) == 3.0 and math.isnan(red([float("nan"), 3.0]))
    lse = _f("fn f(x: f64[n]) -> f64 { return logsumexp(x); }")
    assert lse([-np.inf, -np.inf]) == -np.inf and lse([np.inf, 1.0]) == np.inf


def test_array_scalar_minmax_and_whole_array_compound_assignment():
    clamp = _f("fn f(x: f64[n]) -> f64[n] { return min(max(x, 0.0), 1.0); }")
    assert clamp([-1.0, 0.5, 2.0]).tolist() == [0.0, 0.5, 1.0]
    g = _f("fn f(x: f64[n]) -> f64[n] { var y = copy(x); y += 1.0; y *= x; return y; }")
    assert g([1.0, 2.0]).tolist() == [2.0, 6.0]
    h = _f("fn f(x: f64[n]) -> f64[n] { var y = zeros(3); y = x; return y; }")
    with pytest.raises(ValueError, match="shape mismatch in assignment"):
        h([1.0, 2.0])


def test_recursion_keywords_and_short_circuit():
    m = dad.compile("""
fn fact(n: i64) -> i64 { if n <= 1 { return 1; } return n * fact(n - 1); }
fn sub(a: f64, b: f64) -> f64 { return a - b; }
fn kw() -> f64 { return sub(b=1.0, a=3.0) + sub(3.0, b=1.0); }
fn safe(x: f64[n], i: i64) -> bool { return i < n and x[i] > 0.0; }
fn pow_r(x: f64, n: i64) -> f64 { if n == 0 { return 1.0; } return x * pow_r(x, n - 1); }
fn pow_r_grad = grad(pow_r);
""")
    assert m.fact(10) == 3628800 and m.kw() == 4.0 and m.safe([1.0], 5) is False
    assert m.pow_r_grad(2.0, 3) == 12.0


def test_derived_signatures_as_documented():
    m = dad.compile("""
fn split(x: f64[n], a: f64) -> (f64, f64[n]) { return (a * sum(x), a * x); }
fn clash(x: f64, x_dot: f64, v: f64) -> f64 { return x * x_dot * v; }
fn f(x: f64[n], a: f64, k: i64) -> f64 { return a * sum(x * x) + float(k); }
fn split_jvp = jvp(split);
fn split_vjp = vjp(split);
fn clash_jvp = jvp(clash, wrt=x);
fn clash_hvp = hvp(clash, wrt=v);
fn f_grad = grad(f);
fn f_vg = value_and_grad(f, wrt=[a, x]);
fn f_vjp = vjp(f, wrt=x);
""")
    assert m.split_jvp.signature == \
        "(x: f64[n], a: f64, x_dot: f64[n], a_dot: f64) -> (f64, f64[n], f64, f64[n])"
    assert m.split_vjp.signature == \
        "(x: f64[n], a: f64, out0_bar: f64, out1_bar: f64[n]) -> (f64, f64[n], f64[n], f64)"
    assert m.clash_jvp.signature == "(x: f64, x_dot: f64, v: f64, x_dot_: f64) -> (f64, f64)"
    assert m.clash_hvp.signature == "(x: f64, x_dot: f64, v: f64, v_: f64) -> f64"
    assert m.f_grad.signature == "(x: f64[n], a: f64, k: i64) -> (f64[n], f64)"
    assert m.f_vg.signature == "(x: f64[n], a: f64, k: i64) -> (f64, f64, f64[n])"
    assert m.f_vjp.signature == "(x: f64[n], a: f64, k: i64, out_bar: f64) -> (f64, f64[n])"


def test_special_points_as_documented():
    m = dad.compile("""
fn a(x: f64) -> f64 { return abs(x); }
fn s(x: f64) -> f64 { return sqrt(x); }
fn n(x: f64[k]) -> f64 { return norm(x); }
fn sel(x: f64) -> f64 { return select(x > 0.0, sqrt(x), 0.0); }
fn mx(x: f64[k]) -> f64 { return max(x); }
fn r(x: f64, y: f64) -> f64 { return x % y; }
fn a_g = grad(a);
fn s_g = grad(s);
fn n_g = grad(n);
fn sel_g = grad(sel);
fn mx_g = grad(mx);
fn r_g = grad(r);
""")
    assert m.a_g(0.0) == 0.0 and m.s_g(0.0) == math.inf and m.sel_g(0.0) == 0.0
    assert m.n_g([0.0, 0.0]).tolist() == [0.0, 0.0]
    assert m.mx_g([1.0, 3.0, 3.0]).tolist() == [0.0, 0.5, 0.5]
    assert m.r_g(7.0, 3.0) == (1.0, -2.0)


def test_tape_listing_matches_the_reference(tmp_path, capsys, monkeypatch):
    from dad.cli import main
    src = next(code for info, code, _ in blocks(LANGUAGE) if info == "dad" and "fn flow(" in code)
    (tmp_path / "flow.dad").write_text(src)
    monkeypatch.chdir(tmp_path)
    assert main(["emit", "--stage", "tape", "flow.dad", "-f", "flow_grad"]) == 0
    out = capsys.readouterr().out
    # the loop by its index and line (3: `for i in 0..n`), the records by what they hold
    assert "loop for i at flow.dad:3:5: 16 bytes per iteration: x: f64, sin(x): f64" in out
    assert out.strip() in LANGUAGE.read_text(encoding="utf-8")
    assert main(["emit", "--stage", "tape", "flow.dad", "-f", "flow_cp"]) == 0
    assert capsys.readouterr().out.strip() in LANGUAGE.read_text(encoding="utf-8")
