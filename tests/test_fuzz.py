"""Fuzzing in the test suite: a fixed, seeded set of random well-typed programs
(tests/fuzz/gen.py) checked by every oracle (tests/fuzz/oracles.py): primal bit-equality of
every derived function, forward versus reverse mode (dot-product test), both versus
central finite differences, checkpointed versus plain reverse mode, hvp versus hessian . v
versus jvp(grad), no crash, hang or refusal. A failure is minimised and shown in the message.

The programs use every construct the generator knows (`gen.KNOWN_BUGS`, the constructs
`--avoid known` leaves out, names defects that are fixed now). Programs are compiled in batches in a
worker process, with LLVM's optimisation off (its time dominates; the IR passes and AD are
what this exercises) and the IR verified after every pass."""
from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fuzz.gen import KNOWN_BUGS, generate  # noqa: E402
from tests.fuzz.minimize import minimize  # noqa: E402
from tests.fuzz.oracles import Outcome, compile_and_check  # noqa: E402
from tests.fuzz.runner import comment, program_seed, run_programs  # noqa: E402

N_PROGRAMS = 150
SEED = 2026


def _report(failures) -> str:
    out = []
    for f in failures[:5]:
        o = f["outcome"]
        out.append(f"seed {f['seed']}: {o.kind} ({o.oracle}): {o.detail[:600]}")
        out.append(comment(f.get("final") or o))
        out.append(f.get("minimised") or f["original"])
    return "\n".join(out)


def test_generated_programs_pass_every_oracle():
    seeds = [program_seed(SEED, i) for i in range(N_PROGRAMS)]
    outcomes, failures = run_programs(seeds, jobs=1, batch=10, timeout=30.0,
                                      avoid=frozenset(), llvm_level=0, verify=True,
                                      minimize_max=2, minimize_budget=40.0, small=True)
    assert len(outcomes) == N_PROGRAMS
    assert not failures, f"{len(failures)} failing programs:\n" + _report(failures)
    # the oracles had something to check: most programs ran to the end
    assert sum(o.kind == "ok" for o in outcomes.values()) >= 0.9 * N_PROGRAMS


def test_generator_is_deterministic_and_respects_avoid():
    a = generate(12345, avoid=frozenset(KNOWN_BUGS)).text()
    assert a == generate(12345, avoid=frozenset(KNOWN_BUGS)).text()
    texts = [generate(program_seed(SEED, i), avoid=frozenset(KNOWN_BUGS)).text()
             for i in range(200)]
    joined = "\n".join(texts)
    assert "** 0 " not in joined and "checkpoint=true), wrt" not in joined
    full = "\n".join(generate(program_seed(SEED, i)).text() for i in range(200))
    assert "** 0 " in full and "checkpoint=true), wrt" in full


WRONG_RULE = """
fn q_impl(x: f64[n], y: f64) -> f64 { return sum(sin(x)) * y; }
fn q_jvp_rule(x: f64[n], y: f64, x_dot: f64[n], y_dot: f64) -> (f64, f64) {
    return (sum(sin(x)) * y, dot(cos(x), x_dot) * y * 1.001 + sum(sin(x)) * y_dot);
}
fn q = custom(q_impl, jvp=q_jvp_rule);
fn p_f(x: f64[n], y: f64, A: f64[n, n], k: i64, b: bool) -> f64 {
    return q(x, y) + sum(A) * 0.0;
}
fn p_vg = value_and_grad(p_f);
fn p_jvp = jvp(p_f);
"""


def test_oracles_catch_a_wrong_derivative():
    """A custom jvp rule off by 0.1% must be reported (forward disagrees with reverse)."""
    res = compile_and_check(WRONG_RULE, [dict(prefix="p", seed=1, text=WRONG_RULE)])["p"]
    assert res.kind == "disagreement" and res.oracle in ("dot", "fd"), res


