"""Hostile input: a clean error, nothing lost, never a crash.

Deep recursion at run time, integers beyond i64, damaged compile-cache entries, deeply
nested programs, wrong argument kinds, masked arrays, a byte-order mark, Ctrl-C in a
running loop, failed allocations. Whatever could take the interpreter down runs in a
subprocess.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import dad
from dad.runtime import aot, cache

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _default_sigint():
    """In the child: SIGINT as a fresh terminal process has it. A test run started in the
    background by a non-interactive shell inherits SIGINT ignored, and Python then installs
    no handler of its own, so Ctrl-C could not be tested there."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_py(code: str, *, env=None, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, cwd=str(ROOT),
                          env=dict(os.environ, **(env or {})), preexec_fn=_default_sigint)


# ----------------------------------------------------------------------- the compile cache

try:
    aot.find_cc()
    HAVE_CC = True
except aot.LinkerMissing:
    HAVE_CC = False

CACHED = textwrap.dedent("""
    import json, sys
    import dad
    mod = dad.compile(sys.argv[1])
    print(json.dumps({"hit": "cache_hit" in mod.timings, "value": mod.f(3.0)}))
""")
PROGRAM_A = "fn f(x: f64) -> f64 { return x * x + 1.0; }"
PROGRAM_B = "fn f(x: f64) -> f64 { return x * x * x; }"


def run_cached(cache_dir, program):
    r = subprocess.run([sys.executable, "-c", CACHED, program], capture_output=True, text=True,
                       timeout=240, env=dict(os.environ, DAD_CACHE_DIR=str(cache_dir)))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _entry(cache_dir, program):
    with_env = os.environ.get("DAD_CACHE_DIR")
    os.environ["DAD_CACHE_DIR"] = str(cache_dir)
    try:
        k = cache.key(program, "<string>", False)
    finally:
        os.environ["DAD_CACHE_DIR"] = with_env
    d = pathlib.Path(cache_dir) / cache.SUBDIR
    return d / f"{k}.json", d / f"{k}.so"


