"""The elementary functions are declared once (lang/mathops.py): each row reaches every layer.

Accuracy of values and derivatives against mpmath is tests/test_rule_accuracy.py (cbrt, exp2,
log2 and log10 are there, declared by one row each); here: that every row is a builtin, an
op the verifier knows, a lowering, a derivative rule (or a documented derivative of 0) and,
where declared, a constant fold; and the new functions' special points, elementwise use and
forward/reverse agreement.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import dad
from dad.ad.rules import NONDIFF, RULES as AD_RULES, USES_RESULT
from dad.frontend.builtins import BUILTINS
from dad.lang.mathops import MATH
from dad.lang.ops import OPS
from dad.lowering.rules import RULES as LOWERING


@pytest.mark.parametrize("m", MATH, ids=[m.op for m in MATH])
def test_every_row_reaches_every_layer(m):
    name = "math." + m.op
    assert name in OPS and OPS[name].operands == m.arity
    if m.builtin is not None:
        assert BUILTINS[m.builtin].op == name and BUILTINS[m.builtin].min_args == m.arity
    assert (name in LOWERING) != (m.expand is not None), f"{name}: a lowering xor an expansion"
    assert (name in AD_RULES) != (name in NONDIFF), f"{name}: a derivative rule xor derivative 0"
    assert (name in USES_RESULT) == m.uses_result


def test_folds_are_exact_on_constants():
    m = dad.compile("fn f() -> f64 { return sqrt(2.0) + abs(-3.5) + floor(-2.5) + ceil(0.2); }")
    assert m.f() == math.sqrt(2.0) + 3.5 - 3.0 + 1.0
    assert "math." not in m.function_ir("f")       # every one folded away


NEW = """
fn c(x: f64) -> f64 { return cbrt(x); }
fn e(x: f64) -> f64 { return exp2(x); }
fn l2(x: f64) -> f64 { return log2(x); }
fn l10(x: f64) -> f64 { return log10(x); }
fn cg = grad(c);
fn eg = grad(e);
fn l2g = grad(l2);
fn l10g = grad(l10);
fn cj = jvp(c);
fn v(x: f64[n]) -> f64 { return sum(cbrt(x) * exp2(x) + log2(x * x + 1.0) - log10(x * x + 2.0)); }
fn vg = grad(v);
fn vj = jvp(v);
"""


@pytest.fixture(scope="module")
def new():
    return dad.compile(NEW, filename="new.dad")


def test_special_points(new):
    # libm's cbrt: within an ulp (glibc gives 3.0000000000000004 for 27)
    assert new.c(-8.0) == -2.0 and abs(new.c(27.0) - 3.0) <= 2.0 ** -51 and new.c(-0.0) == 0.0
    assert new.cg(0.0) == math.inf and new.cg(-0.0) == math.inf          # as sqrt'(0)
    assert new.cj(0.0, 0.0) == (0.0, 0.0)                                # zero tangent: zero
    assert new.cg(-8.0) == 1.0 / 12.0 and new.cg(8.0) == 1.0 / 12.0      # 1 / (3 * 4), exact
    assert new.e(10.0) == 1024.0 and new.e(1024.0) == math.inf and new.eg(1024.0) == math.inf
    assert new.eg(0.0) == math.log(2.0)
    assert new.l2(8.0) == 3.0 and new.l10(1000.0) == 3.0
    assert new.l2(0.0) == -math.inf and new.l2g(0.0) == math.inf and new.l10g(0.0) == math.inf
    assert math.isnan(new.l2(-1.0)) and math.isnan(new.l10(-1.0))


def test_elementwise_forward_reverse_and_differences(new):
    rng = np.random.default_rng(5)
    x = rng.uniform(0.2, 2.0, 7) * rng.choice([-1.0, 1.0], 7)
    g = new.vg(x)
    h = 1e-6
    fd = np.array([(new.v(x + h * e) - new.v(x - h * e)) / (2 * h) for e in np.eye(7)])
    assert np.allclose(g, fd, rtol=1e-7, atol=1e-8)
    t = rng.standard_normal(7)
    value, jv = new.vj(x, t)
    assert value == new.v(x)
    assert abs(jv - g @ t) <= 1e-12 * np.sum(np.abs(g * t))


HYPOT = """
fn h(a: f64, c: f64) -> f64 { return hypot(a, c); }
fn hg = grad(h);
fn hj = jvp(h);
fn haa = hessian(h, wrt=a);
fn h32(a: f32, c: f32) -> f32 { return hypot(a, c); }
fn h32g = grad(h32);
fn hv(x: f64[n], y: f64[n]) -> f64 { return sum(hypot(x, y)); }
fn hvg = grad(hv);
"""

INF = math.inf


@pytest.mark.parametrize("a,c,grad,haa", [
    (3.0, 4.0, (0.6, 0.8), 16.0 / 125.0),                       # c² / h³
    (1e300, 1e300, (2 ** -0.5, 2 ** -0.5), 1e-300 / (2 * 2 ** 0.5)),  # c²/h³; a² + c² overflows
    (1e-300, 2e-300, (5 ** -0.5, 2 * 5 ** -0.5), None),          # a² + c² underflows
    (-2.0, 0.0, (-1.0, 0.0), 0.0),
    (0.0, 0.0, (0.0, 0.0), 0.0),                                 # as norm's gradient at 0
    (INF, 1.0, (1.0, 0.0), 0.0),
    (INF, -INF, (2 ** -0.5, -(2 ** -0.5)), None),                # the limit along the diagonal
])
def test_hypot_value_and_derivatives(a, c, grad, haa):
    m = dad.compile(HYPOT, filename="hypot.dad")
    assert m.h(a, c) == math.hypot(a, c)
    g = m.hg(a, c)
    assert g == pytest.approx(grad, rel=4e-16, abs=0.0)
    value, jv = m.hj(a, c, 1.0, 0.5)
    assert value == m.h(a, c) and jv == pytest.approx(grad[0] + 0.5 * grad[1], rel=4e-16, abs=0.0)
    if haa is not None:
        assert m.haa(a, c) == pytest.approx(haa, rel=1e-15, abs=0.0)


def test_hypot_f32_and_elementwise():
    m = dad.compile(HYPOT, filename="hypot.dad")
    assert [float(v) for v in m.h32g(3.0, 4.0)] == [0.6000000238418579, 0.800000011920929]
    x, y = np.array([3.0, -1.0, 0.0]), np.array([4.0, 1.0, 0.0])
    gx, gy = m.hvg(x, y)
    # 1 / sqrt(2) rounded twice: within an ulp of 2 ** -0.5
    assert gx == pytest.approx([0.6, -2 ** -0.5, 0.0], rel=2.3e-16, abs=0.0)
    assert gy == pytest.approx([0.8, 2 ** -0.5, 0.0], rel=2.3e-16, abs=0.0)


def test_relu_softplus_log_sigmoid_rules_and_expansion():
    """Ops to AD (exact rules: relu'(0) = 0, softplus'' = sigmoid' smooth at 0), their stable
    formula in the machine IR (no math.softplus reaches the lowering)."""
    m = dad.compile("""
