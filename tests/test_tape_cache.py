"""The module's cached tape buffer: a call's tape, given up at its end, serves the next call.

Checked: the lowered module has the cache (an internal global swapped atomically); results
stay right when the cached buffer is reused, when it is too small (a longer tape) and after
that, in any order of sizes; gradients running in several threads at once (ctypes releases
the GIL) each get their own tape, so every result equals the one computed alone. The oracle
is the recurrence's reverse sweep written out in Python (`recording_gradient`)."""
import threading

import numpy as np
import pytest

import dad
from dad.api import compile_jit
from example_inputs import RECORDING, recording_gradient

SOURCE = RECORDING + "fn g = grad(f, wrt=x);\n"


@pytest.fixture(scope="module")
def mod():
    return dad.compile(SOURCE, filename="tape_cache.dad")


def test_the_module_keeps_one_tape_buffer(mod):
    ir = mod.llvm_ir
    assert "@dad_rt_tape_cache = internal global" in ir
    assert "atomicrmw xchg" in ir


@pytest.mark.parametrize("ms", [(50, 50, 50), (10, 20000, 10), (20000, 10, 30000, 5, 30000)])
def test_reused_too_small_and_regrown(mod, ms):
    x = np.random.default_rng(0).uniform(-1.0, 1.0, 7)
    for m in ms:
        want = recording_gradient(x, m)
        np.testing.assert_allclose(mod.g(x, m), want, rtol=1e-11, atol=1e-13)


def test_threads_each_have_their_own_tape(mod):
    rng = np.random.default_rng(1)
    cases = [(rng.uniform(-1.0, 1.0, 5 + t), 3000 + 997 * t) for t in range(4)]
    alone = [mod.g(x, m) for x, m in cases]
    bad = []

    def work(t):
        x, m = cases[t]
        for _ in range(30):
            if not np.array_equal(mod.g(x, m), alone[t]):
                bad.append(t)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not bad
    for (x, m), got in zip(cases, alone):
        np.testing.assert_allclose(got, recording_gradient(x, m), rtol=1e-11, atol=1e-13)


def test_the_kept_tape_is_released_with_the_module():
    """The cache is freed by the module's static destructor (`llvm.global_dtors`), which the
    JIT runs when the module object goes: compiling, calling with a ~80 MB tape and dropping
    a module three times leaves RSS where the first round left it (a kept tape each would add
    ~80 MB per round)."""
    import gc

    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096

    x = np.random.default_rng(2).uniform(-1.0, 1.0, 5)
    after = []
    for k in range(3):
        m = compile_jit(SOURCE + f"# round {k}\n", filename="tape_release.dad")
        assert "@llvm.global_dtors" in m.llvm_ir
        m.g(x, 5_000_000)
        del m
        gc.collect()
        after.append(rss())
    assert after[2] - after[0] < 24 * 2**20, [a / 2**20 for a in after]
