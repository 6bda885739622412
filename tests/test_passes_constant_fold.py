"""Golden tests for constant_fold: IR text in, CHECK lines on the printed result (more in tests/ir/constant_fold/)."""
import math

import numpy as np
import pytest
from golden import check_passes

from dad.lang.irparser import parse_module
from dad.lang.passes import constant_fold, dce
from dad.lang.printer import print_module

FOLD = [constant_fold, dce]


def fold_value(op_line: str, rtype: str, consts: dict, args: list[str]):
    """Fold one op over constants; return the folded value (or None if not folded)."""
    lines = [f"  %{n} = arith.constant {{value = {v}}} : {t}" for n, (v, t) in consts.items()]
    ir = ("func.func @f(" + ", ".join(args) + f") -> {rtype} {{\n" + "\n".join(lines) +
          f"\n  %r = {op_line} : {rtype}\n  func.return %r : ()\n}}\n")
    m = parse_module(ir)
    from dad.lang.passes import PassManager
    PassManager(FOLD, verify=True).run(m)
    ops = m["f"].body.ops
    if len(ops) == 2 and ops[0].name == "arith.constant":
        return ops[0].attrs["value"]
    return None


@pytest.mark.parametrize("op, a, b", [("arith.addf", 0.1, 0.2), ("arith.mulf", 0.1, 3.0),
                                      ("arith.divf", 1.0, 3.0), ("arith.subf", 1e8, 0.3),
                                      ("arith.remf", 5.5, -2.0)])
def test_f32_rounds_like_float32(op, a, b):
    got = fold_value(f"{op} %a, %b", "f32", {"a": (a, "f32"), "b": (b, "f32")}, [])
    fn = {"arith.addf": np.add, "arith.mulf": np.multiply, "arith.divf": np.divide,
          "arith.subf": np.subtract, "arith.remf": np.fmod}[op]
    assert got == float(fn(np.float32(a), np.float32(b)))
    assert got == float(np.float32(got))  # representable in f32


def test_f64_add_is_double_not_float32():
    assert fold_value("arith.addf %a, %b", "f64", {"a": (0.1, "f64"), "b": (0.2, "f64")}, []) \
        == 0.1 + 0.2


@pytest.mark.parametrize("op, a, b, want", [
    ("arith.addi", 2**63 - 1, 1, -2**63),          # wraps
    ("arith.muli", 2**62, 4, 0),
    ("arith.subi", -2**63, 1, 2**63 - 1),
    ("arith.floordivsi", -7, 2, -4),                 # Python floor semantics
    ("arith.floormodsi", -7, 2, 1),
    ("arith.floordivsi", -2**63, -1, -2**63),        # overflow wraps
    ("arith.maxsi", -3, 5, 5),
    ("arith.floordivsi", 7, 0, None),                # division by zero raises at run time
    ("arith.floormodsi", 7, 0, None),
])
def test_integer_ops(op, a, b, want):
    assert fold_value(f"{op} %a, %b", "i64", {"a": (a, "i64"), "b": (b, "i64")}, []) == want


@pytest.mark.parametrize("pred, a, b, want", [
    ("olt", 1.0, 2.0, True), ("oeq", "nan", "nan", False), ("une", "nan", "nan", True),
    ("uno", 1.0, "nan", True), ("ord", 1.0, 2.0, True), ("oeq", 0.0, -0.0, True),
    ("one", 1.0, "nan", False),
])
def test_cmpf(pred, a, b, want):
    got = fold_value(f'arith.cmpf %a, %b {{pred = "{pred}"}}', "i1",
                     {"a": (a, "f64"), "b": (b, "f64")}, [])
    assert got is want


