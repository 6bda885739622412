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
