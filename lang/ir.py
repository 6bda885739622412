"""The dad IR: typed SSA values, ops with nested regions, functions and modules.

Contract:
- A `Value` has a `Type` and is defined exactly once, either as the result of an `Op` or as an
  argument of a `Block`. Values are compared by identity.
- An `Op` has a name (MLIR-style, e.g. ``arith.addf``), operands (values), results (values it
  owns), attributes (plain Python data: int, float, bool, str, tuples of those) and regions.
- A `Region` holds exactly one `Block` (structured control flow: ``scf.for``, ``scf.while``,
  ``scf.if``); a block has arguments and an ordered list of ops, the last of which is its
  terminator (``scf.yield``, ``scf.condition``, ``func.return``).
- A `Function` has parameters (the arguments of its body block), result types and a body;
  a `Module` is an ordered collection of functions looked up by name.
- `Builder` appends ops at an insertion point and is the only sanctioned way passes create ops.
The catalogue of ops (operand/result/region shapes) lives in `lang.ops`; the printer, parser
and verifier are in their own modules.
"""
from __future__ import annotations

from dataclasses import dataclass
import itertools
from typing import Iterable, Iterator


# ----------------------------------------------------------------------------- types
@dataclass(frozen=True)
class ScalarType:
    name: str  # "f64" | "f32" | "i64" | "i1"

    @property
    def is_float(self) -> bool:
        return self.name in ("f64", "f32")

    @property
    def is_int(self) -> bool:
        return self.name == "i64"

    @property
    def is_bool(self) -> bool:
        return self.name == "i1"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class MemRefType:
    """A contiguous row-major array of `elem` with `rank` dynamic dimensions."""
    elem: ScalarType
    rank: int

    is_float = is_int = is_bool = False

    def __str__(self) -> str:
        return "memref<" + "?x" * self.rank + str(self.elem) + ">"


@dataclass(frozen=True)
class PtrType:
    """An opaque pointer (tapes and stacks of the AD passes)."""
    is_float = is_int = is_bool = False

    def __str__(self) -> str:
        return "ptr"


Type = ScalarType | MemRefType | PtrType

F64 = ScalarType("f64")
F32 = ScalarType("f32")
I64 = ScalarType("i64")
BOOL = ScalarType("i1")
PTR = PtrType()
SCALARS = {t.name: t for t in (F64, F32, I64, BOOL)}


def memref(elem: ScalarType, rank: int) -> MemRefType:
    return MemRefType(elem, rank)


# ----------------------------------------------------------------------------- values
_SERIALS = itertools.count()


class Value:
    """An SSA value. `name` is a printing hint only; identity is the object. `serial` counts
    values in the order they were made: a deterministic order for passes that need one (two
    copies of a module made op by op order their values alike; `id` would not)."""
    __slots__ = ("type", "name", "owner", "index", "serial")

    def __init__(self, type: Type, name: str | None = None, owner=None, index: int = 0):
        self.type = type
        self.name = name
        self.owner = owner  # the defining Op, or the Block for a block argument
        self.index = index
        self.serial = next(_SERIALS)

    @property
    def op(self) -> "Op | None":
        return self.owner if isinstance(self.owner, Op) else None

    def __repr__(self) -> str:
        return f"<Value {self.name or '?'}: {self.type}>"


class Op:
    __slots__ = ("name", "operands", "results", "attrs", "regions", "parent")

    def __init__(self, name: str, operands: Iterable[Value] = (), result_types: Iterable[Type] = (),
                 attrs: dict | None = None, regions: Iterable["Region"] = (),
                 result_names: Iterable[str | None] | None = None):
        self.name = name
        self.operands = list(operands)
        rtypes = list(result_types)
        names = list(result_names) if result_names is not None else [None] * len(rtypes)
        self.results = [Value(t, n, self, i) for i, (t, n) in enumerate(zip(rtypes, names))]
        self.attrs = dict(attrs or {})
        self.regions = list(regions)
        for r in self.regions:
            r.parent = self
        self.parent: Block | None = None

    @property
    def result(self) -> Value:
        assert len(self.results) == 1, f"{self.name} has {len(self.results)} results"
        return self.results[0]

    def drop_result(self, j: int) -> None:
        """Remove result j (it must be unused) and renumber the rest."""
        del self.results[j]
        for k, r in enumerate(self.results):
            r.index = k

    def walk(self) -> Iterator["Op"]:
        """This op, then every op nested in its regions, in program order."""
        yield from _preorder(iter((self,)))

    def __repr__(self) -> str:
        return f"<Op {self.name}>"


