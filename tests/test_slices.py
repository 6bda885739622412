"""Mixed indices and slices (`A[j, a..b]`, `A[a..b, j]`, `A[a..b, c..d]`) and assignment to
rows, slices and blocks (`A[i] = v;`, `x[a..b] += y;`, `A[a..b, j] = s;`), as the language
contract states them.

Values are compared with NumPy; derivatives (grad, grad with checkpoint=true, hvp, jvp, vjp)
with central finite differences and, between forward and reverse mode, with the dot-product
test <J v, w> = <v, J^T w>. Overlapping assignments must behave as if the right side were
evaluated first. Mistakes give compile errors at the right line and column, or run-time
IndexError / ValueError naming the line and the actual sizes.
"""
from __future__ import annotations

import numpy as np
import pytest

import dad
from dad.frontend import CompileError, compile_to_ir
from dad.lang.printer import print_module
from generators import partial_difference

RNG = np.random.default_rng(7)

# ----------------------------------------------------------------------------- reads
READS = """
fn row_part(A: f64[n, m], j: i64, a: i64, b: i64) -> f64[m] {
    var out = zeros(m);
    out[0..b - a] = A[j, a..b];
    return out;
}
fn row_part_chained(A: f64[n, m], j: i64, a: i64, b: i64) -> f64 { return sum(A[j][a..b] * A[j, a..b]); }
fn col_part(A: f64[n, m], j: i64, a: i64, b: i64) -> f64 { return sum(exp(A[a..b, j])) + max(A[a..b, j]); }
fn block_sum(A: f64[n, m], a: i64, b: i64, c: i64, d: i64) -> f64 { return sum(A[a..b, c..d] * 2.0); }
fn block_mv(A: f64[n, m], x: f64[m]) -> f64[n] {
    var y = zeros(n);
    y[0..n - 1] = matvec(A[1..n, 1..m], x[1..m]);
    return y;
}
fn take(v: f64[k]) -> f64 { return dot(v, v) + float(k); }
fn col_call(A: f64[n, m], j: i64) -> f64 { return take(A[0..n, j]) + take(A[1..n, 0..2][0]); }
fn col_copy(A: f64[n, m], j: i64) -> f64[n] { var c = copy(A[0..n, j]); c[0] = -1.0; return c + A[0..n, j]; }
fn t3(T: f64[p, q, r], i: i64, a: i64, b: i64) -> f64 {
    return sum(T[i, a..b]) + 10.0 * sum(T[a..b, 1]) + 100.0 * sum(T[a..b, i, 1..r]) + 1000.0 * sum(T[0..p, 1, 2]);
}
"""


@pytest.fixture(scope="module")
def reads():
    return dad.compile(READS, filename="reads.dad")


def test_mixed_index_reads_match_numpy(reads):
    A = RNG.standard_normal((5, 4))
    out = reads.row_part(A, 2, 1, 4)
    assert np.array_equal(out[:3], A[2, 1:4]) and np.all(out[3:] == 0)
    assert reads.row_part_chained(A, 3, 0, 3) == pytest.approx(np.sum(A[3, 0:3] ** 2))
    assert reads.col_part(A, 1, 1, 4) == pytest.approx(np.sum(np.exp(A[1:4, 1])) + A[1:4, 1].max())
    assert reads.block_sum(A, 1, 4, 2, 4) == pytest.approx(2 * A[1:4, 2:4].sum())
    assert reads.block_sum(A, 2, 2, 0, 4) == 0.0  # an empty block
    x = RNG.standard_normal(4)
    assert np.allclose(reads.block_mv(A, x), np.r_[A[1:, 1:] @ x[1:], 0.0])
    assert reads.col_call(A, 3) == pytest.approx(A[:, 3] @ A[:, 3] + 5 + A[1, 0:2] @ A[1, 0:2] + 2)
    assert np.allclose(reads.col_copy(A, 2), np.r_[-1.0, A[1:, 2]] + A[:, 2])
    T = RNG.standard_normal((4, 3, 5))
    want = T[2, 0:2].sum() + 10 * T[0:2, 1].sum() + 100 * T[0:2, 2, 1:].sum() + 1000 * T[:, 1, 2].sum()
    assert reads.t3(T, 2, 0, 2) == pytest.approx(want)


