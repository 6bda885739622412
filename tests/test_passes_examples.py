"""The IR of examples/*.dad (front end, then derived functions made) verifies, round-trips and
survives the pipeline."""
import pathlib

import pytest

from dad.lang.irparser import parse_module
from dad.lang.passes import PassManager, default_pipeline
from dad.lang.printer import print_module
from dad.lang.verifier import verify

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.dad"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_ir(path):
    from dad.frontend import compile_to_ir
    from dad.runtime.compiler import derive_all
    m = derive_all(compile_to_ir(path.read_text(), str(path)))
    verify(m)
    text = print_module(m)
    assert print_module(parse_module(text)) == text
    out = print_module(PassManager(default_pipeline(), verify=True).run(parse_module(text)))
    assert print_module(parse_module(out)) == out
    assert out.count("checked = true") <= text.count("checked = true")
