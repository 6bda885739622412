"""dad.lowering — IR to LLVM IR through llvmlite.ir, one rule per op (see `rules.RULES`)."""
from .module import Lowered, Site, lower_module
from .target import Target

__all__ = ["Lowered", "Site", "Target", "lower_module"]
