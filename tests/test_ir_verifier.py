"""The verifier rejects malformed IR, each with a message naming the function, op and rule."""
import pytest

from dad.lang.ir import F64, I64, Builder, Function, Module
from dad.lang.irparser import parse_module
from dad.lang.ops import OPS
from dad.lang.verifier import _RULES, VerifyError, verify


def bad(body: str, params: str = "%x: f64, %n: i64, %a: memref<?x?xf64>, %c: i1",
        results: str = "f64", extra: str = "") -> str:
    return f"func.func @f({params}) -> {results} {{\n{body}\n}}\n{extra}"


GOOD = bad("  func.return %x : ()")

HELPER = """func.func @g(%y: f64) -> (f64, i64) {
  %k = arith.constant {value = 1} : i64
  func.return %y, %k : ()
}
"""

CASES = [
    ("unknown op", "  %y = arith.frobnicate %x : f64\n  func.return %y : ()",
     "op 'arith.frobnicate' (result %y, at body[0]): unknown op name"),
    ("operand count", "  %y = arith.addf %x : f64\n  func.return %y : ()",
     "'arith.addf' (result %y, at body[0]): expects 2 operand(s), has 1"),
    ("region count", "  %y = scf.if %c : f64\n  func.return %y : ()",
     "expects 2 region(s), has 0"),
    ("missing terminator", "  %y = arith.addf %x, %x : f64",
     "block does not end in a terminator (expected 'func.return')"),
    ("terminator not last", "  func.return %x : ()\n  func.return %x : ()",
     "terminator is not the last op of its block"),
    ("wrong terminator", "  scf.yield %x : ()", "block must end in 'func.return', not 'scf.yield'"),
    ("return types", "  func.return %n : ()", "func.return vs function results: types (i64) do not match (f64)"),
    ("mixed float/int", "  %y = arith.addf %x, %n : f64\n  func.return %y : ()",
     "operands must be the same float type, got f64 and i64"),
    ("int op on floats", "  %y = arith.addi %x, %x : f64\n  func.return %y : ()",
     "operands must be the same integer type"),
    ("result type", "  %y = arith.addf %x, %x : i64\n  func.return %x : ()", "result type i64 != operand type f64"),
    ("cmpf pred", '  %b = arith.cmpf %x, %x {pred = "slt"} : i1\n  func.return %x : ()',
     "attribute 'pred' must be one of oeq"),
    ("cmpi pred missing", "  %b = arith.cmpi %n, %n : i1\n  func.return %x : ()",
     "attribute 'pred' must be one of eq, ne"),
    ("select cond", "  %y = arith.select %x, %x, %x : f64\n  func.return %y : ()", "condition must be i1, got f64"),
    ("select arms", "  %y = arith.select %c, %x, %n : f64\n  func.return %y : ()", "both choices must have one type"),
    ("constant value missing", "  %y = arith.constant : f64\n  func.return %y : ()", "needs attribute 'value'"),
    ("constant value type", '  %y = arith.constant {value = "no"} : f64\n  func.return %y : ()',
     "value 'no' does not fit type f64"),
    ("cast", "  %y = arith.sitofp %x : f64\n  func.return %y : ()", "casts integer -> float, got f64 -> f64"),
    ("dim index missing", "  %d = memref.dim %a : i64\n  func.return %x : ()",
     "attribute 'index' must be an int in [0, 2)"),
    ("dim index range", "  %d = memref.dim %a {index = 2} : i64\n  func.return %x : ()", "in [0, 2), got 2"),
    ("load rank", "  %v = memref.load %a, %n : f64\n  func.return %v : ()", "needs 2 index(es) for memref<?x?xf64>, got 1"),
    ("load index type", "  %v = memref.load %a, %n, %x : f64\n  func.return %v : ()", "indices must be i64, got f64"),
    ("load result", "  %v = memref.load %a, %n, %n : i64\n  func.return %x : ()", "result type i64 != element type f64"),
    ("store value", "  memref.store %n, %a, %n, %n : ()\n  func.return %x : ()", "stored value type i64 != element type f64"),
    ("store on scalar", "  memref.store %x, %x : ()\n  func.return %x : ()", "second operand must be a memref, got f64"),
    ("alloc dims", "  %b = memref.alloc %n : memref<?x?xf64>\n  func.return %x : ()", "needs 2 dimension(s)"),
    ("undefined later value", "  %y = arith.addf %x, %z : f64\n  %z = arith.addf %x, %x : f64\n  func.return %y : ()",
     None),  # the parser already rejects a use before definition
    ("use of inner value outside", """  %c0 = arith.constant {value = 0} : i64
  %c1 = arith.constant {value = 1} : i64
  scf.for %c0, %n, %c1 : () {
  ^(%i: i64):
    %t = arith.addf %x, %x : f64
    scf.yield : ()
  }
  %u = arith.addf %t, %x : f64
  func.return %u : ()""", "operand #0 %t is not defined before its use"),
    ("for bounds", """  %s = scf.for %x, %n, %n, %x : f64 {
  ^(%i: i64, %acc: f64):
    scf.yield %acc : ()
  }
  func.return %s : ()""", "lb must be i64, got f64"),
    ("for body args", """  %s = scf.for %n, %n, %n, %x : f64 {
  ^(%i: i64, %acc: i64):
    scf.yield %i : ()
  }
  func.return %s : ()""", "body arguments vs (i64, carried...): types (i64, i64) do not match (i64, f64)"),
    ("for yield types", """  %s = scf.for %n, %n, %n, %x : f64 {
  ^(%i: i64, %acc: f64):
    scf.yield %i : ()
  }
  func.return %s : ()""", "scf.yield vs carried values: types (i64) do not match (f64)"),
    ("for yields with return", """  %s = scf.for %n, %n, %n, %x : f64 {
  ^(%i: i64, %acc: f64):
    func.return %acc : ()
  }
  func.return %s : ()""", "block must end in 'scf.yield', not 'func.return'"),
    ("if cond", """  %r = scf.if %x : f64 {
  ^():
    scf.yield %x : ()
  } {
  ^():
    scf.yield %x : ()
  }
  func.return %r : ()""", "condition must be i1, got f64"),
    ("if yield types", """  %r = scf.if %c : f64 {
  ^():
    scf.yield %x : ()
  } {
  ^():
    scf.yield %n : ()
  }
  func.return %r : ()""", "scf.yield of else vs results: types (i64) do not match (f64)"),
    ("empty block", """  scf.if %c : () {
  ^():
  } {
  ^():
    scf.yield : ()
  }
  func.return %x : ()""", "is empty; it must end in 'scf.yield'"),
    ("while before terminator", """  %w = scf.while %x : f64 {
  ^(%v: f64):
    scf.yield %v : ()
  } {
  ^(%v_1: f64):
    scf.yield %v_1 : ()
  }
  func.return %w : ()""", "block must end in 'scf.condition', not 'scf.yield'"),
    ("while condition", """  %w = scf.while %x : f64 {
  ^(%v: f64):
    scf.condition %v, %v : ()
  } {
  ^(%v_1: f64):
    scf.yield %v_1 : ()
  }
  func.return %w : ()""", "scf.condition needs an i1 condition first"),
    ("while after yield", """  %w = scf.while %x : f64 {
  ^(%v: f64):
    scf.condition %c, %v : ()
  } {
  ^(%v_1: f64):
    scf.yield %n : ()
  }
  func.return %w : ()""", "scf.yield of after vs initial values"),
    ("call unknown", '  %r = func.call %x {callee = "h"} : f64\n  func.return %r : ()', "callee @h is not in the module"),
    ("call args", '  %r, %k = func.call %n {callee = "g"} : (f64, i64)\n  func.return %r : ()',
     "arguments of @g: types (i64) do not match (f64)"),
    ("call results", '  %r = func.call %x {callee = "g"} : f64\n  func.return %r : ()',
     "results of @g: types (f64) do not match (f64, i64)"),
    ("fastmath", '  %y = arith.addf %x, %x {fastmath = "yolo"} : f64\n  func.return %y : ()',
     "attribute 'fastmath' must be one of"),
]


