"""Compilation on a large stack: deeply nested programs compile instead of overflowing.

The front end, the IR passes, AD and lowering walk programs recursively in many places (the
IR walker `Op.walk` and the call-graph walks are iterative). `@on_deep_stack` runs a
compile step in a thread whose stack is `STACK_BYTES` (reserved, touched only as used) with
Python's recursion limit raised to at least `RECURSION_LIMIT` while any such step runs, so
nesting up to the limits of `frontend.parser.MAX_NESTING` compiles. A step that still
exhausts the recursion limit raises `CompileError` (with the location the caller gives,
`too_deep`), never a bare RecursionError. Nested steps run inline in the same thread.

The recursion limit is process-wide in CPython: while a compile runs, other threads see
the raised limit too (a thread recursing without bound then has RECURSION_LIMIT frames
before its RecursionError, on its own stack). If no thread can be started (a process limit),
the step runs in the calling thread with the limits unchanged.
"""
from __future__ import annotations

import functools
import sys
import threading

STACK_BYTES = 512 << 20
RECURSION_LIMIT = 60_000

_local = threading.local()
_lock = threading.Lock()
_active = 0
_saved_limit = 0


def _enter() -> None:
    global _active, _saved_limit
    with _lock:
        if _active == 0:
            _saved_limit = sys.getrecursionlimit()
            if _saved_limit < RECURSION_LIMIT:
                sys.setrecursionlimit(RECURSION_LIMIT)
        _active += 1


def _leave() -> None:
    global _active
    with _lock:
        _active -= 1
        if _active == 0 and sys.getrecursionlimit() == max(RECURSION_LIMIT, _saved_limit):
            sys.setrecursionlimit(_saved_limit)


def run(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` on a large stack (see the module docstring)."""
    if getattr(_local, "deep", False):
        return fn(*args, **kwargs)
    box: dict = {}

    def body():
        _local.deep = True
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=body, name="dad-compile", daemon=True)
    _enter()
    try:
        with _lock:  # the stack size is read when the thread starts
            old = threading.stack_size()
            try:
                threading.stack_size(STACK_BYTES)
                t.start()
                started = True
            except (RuntimeError, ValueError, MemoryError):  # no such thread: run here
                started = False
            finally:
                threading.stack_size(old)
        if started:
            t.join()
    finally:
        _leave()
    if not started:
        return fn(*args, **kwargs)
    if "error" in box:
        exc = box.pop("error")
        try:
            raise exc
        finally:
            del exc
    return box["value"]


def compile_step(fn, source: str, filename: str, *args):
    """`run(fn, source, filename, *args)`, a RecursionError becoming a `CompileError` at the
    most deeply nested point of `source` (`frontend.parser.deepest_point`)."""
    try:
        return run(fn, source, filename, *args)
    except RecursionError:
        pass
    from ..frontend.diagnostics import CompileError, Diagnostic
    from ..frontend.parser import deepest_point
    span, depth = deepest_point(source, filename)
    raise CompileError([Diagnostic(span, f"the program is nested too deeply to compile "
                                         f"({depth} levels of syntax here)")], source)


def on_deep_stack(fn):
    """Decorator: every call of `fn` runs through `run`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return run(fn, *args, **kwargs)
    return wrapper


__all__ = ["run", "compile_step", "on_deep_stack", "STACK_BYTES", "RECURSION_LIMIT"]
