"""Random programs and the numeric helpers the derivative tests share.

Numeric helpers (a compiled function returns a value or a tuple of values):
- `as_tuple(r)`: the results as a tuple; `flat(r)`: as a list of float64 arrays (scalars
  become 0-d arrays); `split(r)`: the two halves of `flat(r)` (the primals and tangents a
  `jvp` returns);
- `pairing(a, b)`: `(sum a*b, sum |a*b|)` in f64, a dot product and the size of its terms;
- `is_float_arg(a)`, `random_like(a, rng)`, `directions(args, rng, which)`: which arguments
  are differentiable, and standard normal directions typed and shaped like them (None for
  the others);
- `shift(args, dirs, h)`: `args + h * dirs`, each argument keeping its type (an f32 argument
  is moved in f32), None directions leaving theirs alone;
- `central_difference(f, args, dirs, h)`: `(f(args + h dirs) - f(args - h dirs)) / 2h`, one
  float64 array per result of `f`; `partial_difference(f, args, k, d, h)` along `d` in
  argument `k` only, and `difference(f, x, v, h)` for a function of one argument, each for
  a function with one result;
- `fd_gradient(f, x, h)`: the gradient of a scalar `f` at the array `x`, one central
  difference per element.
The differences are the textbook formulas, nothing extrapolated or adapted: their error is
the truncation and rounding error each test's tolerance argues for.

Program generators (Hypothesis strategies, deterministic functions of the draws):
- `first_order_programs(n)`, `second_order_programs(n)`: the `.dad` source of
  `fn f(x: f64[n], c: f64)` (the first: `-> f64` or `-> (f64, f64[n])`, with `f_jvp`,
  `f_vjp` and, for a scalar result, `f_grad` and `f_vg` derived; the second: `-> f64`,
  nothing derived) and its helpers. The bodies (`LoopBody`) have `for` loops (nested up to
  three deep, `step 2`), `while` loops whose trip count depends on the data, `if`/`else`,
  `break` (and `continue` in the second), early `return`s, a local array `a = copy(x)`
  updated in place, and calls of helpers with branches and loops. Every program
  type-checks; every index is in range when `n >= 3` (constant indices below `n`, loop
  indices wrapped or clamped); every loop terminates (`for` over ranges bounded by `n`,
  `while` with a counter bound); values stay bounded (updates contract or go through
  tanh/sin/sigmoid, the only division is by `1.5 + e * e`), so finite inputs give finite
  results. The second generator's programs always start with a `for` and a data-dependent
  `while` and end in a term coupling every element of `x` (a dense Hessian).
- `ir_modules(gen=IRGen)`: a random IR `Module` of two functions (`@g`, called from `@f`)
  built with `lang.ir.Builder`: arithmetic on f64/f32/i64/i1, math ops, constants including
  inf, nan and -0.0, casts, `scf.for` with carried values, `scf.if` with results,
  `scf.while`, memref alloc/load/store/dim/dealloc, bounds-checked array loops, and name
  hints that collide on purpose. Every module verifies; what it computes may divide by
  zero, index out of range, step by a non-positive amount or never end. Subclasses of
  `IRGen` narrow what is drawn through its class attributes.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from dad.lang.ir import BOOL, F32, F64, I64, Builder, Function, MemRefType, Module
from dad.lang.ops import CMPF_PREDICATES, CMPI_PREDICATES, MATH_BINARY, MATH_UNARY


# ----------------------------------------------------------------------------- numeric helpers
def as_tuple(r) -> tuple:
    return r if isinstance(r, tuple) else (r,)


def flat(r) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64) for v in as_tuple(r)]


def split(r) -> tuple[list[np.ndarray], list[np.ndarray]]:
    r = flat(r)
    m = len(r) // 2
    return r[:m], r[m:]


def pairing(a, b) -> tuple[float, float]:
    """(sum a*b, sum |a*b|) in f64."""
    p = np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)
    return float(np.sum(p)), float(np.sum(np.abs(p)))


def is_float_arg(a) -> bool:
    if isinstance(a, (bool, int, np.integer, np.bool_)):
        return False
    return not (isinstance(a, np.ndarray) and a.dtype.kind in "iub")


def random_like(a, rng):
    """A standard normal value shaped and typed like the float value `a`."""
    if np.ndim(a) == 0:
        return type(a)(rng.normal()) if isinstance(a, np.floating) else float(rng.normal())
    return rng.normal(size=np.shape(a)).astype(np.asarray(a).dtype)


def directions(args, rng, which=None):
    """A random direction per float argument (None for the others); `which` limits them to
    those positions."""
    return [random_like(a, rng) if is_float_arg(a) and (which is None or i in which) else None
            for i, a in enumerate(args)]


def shift(args, dirs, h):
    """args + h * dirs on the arguments with a direction (dirs[i] is None for the others)."""
    out = []
    for a, d in zip(args, dirs):
        if d is None:
            out.append(a)
        elif np.ndim(a) == 0:
            out.append(type(a)(a + h * d) if isinstance(a, np.floating) else float(a + h * d))
        else:
            out.append((a + h * d).astype(a.dtype))
    return out


def central_difference(f, args, dirs, h):
    plus = flat(f(*shift(args, dirs, h)))
    minus = flat(f(*shift(args, dirs, -h)))
    return [(p - m) / (2 * h) for p, m in zip(plus, minus)]


def partial_difference(f, args, k, d, h):
    """The central difference of a function with one result along `d` in its argument `k`,
    the others held."""
    return central_difference(f, args, [d if i == k else None for i in range(len(args))], h)[0]


def difference(f, x, v, h):
    """The central difference of a function of one argument with one result."""
    return central_difference(f, [x], [v], h)[0]


def fd_gradient(f, x, h=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        g[idx] = (f(x + e) - f(x - e)) / (2 * h)
    return g


# ----------------------------------------------------------------------------- .dad programs
class LoopBody:
    """Draws statements of `fn f(x: f64[n], c: f64)` whose body starts `var a = copy(x);
    var s = c; var t = 0.5;`. `names` are the scalar variables in scope, `idx` the loop
    indices in scope. The class attributes say what may be drawn: leaves and operators of
    expressions (templates over the operand `{a}`, a second operand `{b}` and a loop index
    or `n`, `{i}`), the forms of scalar updates, the exits allowed in loops, the `while`
    loop and the early return."""
    budget: int                     # statements in all
    leaves: list[str]               # of "var", "x", "a", "const", "c", "call"; repeats weigh
    ops: list[str]
    assigns: list[str]              # templates over the variable `{v}` and an expression `{e}`
    stores = ["a[{i}] = 0.5 * a[{j}] + 0.3 * tanh({e});",
              "a[{i}] += 0.2 * sin({e});",
              "a[{i}] *= 0.5 + 0.4 * tanh({e});",
              "a[{i}] = a[{i}] * a[{j}] * 0.5 + sin(a[{i}]);"]
    exits = ["break"]
    # the condition, the update of the shrinking `{w}` and what is added to `s` after it
    while_form: tuple[str, str, str]

    def __init__(self, draw, n):
        self.draw, self.n = draw, n
        self.fresh = 0

    def name(self, base):
        self.fresh += 1
        return f"{base}{self.fresh}"

    def index(self, idx):
        d = self.draw
        if idx and d(st.booleans()):
            i = d(st.sampled_from(idx))
            return d(st.sampled_from([i, f"({i} + 1) % n", f"max({i} - 1, 0)", f"(n - 1 - {i})"]))
        return str(d(st.integers(0, self.n - 1)))

    def call(self, names, idx):
        raise NotImplementedError

    def returned(self, e):
        """The value an early return returns, given the expression `e` it tested."""
        raise NotImplementedError

    def leaf(self, names, idx):
        d = self.draw
        kind = d(st.sampled_from(self.leaves))
        if kind == "var":
            return d(st.sampled_from(names))
        if kind == "call":
            return self.call(names, idx)
        if kind in ("x", "a"):
            return f"{kind}[{self.index(idx)}]"
        if kind == "c":
            return "c"
        return repr(d(st.sampled_from([0.5, 1.5, -0.7, 2.0])))

    def expr(self, names, idx, depth=0):
        d = self.draw
        if depth >= 2 or d(st.integers(0, 2)) == 0:
            return self.leaf(names, idx)
        op = d(st.sampled_from(self.ops))
        a = self.expr(names, idx, depth + 1)
        b = self.expr(names, idx, depth + 1) if "{b}" in op else ""
        i = (d(st.sampled_from(idx)) if idx else "n") if "{i}" in op else ""
        return op.format(a=a, b=b, i=i)

    def block(self, names, idx, depth, in_loop):
        out = []
        for _ in range(self.draw(st.integers(1, 3))):
            if self.budget <= 0:
                break
            self.budget -= 1
            out += self.stmt(names, idx, depth, in_loop)
        return out

    def stmt(self, names, idx, depth, in_loop, k=None):
        d = self.draw
        kinds = ["assign", "assign", "store", "store", "if"]
        if depth < 3:
            kinds += ["for", "for", "while"]
        if in_loop:
            kinds += self.exits
        kinds += ["return"]
        k = k or d(st.sampled_from(kinds))
        if k == "assign":
            v = d(st.sampled_from(["s", "t"]))
            e = self.expr(names, idx)
            return [d(st.sampled_from(self.assigns)).format(v=v, e=e)]
        if k == "store":
            i = self.index(idx)
            e = self.expr(names, idx)
            return [d(st.sampled_from(self.stores)).format(i=i, j=self.index(idx), e=e)]
        if k == "if":
            c = self.expr(names, idx)
            then = self.block(names, idx, depth, in_loop)
            other = self.block(names, idx, depth, in_loop) if d(st.booleans()) else []
            out = [f"if {c} > {d(st.sampled_from([0.0, 0.3, -0.2]))} {{", *then, "}"]
            if other:
                out[-1] = "} else {"
                out += [*other, "}"]
            return out
        if k == "for":
            i = self.name("i")
            lo, hi = d(st.sampled_from([("0", "n"), ("1", "n"), ("0", "3"), ("2", "n - 1")]))
            step = d(st.sampled_from(["", "", " step 2"]))
            body = self.block(names, idx + [i], depth + 1, True)
            return [f"for {i} in {lo}..{hi}{step} {{", *body, "}"]
        if k == "while":
            # the trip count depends on the data: w shrinks at a data-dependent rate
            w, cnt = self.name("w"), self.name("k")
            e = self.expr(names, idx)
            inner = self.expr(names + [w], idx)
            body = self.block(names + [w], idx, depth + 1, True)
            cond, update, after = (f.format(w=w, k=cnt, inner=inner) for f in self.while_form)
            return [f"var {w} = 1.0 + 0.5 * tanh({e});", f"var {cnt} = 0;",
                    f"while {cond} {{", update, f"{cnt} += 1;", *body, "}", after]
        if k == "break":
            return [f"if {self.expr(names, idx)} > 0.4 {{ break; }}"]
        if k == "continue":
            return [f"if {self.expr(names, idx)} < -0.3 {{ continue; }}"]
        e = self.expr(names, idx)
        return [f"if {e} > {d(st.sampled_from([0.8, 1.2]))} {{", f"return {self.returned(e)};", "}"]


FIRST_ORDER_HELPERS = r"""
fn hs(u: f64, v: f64) -> f64 {
    if u > v {
        return u * tanh(v) + 0.5 * sin(u);
    }
    return 0.5 * u + cos(v) * 0.3;
}
fn ha(y: f64[n], u: f64) -> f64 {
    var r = 0.0;
    for k in 0..n {
        r = 0.8 * r + y[k] * sin(u + float(k));
        if r > 2.0 { break; }
    }
    return r;
}
"""


class FirstOrderBody(LoopBody):
    """Bodies for first-order checks: a scalar or a (scalar, array) result (`tuple_out`),
    helpers `hs` (a branch and an early return) and `ha` (a loop with `break`)."""
    budget = 9
    leaves = ["var", "var", "x", "a", "const", "c"]
    ops = ["({a} + {b})", "({a} - {b})", "({a} * {b})", "sin({a})", "cos({a})", "tanh({a})",
           "exp(tanh({a}))", "sqrt(1.0 + {a} * {a})", "hs({a}, {b})", "ha(x, {a})",
           "({a} * float({i} + 1))", "select({a} > 0.0, {a}, 0.5 * {b})"]
    assigns = ["{v} = 0.9 * {v} + 0.3 * sin({e});",
               "{v} = {v} * tanh({e}) + 0.1 * {e};",
               "{v} += 0.2 * tanh({e});",
               "{v} *= 0.5 + 0.4 * sin({e});"]
    while_form = ("abs({w}) > 0.05 and {k} < 40", "{w} = 0.7 * {w} + 0.01 * sin({inner});",
                  "s += 0.1 * {w};")
    tuple_out = False

    def result(self, e):
        return f"({e}, a * {e})" if self.tuple_out else e

    def returned(self, e):
        return self.result("s * 0.5 + " + e)


@st.composite
def first_order_programs(draw, n):
    g = FirstOrderBody(draw, n)
    g.tuple_out = draw(st.booleans())
    body = g.block(["s", "t", "c"], [], 0, False)
    final = g.result("s + t * 0.5 + 0.1 * sum(a)")
    result = "(f64, f64[n])" if g.tuple_out else "f64"
    src = "\n".join([
        FIRST_ORDER_HELPERS,
        f"fn f(x: f64[n], c: f64) -> {result} {{",
        # `var s = c`: a loop-carried value starting as an outer scalar the loop also reads
        "    var a = copy(x);",
        "    var s = c;",
        "    var t = 0.5;",
        *("    " + line for line in body),
        f"    return {final};",
        "}",
        "fn f_jvp = jvp(f);",
        "fn f_vjp = vjp(f);",
    ])
    if not g.tuple_out:
        src += "\nfn f_grad = grad(f);\nfn f_vg = value_and_grad(f);\n"
    return src


SECOND_ORDER_HELPERS = r"""
fn hb(u: f64, v: f64) -> f64 {
    if u * v > 0.1 {
        return sin(u) * tanh(v) + 0.2 * u * u;
    }
    return 0.5 * u * v + cos(v) * 0.3;
}
fn hl(y: f64[n], u: f64) -> f64 {
    var r = 0.0;
    for k in 0..n {
        r = 0.7 * r + y[k] * sin(u * float(k + 1));
        if r > 1.5 { break; }
    }
    return r * r;
}
fn hw(y: f64[n], u: f64) -> f64 {
    var b = zeros(n);
    var q = 1.0 + 0.3 * tanh(u);
    var k = 0;
    while q > 0.2 and k < 12 {
        b[k % n] += q * y[(k + 1) % n];
        q = q * (0.6 + 0.2 * sigmoid(b[k % n]));
        k += 1;
    }
    return dot(b, y) + sum(b) * u;
}
"""


class SecondOrderBody(LoopBody):
    """Bodies for second-order checks: operators with curvature (products, rationals,
    cubes, log1p), helpers `hb` (a branch and an early return), `hl` (a loop with `break`)
    and `hw` (a local array and a `while`); ~3 s to compile with a Hessian, hence the small
    budget."""
    budget = 5
    leaves = ["var", "var", "x", "x", "a", "const", "call"]
    ops = ["({a} + {b})", "({a} - {b})", "({a} * {b})", "({a} * {b})", "sin({a})", "cos({a})",
           "tanh({a})", "exp(tanh({a}))", "sqrt(1.0 + {a} * {a})", "sigmoid({a})",
           "log1p({a} * {a})", "atan({a})", "({a} / (1.5 + {a} * {a}))",
           "(0.1 * {a} * {a} * {a})", "hb({a}, {b})", "hl(x, tanh({a}))", "hw(a, tanh({a}))",
           "select({a} > 0.0, {a} * {a}, 0.5 * {b})", "({a} * float({i} + 1) * 0.3)"]
    assigns = ["{v} = 0.9 * {v} + 0.3 * sin({e});",
               "{v} = {v} * tanh({e}) + 0.1 * {e};",
               "{v} += 0.2 * tanh({e});",
               "{v} *= 0.5 + 0.4 * sin({e});",
               "{v} = 0.5 * {v} + 0.3 * {e} * {e} / (1.0 + {e} * {e});"]
    exits = ["break", "continue"]
    while_form = ("{w} > 0.1 and {k} < 30", "{w} = {w} * (0.55 + 0.3 * sigmoid({inner}));",
                  "s += 0.1 * {w} * {w};")

    def call(self, names, idx):
        u = self.draw(st.sampled_from(names))
        return self.draw(st.sampled_from([f"hb({u}, x[{self.index(idx)}])", f"hl(x, {u})",
                                          f"hw(a, {u})"]))

    def returned(self, e):
        return f"s * t + 0.5 * {e} * {e} + 0.1 * dot(a, x)"


@st.composite
def second_order_programs(draw, n):
    g = SecondOrderBody(draw, n)
    names = ["s", "t", "c"]
    # every program has a `for` and a data-dependent `while` (with random bodies, so nested
    # loops, branches, stores, calls and exits inside them), then a random tail: with only a
    # few examples affordable (compile time), the features must not be left to chance
    g.budget -= 2
    body = g.stmt(names, [], 0, False, "for") + g.stmt(names, [], 0, False, "while")
    body += g.block(names, [], 0, False)
    return "\n".join([
        SECOND_ORDER_HELPERS,
        "fn f(x: f64[n], c: f64) -> f64 {",
        "    var a = copy(x);",
        "    var s = c;",
        "    var t = 0.5;",
        *("    " + line for line in body),
        # the last line couples every element of x with every other (a dense Hessian)
        "    return s + t * s + 0.1 * dot(a, a) + 0.2 * sin(sum(a) * t);",
        "}",
    ]) + "\n"


# ----------------------------------------------------------------------------- IR modules
HINTS = [None, None, None, "x", "acc", "x.dot", "x.bar", "i", "t_1", "x_1", "n", "0"]
FLOATS = st.one_of(st.sampled_from([0.0, -0.0, 1.0, math.inf, -math.inf, math.nan, 1e-310, 0.1]),
                   st.floats(allow_nan=True, allow_infinity=True))
INTS = st.one_of(st.sampled_from([0, 1, -1, 2**63 - 1, -2**63]), st.integers(-2**63, 2**63 - 1))
MEM1, MEM2 = MemRefType(F64, 1), MemRefType(F64, 2)


class IRGen:
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
def ir_modules(draw, gen=IRGen):
    m = Module()
    g = m.add(gen(draw, m, None).function("g", [F64, I64]))
    m.add(gen(draw, m, g).function("f", draw(st.sampled_from([[F64], [], [BOOL, I64, F64]]))))
    return m
