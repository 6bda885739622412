"""Reverse mode on Hypothesis-generated `.dad` programs: the dot-product test between modes,
`<jvp(f)(x; v), w> == <v, vjp(f)(x; w)>`, and `grad` / `value_and_grad` against `vjp`.

The programs (`generators.first_order_programs`) have `for` loops carrying scalars (nested
up to three deep), `while` loops whose trip count depends on the data, `if`/`else` (also
inside loops), a local array updated in place (`a[i] = ...`, `a[i] += ...`, `a[i] *= ...`,
reading earlier elements), calls of scalar and array helpers, `break`, and early `return`s;
the result is a scalar or a tuple `(scalar, array)`. Values stay bounded (updates go through
tanh/sin, products by factors below 1), so no overflow or NaN hides a wrong adjoint.

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
from generators import as_tuple, first_order_programs, pairing

N = 5  # length of the array parameter


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(first_order_programs(N), st.integers(0, 2**31 - 1))
def test_random_programs_dot_product_between_modes(src, seed):
    m = dad.compile(src, filename="random.dad")
    rng = np.random.default_rng(seed)
    x, c = rng.uniform(-1.5, 1.5, N), float(rng.uniform(-1.5, 1.5))
    outs = as_tuple(m.f(x, c))
    for o in outs:
        assert np.all(np.isfinite(o)), src
    for _ in range(2):
        v = [rng.normal(size=N), float(rng.normal())]
        w = [float(rng.normal()) if np.ndim(o) == 0 else rng.normal(size=np.shape(o)) for o in outs]
        jv = as_tuple(m.f_jvp(x, c, *v))
        vj = as_tuple(m.f_vjp(x, c, *w))
        k = len(outs)
        for p, q in zip(vj[:k], outs):
            np.testing.assert_array_equal(p, q)
        lhs = [pairing(t, ww) for t, ww in zip(jv[k:], w)]
        rhs = [pairing(vv, b) for vv, b in zip(v, vj[k:])]
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
