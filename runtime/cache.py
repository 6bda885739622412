"""The on-disk compile cache: a warm `dad.compile` is a hash and a dlopen.

Where: `$DAD_CACHE_DIR`, else `$XDG_CACHE_HOME/dad`, else `~/.cache/dad`; `DAD_NO_CACHE=1`
turns it off (everything is then JIT-compiled in memory, as before). `dadc cache info|clear`.

Key: SHA-256 of the source text, the file name (it is in error messages), the options
(`fast_math`) and whether the IR is verified after every pass (`DAD_VERIFY=1`), the compiler (`dad.__version__` and a hash of every source file of the
installed package, so editing the compiler invalidates its entries), llvmlite's and LLVM's
versions, and the target (triple, host CPU name, host CPU features).

Entry: `KEY.so` (the library `runtime.aot` builds, metadata embedded) and `KEY.json` (its
metadata plus its key, the SHA-256 and size of the `.so`, and the compile-time warnings,
issued again on every hit). Both are written to temporary files in the
cache folder and moved into place with `os.replace`, the `.json` last, so concurrent
compilers never see half a file. Before loading, the `.so` is checked against the `.json`'s
checksum and key, and the loaded library's metadata against the `.json`: a corrupt,
truncated or foreign entry (any `.json` that is not such an object) is discarded and rebuilt,
never loaded. Without a C compiler the
cache is skipped (the JIT is used).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import shutil
import tempfile
import time
import warnings

from ..ad.checkpoint import CheckpointWarning

SUBDIR = "v1"


def enabled() -> bool:
    return os.environ.get("DAD_NO_CACHE", "") not in ("1", "true", "yes")


def cache_root() -> pathlib.Path:
    env = os.environ.get("DAD_CACHE_DIR")
    if env:
        return pathlib.Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / ".cache"
    return base / "dad"


def entries_dir() -> pathlib.Path:
    return cache_root() / SUBDIR


def _source_files() -> list[str]:
    """The package's own source files (found without importing its subpackages)."""
    import importlib.util
    dirs = set()
    for sub in ("dad", "dad.lang", "dad.lang.passes", "dad.frontend", "dad.ad", "dad.lowering",
                "dad.runtime"):
        spec = importlib.util.find_spec(sub)
        if spec is not None and spec.submodule_search_locations:
            dirs.update(spec.submodule_search_locations)
    return [os.path.join(d, n) for d in sorted(dirs) for n in sorted(os.listdir(d))
            if n.endswith((".py", ".lark"))]


@functools.lru_cache(maxsize=None)
def compiler_fingerprint() -> str:
    """`dad.__version__` plus a hash of the contents of the package's own source files.

    Hashing them all takes ~10 ms, so the result is remembered in the cache folder under the
    files' (path, size, mtime) list: any edit changes that list and the contents are hashed
    again."""
    from .. import __version__
    files = _source_files()
    stats = hashlib.sha256(__version__.encode())
    for f in files:
        st = os.stat(f)
        stats.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    stat_key = stats.hexdigest()
    memo_path = cache_root() / "compiler-fingerprints.json"
    try:
        with open(memo_path, encoding="utf-8") as fh:
            memo = json.load(fh)
        if isinstance(memo.get(stat_key), str):
            return memo[stat_key]
    except (OSError, ValueError, AttributeError):
        memo = {}
    h = hashlib.sha256(__version__.encode())
    for f in files:
        h.update(os.path.basename(f).encode() + b"\0")
        with open(f, "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    digest = h.hexdigest()
    try:
        memo = dict(list(memo.items())[-7:], **{stat_key: digest})
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(memo_path, json.dumps(memo).encode())
    except OSError:
        pass
    return digest


@functools.lru_cache(maxsize=None)
def toolchain_fingerprint() -> str:
    import llvmlite
    import llvmlite.binding as llvm
    from .aot import machine_info
    info = machine_info()
    return json.dumps([llvmlite.__version__, list(llvm.llvm_version_info), info["triple"],
                       info["cpu"], info["features"]])


def key(source: str, filename: str, fast_math: bool) -> str:
    h = hashlib.sha256()
    # An entry built without IR verification must not satisfy a compile that asks for it.
    verified = "verified" if os.environ.get("DAD_VERIFY") == "1" else "unverified"
    for part in (compiler_fingerprint(), toolchain_fingerprint(), filename,
                 "fast_math" if fast_math else "strict", verified, source):
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:40]


def _sha256_file(path) -> tuple[str, int]:
    with open(path, "rb") as fh:
        data = fh.read()
    return hashlib.sha256(data).hexdigest(), len(data)


def _valid_record(record, k: str) -> bool:
    """Whether `record` (a parsed `KEY.json`) has the shape `compile` writes, for key `k`."""
    return (isinstance(record, dict) and record.get("key") == k
            and isinstance(record.get("sha256"), str)
            and type(record.get("size")) is int and record["size"] > 0
            and isinstance(record.get("warnings", []), list)
            and all(isinstance(t, str) for t in record.get("warnings", [])))


def discard(k: str) -> None:
    """Remove entry `k`'s files (a damaged or foreign entry, about to be rebuilt)."""
    d = entries_dir()
    for path in (d / f"{k}.json", d / f"{k}.so"):
        try:
            path.unlink()
        except OSError:
            pass


