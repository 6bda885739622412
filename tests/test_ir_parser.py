"""The IR parser: what it reads back, and its line:col errors."""
import math

import pytest

from dad.lang.ir import PTR, F64, MemRefType
from dad.lang.irparser import parse_function, parse_module
from dad.lang.printer import print_module

TEXT = """func.func @f(%x: f64, %A: memref<?x?xf32>, %t: ptr, %s: memref<f64>) -> (f64, i64) attributes {l = [1, -2.5, nan, -inf, inf, true, "q\\"s", []], sig = "(x: f64) -> f64"} {
  %x.dot = arith.constant {value = -0.0} : f64
  %0 = arith.constant {value = 1e+300} : f64
  %k = arith.constant {value = -9223372036854775808} : i64
  %x_1, %1 = func.call %x {callee = "g"} : (f64, i64)
  func.return %x.dot, %k : ()
}

func.func @g(%y: f64) -> (f64, i64) {
  %k = arith.constant {value = 7} : i64
  func.return %y, %k : ()
}
"""


def test_values_types_attributes_and_names():
    m = parse_module(TEXT)
    f = m["f"]
    assert [str(t) for t in f.param_types] == ["f64", "memref<?x?xf32>", "ptr", "memref<f64>"]
    assert f.param_types[2] is PTR and f.param_types[3] == MemRefType(F64, 0)
    l = f.attrs["l"]
    assert l[:2] == (1, -2.5) and isinstance(l[0], int) and math.isnan(l[2])
    assert l[3:] == (-math.inf, math.inf, True, 'q"s', ())
    const = f.body.ops[0]
    assert const.results[0].name == "x.dot" and math.copysign(1, const.attrs["value"]) == -1
    assert f.body.ops[1].results[0].name is None           # numbered names are not hints
    assert f.body.ops[2].attrs["value"] == -2**63
    assert print_module(m) == TEXT


def test_parse_function():
    f = parse_function(TEXT.split("\n\n")[1])
    assert f.name == "g" and f.result_types[1].name == "i64"
    with pytest.raises(ValueError, match=r"^9:1: expected end of input"):
        parse_function(TEXT)


@pytest.mark.parametrize("text, message", [
    ("func.func @f() -> () {\n  %0 = arith.constant {value = 1} : i64\n  func.return %1 : ()\n}",
     "3:15: use of undefined value %1"),
    ("func.func @f() -> () {\n  func.return : ()\n", "3:1: unexpected end of input: missing '}'"),
    ("func.func @f(%x: f64, %x: f64) -> () {\n  func.return : ()\n}", "1:23: value %x is defined twice"),
    ("func.func @f() -> () {\n  %a, %b = arith.constant {value = 1} : i64\n}", "2:39: arith.constant names 2 result(s)"),
    ("func.func @f(%x: memref<?xq>) -> () {}", "1:18: unknown element type"),
    ("func.func @f(%x: f63) -> () {}", "1:18: expected a type, found 'f63'"),
    ("func.func @f() -> () {\n  %a = arith.constant {value = 1 : i64\n}", "2:34: expected ','"),
    ("func.func @f() -> () {\n  %a = arith.constant {value = 1, value = 2} : i64\n}", "duplicate attribute 'value'"),
    ("func.func @f() -> () {\n  %a = arith.constant {value = ?} : i64\n}", "2:32: unexpected character '?'"),
    ("func.func @f() -> () {\n  %a = constant : i64\n}", "2:8: expected an op name (dialect.op)"),
    ("func.func @f() -> () {\n  scf.if %c : () {\n  }\n}", "2:10: use of undefined value %c"),
    ("func.func @f() -> () {\n  func.return : ()\n}\nfunc.func @f() -> () {\n  func.return : ()\n}",
     "4:1: function @f is defined twice"),
    ("func.func f() -> () {}", "1:11: expected a function name"),
])
def test_errors_carry_line_and_column(text, message):
    with pytest.raises(ValueError) as e:
        parse_module(text)
    assert message in str(e.value), str(e.value)


def test_comments_run_to_the_end_of_the_line():
    text = ('// RUN: dadc opt -p cse %s | filecheck %s\n'
            'func.func @f(%x: f64) -> f64 attributes {sig = "// not a comment"} {  // one\n'
            '  // a whole line\n'
            '  %0 = arith.mulf %x, %x : f64 // two\n'
            '  func.return %0 : ()\n'
            '}\n// CHECK: arith.mulf\n')
    m = parse_module(text)
    assert m["f"].attrs["sig"] == "// not a comment"
    assert [op.name for op in m["f"].body.ops] == ["arith.mulf", "func.return"]