def _truncate(js, so, other):
    so.write_bytes(so.read_bytes()[: so.stat().st_size // 3])


def _random_so(js, so, other):
    so.write_bytes(os.urandom(so.stat().st_size))


def _json_list(js, so, other):
    js.write_text("[1, 2, 3]")


def _json_string(js, so, other):
    js.write_text('"sha256"')


def _json_missing_fields(js, so, other):
    record = json.loads(js.read_text())
    del record["sha256"]
    js.write_text(json.dumps(record))


def _json_wrong_types(js, so, other):
    record = json.loads(js.read_text())
    record.update(sha256=5, size="big", key=[])
    js.write_text(json.dumps(record))


def _so_of_another_entry(js, so, other):
    shutil.copyfile(other[1], so)


def _entry_of_another_key(js, so, other):  # both files of another program under this key
    shutil.copyfile(other[0], js)
    shutil.copyfile(other[1], so)


def _truncated_json(js, so, other):
    js.write_bytes(js.read_bytes()[:20])


def _missing_so(js, so, other):
    so.unlink()


DAMAGE = [_truncate, _random_so, _json_list, _json_string, _json_missing_fields,
          _json_wrong_types, _so_of_another_entry, _entry_of_another_key, _truncated_json,
          _missing_so]


@pytest.mark.skipif(not HAVE_CC, reason="the cache stores libraries linked by cc")
@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__.strip("_"))
def test_damaged_cache_entry_is_discarded_and_rebuilt(tmp_path, damage):
    d = tmp_path / "cache"
    a = run_cached(d, PROGRAM_A)
    b = run_cached(d, PROGRAM_B)
    assert (a["value"], b["value"]) == (10.0, 27.0)
    js, so = _entry(d, PROGRAM_A)
    damage(js, so, _entry(d, PROGRAM_B))
    again = run_cached(d, PROGRAM_A)
    assert not again["hit"] and again["value"] == 10.0
    assert run_cached(d, PROGRAM_A) == {"hit": True, "value": 10.0}  # rebuilt, valid again
    assert run_cached(d, PROGRAM_B) == {"hit": True, "value": 27.0}  # the other entry untouched


# ----------------------------------------------------------------------- integers beyond i64

@pytest.mark.parametrize("src, text", [
    ("fn f() -> i64 { var s = 0; for i in 0..99999999999999999999 { s += 1; } return s; }",
     "99999999999999999999"),
    ("fn f() -> i64 { return 9223372036854775808; }", "9223372036854775808"),
    ("fn f() -> i64 { return 9223372036854775808 - 1; }", "9223372036854775808"),
    ("fn f(x: f64[18446744073709551616]) -> f64 { return x[0]; }", "18446744073709551616"),
    ("fn f() -> f64 { return 1e999; }", "1e999"),
])
def test_literal_out_of_range_is_a_compile_error(src, text):
    col = src.index(text) + 1
    with pytest.raises(dad.CompileError) as exc:
        dad.compile(src)
    (d,) = exc.value.diagnostics
    assert (d.span.line, d.span.col) == (1, col) and "out of range" in d.message
    rendered = str(exc.value).splitlines()
    assert rendered[0].startswith(f"<string>:1:{col}: error: ")
    assert rendered[2] == "    " + " " * (col - 1) + "^" + "~" * (len(text) - 1)


def test_extreme_i64_literals_are_exact():
    m = dad.compile("fn lo() -> i64 { return -9223372036854775808; }\n"
                    "fn hi() -> i64 { return 9223372036854775807; }\n"
                    "fn big() -> i64 { return 9007199254740993; }")
    assert (m.lo(), m.hi(), m.big()) == (-2**63, 2**63 - 1, 2**53 + 1)


def test_i64_arguments_never_pass_through_a_float():
    m = dad.compile("fn id(k: i64) -> i64 { return k; }\n"
                    "fn first(k: i64[n]) -> i64 { return k[0]; }\n"
                    "fn twice(k: i64[n]) -> i64[n] { return k + k; }\n"
                    "fn pair(k: i64, j: i64) -> (i64, i64) { return (k + 1, j - 1); }")
    for v in (2**53 + 1, 2**62 + 1, -2**63, 2**63 - 1, np.int64(2**53 + 1)):
        assert m.id(v) == int(v) and type(m.id(v)) is int
        assert m.first([v]) == int(v) and m.first(np.array([v], np.int64)) == int(v)
    assert m.pair(2**60 + 1, -2**60 - 1) == (2**60 + 2, -2**60 - 2)
    assert m.twice([2**61 + 1]).tolist() == [2**62 + 2]
    with pytest.raises(OverflowError, match="'k'"):
        m.id(2**63)
    with pytest.raises(TypeError, match="'k'"):
        m.id(float(2**53))
    for bad in ([2**63], [2.0**53 + 2], np.array([1], np.uint64), np.array([2.0])):
        with pytest.raises(TypeError, match="'k'"):
            m.first(bad)


# ----------------------------------------------------------------------- smaller things

def test_compile_wants_text():
    for bad in (None, 3, ["fn f() -> f64 { return 1.0; }"], pathlib.Path("f.dad")):
        with pytest.raises(TypeError, match="source text as a str"):
            dad.compile(bad)
    # bytes are decoded as UTF-8
    m = dad.compile("fn f(x: f64) -> f64 { return x * 2.0; }  # \u00e9\n".encode())
    assert m.f(2.0) == 4.0
    with pytest.raises(UnicodeDecodeError):
        dad.compile(b"fn f() -> f64 { return 1.0; } # \xff")


def test_masked_arrays_are_refused():
    m = dad.compile("fn s(x: f64[n]) -> f64 { return sum(x); }\n"
                    "fn d(x: f64[n]) -> f64[n] { return 2.0 * x; }")
    with pytest.raises(TypeError, match="parameter 'x': masked arrays"):
        m.s(np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0]))
    with pytest.raises(TypeError, match="parameter 'x': masked arrays"):
        m.s(np.ma.array([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="out="):
        m.d(np.ones(3), out=np.ma.zeros(3))
    assert m.s(np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0]).compressed()) == 4.0


