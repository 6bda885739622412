"""Behaviour that the compile-time work relies on (no timings here): run-time helpers only
when used, one entry per exported function, bodies inlined into their only entry, one
shared failure block per function, LLVM options restored after compiling."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

import dad

SRC = """
# recursive, so that the IR passes do not inline it into `twice` (inline_calls)
fn helper(x: f64, n: i64) -> f64 { if n <= 0 { return x * 2.0; } return helper(x, n - 1); }
fn twice(x: f64) -> f64 { return helper(x, 0) + 1.0; }
fn pick(x: f64[n], i: i64, j: i64) -> f64 { return x[i] + x[j]; }
fn scaled(x: f64[n], a: f64) -> f64[n] { return x * a; }
fn nan_of(x: f64) -> f64 { return x - x; }
"""


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SRC, filename="ct.dad")


def _defines(text: str) -> list[str]:
    return re.findall(r'^define [^@]*@"?([\w.]+)"?\(', text, flags=re.M)


def test_special_functions_only_when_used(mod):
    assert "digamma" not in mod.lowered.llvm_ir and "trigamma" not in mod.lowered.llvm_ir
    m = dad.compile("fn f(x: f64) -> f64 { return digamma(x); }")
    assert "dad_rt_digamma_f64" in m.lowered.llvm_ir
    assert "dad_rt_trigamma_f64" not in m.lowered.llvm_ir
    assert m.f(1.0) == pytest.approx(-0.5772156649015329, rel=1e-14)


def test_one_entry_per_exported_function(mod):
    names = _defines(mod.lowered.llvm_ir)
    assert not [n for n in names if n.endswith(".fast")]
    for f in ("helper", "twice", "pick", "scaled", "nan_of"):
        assert names.count(f) == 1


def test_body_inlined_into_its_only_entry_and_kept_when_called(mod):
    names = _defines(mod.llvm_ir)  # optimised
    assert "dad.impl.pick" not in names and "dad.impl.scaled" not in names
    # `helper` is also called by `twice`: its entry calls it, it is not compiled twice
    text = mod.lowered.llvm_ir
    entry = text[text.index('define double @"helper"('):]
    entry = entry[:entry.index("\n}\n")]
    assert "noinline" in re.search(r'call [^\n]*@"dad.impl.helper"[^\n]*', entry).group(0)


def test_scalar_entry_results_errors_and_genuine_sentinels(mod):
    assert mod.twice(1.5) == 4.0
    x = np.arange(5.0)
    assert mod.pick(x, 1, 4) == 5.0
    with pytest.raises(IndexError, match="ct.dad"):
        mod.pick(x, 1, 7)
    assert math.isnan(mod.nan_of(math.inf))   # NaN is the sentinel, yet no error
    assert np.array_equal(mod.scaled(x, 2.0), 2.0 * x)


def test_one_failure_block_per_function(mod):
    text = mod.lowered.llvm_ir
    body = text[text.index('@"dad.impl.pick"'):]
    body = body[:body.index("\n}\n")]
    assert len(re.findall(r"^fail[.\d]*:", body, flags=re.M)) == 1
    assert body.count("icmp ult") == 2   # both index checks branch to it


def test_llvm_options_restored_after_compiling():
    import llvmlite.binding as llvm
    from dad.runtime import target
    dad.compile("fn f(x: f64) -> f64 { return x; }")
    calls = []
    orig = llvm.set_option
    try:
        llvm.set_option = lambda name, opt: calls.append(opt) or orig(name, opt)
        with target.codegen():
            pass
    finally:
        llvm.set_option = orig
    assert calls == [on for on, _ in target._CODEGEN_FLAGS] + [off for _, off in target._CODEGEN_FLAGS]