class Block:
    __slots__ = ("args", "ops", "parent")

    def __init__(self, arg_types: Iterable[Type] = (), arg_names: Iterable[str | None] | None = None):
        types = list(arg_types)
        names = list(arg_names) if arg_names is not None else [None] * len(types)
        self.args = [Value(t, n, self, i) for i, (t, n) in enumerate(zip(types, names))]
        self.ops: list[Op] = []
        self.parent: Region | None = None

    def add_arg(self, type: Type, name: str | None = None) -> Value:
        v = Value(type, name, self, len(self.args))
        self.args.append(v)
        return v

    def drop_arg(self, j: int) -> None:
        """Remove argument j (it must be unused) and renumber the rest."""
        del self.args[j]
        for k, a in enumerate(self.args):
            a.index = k

    def append(self, op: Op) -> Op:
        op.parent = self
        self.ops.append(op)
        return op

    @property
    def terminator(self) -> Op | None:
        return self.ops[-1] if self.ops else None

    def walk(self) -> Iterator[Op]:
        yield from _preorder(iter(list(self.ops)))


def _preorder(ops: Iterator[Op]) -> Iterator[Op]:
    """`ops` and every op nested in them, in program order, with an explicit stack (no
    recursion, and each op is yielded once however deep it is nested). An op's regions are
    read after the op is yielded, and each block's op list when the walk enters it, so the
    consumer may edit what it has not reached yet."""
    stack = [ops]
    while stack:
        op = next(stack[-1], None)
        if op is None:
            stack.pop()
            continue
        yield op
        if op.regions:
            stack.append(_region_ops(op))


def _region_ops(op: Op) -> Iterator[Op]:
    for r in op.regions:
        yield from list(r.block.ops)


class Region:
    __slots__ = ("block", "parent")

    def __init__(self, block: Block | None = None):
        self.block = block if block is not None else Block()
        self.block.parent = self
        self.parent: Op | None = None


class Function:
    """`name(params) -> result_types`; `body.args` are the parameters."""

    def __init__(self, name: str, param_types: Iterable[Type], result_types: Iterable[Type],
                 param_names: Iterable[str] | None = None, attrs: dict | None = None):
        self.name = name
        self.body = Block(param_types, param_names)
        self.result_types = list(result_types)
        self.attrs = dict(attrs or {})

    @property
    def params(self) -> list[Value]:
        return self.body.args

    @property
    def param_types(self) -> list[Type]:
        return [a.type for a in self.body.args]

    def walk(self) -> Iterator[Op]:
        return self.body.walk()


class Module:
    """Functions by name. `derivations` lists derived functions still to be made from the IR
    (requests from the front end, carried out by the compile pipeline), `fast_math` whether
    the front end was asked for it."""

    def __init__(self, functions: Iterable[Function] = ()):
        self.functions: dict[str, Function] = {}
        self.derivations: list = []
        self.fast_math = False
        for f in functions:
            self.add(f)

    def add(self, f: Function) -> Function:
        self.functions[f.name] = f
        return f

    def __getitem__(self, name: str) -> Function:
        return self.functions[name]

    def __iter__(self) -> Iterator[Function]:
        return iter(self.functions.values())


# ----------------------------------------------------------------------------- use-def helpers
def replace_all_uses(root: Block, old: Value, new: Value) -> None:
    """Replace every use of `old` by `new` in the ops nested under `root`."""
    for op in root.walk():
        op.operands = [new if v is old else v for v in op.operands]


def defined_above(block: Block) -> set[Value]:
    """Values visible at the start of `block` from enclosing blocks (not including its args)."""
    seen: set[Value] = set()
    region = block.parent
    while region is not None and region.parent is not None:
        op = region.parent
        outer = op.parent
        if outer is None:
            break
        seen.update(outer.args)
        for o in outer.ops:
            if o is op:
                break
            seen.update(o.results)
        region = outer.parent
    return seen