def test_byte_order_mark_is_accepted(tmp_path):
    src = "fn f(x: f64) -> f64 { return x + 1.0; }\n"
    assert dad.compile("\ufeff" + src).f(1.0) == 2.0
    assert dad.compile(b"\xef\xbb\xbf" + src.encode()).f(1.0) == 2.0
    p = tmp_path / "bom.dad"
    p.write_bytes(b"\xef\xbb\xbf" + src.encode())
    assert dad.compile_file(p).f(1.0) == 2.0
    p.write_bytes(b"\xef\xbb\xbffn f(x: f64) -> f64 { return y; }\n")
    with pytest.raises(dad.CompileError, match=r"bom.dad:1:30: error: unknown name 'y'"):
        dad.compile_file(p)


@pytest.mark.parametrize("body", ["let a = zeros(n); return a[0];",
                                  "let a = zeros(n, n); return a[0, 0];",
                                  "let a = ones(n) * 2.0; return a[0];"])
def test_failed_allocation_names_the_line(body):
    m = dad.compile("fn f(n: i64) -> f64 {\n    " + body + "\n}")
    with pytest.raises(MemoryError, match=r"^<string>:2:\d+: cannot allocate"):
        m.f(1 << 42)


def test_allocation_size_overflow_and_tape_exhaustion_name_the_line():
    m = dad.compile("fn z(n: i64, m: i64) -> f64 {\n    let a = zeros(n, m);\n    return a[0, 0];\n}\n"
                    "fn h(x: f64[n], k: i64) -> f64 {\n    var s = 1.0;\n"
                    "    for i in 0..k { s = sin(s * x[0]); }\n    return s;\n}\n"
                    "fn hg = grad(h, wrt=x);")
    with pytest.raises(MemoryError, match=r"^<string>:2:13: cannot allocate an array of "
                                          r"4294967296 x 4294967296 elements$"):
        m.z(1 << 32, 1 << 32)   # the element count wraps to 0 in 64 bits
    with pytest.raises(MemoryError, match=r"^<string>:7:\d+: out of memory for the AD tape$"):
        m.hg(np.ones(2), 1 << 58)
    assert m.z(3, 4) == 0.0


# ----------------------------------------------------------------------- deep recursion at run time

FACT = "\nfn fact(n: i64) -> f64 { if n <= 1 { return 1.0; } return float(n) * fact(n - 1); }\n"
RSUM = ("\nfn rsum(x: f64[n], i: i64) -> f64 {\n    if i >= n { return 0.0; }\n"
        "    return x[i] * x[i] + rsum(x, i + 1);\n}\n"
        "fn f(x: f64[n]) -> f64 { return rsum(x, 0); }\nfn g = grad(f, wrt=x);\n")


