"""Differential property test: the default pipeline preserves what a program computes.

A small reference interpreter (tests only) runs random modules before and after
`default_pipeline()` on the same inputs; results, the final contents of the array argument
and the exception raised (IndexError, ZeroDivisionError, ValueError) must agree. An access
left unchecked by `elide_bounds_checks` that is out of range fails the test outright.
Programs that break the IR conventions (step <= 0) or run too long are skipped.
"""
import math

import numpy as np
from hypothesis import assume, given, settings, HealthCheck
from hypothesis import strategies as st

from dad.lang.ir import Block
from dad.lang.ops import FLOAT_BINARY
from dad.lang.passes import PassManager, default_pipeline
from dad.lang.printer import print_module
from generators import IRGen, ir_modules


class Skip(Exception):
    pass


class BoundsBug(AssertionError):
    pass


_NP = {"f64": np.float64, "f32": np.float32}


def _wrap(x):
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >= 1 << 63 else x


def _float_op(fn):
    def run(op, a, *rest):
        dt = _NP[op.results[0].type.name]
        with np.errstate(all="ignore"):
            return dt(fn(dt(a), *[dt(r) for r in rest]))
    return run


def _cmpf(op, a, b):
    a, b = float(a), float(b)
    un = math.isnan(a) or math.isnan(b)
    p = op.attrs["pred"]
    if p == "ord":
        return not un
    if p == "uno":
        return un
    if p == "une":
        return un or a != b
    r = {"oeq": a == b, "one": a != b, "olt": a < b, "ole": a <= b, "ogt": a > b, "oge": a >= b}[p]
    return r and not un


def _cmpi(op, a, b):
    a, b = (-int(x) if isinstance(x, bool) else x for x in (a, b))
    return {"eq": a == b, "ne": a != b, "slt": a < b, "sle": a <= b, "sgt": a > b, "sge": a >= b}[op.attrs["pred"]]


def _fptosi(op, a):
    a = float(a)
    if math.isnan(a):
        return 0
    if math.isinf(a):
        return (1 << 63) - 1 if a > 0 else -(1 << 63)
    return max(-(1 << 63), min((1 << 63) - 1, math.trunc(a)))


