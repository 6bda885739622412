"""`dadc`, the command-line compiler.

    dadc check FILE                      parse and type-check; report every error
    dadc emit --stage STAGE FILE [-f F]  print ast | ir | opt-ir | llvm | asm
    dadc run FILE -f F --arg x=[1,2,3]   compile, call F, print the result
    dadc build FILE -o DIR [-v]          write DIR/NAME.so and DIR/NAME.h (ahead of time)
    dadc emit --stage asm|obj --target TRIPLE FILE -o OUT   code for another machine
    dadc opt -p PASSES FILE [-f F]       run IR passes on a printed-IR (.ir) or .dad file
    dadc cache info|clear                the compile cache (~/.cache/dad, $DAD_CACHE_DIR)

STAGE `activity` and `ad` show a derived function (`fn g = jvp(f, wrt=x);`) and need -f.
Argument values: numbers, true/false, inf/nan, nested lists of those, or a `.npy` file.
Exit status: 0 on success, 1 for an error in the program or its inputs (diagnostics on
stderr, never a traceback), 2 for bad usage.
"""
from __future__ import annotations

import argparse
import ast as pyast
import dataclasses
import os
import sys
import time
import warnings

import numpy as np
from .lang.ops import isa, FUNC_CALL

STAGES = ("ast", "ir", "activity", "ad", "tape", "opt-ir", "llvm", "asm", "obj")


class UsageError(Exception):
    """The command line itself is wrong (exit 2)."""


class InputError(Exception):
    """A file or value the user gave cannot be read (exit 1)."""


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read {path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                         f"at offset {exc.start})") from None


def _derive_error(exc, source: str):
    """An ADError raised while deriving as a CompileError at the declaration (as dad.compile)."""
    from .frontend.diagnostics import CompileError, Diagnostic
    d = getattr(exc, "derivation", None)
    if d is None:
        return InputError(str(exc))
    return CompileError([Diagnostic(d.span, f"cannot derive '{d.name}': {exc}")], source)


def _dump_ast(node, indent: int = 0) -> str:
    pad = "  " * indent
    if isinstance(node, list):
        return "\n".join(_dump_ast(n, indent) for n in node)
    if not dataclasses.is_dataclass(node):
        return pad + repr(node)
    fields = [f for f in dataclasses.fields(node)
              if f.name not in ("span", "name_span", "source") and f.repr]
    simple, nested = [], []
    for f in fields:
        v = getattr(node, f.name)
        if dataclasses.is_dataclass(v) or (isinstance(v, list) and v and dataclasses.is_dataclass(v[0])):
            nested.append((f.name, v))
        else:
            simple.append(f"{f.name}={v!r}")
    span = getattr(node, "span", None)
    where = f" @{span.line}:{span.col}" if span is not None and hasattr(span, "line") else ""
    lines = [pad + type(node).__name__ + (" " + " ".join(simple) if simple else "") + where]
    for name, v in nested:
        lines.append(pad + "  " + name + ":")
        lines.append(_dump_ast(v, indent + 2))
    return "\n".join(lines)


def _select(text_by_name: dict[str, str], name: str | None, derived=()) -> str:
    if name is None:
        return "\n".join(text_by_name.values())
    if name not in text_by_name:
        hint = " (a derived function: see it with --stage ad or later)" if name in derived else ""
        raise UsageError(f"no function '{name}'{hint} (have: {', '.join(text_by_name) or 'none'})")
    return text_by_name[name]


def cmd_check(args) -> int:
    from .frontend import compile_to_ir
    from .ad import ADError
    from .runtime.compiler import derive_all
    source = _read(args.file)
    m = compile_to_ir(source, args.file)
    names = [f.name for f in m] + [d.name for d in m.derivations if not d.internal]
    try:
        derive_all(m)  # derived functions are checked by making them
    except ADError as exc:
        raise _derive_error(exc, source) from None
    print(f"{args.file}: ok ({len(names)} function{'s' if len(names) != 1 else ''}"
          + (f": {', '.join(names)})" if names else ")"))
    return 0