@pytest.mark.parametrize("cache_mode", ["jit", "cache"])
def test_stack_exhaustion_is_a_recursion_error(tmp_path, cache_mode):
    env = {"DAD_NO_CACHE": "1"} if cache_mode == "jit" else {"DAD_CACHE_DIR": str(tmp_path)}
    r = run_py(f"""
        import threading
        import numpy as np
        import dad
        m = dad.compile({FACT!r} + {RSUM!r})
        assert m.fact(10) == 3628800.0
        def deep(call):
            try:
                call()
            except RecursionError as e:
                print("RecursionError", e)
            else:
                print("returned")
        deep(lambda: m.fact(700000))
        deep(lambda: m.fact(700000))            # and again: nothing left behind
        x = np.full(10**6, 0.5)
        deep(lambda: m.f(x))
        deep(lambda: m.g(x))
        assert np.allclose(m.g(x[:1000]), 2 * x[:1000])
        for size in (256 << 10, 128 << 20):     # small and large thread stacks
            threading.stack_size(size)
            t = threading.Thread(target=deep, args=(lambda: m.fact(700000),))
            t.start(); t.join()
    """, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    call = "<string>:2:70: maximum recursion depth exceeded: the stack is exhausted in the call to 'fact'"
    assert lines[0] == lines[1] == "RecursionError " + call
    assert lines[2].startswith("RecursionError <string>:") and "'rsum" in lines[2]
    assert lines[3].startswith("RecursionError <string>:") and \
        lines[3].endswith("in the call to 'rsum' (computing a derivative of it)")  # not rsum.vjp.x.aug
    assert lines[4] == "RecursionError " + call
    assert lines[5] == "returned"  # 128 MB of stack holds 700000 calls
    assert len(lines) == 6


def test_recursion_check_leaves_moderate_depths_alone():
    m = dad.compile(FACT + RSUM)
    assert m.fact(20) == float(np.prod(np.arange(1, 21, dtype=np.float64)))
    x = np.linspace(-1.0, 1.0, 20000)   # 20000 nested calls fit in the main thread's stack
    assert m.f(x) == pytest.approx(float(np.sum(x * x)), rel=1e-12)
    assert np.allclose(m.g(x[:3000]), 2 * x[:3000], rtol=1e-14, atol=0)


def test_recursive_gradient_is_linear_in_depth():
    """The adjoint of a recursive call costs O(1) per level: the functions on a call-graph
    cycle of the gradient are the primal and the callee's split adjoint (`ad.recursive`),
    whose halves call only themselves (never the primal again, which would recompute the
    levels below at every level) and allocate no array (a full-size cotangent per level
    would cost O(n) each). Before the split, `rsum.vjp.x` recomputed `rsum` and returned a
    fresh `x.bar` at every level: O(n^2) (10 000 levels took 1.9 s, see
    benchmarks/recursion.py)."""
    from dad.frontend import compile_to_ir
    from dad.lang.callgraph import direct_callees, recursive
    from dad.runtime.compiler import derive_all
    m = compile_to_ir(RSUM, "<test>")
    derive_all(m)
    cycle = recursive(m)
    assert cycle == {"rsum", "rsum.vjp.x.aug", "rsum.vjp.x.rev"}, cycle
    for name in cycle - {"rsum"}:
        fn = m[name]
        assert direct_callees(fn) == [name], (name, direct_callees(fn))
        assert not any(op.name == "memref.alloc" for op in fn.walk()), name
    # and the gradient is right at a depth that the quadratic adjoint made take seconds
    x = np.linspace(0.0, 1.0, 10000)
    assert np.array_equal(dad.compile(RSUM).g(x), 2 * x)


# ----------------------------------------------------------------------- deep nesting at compile time

def _sum_program(terms: int) -> str:
    return "fn f(x: f64) -> f64 { return " + " + ".join(["x"] * terms) + "; }\nfn g = grad(f);"


def test_500_term_sum_compiles():
    m = dad.compile(_sum_program(500))
    assert m.f(2.0) == 1000.0 and m.g(2.0) == 500.0


def test_300_nested_ifs_compile():
    body = "return x * x;"
    for i in reversed(range(300)):  # level i: x > i goes deeper, else i * x
        body = f"if x > {i}.0 {{ {body} }} else {{ return {i}.0 * x; }}"
    m = dad.compile("fn f(x: f64) -> f64 { " + body + " }\nfn g = grad(f);")
    assert m.f(1000.0) == 1e6 and m.g(1000.0) == 2000.0
    assert m.f(0.5) == 0.5 and m.f(150.5) == 151.0 * 150.5 and m.g(150.5) == 151.0


def test_2000_function_chain_compiles_primal_and_grad():
    fns = ["fn h0(x: f64) -> f64 { return sin(x); }"]
    fns += [f"fn h{i}(x: f64) -> f64 {{ return h{i - 1}(x) + 1.0; }}" for i in range(1, 2000)]
    m = dad.compile("\n".join(fns) + "\nfn g = grad(h1999);")
    assert m.h1999(0.5) == pytest.approx(np.sin(0.5) + 1999.0, rel=1e-15)
    assert m.g(0.5) == pytest.approx(np.cos(0.5), rel=1e-15)   # d/dx (sin x + c)


def test_a_chain_of_small_functions_lowers_to_linear_code():
    def llvm_size(n):
        fns = ["fn h0(x: f64) -> f64 { return sin(x) * x; }"]
        fns += [f"fn h{i}(x: f64) -> f64 {{ return h{i - 1}(x) * 2.0 + x; }}" for i in range(1, n)]
        from dad.runtime.compiler import compile_module
        from dad.frontend import compile_to_ir
        from dad.lowering import lower_module
        m = compile_module(compile_to_ir("\n".join(fns)))
        return len(m.lowered.llvm_ir)
    small, large = llvm_size(150), llvm_size(300)
    assert large < 2.3 * small, (small, large)


def test_nesting_beyond_the_limit_is_a_located_error():
    from dad.frontend.parser import MAX_NESTING
    with pytest.raises(dad.CompileError) as exc:
        dad.compile(_sum_program(MAX_NESTING + 100))
    (d,) = exc.value.diagnostics
    assert "nested too deeply" in d.message and f"at most {MAX_NESTING}" in d.message
    assert d.span.line == 1 and d.span.col > 1
    with pytest.raises(dad.CompileError, match="nested too deeply"):
        dad.compile("fn f(x: f64) -> f64 { return " + "sin(" * 2000 + "x" + ")" * 2000 + "; }")


def test_recursion_error_while_compiling_becomes_a_located_compile_error(monkeypatch):
    """Should some phase still run out of recursion, the user sees a CompileError."""
    from dad.runtime import deep
    monkeypatch.setattr(deep, "RECURSION_LIMIT", 200)
    monkeypatch.setattr(deep, "STACK_BYTES", 4 << 20)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(250)
    try:
        with pytest.raises(dad.CompileError) as exc:
            dad.compile(_sum_program(400))
    finally:
        sys.setrecursionlimit(limit)
    (d,) = exc.value.diagnostics
    assert "nested too deeply to compile" in d.message and d.span.line == 1


def test_ir_and_call_graph_walks_need_no_recursion():
    """In the calling thread, with Python's default recursion limit."""
    from dad.lang import callgraph
    from dad.lang.ir import F64, Function, Module, Op, Region
    f = Function("f", [F64], [F64], ["x"])
    block, ops = f.body, []
    for k in range(5000):  # 5000 nested regions, an op before each
        ops.append(block.append(Op("arith.constant", [], [F64], {"value": float(k)})))
        inner = Op("scf.if", [f.params[0]], [], {}, [Region(), Region()])
        ops.append(block.append(inner))
        block = inner.regions[0].block
    assert list(f.walk()) == ops and list(ops[1].walk()) == ops[1:]
    chain = [Function("c0", [F64], [F64], ["x"])]
    for k in range(1, 5000):
        fn = Function(f"c{k}", [F64], [F64], ["x"])
        fn.body.append(Op("func.call", [fn.params[0]], [F64], {"callee": f"c{k - 1}"}))
        chain.append(fn)
    m = Module(chain)
    assert callgraph.postorder(m, ["c4999"]) == [f"c{k}" for k in range(5000)]
    assert callgraph.reachable(m, "c4999") == set(m.functions)
    assert callgraph.recursive(m) == set()
    chain[0].body.append(Op("func.call", [chain[0].params[0]], [F64], {"callee": "c2500"}))
    assert callgraph.recursive(m) == {f"c{k}" for k in range(2501)}


# ----------------------------------------------------------------------- Ctrl-C

SPIN = textwrap.dedent("""
    import sys, time
    import numpy as np
    import dad
    m = dad.compile('''
    fn spin(x: f64) -> f64 { var s = x; while s >= 0.0 { s = s + 1.0; } return s; }
    fn spin_array(x: f64[n]) -> f64[n] { var y = x; while y[0] >= 0.0 { y[0] = y[0] + 1.0; } return y; }
    fn nest(n: i64) -> f64 { var s = 0.0; for i in 0..n { for j in 0..n { s += 1.0; } } return s; }
    ''')
    calls = {"spin": lambda: m.spin(1.0), "spin_array": lambda: m.spin_array(np.ones(3)),
             "nest": lambda: m.nest(10**7)}
    # a Ctrl-C that Python handled before a call does not stop the next one
    try:
        print("sleeping", flush=True)
        time.sleep(30)
    except KeyboardInterrupt:
        pass
    assert m.nest(3000) == 9e6
    print("ready", flush=True)
    t = time.perf_counter()
    try:
        calls[sys.argv[1]]()
    except KeyboardInterrupt:
        print("KeyboardInterrupt after", time.perf_counter() - t, flush=True)
    assert m.spin(-1.0) == -1.0 and m.nest(100) == 1e4   # still usable
    print("done", flush=True)
""")


@pytest.mark.parametrize("cache_mode", ["jit", "cache"])
@pytest.mark.parametrize("call", ["spin", "spin_array", "nest"])
def test_ctrl_c_stops_a_running_loop(tmp_path, call, cache_mode):
    env = dict(os.environ, **({"DAD_NO_CACHE": "1"} if cache_mode == "jit"
                              else {"DAD_CACHE_DIR": str(tmp_path)}))
    p = subprocess.Popen([sys.executable, "-c", SPIN, call], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_default_sigint)
    try:
        assert p.stdout.readline().strip() == "sleeping"
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.5)   # inside the loop
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("KeyboardInterrupt after") and lines[1] == "done", out + err
    assert float(lines[0].split()[-1]) < 3.0


