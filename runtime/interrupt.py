"""Ctrl-C in compiled loops: a SIGINT stops a running call with KeyboardInterrupt.

Python handles SIGINT only between bytecodes, never inside a ctypes call, so a compiled
`while` loop that never ends could not be interrupted. The contract with compiled code
(`lowering.interrupt`):
- `WORDS` is three 64-bit words owned here: `[0]` counts the SIGINTs received, `[1]` is set
  by compiled code that stopped because of one, `[2]` is the count a call starts from (set
  by `arm`). Every compiled module has a global `dad_interrupt` that `attach` points at
  `WORDS` (null: never polled). Word 2 is -1 when no call is armed.
- `install()` puts a small machine-code handler (made once with LLVM) in front of Python's
  C-level SIGINT handler: it increments `WORDS[0]` and calls Python's handler, which
  records the signal as usual. It is installed only over a handler Python installed (not
  over SIG_DFL / SIG_IGN); a later `signal.signal(SIGINT, ...)` replaces it (loops are then
  not interrupted until the next module is attached).
- `arm()` (machine code made with the handler, called through ctypes with the GIL held) is
  what the caller of a module with polls runs just before the call: it sets `WORDS[2] =
  WORDS[0]`, then lets Python handle pending signals (`PyErr_CheckSignals`; an exception,
  KeyboardInterrupt by default, is raised there and the call is not made). So no SIGINT is
  lost in between: one that came before the snapshot is Python's (handled by that check),
  one after it makes the count differ from `WORDS[2]`. (Reading the count in the entry
  instead lost a SIGINT that arrived after Python's last check of its own, in the caller.)
  With several threads calling at once, another thread's `arm` may move `WORDS[2]` past a
  SIGINT meant for this call; Python handles signals in its main thread only anyway.
- An entry takes `WORDS[2]` when it starts, leaving -1 (so a stale arm never serves a later
  call made without one: a C caller, or `Kernel._centry`, whose entry reads `WORDS[0]`
  itself); loops compare `WORDS[0]` with it every
  `POLL_EVERY` iterations (`while`) or once per iteration of a loop containing another loop,
  and stop with the error site `KeyboardInterrupt`, setting `WORDS[1]`.
- `raise_interrupt()` (the caller, on that error) clears `WORDS[1]` and lets Python run its
  handlers (`PyErr_CheckSignals`: KeyboardInterrupt by default, or the program's handler);
  KeyboardInterrupt when they raise nothing.
"""
from __future__ import annotations

import ctypes
import signal
import threading

WORDS = (ctypes.c_int64 * 3)(0, 0, -1)
ADDRESS = ctypes.addressof(WORDS)
_lock = threading.Lock()
_state: dict = {}   # "engine": the handler's JIT, "handler": its address, "old": buffer


def _handler_ir(words: int, check_signals: int) -> str:
    return f"""
@dad_prev_sigint = global ptr null
define void @dad_on_sigint(i32 %sig, ptr %info, ptr %uctx) {{
  %w = inttoptr i64 {words} to ptr
  %old = atomicrmw add ptr %w, i64 1 seq_cst
  %prev = load ptr, ptr @dad_prev_sigint
  call void %prev(i32 %sig, ptr %info, ptr %uctx)
  ret void
}}
define i32 @dad_arm() {{
  %w = inttoptr i64 {words} to ptr
  %count = load atomic i64, ptr %w seq_cst, align 8
  %base = getelementptr i64, ptr %w, i64 2
  store atomic i64 %count, ptr %base seq_cst, align 8
  %check = inttoptr i64 {check_signals} to ptr
  %r = call i32 %check()
  ret i32 %r
}}
"""


def install() -> bool:
    """Put the counting handler in front of Python's SIGINT handler (once); False when
    that is not possible here (not Linux/glibc-like, no Python handler)."""
    with _lock:
        if "ok" in _state:
            return _state["ok"]
        _state["ok"] = False
        try:
            _state["ok"] = _install()
        except Exception:  # pragma: no cover - an unusual platform: loops stay uninterruptible
            _state["ok"] = False
        return _state["ok"]


def _install() -> bool:
    import llvmlite.binding as llvm
    from . import target
    libc = ctypes.CDLL(None, use_errno=True)
    sigaction = libc.sigaction
    sigaction.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    old = ctypes.create_string_buffer(512)   # struct sigaction; the handler comes first
    if sigaction(signal.SIGINT, None, old) != 0:
        return False
    prev = ctypes.c_void_p.from_buffer(old).value or 0
    if prev in (0, 1):  # SIG_DFL, SIG_IGN: not Python's; leave them
        return False
    tm = target.host_machine()
    check = ctypes.cast(ctypes.pythonapi.PyErr_CheckSignals, ctypes.c_void_p).value
    mod = target.parse(_handler_ir(ADDRESS, check), tm)
    with target.codegen():
        engine = llvm.create_mcjit_compiler(mod, tm)
        engine.finalize_object()
    handler = engine.get_function_address("dad_on_sigint")
    ctypes.c_void_p.from_address(engine.get_global_value_address("dad_prev_sigint")).value = prev
    new = ctypes.create_string_buffer(old.raw, 512)
    ctypes.c_void_p.from_buffer(new).value = handler
    if sigaction(signal.SIGINT, new, None) != 0:
        return False
    arm = ctypes.PYFUNCTYPE(ctypes.c_int)(engine.get_function_address("dad_arm"))
    _state.update(engine=engine, handler=handler, old=old, arm=arm)
    return True


def arm_function():
    """`arm` (see above) when the handler is installed, else None (nothing is polled)."""
    return _state.get("arm") if install() else None


def attach(global_address: int) -> None:
    """Point a compiled module's `dad_interrupt` global (at `global_address`) at `WORDS`."""
    if global_address and install():
        ctypes.c_void_p.from_address(global_address).value = ADDRESS


_check_signals = ctypes.pythonapi.PyErr_CheckSignals
_check_signals.restype = ctypes.c_int
_check_signals.argtypes = []


def raise_interrupt(message: str = "") -> None:
    WORDS[1] = 0
    _check_signals()  # runs Python's SIGINT handler: raises KeyboardInterrupt by default
    raise KeyboardInterrupt(message) if message else KeyboardInterrupt()


def take_stopped() -> bool:
    """Whether some compiled code stopped for a SIGINT since the last call (clears it)."""
    if WORDS[1]:
        WORDS[1] = 0
        return True
    return False


__all__ = ["install", "attach", "arm_function", "raise_interrupt", "take_stopped", "WORDS",
           "ADDRESS"]
