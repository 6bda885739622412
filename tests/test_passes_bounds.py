"""Golden tests for elide_bounds_checks built from one loop template (more in tests/ir/bounds/)."""
from golden import check_passes

from dad.lang.passes import elide_bounds_checks

LOOP = """
func.func @f(%x: memref<?xf64>, %A: memref<?x?xf64>) -> f64 {{
  %n = memref.dim %x {{index = 0}} : i64
  %m = memref.dim %A {{index = 1}} : i64
  %lb = arith.constant {{value = {lb}}} : i64
  %c1 = arith.constant {{value = 1}} : i64
  %k = arith.constant {{value = {k}}} : i64
  %ub = {ub}
  %z = arith.constant {{value = 0.0}} : f64
  %s = scf.for %lb, %ub, %c1, %z : f64 {{
  ^(%i: i64, %acc: f64):
    %j = {index}
    %v = memref.load %x, %j {{checked = true, loc = "f.dad:3:5"}} : f64
    %acc_1 = arith.addf %acc, %v : f64
    scf.yield %acc_1 : ()
  }}
  func.return %s : ()
}}
"""


def run(lb=0, k=1, ub="arith.subi %n, %k : i64", index="arith.addi %i, %k : i64"):
    return check_passes(LOOP.format(lb=lb, k=k, ub=ub, index=index), [elide_bounds_checks],
                        "CHECK: memref.load")


def checked(out: str) -> bool:
    return "checked = true" in out


def test_iv_plus_offset_under_dim_minus_offset_is_elided():
    assert not checked(run())                                     # i+1, i < n-1
    assert not checked(run(ub="arith.addi %n, %lb : i64", index="arith.addi %i, %lb : i64"))  # n+0, i+0


def test_plain_iv_under_dim_is_elided():
    out = check_passes(LOOP.format(lb=0, k=1, ub="arith.addi %n, %lb : i64",
                                   index="arith.addi %i, %lb : i64"),
                       [elide_bounds_checks], 'CHECK: memref.load %x, %j {checked = false, loc = "f.dad:3:5"}')
    assert "checked = false" in out


def test_unprovable_indices_keep_their_check():
    assert checked(run(k=1, ub="arith.subi %n, %lb : i64"))      # i+1 < n+1: may be n
    assert checked(run(lb=-1, ub="arith.subi %n, %k : i64", index="arith.addi %i, %lb : i64"))  # i-1 from -1... below 0
    assert checked(run(ub="memref.dim %A {index = 1} : i64", index="arith.addi %i, %lb : i64"))  # other array
    assert checked(run(ub="arith.subi %m, %k : i64"))            # dim of %A, not %x
    assert checked(run(ub="arith.muli %n, %k : i64"))            # not dim - c
    assert checked(run(index="arith.muli %i, %k : i64"))         # not iv + c


def test_negative_offset_with_positive_lb():
    # for i in 1..n: x[i-1]
    out = run(lb=1, k=-1, ub="arith.subi %n, %lb : i64", index="arith.addi %i, %k : i64")
    assert not checked(out)  # i in [1, n-1): i-1 in [0, n-2)
    out = run(lb=0, k=-1, ub="arith.subi %n, %c1 : i64", index="arith.addi %i, %k : i64")
    assert checked(out)  # i = 0 reads x[-1]
    out = run(lb=1, k=2, ub="arith.subi %n, %c1 : i64", index="arith.addi %i, %k : i64")
    assert checked(out)  # i+2 < n+1: may be n
    out = run(lb=1, k=-1, ub="arith.addi %n, %c1 : i64", index="arith.addi %i, %k : i64")
    assert not checked(out)  # i in [1, n+1): i-1 in [0, n)


def test_dynamic_step_keeps_check():
    out = check_passes("""
func.func @f(%x: memref<?xf64>, %st: i64) -> () {
  %n = memref.dim %x {index = 0} : i64
  %c0 = arith.constant {value = 0} : i64
  scf.for %c0, %n, %st : () {
  ^(%i: i64):
    %v = memref.load %x, %i {checked = true} : f64
    scf.yield : ()
  }
  func.return : ()
}
""", [elide_bounds_checks], "CHECK: checked = true")
    assert "checked = false" not in out


