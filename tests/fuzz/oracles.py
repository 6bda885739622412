"""Oracles: what a generated program's compiled functions must satisfy.

Contract: `check_program(mod, prefix, seed, uses_f32=False, mode="random") -> Outcome` calls the functions
`{prefix}_f` etc. of the compiled module `mod` (whichever of the derived functions `gen.py`
declared are present) at inputs drawn from `seed` (`mode` "zeros" or "ties" puts exact
zeros or repeated values in them), and returns the first failure found, or
an outcome of kind "ok" (or "invalid" when the plain function itself raises one of the
documented run-time errors: the generator is meant never to produce those). Failure kinds:

  crash          any exception that is not dad's CompileError or a documented run-time error
  refusal        CompileError / ADError for a program the reference says is differentiable
  disagreement   an oracle does not hold; `oracle` names it:
    primal        a derived function's primal result differs from the plain call (bit for bit)
    dot           forward versus reverse: <J t, w> = <t, J^T w> (jvp against grad or vjp)
    vjp           vjp with out_bar = w against w * grad
    fd            jvp against central finite differences (where three step sizes agree and
                  the tangent does not swing through the secant within one step)
    ckpt          grad(f, checkpoint=true) against grad(f) (a few ulps, or what forward
                  mode's own rounding shows where adjoint sums cancel)
    nested        hvp against hessian . v against jvp(grad) (and its checkpointed form)
    fd2           hvp against central differences of the gradient
    nonfinite     one mode gives NaN/inf where another is finite
    raises        a derived function raises a run-time error that the plain call does not
`hang` (timeout) and `crash` by signal are decided by the runner, which owns the process.

`compile_and_check(text, programs) -> {prefix: Outcome}` compiles a module made of several
programs and checks each; if the module does not compile, each program is compiled alone so
that a refusal or crash is blamed on the program that causes it.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass

import numpy as np

RUNTIME_ERRORS = (IndexError, ZeroDivisionError, ValueError, MemoryError)


@dataclass
class Outcome:
    kind: str                 # ok, invalid, crash, refusal, disagreement, hang
    oracle: str = ""
    detail: str = ""

    def signature(self) -> str:
        """What a minimised program must keep: the kind, the oracle, and for crashes and
        refusals the exception type or the diagnostic's wording without names."""
        if self.kind in ("crash", "refusal"):
            import re
            lines = self.detail.splitlines() if self.detail else [""]
            if self.kind == "refusal":   # every diagnostic: a candidate may not add errors
                lines = [ln for ln in lines if "error:" in ln] or lines[:1]
            else:
                lines = lines[:1]
            heads = []
            for head in lines:
                head = re.sub(r"<string>:\d+:\d+: ", "", head)
                head = re.sub(r"'[^']*'|\b[pv]\d+\w*|\d+", "_", head)
                heads.append(head[:60])
            return f"{self.kind}:{self.oracle}:" + "|".join(heads)
        return f"{self.kind}:{self.oracle}"

    def to_json(self):
        return {"kind": self.kind, "oracle": self.oracle, "detail": self.detail}


class Disagree(Exception):
    def __init__(self, oracle, detail):
        super().__init__(detail)
        self.oracle, self.detail = oracle, detail