CONSISTENTLY_WRONG = """
fn q_impl(x: f64[n], y: f64) -> f64 { return sum(sin(x)) * y; }
fn q_jvp_rule(x: f64[n], y: f64, x_dot: f64[n], y_dot: f64) -> (f64, f64) {
    return (sum(sin(x)) * y, dot(cos(x), x_dot) * y * 1.001 + sum(sin(x)) * y_dot);
}
fn q_vjp_rule(x: f64[n], y: f64, o: f64) -> (f64, f64[n], f64) {
    return (sum(sin(x)) * y, cos(x) * (y * 1.001 * o), sum(sin(x)) * o);
}
fn q = custom(q_impl, jvp=q_jvp_rule, vjp=q_vjp_rule);
fn p_f(x: f64[n], y: f64, A: f64[n, n], k: i64, b: bool) -> f64 {
    return q(x, y) + sum(A) * 0.0;
}
fn p_vg = value_and_grad(p_f);
fn p_jvp = jvp(p_f);
"""


def test_finite_differences_catch_a_wrong_rule_both_modes_share():
    """Forward and reverse wrong by the same 0.1%: the dot test holds, and the finite
    differences must still report it (the check that excuses a tangent swinging through the
    secant within one step must not excuse an error that neighbouring points repeat)."""
    res = compile_and_check(CONSISTENTLY_WRONG,
                            [dict(prefix="p", seed=1, text=CONSISTENTLY_WRONG)])["p"]
    assert res.kind == "disagreement" and res.oracle == "fd", res


def test_a_chaotic_programs_secant_is_not_its_derivative():
    """Seed 7000847 (seed-7 run) iterates x -> x * x - y through a recursive helper: its
    exact tangent is ~1e35 and changes sign within 1e-7, while central differences settle at
    1.63 for every step. The oracle reported that as a wrong derivative; the tangent takes
    both signs across the step, so the differences say nothing about the point."""
    prog = generate(7000847)
    assert compile_and_check(prog.text(), [prog.info()])[prog.prefix].kind == "ok"


def test_minimiser_keeps_the_failure_and_shrinks():
    prog = generate(program_seed(SEED, 3))
    target = "sin("
    if target not in prog.text():
        prog = next(generate(program_seed(SEED, i)) for i in range(4, 100)
                    if target in generate(program_seed(SEED, i)).text())
    before = len(prog.text())

    def evaluate(p):  # a stand-in failure: "the program calls sin"
        return Outcome("disagreement", "x") if target in p.text() else Outcome("ok")

    small = minimize(prog, evaluate, Outcome("disagreement", "x").signature(), budget_s=30)
    assert target in small.text() and len(small.text()) < before


def test_runner_blames_a_crash_on_its_program():
    """A worker that dies on a batch: the batch is re-run one program at a time, so only the
    program that kills the worker is counted as a crash."""
    from tests.fuzz.runner import WorkerDied, _run_batch

    progs = [generate(program_seed(SEED, i)) for i in range(4)]
    bad = progs[2].prefix

    class FakeWorker:
        def request(self, text, programs, timeout):
            if any(p["prefix"] == bad for p in programs):
                raise WorkerDied("crash", "worker exited with status -11 (signal 11)")
            return {p["prefix"]: {"kind": "ok", "oracle": "", "detail": ""} for p in programs}

    res = _run_batch(FakeWorker(), progs, 1.0)
    assert {k: o.kind for k, o in res.items()} == {
        p.prefix: ("crash" if p.prefix == bad else "ok") for p in progs}


def test_the_disagreements_of_the_10000_program_run_are_gone():
    """The three programs the README's 10 000-program run (seed 4) reported pass every oracle
    now: 4006168 was a wrong derivative (a zero adjoint times cos(inf) = NaN, now zero-safe),
    4000789 a derivative beyond f32's range in an f32 adjoint (the reference's semantics;
    the oracle now knows that range), 4006569 the oracle's own NaN tolerance (a NaN entry
    made every entry's tolerance NaN)."""
    for seed in (4006168, 4000789, 4006569):
        prog = generate(seed)
        res = compile_and_check(prog.text(), [prog.info()])
        assert res[prog.prefix].kind == "ok", (seed, res[prog.prefix])


def test_oracle_tolerance_ignores_nan_entries_elsewhere():
    from tests.fuzz.oracles import _close, _peak
    nan = float("nan")
    got, want = [nan, 0.0, nan, nan], [nan, -0.0, nan, nan]
    assert _peak(want) == 0.0 and _close(got, want, 1e-9 * _peak(want) + 1e-300).all()
    assert not _close([nan, 1e-3, nan], [nan, 0.0, nan], 1e-9).all()
    assert not _close([1.0, float("inf")], [1.0, nan], 1e-9).all()
    inf = float("inf")   # an infinite tolerance (built from an infinite entry) passes nothing
    assert list(_close([2.0, -inf, inf, 3.0], [inf, inf, inf, 3.0], inf)) == [False, False, True, True]