def test_row_part_is_a_view_and_a_column_is_gathered():
    ir = print_module(compile_to_ir(
        "fn f(A: f64[n, m], j: i64) -> f64 { return sum(A[j, 1..m]) + sum(A[1..n, j]); }", "t.dad"))
    # the row part: memref.row then memref.slice, no allocation; the column: one allocation
    assert ir.count("memref.row") == 1 and ir.count("memref.slice") == 1
    assert ir.count("memref.alloc") == 1


# ----------------------------------------------------------------------------- writes
WRITES = """
fn w_row(A: f64[n, m], v: f64[m]) -> f64[n, m] { var B = copy(A); B[1] = v; B[2] += v; B[0] *= 2.0; B[3] -= 1; return B; }
fn w_slice(x: f64[n], y: f64[k]) -> f64[n] { var z = copy(x); z[1..1 + k] = y; z[0..2] /= 4.0; z[n - 2..n] += y[0..2]; return z; }
fn w_row_part(A: f64[n, m], v: f64[k]) -> f64[n, m] { var B = copy(A); B[0, 1..1 + k] += v; B[1, 0..k] = v * v; B[2, 2..m] = 7.0; return B; }
fn w_col(A: f64[n, m], v: f64[n]) -> f64[n, m] { var B = copy(A); B[0..n, 1] = v; B[1..n, 0] -= v[0..n - 1]; B[0..2, 2] *= 3.0; return B; }
fn w_block(A: f64[n, m], C: f64[p, q]) -> f64[n, m] { var B = copy(A); B[1..1 + p, 0..q] += C; B[0..2, 2..4] = 0.5; B[2..4, 1..3] /= C[0..2, 0..2]; return B; }
fn w_fill(x: f64[n]) -> f64[n] { var z = copy(x); z = 3.0; z[1] = x[0]; return z; }
fn w_int() -> i64[6] { var c = zeros(6, dtype=i64); c[0..6] = 7; c[1..4] /= 2; c[3..6] *= c[0..3]; return c; }
fn w_f32(x: f32[n]) -> f32[n] { var y = copy(x); y[1..n] += 0.5 * x[0..n - 1]; return y; }
fn w_3d(T: f64[p, q, r], v: f64[q]) -> f64[p, q, r] { var U = copy(T); U[1, 0..q, 2] = v; U[0..p, 1, 0..2] += 1.0; U[2] *= -1.0; return U; }
"""


@pytest.fixture(scope="module")
def writes():
    return dad.compile(WRITES, filename="writes.dad")


def test_part_assignments_match_numpy(writes):
    A = RNG.standard_normal((5, 4))
    v = RNG.standard_normal(4)
    B = A.copy(); B[1] = v; B[2] += v; B[0] *= 2; B[3] -= 1
    assert np.array_equal(writes.w_row(A, v), B)
    x, y = RNG.standard_normal(6), RNG.standard_normal(3)
    z = x.copy(); z[1:4] = y; z[0:2] /= 4; z[4:6] += y[:2]
    assert np.array_equal(writes.w_slice(x, y), z)
    B = A.copy(); B[0, 1:4] += y; B[1, 0:3] = y * y; B[2, 2:] = 7
    assert np.array_equal(writes.w_row_part(A, y), B)
    u = RNG.standard_normal(5)
    B = A.copy(); B[:, 1] = u; B[1:, 0] -= u[:-1]; B[0:2, 2] *= 3
    assert np.array_equal(writes.w_col(A, u), B)
    C = RNG.standard_normal((3, 2)) + 3.0
    B = A.copy(); B[1:4, 0:2] += C; B[0:2, 2:4] = 0.5; B[2:4, 1:3] /= C[0:2, 0:2]
    assert np.array_equal(writes.w_block(A, C), B)
    assert np.array_equal(writes.w_fill(x), np.r_[3.0, x[0], [3.0] * 4])
    c = np.full(6, 7); c[1:4] //= 2; c[3:6] *= c[0:3].copy()
    assert np.array_equal(writes.w_int(), c)
    xf = RNG.standard_normal(5).astype(np.float32)
    yf = xf.copy(); yf[1:] += np.float32(0.5) * xf[:-1]
    out = writes.w_f32(xf)
    assert out.dtype == np.float32 and np.array_equal(out, yf)
    T, w = RNG.standard_normal((3, 4, 5)), RNG.standard_normal(4)
    U = T.copy(); U[1, :, 2] = w; U[:, 1, 0:2] += 1; U[2] *= -1
    assert np.array_equal(writes.w_3d(T, w), U)