def test_a_sigint_just_before_the_call_starts_stops_it():
    """The race a real Ctrl-C can hit under load: a SIGINT that arrives after the caller let
    Python handle pending signals but before the compiled entry starts. The caller arms the
    call (`runtime.interrupt.arm`: the count the call starts from, then Python's check); here
    the SIGINT's count is added by hand right after arming, and the endless loop must stop at
    its first poll instead of running forever (before, the entry read the count itself and
    took that SIGINT as already handled)."""
    r = run_py("""
        import ctypes
        import dad
        from dad.runtime import interrupt
        m = dad.compile('fn spin(x: f64) -> f64 { var s = x; while s >= 0.0 { s = s + 1.0; } return s; }')
        k = m.spin
        assert "_arm()" in k._caller_source
        interrupt.arm_function()()
        interrupt.WORDS[0] += 1          # the handler's count of a SIGINT arriving now
        err = (ctypes.c_int64 * 3)()
        r = k._centry(1.0, err)
        print(r != r, k.module.lowered.sites[err[0] - 1].kind, interrupt.take_stopped())
        interrupt.arm_function()()       # the next call starts from the new count
        print(k(-1.0))
        """, timeout=20, env={"DAD_NO_CACHE": "1"})
    assert r.stdout.split() == ["True", "KeyboardInterrupt", "True", "-1.0"], r.stdout + r.stderr


