"""The peers the harness measures dad against, each optional: JAX (jit, x64), PyTorch
(eager autograd), NumPy (primal only, `reference.py`) and C (GMM primal, `gmm.c`).

Every builder returns `(callables, note)`: a dict of zero-argument callables (primal and
derivative) or `None` when the peer is unavailable, with the reason in `note`.
"""
from __future__ import annotations

import ctypes
import math
import pathlib
import shutil
import subprocess

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
C_SOURCE = HERE / "gmm.c"


# ---------------------------------------------------------------------------------------
# JAX
# ---------------------------------------------------------------------------------------

def jax_module():
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
        import jax.numpy as jnp
        return jax, jnp, f"jax {jax.__version__}"
    except Exception as e:  # not installed, or broken
        return None, None, f"JAX not available ({type(e).__name__}: {e})"[:200]


def _jax_block(x):
    import jax
    return jax.block_until_ready(x)


def jax_gmm(g):
    jax, jnp, note = jax_module()
    if jax is None:
        return None, note
    k, d = g.means.shape
    n = g.x.shape[0]
    rows = [r for c in range(d) for r in range(c + 1, d)]
    cols = [c for c in range(d) for r in range(c + 1, d)]

    def lse(a, axis=-1):
        mx = jax.lax.stop_gradient(jnp.max(a, axis=axis, keepdims=True))
        return jnp.log(jnp.sum(jnp.exp(a - mx), axis=axis)) + jnp.squeeze(mx, axis)

    def obj(alphas, means, icf, x, gamma, m):
        qd = jnp.exp(icf[:, :d])
        q = jnp.zeros((k, d, d)).at[:, jnp.arange(d), jnp.arange(d)].set(qd)
        q = q.at[:, rows, cols].set(icf[:, d:])
        sum_qs = jnp.sum(icf[:, :d], axis=1)
        xc = x[:, None, :] - means[None, :, :]
        qxc = jnp.einsum("kab,nkb->nka", q, xc)
        main = alphas[None, :] + sum_qs[None, :] - 0.5 * jnp.sum(qxc * qxc, axis=2)
        nw = d + m + 1
        lgd = 0.25 * d * (d - 1) * math.log(math.pi) + sum(
            jax.scipy.special.gammaln(0.5 * nw + 0.5 * (1 - j)) for j in range(1, d + 1))
        c = nw * d * (jnp.log(gamma) - 0.5 * math.log(2)) - lgd
        fro = jnp.sum(qd * qd, axis=1) + jnp.sum(icf[:, d:] ** 2, axis=1)
        prior = jnp.sum(0.5 * gamma * gamma * fro - m * sum_qs) - k * c
        return (-n * d * 0.5 * math.log(2 * math.pi) + jnp.sum(lse(main, 1))
                - n * lse(alphas, 0) + prior)

    f = jax.jit(obj)
    df = jax.jit(jax.grad(obj, argnums=(0, 1, 2)))
    args = tuple(jnp.asarray(a) for a in (g.alphas, g.means, g.icf, g.x)) + (g.gamma, g.m)
    return {"primal": lambda: _jax_block(f(*args)),
            "deriv": lambda: _jax_block(df(*args))}, note + ": jit(f), jit(grad(f))"


def jax_ba(b):
    jax, jnp, note = jax_module()
    if jax is None:
        return None, note

    def residual(cam, X, w, feat):
        rot, pt = cam[0:3], X - cam[3:6]
        sq = jnp.sum(rot * rot)
        safe = jnp.where(sq != 0, sq, 1.0)
        theta = jnp.sqrt(safe)
        wv = rot / theta
        c, s = jnp.cos(theta), jnp.sin(theta)
        rotated = pt * c + jnp.cross(wv, pt) * s + wv * jnp.dot(wv, pt) * (1 - c)
        small = pt + jnp.cross(rot, pt)
        xcam = jnp.where(sq != 0, rotated, small)
        proj = xcam[:2] / xcam[2]
        rsq = jnp.sum(proj * proj)
        proj = proj * (1 + cam[9] * rsq + cam[10] * rsq * rsq)
        proj = proj * cam[6] + cam[7:9]
        return w * (proj - feat)

    def flat(params, feat):
        return residual(params[:11], params[11:14], params[14], feat)

    def objective(cams, X, w, feats, obs):
        r = jax.vmap(residual)(cams[obs[:, 0]], X[obs[:, 1]], w, feats)
        return r, 1 - w * w

    jac_one = jax.jacfwd(flat)

    def jacobian(cams, X, w, feats, obs):
        params = jnp.concatenate([cams[obs[:, 0]], X[obs[:, 1]], w[:, None]], axis=1)
        return jax.vmap(jac_one)(params, feats), jax.vmap(jax.grad(lambda wi: 1 - wi * wi))(w)

    f, df = jax.jit(objective), jax.jit(jacobian)
    args = tuple(jnp.asarray(a) for a in b.args())
    return {"primal": lambda: _jax_block(f(*args)),
            "deriv": lambda: _jax_block(df(*args))}, note + ": jit(vmap(f)), jit(vmap(jacfwd(f)))"


