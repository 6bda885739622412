"""Property tests: random well-formed IR verifies and prints identically after a parse.

Modules are generated directly with `lang.ir.Builder`: two functions (`@g` is called from
`@f`), arithmetic on f64/f32/i64/i1, math ops, constants including inf, nan and -0.0,
casts, `scf.for` with carried values, `scf.if` with results, `scf.while`, memref
alloc/load/store/dim/dealloc, and name hints that collide on purpose.
"""
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dad.lang.ir import BOOL, F32, F64, I64, Builder, Function, MemRefType, Module
from dad.lang.irparser import parse_module
from dad.lang.ops import CMPF_PREDICATES, CMPI_PREDICATES, MATH_BINARY, MATH_UNARY
from dad.lang.passes import PassManager, default_pipeline
from dad.lang.printer import print_module
from dad.lang.verifier import verify

HINTS = [None, None, None, "x", "acc", "x.dot", "x.bar", "i", "t_1", "x_1", "n", "0"]
FLOATS = st.one_of(st.sampled_from([0.0, -0.0, 1.0, math.inf, -math.inf, math.nan, 1e-310, 0.1]),
                   st.floats(allow_nan=True, allow_infinity=True))
INTS = st.one_of(st.sampled_from([0, 1, -1, 2**63 - 1, -2**63]), st.integers(-2**63, 2**63 - 1))
MEM1, MEM2 = MemRefType(F64, 1), MemRefType(F64, 2)


