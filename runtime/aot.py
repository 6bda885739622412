"""Ahead-of-time compilation: `.dad` programs as self-contained shared libraries.

`build_library(source, out_dir, name=...)` runs the whole pipeline and writes
`out_dir/NAME.so` (machine code for the host CPU, or for `cpu="generic"` / any LLVM CPU
name) and `out_dir/NAME.h` (the C declarations of every exported function, derived ones
included). The object file comes from llvmlite (`emit_object` on the O3-optimised, PIC
module) and is linked with the system C compiler (`cc -shared ... -lm`), so the library
needs only libc and libm at run time.

Besides the functions' entries (`lowering.abi`, `lowering.entry`), every library exports
- `const char dad_module_metadata[]`: JSON with each function's signature, entry symbol
  and calling convention, the error-site table, the target and the `.dad` source; `dad.load`
  (`runtime.loader`) builds the Python callables from it, no source file needed;
- `const char *NAME_error_message(int64_t code)`: `"Kind: file:line:col: message"` of a
  status code, with `{d0}`/`{d1}` where details go ("no error" for 0);
- `int64_t NAME_error_format(const int64_t *errinfo, char *buf, int64_t size)`: the full
  message of an `errinfo` filled by a failed call (details substituted), as `snprintf`.

`compile_source` is the pipeline up to optimised IR; `codegen` turns IR into an object (any
triple: `llvm.initialize_all_targets()` for cross targets); `link_shared` calls the linker.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
import time

import llvmlite.binding as llvm
from llvmlite import ir

from ..lang.signature import parse_signature
from . import target

METADATA_SYMBOL = "dad_module_metadata"
METADATA_FORMAT = 1
MARKER = b"dad-module-metadata-v1"  # first bytes of the embedded JSON: found by a byte scan


class LinkerMissing(RuntimeError):
    """No C compiler / linker to turn an object file into a shared library."""


class LinkError(RuntimeError):
    """The C compiler / linker failed."""


# ----------------------------------------------------------------------------- the front half

def compile_source(source: str, filename: str = "<string>", *, fast_math: bool = False,
                   timings: dict | None = None):
    """Front end, derived functions and IR passes: returns (optimised IR module, front-end IR
    text). Raises `CompileError` like `dad.compile` (cannot-derive errors included). Runs on
    a large stack (`runtime.deep`)."""
    from . import deep
    return deep.compile_step(_compile_source, source, filename, fast_math, timings)


def _compile_source(source, filename, fast_math, timings):
    from ..ad import ADError
    from ..frontend import compile_to_ir
    from ..frontend.diagnostics import CompileError, Diagnostic
    from ..lang.printer import print_module
    from .compiler import derive_all, optimize_ir
    timings = timings if timings is not None else {}
    t0 = time.perf_counter()
    m = compile_to_ir(source, filename, fast_math=fast_math)
    source_ir = print_module(m)
    t1 = time.perf_counter()
    try:
        derive_all(m)
    except ADError as exc:
        d = getattr(exc, "derivation", None)
        if d is None:
            raise
        raise CompileError([Diagnostic(d.span, f"cannot derive '{d.name}': {exc}")], source) from None
    m = optimize_ir(m)
    t2 = time.perf_counter()
    timings.update(frontend=t1 - t0, ir_passes=t2 - t1)
    return m, source_ir


# ----------------------------------------------------------------------------- metadata

def c_identifier(name: str) -> str:
    out = re.sub(r"\W", "_", name, flags=re.ASCII)
    return out if out and not out[0].isdigit() else "_" + out


def machine_info(triple: str | None = None, cpu: str | None = None) -> dict:
    """The triple, CPU and features of the machine code: the host CPU with all its features
    when neither is given, else `cpu` (default "generic") with that CPU's own features."""
    host = llvm.get_process_triple()  # (no LLVM initialisation needed: warm cache hits)
    if triple in (None, host) and cpu is None:
        return {"triple": host, "cpu": llvm.get_host_cpu_name(),
                "features": llvm.get_host_cpu_features().flatten()}
    return {"triple": triple or host, "cpu": cpu or "generic", "features": ""}


