"""Reading (and writing) ADBench's input files, and generating inputs it does not ship.

The formats follow ADBench's `docs/FileFormat.md` and its readers (`src/cpp/shared/utils.cpp`,
`read_gmm_instance`, `read_ba_instance`, `read_lstm_instance`): whitespace-separated numbers.

- GMM: `d k n`, then alphas (k), means (k rows of d), icf (k rows of d(d+1)/2), the points
  (n rows of d; or a single point, replicated n times), then `gamma m`.
- BA: `n m p`, then one camera (11), one point (3), one weight and one feature (2); the
  reader replicates them to n cameras, m points, p weights and p features, and observation
  i pairs camera i mod n with point i mod m.
- LSTM: `l c b`, then main_params (2l rows of 4b), extra_params (3 rows of b), state
  (2l rows of b) and the sequence (c rows of b).
"""
from __future__ import annotations

import dataclasses
import math
import os
import pathlib

import numpy as np

def _data_dir() -> pathlib.Path:
    """ADBench's files: $DAD_ADBENCH_DATA, else ../shared/adbench beside the repository."""
    if os.environ.get("DAD_ADBENCH_DATA"):
        return pathlib.Path(os.environ["DAD_ADBENCH_DATA"])
    beside = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "adbench"
    return beside if beside.is_dir() else pathlib.Path("/work/shared/adbench")


DATA = _data_dir()


def _tokens(path) -> list[str]:
    return pathlib.Path(path).read_text().split()


@dataclasses.dataclass
class GMMInput:
    alphas: np.ndarray      # (k,)
    means: np.ndarray       # (k, d)
    icf: np.ndarray         # (k, d(d+1)/2)
    x: np.ndarray           # (n, d)
    gamma: float
    m: int

    @property
    def sizes(self) -> tuple[int, int, int]:
        k, d = self.means.shape
        return d, k, self.x.shape[0]

    def args(self) -> tuple:
        return (self.alphas, self.means, self.icf, self.x, self.gamma, self.m)


@dataclasses.dataclass
class BAInput:
    cams: np.ndarray        # (n, 11)
    X: np.ndarray           # (m, 3)
    w: np.ndarray           # (p,)
    feats: np.ndarray       # (p, 2)
    obs: np.ndarray         # (p, 2) int64

    @property
    def sizes(self) -> tuple[int, int, int]:
        return self.cams.shape[0], self.X.shape[0], self.w.shape[0]

    def args(self) -> tuple:
        return (self.cams, self.X, self.w, self.feats, self.obs)


@dataclasses.dataclass
class LSTMInput:
    main_params: np.ndarray  # (2l, 4b)
    extra_params: np.ndarray  # (3, b)
    state: np.ndarray        # (2l, b)
    sequence: np.ndarray     # (c, b)

    @property
    def sizes(self) -> tuple[int, int, int]:
        return self.state.shape[0] // 2, self.sequence.shape[0], self.sequence.shape[1]

    def args(self) -> tuple:
        return (self.main_params, self.extra_params, self.state, self.sequence)


class FormatError(ValueError):
    pass


def _take(tok: list[str], pos: int, count: int, path) -> tuple[np.ndarray, int]:
    if pos + count > len(tok):
        raise FormatError(f"{path}: expected {count} more numbers at token {pos}, "
                          f"file has {len(tok)} tokens")
    return np.array(tok[pos:pos + count], dtype=np.float64), pos + count


def read_gmm(path) -> GMMInput:
    tok = _tokens(path)
    d, k, n = (int(v) for v in tok[:3])
    t = d * (d + 1) // 2
    pos = 3
    alphas, pos = _take(tok, pos, k, path)
    means, pos = _take(tok, pos, k * d, path)
    icf, pos = _take(tok, pos, k * t, path)
    rest = len(tok) - pos
    if rest == d + 2:           # one point, replicated (ADBench's replicate_point)
        x1, pos = _take(tok, pos, d, path)
        x = np.tile(x1, (n, 1))
    else:
        x, pos = _take(tok, pos, n * d, path)
        x = x.reshape(n, d)
    gamma = float(tok[pos])
    m = int(tok[pos + 1])
    if pos + 2 != len(tok):
        raise FormatError(f"{path}: {len(tok) - pos - 2} unexpected trailing tokens")
    return GMMInput(alphas, means.reshape(k, d), icf.reshape(k, t), x, gamma, m)


def read_ba(path) -> BAInput:
    tok = _tokens(path)
    n, m, p = (int(v) for v in tok[:3])
    pos = 3
    cam, pos = _take(tok, pos, 11, path)
    pt, pos = _take(tok, pos, 3, path)
    w0, pos = _take(tok, pos, 1, path)
    feat, pos = _take(tok, pos, 2, path)
    if pos != len(tok):
        raise FormatError(f"{path}: {len(tok) - pos} unexpected trailing tokens")
    i = np.arange(p, dtype=np.int64)
    obs = np.stack([i % n, i % m], axis=1)
    return BAInput(np.tile(cam, (n, 1)), np.tile(pt, (m, 1)), np.full(p, w0[0]),
                   np.tile(feat, (p, 1)), np.ascontiguousarray(obs))


