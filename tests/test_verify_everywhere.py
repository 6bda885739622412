"""The test suite runs with the IR verified after every pass (`DAD_VERIFY=1`, set in
conftest.py). These tests check that the setting reaches every pipeline the compiler runs —
the pre-optimisation of the targets of derived functions, the default pipeline and the
machine-only pipeline, through `dad.compile` with and without the cache and through
run-time transforms — and that the compile cache does not serve an unverified module."""
from __future__ import annotations

import os

import pytest

import dad
from dad.lang.passes import PassManager, PassVerifyError, default_pipeline, machine_pipeline
from dad.lang.passes import manager as manager_mod
from dad.runtime import cache

SRC = """
fn h(x: f64) -> f64 { return sin(x) * x; }
fn f(x: f64, y: f64) -> f64 { return h(x) * y + h(y) * {salt}; }
fn f_grad = grad(f);
fn f_jvp = jvp(f, wrt=x);
"""


def test_conftest_sets_dad_verify():
    assert os.environ.get("DAD_VERIFY") == "1"
    assert PassManager([]).verify


@pytest.fixture
def checks(monkeypatch):
    """The names `_check` was called with, and for each pipeline run whether it verified."""
    seen = _Seen()
    runs: list[bool] = []
    orig_check, orig_run = PassManager._check, PassManager.run

    def spy_check(self, module, after):
        seen.append(after)
        return orig_check(self, module, after)

    def spy_run(self, module):
        runs.append(self.verify)
        return orig_run(self, module)

    monkeypatch.setattr(PassManager, "_check", spy_check)
    monkeypatch.setattr(PassManager, "run", spy_run)
    seen.runs = runs  # type: ignore[attr-defined]
    return seen


class _Seen(list):
    runs: list




@pytest.mark.parametrize("use_cache", [False, True])
def test_every_pipeline_verifies(checks, use_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("DAD_CACHE_DIR", str(tmp_path))
    src = SRC.replace("{salt}", "1.5" if use_cache else "2.5")
    mod = dad.compile(src) if use_cache else dad.api.compile_jit(src)
    assert mod.f_grad(1.0, 2.0) is not None
    # the targets' pre-optimisation (one run per derivation group), the default pipeline and
    # the machine pipeline each verified their input and every pass's output
    assert len(checks.runs) >= 3 and all(checks.runs), checks.runs
    assert checks.count("input") == len(checks.runs)
    n_default = len(default_pipeline())
    n_machine = len(machine_pipeline())
    assert len(checks) >= 3 + 2 * n_default + n_machine
    assert manager_mod.pass_name(machine_pipeline()[0]) in checks


def test_run_time_transforms_verify(checks):
    mod = dad.api.compile_jit(SRC.replace("{salt}", "3.5"))
    checks.clear()
    dad.hvp(mod.f, wrt="x")(1.0, 2.0, 1.0)
    assert checks.runs and all(checks.runs), checks.runs
    assert "input" in checks and len(checks) > len(default_pipeline())


def test_a_broken_pass_is_caught_in_compile(monkeypatch):
    from dad.lang import passes

    def breaker(module):
        for fn in module:
            fn.body.ops.clear()  # no terminator: invalid IR
        return module

    monkeypatch.setattr(passes, "default_pipeline", lambda: [breaker])
    with pytest.raises(PassVerifyError, match="breaker"):
        dad.api.compile_jit(SRC.replace("{salt}", "4.5"))


def test_cache_key_depends_on_verification(monkeypatch):
    monkeypatch.setenv("DAD_VERIFY", "1")
    k1 = cache.key("fn f() -> f64 { return 1.0; }", "<string>", False)
    monkeypatch.setenv("DAD_VERIFY", "0")
    k0 = cache.key("fn f() -> f64 { return 1.0; }", "<string>", False)
    assert k0 != k1
