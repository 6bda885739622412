"""version_checks: an innermost loop whose checked accesses are affine runs an unchecked copy
when every index is in range, and the checked loop (raising where it did) otherwise; loop
nests are not copied whole. Checked on the machine IR, on values and on the error raised."""
import numpy as np
import pytest

import dad
from dad.frontend import compile_to_ir
from dad.lang.printer import print_function
from dad.runtime.compiler import derive_all, machine_ir, optimize_ir

SOURCE = """
fn band(x: f64[n], d: i64, w: i64) -> f64 {
    var s = 0.0;
    for a in 0..d {
        for b in 0..w {
            s += x[a * w + b];
        }
    }
    return s;
}

fn nest(x: f64[n], d: i64, w: i64) -> f64 {
    var s = 0.0;
    for a in 0..d {
        s += x[a];
        for b in 0..w {
            s += x[a * w + b];
        }
    }
    return s;
}
"""


def _ops(name: str) -> list:
    m = machine_ir(optimize_ir(derive_all(compile_to_ir(SOURCE, "v.dad"))))
    return list(m.functions[name].body.walk())


def test_only_the_innermost_loop_is_versioned():
    ops = _ops("band")
    loops = [o for o in ops if o.name == "scf.for"]
    # the outer loop once, the inner loop twice (checked and unchecked copies)
    assert len(loops) == 3
    loads = [o for o in ops if o.name == "memref.load"]
    assert sorted(bool(o.attrs.get("checked", False)) for o in loads) == [False, True]
    unchecked = next(o for o in loads if not o.attrs.get("checked", False))
    # the unchecked copy sits in the then-branch of an scf.if inside the outer loop
    owner = unchecked.parent.parent.parent      # its loop
    assert owner.name == "scf.for"
    assert owner.parent.parent.parent.name == "scf.if"


def test_a_loop_nest_is_not_copied_whole():
    # the outer loop has a checked access of its own, but only the inner loop is copied
    assert sum(o.name == "scf.for" for o in _ops("nest")) == 3


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SOURCE, filename="v.dad")


def test_values_in_range(mod):
    x = np.arange(12.0)
    assert mod.band(x, 3, 4) == float(np.sum(x))
    assert mod.band(x, 2, 5) == float(np.sum(x[:10]))
    assert mod.band(x, 0, 5) == 0.0
    assert mod.nest(x, 3, 4) == float(np.sum(x) + np.sum(x[:3]))


def test_out_of_range_still_raises_where_it_did(mod):
    x = np.arange(12.0)
    with pytest.raises(IndexError) as err:
        mod.band(x, 3, 5)      # a * 5 + b reaches 14
    assert "v.dad:6" in str(err.value)
