"""Emitted IR for small programs, checked with CHECK-style assertions on the printed text."""
import re
import time

import pytest

from dad.frontend import compile_to_ir
from dad.lang.printer import print_function, print_module

try:
    from dad.lang.verifier import verify
except ImportError:  # pragma: no cover
    verify = None


def ir(src: str, fn: str | None = None, **kw) -> str:
    m = compile_to_ir(src, "e.dad", **kw)
    if verify is not None:
        verify(m)
    return print_function(m[fn]) if fn else print_module(m)


def check_order(text: str, *needles: str):
    pos = 0
    for n in needles:
        k = text.find(n, pos)
        assert k >= 0, f"{n!r} not found after position {pos} in:\n{text}"
        pos = k + len(n)


def test_straight_line_has_no_control_flow_and_sig():
    t = ir("fn f(x: f64, y: f64) -> f64 { let a = x * y; let b = a + 2; return -b ** 2; }")
    assert "scf." not in t and "dad.undef" not in t
    check_order(t, 'attributes {sig = "(x: f64, y: f64) -> f64"}', "%a = arith.mulf %x, %y",
                "arith.constant {value = 2.0} : f64", "%b = arith.addf %a", "arith.mulf %b, %b",
                "arith.negf", "func.return")


def test_running_sum_is_one_for_with_one_carried_value():
    t = ir("""fn f(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n { s += x[i]; }
    return s;
}""")
    assert t.count("scf.for") == 1
    check_order(t, "%n = memref.dim %x {index = 0}", "%s_1 = scf.for", ', %s {loc = "e.dad:3:5"} : f64 {',
                "^(%i: i64, %s_2: f64):", 'memref.load %x, %i {checked = true, loc = "e.dad:3:26"}',
                "%s_3 = arith.addf %s_2", "scf.yield %s_3", "func.return %s_1")
    assert "reassoc" not in t  # a user loop is never reassociated


def test_break_becomes_while():
    t = ir("""fn f(x: f64[n]) -> f64 {
    var s = 0.0;
    for i in 0..n { if x[i] < 0.0 { break; } s += x[i]; }
    return s;
}""")
    assert "scf.for" not in t and t.count("scf.while") == 1
    check_order(t, "scf.while", 'arith.cmpi %i_1, %n {pred = "slt"}', "arith.andi", "scf.condition",
                "scf.if", "scf.yield", "scf.if", "arith.addi %i_2")


def test_early_return_uses_flags_and_undef():
    t = ir("""fn f(x: f64[n]) -> f64 {
    for i in 0..n { if x[i] < 0.0 { return x[i]; } }
    return 0.0;
}""")
    check_order(t, "arith.constant {value = false} : i1", "dad.undef : f64", "scf.while", "scf.if",
                "func.return")


def test_tail_returns_need_no_flags():
    t = ir("fn f(x: f64) -> f64 { if x > 0.0 { return x; } else if x < -1.0 { return -x; } return 0.0; }")
    assert "dad.undef" not in t and "scf.while" not in t
    assert t.count("scf.if") == 2


def test_continue_flag_in_for():
    t = ir("""fn f(n: i64) -> i64 {
    var s = 0;
    for i in 0..n step 2 { if i % 3 == 0 { continue; } s += i; }
    return s;
}""")
    assert t.count("scf.for") == 1 and "scf.while" not in t
    check_order(t, "arith.constant {value = 2} : i64", "scf.for", 'arith.floormodsi %i, ', 'loc = "e.dad:3:31"',
                "scf.if", "arith.xori", "scf.if")


def test_reductions_reassoc_only_on_accumulation():
    t = ir("fn f(x: f64[n], A: f64[n, n]) -> f64 { return sum(x) + dot(x, x) + sum(matvec(A, x)); }")
    adds = [l for l in t.splitlines() if "arith.addf" in l]
    assert sum('fastmath = "reassoc"' in l for l in adds) == 4
    assert not any("reassoc" in l for l in t.splitlines() if "arith.mulf" in l)
    # the matvec temporary is freed after the statement
    check_order(t, "memref.alloc %", "scf.for", "memref.dealloc", "func.return")


def test_max_picks_first_extreme_and_checks_empty():
    t = ir("fn f(x: f64[n]) -> f64 { return max(x); }")
    check_order(t, 'arith.cmpi', '{pred = "sgt"}', 'dad.check', 'kind = "ValueError"',
                "memref.load", "scf.for", '{pred = "ogt"}', "arith.select")


def test_scalar_max_ties_pick_a():
    t = ir("fn f(a: f64, b: f64) -> f64 { return max(a, b) + min(a, 1); }")
    check_order(t, 'arith.cmpf %a, %b {pred = "oge"}', "arith.select", '{pred = "ole"}', "arith.select")


def test_elementwise_fused_into_one_loop_with_shape_check():
    # y[1..m] has a size known only at run time (two different size variables would be a
    # compile-time error)
    t = ir("fn f(x: f64[n], y: f64[m]) -> f64[n] { return 2 * x + sin(y[1..m]); }")
    assert t.count("scf.for") == 1 and t.count("memref.alloc") == 1
    check_order(t, "dad.check", "shape mismatch in '+'", "memref.alloc", "scf.for", "math.sin",
                "memref.store", "func.return")
    same = ir("fn f(x: f64[n], y: f64[n]) -> f64[n] { return x + y; }")
    assert "dad.check" not in same