def test_an_entry_called_without_arming_does_not_take_a_stale_arm():
    """A call through the raw entry (as C code calling a built library does) after Python
    handled a SIGINT: the arm of an earlier call must not make it stop at its first poll
    (found by review: it returned NaN with the KeyboardInterrupt site)."""
    r = run_py("""
        import ctypes, signal
        import dad
        from dad.runtime import interrupt
        m = dad.compile('fn spin(n: i64) -> f64 { var s = 0.0; var i = 0; while i < n { s = s + 1.0; i = i + 1; } return s; }')
        k = m.spin
        print(k(100000))
        try:
            signal.raise_signal(signal.SIGINT)
            for _ in range(3):
                pass
        except KeyboardInterrupt:
            print("handled")
        err = (ctypes.c_int64 * 3)()
        print(k._centry(100000, err), err[0], interrupt.take_stopped())
        print(k(100000))
        """, timeout=60, env={"DAD_NO_CACHE": "1"})
    assert r.stdout.split() == ["100000.0", "handled", "100000.0", "0", "False", "100000.0"], \
        r.stdout + r.stderr


def test_stack_exhaustion_in_derived_and_mutual_recursion():
    r = run_py("""
        import dad
        m = dad.compile('''fn p(x: f64, n: i64) -> f64 { if n <= 0 { return 1.0; } return x * p(x, n - 1); }
        fn even(n: i64) -> bool { if n == 0 { return true; } return odd(n - 1); }
        fn odd(n: i64) -> bool { if n == 0 { return false; } return even(n - 1); }
        fn dp = jvp(p, wrt=x);
        fn gp = grad(p, wrt=x);
        ''')
        assert m.even(10**4) and not m.odd(10**4)
        assert abs(m.dp(1.0001, 1000, 1.0)[1] - 1000 * 1.0001**999) < 1e-9 * 1105
        for call in (lambda: m.dp(1.0, 10**7, 1.0), lambda: m.gp(1.0, 10**7),
                     lambda: m.even(10**8)):
            try:
                call()
                print("returned")
            except RecursionError as e:
                print(str(e).split(": maximum")[0])
    """, env={"DAD_NO_CACHE": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["<string>:1:68", "<string>:1:68", "<string>:3:61"]
