"""load_cse: repeated loads reuse the first, unless something may have written in between."""
from golden import check_passes

from dad.lang.passes import load_cse

HEAD = 'func.func @f(%a: memref<?xf64>, %i: i64) -> f64 attributes {sig = "(a: f64[n], i: i64) -> f64"} {\n'


def test_second_load_of_the_same_element_is_reused():
    check_passes(HEAD + """
  %x = memref.load %a, %i {checked = true, loc = "t.dad:1:1"} : f64
  %y = memref.load %a, %i {checked = true, loc = "t.dad:2:1"} : f64
  %s = arith.addf %x, %y : f64
  func.return %s : ()
}""", [load_cse], """
CHECK: %x = memref.load %a, %i
CHECK-NOT: memref.load
CHECK: arith.addf %x, %x
""")


def test_a_store_in_between_forgets_everything():
    check_passes(HEAD + """
  %x = memref.load %a, %i {checked = true, loc = "t.dad:1:1"} : f64
  %b = memref.alloc %i : memref<?xf64>
  memref.store %x, %b, %i {checked = true, loc = "t.dad:2:1"} : ()
  %y = memref.load %a, %i {checked = true, loc = "t.dad:3:1"} : f64
  %s = arith.addf %x, %y : f64
  func.return %s : ()
}""", [load_cse], """
CHECK: %x = memref.load %a, %i
CHECK: memref.store
CHECK: %y = memref.load %a, %i
CHECK: arith.addf %x, %y
""")


def test_a_loop_that_writes_forgets_after_it_but_a_load_inside_may_reuse():
    check_passes(HEAD + """
  %x = memref.load %a, %i {checked = true, loc = "t.dad:1:1"} : f64
  %c0 = arith.constant {value = 0} : i64
  %c1 = arith.constant {value = 1} : i64
  %b = memref.alloc %i : memref<?xf64>
  scf.for %c0, %i, %c1 : () {
  ^(%k: i64):
    %z = memref.load %a, %i {checked = true, loc = "t.dad:2:1"} : f64
    memref.store %z, %b, %k : ()
    scf.yield : ()
  }
  %y = memref.load %a, %i {checked = true, loc = "t.dad:3:1"} : f64
  %s = arith.addf %x, %y : f64
  func.return %s : ()
}""", [load_cse], """
CHECK: %x = memref.load %a, %i
CHECK: scf.for
CHECK-NOT: %z = memref.load
CHECK: memref.store %x, %b, %k
CHECK: %y = memref.load %a, %i
""")
