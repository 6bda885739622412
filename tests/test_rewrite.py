"""The rewriter and greedy pattern driver (lang/rewrite.py): use-lists stay exact through
every change, one run reaches the fixpoint of its patterns, and the work is linear in the
function's size (counted in pattern applications, not timed)."""
from __future__ import annotations

import pathlib

import pytest

from dad.frontend import compile_to_ir
from dad.lang.irparser import parse_module
from dad.lang.passes import PassManager, canonicalize, constant_fold, dce
from dad.lang.passes.constant_fold import FOLD
from dad.lang.printer import print_module
from dad.lang.rewrite import Patterns, Rewriter, Uses, apply_greedily

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "examples").glob("*.dad"))


def _snapshot(uses: Uses):
    return {v: sorted((id(op), n) for op, n in d.values()) for v, d in uses.users.items() if d}


def test_uses_stay_exact_through_every_kind_of_change():
    m = parse_module("""
func.func @f(%x: f64, %c: i1) -> f64 {
  %a = arith.mulf %x, %x : f64
  %b = arith.addf %a, %a : f64
  %r = scf.if %c : f64 {
  ^():
    %t = arith.mulf %b, %x : f64
    scf.yield %t : ()
  } {
  ^():
    scf.yield %a : ()
  }
  %s = arith.subf %r, %b : f64
  func.return %s : ()
}
""")
    f = m["f"]
    uses = Uses(f.body)
    rw = Rewriter(uses)
    a, b = f.body.ops[0], f.body.ops[1]
    assert len(uses.of(a.result)) == 2 and uses.users[a.result][id(b)][1] == 2
    rw.replace_uses(a.result, f.params[0])            # %b = x + x, else-yield %x
    assert _snapshot(uses) == _snapshot(Uses(f.body))
    iff = f.body.ops[2]
    rw.inline_before(iff.regions[0].block, iff)       # %t moves before the if
    rw.replace(iff, [f.body.ops[2].result])
    rw.compact()
    assert _snapshot(uses) == _snapshot(Uses(f.body))
    rw.mutate(b, "arith.constant", [], {"value": 2.0})
    rw.erase(a)
    rw.compact()
    assert _snapshot(uses) == _snapshot(Uses(f.body))
    assert not uses.used(a.result)
    out = print_module(m)
    assert "scf.if" not in out and "%a = " not in out


def _ir_after_ad(path):
    """The IR `dadc opt FILE.dad` starts from: the front end's, with the derived functions."""
    from dad.runtime.compiler import derive_all
    m = compile_to_ir(path.read_text(), str(path))
    derive_all(m)
    return m


def _fixpoint(module, passes):
    before = None
    while before != print_module(module):
        before = print_module(module)
        PassManager(passes, verify=True).run(module)
    return before


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_one_canonicalize_run_is_the_fixpoint_of_fold_and_dce(path):
    one = _ir_after_ad(path)
    before = print_module(one)
    PassManager([canonicalize], verify=True).run(one)
    assert print_module(one) != before                            # it had work to do
    many = _ir_after_ad(path)
    assert print_module(one) == _fixpoint(many, [constant_fold, dce])
    assert print_module(one) == _fixpoint(one, [canonicalize])   # nothing left to do


@pytest.mark.parametrize("n", [100, 3000])
def test_work_is_linear_in_the_function(n):
    """x + 0 + 0 + ... (n adds) folds to x; the driver applies patterns a bounded number of
    times per op, so the count grows linearly (no rescans of the whole function)."""
    lines = ["func.func @f(%x: i64) -> i64 {", "  %z = arith.constant {value = 0} : i64"]
    prev = "%x"
    for i in range(n):
        lines.append(f"  %v{i} = arith.addi {prev}, %z : i64")
        prev = f"%v{i}"
    lines += [f"  func.return {prev} : ()", "}"]
    m = parse_module("\n".join(lines))
    calls = [0]
    counting = Patterns()
    for root, fns in FOLD.by_root.items():
        for fn in fns:
            def wrapped(op, rw, fn=fn):
                calls[0] += 1
                return fn(op, rw)
            counting.by_root[root].append(wrapped)
    assert apply_greedily(m["f"], counting, erase_dead=True)
    assert print_module(m).count("arith.addi") == 0 and "func.return %x" in print_module(m)
    assert calls[0] <= 4 * (n + 2), calls[0]


def test_a_structure_is_erased_after_ops_inside_it_were():
    """%u inside the if is erased first (dead); then %s, which makes the if's result unused;
    then the result goes and the if, now empty, is erased: that must not count %u's uses a
    second time (found by the hypothesis test of the default pipeline)."""
    m = parse_module("""
func.func @f(%x: f64, %c: i1) -> f64 {
  %r = scf.if %c : f64 {
  ^():
    %t = arith.mulf %x, %x : f64
    %u = arith.addf %x, %x : f64
    scf.yield %t : ()
  } {
  ^():
    scf.yield %x : ()
  }
  %s = arith.addf %r, %r : f64
  func.return %x : ()
}
""")
    PassManager([canonicalize], verify=True).run(m)
    assert "scf.if" not in print_module(m) and "arith.mulf" not in print_module(m)
