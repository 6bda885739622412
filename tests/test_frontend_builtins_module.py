"""Builtin calls are typed by `frontend.typecheck_builtins`: one rule per kind of the builtins table."""
import pytest

import dad
from dad.frontend.builtins import BUILTINS
from dad.frontend.lower_builtins import LOWER
from dad.frontend.typecheck_builtins import TYPING


def test_every_builtin_kind_has_a_typing_and_a_lowering_rule():
    kinds = {sig.kind for sig in BUILTINS.values()}
    assert kinds == set(TYPING) == set(LOWER)


@pytest.mark.parametrize("body, message", [
    ("return sin(1.0, 2.0);", "1:36: error: 'sin' takes 1 argument, got 2"),
    ("return sum(zeros(2, foo=1));", "1:49: error: 'zeros' has no keyword argument 'foo'"),
    ("return matvec(A, A)[0];", "1:46: error: 'matvec' expects a 1-D float array, found f64[n, n]"),
])
def test_builtin_typing_errors_keep_their_messages_and_places(body, message):
    with pytest.raises(dad.CompileError) as err:
        dad.compile(f"fn f(A: f64[n, n]) -> f64 {{ {body} }}", filename="t.dad")
    assert str(err.value).splitlines()[0] == "t.dad:" + message


@pytest.mark.parametrize("call", ["max((1.0, 2.0), 1.0)", "min(1.0, (1.0, 2.0))"])
def test_min_max_of_a_tuple_is_a_compile_error_not_a_crash(call):
    with pytest.raises(dad.CompileError) as err:
        dad.compile(f"fn f(x: f64) -> f64 {{ return {call}; }}", filename="t.dad")
    assert "expects numbers or arrays, found (" in str(err.value)