@pytest.mark.parametrize("src, value, op, rtype, want", [
    ("f64", "nan", "arith.fptosi", "i64", 0),
    ("f64", "inf", "arith.fptosi", "i64", 2**63 - 1),
    ("f64", "-2.9", "arith.fptosi", "i64", -2),
    ("f64", "1e300", "arith.fptosi", "i64", 2**63 - 1),
    ("i64", str(2**53 + 1), "arith.sitofp", "f64", float(2**53)),
    ("f64", "0.1", "arith.truncf", "f32", float(np.float32(0.1))),
    ("f64", "1e300", "arith.truncf", "f32", math.inf),
    ("f32", "0.1", "arith.extf", "f64", float(np.float32(0.1))),
    ("i1", "true", "arith.extui", "i64", 1),
    ("f64", "-4.0", "math.sqrt", "f64", None),  # nan: checked below
    ("f64", "-2.5", "math.floor", "f64", -3.0),
    ("f64", "-0.5", "math.ceil", "f64", -0.0),
    ("f64", "1.0", "math.sin", "f64", None),    # libm-dependent: not folded
])
def test_casts_and_exact_math(src, value, op, rtype, want):
    got = fold_value(f"{op} %a", rtype, {"a": (value, src)}, [])
    if op == "math.sqrt":
        assert math.isnan(got)
    elif isinstance(want, float):
        assert got == want and math.copysign(1, got) == math.copysign(1, want)
    else:
        assert got == want


def test_constants_are_not_folded_into_loops_with_dynamic_bounds():
    out = check_passes("""
func.func @f(%n: i64) -> f64 {
  %c0 = arith.constant {value = 0} : i64
  %c1 = arith.constant {value = 1} : i64
  %z = arith.constant {value = 0.0} : f64
  %s = scf.for %c0, %n, %c1, %z : f64 {
  ^(%i: i64, %acc: f64):
    %two = arith.constant {value = 2.0} : f64
    %h = arith.mulf %two, %two : f64
    %acc_1 = arith.addf %acc, %h : f64
    scf.yield %acc_1 : ()
  }
  func.return %s : ()
}
""", FOLD, """
    CHECK: scf.for
    CHECK: %h = arith.constant {value = 4.0} : f64
    CHECK-NEXT: %acc_1 = arith.addf %acc, %h : f64
""")
    assert print_module(parse_module(out)) == out


# ----------------------------------------------------------------------------- x + 0.0 under nsz
ADD_ZERO = """func.func @f(%x: TY) -> TY {
  %zero = arith.constant {value = ZERO} : TY
  %r = arith.addf OPERANDS FM: TY
  func.return %r : ()
}
"""


def add_zero(ty: str, zero: str, left: bool, fm: str) -> str:
    return (ADD_ZERO.replace("TY", ty).replace("ZERO", zero)
            .replace("OPERANDS", "%zero, %x" if left else "%x, %zero")
            .replace("FM", f'{{fastmath = "{fm}"}} ' if fm else ""))


SPECIAL = [0.0, -0.0, 1.5, -2.25, math.inf, -math.inf, math.nan, 5e-324, -1e300]


@pytest.mark.parametrize("ty", ["f64", "f32"])
@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("zero, fm, folds", [
    ("0.0", "", False), ("0.0", "reassoc", False), ("0.0", "reassoc nsz", True),
    ("-0.0", "", True), ("-0.0", "reassoc", True), ("-0.0", "reassoc nsz", True), ("-0.0", "fast", True)])
def test_add_of_zero(ty, left, zero, fm, folds):
    """`x + 0.0` is x but for x = -0.0, where the sum is +0.0: folded only when the add
    declares the sign of a zero insignificant (nsz); `x + (-0.0)` is x for every x."""
    from test_passes_semantics import Interp
    text = add_zero(ty, zero, left, fm)
    m = parse_module(text)
    from dad.lang.passes import PassManager
    PassManager(FOLD, verify=True).run(m)
    ops = [o.name for o in m["f"].body.ops]
    assert ops == (["func.return"] if folds else ["arith.constant", "arith.addf", "func.return"])
    if folds:
        assert m["f"].body.ops[-1].operands == m["f"].params
    else:
        assert m["f"].body.ops[1].attrs == ({"fastmath": fm} if fm else {})
    dt = np.float64 if ty == "f64" else np.float32
    for x in SPECIAL:
        with np.errstate(all="ignore"):
            xv = dt(x)
        [want] = Interp(parse_module(text), strict=True).call("f", [xv])
        [got] = Interp(m, strict=True).call("f", [xv])
        if math.isnan(want):
            assert math.isnan(got)
        elif "nsz" in fm:
            assert got == want                       # the sign of a zero may differ
        else:
            assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want), (x, got, want)
    # the case that makes the difference: -0.0 + 0.0 is +0.0
    if zero == "0.0" and folds:
        [got] = Interp(m, strict=True).call("f", [dt(-0.0)])
        assert math.copysign(1.0, got) == -1.0