def _bits_equal(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    both_nan = np.isnan(a) & np.isnan(b)
    same = a.view(np.int64) == b.view(np.int64)
    return bool(np.all(same | both_nan))


def _peak(a) -> float:
    """The largest finite magnitude in `a` (0 if none): a scale for tolerances that a NaN or
    inf entry elsewhere does not turn into NaN."""
    a = np.abs(np.asarray(a, dtype=np.float64))
    return float(np.max(a[np.isfinite(a)], initial=0.0))


def _close(got, want, tol):
    """Elementwise: both finite and within `tol`, or the same non-finite value (NaN with NaN,
    inf with inf of the same sign): an infinite tolerance never lets a finite value pass
    for an infinite one."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        near = np.isfinite(got) & np.isfinite(want) & (np.abs(got - want) <= tol)
        return near | (np.isnan(got) & np.isnan(want)) | (np.isinf(want) & (got == want))


def _flat(*parts):
    return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])


def inputs(seed: int, mode: str = "random"):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 6))
    args = dict(x=rng.uniform(-1, 1, n), y=float(rng.uniform(-1, 1)),
                A=rng.uniform(-1, 1, (n, n)), k=int(rng.integers(0, 5)),
                b=bool(rng.random() < 0.5))
    if mode == "zeros":
        args["x"][rng.random(n) < 0.5] = 0.0
        args["A"][rng.random((n, n)) < 0.3] = 0.0
        args["y"] = 0.0
    elif mode == "ties":
        args["x"][1] = args["x"][0]
        args["x"][n - 1] = args["x"][0]
        args["A"][:, 1] = args["A"][:, 0]
        args["y"] = float(args["x"][0])
    tang = dict(x=rng.standard_normal(n), y=float(rng.standard_normal()),
                A=rng.standard_normal((n, n)))
    return n, args, tang, rng


class _Checker:
    def __init__(self, mod, prefix, seed, uses_f32, mode):
        self.mod, self.P, self.f32 = mod, prefix, uses_f32
        self.n, self.args, self.t, self.rng = inputs(seed, mode)
        # exact zeros and ties put the point on kinks by design, where the reference fixes
        # the derivative (abs'(0) = 0, ties split evenly) and differences along one line
        # need not show it (three tied elements, a jump of ceil beside a tie): there
        # differences only say whether the derivative may be finite
        self.special = mode != "random"
        self.f32_range = False   # see checks(): derivatives beyond f32's range
        self.rtol = 1e-5 if uses_f32 else 1e-9

    def fn(self, name):
        try:
            return getattr(self.mod, f"{self.P}_{name}")
        except AttributeError:
            return None

    def call(self, name, *extra, at=None):
        a = self.args if at is None else at
        try:
            return self.fn(name)(a["x"], a["y"], a["A"], a["k"], a["b"], *extra)
        except RUNTIME_ERRORS as exc:
            raise Disagree("raises", f"{self.P}_{name} raised {type(exc).__name__}: {exc}")

    def shifted(self, h, d=None):
        d = self.t if d is None else d
        a = dict(self.args)
        a["x"] = self.args["x"] + h * d["x"]
        if "y" in d:
            a["y"] = self.args["y"] + h * d["y"]
        if "A" in d:
            a["A"] = self.args["A"] + h * d["A"]
        return a

    def primal(self, name, got, want):
        if not _bits_equal(got, want):
            raise Disagree("primal", f"{self.P}_{name} primal {got!r} != {self.P}_f {want!r}")

    def run(self) -> Outcome:
        P, a, t = self.P, self.args, self.t
        try:
            f0 = self.fn("f")(a["x"], a["y"], a["A"], a["k"], a["b"])
        except RUNTIME_ERRORS as exc:
            return Outcome("invalid", "primal", f"{type(exc).__name__}: {exc}")
        try:
            self.checks(f0)
        except Disagree as d:
            return Outcome("disagreement", d.oracle, d.detail)
        return Outcome("ok")

    def checks(self, f0):
        P, t = self.P, self.t
        finite = np.isfinite(f0) and abs(f0) < 1e100
        vg = self.call("vg")
        self.primal("vg", vg[0], f0)
        g = vg[1:]
        jv = self.call("jvp", t["x"], t["y"], t["A"])
        self.primal("jvp", jv[0], f0)
        # the adjoint of an f32 value is an f32 (as its tangent is): a derivative beyond f32's
        # range (3.4e38) overflows there in reverse mode while the tangent through the same
        # cast can stay small (seed 4000789: y * f64(f32(y)) ** 2 near 1e24); so for an f32
        # program whose value or tangent is that large, reverse mode may be inf alone
        f32_range = self.f32_range = \
            self.f32 and any(np.isfinite(a) and abs(a) >= 1e30 for a in (f0, jv[1]))
        if not finite:
            return
        gt_terms = _flat(g[0] * t["x"], g[1] * t["y"], g[2] * t["A"])
        gt = float(np.sum(gt_terms))
        scale = float(np.sum(np.abs(gt_terms))) + abs(jv[1])
        if self.f32:
            # f32 code rounds tangents and adjoints differently (a tangent t through
            # f64(f32(.)) keeps its rounding error ~6e-8 |t| where the adjoint 1.0 is exact),
            # so the error scales with the inputs' tangents even where the terms cancel
            scale += float(np.sum(np.abs(_flat(t["x"], t["y"], t["A"]))))
        if np.isfinite(gt) != np.isfinite(jv[1]) and not (f32_range and np.isfinite(jv[1])):
            raise Disagree("nonfinite", f"jvp tangent {jv[1]!r}, <grad, t> {gt!r}")
        if np.isfinite(gt) and abs(gt - jv[1]) > self.rtol * scale + 1e-300:
            raise Disagree("dot", f"jvp tangent {jv[1]!r} != <grad, t> {gt!r} "
                                  f"(|diff| {abs(gt - jv[1]):.3g}, scale {scale:.3g})")
        self.fd(f0, jv[1], scale if np.isfinite(scale) else 0.0)
        if self.fn("vjp"):
            w = float(self.rng.standard_normal())
            vj = self.call("vjp", w)
            self.primal("vjp", vj[0], f0)
            for name, bar, gi in zip(("x", "y", "A"), vj[1:], g):
                want = w * np.asarray(gi)
                tol = self.rtol * (np.abs(want) + _peak(want) * 1e-3) + 1e-300
                if self.f32:   # the cotangent w itself is rounded where it passes through f32
                    tol = tol + 1e-6 * abs(w) * (1 + _peak(want) / abs(w))
                if not np.all(_close(bar, want, tol)):
                    raise Disagree("vjp", f"vjp(out_bar={w!r}) {name}_bar {bar!r} != w * grad "
                                          f"{want!r}")
        if self.fn("vgc"):
            vc = self.call("vgc")
            self.primal("vgc", vc[0], f0)
            for name, gc, gi in zip(("x", "y", "A"), vc[1:], g):
                gc, gi = np.asarray(gc), np.asarray(gi)
                big = max(_peak(gi), 1e-300)
                tol = 64 * np.finfo(np.float64).eps * (np.maximum(np.abs(gc), np.abs(gi)) + 1e-3 * big)
                if not np.all(_close(gc, gi, tol)):
                    # adjoint sums may be added in any order (LANGUAGE.md), and where they
                    # cancel a reordering moves the result by more than a few of its own ulps:
                    # allow what forward mode's own rounding shows for this program
                    noise = self.forward_noise(name, gi)
                    if not np.all(_close(gc, gi, tol + 4 * noise)):
                        raise Disagree("ckpt", f"checkpointed grad wrt {name} {gc!r} != grad "
                                               f"{gi!r} (forward mode differs by {noise:.3g})")
        if self.fn("tjvp") or self.fn("tvjp"):
            self.tuple_checks(f0)
        if self.fn("hvp"):
            self.nested(g[0])

    def fd(self, f0, jv, scale):
        f = self.fn("f")
        a = self.args
        hs = (1e-3, 2e-3, 5e-4) if self.f32 else (1e-5, 2e-5, 5e-6)
        eps = 1e-7 if self.f32 else 1e-16
        est, curv = [], []
        for h in hs:
            p, m = self.shifted(h), self.shifted(-h)
            fp = f(p["x"], p["y"], p["A"], a["k"], a["b"])
            fm = f(m["x"], m["y"], m["A"], a["k"], a["b"])
            est.append((fp - fm) / (2 * h))
            curv.append((fp - 2 * f0 + fm) / h)   # forward minus backward difference
        rnd = 50 * eps * (1 + abs(f0)) / hs[-1]
        rel = 1e-2 if self.f32 else 1e-5
        tol = rel * (scale + abs(est[0])) + rnd
        # whether the differences settle is judged on their own size, not the tangent's (a
        # huge wrong tangent must not make scattered differences look smooth)
        settle = rel * max(abs(e) for e in est) + rnd if all(np.isfinite(est)) else 0.0
        if not all(np.isfinite(est)) or max(abs(est[0] - e) for e in est[1:]) > settle / 4:
            return  # not smooth here (or rounding dominates): no verdict
        # smooth: forward minus backward differences shrink with h (h f''); at a kink they
        # stay the jump in slope. A kink exactly at the point (abs at 0, a tie of max or
        # among several elements of max(x), or kinks composed there) leaves central
        # differences independent of h, and equal to the reference's fixed derivative only
        # in the simplest case (one two-way kink): no verdict. A kink near the point moves
        # them with h, non-linearly (to first order in h when the two sides curve
        # differently: then the differences are linear in h and extrapolate to h = 0).
        if abs(curv[2] - curv[0] * hs[2] / hs[0]) > tol:
            d_big, d_small = est[1] - est[0], est[0] - est[2]      # steps 2h-h and h-h/2
            if abs(d_big) <= settle / 100 and abs(d_small) <= settle / 100:
                return  # a kink exactly at the point
            if abs(d_big - 2 * d_small) > tol / 100:
                return
            est[0] = 2 * est[2] - est[0]
        if self.special:
            if np.isfinite(est[0]) and not np.isfinite(jv):
                raise Disagree("fd", f"jvp tangent {jv!r} where finite differences give {est[0]!r}")
            return
        if not abs(est[0] - jv) <= tol and not self.straddled(est[0], hs[0], tol):
            raise Disagree("fd", f"jvp tangent {jv!r} != finite differences {est[0]!r} "
                                 f"(h={hs[0]}; {est[1]!r} at h={hs[1]}; tol {tol:.3g})")

    def forward_noise(self, name, g) -> float:
        """The largest difference between the gradient `g` wrt parameter `name` and forward
        mode's derivative along each of that parameter's coordinates: the rounding this
        program's derivative shows between two orders of evaluation (0 if unknown)."""
        if not self.fn("jvp"):
            return 0.0
        g = np.asarray(g, dtype=np.float64)
        zero = {"x": np.zeros(self.n), "y": 0.0, "A": np.zeros((self.n, self.n))}
        worst = 0.0
        for k in range(g.size):
            t = dict(zero)
            if name == "y":
                t["y"] = 1.0
            else:
                e = np.zeros(g.size)
                e[k] = 1.0
                t[name] = e.reshape(np.shape(zero[name]))
            d = float(self.call("jvp", t["x"], t["y"], t["A"])[1])
            if not np.isfinite(d):
                return 0.0
            worst = max(worst, abs(d - float(g.flat[k])))
        return worst

    def straddled(self, secant, h, tol) -> bool:
        """Whether the tangent, sampled across the step (at -h, -h/2, +h/2, +h along the
        direction), takes values on both sides of the secant. A central difference is the
        mean of the derivative over [-h, h] (for a smooth function it equals the derivative
        somewhere in it), so when the derivative swings through the secant within one step
        (a chaotic iterated map: tangents of 1e35 of either sign, secants of 1.6) the
        difference does not measure the derivative at the point. A wrong rule keeps its
        error at the neighbouring points and is still reported."""
        jt = []
        for s in (-h, -h / 2, h / 2, h):
            try:
                jt.append(float(self.call("jvp", self.t["x"], self.t["y"], self.t["A"],
                                          at=self.shifted(s))[1]))
            except Disagree:
                return False
        if not all(np.isfinite(jt)):
            return False
        return min(jt) - tol <= secant <= max(jt) + tol

    def tuple_checks(self, f0):
        t = self.t
        o = self.call("t")
        self.primal("t", o[0], f0)
        n = self.n
        if self.fn("tjvp"):
            tj = self.call("tjvp", t["x"], t["y"], t["A"])
            self.primal("tjvp", tj[0], o[0])
            self.primal("tjvp", tj[1], o[1])
        if self.fn("tvjp"):
            w0, w1 = float(self.rng.standard_normal()), self.rng.standard_normal(n)
            tv = self.call("tvjp", w0, w1)
            self.primal("tvjp", tv[0], o[0])
            self.primal("tvjp", tv[1], o[1])
        if not (self.fn("tjvp") and self.fn("tvjp")):
            return
        if not np.all(np.isfinite(_flat(o[0], o[1]))):
            return
        lhs = _flat(w0 * tj[2], w1 * tj[3])
        rhs = _flat(tv[2] * t["x"], tv[3] * t["y"], tv[4] * t["A"])
        L, R = float(np.sum(lhs)), float(np.sum(rhs))
        if np.isfinite(L) != np.isfinite(R) and not (self.f32_range and np.isfinite(L)):
            raise Disagree("nonfinite", f"tuple: <w, J t> {L!r}, <J^T w, t> {R!r}")
        scale = float(np.sum(np.abs(lhs)) + np.sum(np.abs(rhs)))
        if self.f32:   # as in checks(): tangents and cotangents are rounded where they pass
            # through f32, by ~6e-8 of their own size even where the terms cancel (seed
            # 77000333: x - f64(f32(x)) has derivative ~1e-8 in either mode, not the same)
            scale += float(np.sum(np.abs(_flat(w0, w1)))) * \
                float(np.sum(np.abs(_flat(t["x"], t["y"], t["A"]))))
        if np.isfinite(L) and abs(L - R) > self.rtol * scale + 1e-300:
            raise Disagree("dot", f"tuple function: <w, J t> {L!r} != <J^T w, t> {R!r}")

    def nested(self, gx):
        v = self.rng.standard_normal(self.n)
        hv = np.asarray(self.call("hvp", v))
        res = {"hvp": hv}
        if self.fn("hess"):
            H = np.asarray(self.call("hess"))
            res["hessian.v"] = H @ v
            mag = np.abs(H) @ np.abs(v)
        else:
            mag = np.abs(hv)
        for name in ("jg", "jgc"):
            if self.fn(name):
                out = self.call(name, v)
                gj = np.asarray(out[0])
                tol = 1e-12 * (np.abs(gx) + _peak(gx)) + 1e-300
                if not np.all(_close(gj, gx, tol)):
                    raise Disagree("primal", f"{self.P}_{name} gradient {gj!r} != grad {gx!r}")
                res["jvp(grad" + (", checkpoint" if name == "jgc" else "") + ")"] = np.asarray(out[1])
        if not np.all(np.isfinite(gx)):
            return
        big = np.max(mag, initial=0) + np.max(np.abs(hv), initial=0)
        # second-order sums cancel terms of the gradient's size: rounding of that size stays
        # when the exact entries are 0 (hvp 3e-17 against hessian.v -2e-17)
        floor = (1e-5 if self.f32 else 1e-14) * (1.0 + np.max(np.abs(gx), initial=0))
        tol = (1e-5 if self.f32 else 1e-8) * (mag + 1e-3 * big) + floor
        names = list(res)
        for nm in names[1:]:
            a, b = res[names[0]], res[nm]
            if np.all(np.isfinite(a)) != np.all(np.isfinite(b)) and not self.f32_range:
                raise Disagree("nonfinite", f"{names[0]} {a!r} vs {nm} {b!r}")
            if np.all(np.isfinite(a)) and np.any(np.abs(a - b) > tol):
                raise Disagree("nested", f"{names[0]} {a!r} != {nm} {b!r}")
        self.fd2(hv, mag, big)

    def fd2(self, hv, mag, big):
        if not np.all(np.isfinite(hv)) or self.special:   # special points: see __init__
            return
        vg = self.fn("vg")
        a = self.args
        d = {"x": self.rng.standard_normal(self.n)}
        hv = np.asarray(self.call("hvp", d["x"]))
        hs = (1e-3, 2e-3) if self.f32 else (1e-5, 2e-5)
        est = []
        for h in hs:
            p, m = self.shifted(h, d), self.shifted(-h, d)
            gp = vg(p["x"], p["y"], p["A"], a["k"], a["b"])[1]
            gm = vg(m["x"], m["y"], m["A"], a["k"], a["b"])[1]
            est.append((np.asarray(gp) - np.asarray(gm)) / (2 * h))
        gmax = 1.0 + np.max(np.abs(self.call("vg")[1]), initial=0)
        rnd = 50 * (1e-7 if self.f32 else 1e-16) * gmax / hs[0]
        scale = np.abs(hv) + np.abs(est[0]) + 1e-3 * (np.max(np.abs(hv), initial=0))
        tol = (1e-2 if self.f32 else 1e-5) * scale + rnd
        if not np.all(np.isfinite(est[0])) or np.any(np.abs(est[0] - est[1]) > tol / 4):
            return
        # a kink of the gradient exactly at the point (a tie of max(x) among several
        # elements, abs at 0 under a square): one-sided differences keep the jump, central
        # ones do not give the reference's fixed second derivative there: no verdict
        g0 = np.asarray(vg(a["x"], a["y"], a["A"], a["k"], a["b"])[1])
        p = self.shifted(hs[0], d)
        gp = np.asarray(vg(p["x"], p["y"], p["A"], a["k"], a["b"])[1])
        if np.any(np.abs((gp - g0) / hs[0] - est[0]) > tol):
            return
        if np.any(np.abs(est[0] - hv) > tol):
            raise Disagree("fd2", f"hvp {hv!r} != finite differences of the gradient {est[0]!r}")


def check_program(mod, prefix, seed, uses_f32=False, mode="random") -> Outcome:
    try:
        return _Checker(mod, prefix, seed, uses_f32, mode).run()
    except Exception as exc:  # noqa: BLE001 - every other exception is a crash
        return crash_outcome(exc, "run")


def crash_outcome(exc, stage) -> Outcome:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f"{tb[-1].filename.split('/')[-1]}:{tb[-1].lineno} in {tb[-1].name}" if tb else ""
    return Outcome("crash", stage, f"{type(exc).__name__}: {exc} [{where}]\n"
                   + "".join(traceback.format_exception(exc))[-3000:])


def compile_outcome(text):
    """(module, None) or (None, Outcome) for a refusal or a crash while compiling."""
    import dad
    try:
        return dad.compile(text), None
    except (dad.CompileError, dad.ADError) as exc:
        return None, Outcome("refusal", "compile", str(exc))
    except Exception as exc:  # noqa: BLE001
        return None, crash_outcome(exc, "compile")


def compile_and_check(text: str, programs: list[dict]) -> dict:
    """programs: dicts with prefix, seed, uses_f32 and (for separate compiles) text."""
    mod, bad = compile_outcome(text)
    out = {}
    if mod is None:
        if len(programs) == 1:
            return {programs[0]["prefix"]: bad}
        for p in programs:
            out.update(compile_and_check(p["text"], [p]))
        return out
    for p in programs:
        f32 = "f32(" in p["text"] if "text" in p else p.get("uses_f32", False)
        out[p["prefix"]] = check_program(mod, p["prefix"], p["seed"], f32,
                                         p.get("inputs", "random"))
    return out
