"""Reverse over forward without waste: the adjoint of a `jvp` takes the primal results from the
adjoint call instead of calling the `jvp` first (`lang.passes.reuse_calls`), and recomputes
zero-safe products instead of recording them. Checked on the printed machine IR and against
the analytic Hessian-vector product of Rosenbrock's function."""
import numpy as np
import pytest

import dad
from dad.lang.irparser import parse_module
from dad.lang.passes import reuse_calls
from dad.lang.printer import print_module
from dad.runtime.compiler import machine_ir
from dad.runtime.transforms import derive_kernel
from example_inputs import ROSEN, rosen_gradient


def _hvp_by_hand(x, v):
    """Rosenbrock's Hessian times v, from the analytic second derivatives."""
    n = len(x)
    h = np.zeros(n)
    for i in range(n - 1):
        # term 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2
        a = x[i + 1] - x[i] ** 2
        hii = 1200.0 * x[i] ** 2 - 400.0 * x[i + 1] + 2.0
        hij = -400.0 * x[i]
        h[i] += hii * v[i] + hij * v[i + 1]
        h[i + 1] += hij * v[i] + 200.0 * v[i + 1]
        del a
    return h


@pytest.fixture(scope="module")
def rof():
    mod = dad.compile(ROSEN, filename="rosen.dad")
    return mod, derive_kernel(mod.rosen, "hvp", wrt="x", route="reverse-over-forward")


def _machine_ir_not_inlined(m):
    """The machine pipeline without `inline_calls` (which would then copy the one call
    left into its caller: the count of calls is what this file checks)."""
    from dad.lang.passes import PassManager, machine_pipeline
    from dad.lang.passes.util import clone_module
    return PassManager([p for p in machine_pipeline()
                        if getattr(p, "pass_name", "") != "inline_calls"]).run(clone_module(m))


def test_reverse_over_forward_calls_the_forward_sweep_once(rof):
    _, k = rof
    text = print_module(_machine_ir_not_inlined(k.module.ir_module))
    body = text.split("func.func @rosen.dirderiv.x.vjp.x")[1].split("func.func")[0]
    # before the pass: one call of rosen.jvp.x (for the value) and one of its adjoint
    assert '"rosen.jvp.x"' not in body
    assert body.count('"rosen.jvp.x.vjp.x"') == 1
    # the derivation's own IR keeps both calls (the pass is for machine code only)
    orig = print_module(k.module.ir_module).split("func.func @rosen.dirderiv.x.vjp.x")[1]
    assert '"rosen.jvp.x"' in orig.split("func.func")[0]


def test_zero_safe_products_are_recomputed_not_recorded(rof):
    _, k = rof
    text = print_module(machine_ir(k.module.ir_module))
    assert "dad.tape" not in text


def test_reverse_over_forward_hvp_matches_analytic_and_value(rof):
    mod, k = rof
    rng = np.random.default_rng(3)
    x, v = rng.uniform(-2.0, 2.0, 50), rng.standard_normal(50)
    ref = _hvp_by_hand(x, v)
    # a few roundings of O(1e3 * |v|) terms per element
    np.testing.assert_allclose(k(x, v), ref, rtol=1e-12, atol=1e-9 * np.max(np.abs(ref)))
    np.testing.assert_allclose(k(x, v), dad.hvp(mod.rosen, wrt="x")(x, v), rtol=1e-12,
                               atol=1e-12 * np.max(np.abs(ref)))