def lookup(k: str):
    """The loaded module of entry `k`, or None (missing, damaged, foreign or unloadable: such
    an entry is discarded, so the caller rebuilds it). The `.so` is loaded only when the
    `.json` is an object written for key `k` whose checksum and size match the `.so`, and the
    library's embedded metadata (its source, file name, options) match the `.json`'s."""
    from .loader import LoadError, load
    d = entries_dir()
    meta_path, so_path = d / f"{k}.json", d / f"{k}.so"
    try:
        with open(meta_path, encoding="utf-8") as fh:
            record = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        discard(k)
        return None
    try:
        if not _valid_record(record, k):
            raise ValueError("not an entry of this key")
        digest, size = _sha256_file(so_path)
        if digest != record["sha256"] or size != record["size"]:
            raise ValueError("checksum mismatch")  # corrupt, truncated or swapped
    except (OSError, ValueError):
        discard(k)
        return None
    try:
        mod = load(str(so_path))
        if any(mod.meta.get(f) != record.get(f) for f in ("source", "filename", "fast_math",
                                                          "name", "functions")):
            raise ValueError("the library does not match its entry")
        return mod
    except (LoadError, OSError, ValueError, KeyError, TypeError, AttributeError):
        discard(k)
        return None


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def compile(source: str, *, filename: str = "<string>", fast_math: bool = False):
    """`dad.compile` through the cache: load a valid entry, or build, store and load one.
    Falls back to the JIT when no C compiler is available or the cache folder is not
    writable."""
    from . import aot
    from .compiler import CompiledModule
    from .loader import LoadedModule, load
    t0 = time.perf_counter()
    k = key(source, filename, fast_math)
    hit = lookup(k)
    if hit is not None:
        hit.timings = {"cache_hit": time.perf_counter() - t0}
        hit.cache_key = k
        _warn_again(k)
        return hit
    timings = {"cache_lookup": time.perf_counter() - t0}
    from .deep import compile_step
    return compile_step(_build, source, filename, fast_math, k, timings)


def _build(source: str, filename: str, fast_math: bool, k: str, timings: dict):
    """Compile `source`, store it as entry `k` and load it (on a large stack: `compile`)."""
    from . import aot
    from .compiler import CompiledModule
    from .loader import LoadedModule, load
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", CheckpointWarning)
        m, source_ir = aot.compile_source(source, filename, fast_math=fast_math, timings=timings)
    for w in said:  # said again now, and on every later hit of this entry
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    compile_warnings = [str(w.message) for w in said if issubclass(w.category, CheckpointWarning)]
    d = entries_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        writable = os.access(d, os.W_OK)
    except OSError:
        writable = False
    try:
        if not writable:
            raise aot.LinkerMissing("cache folder not writable")
        aot.find_cc()
    except aot.LinkerMissing:
        return CompiledModule(m, source_ir, filename=filename, timings=timings)
    art = aot.codegen(m, name="dad_module", source=source, filename=filename,
                      fast_math=fast_math, timings=timings)
    llvm_ir = art.llvm_ir  # before code generation, which rewrites the module in place
    obj = art.object_code()
    so_path = d / f"{k}.so"
    t1 = time.perf_counter()
    try:
        aot.link_shared(obj, str(so_path))
    except (aot.LinkError, aot.LinkerMissing, OSError):
        return CompiledModule(m, source_ir, filename=filename, timings=timings)
    digest, size = _sha256_file(so_path)
    record = dict(art.meta, key=k, sha256=digest, size=size, created=time.time(),
                  warnings=compile_warnings)
    _atomic_write(d / f"{k}.json", json.dumps(record).encode())
    timings["link"] = time.perf_counter() - t1
    mod = load(str(so_path), ir_module=m, source_ir=source_ir, llvm_ir=llvm_ir,
               asm_source=lambda: aot.assembly_of(llvm_ir), timings=timings)
    assert isinstance(mod, LoadedModule)
    if mod.meta.get("source") != art.meta.get("source"):
        # the process already had a damaged entry of this path open (dlopen returns it
        # again): use the code compiled in memory
        return CompiledModule(m, source_ir, filename=filename, timings=timings)
    mod.cache_key = k
    return mod


def _warn_again(k: str) -> None:
    """The compile-time warnings of entry `k`'s program, as when it was compiled."""
    try:
        with open(entries_dir() / f"{k}.json", encoding="utf-8") as fh:
            said = json.load(fh).get("warnings", [])
    except (OSError, ValueError, AttributeError):
        return
    for text in said:
        warnings.warn(text, CheckpointWarning, stacklevel=3)


def info() -> dict:
    d = entries_dir()
    entries, total = 0, 0
    if d.is_dir():
        for p in d.iterdir():
            if p.suffix in (".so", ".json"):
                total += p.stat().st_size
                entries += p.suffix == ".json"
    return {"path": str(cache_root()), "enabled": enabled(), "entries": entries,
            "bytes": total}


def clear() -> int:
    """Remove every entry; returns how many there were."""
    n = info()["entries"]
    root = cache_root()
    d = entries_dir()
    if d.is_dir():
        shutil.rmtree(d, ignore_errors=True)
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    return n


__all__ = ["enabled", "cache_root", "key", "lookup", "compile", "info", "clear"]
