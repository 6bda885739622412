"""Independent NumPy implementations of ADBench's objectives, written from its definitions
(`src/cpp/shared/gmm.h`, `ba.h`, `lstm.h` of github.com/microsoft/ADBench), plus the
assembly of ADBench's sparse (CSR) BA Jacobian from dense per-observation blocks.

These are vectorised over points / observations / cells (not the loop structure of the
`.dad` programs), so agreement is evidence, not a copy.
"""
from __future__ import annotations

import math

import numpy as np

BA_NCAMPARAMS = 11


# ---------------------------------------------------------------------------------------
# GMM
# ---------------------------------------------------------------------------------------

def _logsumexp(a: np.ndarray, axis=-1) -> np.ndarray:
    mx = np.max(a, axis=axis, keepdims=True)
    return np.log(np.sum(np.exp(a - mx), axis=axis)) + np.squeeze(mx, axis=axis)


def icf_to_q(icf: np.ndarray, d: int) -> np.ndarray:
    """The lower-triangular Q_j (k, d, d): exp of the first d entries on the diagonal, the
    rest filling the strictly-lower part column by column."""
    k = icf.shape[0]
    q = np.zeros((k, d, d))
    q[:, np.arange(d), np.arange(d)] = np.exp(icf[:, :d])
    rows, cols = [], []
    for col in range(d):
        for row in range(col + 1, d):
            rows.append(row)
            cols.append(col)
    q[:, rows, cols] = icf[:, d:]
    return q


def log_gamma_distrib(a: float, p: int) -> float:
    return 0.25 * p * (p - 1) * math.log(math.pi) + sum(
        math.lgamma(a + 0.5 * (1 - j)) for j in range(1, p + 1))


def gmm_objective(alphas, means, icf, x, gamma, m) -> float:
    k, d = means.shape
    n = x.shape[0]
    q = icf_to_q(icf, d)
    sum_qs = icf[:, :d].sum(axis=1)
    xc = x[:, None, :] - means[None, :, :]                     # (n, k, d)
    qxc = np.einsum("kab,nkb->nka", q, xc)                     # Q_j (x_i - mu_j)
    main = alphas[None, :] + sum_qs[None, :] - 0.5 * np.sum(qxc * qxc, axis=2)
    slse = float(np.sum(_logsumexp(main, axis=1)))
    const = -n * d * 0.5 * math.log(2 * math.pi)
    # Wishart prior
    nw = d + m + 1
    c = nw * d * (math.log(gamma) - 0.5 * math.log(2)) - log_gamma_distrib(0.5 * nw, d)
    fro = np.sum(np.exp(icf[:, :d]) ** 2, axis=1) + np.sum(icf[:, d:] ** 2, axis=1)
    prior = float(np.sum(0.5 * gamma * gamma * fro - m * sum_qs)) - k * c
    return const + slse - n * float(_logsumexp(alphas)) + prior


# ---------------------------------------------------------------------------------------
# Bundle adjustment
# ---------------------------------------------------------------------------------------

