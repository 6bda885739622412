"""The pass manager: order, names, verification switched on by argument or DAD_VERIFY=1."""
import pytest

from dad.lang.irparser import parse_module
from dad.lang.passes import PassManager, PassVerifyError, default_pipeline
from dad.lang.passes import constant_fold, cse, dce, elide_bounds_checks

IR = """func.func @f(%x: f64) -> f64 {
  %y = arith.mulf %x, %x : f64
  func.return %y : ()
}
"""


def break_types(module):
    """A deliberately wrong pass: makes the multiplication return an i64."""
    from dad.lang.ir import I64
    module["f"].body.ops[0].results[0].type = I64
    return module


def test_passes_have_names_and_pipeline_order():
    assert [p.__name__ for p in default_pipeline()] == [
        "constant_fold", "cse", "load_cse", "dce", "elide_bounds_checks", "canonicalize"]
    pm = PassManager([cse, dce], verify=True)
    pm.run(parse_module(IR))
    assert pm.history == ["cse", "dce"]


def test_verification_names_the_guilty_pass():
    with pytest.raises(PassVerifyError, match="after pass 'break_types': @f: op 'arith.mulf'"):
        PassManager([constant_fold, break_types, dce], verify=True).run(parse_module(IR))


def test_invalid_input_is_reported_as_input():
    m = parse_module(IR)
    break_types(m)
    with pytest.raises(PassVerifyError, match="invalid the input of the pipeline"):
        PassManager([dce], verify=True).run(m)


def test_env_var_switches_verification(monkeypatch):
    monkeypatch.delenv("DAD_VERIFY", raising=False)
    PassManager([break_types]).run(parse_module(IR))  # off by default
    monkeypatch.setenv("DAD_VERIFY", "1")
    with pytest.raises(PassVerifyError):
        PassManager([break_types]).run(parse_module(IR))
    PassManager([break_types], verify=False).run(parse_module(IR))  # explicit argument wins


def test_passes_return_the_module():
    m = parse_module(IR)
    for p in (constant_fold, cse, dce, elide_bounds_checks):
        assert p(m) is m
