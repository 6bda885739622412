"""Each user mistake: exact file:line:col, message, and caret under the span."""
import pytest

from dad.frontend import CompileError, compile_to_ir

CASES = [
    # (name, source, line, col, message substring, caret width)
    ("syntax_error", "fn f(x: f64) -> f64 {\n    let a = x + ;\n    return a;\n}", 2, 17, "unexpected ';', expected an expression", 1),
    ("missing_semicolon", "fn f(x: f64) -> f64 {\n    let a = x\n    return a;\n}", 2, 14, "expected ';' before 'return'", 1),
    ("bad_character", "fn f(x: f64) -> f64 { return x $ 2.0; }", 1, 32, "unexpected character '$'", 1),
    ("matmul_of_scalars", "fn f(x: f64) -> f64 { return x @ 2.0; }", 1, 32, "'@' needs arrays of rank 1 or 2", 1),
    ("did_you_mean_function", "fn f(x: f64[n]) -> f64 { return summ(x); }", 1, 33, "unknown function 'summ' (did you mean 'sum'?)", 4),
    ("did_you_mean_name", "fn f(x: f64, total: f64) -> f64 { return totl; }", 1, 42, "unknown name 'totl' (did you mean 'total'?)", 4),
    ("method_call", "fn f(x: f64[n]) -> f64 { return x.sum(); }", 1, 34, "unexpected character '.' (dad has functions, not methods: write 'sum(x)')", 1),
    ("module_prefix", "fn f(x: f64[n]) -> f64 { return jnp.sum(x); }", 1, 36, "no module prefix: write 'sum(...)'", 1),
    ("attribute_T", "fn f(x: f64[n, n]) -> f64 { return sum(x.T); }", 1, 41, "write 'transpose(x)'", 1),
    ("ternary", "fn f(x: f64) -> f64 { return x > 0.0 ? x : 0.0; }", 1, 38, "there is no ternary operator", 1),
    ("unknown_name", "fn f(x: f64) -> f64 {\n    let a = y + 1.0;\n    return a;\n}", 2, 13, "unknown name 'y'", 1),
    ("unknown_function", "fn f(x: f64) -> f64 { return foo(x); }", 1, 30, "unknown function 'foo'", 3),
    ("wrong_arity_user", "fn g(a: f64, b: f64) -> f64 { return a; }\nfn f(x: f64) -> f64 { return g(x); }", 2, 30, "'g' takes 2 arguments, got 1", 4),
    ("wrong_arity_builtin", "fn f(x: f64) -> f64 { return sin(x, x); }", 1, 30, "'sin' takes 1 argument, got 2", 9),
    ("type_mismatch", "fn f(x: f64, k: i64) -> f64 { return x + k; }", 1, 38, "type mismatch in '+': f64 and i64", 5),
    ("assign_let", "fn f(x: f64) -> f64 {\n    let a = 1.0;\n    a = 2.0;\n    return a;\n}", 3, 5, "cannot assign to 'a': it is declared with 'let'", 1),
    ("assign_param", "fn f(x: f64) -> f64 { x += 1.0; return x; }", 1, 23, "cannot assign to parameter 'x'", 1),
    ("update_immutable_array", "fn f(x: f64[n]) -> f64 { x[0] = 1.0; return x[0]; }", 1, 26, "cannot update an element of 'x': it is a parameter", 4),
    ("update_let_array", "fn f(n: i64) -> f64 { let z = zeros(n); z[0] = 1.0; return z[0]; }", 1, 41, "cannot update an element of 'z': it is declared with 'let'", 4),
    ("index_rank", "fn f(x: f64[n]) -> f64 { return x[0, 1]; }", 1, 33, "index rank mismatch", 7),
    ("non_integer_index", "fn f(x: f64[n]) -> f64 { return x[1.5]; }", 1, 35, "index must be i64, found f64", 3),
    ("non_bool_condition", "fn f(x: f64) -> f64 {\n    if x { return 1.0; }\n    return 2.0;\n}", 2, 8, "condition must be bool, found f64", 1),
    ("missing_return", "fn f(x: f64) -> f64 {\n    if x > 0.0 { return 1.0; }\n}", 1, 4, "function 'f' may reach its end without returning a value", 1),
    ("unbound_size_variable", "fn f(x: f64[n]) -> f64[m] { return x; }", 1, 24, "size variable 'm' in the return type is not bound", 1),
    ("conflicting_sizes", "fn g(a: f64[n], b: f64[n]) -> f64 { return a[0]; }\nfn f() -> f64 { return g(zeros(3), zeros(4)); }", 2, 36, "conflicting sizes for size variable 'n' in call to 'g': 3 and 4", 8),
    ("return_type_mismatch", "fn f(k: i64) -> f64 { return k; }", 1, 30, "type mismatch: expected f64, found i64", 1),
    ("duplicate_function", "fn f() -> f64 { return 1.0; }\nfn f() -> f64 { return 2.0; }", 2, 4, "duplicate definition of function 'f'", 1),
    ("duplicate_local", "fn f() -> f64 { let a = 1.0; let a = 2.0; return a; }", 1, 34, "'a' is already defined", 1),
    ("duplicate_param", "fn f(a: f64, a: f64) -> f64 { return a; }", 1, 14, "duplicate parameter 'a'", 6),
    ("break_outside_loop", "fn f() -> f64 { break; return 1.0; }", 1, 17, "'break' outside a loop", 6),
    ("derived_bad_wrt", "fn f(x: f64) -> f64 { return x * x; }\nfn g = grad(f, wrt=y);", 2, 8, "wrt names 'y', which is not a parameter", 14),
    ("wrong_builtin_arg_type", "fn f(k: i64) -> f64 { return sqrt(k); }", 1, 35, "'sqrt' expects a float argument, found i64", 1),
    ("non_literal_step", "fn f(n: i64, k: i64) -> i64 { for i in 0..n step k { } return 0; }", 1, 50, "step of a for loop must be a positive integer literal", 1),
    ("tuple_arity", "fn g(x: f64) -> (f64, f64) { return (x, x); }\nfn f(x: f64) -> f64 { let (a, b, c) = g(x); return a; }", 2, 39, "cannot destructure a tuple of 2 values into 3 names", 4),
    ("unknown_dtype", "fn f(n: i64) -> f64 { let z = zeros(n, dtype=i32); return 0.0; }", 1, 46, "unknown dtype 'i32'", 3),
    ("unknown_type", "fn f(x: f63) -> f64 { return 1.0; }", 1, 9, "unknown type 'f63'", 3),
    ("assign_loop_var", "fn f(n: i64) -> i64 { for i in 0..n { i = 2; } return 0; }", 1, 39, "cannot assign to loop variable 'i'", 1),
    ("float_literal_for_int", "fn f() -> i64 { let a: i64 = 1.5; return a; }", 1, 30, "expected i64, found a float", 3),
    ("shape_mismatch_literal", "fn f() -> f64 { let a = zeros(3) + zeros(4); return 0.0; }", 1, 25, "shape mismatch in '+'", 19),
    ("unknown_transform", "fn f(x: f64) -> f64 { return x; }\nfn g = gard(f);", 2, 8, "unknown transform 'gard'", 4),
    ("tuple_not_destructured", "fn g(x: f64) -> (f64, f64) { return (x, x); }\nfn f(x: f64) -> f64 { let a = g(x); return a; }", 2, 31, "must be destructured", 4),
    ("reserved_word", "fn f() -> f64 { let while = 1.0; return 1.0; }", 1, 21, "'while' is a reserved word", 5),
    ("did_you_mean_transform_target", "fn loss(x: f64) -> f64 { return x * x; }\nfn g = grad(los);", 2, 13,
     "unknown function 'los' (did you mean 'loss'?)", 3),
]