def cmd_emit(args) -> int:
    from .frontend import compile_to_ir, parse
    from .lang.printer import print_function
    source = _read(args.file)
    if args.stage == "ast":
        program = parse(source, args.file)
        print(_select({item.name: _dump_ast(item) for item in program.items}, args.function)
              if args.function else _dump_ast(program))
        return 0
    if args.stage in ("llvm", "asm", "obj") and (args.target or args.cpu or args.output
                                                  or args.stage == "obj"):
        return _emit_code(source, args)  # ahead of time, any target (below)
    m = compile_to_ir(source, args.file, fast_math=args.fast_math)
    if args.stage == "ir":
        derived = [d.name for d in m.derivations]
        print(_select({f.name: print_function(f) for f in m}, args.function, derived), end="")
        return 0
    from .ad import ADError
    from .runtime.compiler import compile_module, derive_all, machine_ir, optimize_ir
    try:
        if args.stage in ("activity", "ad", "tape"):
            return _emit_derived(m, args)
        if args.stage == "opt-ir":
            m = machine_ir(optimize_ir(derive_all(m)))
            print(_select({f.name: print_function(f) for f in m}, args.function), end="")
            return 0
        cm = compile_module(m, filename=args.file)
    except ADError as exc:
        raise _derive_error(exc, source) from None
    if args.function is not None:
        _select({k: k for k in cm.kernels}, args.function)
        text = cm.function_llvm_ir(args.function) if args.stage == "llvm" else cm.function_asm(args.function)
    else:
        text = cm.llvm_ir if args.stage == "llvm" else cm.asm
    print(text)
    return 0


def _emit_derived(m, args) -> int:
    """`activity`: what the derived function NAME differentiates, value by value;
    `ad`: NAME's IR as the AD transformation made it (before the clean-up passes)."""
    from .ad import activity_report
    from .lang.passes.util import clone_module
    from .lang.printer import print_function
    from .runtime.compiler import derive_all
    names = [d.name for d in m.derivations if not d.internal]
    source_fns = {f.name for f in m}
    if args.function is None:
        raise UsageError(f"--stage {args.stage}: -f NAME is required (derived functions: "
                         f"{', '.join(names) or 'none'})")
    if args.function not in names:
        # a function AD made on the way (`f.vjp.x`): `ad` shows it once everything is derived
        made = []
        if args.stage == "ad":
            derive_all(m)
            made = [f.name for f in m if f.name not in source_fns and f.name not in names]
            if args.function in made:
                print(_with_made_callees(m, args.function, source_fns), end="")
                return 0
        what = f"'{args.function}' is not a derived function"
        extra = f"; functions AD made: {', '.join(made)}" if made else ""
        raise UsageError(f"--stage {args.stage}: {what} (derived functions: "
                         f"{', '.join(names) or 'none'}{extra})")
    # derive_all cleans the IR up, and unused locals would vanish from the activity report
    as_written = clone_module(m) if args.stage == "activity" else None
    d = derive_all(m, stop_at=args.function)
    if as_written is not None:
        # a function of the file: every local as written, the unused ones included; a
        # derived function (nested transforms) exists only after derive_all
        src = as_written if d.target in as_written.functions else m
        print(activity_report(src, d.target, d.wrt), end="")
    elif args.stage == "tape":
        print(_tape_text(m, args.function, d, source_fns), end="")
    else:
        print(_with_made_callees(m, args.function, source_fns), end="")
    return 0


def _with_made_callees(m, name: str, source_fns: set) -> str:
    """Function `name` printed, then every function AD made (not in the source) that it
    reaches through calls, each once, in the order they are first called."""
    from .lang.printer import print_function
    return "".join(print_function(m[n]) for n in _made_callees(m, name, source_fns))


def _made_callees(m, name: str, source_fns: set) -> list[str]:
    """`name`, then every function AD made that it reaches through calls, in call order."""
    order, todo = [name], [name]
    while todo:
        f = m.functions.get(todo.pop(0))
        for op in f.walk() if f is not None else ():
            callee = op.attrs.get("callee") if isa(op, FUNC_CALL) else None
            if callee and callee not in order and callee not in source_fns \
                    and callee in m.functions:
                order.append(callee)
                todo.append(callee)
    return order