def test_good_is_accepted():
    verify(parse_module(GOOD))
    verify(parse_module(bad('  %r, %k = func.call %x {callee = "g"} : (f64, i64)\n  func.return %r : ()',
                            extra=HELPER)))


@pytest.mark.parametrize("name, body, message", CASES, ids=[c[0] for c in CASES])
def test_rejected(name, body, message):
    if message is None:
        with pytest.raises(ValueError, match="use of undefined value"):
            parse_module(bad(body))
        return
    with pytest.raises(VerifyError) as e:
        verify(parse_module(bad(body, extra=HELPER)))
    assert str(e.value).startswith("@f"), str(e.value)
    assert message in str(e.value), str(e.value)


def test_use_before_definition_built_directly():
    f = Function("f", [F64], [F64], ["x"])
    b = Builder(f.body)
    y = b.addf(f.params[0], f.params[0], name_hint="y")
    z = b.mulf(y, y, name_hint="z")
    b.ret([z])
    f.body.ops.reverse()  # the return first, and z's use of y before y
    f.body.ops[:] = [f.body.ops[1], f.body.ops[2], f.body.ops[0]]  # z, y, return
    with pytest.raises(VerifyError, match=r"op 'arith.mulf' \(result %0?z?.*operand #0"):
        verify(Module([f]))


def test_value_from_other_function_rejected():
    g = Function("g", [F64], [F64], ["y"])
    Builder(g.body).ret([g.params[0]])
    f = Function("f", [F64], [F64], ["x"])
    Builder(f.body).ret([g.params[0]])
    with pytest.raises(VerifyError, match="@f: op 'func.return'.*operand #0"):
        verify(Module([g, f]))


def test_value_of_sibling_region_rejected():
    f = Function("f", [I64], [], ["n"])
    b = Builder(f.body)
    c0, c1 = b.i(0), b.i(1)
    _, body1 = b.for_(c0, f.params[0], c1, [])
    inner = Builder(body1).addi(body1.args[0], c1, name_hint="inner")
    Builder(body1).yield_([])
    _, body2 = b.for_(c0, f.params[0], c1, [])
    Builder(body2).addi(inner, c1)
    Builder(body2).yield_([])
    b.ret([])
    with pytest.raises(VerifyError, match="%inner is not defined before its use"):
        verify(Module([f]))


def test_rules_cover_the_catalogue():
    assert set(OPS) == set(_RULES)


def test_i64_constant_range():
    verify(parse_module(bad("  %k = arith.constant {value = -9223372036854775808} : i64\n  func.return %x : ()")))
    with pytest.raises(VerifyError, match="does not fit type i64"):
        verify(parse_module(bad("  %k = arith.constant {value = 9223372036854775808} : i64\n  func.return %x : ()")))
