"""Op traits (lang/ops.py): the properties passes ask of an op, declared once.

A pass asks `has_trait(op, "view")`, never a list of names of its own; these tests hold the
table consistent and keep name lists of the traits from coming back into the passes.
"""
from __future__ import annotations

import pathlib
import re

import pytest

from dad.lang.ops import OPS, TRAITS, has_trait, ops_with

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("lang", "ad", "lowering", "frontend", "runtime")
           for p in (ROOT / d).rglob("*.py") if p.name != "ops.py"]


def test_every_trait_is_documented_and_names_known_ops():
    for name, info in OPS.items():
        assert info.traits <= set(TRAITS), (name, info.traits - set(TRAITS))
    for trait in TRAITS:
        assert ops_with(trait), f"trait {trait} has no op"


def test_traits_agree_with_the_op_fields_and_each_other():
    for name, info in OPS.items():
        assert has_trait(name, "pure") == info.pure
        assert has_trait(name, "terminator") == info.terminator
        if has_trait(name, "writes"):
            assert not info.pure, f"{name} writes memory but is marked pure"
        if has_trait(name, "owner"):
            assert not info.pure, f"{name} makes an array but is marked pure (CSE would merge two)"
    assert ops_with("view") == {"memref.row", "memref.slice", "memref.collapse"}
    assert ops_with("view") <= ops_with("cheap")        # a view costs nothing to make again
    assert not (ops_with("owner") & ops_with("view"))
    assert not has_trait("nope.op", "pure")
    with pytest.raises(AssertionError):
        has_trait("arith.addf", "no-such-trait")


@pytest.mark.parametrize("trait", ["view", "writes", "owner", "cheap"])
def test_no_module_keeps_its_own_list_of_a_traits_ops(trait):
    """A literal outside lang/ops.py naming exactly the ops of a trait is a private copy of it
    (what `VIEWS` in three modules, `WRITES` and `CHEAP` were); a pass that treats a few ops
    specially, or a table of categories (rules.STRUCTURAL), may still name those."""
    names = sorted(ops_with(trait))
    pat = re.compile(r"[\(\[\{]\s*(\"[\w.]+\"\s*,\s*){1,}\"[\w.]+\"")
    for path in SOURCES:
        for m in pat.finditer(path.read_text()):
            listed = set(re.findall(r"\"([\w.]+)\"", m.group(0)))
            assert listed != set(names), \
                f"{path.relative_to(ROOT)} lists the {trait} ops: ask has_trait(op, {trait!r})"


def test_ops_are_named_by_their_definitions_outside_the_catalogue():
    """No `op.name == "scf.for"` (or `in ("memref.load", ...)`, or a dialect prefix test)
    outside lang/ops.py: code names an op by its definition (`isa(op, SCF_FOR)`), whose name
    is checked against the catalogue when it is made, or asks a trait."""
    tests = re.compile(r"\.name\s*(==|!=|(not\s+)?in\s*[\(\{\[])\s*\"[a-z_]+\.[a-z_0-9.]+\""
                       r"|\.name\.startswith\(\s*\"[a-z_]+\.")
    found = [f"{p.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}"
             for p in SOURCES + list((ROOT / "dad").rglob("*.py"))
             for text in [p.read_text()] for m in tests.finditer(text)]
    assert not found, found


def test_op_definitions_are_the_catalogue():
    from dad.lang import ops
    assert ops.SCF_FOR == "scf.for" and ops.SCF_FOR.info is OPS["scf.for"]
    assert all(getattr(ops, n.replace(".", "_").upper()) == n for n in OPS)
    with pytest.raises(KeyError):
        ops.OpDef("scf.fro")
    assert ops.isa(None, ops.SCF_FOR) is False
    assert ops_with("loop") == {"scf.for", "scf.while"}
    assert ops_with("tape") == {n for n in OPS if n.startswith("dad.tape_")}
