"""dad — a differentiable compiler for numerical programs."""
__version__ = "0.1.0"