def make_machine(info: dict):
    """A target machine for `machine_info`'s description."""
    target._init()
    if info["triple"] == llvm.get_process_triple():
        return target.machine() if info["features"] else target.machine(None, info["cpu"])
    return target.machine(info["triple"], info["cpu"])


def module_metadata(ir_module, lowered, *, name: str, source: str | None, filename: str,
                    fast_math: bool, machine: dict) -> dict:
    from .. import __version__
    functions = []
    for fn in ir_module:
        if fn.attrs.get("internal"):
            continue
        functions.append({"name": fn.name, "sig": fn.attrs["sig"], "entry": fn.name,
                          "scalar": fn.name in lowered.scalar_entries})
    return {"marker": MARKER.decode(), "format": METADATA_FORMAT, "dad_version": __version__,
            "name": name, "filename": filename, "fast_math": fast_math, **machine,
            "functions": functions,
            "sites": [[s.kind, s.loc, s.message] for s in lowered.sites],
            "source": source}


def _cstring(module: ir.Module, name: str, text: bytes, linkage: str = "private") -> ir.GlobalVariable:
    data = bytearray(text + b"\0")
    g = ir.GlobalVariable(module, ir.ArrayType(ir.IntType(8), len(data)), name)
    g.initializer = ir.Constant(g.type.pointee, data)
    g.global_constant = True
    if linkage != "external":  # llvmlite: "" is external linkage for a definition
        g.linkage = linkage
    if linkage == "private":
        g.unnamed_addr = True
    return g


def _printf_format(message: str) -> tuple[str, list[int]]:
    """A site's `{d0}`/`{d1}` template as a printf format and the detail order it reads."""
    fmt, order = [], []
    for literal, field, _, _ in string.Formatter().parse(message):
        fmt.append(literal.replace("%", "%%"))
        if field is not None:
            fmt.append("%lld")
            order.append(1 if field == "d0" else 2)
    return "".join(fmt), order


def extras_module(name: str, meta: dict, triple: str, data_layout: str) -> str:
    """LLVM IR of the metadata global and the two error-message functions."""
    i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
    ptr = i8.as_pointer()
    m = ir.Module(name="dad.extras")
    m.triple, m.data_layout = triple, data_layout
    _cstring(m, METADATA_SYMBOL, json.dumps(meta, separators=(",", ":")).encode(), "external")
    sites = meta["sites"]

    def as_ptr(b, g):
        return b.gep(g, [i32(0), i32(0)], inbounds=True)

    # const char *NAME_error_message(int64_t code)
    fn = ir.Function(m, ir.FunctionType(ptr, [i64]), f"{name}_error_message")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    texts = [b"no error"] + [f"{k}: {loc + ': ' if loc else ''}{msg}".encode() for k, loc, msg in sites]
    table_t = ir.ArrayType(ptr, len(texts))
    strs = [_cstring(m, f".msg{k}", t) for k, t in enumerate(texts)]
    table = ir.GlobalVariable(m, table_t, ".messages")
    table.initializer = ir.Constant(table_t, [s.gep([i32(0), i32(0)]) for s in strs])
    table.global_constant, table.linkage = True, "private"
    unknown = _cstring(m, ".unknown", b"unknown error code")
    code = fn.args[0]
    ok = b.icmp_unsigned("<=", code, i64(len(sites)))
    with b.if_then(ok):
        b.ret(b.load(b.gep(table, [i32(0), code], inbounds=True)))
    b.ret(as_ptr(b, unknown))

    # int64_t NAME_error_format(const int64_t *errinfo, char *buf, int64_t size)
    snprintf = ir.Function(m, ir.FunctionType(i32, [ptr, i64, ptr], var_arg=True), "snprintf")
    fn = ir.Function(m, ir.FunctionType(i64, [i64.as_pointer(), ptr, i64]), f"{name}_error_format")
    info, buf, size = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    null = b.icmp_unsigned("==", info, ir.Constant(info.type, None))
    with b.if_then(null):
        b.ret(i64(-1))
    details = [b.load(b.gep(info, [i64(k)])) for k in range(3)]
    default = fn.append_basic_block("default")
    sw = b.switch(details[0], default)
    for k, (kind, loc, msg) in enumerate([("", "", "no error")] + sites):
        fmt, order = _printf_format(msg)
        if k:
            fmt = f"{kind}: {loc + ': ' if loc else ''}{fmt}"
        blk = fn.append_basic_block(f"site{k}")
        sw.add_case(i64(k), blk)
        b.position_at_end(blk)
        g = _cstring(m, f".fmt{k}", fmt.encode())
        r = b.call(snprintf, [buf, size, as_ptr(b, g)] + [details[j] for j in order])
        b.ret(b.sext(r, i64))
    b.position_at_end(default)
    g = _cstring(m, ".fmtunknown", b"unknown error code %lld")
    b.ret(b.sext(b.call(snprintf, [buf, size, as_ptr(b, g), details[0]]), i64))
    return str(m)


