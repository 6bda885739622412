"""A seeded generator of random well-typed, terminating `.dad` programs.

Contract: `generate(seed, avoid=frozenset(), features=DEFAULT_FEATURES) -> Program` is a pure
function of its arguments. A `Program` is a small tree (functions of statements of
expressions) that prints (`program.text()`) to a module fragment whose names all start with
`program.prefix`; several fragments concatenate into one module. Every program has

  P_f(x: f64[n], y: f64, A: f64[n, n], k: i64, b: bool) -> f64      the function checked
  P_t(same) -> (f64, f64[n])                                         a tuple-valued one

and derived functions of them (value_and_grad, its checkpointed form, jvp, vjp, and unless the
program uses `digamma`, whose third derivative is refused by design, hvp, hessian and
jvp(grad)). Helpers P_gJ (scalar, vector, tuple results) and a bounded recursive P_rJ are
called from P_f and from each other (a helper calls only earlier ones).

Programs are well typed, every index is in range by construction (loop variables over
ranges inside `0..n`, or clamped with `min(max(i, 0), n - 1)`), every loop terminates (`for`
over run-time ranges, `while` with a counter incremented first thing in the body), integer
division is by non-zero literals, and float functions are applied where they are smooth
(`log(1.5 + a * a)`, `asin(0.9 * tanh(a))`, `exp(tanh(a))`...) except the deliberately
non-smooth ones (abs, sign, floor, ceil, min, max, %, comparisons), whose kinks the oracles
detect. `avoid` names constructs to leave out (known bugs, see `KNOWN_BUGS`); `features`
names optional constructs to put in (see `FEATURES`).

The minimiser (`minimize.py`) edits the tree: `Program.nodes()` walks it, every statement
list is a Python list it may shorten and every `Expr` records the leaf (`alt`) of its type
that may replace it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

# Constructs the generator leaves out when asked (each a known defect of the compiler).
KNOWN_BUGS = {
    "self_assign": "`u = u` self-assignment zeroes derivatives",
    "var_tuple_update": "forward mode loses the tangent of an update to an array bound by "
                        "`var (s, u) = g(...)`",
    "ckpt_step_loop": "grad(f, checkpoint=true) wrong for `u = step(u)` loops; hvp of a "
                      "checkpointed grad",
    "pow0": "`x ** 0` has a NaN derivative at 0",
    "minmax_tie": "max/min derivative at ties",
    "carry_early_exit": "reverse mode refuses arrays leaving loops via early return/break",
}
# Optional constructs: the contract has them, this compiler refuses them (docs D9).
FEATURES = {
    "row_slice_update": "whole-row and slice updates `A[i] = v;`, `u[a..b] = w;`",
    "mixed_slices": "an index and a slice in one subscript: `A[j, a..b]`, `A[a..b, j]`",
}
DEFAULT_FEATURES = frozenset()


# ----------------------------------------------------------------------------- the tree
class Expr:
    """`fmt` with `{0}`, `{1}`... replaced by the printed `args`; `ty` one of f (f64), s (f32),
    i (i64), b (bool), v (f64[n]), M (f64[n, n]); `alt` the text of a leaf of the same type
    valid wherever this expression is (used by the minimiser), or None."""
    __slots__ = ("ty", "fmt", "args", "alt")

    def __init__(self, ty, fmt, args=(), alt=None):
        self.ty, self.fmt, self.args, self.alt = ty, fmt, list(args), alt

    def text(self) -> str:
        if not self.args:
            return self.fmt
        return self.fmt.format(*[a.text() for a in self.args])


@dataclass
class Stmt:
    """kind: decl (kw, name, e), tdecl (kw, names, e), assign (target fmt with index args
    `idx`, op, e), if (e, body, orelse), for (name, lo, hi, step, body), while (name, limit,
    e, body), break, continue, return (e)."""
    kind: str
    e: Expr | None = None
    name: str = ""
    kw: str = ""
    op: str = "="
    idx: list = field(default_factory=list)
    body: list = field(default_factory=list)
    orelse: list | None = None
    lo: Expr | None = None
    hi: Expr | None = None
    step: int = 1
    limit: int = 0
    keep: bool = False       # the minimiser keeps it (the base case of a recursion)

    def exprs(self):
        out = [self.e] if self.e is not None else []
        out += self.idx
        out += [x for x in (self.lo, self.hi) if x is not None]
        return out

    def blocks(self):
        out = [self.body] if self.kind in ("if", "for", "while") else []
        if self.orelse is not None:
            out.append(self.orelse)
        return out

    def lines(self, ind: str) -> list[str]:
        k = self.kind
        if k == "decl":
            return [f"{ind}{self.kw} {self.name} = {self.e.text()};"]
        if k == "tdecl":
            return [f"{ind}{self.kw} ({self.name}) = {self.e.text()};"]
        if k == "assign":
            tgt = self.name.format(*[a.text() for a in self.idx])
            return [f"{ind}{tgt} {self.op} {self.e.text()};"]
        if k == "if":
            out = [f"{ind}if {self.e.text()} {{"] + _block(self.body, ind + "    ")
            if self.orelse is not None:
                out += [f"{ind}}} else {{"] + _block(self.orelse, ind + "    ")
            return out + [f"{ind}}}"]
        if k == "for":
            st = f" step {self.step}" if self.step != 1 else ""
            return ([f"{ind}for {self.name} in {self.lo.text()}..{self.hi.text()}{st} {{"]
                    + _block(self.body, ind + "    ") + [f"{ind}}}"])
        if k == "while":
            return ([f"{ind}while {self.name} < {self.limit} and {self.e.text()} {{",
                     f"{ind}    {self.name} += 1;"]
                    + _block(self.body, ind + "    ") + [f"{ind}}}"])
        if k in ("break", "continue"):
            return [f"{ind}{k};"]
        if k == "return":
            return [f"{ind}return {self.e.text()};"]
        raise AssertionError(k)


def _block(stmts, ind):
    out = []
    for s in stmts:
        out += s.lines(ind)
    return out


@dataclass
class Function:
    name: str
    params: str
    ret: str
    body: list

    def text(self) -> str:
        return "\n".join([f"fn {self.name}({self.params}) -> {self.ret} {{"]
                         + _block(self.body, "    ") + ["}"])


@dataclass
class Program:
    seed: int
    prefix: str
    functions: list
    decls: list          # lines `fn NAME = ...;`
    uses_f32: bool = False
    first_order_only: bool = False
    inputs: str = "random"    # random, zeros (some exact zeros) or ties (repeated values)

    def info(self) -> dict:
        """What the oracles need besides the text (sent to worker processes)."""
        return {"prefix": self.prefix, "seed": self.seed, "uses_f32": self.uses_f32,
                "inputs": self.inputs, "text": self.text()}

    def text(self) -> str:
        return "\n".join([f.text() for f in self.functions] + self.decls) + "\n"

    def nodes(self):
        """Every statement list (with its owner) and every expression, outermost first."""
        lists, exprs = [], []

        def walk_list(lst):
            lists.append(lst)
            for s in lst:
                for e in s.exprs():
                    walk_expr(e)
                for b in s.blocks():
                    walk_list(b)

        def walk_expr(e):
            exprs.append(e)
            for a in e.args:
                walk_expr(a)

        for f in self.functions:
            walk_list(f.body)
        return lists, exprs


TOP_PARAMS = "x: f64[n], y: f64, A: f64[n, n], k: i64, b: bool"
HELPER_PARAMS = "x: f64[n], y: f64, k: i64"
ALT = {"f": "0.5", "s": "f32(0.5)", "i": "1", "b": "true", "v": "x", "M": "A"}
RET = {"f": "f64", "v": "f64[n]", "t": "(f64, f64[n])"}


# ----------------------------------------------------------------------------- generator
@dataclass
class Var:
    name: str
    ty: str
    mutable: bool
    index_safe: bool = False      # an i64 known to be in 0..n-1
    from_var_tuple: bool = False


class _Gen:
    def __init__(self, seed: int, avoid: frozenset, features: frozenset, prefix: str):
        self.r = random.Random(seed)
        self.avoid, self.features, self.prefix = avoid, features, prefix
        self.helpers: list[tuple[str, str]] = []     # (name, kind) callable so far
        self.uses_f32 = False
        self.uses_digamma = False

    # -- scope
    def fresh(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def vars(self, ty, mutable=None):
        return [v for v in self.scope if v.ty == ty and (mutable is None or v.mutable == mutable)]

    def chance(self, p):
        return self.r.random() < p

    # -- expressions
    def lit(self):
        return Expr("f", f"{self.r.choice([0.25, 0.5, 0.75, 1.25, 1.5, 2.0, 0.1, 0.3, 1.1])}",
                    alt=None)

    def E(self, ty, fmt, *args):
        return Expr(ty, fmt, args, ALT[ty] if ty != "M" or self.top else None)

    def idx(self, d=1):
        """An i64 expression in 0..n-1."""
        safe = [v for v in self.scope if v.ty == "i" and v.index_safe]
        c = self.r.random()
        unsafe = [v for v in self.scope if v.ty == "i" and v.name.startswith("v")
                  and not v.index_safe]
        if unsafe and c < 0.2:
            return Expr("i", f"{self.r.choice(unsafe).name} % n", alt="0")
        if safe and c < 0.6:
            v = self.r.choice(safe)
            if self.chance(0.25):
                return self.E("i", "({0} + 1) % n", Expr("i", v.name))
            return Expr("i", v.name, alt="0")
        if c < 0.75:
            return Expr("i", self.r.choice(["0", "n - 1", "1"]), alt="0")
        return Expr("i", "min(max({0}, 0), n - 1)", [self.gi(d + 1)], alt="0")

    def gi(self, d=0):
        r = self.r.random()
        if d >= 3 or r < 0.35:
            ints = self.vars("i")
            opts = ["k", "n", str(self.r.randint(0, 3))] + [v.name for v in ints]
            return Expr("i", self.r.choice(opts), alt="1")
        c = self.r.randrange(9)
        if c == 0:
            return self.E("i", "({0} + {1})", self.gi(d + 1), self.gi(d + 1))
        if c == 1:
            return self.E("i", "({0} % 3)", self.gi(d + 1))
        if c == 2:
            return self.E("i", "({0} / 2)", self.gi(d + 1))
        if c == 3:
            return self.E("i", "abs({0} - 2)", self.gi(d + 1))
        if c == 4:
            return self.E("i", self.r.choice(["min({0}, {1})", "max({0}, {1})"]),
                          self.gi(d + 1), self.gi(d + 1))
        if c == 5:
            return self.E("i", "int({0})", self.gf(d + 2))
        if c == 6:
            return self.E("i", "int({0})", self.gb(d + 1))
        if c == 7:
            return self.E("i", "({0} * 2 - {1} ** 2)", self.gi(d + 1), self.gi(d + 1))
        if self.top and self.chance(0.5):
            return self.E("i", self.r.choice(["rows({0})", "cols({0})"]), self.gM(d + 2))
        return self.E("i", "len({0})", self.gv(d + 2))

    def gb(self, d=0):
        r = self.r.random()
        if d >= 3 or r < 0.2:
            opts = (["b"] if self.top else []) + [v.name for v in self.vars("b")]
            if not opts or self.chance(0.2):
                opts = ["true", "false"]
            return Expr("b", self.r.choice(opts), alt="true")
        c = self.r.randrange(6)
        if c <= 1:
            return self.E("b", f"({{0}} {self.r.choice(['<', '<=', '>', '>='])} {{1}})",
                          self.gf(d + 1), self.gf(d + 1))
        if c == 2:
            return self.E("b", f"({{0}} {self.r.choice(['<', '==', '!=', '>='])} {{1}})",
                          self.gi(d + 1), self.gi(d + 1))
        if c == 3:
            return self.E("b", "(not {0})", self.gb(d + 1))
        if c == 4:
            return self.E("b", f"({{0}} {self.r.choice(['and', 'or'])} {{1}})",
                          self.gb(d + 1), self.gb(d + 1))
        return self.E("b", "({0} == {1})", self.gb(d + 1), self.gb(d + 1))

    def fleaf(self):
        c = self.r.random()
        fs = self.vars("f")
        if c < 0.3 and fs:
            return Expr("f", self.r.choice(fs).name, alt="0.5")
        if c < 0.45:
            return self.lit()
        if c < 0.6:
            return Expr("f", "y", alt="0.5")
        if c < 0.85:
            arrs = ["x"] + [v.name for v in self.vars("v")]
            return self.E("f", f"{self.r.choice(arrs)}[{{0}}]", self.idx())
        if c < 0.92 and self.top:
            arrs = ["A"] + [v.name for v in self.vars("M")]
            return self.E("f", f"{self.r.choice(arrs)}[{{0}}, {{1}}]", self.idx(), self.idx())
        return self.E("f", "float({0})", self.gi(2))

    SMOOTH1 = ["sin({0})", "cos({0})", "tanh({0})", "atan({0})", "sigmoid({0})", "erf({0})",
               "exp(tanh({0}))", "expm1(tanh({0}))", "sinh(tanh({0}))", "cosh(tanh({0}))",
               "log(1.5 + {0} * {0})", "log1p({0} * {0})", "sqrt(1.0 + {0} * {0})",
               "lgamma(1.5 + {0} * {0})", "digamma(1.5 + {0} * {0})",
               "asin(0.9 * tanh({0}))", "acos(0.9 * tanh({0}))", "tan(0.7 * tanh({0}))",
               "(1.5 + {0} * {0}) ** 0.7", "{0} ** 2", "{0} ** 3", "{0} ** 4", "{0} ** 1",
               "(-{0})", "(0.5 * {0})"]
    SMOOTH2 = ["({0} + {1})", "({0} - {1})", "({0} * {1})", "({0} / (1.5 + {1} * {1}))",
               "atan2({0}, 1.5 + {1} * {1})", "pow(1.5 + {0} * {0}, tanh({1}))"]
    KINKY1 = ["abs({0})", "floor({0})", "ceil({0})", "sign({0})", "({0} % 1.5)"]
    KINKY2 = ["max({0}, {1})", "min({0}, {1})"]

    def gf(self, d=0):
        if d >= 3 or self.chance(0.25):
            return self.fleaf()
        c = self.r.random()
        if c < 0.35:
            fmt = self.r.choice(self.SMOOTH1)
            if "digamma" in fmt:
                self.uses_digamma = True
            return self.E("f", fmt, self.gf(d + 1))
        if c < 0.55:
            return self.E("f", self.r.choice(self.SMOOTH2), self.gf(d + 1), self.gf(d + 1))
        if c < 0.6:
            if "pow0" not in self.avoid and self.chance(0.5):
                return self.E("f", "({0} ** 0 + {0})", self.gf(d + 1))
            return self.E("f", self.r.choice(self.KINKY1), self.gf(d + 1))
        if c < 0.65:
            a, bb = self.gf(d + 1), self.gf(d + 1)
            if "minmax_tie" not in self.avoid and self.chance(0.3):
                bb = a
            elif a.text() == bb.text():
                bb = self.E("f", "({0} + 0.25)", bb)
            return self.E("f", self.r.choice(self.KINKY2), a, bb)
        if c < 0.7:
            return self.E("f", "select({0}, {1}, {2})", self.gb(d + 1), self.gf(d + 1),
                          self.gf(d + 1))
        if c < 0.82:
            return self.reduction(d)
        if c < 0.87:
            self.uses_f32 = True
            return self.E("f", "f64({0})", self.gs(d + 1))
        if c < 0.97 and self.helpers:
            return self.call("f", d)
        return self.E("f", "float({0})", self.gi(d + 1))

    def gs(self, d):
        svars = self.vars("s")
        if svars and self.chance(0.3):
            return Expr("s", self.r.choice(svars).name, alt="f32(0.5)")
        if d >= 3 or self.chance(0.3):
            return self.E("s", "f32({0})", self.gf(d + 1))
        fmt = self.r.choice(["({0} * {1})", "({0} + {1})", "sin({0})", "tanh({0})",
                             "({0} * 2.0 - 0.5)", "exp(tanh({0}))"])
        n = 2 if "{1}" in fmt else 1
        return self.E("s", fmt, *[self.gs(d + 1) for _ in range(n)])

    def reduction(self, d):
        c = self.r.randrange(10)
        if c == 0:
            return self.E("f", "sum({0})", self.gv(d + 1))
        if c == 1:
            return self.E("f", "prod(0.9 + 0.2 * tanh({0}))", self.gv(d + 1))
        if c == 2:
            return self.E("f", "dot({0}, {1})", self.gv(d + 1), self.gv(d + 1))
        if c == 3:
            fn = self.r.choice(["max", "min"])
            if "minmax_tie" in self.avoid:   # distinct elements: no ties
                return self.E("f", fn + "(x * 1.5 + {0})", self.gf(d + 1))
            return self.E("f", fn + "({0})", self.gv(d + 1))
        if c == 4:
            return self.E("f", "logsumexp({0})", self.gv(d + 1))
        if c == 5:
            return self.E("f", "norm({0})", self.gv(d + 1))
        if c == 6 and self.top:
            return self.E("f", self.r.choice(["sum({0})", "norm({0})", "dot({0}, {0})"]),
                          self.gM(d + 1))
        if c == 7:  # a slice read
            lo = self.idx(d + 1)
            if self.top and self.chance(0.5):
                forms = ["sum(A[{0}][{1}..n])", "sum(A[{1}..n])"]
                if "mixed_slices" in self.features:
                    forms += ["sum(A[{0}, {1}..n])", "norm(A[{1}..n, {0}])"]
                return self.E("f", self.r.choice(forms), self.idx(d + 1), lo)
            return self.E("f", "sum(x[{0}..n])", lo)
        if c == 8:
            lo = self.idx(d + 1)
            arr = self.r.choice(["x"] + [v.name for v in self.vars("v")])
            return self.E("f", "dot(x[{0}..n], " + arr + "[{0}..n])", lo)
        return self.E("f", "sum({0})", self.gv(d + 1))

    def gv(self, d=0):
        if d >= 3 or self.chance(0.3):
            opts = ["x"] + [v.name for v in self.vars("v")]
            return Expr("v", self.r.choice(opts), alt="x")
        c = self.r.randrange(12)
        if c == 0:
            return self.E("v", self.r.choice(["({0} + {1})", "({0} - {1})", "({0} * {1})"]),
                          self.gv(d + 1), self.gv(d + 1))
        if c == 1:
            return self.E("v", self.r.choice(["({0} * {1})", "({1} + {0})", "({0} - {1})"]),
                          self.gv(d + 1), self.gf(d + 1))
        if c == 2:
            fmt = self.r.choice(["sin({0})", "cos({0})", "tanh({0})", "exp(tanh({0}))",
                                 "log(1.5 + {0} * {0})", "sqrt(1.0 + {0} * {0})", "atan({0})",
                                 "sigmoid({0})", "erf({0})", "abs({0})",
                                 "lgamma(1.5 + {0} * {0})"])
            return self.E("v", fmt, self.gv(d + 1))
        if c == 3:
            return self.E("v", self.r.choice(["max({0}, {1})", "min({1}, {0})"]),
                          self.gv(d + 1), self.gf(d + 1))
        if c == 4 and self.top:
            return self.E("v", "matvec({0}, {1})", self.gM(d + 1), self.gv(d + 1))
        if c == 5 and self.top:
            return self.E("v", "A[{0}]", self.idx(d + 1))
        if c == 6:
            return self.E("v", "full(n, {0})", self.gf(d + 1))
        if c == 7:
            return self.E("v", self.r.choice(["copy({0})", "({0} * ones(n))"]), self.gv(d + 1))
        if c == 8 and self.helpers:
            return self.call("v", d)
        if c == 9:
            return self.E("v", "pow(1.5 + {0} * {0}, {1})", self.gv(d + 1), self.gv(d + 1))
        if c == 10:
            return self.E("v", "atan2({0}, 1.5 + {1} * {1})", self.gv(d + 1), self.gv(d + 1))
        return self.E("v", "({0} / (1.5 + {1} * {1}))", self.gv(d + 1), self.gv(d + 1))

    def gM(self, d=0):
        if d >= 3 or self.chance(0.4):
            return Expr("M", self.r.choice(["A"] + [v.name for v in self.vars("M")]), alt="A")
        c = self.r.randrange(6)
        if c == 0:
            return self.E("M", "outer({0}, {1})", self.gv(d + 1), self.gv(d + 1))
        if c == 1:
            return self.E("M", "matmul({0}, {1})", self.gM(d + 1), self.gM(d + 1))
        if c == 2:
            return self.E("M", "transpose({0})", self.gM(d + 1))
        if c == 3:
            return self.E("M", "({0} * {1})", self.gM(d + 1), self.gf(d + 1))
        if c == 4:
            return self.E("M", "sin({0})", self.gM(d + 1))
        return self.E("M", "({0} + {1})", self.gM(d + 1), self.gM(d + 1))

    def call(self, ty, d):
        cands = [(n, k) for n, k in self.helpers if k == ty or (ty == "f" and k == "r")]
        if not cands:
            return self.fleaf() if ty == "f" else Expr("v", "x", alt="x")
        name, kind = self.r.choice(cands)
        if kind == "r":
            return self.E("f", f"{name}({{0}}, {{1}}, {{2}}, min(max({{3}}, 0), 3))",
                          self.gv(d + 2), self.gf(d + 1), self.gi(d + 2), self.gi(d + 2))
        if self.chance(0.3):  # keyword arguments
            return self.E(ty, f"{name}(k={{2}}, x={{0}}, y={{1}})", self.gv(d + 2),
                          self.gf(d + 2), self.gi(d + 2))
        return self.E(ty, f"{name}({{0}}, {{1}}, {{2}})", self.gv(d + 2), self.gf(d + 2),
                      self.gi(d + 2))

    # -- statements
    def block(self, n_stmts, depth, loop=None):
        """loop: None outside loops, else the innermost entry of `self.loops`: a dict with
        'base' (scope length at entry), 'carries' (may update arrays declared outside it) and
        'exit' (break allowed)."""
        saved = len(self.scope)
        out = []
        for _ in range(n_stmts):
            out += self.stmt(depth, loop)
        del self.scope[saved:]
        return out

    def stmt(self, depth, loop):
        r = self.r.random()
        if depth >= 2:
            r = r * 0.45
        if r < (0.06 if self.loops else 0.15):
            return [self.decl()]
        if r < 0.33:
            s = self.assign(loop)
            return [s] if s else [self.decl()]
        if r < 0.45:
            s = self.array_update(loop)
            return [s] if s else [self.decl()]
        if r < 0.5 and self.tuple_helpers():
            return [self.tdecl()]
        if r < 0.6:
            return [self.if_(depth, loop)]
        if r < 0.75:
            return self.for_(depth)
        if r < 0.82:
            return self.while_(depth)
        if r < 0.9 and loop is not None:
            return [self.exit_(loop)]
        if r < 0.95 and self.may_return():
            return [Stmt("if", e=self.gb(1), body=[Stmt("return", e=self.ret_expr())])]
        return [self.decl()]

    def tuple_helpers(self):
        return [n for n, k in self.helpers if k == "t"]

    def decl(self):
        ty = self.r.choice("fffiibvvMs" if self.top else "fffiibvvs")
        mutable = ty in "vM" or self.chance(0.6)
        if ty == "f":
            e = self.gf(1)
        elif ty == "i":
            e = self.gi(1)
        elif ty == "b":
            e = self.gb(1)
        elif ty == "s":
            self.uses_f32 = True
            e = self.gs(1)
        elif ty == "v":
            e = self.r.choice([lambda: self.gv(1), lambda: Expr("v", "zeros(n)", alt="x"),
                               lambda: Expr("v", "copy(x)", alt="x")])()
        else:
            e = self.r.choice([lambda: self.gM(1), lambda: Expr("M", "zeros(n, n)", alt="A"),
                               lambda: Expr("M", "copy(A)", alt="A")])()
        name = self.fresh()
        self.scope.append(Var(name, ty, mutable))
        return Stmt("decl", kw="var" if mutable else "let", name=name, e=e)

    def tdecl(self):
        name = self.r.choice(self.tuple_helpers())
        mutable = self.chance(0.5)
        call = self.E("v", f"{name}({{0}}, {{1}}, {{2}})", self.gv(2), self.gf(2), self.gi(2))
        call.alt = None
        a, w = self.fresh(), self.fresh()
        self.scope += [Var(a, "f", mutable), Var(w, "v", mutable, from_var_tuple=mutable)]
        return Stmt("tdecl", kw="var" if mutable else "let", name=f"{a}, {w}", e=call)

    def assign(self, loop):
        fs = self.vars("f", True) + self.vars("i", True) + self.vars("s", True)
        if not fs:
            return None
        v = self.r.choice(fs)
        if v.ty == "s":
            return Stmt("assign", name=v.name, op=self.r.choice(["=", "+=", "*="]),
                        e=self.E("s", "(0.5 * {0})", self.gs(2)))
        if v.ty == "i":
            return Stmt("assign", name=v.name, op=self.r.choice(["=", "+="]), e=self.gi(1))
        if "self_assign" not in self.avoid and self.chance(0.05):
            return Stmt("assign", name=v.name, op="=", e=Expr("f", v.name, alt="0.5"))
        op = self.r.choice(["=", "+=", "-=", "*=", "/="])
        e = self.gf(1)
        if loop is not None and "ckpt_step_loop" not in self.avoid and self.helpers \
                and self.chance(0.3):
            op, e = "=", self.call("f", 2)   # s = step(...) inside a loop
            if self.r.random() < 0.5 and e.fmt.startswith(self.prefix):
                e.args[1 if "{1}" in e.fmt else 0] = Expr("f", v.name, alt="0.5")
        elif loop is not None and "ckpt_step_loop" in self.avoid and self._has_call(e):
            e = self.gf(3)
            if self._has_call(e):
                e = self.fleaf()
        if op == "*=":
            e = self.E("f", "(0.5 + 0.5 * sigmoid({0}))", e)
        elif op == "/=":
            e = self.E("f", "(1.5 + {0} * {0})", e)
        elif op == "=" and self.chance(0.5):
            e = self.E("f", "(0.5 * " + v.name + " + {0})", e)
        return Stmt("assign", name=v.name, op=op, e=e)

    @staticmethod
    def _has_call(e):
        return "_g" in e.text() or "_r" in e.text()

    def array_update(self, loop):
        arrs = [v for v in self.scope if v.ty in "vM" and v.mutable]
        if "var_tuple_update" in self.avoid:
            arrs = [v for v in arrs if not v.from_var_tuple]
        for lp in self.loops:
            if not lp["carries"]:
                arrs = [v for v in arrs if self.scope.index(v) >= lp["base"]]
        if not arrs:
            return None
        v = self.r.choice(arrs)
        c = self.r.random()
        if v.ty == "M":
            if "row_slice_update" in self.features and c < 0.15:
                return Stmt("assign", name=v.name + "[{0}]", idx=[self.idx()], op="=",
                            e=self.gv(2))
            return Stmt("assign", name=v.name + "[{0}, {1}]", idx=[self.idx(), self.idx()],
                        op=self.r.choice(["=", "+="]), e=self.gf(1))
        if "row_slice_update" in self.features and c < 0.1:
            return Stmt("assign", name=v.name + "[{0}..n]", idx=[self.idx()], op="=",
                        e=self.E("f", "0.5 * " + v.name + "[{0}..n]", self.idx()))
        if c < 0.6:
            return Stmt("assign", name=v.name + "[{0}]", idx=[self.idx()],
                        op=self.r.choice(["=", "+=", "-=", "*="]), e=self.gf(1))
        if "self_assign" not in self.avoid and self.chance(0.05):
            return Stmt("assign", name=v.name, op="=", e=Expr("v", v.name, alt="x"))
        vhelpers = [n for n, kd in self.helpers if kd == "v"]
        if self.loops and vhelpers and "ckpt_step_loop" not in self.avoid and self.chance(0.3):
            e = self.E("v", f"{self.r.choice(vhelpers)}({v.name}, {{0}}, {{1}})", self.gf(2),
                       self.gi(2))
            return Stmt("assign", name=v.name, op="=", e=e)   # u = step(u, ...)
        op = self.r.choice(["=", "+=", "*="])
        e = self.gv(1) if op != "*=" else self.gf(2)
        if op == "=":
            e = self.E("v", "(0.5 * " + v.name + " + {0})", e)
        if self._has_call(e) and loop is not None and "ckpt_step_loop" in self.avoid:
            e = Expr("v", "x", alt="x") if op != "*=" else self.fleaf()
        return Stmt("assign", name=v.name, op=op, e=e)

    def if_(self, depth, loop):
        c = self.gb(1)
        body = self.block(self.r.randint(1, 3), depth + 1, loop)
        orelse = self.block(self.r.randint(1, 2), depth + 1, loop) if self.chance(0.5) else None
        return Stmt("if", e=c, body=body, orelse=orelse)

    def _loop_ctx(self):
        carries = self.chance(0.6)
        exit_ok = not carries or "carry_early_exit" not in self.avoid
        return {"carries": carries, "exit": exit_ok, "base": len(self.scope)}

    def for_(self, depth):
        name = self.fresh()
        lo, hi, step = self.r.choice([
            ("0", "n", 1), ("1", "n", 1), ("0", "n - 1", 1), ("0", "n", 2),
            ("0", "min(k, n)", 1), ("0", "min(max({0}, 0), n)", 1),
            ("0", "n + k + 6", 1), ("2", "k * 3 + 9", 1), ("0", "12", 3)])
        hi_e = Expr("i", hi, [self.gi(2)] if "{0}" in hi else [], alt="n")
        # loops longer than n (checkpointing splits them in segments) index with `% n`
        self.scope.append(Var(name, "i", False, index_safe=not any(c in hi for c in "6912")))
        ctx = self._loop_ctx()
        body = self.loop_body(depth, ctx)
        self.scope.pop()
        return [Stmt("for", name=name, lo=Expr("i", lo, alt="0"), hi=hi_e, step=step, body=body)]

    def while_(self, depth):
        cname = self.fresh()
        decl = Stmt("decl", kw="var", name=cname, e=Expr("i", "0", alt=None))
        self.scope.append(Var(cname, "i", False))   # not assignable by generated code
        ctx = self._loop_ctx()
        cond = self.gb(1)
        body = self.loop_body(depth, ctx)
        self.scope.pop()
        return [decl, Stmt("while", name=cname, limit=self.r.randint(1, 5), e=cond, body=body)]

    def loop_body(self, depth, ctx):
        self.loops.append(ctx)
        try:
            return self.block(self.r.randint(1, 3), depth + 1, ctx)
        finally:
            self.loops.pop()

    def exit_(self, loop):
        c = self.gb(1)
        if not loop["exit"]:
            return Stmt("if", e=c, body=[Stmt("continue")])
        kinds = ["break", "continue"]
        if self.may_return():
            kinds.append("return")
        kind = self.r.choice(kinds)
        body = [Stmt("return", e=self.ret_expr())] if kind == "return" else [Stmt(kind)]
        return Stmt("if", e=c, body=body)

    def may_return(self):
        """A return here would not take an array out of a loop (a known refusal)."""
        if not self.loops or "carry_early_exit" not in self.avoid:
            return True
        return self.ret == "f" and all(lp["exit"] for lp in self.loops)

    def ret_expr(self):
        if self.ret == "f":
            return self.gf(1)
        if self.ret == "v":
            return self.gv(1)
        e = self.E("v", "({0}, {1})", self.gf(1), self.gv(1))
        e.alt = None
        return e

    # -- functions
    def function(self, name, params, ret, top, n_stmts):
        self.top, self.ret, self.counter = top, ret, 0
        self.scope, self.loops = [], []
        body = []
        # accumulators that loops and branches update and the result reads
        if self.chance(0.8):
            body.append(Stmt("decl", kw="var", name="acc", e=self.gf(2)))
            self.scope.append(Var("acc", "f", True))
        if self.chance(0.6):
            body.append(Stmt("decl", kw="var", name="u", e=Expr("v", "copy(x)", alt="x")))
            self.scope.append(Var("u", "v", True))
        for _ in range(n_stmts):
            body += self.stmt(0, None)
        e = self.ret_expr()
        # the result depends on what the body computed
        live = [v for v in self.scope if v.ty in ("f", "v", "s")]
        pick = [v for v in live if v.name in ("acc", "u")]
        rest = [v for v in live if v not in pick]
        for v in pick + self.r.sample(rest, min(len(rest), 2)):
            if v.ty == "s":
                v = Var(f"f64({v.name})", "f", False)
            if ret == "f":
                e = self.E("f", "({0} + " + (f"sum({v.name})" if v.ty == "v" else v.name) + ")", e)
            elif ret == "v":
                e = self.E("v", "({0} + " + v.name + ")", e)
            else:
                e.args[0 if v.ty == "f" else 1] = self.E(
                    v.ty, "({0} + " + v.name + ")", e.args[0 if v.ty == "f" else 1])
        body.append(Stmt("return", e=e))
        return Function(name, params, RET[ret], body)

    def recursive(self, name):
        self.top, self.ret, self.counter, self.scope, self.loops = False, "f", 0, [], []
        base = self.gf(2)
        inner = f"{name}(x, 0.9 * sin(y), k, d - 1)"
        self.scope = [Var(inner, "f", False)]
        step = self.gf(1)
        if name not in step.text():
            step = self.E("f", "(" + inner + " * {0})", step)
        body = [Stmt("if", e=Expr("b", "d <= 0", alt=None),
                     body=[Stmt("return", e=base, keep=True)], keep=True),
                Stmt("return", e=step)]
        return Function(name, HELPER_PARAMS + ", d: i64", "f64", body)


def generate(seed: int, avoid=frozenset(), features=DEFAULT_FEATURES, prefix=None,
             small: bool = False) -> Program:
    """`small`: fewer helpers and statements and one optional group of derived functions
    instead of two (about half the compile time; for the test suite)."""
    prefix = prefix or f"p{seed}"
    g = _Gen(seed, frozenset(avoid), frozenset(features), prefix)
    fns, derived = [], []
    for j in range(g.r.randint(0, 1 if small else 2)):
        kind = g.r.choice("fvtr")
        name = f"{prefix}_{'r' if kind == 'r' else 'g'}{j}"
        if kind == "r":
            fns.append(g.recursive(name))
        else:
            fns.append(g.function(name, HELPER_PARAMS, kind, False, g.r.randint(1, 2 if small else 3)))
        g.helpers.append((name, kind))
        # a derived function called like any other: differentiated again through f
        if kind == "f" and "gamma" not in "".join(fn.text() for fn in fns) and g.chance(0.5):
            derived.append(f"fn {name}_dy = grad({name}, wrt=y);")
            g.helpers.append((f"{name}_dy", "f"))
    f = g.function(f"{prefix}_f", TOP_PARAMS, "f", True, g.r.randint(2, 3 if small else 5))
    g.top, g.ret, g.scope, g.loops = True, "t", [], []
    tv = g.gv(1)
    t = Function(f"{prefix}_t", TOP_PARAMS, RET["t"],
                 [Stmt("return", e=Expr("v", "(" + f"{prefix}_f(x, y, A, k, b), " + "{0})",
                                        [tv], alt=None))])
    fns += [f, t]
    P = prefix
    # value_and_grad and jvp always (primal, dot test, finite differences); then a random
    # choice of the other groups, to keep each program's compile time small
    decls = derived + [f"fn {P}_vg = value_and_grad({P}_f);", f"fn {P}_jvp = jvp({P}_f);"]
    groups = {
        "vjp": [f"fn {P}_vjp = vjp({P}_f);"],
        "ckpt": [f"fn {P}_vgc = value_and_grad({P}_f, checkpoint=true);"],
        "tuple": [f"fn {P}_tjvp = jvp({P}_t);", f"fn {P}_tvjp = vjp({P}_t);"],
        "nested": [f"fn {P}_hvp = hvp({P}_f, wrt=x);", f"fn {P}_hess = hessian({P}_f, wrt=x);",
                   f"fn {P}_jg = jvp(grad({P}_f, wrt=x), wrt=x);"],
    }
    if "ckpt_step_loop" not in avoid:
        groups["nested_ckpt"] = [f"fn {P}_hvp = hvp({P}_f, wrt=x);",
                                 f"fn {P}_jgc = jvp(grad({P}_f, wrt=x, checkpoint=true), wrt=x);"]
    names = sorted(groups)
    if g.uses_digamma:   # a third derivative of lgamma is refused by design
        names = [n for n in names if not n.startswith("nested")]
    for name in g.r.sample(names, 1 if small else 2):
        decls += [d for d in groups[name] if d not in decls]
    if all("_t" not in d for d in decls):
        fns.remove(t)
    # special points: exact zeros (abs, norm, ** at 0) and ties (max, min); central
    # differences there equal the derivative the reference fixes (half to each on ties)
    modes = ["random"] * 3 + ([] if "minmax_tie" in avoid else ["zeros", "ties"])
    return Program(seed, prefix, fns, decls, uses_f32=g.uses_f32,
                   first_order_only=g.uses_digamma, inputs=g.r.choice(modes))


def oracle_names(program: Program) -> list[str]:
    return [d.split()[1] for d in program.decls]