def jax_lstm(s):
    jax, jnp, note = jax_module()
    if jax is None:
        return None, note
    l = s.state.shape[0] // 2
    c, b = s.sequence.shape

    def obj(main, extra, state, seq):
        def step(st, xs):
            x, y = xs
            layer_in = x * extra[0]
            new = []
            for i in range(l):
                w, bias = main[2 * i], main[2 * i + 1]
                h, cell = st[2 * i], st[2 * i + 1]
                fg = jax.nn.sigmoid(layer_in * w[:b] + bias[:b])
                ig = jax.nn.sigmoid(h * w[b:2 * b] + bias[b:2 * b])
                og = jax.nn.sigmoid(layer_in * w[2 * b:3 * b] + bias[2 * b:3 * b])
                ch = jnp.tanh(h * w[3 * b:] + bias[3 * b:])
                cell = cell * fg + ig * ch
                h = og * jnp.tanh(cell)
                new += [h, cell]
                layer_in = h
            ypred = layer_in * extra[1] + extra[2]
            lse = jnp.log(jnp.sum(jnp.exp(ypred)) + 2.0)
            return jnp.stack(new), jnp.sum(y * (ypred - lse))
        _, totals = jax.lax.scan(step, state, (seq[:-1], seq[1:]))
        return -jnp.sum(totals) / ((c - 1) * b)

    f = jax.jit(obj)
    df = jax.jit(jax.grad(obj, argnums=(0, 1)))
    args = tuple(jnp.asarray(a) for a in s.args())
    return {"primal": lambda: _jax_block(f(*args)),
            "deriv": lambda: _jax_block(df(*args))}, note + ": jit(f) with lax.scan, jit(grad(f))"


# ---------------------------------------------------------------------------------------
# PyTorch (eager)
# ---------------------------------------------------------------------------------------

def torch_module():
    try:
        import torch
        torch.set_num_threads(1)
        return torch, f"torch {torch.__version__} (eager, 1 thread)"
    except Exception as e:
        return None, f"PyTorch not available ({type(e).__name__}: {e})"[:200]


def torch_gmm(g):
    torch, note = torch_module()
    if torch is None:
        return None, note
    k, d = g.means.shape
    n = g.x.shape[0]
    rows = [r for c in range(d) for r in range(c + 1, d)]
    cols = [c for c in range(d) for r in range(c + 1, d)]
    x = torch.from_numpy(g.x)

    def obj(alphas, means, icf):
        qd = torch.exp(icf[:, :d])
        q = torch.diag_embed(qd)
        q = q.index_put((torch.arange(k)[:, None], torch.tensor(rows, dtype=torch.long)[None, :],
                         torch.tensor(cols, dtype=torch.long)[None, :]), icf[:, d:])
        sum_qs = icf[:, :d].sum(1)
        xc = x[:, None, :] - means[None, :, :]
        qxc = torch.einsum("kab,nkb->nka", q, xc)
        main = alphas[None, :] + sum_qs[None, :] - 0.5 * (qxc * qxc).sum(2)
        nw = d + g.m + 1
        lgd = 0.25 * d * (d - 1) * math.log(math.pi) + sum(
            math.lgamma(0.5 * nw + 0.5 * (1 - j)) for j in range(1, d + 1))
        cw = nw * d * (math.log(g.gamma) - 0.5 * math.log(2)) - lgd
        fro = (qd * qd).sum(1) + (icf[:, d:] ** 2).sum(1)
        prior = (0.5 * g.gamma ** 2 * fro - g.m * sum_qs).sum() - k * cw
        return (-n * d * 0.5 * math.log(2 * math.pi) + torch.logsumexp(main, 1).sum()
                - n * torch.logsumexp(alphas, 0) + prior)

    params = [torch.tensor(a, requires_grad=True) for a in (g.alphas, g.means, g.icf)]

    def deriv():
        return torch.autograd.grad(obj(*params), params)

    def primal():
        with torch.no_grad():
            return obj(*params)
    return {"primal": primal, "deriv": deriv}, note