# ----------------------------------------------------------------------------- code generation

@dataclasses.dataclass
class Artifact:
    """An optimised LLVM module ready for code generation, with what the library exports."""
    module: object           # llvmlite.binding.ModuleRef, optimised
    tm: object               # its target machine
    meta: dict
    timings: dict

    @property
    def llvm_ir(self) -> str:
        """The optimised LLVM IR (ask before `object_code`: code generation changes it)."""
        return str(self.module)

    def object_code(self) -> bytes:
        t0 = time.perf_counter()
        with target.codegen():
            obj = self.tm.emit_object(self.module)
        self.timings["codegen"] = time.perf_counter() - t0
        return obj

    def assembly(self) -> str:
        with target.codegen():
            return self.tm.emit_assembly(self.module)


def assembly_of(llvm_ir: str, tm=None) -> str:
    """Host assembly of optimised LLVM IR text."""
    with target.codegen():
        return (tm or target.shared_host_machine()).emit_assembly(llvm.parse_assembly(llvm_ir))


def codegen(ir_module, *, name: str, source: str | None, filename: str = "<string>",
            fast_math: bool = False, triple: str | None = None, cpu: str | None = None,
            timings: dict | None = None) -> Artifact:
    """Lower and optimise `ir_module` for `triple`/`cpu` (host CPU with its features when
    both are None), metadata and error functions included."""
    from ..lowering import Target, lower_module
    timings = timings if timings is not None else {}
    info = machine_info(triple, cpu)
    tm = make_machine(info)
    t0 = time.perf_counter()
    from .compiler import machine_ir
    from .deep import run
    tgt = Target(info["triple"], info["cpu"], info["features"], str(tm.target_data))
    lowered = run(lambda: lower_module(machine_ir(ir_module), tgt))
    meta = module_metadata(ir_module, lowered, name=name, source=source, filename=filename,
                           fast_math=fast_math, machine=info)
    taken = {f["name"] for f in meta["functions"]}
    for suffix in ("_error_message", "_error_format"):
        if name + suffix in taken:
            raise ValueError(f"library name '{name}' clashes with the function '{name}{suffix}'")
    mod = target.parse(lowered.llvm_ir, tm)
    mod.link_in(target.parse(extras_module(name, meta, info["triple"], str(tm.target_data)), tm))
    t1 = time.perf_counter()
    target.optimize(mod, tm)
    t2 = time.perf_counter()
    timings.update(lower=t1 - t0, llvm_opt=t2 - t1)
    return Artifact(mod, tm, meta, timings)


# ----------------------------------------------------------------------------- linking

INSTALL_HINT = ("install one (Debian/Ubuntu: `apt-get install gcc`; Fedora: `dnf install gcc`; "
                "macOS: `xcode-select --install`) or set CC to a C compiler")


