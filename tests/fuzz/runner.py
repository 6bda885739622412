"""The fuzzing command: `python -m tests.fuzz --programs N --jobs J --seed S --out DIR`.

Programs `generate(program_seed(S, i))`, i < N, are compiled in batches of `--batch` (one
module each, to share the compiler's fixed cost) by `--jobs` worker processes
(`worker.py`). A worker that dies (a signal: a crash) or does not answer within its time
limit (a hang) is killed and restarted, and its batch is re-run one program at a time to find
the culprit, so every program gets an outcome. Each failing program is then minimised
(`minimize.py`, up to `--minimize` of them, in parallel on the same workers) and written to
DIR/NNN-KIND-ORACLE.dad, with the original next to it (.orig.dad); DIR/summary.json holds
every outcome. Each outcome is also appended to DIR/journal.jsonl as it is decided, so a run
that is stopped (Ctrl-C, the end of a session) continues with `--resume DIR`: the programs
already decided are not run again, the arguments must be the same, and the elapsed time is
the sum of the segments. The command prints one line:

    programs N, crashes C, hangs H, refusals R, disagreements D, invalid I, ok K, ...

and exits with status 1 when anything other than ok/invalid was found. `run_programs` is
the same machinery for tests (tests/test_fuzz.py).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import queue
import select
import subprocess
import sys
import threading
import time

from .gen import FEATURES, KNOWN_BUGS, generate
from .minimize import minimize
from .oracles import Outcome

ROOT = pathlib.Path(__file__).resolve().parents[2]
FAIL_KINDS = ("crash", "hang", "refusal", "disagreement")


def program_seed(seed: int, i: int) -> int:
    return seed * 1_000_003 + i


class Worker:
    """One worker process; `request` returns the results or raises `WorkerDied`."""

    def __init__(self, llvm_level: int, verify: bool):
        self.args = [sys.executable, "-m", "tests.fuzz.worker", str(llvm_level),
                     "1" if verify else "0"]
        self.proc = None
        self.ids = 0

    def start(self):
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(self.args, cwd=str(ROOT), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1, env=env)
        self._read(120)

    def _read(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise WorkerDied("hang", f"no answer within {timeout:.0f} s")
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise WorkerDied("crash", f"worker exited with status {code}"
                             + (f" (signal {-code})" if code < 0 else ""))
        return json.loads(line)

    def request(self, text, programs, timeout):
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.ids += 1
        try:
            self.proc.stdin.write(json.dumps({"id": self.ids, "text": text,
                                              "programs": programs}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.stop()
            raise WorkerDied("crash", "worker died before the request") from None
        try:
            return self._read(timeout)["results"]
        except WorkerDied:
            self.stop()
            raise

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None


class WorkerDied(Exception):
    def __init__(self, kind, detail):
        super().__init__(detail)
        self.kind, self.detail = kind, detail


def _run_batch(worker, progs, timeout):
    """{prefix: Outcome} for a batch, isolating a crash or hang to its program."""
    infos = [p.info() for p in progs]
    try:
        res = worker.request("".join(i["text"] for i in infos), infos,
                             timeout * (1 + len(progs) / 2))
        return {k: Outcome(**v) for k, v in res.items()}
    except WorkerDied as died:
        if len(progs) == 1:
            return {progs[0].prefix: Outcome(died.kind, "process", died.detail)}
        out = {}
        for p in progs:
            out.update(_run_batch(worker, [p], timeout))
        return out


def evaluate_one(worker, program, timeout):
    return _run_batch(worker, [program], timeout)[program.prefix]


def run_programs(seeds, *, jobs=1, batch=8, timeout=30.0, avoid=frozenset(),
                 features=frozenset(), llvm_level=0, verify=True, minimize_max=20,
                 minimize_budget=120.0, progress=None, small=False, on_outcome=None):
    """Generate, check and minimise. Returns (outcomes {seed: Outcome}, failures list of dicts
    with seed, outcome, program (original), minimised (Program or None)). `on_outcome(seed,
    outcome)` is called (under a lock) as each program's outcome is decided."""
    make = lambda s: generate(s, avoid=avoid, features=features, small=small)  # noqa: E731
    tasks: queue.Queue = queue.Queue()
    seeds = list(seeds)
    for i in range(0, len(seeds), batch):
        tasks.put(seeds[i:i + batch])
    outcomes: dict[int, Outcome] = {}
    lock = threading.Lock()
    workers = [Worker(llvm_level, verify) for _ in range(max(1, jobs))]

    def work(w):
        while True:
            try:
                chunk = tasks.get_nowait()
            except queue.Empty:
                return
            progs = [make(s) for s in chunk]
            res = _run_batch(w, progs, timeout)
            with lock:
                for p in progs:
                    outcomes[p.seed] = res.get(p.prefix, Outcome("crash", "runner", "no result"))
                    if on_outcome:
                        on_outcome(p.seed, outcomes[p.seed])
                if progress:
                    progress(len(outcomes), len(seeds))

    try:
        threads = [threading.Thread(target=work, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        failures = [{"seed": s, "outcome": o} for s, o in sorted(outcomes.items())
                    if o.kind in FAIL_KINDS]
        todo: queue.Queue = queue.Queue()
        for f in failures[:minimize_max]:
            todo.put(f)

        def shrink(w):
            while True:
                try:
                    f = todo.get_nowait()
                except queue.Empty:
                    return
                prog = make(f["seed"])
                f["original"] = prog.text()
                sig = f["outcome"].signature()
                small = minimize(prog, lambda p: evaluate_one(w, p, timeout), sig,
                                 budget_s=minimize_budget)
                f["minimised"] = small.text()
                f["final"] = evaluate_one(w, small, timeout)

        threads = [threading.Thread(target=shrink, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for w in workers:
            w.stop()
    for f in failures:
        f.setdefault("original", make(f["seed"]).text())
    return outcomes, failures


# the arguments that decide which programs run and how they are checked: a resumed run must
# repeat them (--jobs, --progress and the minimiser's settings may change)
RUN_DEFINING = ("programs", "seed", "batch", "timeout", "llvm_opt", "no_verify", "avoid",
                "features")


class Journal:
    """DIR/journal.jsonl: a header line {"args", "start"}, then {"seed", "outcome", "t"} per
    decided program and {"segment_s"} at the end of each segment; a resumed segment starts with
    {"resumed", "start"}. A segment that was stopped has no "segment_s": its time is then from
    its start to its last outcome."""

    def __init__(self, path: pathlib.Path, args: dict):
        self.path, self.args, self.count = path, args, 0
        self.f = None

    def start(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = self.path.open("w")
        self._write({"args": self.args, "start": time.time()})

    def load(self):
        """({seed: Outcome}, seconds of the earlier segments); ValueError if there is no
        journal or it was written with other arguments."""
        if not self.path.exists():
            raise ValueError(f"--resume: no {self.path}")
        done, seconds, start, last = {}, 0.0, None, None
        with self.path.open() as f:
            lines = [json.loads(line) for line in f if line.strip().endswith("}")]
        if not lines or lines[0].get("args") != self.args:
            raise ValueError(f"--resume: {self.path} was written with other arguments: "
                             f"{lines[0].get('args') if lines else None}")
        for rec in lines:
            if "start" in rec:
                if start is not None and last is not None:   # the segment before was stopped
                    seconds += last - start
                start, last = rec["start"], None
            elif "seed" in rec:
                o = rec["outcome"]
                done[rec["seed"]] = Outcome(o["kind"], o["oracle"], o["detail"])
                last = rec["t"]
            elif "segment_s" in rec:
                seconds += rec["segment_s"]
                start = last = None
        if start is not None and last is not None:
            seconds += last - start
        self.f = self.path.open("a")
        self._write({"resumed": True, "start": time.time()})
        return done, seconds

    def record(self, seed, outcome):
        self.count += 1
        self._write({"seed": seed, "outcome": outcome.to_json(), "t": time.time()})

    def close(self, seconds):
        self._write({"segment_s": seconds})
        self.f.close()

    def _write(self, rec):
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()


def summary_line(outcomes, elapsed) -> str:
    c = collections.Counter(o.kind for o in outcomes.values())
    d = collections.Counter(o.oracle for o in outcomes.values() if o.kind == "disagreement")
    n = len(outcomes)
    by = ", ".join(f"{k} {v}" for k, v in sorted(d.items()))
    return (f"programs {n}, crashes {c['crash']}, hangs {c['hang']}, refusals {c['refusal']}, "
            f"disagreements {c['disagreement']}" + (f" ({by})" if by else "")
            + f", invalid {c['invalid']}, ok {c['ok']}, {elapsed:.0f} s "
            f"({elapsed / max(n, 1):.2f} s/program)")


def comment(outcome: Outcome) -> str:
    head = outcome.detail.splitlines()[0] if outcome.detail else ""
    return f"# fuzz: {outcome.kind} ({outcome.oracle}): {head[:300]}"


def write_failures(out: pathlib.Path, failures) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(failures):
        o = f["outcome"]
        stem = f"{i:03d}-{o.kind}-{o.oracle}"
        final = f.get("final") or o
        if "minimised" in f:
            (out / f"{stem}.dad").write_text(
                comment(final) + f"\n# seed {f['seed']}; inputs: tests/fuzz/oracles.py "
                f"inputs({f['seed']}, {f.get('inputs', 'random')!r})\n" + f["minimised"])
        (out / f"{stem}.orig.dad").write_text(comment(o) + f"\n# seed {f['seed']}\n"
                                               + f["original"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=(
        "Fuzz dad with random well-typed programs checked by independent oracles "
        "(forward vs reverse dot-product test, finite differences, nested modes, "
        "checkpointing, primal bit-equality, no crash/hang/refusal). Prints one summary "
        "line; failures are minimised into --out."))
    ap.add_argument("--programs", type=int, default=1000, help="number of programs")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    ap.add_argument("--seed", type=int, default=0, help="run seed (program i has seed "
                    "seed*1000003+i)")
    ap.add_argument("--out", default="fuzz-out", help="folder for failures and summary.json")
    ap.add_argument("--batch", type=int, default=8, help="programs per compiled module")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per program")
    ap.add_argument("--llvm-opt", default="mixed", choices=["0", "1", "2", "3", "mixed"],
                    help="LLVM optimisation level of the workers; 'mixed' (default) runs one "
                    "batch of programs in four at O3 (as dad.compile does) and the rest at 0")
    ap.add_argument("--no-verify", action="store_true",
                    help="do not verify the IR after every pass (DAD_VERIFY=0)")
    ap.add_argument("--avoid", default="", help="comma-separated constructs to leave out "
                    "(known bugs): " + ", ".join(sorted(KNOWN_BUGS)) + "; 'known' for all")
    ap.add_argument("--features", default="", help="optional constructs: "
                    + ", ".join(sorted(FEATURES)))
    ap.add_argument("--minimize", type=int, default=20, help="minimise at most this many "
                    "failures (the others are written unminimised)")
    ap.add_argument("--minimize-budget", type=float, default=120.0,
                    help="seconds per minimisation")
    ap.add_argument("--progress", action="store_true",
                    help="report progress on stderr (stdout keeps the one summary line)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the run recorded in --out (its journal.jsonl): programs "
                    "already decided are skipped; the other arguments must be the same")
    a = ap.parse_args(argv)
    avoid = frozenset(KNOWN_BUGS) if a.avoid == "known" else \
        frozenset(x for x in a.avoid.split(",") if x)
    features = frozenset(x for x in a.features.split(",") if x)
    for x in avoid - set(KNOWN_BUGS):
        ap.error(f"unknown --avoid {x}")
    for x in features - set(FEATURES):
        ap.error(f"unknown --features {x}")
    seeds = [program_seed(a.seed, i) for i in range(a.programs)]
    out = pathlib.Path(a.out)
    journal = Journal(out / "journal.jsonl", {k: v for k, v in vars(a).items()
                                                if k in RUN_DEFINING})
    try:
        before, earlier_s = journal.load() if a.resume else ({}, 0.0)
    except ValueError as exc:
        ap.error(str(exc))
    if not a.resume:
        journal.start()
    t0 = time.monotonic() - earlier_s
    kw = dict(jobs=a.jobs, batch=a.batch, timeout=a.timeout, avoid=avoid, features=features,
              verify=not a.no_verify, minimize_max=0, on_outcome=journal.record)
    if a.progress:
        def report(n, total):
            print(f"\r{len(before) + journal.count} / {a.programs} programs, "
                  f"{time.monotonic() - t0:.0f} s", end="", file=sys.stderr, flush=True)
        kw["progress"] = report
    todo = [s for s in seeds if s not in before]
    outcomes = dict(before)
    failures = [{"seed": s, "outcome": o} for s, o in sorted(before.items())
                if o.kind in FAIL_KINDS]
    if a.llvm_opt == "mixed":
        parts = [([s for s in todo if (s // a.batch) % 4 != 3], 0),
                 ([s for s in todo if (s // a.batch) % 4 == 3], 3)]
    else:
        parts = [(todo, int(a.llvm_opt))]
    for part, level in parts:
        if part:
            o2, f2 = run_programs(part, llvm_level=level, **kw)
            outcomes.update(o2)
            failures += f2
    journal.close(time.monotonic() - t0 - earlier_s)
    if a.progress:
        print(file=sys.stderr)
    failures.sort(key=lambda f: f["seed"])
    for f in failures:
        prog = generate(f["seed"], avoid=avoid, features=features)
        f["inputs"] = prog.inputs
        f.setdefault("original", prog.text())   # a failure from an earlier segment
    # minimise (at O0: failures that need O3 to show keep their original only)
    if a.minimize and failures:
        _minimise_all(failures[:a.minimize], a, avoid, features)
    write_failures(out, failures)
    elapsed = time.monotonic() - t0
    line = summary_line(outcomes, elapsed)
    (out / "summary.json").write_text(json.dumps({
        "line": line, "args": vars(a),
        "outcomes": {str(s): o.to_json() for s, o in sorted(outcomes.items())
                     if o.kind != "ok"}}, indent=1))
    print(line)
    return 1 if failures else 0


def _minimise_all(failures, a, avoid, features):
    todo: queue.Queue = queue.Queue()
    for f in failures:
        todo.put(f)
    levels = {}

    def shrink(w3, w0):
        while True:
            try:
                f = todo.get_nowait()
            except queue.Empty:
                return
            prog = generate(f["seed"], avoid=avoid, features=features)
            f["original"] = prog.text()
            sig = f["outcome"].signature()
            w = w0 if evaluate_one(w0, prog, a.timeout).signature() == sig else w3
            small = minimize(prog, lambda p: evaluate_one(w, p, a.timeout), sig,
                             budget_s=a.minimize_budget)
            f["minimised"] = small.text()
            f["final"] = evaluate_one(w, small, a.timeout)
            levels[f["seed"]] = w is w0

    pairs = [(Worker(3, not a.no_verify), Worker(0, not a.no_verify))
             for _ in range(max(1, a.jobs))]
    try:
        threads = [threading.Thread(target=shrink, args=p) for p in pairs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for w3, w0 in pairs:
            w3.stop()
            w0.stop()
