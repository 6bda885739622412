"""Golden tests for cse and dce."""
from filecheck import check_passes

from dad.lang.passes import cse, dce


def test_cse_same_block_and_enclosing_scopes():
    check_passes("""
func.func @f(%x: f64, %n: i64, %a: memref<?xf64>) -> f64 {
  %s = arith.mulf %x, %x : f64
  %t = arith.mulf %x, %x : f64
  %d1 = memref.dim %a {index = 0} : i64
  %d2 = memref.dim %a {index = 0} : i64
  %c0 = arith.constant {value = 0} : i64
  %c1 = arith.constant {value = 1} : i64
  %u = scf.for %c0, %d2, %c1, %s : f64 {
  ^(%i: i64, %acc: f64):
    %w = arith.mulf %x, %x : f64
    %v = arith.addf %acc, %w : f64
    scf.yield %v : ()
  }
  %r = arith.addf %t, %u : f64
  func.return %r : ()
}
""", [cse], """
    CHECK: %s = arith.mulf %x, %x : f64
    CHECK-NOT: %t = arith.mulf
    CHECK: %d1 = memref.dim %a {index = 0} : i64
    CHECK-NOT: %d2
    CHECK: scf.for %c0, %d1, %c1, %s
    CHECK-NOT: %w = arith.mulf
    CHECK: %v = arith.addf %acc, %s
    CHECK: %r = arith.addf %s, %u
""")


def test_cse_does_not_merge_across_sibling_regions_or_signed_zeros():
    check_passes("""
func.func @f(%x: f64, %c: i1) -> (f64, f64, f64) {
  %z = arith.constant {value = 0.0} : f64
  %mz = arith.constant {value = -0.0} : f64
  %n1 = arith.constant {value = nan} : f64
  %n2 = arith.constant {value = nan} : f64
  %r = scf.if %c : f64 {
  ^():
    %a = arith.mulf %x, %x : f64
    scf.yield %a : ()
  } {
  ^():
    %b = arith.mulf %x, %x : f64
    scf.yield %b : ()
  }
  %m = arith.addf %z, %mz : f64
  %p = arith.addf %n1, %n2 : f64
  func.return %r, %m, %p : ()
}
""", [cse], """
    CHECK: %z = arith.constant {value = 0.0}
    CHECK-NEXT: %mz = arith.constant {value = -0.0}
    CHECK-NEXT: %n1 = arith.constant {value = nan}
    CHECK-NEXT: scf.if
    CHECK: %a = arith.mulf %x, %x
    CHECK: %b = arith.mulf %x, %x
    CHECK: %m = arith.addf %z, %mz
    CHECK-NEXT: %p = arith.addf %n1, %n1
""")


def test_cse_never_merges_impure_ops():
    check_passes("""
func.func @f(%a: memref<?xf64>, %i: i64, %k: i64) -> (f64, f64, i64, i64) {
  %x = memref.load %a, %i {checked = true} : f64
  %y = memref.load %a, %i {checked = true} : f64
  %q1 = arith.floordivsi %k, %i : i64
  %q2 = arith.floordivsi %k, %i : i64
  func.return %x, %y, %q1, %q2 : ()
}
""", [cse], """
    CHECK: %x = memref.load
    CHECK-NEXT: %y = memref.load
    CHECK-NEXT: %q1 = arith.floordivsi
    CHECK-NEXT: %q2 = arith.floordivsi
    CHECK-NEXT: func.return %x, %y, %q1, %q2
""")


def test_dce_removes_unused_pure_ops_keeps_effects():
    check_passes("""
func.func @f(%x: f64, %a: memref<?xf64>, %i: i64) -> f64 {
  %u = arith.mulf %x, %x : f64
  %v = arith.addf %u, %x : f64
  %l = memref.load %a, %i {checked = true} : f64
  memref.store %x, %a, %i {checked = true} : ()
  %q = arith.floordivsi %i, %i : i64
  func.return %x : ()
}
""", [dce], """
    CHECK-NOT: arith.mulf
    CHECK-NOT: arith.addf
    CHECK: %l = memref.load
    CHECK-NEXT: memref.store
    CHECK-NEXT: %q = arith.floordivsi
    CHECK-NEXT: func.return %x
""")


def test_dce_unused_loop_carried_and_if_results():
    check_passes("""
func.func @f(%x: f64, %n: i64, %c: i1, %a: memref<?xf64>) -> f64 {
  %c0 = arith.constant {value = 0} : i64
  %c1 = arith.constant {value = 1} : i64
  %s, %dead = scf.for %c0, %n, %c1, %x, %x : (f64, f64) {
  ^(%i: i64, %acc: f64, %junk: f64):
    %acc_1 = arith.addf %acc, %x : f64
    %junk_1 = arith.mulf %junk, %acc : f64
    scf.yield %acc_1, %junk_1 : ()
  }
  %r, %r2 = scf.if %c : (f64, f64) {
  ^():
    %p = arith.mulf %s, %s : f64
    scf.yield %s, %p : ()
  } {
  ^():
    scf.yield %x, %x : ()
  }
  %w = scf.for %c0, %n, %c1, %x : f64 {
  ^(%j: i64, %kept: f64):
    memref.store %kept, %a, %j {checked = true} : ()
    scf.yield %kept : ()
  }
  func.return %r : ()
}
""", [dce], """
    CHECK: %s = scf.for %c0, %n, %c1, %x : f64 {
    CHECK-NEXT: ^(%i: i64, %acc: f64):
    CHECK-NEXT: %acc_1 = arith.addf %acc, %x
    CHECK-NEXT: scf.yield %acc_1 : ()
    CHECK: %r = scf.if %c : f64 {
    CHECK-NOT: arith.mulf
    CHECK: scf.yield %s : ()
    CHECK: scf.yield %x : ()
    CHECK: scf.for %c0, %n, %c1, %x : f64 {
    CHECK-NEXT: ^(%j: i64, %kept: f64):
    CHECK-NEXT: memref.store %kept
""")


