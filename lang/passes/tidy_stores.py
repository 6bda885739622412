"""tidy_stores: stores and loads of one array element inside a block that cancel out.

Why: the adjoint of `qx[b, i] += v` reads the shadow element, zeroes it, reads it again and
adds (`g = qx.bar[b, i]; qx.bar[b, i] = 0; qx.bar[b, i] = qx.bar[b, i] + g`): a read and two
writes of memory per iteration that leave the element as it was. Left in the IR they keep
the loop from counting as one without stores (`speculate_zero_safe`, `ascend_loops`).

Contract: within each block (at any depth), with "the same element" meaning the same array
value and the same index values,
- a `memref.load` of the element a `memref.store` in the block stored, with no op between
  them that may write memory (a store, copy, dealloc, call, tape op or an op with regions
  holding one), reads the stored value instead;
- a `memref.store` is deleted when a later store in the block writes the same element and
  only pure ops lie between them (nothing reads memory, nothing can raise), unless it is
  checked and the later one is not, or has another `loc` (an index error must still be
  raised, and name the first);
- a `memref.store` of the value a `memref.load` of the same element read, with nothing that
  may write memory between them, is deleted (memory already holds that value, bit for bit).
Run to a fixed point, then `constant_fold` (a forwarded `0.0` turns `0.0 + g` into `g` when
the add has `nsz`, as the adjoint's sums do), then again; loads made unused are left to `dce`.
"""
from __future__ import annotations

from ..ir import Block, Function, Module, Op, replace_all_uses
from ..ops import is_pure, isa, MEMREF_LOAD, MEMREF_STORE
from .constant_fold import constant_fold
from .util import for_each_function, writes

def _key(op: Op) -> tuple:
    """(array, indices) of a load or store, by identity."""
    vals = op.operands if isa(op, MEMREF_LOAD) else op.operands[1:]
    return tuple(map(id, vals))


def _forward(f: Function, block: Block) -> bool:
    stored: dict = {}    # element -> the value stored there, while nothing else writes
    for op in list(block.ops):
        if isa(op, MEMREF_LOAD) and _key(op) in stored:
            replace_all_uses(f.body, op.results[0], stored[_key(op)])
            block.ops.remove(op)
            return True
        if isa(op, MEMREF_STORE):
            stored = {_key(op): op.operands[0]}
        elif writes(op):
            stored = {}
    return False


def _overwritten(block: Block) -> bool:
    pending: dict = {}   # element -> the store whose value nobody has read yet
    for op in block.ops:
        if isa(op, MEMREF_STORE):
            first = pending.get(_key(op))
            if first is not None and (not first.attrs.get("checked", False) or
                                      (op.attrs.get("checked", False) and
                                       first.attrs.get("loc") == op.attrs.get("loc"))):
                block.ops.remove(first)
                return True
            pending = {_key(op): op}
        elif not is_pure(op.name):
            pending = {}
    return False


def _store_of_load(block: Block) -> bool:
    loaded: dict = {}    # value -> the element it was loaded from, while nothing writes
    for op in block.ops:
        if isa(op, MEMREF_LOAD):
            loaded[op.results[0]] = _key(op)
        elif isa(op, MEMREF_STORE):
            if loaded.get(op.operands[0]) == _key(op):
                block.ops.remove(op)
                return True
            loaded = {}
        elif writes(op):
            loaded = {}
    return False


def _function(f: Function) -> None:
    blocks = [f.body] + [r.block for o in f.body.walk() for r in o.regions]
    for block in blocks:
        while _forward(f, block) or _overwritten(block) or _store_of_load(block):
            pass


_tidy = for_each_function(_function, "tidy_stores")


def tidy_stores(module: Module) -> Module:
    """Stores and loads of one element that cancel out, removed (see the module docstring)."""
    return _tidy(constant_fold(_tidy(module)))


tidy_stores.pass_name = "tidy_stores"