class Gen:
    """Draws a random function op by op; the class attributes say what it may draw."""
    ints, floats = INTS, FLOATS
    math_unary, math_binary = MATH_UNARY, MATH_BINARY
    max_ops = 6

    def __init__(self, draw, module: Module, callee: Function | None):
        self.draw, self.module, self.callee = draw, module, callee

    def pick(self, pool, t):
        """A value of type t, preferring recent ones (so results depend on the computation)."""
        vs = pool[t]
        return vs[-1 - self.draw(st.one_of(st.integers(0, min(2, len(vs) - 1)),
                                           st.integers(0, len(vs) - 1)))]

    def hint(self):
        return self.draw(st.sampled_from(HINTS))

    def const(self, b, t):
        value = {F64: self.floats, F32: self.floats, I64: self.ints, BOOL: st.booleans()}[t]
        return b.const(self.draw(value), t, self.hint())

    def block(self, b: Builder, pool: dict, depth: int) -> None:
        allocs = []
        for _ in range(self.draw(st.integers(0, self.max_ops))):
            kind = self.draw(st.sampled_from(KINDS if depth < 2 else LEAF_KINDS))
            for v in getattr(self, kind)(b, pool, depth) or []:
                pool.setdefault(v.type, []).append(v)
                if v.op is not None and v.op.name == "memref.alloc":
                    allocs.append(v)
        for a in allocs:
            if self.draw(st.booleans()):
                b.dealloc(a)

    def scoped(self, pool, block):
        inner = {t: list(vs) for t, vs in pool.items()}
        for a in block.args:
            inner.setdefault(a.type, []).append(a)
        return inner

    # -- kinds: each emits ops at `b` and returns the new values worth reusing
    def constant(self, b, pool, depth):
        return [self.const(b, self.draw(st.sampled_from([F64, F32, I64, BOOL])))]

    def float_arith(self, b, pool, depth):
        t = self.draw(st.sampled_from([F64, F32]))
        name = self.draw(st.sampled_from(["addf", "subf", "mulf", "divf", "remf"]))
        attrs = self.draw(st.sampled_from([{}, {"fastmath": "reassoc"}, {"fastmath": "fast"}]))
        return [b.one("arith." + name, [self.pick(pool, t), self.pick(pool, t)], t, self.hint(), **attrs)]

    def math(self, b, pool, depth):
        t = self.draw(st.sampled_from([F64, F32]))
        if self.draw(st.booleans()):
            return [b.math(self.draw(st.sampled_from(self.math_unary)), self.pick(pool, t))]
        return [b.math(self.draw(st.sampled_from(self.math_binary)), self.pick(pool, t), self.pick(pool, t))]

    def int_arith(self, b, pool, depth):
        name = self.draw(st.sampled_from(["addi", "subi", "muli", "maxsi", "minsi", "floordivsi",
                                          "floormodsi"]))
        attrs = {"loc": "t.dad:1:2"} if "floor" in name else {}
        return [b.one("arith." + name, [self.pick(pool, I64), self.pick(pool, I64)], I64, self.hint(), **attrs)]

    def logic(self, b, pool, depth):
        name = self.draw(st.sampled_from(["andi", "ori", "xori"]))
        return [b.one("arith." + name, [self.pick(pool, BOOL), self.pick(pool, BOOL)], BOOL)]

    def compare(self, b, pool, depth):
        if self.draw(st.booleans()):
            t = self.draw(st.sampled_from([F64, F32]))
            return [b.cmpf(self.draw(st.sampled_from(CMPF_PREDICATES)), self.pick(pool, t), self.pick(pool, t))]
        return [b.cmpi(self.draw(st.sampled_from(CMPI_PREDICATES)), self.pick(pool, I64), self.pick(pool, I64))]

    def select(self, b, pool, depth):
        t = self.draw(st.sampled_from([F64, I64, BOOL]))
        return [b.select(self.pick(pool, BOOL), self.pick(pool, t), self.pick(pool, t))]

    def cast(self, b, pool, depth):
        name, src, dst = self.draw(st.sampled_from([
            ("arith.sitofp", I64, F64), ("arith.sitofp", I64, F32), ("arith.fptosi", F64, I64),
            ("arith.fptosi", F32, I64), ("arith.extf", F32, F64), ("arith.truncf", F64, F32),
            ("arith.extui", BOOL, I64), ("arith.negf", F64, F64)]))
        return [b.cast(name, self.pick(pool, src), dst)]

    def memory(self, b, pool, depth):
        which = self.draw(st.sampled_from(["alloc", "load", "store", "dim"]))
        t = self.draw(st.sampled_from([MEM1, MEM2]))
        if which == "alloc" or t not in pool:
            return [b.alloc(F64, [self.pick(pool, I64) for _ in range(t.rank)], self.hint())]
        a = self.pick(pool, t)
        idx = [self.pick(pool, I64) for _ in range(t.rank)]
        attrs = self.draw(st.sampled_from([{}, {"checked": True, "loc": "t.dad:3:4"}, {"checked": False}]))
        if which == "load":
            return [b.load(a, idx, **attrs)]
        if which == "store":
            b.store(self.pick(pool, F64), a, idx, **attrs)
            return []
        return [b.dim(a, self.draw(st.integers(0, t.rank - 1)))]

    def call(self, b, pool, depth):
        if self.callee is None:
            return self.constant(b, pool, depth)
        args = [self.pick(pool, t) for t in self.callee.param_types]
        return b.call(self.callee.name, args, self.callee.result_types)

    def array_loop(self, b, pool, depth):
        """`for i in lb..dim(a, k) - c: a[.., i + d, ..]`: the shape elide_bounds_checks proves."""
        t = self.draw(st.sampled_from([MEM1, MEM2]))
        if t not in pool:
            return []
        a, k = self.pick(pool, t), self.draw(st.integers(0, t.rank - 1))
        lb, c, d = (b.i(self.draw(st.integers(-1, 2))) for _ in range(3))
        n = b.dim(a, k)
        ub = b.subi(n, c) if self.draw(st.booleans()) else n
        op, body = b.for_(lb, ub, b.i(1), [self.pick(pool, F64)], carried_names=["acc"])
        inner = b.at(body)
        j = inner.addi(body.args[0], d) if self.draw(st.booleans()) else body.args[0]
        idx = [j if axis == k else self.pick(pool, I64) for axis in range(t.rank)]
        v = inner.load(a, idx, checked=True, loc="t.dad:5:6")
        acc = inner.addf(body.args[1], v)
        if self.draw(st.booleans()):
            inner.store(acc, a, idx, checked=True, loc="t.dad:6:7")
        inner.yield_([acc])
        return op.results

    def carried(self, pool):
        return [self.pick(pool, self.draw(st.sampled_from([F64, I64, BOOL])))
                for _ in range(self.draw(st.integers(0, 3)))]

    def loop(self, b, pool, depth):
        inits = self.carried(pool)
        names = [self.hint() for _ in inits]
        op, body = b.for_(self.pick(pool, I64), self.pick(pool, I64), self.pick(pool, I64), inits,
                          iv_name=self.hint(), carried_names=names, result_names=names)
        inner = self.scoped(pool, body)
        self.block(b.at(body), inner, depth + 1)
        b.at(body).yield_([self.pick(inner, v.type) for v in inits])
        return op.results

    def branch(self, b, pool, depth):
        types = [v.type for v in self.carried(pool)]
        op, then, other = b.if_(self.pick(pool, BOOL), types, [self.hint() for _ in types])
        for blk in (then, other):
            inner = self.scoped(pool, blk)
            self.block(b.at(blk), inner, depth + 1)
            b.at(blk).yield_([self.pick(inner, t) for t in types])
        return op.results

    def while_loop(self, b, pool, depth):
        inits = self.carried(pool)
        op, before, after = b.while_(inits, [self.hint() for _ in inits])
        inner = self.scoped(pool, before)
        self.block(b.at(before), inner, depth + 1)
        b.at(before).op("scf.condition", [self.pick(inner, BOOL)] + [self.pick(inner, v.type) for v in inits])
        inner = self.scoped(pool, after)
        self.block(b.at(after), inner, depth + 1)
        b.at(after).yield_([self.pick(inner, v.type) for v in inits])
        return op.results

    def function(self, name, results) -> Function:
        f = Function(name, [F64, I64, BOOL, MEM1, F32], results,
                     [self.hint() or "p" for _ in range(5)],
                     attrs=self.draw(st.sampled_from([{}, {"sig": "(x: f64) -> f64", "n": 3,
                                                           "l": (1, 2.5, -0.0, "s")}])))
        b = Builder(f.body)
        pool = self.scoped({}, f.body)
        self.block(b, pool, 0)
        b.ret([self.pick(pool, t) for t in results])
        return f


LEAF_KINDS = ["constant", "float_arith", "math", "int_arith", "logic", "compare", "select",
              "cast", "memory", "call"]
KINDS = LEAF_KINDS + ["loop", "branch", "while_loop", "array_loop"]


@st.composite
def modules(draw, gen=Gen):
    m = Module()
    g = m.add(gen(draw, m, None).function("g", [F64, I64]))
    m.add(gen(draw, m, g).function("f", draw(st.sampled_from([[F64], [], [BOOL, I64, F64]]))))
    return m


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(modules())
def test_print_parse_print_is_identity(m):
    verify(m)
    text = print_module(m)
    again = parse_module(text)
    verify(again)
    assert print_module(again) == text


@SETTINGS
@given(modules())
def test_default_pipeline_keeps_ir_valid_and_printable(m):
    out = PassManager(default_pipeline(), verify=True).run(m)
    text = print_module(out)
    assert print_module(parse_module(text)) == text