HAND = """
func.func @f(%x: f64) -> f64 attributes {sig = "(x: f64) -> f64"} {
  %0 = arith.mulf %x, %x : f64
  func.return %0 : ()
}

func.func @f.vjp.x(%x: f64, %out_bar: f64) -> (f64, f64) attributes {primal_of = "f", sig = "(x: f64, out_bar: f64) -> (f64, f64)"} {
  %0 = arith.mulf %x, %x : f64
  %1 = arith.addf %x, %x : f64
  %2 = arith.mulf %out_bar, %1 : f64
  func.return %0, %2 : ()
}

func.func @g(%x: f64) -> (f64, f64) attributes {sig = "(x: f64) -> (f64, f64)"} {
  %0 = func.call %x {callee = "f"} : (f64)
  %1 = arith.constant {value = 1.0} : f64
  %2 = arith.addf %0, %1 : f64
  %3, %4 = func.call %x, %2 {callee = "f.vjp.x"} : (f64, f64)
  func.return %0, %4 : ()
}

func.func @h(%x: f64) -> (f64, f64) attributes {sig = "(x: f64) -> (f64, f64)"} {
  %0 = func.call %x {callee = "f"} : (f64)
  %1 = arith.constant {value = 1.0} : f64
  %3, %4 = func.call %x, %1 {callee = "f.vjp.x"} : (f64, f64)
  func.return %0, %4 : ()
}
"""


def test_a_result_used_before_the_adjoint_call_keeps_the_call():
    from dad.runtime.compiler import compile_module
    m = reuse_calls(parse_module(HAND))
    calls = lambda f: [o.attrs["callee"] for o in m.functions[f].body.walk()
                       if o.name == "func.call"]
    assert calls("g") == ["f", "f.vjp.x"]     # %0 feeds the adjoint call's cotangent
    assert calls("h") == ["f.vjp.x"]          # only returned: taken from the adjoint call
    ret = m.functions["h"].body.terminator
    assert ret.operands[0].op.attrs["callee"] == "f.vjp.x"
    # and the values are those of the program as written: f(3) = 9, f'(3) * cotangent
    c = compile_module(parse_module(HAND))
    assert c.g(3.0) == (9.0, 60.0) and c.h(3.0) == (9.0, 6.0)


def test_unused_results_of_internal_functions_are_not_computed():
    """grad(f) drops f's value: its adjoint function stops returning (and computing) it;
    value_and_grad keeps it."""
    from dad.frontend import compile_to_ir
    from dad.lang.printer import print_function
    from dad.runtime.compiler import derive_all, optimize_ir

    def vjp_of(extra):
        m = machine_ir(optimize_ir(derive_all(compile_to_ir(ROSEN + extra, "rosen.dad"))))
        return m.functions["rosen.vjp.x"]

    vjp = vjp_of("fn rg = grad(rosen);\n")
    assert len(vjp.result_types) == 1
    first = print_function(vjp).split("scf.for")[1].split("}")[0]
    assert "arith.addf" not in first and "arith.mulf" not in first  # the value's sum is gone
    assert len(vjp_of("fn rv = value_and_grad(rosen);\n").result_types) == 2
    mod = dad.compile(ROSEN + "fn rg = grad(rosen);\nfn rv = value_and_grad(rosen);\n",
                      filename="rosen.dad")
    x = np.random.default_rng(8).uniform(-2.0, 2.0, 40)
    g = mod.rg(x)
    v, g2 = mod.rv(x)
    np.testing.assert_array_equal(g, g2)
    assert v == mod.rosen(x)
    np.testing.assert_allclose(g, rosen_gradient(x), rtol=1e-13, atol=1e-12)


def test_pruning_drops_unused_results_only():
    from dad.lang.passes import prune_results
    src = """
func.func @f(%x: f64) -> (f64, f64) attributes {internal = true, sig = "(x: f64) -> (f64, f64)"} {
  %0 = arith.mulf %x, %x : f64
  %1 = arith.addf %x, %x : f64
  func.return %0, %1 : ()
}

func.func @g(%x: f64) -> f64 attributes {sig = "(x: f64) -> f64"} {
  %0, %1 = func.call %x {callee = "f"} : (f64, f64)
  func.return %1 : ()
}
"""
    m = prune_results(parse_module(src))
    assert len(m.functions["f"].result_types) == 1
    from dad.runtime.compiler import compile_module
    assert compile_module(parse_module(src)).g(3.0) == 6.0
