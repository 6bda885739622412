"""Parser: precedence, associativity, contextual keywords, literals."""
import pytest

from dad.frontend import CompileError, parse
from dad.frontend import ast as A


def expr(text: str) -> A.Expr:
    prog = parse(f"fn f() -> f64 {{ return {text}; }}", "p.dad")
    return prog.items[0].body.stmts[0].value


def show(e) -> str:
    if isinstance(e, A.Binary):
        return f"({show(e.left)} {e.op} {show(e.right)})"
    if isinstance(e, A.Unary):
        return f"({e.op} {show(e.operand)})"
    if isinstance(e, A.Name):
        return e.id
    if isinstance(e, (A.IntLit, A.FloatLit)):
        return repr(e.value)
    if isinstance(e, A.BoolLit):
        return str(e.value).lower()
    if isinstance(e, A.Call):
        return f"{e.func}({', '.join(show(a) for a in e.args)})"
    if isinstance(e, A.Index):
        return f"{show(e.base)}[{', '.join(show(i) for i in e.indices)}]"
    if isinstance(e, A.Slice):
        return f"{show(e.start)}..{show(e.stop)}"
    if isinstance(e, A.TupleExpr):
        return "(" + ", ".join(show(i) for i in e.items) + ",)"
    raise TypeError(e)


@pytest.mark.parametrize("text, tree", [
    ("-x**2", "(- (x ** 2))"),
    ("x**y**z", "(x ** (y ** z))"),
    ("2**-x", "(2 ** (- x))"),
    ("a + b * c", "(a + (b * c))"),
    ("a - b - c", "((a - b) - c)"),
    ("a / b % c", "((a / b) % c)"),
    ("-a * b", "((- a) * b)"),
    ("a < b + 1", "(a < (b + 1))"),
    ("not a < b", "(not (a < b))"),
    ("a or b and c", "(a or (b and c))"),
    ("not a and b", "((not a) and b)"),
    ("a == b or c != d", "((a == b) or (c != d))"),
    ("f(x)[i, j] * 2", "(f(x)[i, j] * 2)"),
    ("x[a..b + 1]", "x[a..(b + 1)]"),
    ("(a, b + 1)", "(a, (b + 1),)"),
    ("A[i][j]", "A[i][j]"),
])
def test_precedence(text, tree):
    assert show(expr(text)) == tree


def test_comparisons_are_not_chained():
    with pytest.raises(CompileError) as ei:
        expr("a < b < c")
    assert "p.dad:1:30: error: unexpected '<'" in str(ei.value)


def test_literals():
    assert isinstance(expr("42"), A.IntLit) and expr("42").value == 42
    for text, v in [("1.0", 1.0), ("2.5e-3", 2.5e-3), ("1e9", 1e9), ("3E+2", 300.0)]:
        e = expr(text)
        assert isinstance(e, A.FloatLit) and e.value == v
    assert show(expr("-3")) == "(- 3)"
    assert expr("true").value is True and expr("false").value is False


def test_range_after_integer_is_not_a_float():
    prog = parse("fn f(n: i64) -> i64 { for i in 0..n { } return 0; }", "p.dad")
    loop = prog.items[0].body.stmts[0]
    assert isinstance(loop.start, A.IntLit) and loop.start.value == 0


def test_step_is_contextual():
    src = """
fn step(step: i64) -> i64 { return step; }
fn g(n: i64) -> i64 { var s = 0; for i in 0..n step 2 { s += step(i); } return s; }
"""
    prog = parse(src, "p.dad")
    assert prog.items[0].name == "step"
    loop = prog.items[1].body.stmts[1]
    assert loop.step.value == 2
    assert loop.body.stmts[0].value.func == "step"


def test_wrt_and_dtype_are_ordinary_names():
    src = """
fn wrt(dtype: f64) -> f64 { let wrt = dtype; return wrt; }
fn z(n: i64) -> i64[n] { return zeros(n, dtype=i64); }
fn g = grad(wrt, wrt=dtype);
fn h = hvp(wrt, wrt=[dtype, x]);
fn j = jacobian(grad(wrt));
"""
    prog = parse(src, "p.dad")
    call = prog.items[1].body.stmts[0].value
    assert call.kwargs[0].name == "dtype" and call.kwargs[0].value.id == "i64"
    g, h, j = prog.items[2:]
    assert isinstance(g, A.DerivedDef) and g.transform.name == "grad"
    assert g.transform.options[0].name == "wrt" and g.transform.options[0].value == "dtype"
    assert h.transform.options[0].value == ["dtype", "x"]
    assert isinstance(j.transform.fn, A.Transform) and j.transform.fn.fn == "wrt"


def test_reserved_words_are_not_names():
    with pytest.raises(CompileError) as ei:
        parse("fn f() -> f64 { let for = 1.0; return 1.0; }", "p.dad")
    assert "p.dad:1:21: error: 'for' is a reserved word" in str(ei.value)


def test_statements_and_spans():
    src = """fn f(x: f64[n], k: i64) -> (f64, f64[n]) {
    let (a, b) = g(x);   # comment
    var y: f64 = 1.0;
    if a > 0.0 { y = 2.0; } else if a < 0.0 { y -= 1.0; } else { y *= 3.0; }
    while y < 10.0 { y += 1.0; if y > 5.0 { break; } continue; }
    return (y, x);
}"""
    prog = parse(src, "s.dad")
    f = prog.items[0]
    let, var, if_, wh, ret = f.body.stmts
    assert let.destructure and let.names == ["a", "b"]
    assert var.mutable and var.type.name == "f64"
    assert isinstance(if_.orelse.stmts[0], A.If)
    assert isinstance(wh.body.stmts[1].then.stmts[0], A.Break)
    assert ret.span.line == 6 and ret.span.col == 5
    assert let.value.span == A.Span("s.dad", 2, 18, 2, 22)