# ----------------------------------------------------------------------------- aliasing
ALIAS = """
fn shift_right(x: f64[n]) -> f64[n] { var y = copy(x); y[1..n] = y[0..n - 1]; return y; }
fn shift_left(x: f64[n]) -> f64[n] { var y = copy(x); y[0..n - 1] = y[1..n]; return y; }
fn acc_right(x: f64[n]) -> f64[n] { var y = copy(x); y[1..n] += y[0..n - 1]; return y; }
fn row_from_row(A: f64[n, m]) -> f64[n, m] { var B = copy(A); B[1..n] = B[0..n - 1]; B[0] += B[1]; return B; }
fn diag_block(A: f64[n, n]) -> f64[n, n] { var B = copy(A); B[1..n, 1..n] -= B[0..n - 1, 0..n - 1]; return B; }
fn col_from_row(A: f64[n, n]) -> f64[n, n] { var B = copy(A); B[0..n, 0] = B[0]; return B; }
fn through_let(x: f64[n]) -> f64[n] { var y = copy(x); let z = y; y[1..n] = z[0..n - 1]; return y; }
fn whole_from_part(x: f64[n]) -> f64[n] { var y = copy(x); y[0..n] *= y; return y; }
fn scalar_once(x: f64[n]) -> f64[n] { var y = copy(x); y[0..n] -= y[0]; y[1..n] += sum(y); return y; }
"""


def test_overlapping_right_side_is_read_first():
    m = dad.compile(ALIAS, filename="alias.dad")
    x = np.arange(1.0, 7.0)
    assert np.array_equal(m.shift_right(x), np.r_[1.0, x[:-1]])
    assert np.array_equal(m.shift_left(x), np.r_[x[1:], 6.0])
    assert np.array_equal(m.acc_right(x), np.r_[x[0], x[1:] + x[:-1]])
    A = RNG.standard_normal((4, 4))
    B = A.copy(); B[1:] = B[:-1].copy(); B[0] += B[1]
    assert np.array_equal(m.row_from_row(A), B)
    B = A.copy(); B[1:, 1:] -= B[:-1, :-1].copy()
    assert np.array_equal(m.diag_block(A), B)
    B = A.copy(); B[:, 0] = B[0].copy()
    assert np.array_equal(m.col_from_row(A), B)
    assert np.array_equal(m.through_let(x), np.r_[1.0, x[:-1]])
    assert np.array_equal(m.whole_from_part(x), x * x)
    y = x - x[0]
    y[1:] += y.sum()  # a scalar right side is evaluated once, before any element is written
    assert np.array_equal(m.scalar_once(x), y)


# ----------------------------------------------------------------------------- derivatives
AD = """
fn heat(u0: f64[n], A: f64[n, m], c: f64) -> f64 {
    var u = copy(u0);
    var B = copy(A);
    for t in 0..3 {
        u[1..n - 1] += c * (u[0..n - 2] - 2.0 * u[1..n - 1] + u[2..n]);
        u[1..n] = sin(u[0..n - 1]) + u[1..n];         # overlapping right side
        B[0..n, t] *= u;                              # a column
        B[t] += B[t + 1];                             # a row from a row
        B[1..n, 1..m] -= 0.1 * B[0..n - 1, 0..m - 1]; # a block from an overlapping block
    }
    var s = sum(B[1, 1..m] * B[0..m - 1, 2]);         # a row part and a column part
    s += dot(u[1..n], B[1..n, 0]) + sum(B[0..2, 1..3] * B[2..4, 0..2]);
    return s + sum(u * u) * c;
}
fn g = grad(heat);
fn gc = grad(heat, checkpoint=true);
fn hv = hvp(heat, wrt=u0);
fn jv = jvp(heat);
fn vj = vjp(heat);

fn parts(x: f64[n], A: f64[n, n]) -> f64[n, n] {
    var B = copy(A);
    B[0] = x * x;
    B[1..n, 0] += exp(x[0..n - 1]);
    B[1..n, 1..n] *= B[0..n - 1, 0..n - 1];
    B[2, 0..2] = 3.0;
    return B;
}
fn pj = jvp(parts);
fn pv = vjp(parts);
"""