def test_a_stopped_run_resumes_from_its_journal(tmp_path, capsys):
    """A run stopped mid-way (no segment end written) continues with --resume: the decided
    programs are not run again, their outcomes count, the elapsed time adds up, and other
    arguments are refused."""
    import json
    import time

    from tests.fuzz.runner import RUN_DEFINING, Journal, main
    args = ["--programs", "3", "--seed", "5", "--out", str(tmp_path), "--minimize", "0"]
    defining = dict(programs=3, seed=5, batch=8, timeout=30.0, llvm_opt="mixed",
                    no_verify=False, avoid="", features="")
    assert set(defining) == set(RUN_DEFINING)
    j = Journal(tmp_path / "journal.jsonl", defining)
    j.start()
    bad = Outcome("disagreement", "dot", "made up")
    for i, o in enumerate([Outcome("ok"), bad, Outcome("ok")]):
        j.record(program_seed(5, i), o)
    j.f.close()                          # stopped: no segment end
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    lines[-1] = lines[-1].replace(f'"t": {json.loads(lines[-1])["t"]}',
                                  f'"t": {json.loads(lines[0])["start"] + 7.0}')
    (tmp_path / "journal.jsonl").write_text("\n".join(lines) + "\n")
    t0 = time.monotonic()
    assert main(args + ["--resume"]) == 1          # nothing left to run: no worker started
    assert time.monotonic() - t0 < 20
    line = capsys.readouterr().out.strip()
    assert line.startswith("programs 3, crashes 0, hangs 0, refusals 0, disagreements 1 (dot 1)")
    assert ", ok 2, 7 s" in line, line
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["outcomes"][str(program_seed(5, 1))]["detail"] == "made up"
    import pytest
    with pytest.raises(SystemExit):
        main(["--programs", "4", "--seed", "5", "--out", str(tmp_path), "--resume"])
    assert "other arguments" in capsys.readouterr().err


def test_f32_rounding_in_a_tuple_functions_dot_test():
    """Seed 77000333: x - f64(f32(x)) has a derivative of ~1e-8 in either mode, rounded
    differently in each; the tuple function's dot test allows f32 rounding of the tangents
    and cotangents themselves, as the main one does."""
    prog = generate(77000333)
    assert compile_and_check(prog.text(), [prog.info()])[prog.prefix].kind == "ok"


def test_checkpointed_sums_added_in_another_order():
    """Seed 10000316 (seed-10 run): u doubles and is scaled by cos(u[v1]) in each iteration,
    so the adjoint sums cancel and both gradients are 36-187 ulps from the exact one (long
    double); the checkpointed one differs from the plain one by 128 ulps, forward mode by
    256. The oracle allows what forward mode's rounding shows for the program."""
    prog = generate(10000316)
    assert compile_and_check(prog.text(), [prog.info()])[prog.prefix].kind == "ok"


def test_a_wrong_checkpointed_gradient_is_still_reported():
    """The allowance is forward mode's own difference from the gradient: a checkpointed
    gradient off by 1e-6 where forward and reverse agree to the last bits is reported."""
    import numpy as np
    from tests.fuzz.oracles import check_program

    class Mod:
        pass

    def f(x, y, A, k, b):
        return float(np.sum(np.sin(x)) * y)

    def vg(x, y, A, k, b):
        return f(x, y, A, k, b), np.cos(x) * y, float(np.sum(np.sin(x))), np.zeros_like(A)

    def jvp(x, y, A, k, b, tx, ty, tA):
        return f(x, y, A, k, b), float(np.dot(np.cos(x) * y, tx) + np.sum(np.sin(x)) * ty)

    for shift, kind in ((0.0, "ok"), (1e-6, "disagreement")):
        m = Mod()
        m.p_f, m.p_vg, m.p_jvp = f, vg, jvp
        m.p_vgc = lambda *a, s=shift: (vg(*a)[0], vg(*a)[1] + s, vg(*a)[2], vg(*a)[3])
        res = check_program(m, "p", 3)
        assert res.kind == kind and (kind == "ok" or res.oracle == "ckpt"), (shift, res)
