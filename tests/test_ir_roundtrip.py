"""Property tests: random well-formed IR verifies and prints identically after a parse.

Modules come from `generators.ir_modules`, built with `lang.ir.Builder`: two functions (`@g` is called from
`@f`), arithmetic on f64/f32/i64/i1, math ops, constants including inf, nan and -0.0,
casts, `scf.for` with carried values, `scf.if` with results, `scf.while`, memref
alloc/load/store/dim/dealloc, and name hints that collide on purpose.
"""
from hypothesis import HealthCheck, given, settings

from dad.lang.irparser import parse_module
from dad.lang.passes import PassManager, default_pipeline
from dad.lang.printer import print_module
from dad.lang.verifier import verify
from generators import ir_modules

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(ir_modules())
def test_print_parse_print_is_identity(m):
    verify(m)
    text = print_module(m)
    again = parse_module(text)
    verify(again)
    assert print_module(again) == text


@SETTINGS
@given(ir_modules())
def test_default_pipeline_keeps_ir_valid_and_printable(m):
    out = PassManager(default_pipeline(), verify=True).run(m)
    text = print_module(out)
    assert print_module(parse_module(text)) == text