@pytest.fixture(scope="module")
def ad():
    return dad.compile(AD, filename="ad.dad")


def _ad_point():
    return RNG.standard_normal(6) * 0.5, RNG.standard_normal((6, 4)) * 0.5, 0.3


def test_grad_and_checkpointed_grad_match_finite_differences(ad):
    args = _ad_point()
    g = ad.g(*args)
    gc = ad.gc(*args)
    for k in range(3):
        d = RNG.standard_normal(np.shape(args[k])) if k < 2 else 1.0
        want = partial_difference(ad.heat, args, k, d, 1e-6)
        assert np.sum(g[k] * d) == pytest.approx(want, rel=1e-6, abs=1e-8)
        assert np.allclose(gc[k], g[k], rtol=1e-12, atol=1e-14)


def test_hvp_matches_finite_differences_of_the_gradient(ad):
    args = _ad_point()
    v = RNG.standard_normal(6)
    want = partial_difference(lambda *a: ad.g(*a)[0], args, 0, v, 1e-6)
    assert np.allclose(ad.hv(*args, v), want, rtol=1e-5, atol=1e-7)


def test_jvp_vjp_dot_product_and_finite_differences(ad):
    args = _ad_point()
    du, dA, dc = RNG.standard_normal(6), RNG.standard_normal((6, 4)), 0.7
    out, tangent = ad.jv(*args, du, dA, dc)
    assert out == pytest.approx(ad.heat(*args))
    fd = sum(partial_difference(ad.heat, args, k, d, 1e-6) for k, d in enumerate((du, dA, dc)))
    assert tangent == pytest.approx(fd, rel=1e-6)
    w = 1.3
    _, ub, Ab, cb = ad.vj(*args, w)
    assert tangent * w == pytest.approx(np.sum(ub * du) + np.sum(Ab * dA) + cb * dc, rel=1e-12)
    # an array-valued function: <J v, w> = <v, J^T w>
    x, A = RNG.standard_normal(5), RNG.standard_normal((5, 5))
    dx, dA, W = RNG.standard_normal(5), RNG.standard_normal((5, 5)), RNG.standard_normal((5, 5))
    out, jv = ad.pj(x, A, dx, dA)
    assert np.array_equal(out, ad.parts(x, A))
    fd = partial_difference(ad.parts, (x, A), 0, dx, 1e-6) + partial_difference(ad.parts, (x, A), 1, dA, 1e-6)
    assert np.allclose(jv, fd, rtol=1e-6, atol=1e-8)
    _, xb, Ab = ad.pv(x, A, W)
    assert np.sum(jv * W) == pytest.approx(np.sum(xb * dx) + np.sum(Ab * dA), rel=1e-12)