def _ir_input(path: str, source: str):
    """The module `dadc opt` starts from: a printed-IR file as it is, or a `.dad` file as
    the lowering pipeline receives it (every derived function made)."""
    from .frontend.ast import Span
    from .frontend.diagnostics import CompileError, Diagnostic
    if not path.endswith(".dad"):
        from .lang.irparser import parse_module
        try:
            return parse_module(source)
        except ValueError as exc:
            where, _, msg = str(exc).partition(": ")
            line, _, col = where.partition(":")
            if not (line.isdigit() and col.isdigit()):
                raise InputError(f"{path}: {exc}") from None
            span = Span(path, int(line), int(col), int(line), int(col) + 1)
            raise CompileError([Diagnostic(span, msg)], source) from None
    from .ad import ADError
    from .frontend import compile_to_ir
    from .runtime.compiler import derive_all
    m = compile_to_ir(source, path)
    try:
        derive_all(m)
    except ADError as exc:
        raise _derive_error(exc, source) from None
    return m


def cmd_opt(args) -> int:
    from .lang.passes import PASSES, PIPELINES, PassManager, PassVerifyError, UnknownPass, resolve
    from .lang.printer import print_function, print_module
    from .runtime import deep
    if args.list_passes:
        width = max(map(len, [*PASSES, *PIPELINES]))
        print("passes (machine: only on the copy lowered to machine code, never differentiated):")
        for info in PASSES.values():
            tag = " [machine]" if info.machine else ""
            print(f"  {info.name:<{width}}  {info.summary}{tag}")
        print("pipelines:")
        for name, names in PIPELINES.items():
            print(f"  {name:<{width}}  {', '.join(names)}")
        return 0
    if args.file is None or args.passes is None:
        raise UsageError("opt needs -p PASSES and FILE (or --list-passes)")
    try:
        passes = resolve(args.passes)
        after = args.print_after or []
        for name in after:
            resolve(name)
            if name.replace("-", "_") not in PASSES:
                raise UsageError(f"--print-after takes a pass, not the pipeline '{name}' "
                                 f"(use --print-after-all)")
    except UnknownPass as exc:
        raise UsageError(str(exc)) from None
    source = _read(args.file)
    m = _ir_input(args.file, source)
    wanted = {n.replace("-", "_") for n in after}
    pm = PassManager(passes, verify=not args.no_verify,
                     print_after="all" if args.print_after_all else wanted)
    try:
        m = deep.run(pm.run, m)
    except PassVerifyError as exc:
        raise InputError(f"{args.file}: {exc}") from None
    if args.function is not None:
        print(_select({f.name: print_function(f) for f in m}, args.function), end="")
    else:
        print(print_module(m), end="")
    return 0


_NAMES = {"true": True, "false": False, "True": True, "False": False,
          "inf": float("inf"), "nan": float("nan")}


def _literal(node):
    """A number, true/false, inf/nan or a (nested) list of them, from a Python AST node."""
    if isinstance(node, pyast.Constant) and type(node.value) in (int, float, bool):
        return node.value
    if isinstance(node, pyast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, pyast.UnaryOp) and isinstance(node.op, (pyast.USub, pyast.UAdd)):
        v = _literal(node.operand)
        if type(v) in (int, float):
            return -v if isinstance(node.op, pyast.USub) else v
    if isinstance(node, (pyast.List, pyast.Tuple)):
        return [_literal(e) for e in node.elts]
    raise ValueError


def _tape_text(m, name: str, d, source_fns: set) -> str:
    """What the reverse sweep of derived function `name` records, loop by loop, then the
    same for every adjoint function AD made that it calls (a called helper's loops)."""
    fn = m[name]
    reports = [(c, m[c].tape_report) for c in _made_callees(m, name, source_fns)
               if getattr(m[c], "tape_report", None) is not None]
    if not reports:
        return f"{fn.name}: {d.kind} is forward mode: nothing is recorded\n"
    lines = [f"tape of {fn.name} = {d.kind}({d.target}):"]
    shown = []
    for callee, report in reports:
        if report in shown:   # `grad` reports its `vjp`'s tape as its own
            continue
        shown.append(report)
        indent = "  "
        if callee != name:
            primal = m[callee].attrs.get("primal_of") or m[callee].attrs.get("split_of") or "?"
            lines.append(f"  in {callee} (the adjoint of {primal}, which it calls):")
            indent = "    "
        if not report:
            lines.append(f"{indent}no loops")
        for t in report:
            if t.recorded:
                lines.append(f"{indent}loop {t.loop}: {t.nbytes} bytes per iteration: {', '.join(t.recorded)}")
            else:
                lines.append(f"{indent}loop {t.loop}: records nothing")
            if t.recomputed:
                lines.append(f"{indent}  computed again in the reverse sweep: {', '.join(t.recomputed)}")
    return "\n".join(lines) + "\n"


