"""ADBench's three problems (examples/gmm.dad, ba.dad, lstm.dad) against independent NumPy
implementations (benchmarks/adbench/reference.py) on ADBench's own small inputs.

- objectives: 1e-10 relative (different summation orders, otherwise the same formulas);
- derivatives: central finite differences of the NumPy objective on a seeded subset of
  coordinates (the step is chosen per coordinate; tolerance ~1e-6 relative to the scale
  of the gradient), and the dot-product test between forward mode (`dad.jvp`) and the
  reverse-mode gradient / the Jacobian blocks (1e-10 relative);
- BA's CSR layout: assembled from dad's blocks and compared entry by entry with a dense
  finite-difference Jacobian of the NumPy residual vector.
"""
from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

import dad

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.adbench import io, reference as R  # noqa: E402

EXAMPLES = ROOT / "examples"
pytestmark = pytest.mark.skipif(not (io.DATA / "gmm").is_dir(),
                                reason=f"ADBench data not found in {io.DATA}")

_mods: dict[str, object] = {}


def mod(name):
    if name not in _mods:
        _mods[name] = dad.compile_file(str(EXAMPLES / f"{name}.dad"))
    return _mods[name]


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def fd(f, arrays, which, index, h=None):
    """Central difference of scalar f(*arrays) in arrays[which][index]."""
    x = arrays[which]
    h = h if h is not None else 1e-5 * max(1.0, abs(x[index]))
    plus = [a.copy() for a in arrays]
    minus = [a.copy() for a in arrays]
    plus[which][index] += h
    minus[which][index] -= h
    return (f(*plus) - f(*minus)) / (2 * h)