# ----------------------------------------------------------------------------- errors
COMPILE_ERRORS = [
    # (source, line, col, message substring)
    ("fn f(A: f64[n, 3], r: f64[2]) -> f64 {\n    var B = copy(A);\n    B[0] = r;\n    return 0.0;\n}",
     3, 12, "shape mismatch: expected f64[3], found f64[2]"),
    ("fn f(x: f64[n]) -> f64 {\n    x[0..2] = 1.0;\n    return 0.0;\n}",
     2, 5, "cannot update an element of 'x': it is a parameter"),
    ("fn f(n: i64) -> f64 {\n    var A = zeros(n, n);\n    A[0, 1..2, 3] = 1.0;\n    return 0.0;\n}",
     3, 5, "needs at most 2 indices, got 3"),
    ("fn f(n: i64) -> f64 {\n    var A = zeros(n, n);\n    A[0..2, 1] = zeros(n, n);\n    return 0.0;\n}",
     3, 18, "type mismatch: expected f64[?], found f64[?, ?]"),
    ("fn f(n: i64) -> f64 {\n    var c = zeros(n, dtype=i64);\n    c[0..2] = 1.5;\n    return 0.0;\n}",
     3, 15, "expected i64, found a float"),
    ("fn f(x: f64[n]) -> f64 {\n    return sum(x[0..2, 1]);\n}", 2, 16, "index rank mismatch"),
    ("fn f(A: f64[n, m]) -> f64 {\n    return sum(A[0..1.5, 0]);\n}", 2, 21, "index must be i64, found f64"),
]


@pytest.mark.parametrize("src,line,col,msg", COMPILE_ERRORS)
def test_compile_errors(src, line, col, msg):
    with pytest.raises(CompileError) as ei:
        compile_to_ir(src, "t.dad")
    err = ei.value
    found = [(d.span.line, d.span.col, d.message) for d in err.diagnostics]
    assert any((ln, c) == (line, col) and msg in m for ln, c, m in found), str(err)
    assert "Traceback" not in str(err)


RUNTIME = """
fn col(A: f64[n, m], j: i64, a: i64, b: i64) -> f64 {
    return sum(A[a..b, j]);
}
fn put(x: f64[n], y: f64[k], a: i64, b: i64) -> f64[n] {
    var z = zeros(n);
    z[a..b] = y;
    return z;
}
fn put_block(A: f64[n, m], C: f64[p, q]) -> f64[n, m] {
    var B = copy(A);
    B[0..2, 1..3] += C;
    return B;
}
fn put_row(A: f64[n, m], i: i64) -> f64[n, m] {
    var B = copy(A);
    B[i, 1..m] = 0.0;
    return B;
}
"""


@pytest.fixture(scope="module")
def rt():
    return dad.compile(RUNTIME, filename="rt.dad")


def test_runtime_index_errors_give_line_and_values(rt):
    A = np.ones((3, 4))
    with pytest.raises(IndexError, match=r"rt\.dad:3:16: slice end 5 is out of bounds for axis 0 with size 3"):
        rt.col(A, 0, 1, 5)
    with pytest.raises(IndexError, match=r"rt\.dad:3:16: slice 2\.\.1 is out of bounds for axis 0"):
        rt.col(A, 0, 2, 1)
    with pytest.raises(IndexError, match=r"rt\.dad:3:16: index 4 is out of bounds for axis 1 with size 4"):
        rt.col(A, 4, 0, 2)
    with pytest.raises(IndexError, match=r"rt\.dad:3:16: index -1 is out of bounds for axis 1"):
        rt.col(A, -1, 0, 2)
    assert rt.col(A, 1, 2, 2) == 0.0  # an empty slice reads nothing
    with pytest.raises(IndexError, match=r"rt\.dad:7:5: slice -1\.\.1 is out of bounds for axis 0"):
        rt.put(np.ones(4), np.ones(2), -1, 1)
    with pytest.raises(IndexError, match=r"rt\.dad:17:5: index 3 is out of bounds for axis 0 with size 3"):
        rt.put_row(A, 3)


def test_runtime_shape_mismatch_gives_both_sizes(rt):
    with pytest.raises(ValueError, match=r"rt\.dad:7:5: shape mismatch in assignment to a part of 'z': "
                                         r"the value has size 3 on axis 0, the target 2"):
        rt.put(np.ones(4), np.ones(3), 1, 3)
    with pytest.raises(ValueError, match=r"rt\.dad:12:5: .* size 3 on axis 1, the target 2"):
        rt.put_block(np.ones((3, 4)), np.ones((2, 3)))
    assert np.array_equal(rt.put(np.ones(4), np.arange(2.0), 1, 3), [0, 0, 1, 0])