def find_cc() -> list[str]:
    """The C compiler driver used as linker: $CC, else cc, gcc or clang on PATH."""
    env = os.environ.get("CC", "").split()
    if env:
        if shutil.which(env[0]) is None:
            raise LinkerMissing(f"CC={os.environ['CC']!r} is not an executable on PATH: "
                                f"cannot link a shared library; {INSTALL_HINT}")
        return env
    for cand in ("cc", "gcc", "clang"):
        path = shutil.which(cand)
        if path:
            return [path]
    raise LinkerMissing("no C compiler found (looked for $CC, cc, gcc, clang on PATH): it is "
                        f"needed to link the shared library; {INSTALL_HINT}")


def link_shared(obj: bytes, out_path: str) -> None:
    """Link one object into the shared library `out_path` (written atomically)."""
    cc = find_cc()
    out_dir = os.path.dirname(os.path.abspath(out_path))
    with tempfile.TemporaryDirectory(prefix=".dad-link-", dir=out_dir) as tmp:
        obj_path = os.path.join(tmp, "module.o")
        so_path = os.path.join(tmp, "module.so")
        with open(obj_path, "wb") as fh:
            fh.write(obj)
        cmd = [*cc, "-shared", "-o", so_path, obj_path, "-lm"]
        if sys.platform != "darwin":
            cmd.insert(-1, "-Wl,-z,noexecstack")
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as exc:
            raise LinkerMissing(f"cannot run {cc[0]}: {exc}; {INSTALL_HINT}") from None
        if r.returncode != 0:
            raise LinkError(f"linking failed ({' '.join(cmd)}):\n{r.stderr.strip()}")
        os.replace(so_path, out_path)


# ----------------------------------------------------------------------------- C header

CTYPE = {"f64": "double", "f32": "float", "i64": "int64_t", "bool": "uint8_t"}


def c_declaration(fn_meta: dict) -> str:
    """The C prototype of one function's C entry, with a comment giving its `.dad` signature
    and the shape of each output buffer."""
    sig = parse_signature(fn_meta["sig"])
    args, taken, notes = [], set(), []

    def fresh(n: str) -> str:
        n = c_identifier(n)
        while n in taken or n in ("errinfo",):
            n += "_"
        taken.add(n)
        return n

    pnames = {p.name: fresh(p.name) for p in sig.params}
    for p in sig.params:
        t = CTYPE[p.type.dtype]
        if p.type.rank == 0:
            args.append(f"{t} {pnames[p.name]}")
            continue
        args.append(f"const {t} *{pnames[p.name]}")
        for axis, d in enumerate(p.type.dims):
            dn = fresh(f"{p.name}_{d}" if isinstance(d, str) else f"{p.name}_dim{axis}")
            args.append(f"int64_t {dn}")
    scalar = fn_meta["scalar"]
    for k, r in enumerate(sig.results if not scalar else ()):
        rn = fresh("out" if len(sig.results) == 1 else f"out{k}")
        args.append(f"{CTYPE[r.dtype]} *{rn}")
        what = f"{r.dtype}[{', '.join(str(d) for d in r.dims)}]" if r.rank else r.dtype
        notes.append(f"{rn}: {what}" + (" (caller-allocated, row-major)" if r.rank else ""))
    args.append("int64_t *errinfo")
    if scalar:
        r = sig.results[0]
        ret = CTYPE[r.dtype]
        bad = {"f64": "NaN", "f32": "NaN", "i64": "INT64_MIN", "bool": "2"}[r.dtype]
        notes.append(f"returns the result; on error {bad}, and errinfo[0] != 0")
    else:
        ret = "int64_t"
        notes.append("returns 0 or an error code")
    lines = [f"/* {fn_meta['name']}{fn_meta['sig']}", f" *   {'; '.join(notes)}", " */",
             f"{ret} {fn_meta['entry']}({', '.join(args)});"]
    return "\n".join(lines)


