"""Front-end bugs found once, kept fixed."""
import numpy as np
import pytest

import dad


def test_let_of_a_var_array_is_a_snapshot():
    m = dad.compile("""
fn f(x: f64[n]) -> f64 {
    var a = copy(x);
    let b = a;
    let r = a[0..2];
    a[0] = 9.0;
    a = a * 2.0;
    return b[0] + 10.0 * r[0] + 100.0 * a[0];
}
fn first_row(A: f64[n, m]) -> f64 {
    var B = copy(A);
    let r = B[0];
    B[0, 0] = 5.0;
    return r[0];
}""")
    assert m.f(np.array([1.0, 2.0, 3.0])) == 1.0 + 10.0 + 1800.0
    assert m.first_row(np.array([[1.0, 2.0], [3.0, 4.0]])) == 1.0


def test_derived_function_defined_in_terms_of_itself():
    with pytest.raises(dad.CompileError, match=r"t\.dad:1:13: error: derived function 'g' is defined in terms of itself"):
        dad.compile("fn g = grad(g);", filename="t.dad")


def test_tuple_valued_call_inside_an_expression():
    src = "fn g(x: f64) -> (f64, f64) { return (x, x); }\nfn f(x: f64) -> f64 { return g(x) + 1.0; }"
    with pytest.raises(dad.CompileError, match=r"t\.dad:2:30: error: a tuple cannot be used in an expression"):
        dad.compile(src, filename="t.dad")
