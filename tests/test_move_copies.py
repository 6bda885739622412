"""move_copies: a returned `var` array is handed over instead of copied, and only when nothing
else can see the original afterwards. Checked on the printed machine IR and on values."""
import numpy as np
import pytest

import dad
from dad.frontend import compile_to_ir
from dad.lang.printer import print_function
from dad.runtime.compiler import derive_all, machine_ir, optimize_ir

SOURCE = """
fn fill(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n {
        y[i] = 2.0 * x[i];
    }
    return y;
}

fn pair(x: f64[n]) -> (f64[n], f64[n]) {
    var y = zeros(n);
    for i in 0..n {
        y[i] = x[i] + 1.0;
    }
    let z = copy(y);
    y[0] = 7.0;
    return (y, z);
}

fn two_rows(x: f64[n]) -> f64[2, n] {
    var y = zeros(2, n);
    for i in 0..n {
        y[0, i] = x[i];
        y[1, i] = -x[i];
    }
    return y;
}

fn keep(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n {
        y[i] = x[i] * x[i];
    }
    let s = total(y);
    return y;
}

fn total(a: f64[n]) -> f64 {
    return sum(a);
}
"""


def _machine(name: str) -> str:
    m = machine_ir(optimize_ir(derive_all(compile_to_ir(SOURCE, "mc.dad"))))
    return print_function(m.functions[name])


def _plain(name: str) -> str:
    m = optimize_ir(derive_all(compile_to_ir(SOURCE, "mc.dad")))
    return print_function(m.functions[name])


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SOURCE, filename="mc.dad")


@pytest.mark.parametrize("name", ["fill", "two_rows", "keep"])
def test_returned_array_is_not_copied(name):
    assert "memref.copy" in _plain(name)          # the front end copies on return
    text = _machine(name)
    assert "memref.copy" not in text
    assert text.count("memref.alloc") == 1


def test_array_read_after_its_copy_keeps_the_copy():
    # z = copy(y) is followed by a store into y and y's return: both arrays stay
    assert _machine("pair").count("memref.alloc") >= 2


def test_values(mod):
    x = np.arange(5.0)
    np.testing.assert_array_equal(mod.fill(x), 2.0 * x)
    y, z = mod.pair(x)
    np.testing.assert_array_equal(z, x + 1.0)
    want = x + 1.0
    want[0] = 7.0
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(mod.two_rows(x), np.stack([x, -x]))
    np.testing.assert_array_equal(mod.keep(x), x * x)
    # every call hands over its own array
    a, b = mod.fill(x), mod.fill(x)
    a[0] = 99.0
    assert b[0] == 0.0
