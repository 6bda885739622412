"""Reverse mode on Hypothesis-generated `.dad` programs: the dot-product test between modes,
`<jvp(f)(x; v), w> == <v, vjp(f)(x; w)>`, and `grad` / `value_and_grad` against `vjp`.

The programs have `for` loops carrying scalars (nested up to three deep), `while` loops
whose trip count depends on the data, `if`/`else` (also inside loops), a local array updated
in place (`a[i] = ...`, `a[i] += ...`, `a[i] *= ...`, reading earlier elements), calls of
scalar and array helpers, `break`, and early `return`s; the result is a scalar or a tuple
`(scalar, array)`. Values stay bounded (updates go through tanh/sin, products by factors
below 1), so no overflow or NaN hides a wrong adjoint.

The dot-product test needs no finite differences: both sides are the derivative of the
executed program (the same branches and trip counts), so kinks do not matter. Tolerance
`1e-10 * (sum |jvp_i w_i| + sum |v_j vjp_j|)`: both sides compute the same bilinear form in
different orders (~1e5 ulp of headroom for loops of a few hundred operations); a dropped or
misplaced adjoint is off by O(1) relative. `grad` and `value_and_grad` must agree with `vjp`
seeded with 1 exactly (they call the same adjoint).
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dad

N = 5  # length of the array parameter

HELPERS = r"""
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


class _Gen:
    """Draws a program; `names` are the scalar variables in scope, `idx` the loop indices."""

    def __init__(self, draw):
        self.draw = draw
        self.fresh = 0
        self.budget = 9  # statements, to keep programs (and their compile time) small

    def name(self, base):
        self.fresh += 1
        return f"{base}{self.fresh}"

    def index(self, idx):
        d = self.draw
        if idx and d(st.booleans()):
            i = d(st.sampled_from(idx))
            return d(st.sampled_from([i, f"({i} + 1) % n", f"max({i} - 1, 0)", f"(n - 1 - {i})"]))
        return str(d(st.integers(0, N - 1)))

    def expr(self, names, idx, depth=0):
        d = self.draw
        if depth >= 2 or d(st.integers(0, 2)) == 0:
            kind = d(st.sampled_from(["var", "var", "x", "a", "const", "c"]))
            if kind == "var":
                return d(st.sampled_from(names))
            if kind == "x":
                return f"x[{self.index(idx)}]"
            if kind == "a":
                return f"a[{self.index(idx)}]"
            if kind == "c":
                return "c"
            return repr(d(st.sampled_from([0.5, 1.5, -0.7, 2.0])))
        op = d(st.sampled_from(["+", "-", "*", "sin", "cos", "tanh", "expt", "sqrt1", "hs",
                                "ha", "float", "sel"]))
        a = self.expr(names, idx, depth + 1)
        if op in "+-*":
            return f"({a} {op} {self.expr(names, idx, depth + 1)})"
        if op == "expt":
            return f"exp(tanh({a}))"
        if op == "sqrt1":
            return f"sqrt(1.0 + {a} * {a})"
        if op == "hs":
            return f"hs({a}, {self.expr(names, idx, depth + 1)})"
        if op == "ha":
            return f"ha(x, {a})"
        if op == "float":
            return f"({a} * float({d(st.sampled_from(idx)) if idx else 'n'} + 1))"
        if op == "sel":
            return f"select({a} > 0.0, {a}, 0.5 * {self.expr(names, idx, depth + 1)})"
        return f"{op}({a})"

    def block(self, names, idx, depth, in_loop, ret):
        d = self.draw
        out = []
        for _ in range(d(st.integers(1, 3))):
            if self.budget <= 0:
                break
            self.budget -= 1
            out += self.stmt(names, idx, depth, in_loop, ret)
        return out

    def stmt(self, names, idx, depth, in_loop, ret):
        d = self.draw
        kinds = ["assign", "assign", "store", "store", "if"]
        if depth < 3:
            kinds += ["for", "for", "while"]
        if in_loop:
            kinds += ["break"]
        kinds += ["return"]
        k = d(st.sampled_from(kinds))
        mutable = [v for v in names if v in ("s", "t")] or ["s"]
        if k == "assign":
            v = d(st.sampled_from(mutable))
            e = self.expr(names, idx)
            form = d(st.sampled_from(["{v} = 0.9 * {v} + 0.3 * sin({e});",
                                      "{v} = {v} * tanh({e}) + 0.1 * {e};",
                                      "{v} += 0.2 * tanh({e});",
                                      "{v} *= 0.5 + 0.4 * sin({e});"]))
            return [form.format(v=v, e=e)]
        if k == "store":
            i = self.index(idx)
            e = self.expr(names, idx)
            form = d(st.sampled_from(["a[{i}] = 0.5 * a[{j}] + 0.3 * tanh({e});",
                                      "a[{i}] += 0.2 * sin({e});",
                                      "a[{i}] *= 0.5 + 0.4 * tanh({e});",
                                      "a[{i}] = a[{i}] * a[{j}] * 0.5 + sin(a[{i}]);"]))
            return [form.format(i=i, j=self.index(idx), e=e)]
        if k == "if":
            c = self.expr(names, idx)
            then = self.block(names, idx, depth, in_loop, ret)
            other = self.block(names, idx, depth, in_loop, ret) if d(st.booleans()) else []
            out = [f"if {c} > {d(st.sampled_from([0.0, 0.3, -0.2]))} {{", *then, "}"]
            if other:
                out[-1] = "} else {"
                out += [*other, "}"]
            return out
        if k == "for":
            i = self.name("i")
            lo, hi = d(st.sampled_from([("0", "n"), ("1", "n"), ("0", "3"), ("2", "n - 1")]))
            step = d(st.sampled_from(["", "", " step 2"]))
            body = self.block(names, idx + [i], depth + 1, True, ret)
            return [f"for {i} in {lo}..{hi}{step} {{", *body, "}"]
        if k == "while":
            w, cnt = self.name("w"), self.name("k")
            e = self.expr(names, idx)
            inner = self.expr(names + [w], idx)
            body = self.block(names + [w], idx, depth + 1, True, ret)
            return [f"var {w} = 1.0 + 0.5 * tanh({e});", f"var {cnt} = 0;",
                    f"while abs({w}) > 0.05 and {cnt} < 40 {{",
                    f"{w} = 0.7 * {w} + 0.01 * sin({inner});", f"{cnt} += 1;", *body, "}",
                    f"s += 0.1 * {w};"]
        if k == "break":
            return [f"if {self.expr(names, idx)} > 0.4 {{ break; }}"]
        # early return
        e = self.expr(names, idx)
        return [f"if {e} > {d(st.sampled_from([0.8, 1.2]))} {{", f"return {ret('s * 0.5 + ' + e)};",
                "}"]