def c_header(meta: dict) -> str:
    name = meta["name"]
    guard = f"DAD_{name.upper()}_H"
    out = [f"/* {name}.h -- generated by dadc {meta['dad_version']} from {meta['filename']}",
           f" * for {meta['triple']} (cpu {meta['cpu']}). Link with -l{name} (lib{name}.so) or",
           f" * {name}.so directly; it needs only libc and libm.",
           " *",
           " * Calling convention (every function):",
           " * - scalars by value; bool as uint8_t (0 or 1);",
           " * - an array parameter as a pointer to its row-major, contiguous elements followed",
           " *   by one int64_t per dimension;",
           " * - errinfo: NULL, or 3 int64_t receiving {code, detail0, detail1} on error (code 0:",
           " *   no error; it is written only on error, so zero it before the call);",
           " * - a function with one scalar result returns it; on error it returns NaN (f64, f32),",
           " *   INT64_MIN (i64) or 2 (bool) and sets errinfo[0] (a genuine result can equal the",
           " *   sentinel: tell them apart by errinfo[0]);",
           " * - the others return 0 or an error code, and write each result through an output",
           " *   pointer: a scalar's address, or a caller-allocated buffer of the declared shape",
           " *   (sizes are the named parameters' dimensions, row-major);",
           f" * - {name}_error_message(code) names an error code, and",
           f" *   {name}_error_format(errinfo, buf, size) writes the full message (snprintf-like).",
           " */",
           f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
           "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
           "/* \"Kind: file:line:col: message\" for an error code ({d0}/{d1} mark the details);",
           " * \"no error\" for 0. */",
           f"const char *{name}_error_message(int64_t code);",
           "/* The full message of a failed call's errinfo into buf (at most size bytes, NUL",
           " * included); returns the length snprintf would write, or -1 when errinfo is NULL. */",
           f"int64_t {name}_error_format(const int64_t *errinfo, char *buf, int64_t size);", ""]
    for f in meta["functions"]:
        out += [c_declaration(f), ""]
    out += ["#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */", ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------- the whole build

def library_name(path: str) -> str:
    return c_identifier(os.path.splitext(os.path.basename(path))[0])


def build_library(source: str, out_dir: str, *, name: str, filename: str = "<string>",
                  fast_math: bool = False, cpu: str | None = None, embed_source: bool = True,
                  log=None) -> dict:
    """Build `out_dir/NAME.so` and `out_dir/NAME.h`; returns the metadata (with "so", "header"
    paths and "timings"). `log(stage, seconds)` is called after each stage when given."""
    timings: dict = {}
    say = log or (lambda stage, s: None)

    def stage(label, key):
        say(label, timings[key])

    m, _ = compile_source(source, filename, fast_math=fast_math, timings=timings)
    stage("front end (parse, check, IR)", "frontend")
    stage("derived functions and IR passes", "ir_passes")
    art = codegen(m, name=name, source=source if embed_source else None, filename=filename,
                  fast_math=fast_math, cpu=cpu, timings=timings)
    stage("lowering to LLVM IR", "lower")
    stage("LLVM O3 (" + art.meta["cpu"] + ")", "llvm_opt")
    obj = art.object_code()
    stage("machine code (object file)", "codegen")
    os.makedirs(out_dir, exist_ok=True)
    so = os.path.join(out_dir, name + target.host().shared_suffix)
    t0 = time.perf_counter()
    link_shared(obj, so)
    timings["link"] = time.perf_counter() - t0
    stage(f"link ({' '.join(find_cc())} -shared)", "link")
    t0 = time.perf_counter()
    header = os.path.join(out_dir, name + ".h")
    with open(header, "w", encoding="utf-8") as fh:
        fh.write(c_header(art.meta))
    timings["header"] = time.perf_counter() - t0
    stage("C header", "header")
    return dict(art.meta, so=so, header=header, timings=timings)


__all__ = ["build_library", "compile_source", "codegen", "link_shared", "c_header",
           "LinkerMissing", "LinkError", "METADATA_SYMBOL", "find_cc", "library_name"]