def _floordiv(op, a, b):
    if b == 0:
        raise ZeroDivisionError
    return _wrap(a // b)


def _floormod(op, a, b):
    if b == 0:
        raise ZeroDivisionError
    return _wrap(a % b)


def _logic(fn):
    return lambda op, a, b: fn(a, b) if isinstance(a, bool) else _wrap(fn(a, b))


SCALAR = {
    "arith.addf": _float_op(np.add), "arith.subf": _float_op(np.subtract),
    "arith.mulf": _float_op(np.multiply), "arith.divf": _float_op(np.divide),
    "arith.remf": _float_op(np.fmod), "arith.negf": _float_op(np.negative),
    "arith.addi": lambda op, a, b: _wrap(a + b), "arith.subi": lambda op, a, b: _wrap(a - b),
    "arith.muli": lambda op, a, b: _wrap(a * b), "arith.maxsi": lambda op, a, b: max(a, b),
    "arith.minsi": lambda op, a, b: min(a, b),
    "arith.floordivsi": _floordiv, "arith.floormodsi": _floormod,
    "arith.andi": _logic(lambda a, b: a & b), "arith.ori": _logic(lambda a, b: a | b),
    "arith.xori": _logic(lambda a, b: a ^ b),
    "arith.cmpf": _cmpf, "arith.cmpi": _cmpi,
    "arith.select": lambda op, c, a, b: a if c else b,
    "arith.sitofp": lambda op, a: _NP[op.results[0].type.name](np.int64(a)),
    "arith.fptosi": _fptosi, "arith.extf": _float_op(lambda a: a), "arith.truncf": _float_op(lambda a: a),
    "arith.extui": lambda op, a: int(a),
    "math.sqrt": _float_op(np.sqrt), "math.absf": _float_op(np.abs),
    "math.floor": _float_op(np.floor), "math.ceil": _float_op(np.ceil),
    "math.sin": _float_op(np.sin), "math.exp": _float_op(np.exp), "math.tanh": _float_op(np.tanh),
    "math.atan2": _float_op(np.arctan2), "math.powf": _float_op(np.power),
}


class Interp:
    def __init__(self, module, strict: bool, fuel=3000):
        self.module, self.fuel, self.strict = module, fuel, strict

    def tick(self):
        self.fuel -= 1
        if self.fuel < 0:
            raise Skip("out of fuel")

    def call(self, name, args):
        f = self.module[name]
        return self.block(f.body, dict(zip(f.params, args)))

    def block(self, block: Block, env: dict):
        for op in block.ops:
            args = [env[v] for v in op.operands]
            if op.name in ("scf.yield", "scf.condition", "func.return"):
                return args
            outs = self.op(op, args, env)
            for r, v in zip(op.results, outs):
                env[r] = v
        raise AssertionError("block without terminator")

    def index(self, op, a, idx):
        inside = len(idx) == a.ndim and all(0 <= i < n for i, n in zip(idx, a.shape))
        if not inside:
            if op.attrs.get("checked"):
                raise IndexError
            if not self.strict:  # the generated program itself reads out of range unchecked
                raise Skip("unchecked out-of-range access in the input program")
            raise BoundsBug(f"unchecked out-of-range access {op.name} {idx} of shape {a.shape}")
        return tuple(idx)

    def op(self, op, args, env):
        n = op.name
        if n in SCALAR:
            return [SCALAR[n](op, *args)]
        if n == "arith.constant":
            t, v = op.results[0].type, op.attrs["value"]
            with np.errstate(all="ignore"):
                return [_NP[t.name](v) if t.is_float else bool(v) if t.is_bool else _wrap(int(v))]
        if n == "memref.alloc":
            if any(d < 0 for d in args):
                raise ValueError
            if math.prod(args) > 10_000:
                raise Skip("big alloc")
            return [np.zeros(args)]
        if n == "memref.dealloc":
            return []
        if n == "memref.dim":
            return [args[0].shape[op.attrs["index"]]]
        if n == "memref.load":
            return [np.float64(args[0][self.index(op, args[0], args[1:])])]
        if n == "memref.store":
            args[1][self.index(op, args[1], args[2:])] = args[0]
            return []
        if n == "func.call":
            return self.call(op.attrs["callee"], args)
        if n == "scf.for":
            lb, ub, step, *carried = args
            if step <= 0:
                raise Skip("step <= 0 breaks the scf.for convention")
            body = op.regions[0].block
            iv = lb
            while iv < ub:
                self.tick()
                carried = self.block(body, {**env, **dict(zip(body.args, [iv, *carried]))})
                iv += step
            return carried
        if n == "scf.if":
            return self.block(op.regions[0 if args[0] else 1].block, env)
        if n == "scf.while":
            before, after = (r.block for r in op.regions)
            while True:
                self.tick()
                c, *vals = self.block(before, {**env, **dict(zip(before.args, args))})
                if not c:
                    return vals
                args = self.block(after, {**env, **dict(zip(after.args, vals))})
        raise AssertionError(f"interpreter does not know {n}")


def outcome(module, inputs, strict):
    x, k, c, arr, y = inputs
    arr = arr.copy()
    try:
        res = Interp(module, strict).call("f", [np.float64(x), k, c, arr, np.float32(y)])
    except (IndexError, ZeroDivisionError, ValueError) as e:
        return type(e).__name__
    return [_canon(v) for v in res] + [_canon(v) for v in arr]


def _canon(v):
    if isinstance(v, (np.floating, float)):
        return "nan" if math.isnan(v) else (type(v).__name__, float(v), math.copysign(1.0, v))
    return v


class SmallGen(IRGen):
    ints = st.one_of(st.integers(-2, 6), st.sampled_from([0, 1, 2**63 - 1, -2**63]))
    floats = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 1e308, math.inf, -math.inf, math.nan, 0.1])
    math_unary = ["sqrt", "absf", "floor", "ceil", "sin", "exp", "tanh"]
    math_binary = ["atan2", "powf"]
    max_ops = 10


INPUTS = st.tuples(st.sampled_from([0.0, -0.0, 2.5, -1.0, math.nan]), st.integers(-1, 5), st.booleans(),
                   st.integers(0, 5).map(lambda n: np.arange(n, dtype=np.float64) * 1.5),
                   st.sampled_from([0.0, 1.25, -3.0]))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(ir_modules(gen=SmallGen), INPUTS)
def test_default_pipeline_preserves_results(m, inputs):
    try:
        before = outcome(m, inputs, strict=False)
    except Skip:
        assume(False)
    text = print_module(m)
    PassManager(default_pipeline(), verify=True).run(m)
    try:
        after = outcome(m, inputs, strict=True)
    except Skip as e:  # the optimised program broke a convention the input kept
        raise AssertionError(f"{e}: before:\n{text}\nafter:\n{print_module(m)}") from None
    assert after == before, f"before:\n{text}\nafter:\n{print_module(m)}"


def test_interpreter_covers_float_binary_ops():
    assert all(n in SCALAR for n in FLOAT_BINARY)
