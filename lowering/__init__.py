"""dad.lowering — IR to LLVM IR through llvmlite.ir, one rule per op (see `rules.RULES`)."""
from .module import Lowered, Site, lower_module

__all__ = ["Lowered", "Site", "lower_module"]