def test_matrix_elementwise_collapses():
    t = ir("fn f(A: f64[n, m]) -> f64[n, m] { return A * A; }")
    check_order(t, "memref.alloc", "memref.collapse", "scf.for", "memref.store")


def test_returned_parameter_is_copied_and_locals_freed():
    t = ir("""fn f(x: f64[n]) -> f64[n] {
    var b = zeros(n);
    b[0] = 1.0;
    let c = x;
    return c;
}""")
    check_order(t, "%b = memref.alloc %n", 'memref.store', 'loc = "e.dad:3:5"', "memref.alloc",
                "memref.copy %x", "memref.dealloc %b", "func.return")


def test_var_array_copy_and_assignment_check():
    t = ir("""fn f(x: f64[n], y: f64[m]) -> f64 {
    var b = x;
    b = y[1..m];
    return b[0];
}""")
    check_order(t, "memref.alloc", "memref.copy %x, %b", "memref.slice %y", "dad.check",
                "shape mismatch in assignment to 'b'", "memref.copy", "memref.dealloc %b")


def test_integer_division_and_casts():
    t = ir("fn f(a: i64, b: i64, x: f64) -> f64 { return float(a / b) + f64(f32(x)) + float(int(x)); }")
    check_order(t, 'arith.floordivsi %a, %b {loc = "e.dad:1:52"}', "arith.sitofp", "arith.truncf",
                "arith.extf", "arith.fptosi")


def test_tuple_return_and_call():
    t = ir("""fn g(x: f64[n]) -> (f64, f64[n]) { return (sum(x), x * 2.0); }
fn f(x: f64[n]) -> f64 { let (s, y) = g(x); return s + y[0]; }""")
    check_order(t, '@g(', '-> (f64, memref<?xf64>)', 'sig = "(x: f64[n]) -> (f64, f64[n])"',
                '@f(', '%s, %y = func.call %x {callee = "g", loc = "e.dad:2:39"}', "memref.dealloc %y")


def test_f32_literal_context():
    t = ir("fn f(x: f32) -> f32 { return 2 * x + 0.5; }")
    assert "f64" not in t.split("\n", 1)[1]
    check_order(t, "{value = 2.0} : f32", "arith.mulf", "{value = 0.5} : f32", "arith.addf")


def test_small_integer_powers_become_multiplications():
    t = ir("fn f(x: f64, y: f64) -> f64 { return x ** 3 + x ** y; }")
    assert t.count("arith.mulf") == 2
    check_order(t, "arith.mulf", "arith.mulf", "math.powf %x, %y")


def test_short_circuit_guards_a_load():
    t = ir("fn f(x: f64[n], i: i64) -> bool { return i < n and x[i] > 0.0; }")
    check_order(t, 'arith.cmpi', 'scf.if', 'memref.load', 'scf.yield', 'arith.constant {value = false}')
    pure = ir("fn f(a: f64, b: f64) -> bool { return a < b and b < 1.0; }")
    assert "scf.if" not in pure and "arith.andi" in pure


def test_fast_math_marks_every_float_op():
    t = ir("fn f(x: f64[n]) -> f64 { var s = 0.0; for i in 0..n { s += sin(x[i]); } return s + sum(x); }",
           fast_math=True)
    for line in t.splitlines():
        if re.search(r"arith\.(addf|mulf)|math\.sin", line):
            assert 'fastmath = "fast"' in line, line


def test_functions_in_any_order_and_size_checks_at_calls():
    t = ir("""fn f(x: f64[n], y: f64[m]) -> f64 { return g(x, y[1..m]); }
fn g(a: f64[k], b: f64[k]) -> f64 { return dot(a, b); }""", "f")
    check_order(t, "memref.dim %x {index = 0}", "memref.slice %y", "arith.cmpi", "dad.check",
                "size mismatch in call to 'g'", 'func.call %x, ')


def test_compile_time_is_small():
    src = "\n".join([
        "fn rosen(x: f64[n]) -> f64 {",
        "    var s = 0.0;",
        "    for i in 0..n - 1 {",
        "        let a = x[i + 1] - x[i] * x[i];",
        "        let b = 1.0 - x[i];",
        "        s += 100.0 * a * a + b * b;",
        "    }",
        "    return s;",
        "}",
    ] * 3).replace("fn rosen(", "fn r{}(")
    src = src.replace("fn r{}(", "fn ra(", 1).replace("fn r{}(", "fn rb(", 1).replace("fn r{}(", "fn rc(", 1)
    compile_to_ir(src, "warm.dad")
    t0 = time.perf_counter()
    compile_to_ir(src, "time.dad")
    assert time.perf_counter() - t0 < 0.15


def test_roundtrip_through_ir_parser():
    irparser = pytest.importorskip("dad.lang.irparser")
    prog = """fn f(A: f64[n, m], x: f64[m]) -> (f64[n], f64) {
    var y = matvec(A, x);
    var c = 0;
    while c < 10 { c += 1; if c == 5 { break; } }
    y[0] += float(c);
    return (y, logsumexp(x) + norm(x));
}"""
    text = ir(prog)
    assert print_module(irparser.parse_module(text)) == text
