"""The FileCheck helper itself: it passes when it should and fails when it should."""
import pytest
from filecheck import filecheck

TEXT = """\
func.func @f(%x: f64) -> f64 {
  %0 = arith.mulf %x, %x : f64
  %1 = arith.addf %0, %x : f64
  func.return %1 : ()
}
func.func @g(%y: i64) -> i64 {
  %0 = arith.addi %y, %y : i64
  func.return %0 : ()
}
"""


def test_passing_checks():
    filecheck(TEXT, """
        // CHECK-LABEL: func.func @f
        // CHECK: arith.mulf
        // CHECK-SAME: %x, %x
        // CHECK-NEXT: arith.addf
        // CHECK-NOT: arith.subf
        // CHECK: func.return %1
        // CHECK-LABEL: func.func @g
        // CHECK-NOT: arith.mulf
        // CHECK: arith.addi %y, %y
    """)


@pytest.mark.parametrize("checks, message", [
    ("CHECK: arith.divf", "'arith.divf' (check line 1) not found"),
    ("CHECK: arith.addf\nCHECK: arith.mulf", "'arith.mulf' (check line 2) not found"),
    ("CHECK: arith.mulf\nCHECK-NEXT: func.return", "not found on the next line"),
    ("CHECK: arith.mulf\nCHECK-SAME: %0", "not found on the line of the previous match"),
    ("CHECK: @f\nCHECK-NOT: arith.addf\nCHECK: func.return", "found on input line 3"),
    ("CHECK: func.return %1\nCHECK-NOT: arith.addi", "CHECK-NOT: 'arith.addi'"),
    # a label confines the checks after it to its own section
    ("CHECK-LABEL: @f\nCHECK: arith.addi\nCHECK-LABEL: @g", "'arith.addi' (check line 2) not found"),
    ("CHECK-LABEL: @h", "not found"),
])
def test_failing_checks(checks, message):
    with pytest.raises(AssertionError, match=None) as e:
        filecheck(TEXT, checks)
    assert message in str(e.value)
    assert "|" in str(e.value)  # shows the numbered input


def test_not_in_section_only():
    # arith.addi appears in @g, after the @f section: the CHECK-NOT in @f does not see it
    filecheck(TEXT, "CHECK-LABEL: @f\nCHECK-NOT: arith.addi\nCHECK-LABEL: @g")


def test_bad_check_text():
    with pytest.raises(ValueError):
        filecheck(TEXT, "no directives here")
    with pytest.raises(ValueError):
        filecheck(TEXT, "CHECK-NEXT: x")
