"""zero_loads: reads of a fresh array's elements that nothing has written yet are 0.0, and
only those. Checked on the machine IR and on values against NumPy."""
import numpy as np
import pytest

import dad
from dad.frontend import compile_to_ir
from dad.lang.printer import print_function
from dad.runtime.compiler import derive_all, machine_ir, optimize_ir
from example_inputs import ROSEN, rosen_gradient

SOURCE = ROSEN + """
fn rg = grad(rosen);

fn prefix(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    y[0] = x[0];
    for i in 1..n {
        y[i] = y[i - 1] + x[i];
    }
    return y;
}

fn ahead(x: f64[n]) -> f64[n] {
    var y = zeros(n + 1);
    for i in 0..n {
        y[i + 1] = x[i] + y[i] + y[i + 1];
    }
    var out = zeros(n);
    for i in 0..n {
        out[i] = y[i + 1];
    }
    return out;
}

fn same(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    var out = zeros(n);
    for i in 0..n {
        y[i] = x[i] + 1.0;
        out[i] = x[i];      # a store between keeps tidy_stores from forwarding y[i]
        out[i] += y[i];
    }
    return out;
}
"""


def _machine(name: str) -> str:
    m = machine_ir(optimize_ir(derive_all(compile_to_ir(SOURCE, "z.dad"))))
    return print_function(m.functions[name])


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SOURCE, filename="z.dad")


def test_reversed_loop_reads_no_shadow_element():
    text = _machine("rosen.vjp.x")
    assert "memref.load %x.bar" not in text
    assert "memref.store" in text


def test_element_written_by_the_previous_iteration_is_still_read(mod):
    text = _machine("prefix")
    assert text.count("memref.load %y") >= 1
    x = np.random.default_rng(1).standard_normal(9)
    np.testing.assert_array_equal(mod.prefix(x), np.cumsum(x))


def test_element_written_earlier_in_the_same_iteration_is_still_read(mod):
    text = _machine("same")
    assert "memref.load %y" in text
    x = np.arange(5.0)
    np.testing.assert_array_equal(mod.same(x), x + (x + 1.0))


def test_elements_ahead_of_the_writes_read_zero(mod):
    # y[i] was written by the previous iteration (kept); y[i + 1] not yet (zero)
    x = np.random.default_rng(2).standard_normal(7)
    np.testing.assert_array_equal(mod.ahead(x), np.cumsum(x))


def test_gradient_is_analytic(mod):
    x = np.random.default_rng(3).uniform(-2.0, 2.0, 33)
    np.testing.assert_allclose(mod.rg(x), rosen_gradient(x), rtol=1e-13, atol=1e-12)
    for n in (1, 2):  # no iteration, one iteration: the untouched elements stay 0
        x = np.full(n, 0.5)
        want = np.zeros(n)
        if n == 2:
            want[0] = -400.0 * 0.5 * (0.5 - 0.25) - 2.0 * 0.5
            want[1] = 200.0 * (0.5 - 0.25)
        np.testing.assert_allclose(mod.rg(x), want, rtol=1e-14)