def read_lstm(path) -> LSTMInput:
    tok = _tokens(path)
    l, c, b = (int(v) for v in tok[:3])
    pos = 3
    main, pos = _take(tok, pos, 2 * l * 4 * b, path)
    extra, pos = _take(tok, pos, 3 * b, path)
    state, pos = _take(tok, pos, 2 * l * b, path)
    seq, pos = _take(tok, pos, c * b, path)
    if pos != len(tok):
        raise FormatError(f"{path}: {len(tok) - pos} unexpected trailing tokens")
    return LSTMInput(main.reshape(2 * l, 4 * b), extra.reshape(3, b), state.reshape(2 * l, b),
                     seq.reshape(c, b))


def read(path):
    """Read any ADBench input file, by the directory or name it has (gmm, ba, lstm)."""
    p = pathlib.Path(path)
    kind = p.parent.name if p.parent.name in ("gmm", "ba", "lstm") else p.name.split("_")[0]
    if kind.startswith("gmm"):
        return read_gmm(p)
    if kind.startswith("ba") or p.name == "test.txt":
        return read_ba(p)
    if kind.startswith("lstm"):
        return read_lstm(p)
    raise FormatError(f"{path}: cannot tell which problem the file belongs to")


# ---------------------------------------------------------------------------------------
# Writing and generating (seeded), for sizes ADBench's shipped files do not cover
# ---------------------------------------------------------------------------------------

def _fmt(a) -> str:
    return " ".join(repr(float(v)) for v in np.ravel(a))


def write_gmm(path, g: GMMInput) -> None:
    d, k, n = g.sizes
    lines = [f"{d} {k} {n}", *(_fmt(r) for r in g.alphas[:, None]), *(_fmt(r) for r in g.means),
             *(_fmt(r) for r in g.icf), *(_fmt(r) for r in g.x), f"{g.gamma!r} {g.m}"]
    pathlib.Path(path).write_text("\n".join(lines) + "\n")


def write_lstm(path, s: LSTMInput) -> None:
    l, c, b = s.sizes
    parts = [f"{l} {c} {b}", *(_fmt(r) for r in s.main_params), "", *(_fmt(r) for r in s.extra_params),
             "", *(_fmt(r) for r in s.state), "", *(_fmt(r) for r in s.sequence)]
    pathlib.Path(path).write_text("\n".join(parts) + "\n")


def generate_gmm(d: int, k: int, n: int = 1000, seed: int = 0) -> GMMInput:
    """Like ADBench's generator (uniform alphas and means, small icf, normal points),
    seeded, with gamma = 1 and m = 0 as in its data files."""
    rng = np.random.default_rng([seed, d, k, n])
    t = d * (d + 1) // 2
    return GMMInput(rng.uniform(0, 1, k), rng.uniform(0, 1, (k, d)),
                    rng.uniform(0, 1, (k, t)) * 0.1, rng.normal(size=(n, d)), 1.0, 0)


def generate_ba(n: int, m: int, p: int, seed: int = 0) -> BAInput:
    """A camera, point, weight and feature drawn like ADBench's, replicated as its reader does."""
    rng = np.random.default_rng([seed, n, m, p])
    cam = rng.uniform(-1, 1, 11)
    cam[3:6] *= 10.0
    cam[6] = 300.0 + 200.0 * rng.uniform()
    cam[9:11] *= 0.01
    i = np.arange(p, dtype=np.int64)
    return BAInput(np.tile(cam, (n, 1)), np.tile(rng.uniform(-5, 5, 3), (m, 1)),
                   np.full(p, rng.uniform()), np.tile(rng.uniform(-100, 100, 2), (p, 1)),
                   np.stack([i % n, i % m], axis=1))


def generate_lstm(l: int, c: int, b: int = 14, seed: int = 0) -> LSTMInput:
    rng = np.random.default_rng([seed, l, c, b])
    seq = np.zeros((c, b))
    seq[np.arange(c), rng.integers(0, b, c)] = 1.0   # one-hot characters
    return LSTMInput(rng.uniform(0, 1, (2 * l, 4 * b)), rng.uniform(0, 1, (3, b)),
                     rng.uniform(0, 1, (2 * l, b)), seq)


def shipped_files() -> list[pathlib.Path]:
    return sorted(p for sub in ("gmm", "ba", "lstm") for p in (DATA / sub).glob("*.txt"))


def gmm_input(d: int, k: int, n: int = 1000) -> tuple[GMMInput, str]:
    """ADBench's own file when shipped, otherwise a seeded generated one; and where it came from."""
    f = DATA / "gmm" / f"gmm_d{d}_K{k}.txt"
    if f.exists() and n == 1000:
        return read_gmm(f), f"ADBench file {f.name}"
    return generate_gmm(d, k, n), f"generated (seeded), d={d} K={k} n={n}"


def lstm_input(l: int, c: int, b: int = 14) -> tuple[LSTMInput, str]:
    f = DATA / "lstm" / f"lstm_l{l}_c{c}.txt"
    if f.exists() and b == 14:
        return read_lstm(f), f"ADBench file {f.name}"
    return generate_lstm(l, c, b), f"generated (seeded), l={l} c={c} b={b}"


def ba_files() -> list[pathlib.Path]:
    """ADBench's BA inputs, smallest first (by observations)."""
    fs = [f for f in (DATA / "ba").glob("ba*_n*_m*_p*.txt")]
    return sorted(fs, key=lambda f: int(f.stem.split("_p")[-1]))
