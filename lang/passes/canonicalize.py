"""canonicalize: folding and dead-code removal together, to a fixpoint.

Contract: the patterns of `constant_fold` (FOLD) and of `dce` (DCE) applied by one greedy
driver (lang/rewrite.py) with dead ops erased as they appear: the result is what repeating
`constant_fold,dce` until nothing changes gives, in one run (a fold that leaves a constant
unused erases it; an erasure that leaves an `scf.if` with a constant condition and no results
removes it).
"""
from __future__ import annotations

from ..rewrite import greedy_pass
from .constant_fold import FOLD
from .dce import DCE

canonicalize = greedy_pass(FOLD | DCE, "canonicalize", __name__, erase_dead=True)