def torch_ba(b):
    torch, note = torch_module()
    if torch is None:
        return None, note
    obs = torch.from_numpy(b.obs)
    feats = torch.from_numpy(b.feats)

    def residual(cams, X, w):
        rot, pt = cams[:, 0:3], X - cams[:, 3:6]
        sq = (rot * rot).sum(1, keepdim=True)
        theta = torch.sqrt(torch.where(sq != 0, sq, torch.ones_like(sq)))
        wv = rot / theta
        c, s = torch.cos(theta), torch.sin(theta)
        rotated = pt * c + torch.cross(wv, pt, dim=1) * s + wv * (wv * pt).sum(1, keepdim=True) * (1 - c)
        xcam = torch.where(sq != 0, rotated, pt + torch.cross(rot, pt, dim=1))
        proj = xcam[:, :2] / xcam[:, 2:3]
        rsq = (proj * proj).sum(1, keepdim=True)
        proj = proj * (1 + cams[:, 9:10] * rsq + cams[:, 10:11] * rsq * rsq)
        proj = proj * cams[:, 6:7] + cams[:, 7:9]
        return w[:, None] * (proj - feats)

    cams, X, w = (torch.from_numpy(a) for a in (b.cams, b.X, b.w))

    def primal():
        with torch.no_grad():
            return residual(cams[obs[:, 0]], X[obs[:, 1]], w), 1 - w * w

    def deriv():
        # Per-observation 2 x 15 blocks: two reverse sweeps over all observations at once
        # (observation i's residuals depend on its own gathered parameters only).
        params = torch.cat([cams[obs[:, 0]], X[obs[:, 1]], w[:, None]], 1).requires_grad_(True)
        r = residual(params[:, :11], params[:, 11:14], params[:, 14])
        rows = []
        for k in range(2):
            (g,) = torch.autograd.grad(r[:, k].sum(), params, retain_graph=k == 0)
            rows.append(g)
        return torch.stack(rows, 1), -2 * w
    return {"primal": primal, "deriv": deriv}, note + "; Jacobian: 2 batched reverse sweeps"


def torch_lstm(s):
    torch, note = torch_module()
    if torch is None:
        return None, note
    l = s.state.shape[0] // 2
    c, b = s.sequence.shape
    seq, state = torch.from_numpy(s.sequence), torch.from_numpy(s.state)

    def obj(main, extra):
        st = [state[i] for i in range(2 * l)]
        total = 0.0
        for t in range(c - 1):
            layer_in = seq[t] * extra[0]
            for i in range(l):
                w, bias = main[2 * i], main[2 * i + 1]
                fg = torch.sigmoid(layer_in * w[:b] + bias[:b])
                ig = torch.sigmoid(st[2 * i] * w[b:2 * b] + bias[b:2 * b])
                og = torch.sigmoid(layer_in * w[2 * b:3 * b] + bias[2 * b:3 * b])
                ch = torch.tanh(st[2 * i] * w[3 * b:] + bias[3 * b:])
                st[2 * i + 1] = st[2 * i + 1] * fg + ig * ch
                st[2 * i] = og * torch.tanh(st[2 * i + 1])
                layer_in = st[2 * i]
            ypred = layer_in * extra[1] + extra[2]
            lse = torch.log(torch.exp(ypred).sum() + 2.0)
            total = total + (seq[t + 1] * (ypred - lse)).sum()
        return -total / ((c - 1) * b)

    params = [torch.tensor(a, requires_grad=True) for a in (s.main_params, s.extra_params)]

    def primal():
        with torch.no_grad():
            return obj(*params)

    def deriv():
        return torch.autograd.grad(obj(*params), params)
    return {"primal": primal, "deriv": deriv}, note


# ---------------------------------------------------------------------------------------
# NumPy and C
# ---------------------------------------------------------------------------------------

_f64p = ctypes.POINTER(ctypes.c_double)


def build_c(tmpdir: pathlib.Path):
    """Compile gmm.c with cc -O3 -march=native -ffp-contract=off; (library or None, note)."""
    cc = shutil.which("cc")
    if cc is None:
        return None, "no `cc` on PATH: C skipped"
    out = tmpdir / "libadbench_gmm.so"
    cmd = [cc, "-O3", "-march=native", "-ffp-contract=off", "-shared", "-fPIC",
           str(C_SOURCE), "-o", str(out), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"`cc` failed: {r.stderr.strip()[:300]}"
    lib = ctypes.CDLL(str(out))
    lib.gmm_objective.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int] + [_f64p] * 4 + \
        [ctypes.c_double, ctypes.c_int]
    lib.gmm_objective.restype = ctypes.c_double
    version = subprocess.run([cc, "--version"], capture_output=True, text=True)
    first = (version.stdout.splitlines() or ["?"])[0]
    return lib, f"cc -O3 -march=native -ffp-contract=off ({first})"


def c_gmm(lib, g):
    if lib is None:
        return None
    d, k, n = g.sizes
    arrs = [np.ascontiguousarray(a) for a in (g.alphas, g.means, g.icf, g.x)]
    ptrs = [a.ctypes.data_as(_f64p) for a in arrs]
    return lambda: lib.gmm_objective(d, k, n, *ptrs, g.gamma, g.m)