@st.composite
def program(draw):
    g = _Gen(draw)
    tuple_out = g.tuple_out = draw(st.booleans())

    def ret(e):
        return f"({e}, a * {e})" if tuple_out else e

    body = g.block(["s", "t", "c"], [], 0, False, ret)
    final = ret("s + t * 0.5 + 0.1 * sum(a)")
    result = "(f64, f64[n])" if tuple_out else "f64"
    src = "\n".join([
        HELPERS,
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
    if not tuple_out:
        src += "\nfn f_grad = grad(f);\nfn f_vg = value_and_grad(f);\n"
    return src


def _tuple(r):
    return r if isinstance(r, tuple) else (r,)


def _pair(a, b):
    p = np.asarray(a, dtype=float) * np.asarray(b, dtype=float)
    return float(np.sum(p)), float(np.sum(np.abs(p)))


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(program(), st.integers(0, 2**31 - 1))
def test_random_programs_dot_product_between_modes(src, seed):
    m = dad.compile(src, filename="random.dad")
    rng = np.random.default_rng(seed)
    x, c = rng.uniform(-1.5, 1.5, N), float(rng.uniform(-1.5, 1.5))
    outs = _tuple(m.f(x, c))
    for o in outs:
        assert np.all(np.isfinite(o)), src
    for _ in range(2):
        v = [rng.normal(size=N), float(rng.normal())]
        w = [float(rng.normal()) if np.ndim(o) == 0 else rng.normal(size=np.shape(o)) for o in outs]
        jv = _tuple(m.f_jvp(x, c, *v))
        vj = _tuple(m.f_vjp(x, c, *w))
        k = len(outs)
        for p, q in zip(vj[:k], outs):
            np.testing.assert_array_equal(p, q)
        lhs = [_pair(t, ww) for t, ww in zip(jv[k:], w)]
        rhs = [_pair(vv, b) for vv, b in zip(v, vj[k:])]
        L, R = sum(a for a, _ in lhs), sum(a for a, _ in rhs)
        scale = sum(s for _, s in lhs) + sum(s for _, s in rhs)
        assert abs(L - R) <= 1e-10 * scale + 1e-300, \
            f"<jvp v, w> = {L!r}, <v, vjp w> = {R!r}\n{src}"
    if len(outs) == 1:
        gx, gc = m.f_grad(x, c)
        _, bx, bc = m.f_vjp(x, c, 1.0)
        np.testing.assert_array_equal(gx, bx)
        assert gc == bc
        val, gx2, gc2 = m.f_vg(x, c)
        assert val == outs[0] and gc2 == gc
        np.testing.assert_array_equal(gx2, gx)