@pytest.mark.parametrize("name, src, line, col, msg, width", CASES, ids=[c[0] for c in CASES])
def test_diagnostic(name, src, line, col, msg, width):
    with pytest.raises(CompileError) as ei:
        compile_to_ir(src, "t.dad")
    err = ei.value
    text = str(err)
    heads = [f"{d.span.file}:{d.span.line}:{d.span.col}" for d in err.diagnostics]
    assert f"t.dad:{line}:{col}" in heads, text
    d = next(d for d in err.diagnostics if (d.span.line, d.span.col) == (line, col))
    assert msg in d.message, text
    rendered = d.render(src).splitlines()
    assert rendered[0] == f"t.dad:{line}:{col}: error: {d.message}"
    assert rendered[1] == "    " + src.splitlines()[line - 1]
    assert rendered[2] == "    " + " " * (col - 1) + "^" + "~" * (width - 1), text
    assert "Traceback" not in text


def test_several_errors_all_reported():
    src = """fn f(x: f64) -> f64 {
    let a = y + 1.0;
    let b: i64 = x;
    x = 2.0;
    return foo(a);
}
fn g = grad(f, wrt=z);
"""
    with pytest.raises(CompileError) as ei:
        compile_to_ir(src, "many.dad")
    got = [(d.span.line, d.span.col) for d in ei.value.diagnostics]
    assert got == [(2, 13), (3, 18), (4, 5), (5, 12), (7, 8)], str(ei.value)
    assert str(ei.value).count("error:") == 5


def test_a_refused_definition_is_reported_once():
    """Redefining a builtin is one error; the transform of it is not a second one."""
    src = "fn outer(x: f64) -> f64 { return x; }\nfn h = grad(outer);\n"
    with pytest.raises(CompileError) as ei:
        compile_to_ir(src, "once.dad")
    assert [(d.span.line, d.span.col) for d in ei.value.diagnostics] == [(1, 4)], str(ei.value)
    assert "'outer' is a builtin function and cannot be redefined" in str(ei.value)


def test_several_syntax_errors_all_reported():
    src = """fn f(x: f64) -> f64 {
    let a = x + ;
    let b = a * 2.0
    let c = (a + b;
    return c;
}
fn g(x: f64) -> f64 { return x }
"""
    with pytest.raises(CompileError) as ei:
        compile_to_ir(src, "syn.dad")
    got = [(d.span.line, d.span.col) for d in ei.value.diagnostics]
    assert got == [(2, 17), (3, 20), (4, 19), (7, 31)], str(ei.value)


def test_error_is_not_a_traceback_for_garbage():
    with pytest.raises(CompileError) as ei:
        compile_to_ir("}}}{{{ fn fn fn", "g.dad")
    assert str(ei.value).startswith("g.dad:1:1: error:")