fn r(x: f64) -> f64 { return relu(x); }
fn s(x: f64) -> f64 { return softplus(x); }
fn l(x: f64) -> f64 { return log_sigmoid(x); }
fn rg = grad(r);
fn sh = hessian(s);
fn lh = hessian(l);
fn v(x: f64[n]) -> f64 { return sum(relu(x) + softplus(x) - log_sigmoid(x)); }
fn vg = grad(v);
""", filename="act.dad")
    assert [m.r(x) for x in (2.0, -2.0, 0.0)] == [2.0, 0.0, 0.0] and math.isnan(m.r(math.nan))
    assert [m.rg(x) for x in (2.0, -2.0, 0.0, -0.0)] == [1.0, 0.0, 0.0, 0.0]
    assert m.s(800.0) == 800.0 and m.s(-800.0) == 0.0 and m.l(-800.0) == -800.0
    assert m.sh(0.0) == 0.25 and m.lh(0.0) == -0.25            # the stable formula's kinks: 0
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    x = np.array([0.0, 1.0, -2.0])
    want = [(xi > 0) + sig(xi) - sig(-xi) for xi in x]
    assert m.vg(x) == pytest.approx(want, rel=1e-15, abs=1e-16)
    assert "math.softplus" in m.function_ir("s")
    from dad.cli import main
    import contextlib
    import io
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".dad", delete=False) as fh:
        fh.write("fn s(x: f64) -> f64 { return softplus(x) + relu(x) + log_sigmoid(x); }\n")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["emit", "--stage", "opt-ir", fh.name]) == 0
    text = buf.getvalue()
    assert "math.log1p" in text and "math.softplus" not in text and "math.relu" not in text \
        and "math.log_sigmoid" not in text


def test_stop_gradient_is_the_value_with_derivative_zero_in_every_mode():
    m = dad.compile("""
fn f(x: f64[n], w: f64) -> f64 { let c = stop_gradient(w * w); return sum(x * x) * c + w * stop_gradient(sum(x)); }
fn fg = grad(f);
fn fj = jvp(f);
fn fhw = hessian(f, wrt=w);
fn fhx = hvp(f, wrt=x);
fn p(x: f64[n]) -> f64[n] { return stop_gradient(x) * x; }
fn pj = jacobian(p);
""", filename="sg.dad")
    x, w = np.array([1.0, 2.0]), 3.0
    # f = |x|² c + w s with c = w² = 9 and s = sum(x) = 3 held constant
    assert m.f(x, w) == 5.0 * 9.0 + 3.0 * 3.0
    gx, gw = m.fg(x, w)
    assert gx.tolist() == [18.0, 36.0] and gw == 3.0
    assert m.fj(x, w, np.array([1.0, 0.0]), 1.0) == (54.0, 21.0)
    assert m.fhw(x, w) == 0.0 and m.fhx(x, w, np.array([1.0, 1.0])).tolist() == [18.0, 18.0]
    assert m.pj(np.array([2.0, 5.0])).tolist() == [[2.0, 0.0], [0.0, 5.0]]   # d(s x)/dx = s