# ---------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", io.shipped_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_reader_parses_every_shipped_file(path):
    header = [int(v) for v in path.read_text().split()[:3]]
    inp = io.read(path)
    if isinstance(inp, io.GMMInput):
        d, k, n = header
        assert inp.sizes == (d, k, n)
        assert inp.icf.shape == (k, d * (d + 1) // 2) and inp.x.shape == (n, d)
        assert inp.gamma > 0 and isinstance(inp.m, int)
    elif isinstance(inp, io.BAInput):
        n, m, p = header
        assert inp.sizes == (n, m, p)
        assert inp.obs.dtype == np.int64
        assert np.array_equal(inp.obs[:, 0], np.arange(p) % n)
        assert np.array_equal(inp.obs[:, 1], np.arange(p) % m)
        assert np.all(inp.cams == inp.cams[0]) and np.all(inp.X == inp.X[0])
        assert np.all(inp.w == inp.w[0]) and np.all(inp.feats == inp.feats[0])
    else:
        l, c, b = header
        assert inp.sizes == (l, c, b)
        assert inp.main_params.shape == (2 * l, 4 * b) and inp.extra_params.shape == (3, b)
        assert inp.state.shape == (2 * l, b) and inp.sequence.shape == (c, b)
    for a in (v for v in vars(inp).values() if isinstance(v, np.ndarray)):
        assert np.all(np.isfinite(a))


def test_reader_first_values_and_round_trip(tmp_path):
    g = io.read_gmm(io.DATA / "gmm" / "gmm_d2_K5.txt")
    first = [float(v) for v in (io.DATA / "gmm" / "gmm_d2_K5.txt").read_text().split()[3:5]]
    assert list(g.alphas[:2]) == first
    io.write_gmm(tmp_path / "g.txt", g)
    g2 = io.read_gmm(tmp_path / "g.txt")
    for a, b in zip(g.args(), g2.args()):
        assert np.array_equal(a, b)
    s = io.generate_lstm(2, 5, 3)
    io.write_lstm(tmp_path / "l.txt", s)
    s2 = io.read_lstm(tmp_path / "l.txt")
    for a, b in zip(s.args(), s2.args()):
        assert np.array_equal(a, b)
    assert io.generate_gmm(3, 4, 10).alphas.tolist() == io.generate_gmm(3, 4, 10).alphas.tolist()


# ---------------------------------------------------------------------------------------
# GMM
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gmm_small():
    return io.read_gmm(io.DATA / "gmm" / "gmm_d2_K5.txt")


def test_gmm_objective_matches_numpy(gmm_small):
    assert rel(mod("gmm").gmm_objective(*gmm_small.args()), R.gmm_objective(*gmm_small.args())) < 1e-10


def test_gmm_objective_matches_numpy_generated_sizes():
    g = io.generate_gmm(5, 3, 40, seed=1)
    g.m = 2
    g.gamma = 0.7
    assert rel(mod("gmm").gmm_objective(*g.args()), R.gmm_objective(*g.args())) < 1e-10


def test_gmm_icf_layout():
    # Q = [[e^a, 0, 0], [l0, e^b, 0], [l1, l2, e^c]]: icf = [a, b, c, l0, l1, l2]
    q = R.icf_to_q(np.array([[0.1, 0.2, 0.3, 4.0, 5.0, 6.0]]), 3)[0]
    assert np.allclose(q, [[np.exp(0.1), 0, 0], [4.0, np.exp(0.2), 0], [5.0, 6.0, np.exp(0.3)]])


def test_gmm_grad_matches_finite_differences(gmm_small):
    g = gmm_small
    grads = mod("gmm").gmm_grad(*g.args())
    arrays = [g.alphas, g.means, g.icf]
    f = lambda a, mu, q: R.gmm_objective(a, mu, q, g.x, g.gamma, g.m)  # noqa: E731
    rng = np.random.default_rng(0)
    for which, arr in enumerate(arrays):
        scale = np.max(np.abs(grads[which]))
        for _ in range(4):
            idx = tuple(int(rng.integers(0, s)) for s in arr.shape)
            num = fd(f, arrays, which, idx)
            assert abs(grads[which][idx] - num) <= 1e-6 * max(scale, 1.0), (which, idx)


def test_gmm_grad_dot_product_with_jvp(gmm_small):
    g = gmm_small
    m = mod("gmm")
    grads = m.gmm_grad(*g.args())
    rng = np.random.default_rng(1)
    tang = [rng.normal(size=a.shape) for a in (g.alphas, g.means, g.icf)]
    jvp = dad.jvp(m.gmm_objective, wrt=["alphas", "means", "icf"])
    val, dot_fwd = jvp(*g.args(), *tang)
    dot_rev = sum(float(np.sum(gr * t)) for gr, t in zip(grads, tang))
    assert rel(val, R.gmm_objective(*g.args())) < 1e-10
    assert abs(dot_fwd - dot_rev) <= 1e-10 * max(abs(dot_rev), 1.0)


# ---------------------------------------------------------------------------------------
# Bundle adjustment
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ba_small():
    return io.read_ba(io.DATA / "ba" / "test.txt")


def _ba_varied(seed=3, n=3, m=5, p=9):
    """A BA input with different cameras, points, weights and features (and one camera with
    a zero rotation: the other branch of Rodrigues)."""
    rng = np.random.default_rng(seed)
    b = io.generate_ba(n, m, p, seed)
    b.cams = b.cams * (1 + 0.05 * rng.normal(size=b.cams.shape))
    b.cams[0, :3] = 0.0
    b.X = b.X + rng.normal(size=b.X.shape)
    b.w = b.w + 0.1 * rng.normal(size=p)
    b.feats = b.feats + rng.normal(size=b.feats.shape)
    b.obs = np.stack([rng.integers(0, n, p), rng.integers(0, m, p)], axis=1).astype(np.int64)
    return b


@pytest.mark.parametrize("which", ["shipped", "varied"])
def test_ba_objective_matches_numpy(ba_small, which):
    b = ba_small if which == "shipped" else _ba_varied()
    r, we = mod("ba").ba_objective(*b.args())
    r_ref, we_ref = R.ba_objective(*b.args())
    assert r.shape == r_ref.shape and we.shape == we_ref.shape
    assert rel(r, r_ref) < 1e-10
    assert rel(we, we_ref) < 1e-10


@pytest.mark.parametrize("which", ["shipped", "varied"])
def test_ba_jacobian_blocks_and_csr_match_finite_differences(ba_small, which):
    b = ba_small if which == "shipped" else _ba_varied()
    n, m, p = b.sizes
    jac, wjac = mod("ba").ba_jacobian(*b.args())
    assert jac.shape == (p, 2, 15) and wjac.shape == (p,)
    assert np.array_equal(wjac, -2.0 * b.w)
    csr = R.ba_sparse_jacobian(n, m, b.obs, jac, wjac)
    assert csr.rows.shape == (3 * p + 1,) and csr.rows[-1] == 31 * p == len(csr.cols) == len(csr.vals)
    dense = csr.to_dense()
    f = R.ba_flat_objective(n, m, b.obs, b.feats)
    z = np.concatenate([b.cams.ravel(), b.X.ravel(), b.w])
    num = np.zeros_like(dense)
    for j in range(z.size):
        h = 1e-6 * max(1.0, abs(z[j]))
        zp, zm = z.copy(), z.copy()
        zp[j] += h
        zm[j] -= h
        num[:, j] = (f(zp) - f(zm)) / (2 * h)
    scale = np.max(np.abs(num), axis=1, keepdims=True)
    assert np.all(np.abs(dense - num) <= 1e-6 * np.maximum(scale, 1.0))


def test_ba_jacobian_dot_product_with_jvp():
    b = _ba_varied(seed=5)
    m = mod("ba")
    jac, wjac = m.ba_jacobian(*b.args())
    rng = np.random.default_rng(2)
    tc, tx, tw = rng.normal(size=b.cams.shape), rng.normal(size=b.X.shape), rng.normal(size=b.w.shape)
    jvp = dad.jvp(m.ba_objective, wrt=["cams", "X", "w"])
    r, we, r_dot, we_dot = jvp(*b.args(), tc, tx, tw)
    t_obs = np.concatenate([tc[b.obs[:, 0]], tx[b.obs[:, 1]], tw[:, None]], axis=1)  # (p, 15)
    expect = np.einsum("prc,pc->pr", jac, t_obs)
    assert rel(r_dot, expect) < 1e-10
    assert rel(we_dot, wjac * tw) < 1e-12


# ---------------------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lstm_small():
    return io.read_lstm(io.DATA / "lstm" / "lstm_l2_c1024.txt")


def test_lstm_objective_matches_numpy(lstm_small):
    s = lstm_small
    state0 = s.state.copy()
    assert rel(mod("lstm").lstm_objective(*s.args()), R.lstm_objective(*s.args())) < 1e-10
    assert np.array_equal(s.state, state0)   # the caller's state is not modified


def test_lstm_objective_matches_numpy_four_layers():
    s = io.read_lstm(io.DATA / "lstm" / "lstm_l4_c1024.txt")
    s.sequence = s.sequence[:64]
    assert rel(mod("lstm").lstm_objective(*s.args()), R.lstm_objective(*s.args())) < 1e-10


def test_lstm_grad_matches_finite_differences(lstm_small):
    s = lstm_small
    s = io.LSTMInput(s.main_params, s.extra_params, s.state, s.sequence[:40])
    gm, ge = mod("lstm").lstm_grad(*s.args())
    f = lambda mp, ep: R.lstm_objective(mp, ep, s.state, s.sequence)  # noqa: E731
    arrays = [s.main_params, s.extra_params]
    rng = np.random.default_rng(4)
    for which, (arr, gr) in enumerate(zip(arrays, (gm, ge))):
        scale = np.max(np.abs(gr))
        for _ in range(5):
            idx = tuple(int(rng.integers(0, k)) for k in arr.shape)
            num = fd(f, arrays, which, idx)
            assert abs(gr[idx] - num) <= 1e-6 * scale, (which, idx)


def test_lstm_grad_dot_product_with_jvp(lstm_small):
    s = lstm_small
    m = mod("lstm")
    gm, ge = m.lstm_grad(*s.args())
    rng = np.random.default_rng(5)
    tm, te = rng.normal(size=gm.shape), rng.normal(size=ge.shape)
    jvp = dad.jvp(m.lstm_objective, wrt=["main_params", "extra_params"])
    val, dot_fwd = jvp(*s.args(), tm, te)
    dot_rev = float(np.sum(gm * tm) + np.sum(ge * te))
    assert rel(val, R.lstm_objective(*s.args())) < 1e-10
    assert abs(dot_fwd - dot_rev) <= 1e-10 * max(abs(dot_rev), 1e-3)


def test_ba_jacobian_transform_agrees_with_vjp_blocks():
    # `obs_jac = jacobian(obs_residual, wrt=params)` (the array formulation) gives the same
    # 2 x 15 blocks as the two reverse sweeps `ba_jacobian` uses.
    b = _ba_varied(seed=7)
    m = mod("ba")
    jac, _ = m.ba_jacobian(*b.args())
    for i in range(b.sizes[2]):
        c, q = b.obs[i]
        params = np.concatenate([b.cams[c], b.X[q], b.w[i:i + 1]])
        assert rel(m.obs_jac(params, b.feats[i]), jac[i]) < 1e-12
        assert rel(m.obs_residual(params, b.feats[i]), R.ba_objective(*b.args())[0][i]) < 1e-10
