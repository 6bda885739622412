"""Sparse Jacobians: the pattern from the IR, coloured columns, one sweep per colour."""
import numpy as np
import pytest

import dad

SOURCE = """
fn tridiag(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n {
        var v = 2.0 * x[i] * x[i];
        if i > 0 { v -= sin(x[i - 1]); }
        if i < n - 1 { v -= exp(x[i + 1]) * x[i]; }
        y[i] = v;
    }
    return y;
}
fn band5(x: f64[n], c: f64) -> f64[n] {
    var y = zeros(n);
    for i in 2..n - 2 { y[i] = c * x[i - 2] * x[i + 2] + tanh(x[i - 1] - x[i + 1]) + x[i]; }
    return y;
}
fn arrow(x: f64[n]) -> f64[n] {
    var y = zeros(n);
    for i in 0..n { y[i] = x[i] * x[0]; }
    return y;
}
"""


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SOURCE, filename="sparse.dad")


class CountingSweeps:
    def __init__(self, kernel):
        self.kernel, self.calls = kernel, 0

    def __call__(self, *args):
        self.calls += 1
        return self.kernel(*args)


@pytest.mark.parametrize("name, args, colours, band", [
    ("tridiag", (), 3, 1),
    ("band5", (0.7,), 5, 2),
])
def test_banded_jacobian_takes_as_many_sweeps_as_colours(mod, name, args, colours, band):
    n = 60
    x = np.random.default_rng(0).uniform(0.1, 1.0, n)
    sj = dad.sparse_jacobian(getattr(mod, name), wrt="x")
    sj.tangents = CountingSweeps(sj.tangents)
    J = sj(x, *args)
    dense = dad.jacobian(getattr(mod, name), wrt="x")(x, *args)
    np.testing.assert_array_equal(J, dense)
    assert sj.sweeps == colours == sj.tangents.calls  # not n = 60
    i, j = np.indices((n, n))
    assert not sj.pattern[np.abs(i - j) > band].any()  # the pattern is the band, no wider
    assert sj.pattern[np.nonzero(dense)].all()          # and covers every nonzero


def test_a_dense_column_needs_its_own_colour(mod):
    x = np.random.default_rng(1).uniform(0.1, 1.0, 10)
    sj = dad.sparse_jacobian(mod.arrow)
    J = sj(x)
    np.testing.assert_allclose(J, dad.jacobian(mod.arrow)(x), rtol=0, atol=0)
    assert sj.sweeps == 2  # column 0 touches every row; the diagonal shares one colour


def test_colouring_never_puts_two_columns_of_a_row_together():
    rng = np.random.default_rng(2)
    P = rng.random((30, 40)) < 0.1
    colors = dad.runtime.transforms.SparseJacobian.colour(P)
    for r in range(30):
        cs = colors[P[r]]
        assert len(cs) == len(set(cs.tolist()))