def parse_arg_value(text: str, where: str):
    """A value given on the command line: a number, true/false, inf/nan, a nested list of
    those (`[[1,2],[3,nan]]`), or a `.npy` file (a 0-d array gives a scalar)."""
    if text.endswith(".npy"):
        try:
            with open(text, "rb") as fh:
                if fh.read(6) != b"\x93NUMPY":
                    raise InputError(f"{where}: {text} is not a .npy file")
                fh.seek(0)
                a = np.load(fh, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"{where}: cannot load {text}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
        return a[()] if a.ndim == 0 else a
    try:
        return _literal(pyast.parse(text.strip(), mode="eval").body)
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        raise InputError(f"{where}: cannot read the value {text!r} (use a number, true/false, "
                         "inf/nan, a list like [1,2,3] or [[1,2],[3,4]], or a .npy file)") from None


def _format_result(v) -> str:
    if isinstance(v, tuple):
        return "\n".join(_format_result(x) for x in v)
    if isinstance(v, np.ndarray):
        return np.array2string(v, precision=17, max_line_width=100, threshold=10**6)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def cmd_run(args) -> int:
    from .api import compile as dad_compile
    items = []
    for item in args.arg or []:
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise UsageError(f"--arg {item!r}: expected NAME=VALUE")
        if name in (n for n, _ in items):
            raise UsageError(f"--arg {name} is given twice")
        items.append((name, value))
    source = _read(args.file)
    kwargs = {name: parse_arg_value(value, f"--arg {name}") for name, value in items}
    t0 = time.perf_counter()
    mod = dad_compile(source, filename=args.file, fast_math=args.fast_math)
    t1 = time.perf_counter()
    if args.function not in mod.kernels:
        raise UsageError(f"no function '{args.function}' in {args.file} "
                         f"(have: {', '.join(mod.kernels) or 'none'})")
    k = mod.kernels[args.function]
    names = [p.name for p in k.sig.params]
    missing = [n for n in names if n not in kwargs]
    unknown = [n for n in kwargs if n not in names]
    if unknown:
        raise UsageError(f"{args.function} has no parameter {', '.join(map(repr, unknown))} "
                         f"(signature: {args.function}{k.signature})")
    if missing:
        raise UsageError(f"missing --arg for {', '.join(map(repr, missing))} "
                         f"(signature: {args.function}{k.signature})")
    try:
        result = k(*[kwargs[n] for n in names])
    except (TypeError, ValueError, IndexError, ZeroDivisionError, MemoryError, OverflowError,
            RuntimeError) as exc:
        print(f"dadc: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    t2 = time.perf_counter()
    print(_format_result(result))
    if args.time:
        print(f"compile {1e3 * (t1 - t0):.1f} ms, run {1e3 * (t2 - t1):.3f} ms", file=sys.stderr)
    return 0


# ----------------------------------------------------------------- ahead of time (runtime/aot.py)

def _emit_code(source: str, args) -> int:
    """`emit --stage llvm|asm|obj` for `--target TRIPLE` / `--cpu CPU`, written to `-o`."""
    from .runtime import aot
    if args.stage == "obj" and not args.output:
        raise UsageError("--stage obj writes a binary object: give -o FILE")
    if args.function is not None:
        raise UsageError(f"--stage {args.stage} with --target/--cpu/-o emits the whole module; drop -f")
    try:
        m, _ = aot.compile_source(source, args.file, fast_math=args.fast_math)
    except Exception as exc:
        from .frontend import CompileError
        if isinstance(exc, CompileError):
            raise
        raise InputError(str(exc)) from None
    try:
        art = aot.codegen(m, name=aot.library_name(args.file), source=source, filename=args.file,
                          fast_math=args.fast_math, triple=args.target, cpu=args.cpu)
    except RuntimeError as exc:  # an unknown triple or CPU
        raise UsageError(f"cannot generate code for {args.target or 'the host'}"
                         f"{' (cpu ' + args.cpu + ')' if args.cpu else ''}: {exc}") from None
    data = art.object_code() if args.stage == "obj" else \
        (art.llvm_ir if args.stage == "llvm" else art.assembly()).encode()
    if args.output:
        with open(args.output, "wb") as fh:
            fh.write(data)
    else:
        sys.stdout.write(data.decode())
    return 0


def cmd_build(args) -> int:
    from .runtime import aot
    source = _read(args.file)
    name = args.name or aot.library_name(args.file)
    if not name.isidentifier():
        raise UsageError(f"--name {name!r} is not a C identifier")
    t0 = time.perf_counter()

    def log(stage, seconds):
        if args.verbose:
            print(f"  {stage:<44} {1e3 * seconds:8.1f} ms", file=sys.stderr, flush=True)

    if args.verbose:
        print(f"dadc build {args.file} -> {os.path.join(args.output, name)}.so", file=sys.stderr)
    try:
        meta = aot.build_library(source, args.output, name=name, filename=args.file,
                                 fast_math=args.fast_math, cpu=args.cpu, log=log,
                                 embed_source=not args.no_source)
    except (aot.LinkerMissing, aot.LinkError) as exc:
        raise InputError(str(exc)) from None
    except OSError as exc:
        raise InputError(f"cannot write to {args.output}: {exc.strerror or exc}") from None
    except RuntimeError as exc:  # an unknown CPU name
        raise UsageError(f"cannot generate code for cpu {args.cpu}: {exc}") from None
    if args.verbose:
        print(f"  {'total':<44} {1e3 * (time.perf_counter() - t0):8.1f} ms", file=sys.stderr)
    print(f"{meta['so']} ({len(meta['functions'])} functions for {meta['triple']}, "
          f"cpu {meta['cpu']})\n{meta['header']}")
    return 0


def cmd_cache(args) -> int:
    from .runtime import cache
    if args.action == "info":
        i = cache.info()
        state = "enabled" if i["enabled"] else "disabled (DAD_NO_CACHE=1)"
        print(f"cache: {i['path']} ({state})\nentries: {i['entries']}\n"
              f"size: {i['bytes'] / 1024:.1f} KiB")
    else:
        n = cache.clear()
        print(f"removed {n} entr{'y' if n == 1 else 'ies'} from {cache.cache_root()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dadc", description="The dad compiler: differentiable "
                                "numerical programs compiled to native code.")
    p.add_argument("--version", action="version", version="dadc " + __import__("dad").__version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser("check", help="parse and type-check a file, reporting every error",
                       description="Parse and type-check FILE; print every error with its location.")
    c.add_argument("file", metavar="FILE")
    c.set_defaults(run=cmd_check)

    e = sub.add_parser("emit", help="print one stage of the compilation",
                       description="Print a stage of compiling FILE: ast (syntax tree), ir (IR from "
                       "the front end), activity (for a derived function -f NAME: the activity of "
                       "every value of the function it differentiates), ad (a derived function's IR "
                       "as made by AD), tape (what its reverse sweep records per loop "
                       "iteration), opt-ir (after IR optimisation), llvm (optimised LLVM IR), "
                       "asm (host assembly).")
    e.add_argument("--stage", choices=STAGES, required=True)
    e.add_argument("file", metavar="FILE")
    e.add_argument("-f", "--function", metavar="NAME", help="only this function")
    e.add_argument("--fast-math", action="store_true", help="allow reassociation everywhere")
    e.add_argument("--target", metavar="TRIPLE", help="llvm/asm/obj for another machine, e.g. "
                   "aarch64-unknown-linux-gnu (default: the host)")
    e.add_argument("--cpu", metavar="CPU", help="llvm/asm/obj for this CPU (default: the host "
                   "CPU; 'generic' with --target)")
    e.add_argument("-o", "--output", metavar="OUT", help="write llvm/asm/obj to OUT (needed for obj)")
    e.set_defaults(run=cmd_emit)

    r = sub.add_parser("run", help="compile a file and call one function",
                       description="Compile FILE, call function NAME with the given arguments and "
                       "print its result. Values are numbers, true/false, nested lists "
                       "([[1,2],[3,4]]) or .npy files.")
    r.add_argument("file", metavar="FILE")
    r.add_argument("-f", "--function", metavar="NAME", required=True)
    r.add_argument("--arg", action="append", metavar="NAME=VALUE", help="an argument (repeat)")
    r.add_argument("--fast-math", action="store_true", help="allow reassociation everywhere")
    r.add_argument("--time", action="store_true", help="print compile and run time on stderr")
    r.set_defaults(run=cmd_run)

    b = sub.add_parser("build", help="compile a file to a shared library and C header",
                       description="Compile FILE ahead of time: write DIR/NAME.so (machine code "
                       "for the host CPU, or --cpu generic / --cpu NAME; needs only libc and libm; "
                       "dad.load() reads it back) and DIR/NAME.h (the C declarations of every "
                       "exported function, derived ones included). Linking needs a C compiler "
                       "($CC, cc, gcc or clang).")
    b.add_argument("file", metavar="FILE")
    b.add_argument("-o", "--output", metavar="DIR", default=".", help="output folder (default .)")
    b.add_argument("-n", "--name", metavar="NAME", help="library name (default: FILE's stem)")
    b.add_argument("--cpu", metavar="CPU", help="'generic' for a portable library, or an LLVM "
                   "CPU name (default: this host's CPU and all its features)")
    b.add_argument("--fast-math", action="store_true", help="allow reassociation everywhere")
    b.add_argument("--no-source", action="store_true", help="do not embed the .dad source (then "
                   "dad.load() cannot show the IR or assembly)")
    b.add_argument("-v", "--verbose", action="store_true", help="print each stage and its time")
    b.set_defaults(run=cmd_build)

    o = sub.add_parser("opt", help="run IR passes on a file and print the result",
                       description="Run the IR passes PASSES (comma-separated pass or pipeline "
                       "names, see --list-passes) in order on FILE and print the resulting IR. "
                       "FILE is printed IR (as `dadc emit --stage ir` or `opt` print it) or a "
                       ".dad file, taken as the lowering pipeline receives it (after AD). The "
                       "IR is verified before the first pass and after every pass; a pass that "
                       "breaks it is named.",
                       epilog="example: dadc opt -p constant_fold,cse,dce --print-after-all k.ir")
    o.add_argument("file", metavar="FILE", nargs="?")
    o.add_argument("-p", "--passes", metavar="PASSES", help="e.g. cse,dce or default,licm")
    o.add_argument("-f", "--function", metavar="NAME", help="print only this function")
    o.add_argument("--print-after-all", action="store_true",
                   help="print the module on stderr after every pass")
    o.add_argument("--print-after", action="append", metavar="PASS",
                   help="print the module on stderr after PASS (repeat for more)")
    o.add_argument("--no-verify", action="store_true", help="do not verify between passes")
    o.add_argument("--list-passes", action="store_true", help="list the passes and pipelines")
    o.set_defaults(run=cmd_opt)

    k = sub.add_parser("cache", help="show or clear the compile cache",
                       description="The compile cache: $DAD_CACHE_DIR, else $XDG_CACHE_HOME/dad, "
                       "else ~/.cache/dad; DAD_NO_CACHE=1 disables it.")
    k.add_argument("action", choices=("info", "clear"))
    k.set_defaults(run=cmd_cache)
    return p


def main(argv: list[str] | None = None) -> int:
    from .ad import CheckpointWarning
    from .frontend import CompileError
    parser = build_parser()
    args = parser.parse_args(argv)
    python_style = warnings.showwarning

    def show(message, category, *rest, **kw):
        """Warnings about the program as diagnostics: `file:line:col: warning: ...`."""
        if issubclass(category, CheckpointWarning):
            print(str(message), file=sys.stderr)
        else:
            python_style(message, category, *rest, **kw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", CheckpointWarning)
            warnings.showwarning = show
            return args.run(args)
    except CompileError as exc:
        print(str(exc), file=sys.stderr)
        n = len(exc.diagnostics)
        print(f"{n} error{'s' if n != 1 else ''}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"dadc: error: {exc}", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"dadc: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `dadc emit ... | head`: stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