def test_dce_deletes_pure_loop_without_results():
    check_passes("""
func.func @f(%x: f64, %n: i64) -> f64 {
  %c0 = arith.constant {value = 0} : i64
  %c1 = arith.constant {value = 1} : i64
  %s = scf.for %c0, %n, %c1, %x : f64 {
  ^(%i: i64, %acc: f64):
    %t = arith.sitofp %i : f64
    %acc_1 = arith.addf %acc, %t : f64
    scf.yield %acc_1 : ()
  }
  func.return %x : ()
}
""", [dce], """
    CHECK: func.func @f
    CHECK-NEXT: func.return %x : ()
""")


# ----------------------------------------------------------------------------- dce: loads
# An unused load that cannot raise (`checked = false`, or no `checked` attribute: the loads AD
# writes for its own shadows) is removable; a checked one may raise IndexError and stays.

def test_dce_removes_unused_unchecked_loads_keeps_checked_ones():
    check_passes("""
func.func @f(%a: memref<?xf64>, %i: i64) -> f64 {
  %u = memref.load %a, %i {checked = false} : f64
  %w = memref.load %a, %i : f64
  %c = memref.load %a, %i {checked = true} : f64
  %x = arith.constant {value = 1.0} : f64
  %used = memref.load %a, %i {checked = false} : f64
  %r = arith.addf %x, %used : f64
  func.return %r : ()
}
""", [dce], """
    CHECK: func.func @f
    CHECK-NOT: %u = memref.load
    CHECK-NOT: %w = memref.load
    CHECK: %c = memref.load %a, %i {checked = true}
    CHECK-NEXT: %x = arith.constant
    CHECK-NEXT: %used = memref.load %a, %i {checked = false}
    CHECK-NEXT: %r = arith.addf %x, %used
""")


def test_dce_removes_loops_and_ifs_left_with_unchecked_loads_only():
    check_passes("""
func.func @f(%a: memref<?xf64>, %n: i64, %c: i1) -> f64 {
  %c0 = arith.constant {value = 0} : i64
  %c1 = arith.constant {value = 1} : i64
  %x = arith.constant {value = 2.0} : f64
  scf.for %c0, %n, %c1 : () {
  ^(%i: i64):
    %l = memref.load %a, %i {checked = false} : f64
    %m = arith.mulf %l, %l : f64
    scf.yield : ()
  }
  scf.if %c : () {
  ^():
    %l2 = memref.load %a, %c0 {checked = false} : f64
    scf.yield : ()
  } {
  ^():
    scf.yield : ()
  }
  scf.for %c0, %n, %c1 : () {
  ^(%j: i64):
    %k = memref.load %a, %j {checked = true} : f64
    %dead = arith.mulf %x, %x : f64
    scf.yield : ()
  }
  func.return %x : ()
}
""", [dce], """
    CHECK: %x = arith.constant
    CHECK-NOT: %l = memref.load
    CHECK-NOT: scf.if
    CHECK: scf.for %c0, %n, %c1
    CHECK-NEXT: ^(%j: i64):
    CHECK-NEXT: %k = memref.load %a, %j {checked = true}
    CHECK-NEXT: scf.yield
    CHECK: func.return %x
""")


DCE_LOADS = """
fn oob(x: f64[n]) -> f64 { let a = x[n]; return 1.0; }
fn oob_loop(x: f64[n]) -> f64 { var s = 0.0; for i in 0..n + 1 { let a = x[i]; s += 1.0; } return s; }
fn unused(x: f64[n]) -> f64 { var s = 0.0; for i in 0..n { let a = x[i]; s += 1.0; } return s; }
fn dead_loop(x: f64[n]) -> f64 { for i in 0..n { let a = x[i]; } return 2.0; }
"""


def test_dce_unused_loads_end_to_end():
    import numpy as np
    import pytest

    from dad.api import compile_jit
    from dad.frontend import compile_to_ir
    from dad.lang.printer import print_function
    from dad.runtime.compiler import machine_ir, optimize_ir

    m = optimize_ir(compile_to_ir(DCE_LOADS, "d.dad"))
    # in range, so unchecked after elide_bounds_checks, and unused: gone, and so is the loop
    assert "memref.load" not in print_function(m["unused"])
    assert "scf.for" not in print_function(m["dead_loop"])
    # may be out of range: the checked loads stay, before and after the machine passes
    mm = machine_ir(m)
    for name in ("oob", "oob_loop"):
        assert "checked = true" in print_function(m[name]), name
        assert "checked = true" in print_function(mm[name]), name
    mod = compile_jit(DCE_LOADS, filename="d.dad")
    for n in (0, 1, 3):
        x = np.ones(n)
        assert mod.unused(x) == float(n) and mod.dead_loop(x) == 2.0
        with pytest.raises(IndexError, match=rf"d.dad:2:\d+: index {n} is out of bounds"):
            mod.oob(x)
        with pytest.raises(IndexError, match=rf"d.dad:3:\d+: index {n} is out of bounds"):
            mod.oob_loop(x)
