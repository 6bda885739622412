"""cse and dce: end to end (the golden tests are tests/ir/cse_dce/*.ir)."""


# ----------------------------------------------------------------------------- dce: loads
# An unused load that cannot raise (`checked = false`, or no `checked` attribute: the loads AD
# writes for its own shadows) is removable; a checked one may raise IndexError and stays.

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
