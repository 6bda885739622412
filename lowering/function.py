"""Lowering of one IR function to LLVM: the value map, error exits and structured control flow.

`FunctionLowering.run()` walks the body in order and dispatches each op to its rule in
`lowering.rules.RULES` (keyed by op name); the rules for `scf.*` and `func.*` live here
because they need the block structure. A rule receives the lowering and the op and returns
the LLVM components of the op's results (a list per result).

Errors: `check(ok, site, d0, d1)` branches, when `ok` is false, to the function's one shared
failure block, whose phis pick the site and details of the failing check; it stores them into
the context and goes to the error exit, which returns undef (a caller checks `ctx.status` after
each call). One failure block per function, not one per check, keeps the IR that LLVM
optimises small: a check costs a compare and a branch.
"""
from __future__ import annotations

from llvmlite import ir

from ..lang.ir import Block, Function, Op, Value
from . import abi
from .abi import I32, I64
from ..lang.ops import has_trait, isa, SCF_CONDITION, SCF_YIELD


class LoweringError(Exception):
    pass


class FunctionLowering:
    def __init__(self, mod_lowering, fn: Function, llfn: ir.Function):
        self.m = mod_lowering
        self.fn = fn
        self.llfn = llfn
        self.values: dict[Value, list] = {}
        self.b = ir.IRBuilder(llfn.append_basic_block("entry"))
        self.ctx = llfn.args[0]
        self._error_block: ir.Block | None = None
        self._fail_block: ir.Block | None = None
        self._fail_phis: list = []
        args = list(llfn.args[1:])
        for p in fn.params:
            n = len(abi.components(p.type))
            self.values[p] = args[:n]
            args = args[n:]

    # ----------------------------------------------------------------- values
    def get(self, v: Value) -> list:
        try:
            return self.values[v]
        except KeyError:
            raise LoweringError(f"value {v!r} used before definition in @{self.fn.name}") from None

    def one(self, v: Value):
        return self.get(v)[0]

    def bind(self, values: list[Value], comps: list[list]) -> None:
        for v, c in zip(values, comps):
            self.values[v] = c

    # ----------------------------------------------------------------- errors
    @property
    def error_block(self) -> ir.Block:
        if self._error_block is None:
            blk = self.llfn.append_basic_block("error")
            b = ir.IRBuilder(blk)
            rt = self.llfn.function_type.return_type
            if isinstance(rt, ir.VoidType):
                b.ret_void()
            else:
                b.ret(ir.Constant(rt, ir.Undefined))
            self._error_block = blk
        return self._error_block

    @property
    def fail_block(self) -> ir.Block:
        """The shared failure block: `(site, d0, d1)` arrive through phis, go to the context."""
        if self._fail_block is None:
            blk = self.llfn.append_basic_block("fail")
            b = ir.IRBuilder(blk)
            self._fail_phis = [b.phi(I64, name=n) for n in ("site", "d0", "d1")]
            for k, v in enumerate(self._fail_phis):
                b.store(v, b.gep(self.ctx, [I32(0), I32(k)]))
            b.branch(self.error_block)
            self._fail_block = blk
        return self._fail_block

    def check(self, ok, site: int, d0=None, d1=None) -> None:
        """Continue when `ok` (an i1) holds; otherwise fail at `site` with details d0, d1."""
        fail = self.fail_block
        cont = self.llfn.append_basic_block("ok")
        br = self.b.cbranch(ok, cont, fail)
        br.set_weights([1 << 20, 1])
        here = self.b.block
        for phi, v in zip(self._fail_phis, (I64(site), d0 if d0 is not None else I64(0),
                                            d1 if d1 is not None else I64(0))):
            phi.add_incoming(v, here)
        self.b.position_at_end(cont)

    def check_status(self) -> None:
        status = self.b.load(self.b.gep(self.ctx, [I32(0), I32(0)]))
        cont = self.llfn.append_basic_block("ok")
        self.b.cbranch(self.b.icmp_signed("==", status, I64(0)), cont, self.error_block)
        self.b.position_at_end(cont)

    # ----------------------------------------------------------------- walking
    def run(self) -> None:
        self.lower_block(self.fn.body)

    def lower_block(self, block: Block) -> Op | None:
        """Lower every op of `block` but its terminator, which is returned (unlowered)."""
        from .rules import RULES
        for op in block.ops:
            if isa(op, SCF_YIELD, SCF_CONDITION):
                return op
            rule = RULES.get(op.name) or CONTROL.get(op.name)
            if rule is None:
                raise LoweringError(f"no lowering rule for op '{op.name}'")
            out = rule(self, op)
            if out is not None:
                self.bind(op.results, out)
        return None

    def phis(self, types) -> list[list]:
        return [[self.b.phi(t) for t in abi.components(ty)] for ty in types]


def _incoming(phis, comps, block):
    for ph, cs in zip(phis, comps):
        for p, c in zip(ph, cs):
            p.add_incoming(c, block)


