"""dad — a differentiable compiler: `.dad` programs and their derivatives as native code.

    import dad
    mod = dad.compile_file("examples/rosenbrock.dad")
    mod.rosen(x)
"""
__version__ = "0.1.0"

from .api import CompileError, CompiledModule, compile, compile_file  # noqa: E402
from .api import build, install_import_hook, load  # noqa: E402
from .ad import ADError, CheckpointWarning  # noqa: E402
from .runtime.transforms import (grad, hessian, hvp, jacobian, jvp, sparse_jacobian,  # noqa: E402
                                 value_and_grad, vjp)

__all__ = ["compile", "compile_file", "CompileError", "CompiledModule", "ADError", "CheckpointWarning", "jvp",
           "jacobian", "vjp", "grad", "value_and_grad", "hvp", "hessian", "sparse_jacobian", "__version__",
           "load", "build", "install_import_hook"]
