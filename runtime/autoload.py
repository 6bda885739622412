"""`import NAME` for `.dad` programs: an import hook (`import dad.autoload` or
`dad.install_import_hook()`).

The finder looks at each `sys.path` folder in order (the current folder for `""`): in the
first one holding `NAME.dad` or a dad-built `NAME.so`, it imports that — the `.dad` file
through `dad.compile_file` (so the compile cache makes repeated imports cheap), the `.so`
through `dad.load`; with both, the `.dad` file. A folder that holds a Python module or package
`NAME` (even beside `NAME.dad`) ends the search: Python's own import then finds it. A
`NAME.so` that is not a dad library (a Python extension module) is left alone. Only top-level names are looked up.

The module is an ordinary Python module whose attributes are the compiled functions, plus
`__dad_module__` (the `CompiledModule`) and `__file__`.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading

from .aot import MARKER

_lock = threading.Lock()


def _is_dad_library(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return MARKER in fh.read()
    except OSError:
        return False


def _python_module_in(folder: str, name: str) -> bool:
    if os.path.isdir(os.path.join(folder, name)):
        return True
    for suffix in importlib.machinery.all_suffixes():
        p = os.path.join(folder, name + suffix)
        if os.path.exists(p) and not (suffix == ".so" and _is_dad_library(p)):
            return True
    return False


class DadLoader(importlib.abc.Loader):
    def __init__(self, path: str):
        self.path = path

    def create_module(self, spec):
        return None  # an ordinary module

    def exec_module(self, module) -> None:
        if self.path.endswith(".dad"):
            from ..api import compile_file
            compiled = compile_file(self.path)
        else:
            from .loader import load
            compiled = load(self.path)
        module.__dad_module__ = compiled
        for name, kernel in compiled.kernels.items():
            setattr(module, name, kernel)
        module.__all__ = list(compiled.kernels)


class DadFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if path is not None or "." in fullname:
            return None
        for entry in sys.path:
            folder = entry or os.getcwd()
            if not isinstance(folder, str) or not os.path.isdir(folder):
                continue
            if _python_module_in(folder, fullname):
                return None  # Python's own import finds it
            dad_file = os.path.join(folder, fullname + ".dad")
            so_file = os.path.join(folder, fullname + ".so")
            has_dad = os.path.isfile(dad_file)
            has_so = not has_dad and os.path.isfile(so_file) and _is_dad_library(so_file)
            if not (has_dad or has_so):
                continue
            origin = dad_file if has_dad else so_file
            return importlib.util.spec_from_file_location(fullname, origin,
                                                          loader=DadLoader(origin))
        return None


_finder = DadFinder()


def install() -> None:
    """Put the finder in front of Python's path finder (idempotent)."""
    with _lock:
        if _finder in sys.meta_path:
            return
        sys.meta_path.insert(0, _finder)
        importlib.invalidate_caches()


def uninstall() -> None:
    with _lock:
        if _finder in sys.meta_path:
            sys.meta_path.remove(_finder)


__all__ = ["install", "uninstall", "DadFinder"]