def _for(lw: FunctionLowering, op: Op):
    lb, ub, step, *inits = op.operands
    body = op.regions[0].block
    b = lw.b
    pre = b.block
    header = lw.llfn.append_basic_block("for.header")
    bodyb = lw.llfn.append_basic_block("for.body")
    exit_ = lw.llfn.append_basic_block("for.exit")
    init_comps = [lw.get(v) for v in inits]
    lb_v, ub_v, step_v = lw.one(lb), lw.one(ub), lw.one(step)
    b.branch(header)
    b.position_at_end(header)
    iv = b.phi(I64, name="iv")
    carried = lw.phis([v.type for v in inits])
    iv.add_incoming(lb_v, pre)
    _incoming(carried, init_comps, pre)
    b.cbranch(b.icmp_signed("<", iv, ub_v), bodyb, exit_)
    b.position_at_end(bodyb)
    lw.bind(body.args, [[iv]] + carried)
    term = lw.lower_block(body)
    next_comps = [lw.get(v) for v in term.operands]
    if _has_loop(body):  # an outer loop: one Ctrl-C poll per iteration
        from .interrupt import poll
        poll(lw)
    latch = b.block
    iv.add_incoming(b.add(iv, step_v, flags=["nsw"]), latch)
    _incoming(carried, next_comps, latch)
    b.branch(header)
    b.position_at_end(exit_)
    return carried


def _while(lw: FunctionLowering, op: Op):
    before, after = op.regions[0].block, op.regions[1].block
    b = lw.b
    pre = b.block
    head = lw.llfn.append_basic_block("while.before")
    bodyb = lw.llfn.append_basic_block("while.after")
    exit_ = lw.llfn.append_basic_block("while.exit")
    init_comps = [lw.get(v) for v in op.operands]
    b.branch(head)
    b.position_at_end(head)
    args = lw.phis([v.type for v in op.operands])
    count = b.phi(I64, name="iterations")
    count.add_incoming(I64(0), pre)
    _incoming(args, init_comps, pre)
    lw.bind(before.args, args)
    cond_op = lw.lower_block(before)
    cond, *vals = cond_op.operands
    val_comps = [lw.get(v) for v in vals]
    b.cbranch(lw.one(cond), bodyb, exit_)
    b.position_at_end(bodyb)
    lw.bind(after.args, val_comps)
    term = lw.lower_block(after)
    comps = [lw.get(v) for v in term.operands]
    from .interrupt import poll_every
    more = b.add(count, I64(1))
    poll_every(lw, more)  # Ctrl-C stops a loop that never ends
    _incoming(args, comps, b.block)
    count.add_incoming(more, b.block)
    b.branch(head)
    b.position_at_end(exit_)
    return val_comps


def _has_loop(block: Block) -> bool:
    return any(has_trait(o, "loop") for top in block.ops for o in top.walk())


def _if(lw: FunctionLowering, op: Op):
    then, other = op.regions[0].block, op.regions[1].block
    b = lw.b
    tb = lw.llfn.append_basic_block("if.then")
    eb = lw.llfn.append_basic_block("if.else")
    mb = lw.llfn.append_basic_block("if.end")
    b.cbranch(lw.one(op.operands[0]), tb, eb)
    arms = []
    for blk, region in ((tb, then), (eb, other)):
        b.position_at_end(blk)
        term = lw.lower_block(region)
        arms.append(([lw.get(v) for v in term.operands], b.block))
        b.branch(mb)
    b.position_at_end(mb)
    phis = lw.phis([r.type for r in op.results])
    for comps, blk in arms:
        _incoming(phis, comps, blk)
    return phis


def _call(lw: FunctionLowering, op: Op):
    if op.attrs["callee"] in lw.m.recursive:
        from .stack import check_stack
        check_stack(lw, op)
    callee = lw.m.internal(op.attrs["callee"])
    args = [lw.ctx] + [c for v in op.operands for c in lw.get(v)]
    r = lw.b.call(callee, args)
    lw.check_status()
    return unpack_results(lw.b, r, [v.type for v in op.results])


def unpack_results(b, r, types) -> list[list]:
    flat = abi.flat_types(types)
    if not flat:
        return []
    if len(types) == 1 and len(flat) == 1 and not isinstance(r.type, ir.LiteralStructType):
        return [[r]]
    comps = [b.extract_value(r, k) for k in range(len(flat))]
    out = []
    for t in types:
        n = len(abi.components(t))
        out.append(comps[:n])
        comps = comps[n:]
    return out


def pack_results(b, rt, comps_per_value):
    flat = [c for cs in comps_per_value for c in cs]
    if isinstance(rt, ir.VoidType):
        return None
    if not isinstance(rt, ir.LiteralStructType):
        return flat[0]
    agg = ir.Constant(rt, ir.Undefined)
    for k, c in enumerate(flat):
        agg = b.insert_value(agg, c, k)
    return agg


def _return(lw: FunctionLowering, op: Op):
    rt = lw.llfn.function_type.return_type
    v = pack_results(lw.b, rt, [lw.get(x) for x in op.operands])
    if v is None:
        lw.b.ret_void()
    else:
        lw.b.ret(v)
    return None


CONTROL = {
    "scf.for": _for,
    "scf.while": _while,
    "scf.if": _if,
    "func.call": _call,
    "func.return": _return,
}