# ----------------------------------------------------------------------------- builder
class Builder:
    """Creates ops at the end of a block (the insertion point).

    `b.op(name, operands, result_types, **attrs)` is the general form; the helpers below are
    spelled after the op names and return the single result value.
    """

    def __init__(self, block: Block | None = None):
        self.block = block

    def at(self, block: Block) -> "Builder":
        return Builder(block)

    def insert(self, op: Op) -> Op:
        assert self.block is not None, "builder has no insertion block"
        return self.block.append(op)

    def op(self, name: str, operands: Iterable[Value] = (), result_types: Iterable[Type] = (),
           regions: Iterable[Region] = (), names: Iterable[str | None] | None = None, **attrs) -> Op:
        return self.insert(Op(name, operands, result_types, attrs, regions, names))

    def one(self, name: str, operands: Iterable[Value], type: Type, name_hint: str | None = None,
            **attrs) -> Value:
        return self.op(name, operands, [type], names=[name_hint], **attrs).result

    # constants
    def const(self, value, type: ScalarType, name: str | None = None) -> Value:
        if type.is_float:
            value = float(value)
        elif type.is_bool:
            value = bool(value)
        else:
            value = int(value)
        return self.one("arith.constant", [], type, name, value=value)

    def f(self, value: float, type: ScalarType = F64) -> Value:
        return self.const(value, type)

    def i(self, value: int) -> Value:
        return self.const(value, I64)

    # arithmetic (float)
    def addf(self, a, b, **kw): return self.one("arith.addf", [a, b], a.type, **kw)
    def subf(self, a, b, **kw): return self.one("arith.subf", [a, b], a.type, **kw)
    def mulf(self, a, b, **kw): return self.one("arith.mulf", [a, b], a.type, **kw)
    def divf(self, a, b, **kw): return self.one("arith.divf", [a, b], a.type, **kw)
    def negf(self, a, **kw): return self.one("arith.negf", [a], a.type, **kw)

    # arithmetic (integer)
    def addi(self, a, b, **kw): return self.one("arith.addi", [a, b], a.type, **kw)
    def subi(self, a, b, **kw): return self.one("arith.subi", [a, b], a.type, **kw)
    def muli(self, a, b, **kw): return self.one("arith.muli", [a, b], a.type, **kw)

    def cmpf(self, pred: str, a, b): return self.one("arith.cmpf", [a, b], BOOL, pred=pred)
    def cmpi(self, pred: str, a, b): return self.one("arith.cmpi", [a, b], BOOL, pred=pred)
    def select(self, c, a, b): return self.one("arith.select", [c, a, b], a.type)
    def andi(self, a, b): return self.one("arith.andi", [a, b], BOOL)
    def ori(self, a, b): return self.one("arith.ori", [a, b], BOOL)
    def noti(self, a): return self.one("arith.xori", [a, self.const(True, BOOL)], BOOL)

    def math(self, fn: str, *args, **kw) -> Value:
        return self.one("math." + fn, list(args), args[0].type, **kw)

    def cast(self, name: str, a: Value, to: ScalarType) -> Value:
        return self.one(name, [a], to)

    # memory
    def alloc(self, elem: ScalarType, dims: list[Value], name: str | None = None, **kw) -> Value:
        return self.one("memref.alloc", dims, MemRefType(elem, len(dims)), name, **kw)

    def dealloc(self, a: Value) -> None:
        self.op("memref.dealloc", [a])

    def dim(self, a: Value, k: int) -> Value:
        return self.one("memref.dim", [a], I64, index=k)

    def load(self, a: Value, idx: list[Value], **kw) -> Value:
        return self.one("memref.load", [a, *idx], a.type.elem, **kw)

    def store(self, v: Value, a: Value, idx: list[Value], **kw) -> None:
        self.op("memref.store", [v, a, *idx], **kw)

    # calls and returns
    def call(self, callee: str, args: list[Value], result_types: list[Type]) -> list[Value]:
        return self.op("func.call", args, result_types, callee=callee).results

    def ret(self, values: list[Value]) -> None:
        self.op("func.return", values)

    def yield_(self, values: list[Value]) -> None:
        self.op("scf.yield", values)

    # structured control flow: each helper returns the op and the block(s) to fill in
    def for_(self, lb: Value, ub: Value, step: Value, inits: list[Value],
             iv_name: str | None = "i", carried_names: list[str | None] | None = None,
             result_names: list[str | None] | None = None) -> tuple[Op, Block]:
        names = carried_names or [None] * len(inits)
        body = Block([I64] + [v.type for v in inits], [iv_name] + list(names))
        op = self.op("scf.for", [lb, ub, step, *inits], [v.type for v in inits],
                     regions=[Region(body)], names=result_names)
        return op, body

    def if_(self, cond: Value, result_types: list[Type],
            result_names: list[str | None] | None = None) -> tuple[Op, Block, Block]:
        then, other = Block(), Block()
        op = self.op("scf.if", [cond], result_types, regions=[Region(then), Region(other)],
                     names=result_names)
        return op, then, other

    def while_(self, inits: list[Value], names: list[str | None] | None = None) -> tuple[Op, Block, Block]:
        """`before(args)` ends in `scf.condition(c, args')`; `after(args')` ends in `scf.yield`."""
        types = [v.type for v in inits]
        before = Block(types, names)
        after = Block(types, names)
        op = self.op("scf.while", inits, types, regions=[Region(before), Region(after)], names=names)
        return op, before, after