def rodrigues_rotate(rot: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """Rotate each pt (p, 3) by the angle-axis rot (p, 3), via R = I + sin K + (1 - cos) K^2."""
    sq = np.sum(rot * rot, axis=1)
    out = np.empty_like(pt)
    nz = sq != 0
    theta = np.sqrt(sq[nz])[:, None]
    w = rot[nz] / theta
    wxp = np.cross(w, pt[nz])
    out[nz] = (pt[nz] * np.cos(theta) + wxp * np.sin(theta)
               + w * np.sum(w * pt[nz], axis=1, keepdims=True) * (1 - np.cos(theta)))
    out[~nz] = pt[~nz] + np.cross(rot[~nz], pt[~nz])
    return out


def project(cams: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Project points X (p, 3) through cameras cams (p, 11)."""
    xcam = rodrigues_rotate(cams[:, 0:3], X - cams[:, 3:6])
    proj = xcam[:, :2] / xcam[:, 2:3]
    rsq = np.sum(proj * proj, axis=1, keepdims=True)
    proj = proj * (1 + cams[:, 9:10] * rsq + cams[:, 10:11] * rsq * rsq)
    return proj * cams[:, 6:7] + cams[:, 7:9]


def ba_objective(cams, X, w, feats, obs) -> tuple[np.ndarray, np.ndarray]:
    proj = project(cams[obs[:, 0]], X[obs[:, 1]])
    return w[:, None] * (proj - feats), 1 - w * w


class CSR:
    """ADBench's BASparseMat: rows, cols, vals of the (3p) x (11n + 3m + p) Jacobian."""

    def __init__(self, nrows, ncols, rows, cols, vals):
        self.nrows, self.ncols = nrows, ncols
        self.rows, self.cols, self.vals = rows, cols, vals

    def to_dense(self) -> np.ndarray:
        out = np.zeros((self.nrows, self.ncols))
        for r in range(self.nrows):
            s, e = self.rows[r], self.rows[r + 1]
            out[r, self.cols[s:e]] += self.vals[s:e]
        return out


def ba_sparse_jacobian(n: int, m: int, obs: np.ndarray, blocks: np.ndarray,
                       wgrad: np.ndarray) -> CSR:
    """Assemble ADBench's CSR layout from the dense blocks `blocks[i, r, :]` (derivative of
    residual r of observation i w.r.t. [camera (11), point (3), weight]) and `wgrad[i]`
    (d(1 - w_i^2)/dw_i): first two rows of 15 entries per observation, in observation order,
    then one row per weight."""
    p = obs.shape[0]
    nc = BA_NCAMPARAMS
    per = nc + 3 + 1
    rows = np.concatenate([np.arange(2 * p + 1, dtype=np.int64) * per,
                           2 * p * per + np.arange(1, p + 1, dtype=np.int64)])
    cam_cols = nc * obs[:, 0:1] + np.arange(nc)                          # (p, 11)
    pt_cols = nc * n + 3 * obs[:, 1:2] + np.arange(3)                    # (p, 3)
    w_cols = (nc * n + 3 * m + np.arange(p))[:, None]                    # (p, 1)
    cols_obs = np.concatenate([cam_cols, pt_cols, w_cols], axis=1)       # (p, 15)
    cols = np.concatenate([np.repeat(cols_obs[:, None, :], 2, axis=1).ravel(),
                           nc * n + 3 * m + np.arange(p)])
    vals = np.concatenate([np.asarray(blocks).reshape(-1), np.asarray(wgrad)])
    return CSR(3 * p, nc * n + 3 * m + p, rows, cols.astype(np.int64), vals)


def ba_flat_objective(n: int, m: int, obs, feats):
    """The residual vector (reproj rows then weight rows) as a function of the flat
    parameters [cams (11n), X (3m), w (p)]: the layout of the sparse Jacobian's columns."""
    def f(z):
        cams = z[:11 * n].reshape(n, 11)
        X = z[11 * n:11 * n + 3 * m].reshape(m, 3)
        w = z[11 * n + 3 * m:]
        r, we = ba_objective(cams, X, w, feats, obs)
        return np.concatenate([r.ravel(), we])
    return f


# ---------------------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------------------

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_objective(main_params, extra_params, state, sequence) -> float:
    l = state.shape[0] // 2
    c, b = sequence.shape
    st = state.copy()
    total = 0.0
    for t in range(c - 1):
        layer_in = sequence[t] * extra_params[0]
        for i in range(l):
            w, bias = main_params[2 * i], main_params[2 * i + 1]
            h, cell = st[2 * i], st[2 * i + 1]
            forget = _sigmoid(layer_in * w[:b] + bias[:b])
            ingate = _sigmoid(h * w[b:2 * b] + bias[b:2 * b])
            outgate = _sigmoid(layer_in * w[2 * b:3 * b] + bias[2 * b:3 * b])
            change = np.tanh(h * w[3 * b:] + bias[3 * b:])
            st[2 * i + 1] = cell * forget + ingate * change
            st[2 * i] = outgate * np.tanh(st[2 * i + 1])
            layer_in = st[2 * i]
        ypred = layer_in * extra_params[1] + extra_params[2]
        lse = math.log(float(np.sum(np.exp(ypred))) + 2.0)
        total += float(np.sum(sequence[t + 1] * (ypred - lse)))
    return -total / ((c - 1) * b)
