"""dad.frontend: `.dad` source -> typed AST -> IR.

Entry points: `parse(source, filename)` (syntax only), `check(program)` (types, shapes, names)
and `compile_to_ir(source, filename, fast_math=False)` (the whole front end). Each raises
`CompileError` (with `.diagnostics`) for mistakes in the program.
"""
from .diagnostics import CompileError, Diagnostic
from .parser import parse
from .typecheck import check


def compile_to_ir(source: str, filename: str = "<string>", *, fast_math: bool = False):
    """Compile `.dad` source to an IR `Module` (raises CompileError), on a large stack
    (`runtime.deep`)."""
    from ..runtime import deep
    return deep.compile_step(_compile_to_ir, source, filename, fast_math)


def _compile_to_ir(source: str, filename: str, fast_math: bool):
    from .emit import emit_module
    checked = check(parse(source, filename))
    return emit_module(checked, fast_math=fast_math)


__all__ = ["compile_to_ir", "parse", "check", "CompileError", "Diagnostic"]
