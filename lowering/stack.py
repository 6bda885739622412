"""Stack exhaustion: a call of a recursive function checks the stack pointer first.

A recursion too deep for the thread's stack raises `RecursionError` naming the call's
source line, through the ordinary error exit (`FunctionLowering.check`), instead of
overflowing the stack. Contract:
- `init_stack_limit(b, ctx)`: an entry of a module with recursive functions stores
  `sp - FIRST_BUDGET` as the call's stack limit (a field of `ctx`).
- `check_stack(lw, op)`: before a `func.call` of a function on a call-graph cycle
  (`lang.callgraph.recursive`): if the stack pointer is below the limit, the helper
  `dad_rt_stack_limit(ctx, sp)` replaces the limit with the real one, `MARGIN` bytes above
  the low end of the thread's stack (`_linux_stack`, or `pthread_get_stackaddr_np` on
  Darwin), and says whether `sp` is still above it; if not, the call fails with a
  RecursionError. The helper runs at most twice per entry call (first crossing, then the
  error), so a recursion costs a stack-pointer read, a load and a compare per call.
"""
from __future__ import annotations

from llvmlite import ir

from .abi import CTX_PTR, CTX_STACK_LIMIT, I1, I32, I64, I8, PTR

FIRST_BUDGET = 32 << 10  # recursions within this much stack never call the helper
MARGIN = 256 << 10         # left free below the deepest recursive call (callees, libc);
                           # a quarter of a stack smaller than 4 * MARGIN
LIMIT_FIELD = CTX_STACK_LIMIT
HELPER = "dad_rt_stack_limit"


def _stack_pointer(b: ir.IRBuilder):
    module = b.module
    fn = module.globals.get("llvm.stacksave.p0")
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(PTR, []), "llvm.stacksave.p0")
    return b.ptrtoint(b.call(fn, []), I64)


def _limit_ptr(b: ir.IRBuilder, ctx):
    return b.gep(ctx, [I32(0), I32(LIMIT_FIELD)])


def init_stack_limit(b: ir.IRBuilder, ctx) -> None:
    sp = _stack_pointer(b)
    b.store(b.sub(sp, I64(FIRST_BUDGET)), _limit_ptr(b, ctx))


def check_stack(lw, op) -> None:
    b = lw.b
    sp = _stack_pointer(b)
    ok = b.icmp_unsigned(">=", sp, b.load(_limit_ptr(b, lw.ctx)))
    pre = b.block
    slow = lw.llfn.append_basic_block("stack.slow")
    cont = lw.llfn.append_basic_block("stack.ok")
    br = b.cbranch(ok, cont, slow)
    br.set_weights([1 << 20, 1])
    b.position_at_end(slow)
    again = b.call(_helper(lw.m.module, lw.m.target), [lw.ctx, sp])
    b.branch(cont)
    b.position_at_end(cont)
    phi = b.phi(I1)
    phi.add_incoming(ir.Constant(I1, 1), pre)
    phi.add_incoming(again, slow)
    site = lw.m.site("RecursionError", op.attrs.get("loc", ""),
                     f"maximum recursion depth exceeded: the stack is exhausted in the call "
                     f"to {_source_name(op.attrs['callee'])}")
    lw.check(phi, site)


def _source_name(callee: str) -> str:
    """The function as the user wrote it: a function AD made (`f.vjp.x.aug`: names of
    derived functions extend the source function's with `.`) is named by its source."""
    base, _, derived = callee.partition(".")
    return f"'{base}'" + (" (computing a derivative of it)" if derived else "")


def _helper(module: ir.Module, target) -> ir.Function:
    if HELPER in module.globals:
        return module.globals[HELPER]
    fn = ir.Function(module, ir.FunctionType(I1, [CTX_PTR, I64]), HELPER)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    fn.attributes.add("cold")
    ctx, sp = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    if target.stack_bounds == "darwin":
        self_ = b.call(_declare(module, "pthread_self", PTR, []), [])
        top = b.ptrtoint(b.call(_declare(module, "pthread_get_stackaddr_np", PTR, [PTR]), [self_]), I64)
        size = b.call(_declare(module, "pthread_get_stacksize_np", I64, [PTR]), [self_])
        low = b.sub(top, size)
        found = ir.Constant(I1, 1)
    else:
        low, size, found = _linux_stack(b, module, sp)
    # leave MARGIN bytes, or a quarter of a small stack
    margin = b.select(b.icmp_unsigned("<", size, I64(4 * MARGIN)), b.lshr(size, I64(2)), I64(MARGIN))
    limit_p = _limit_ptr(b, ctx)
    # without the thread's bounds, the first budget stays the limit
    limit = b.select(found, b.add(low, margin), b.load(limit_p))
    b.store(limit, limit_p)
    b.ret(b.icmp_unsigned(">=", sp, limit))
    return fn


def _linux_stack(b: ir.IRBuilder, module: ir.Module, sp):
    """(low end, size, found) of the calling thread's stack. The main thread's is
    `[__libc_stack_end - RLIMIT_STACK, __libc_stack_end]` (pthread_getattr_np would read
    /proc/self/maps, a millisecond); other threads' come from pthread_getattr_np."""
    fn = b.function
    main_b = fn.append_basic_block("main")
    other_b = fn.append_basic_block("other")
    done_b = fn.append_basic_block("done")
    end_g = module.globals.get("__libc_stack_end")
    if end_g is None:
        end_g = ir.GlobalVariable(module, PTR, "__libc_stack_end")
        end_g.linkage = "external"
    top = b.ptrtoint(b.load(end_g), I64)
    rl = b.alloca(ir.ArrayType(I64, 2))
    rl_p = b.bitcast(rl, PTR)
    rc = b.call(_declare(module, "getrlimit", I32, [I32, PTR]), [I32(3), rl_p])  # RLIMIT_STACK
    cur = b.load(b.gep(rl, [I32(0), I32(0)]))
    # an unlimited (or unknown) limit: assume 8 MB, the usual default
    cur = b.select(b.or_(b.icmp_signed("!=", rc, I32(0)), b.icmp_unsigned(">", cur, I64(1 << 40))),
                   I64(8 << 20), cur)
    on_main = b.and_(b.icmp_unsigned("<=", sp, top), b.icmp_unsigned(">", sp, b.sub(top, cur)))
    b.cbranch(on_main, main_b, other_b)

    b.position_at_end(main_b)
    main_low = b.sub(top, cur)
    b.branch(done_b)

    b.position_at_end(other_b)
    attr = b.alloca(ir.ArrayType(I8, 256))
    attr.align = 16
    attr_p = b.bitcast(attr, PTR)
    addr = b.alloca(PTR)
    size_p = b.alloca(I64)
    b.store(ir.Constant(PTR, None), addr)
    b.store(I64(0), size_p)
    self_ = b.call(_declare(module, "pthread_self", I64, []), [])
    got = b.icmp_signed("==", b.call(_declare(module, "pthread_getattr_np", I32, [I64, PTR]),
                                     [self_, attr_p]), I32(0))
    with b.if_then(got):
        b.call(_declare(module, "pthread_attr_getstack", I32, [PTR, PTR.as_pointer(), I64.as_pointer()]),
               [attr_p, addr, size_p])
        b.call(_declare(module, "pthread_attr_destroy", I32, [PTR]), [attr_p])
    other_low = b.ptrtoint(b.load(addr), I64)
    other_size = b.load(size_p)
    other_found = b.and_(got, b.icmp_unsigned("!=", other_low, I64(0)))
    other_end = b.block
    b.branch(done_b)

    b.position_at_end(done_b)
    low = b.phi(I64)
    low.add_incoming(main_low, main_b)
    low.add_incoming(other_low, other_end)
    size = b.phi(I64)
    size.add_incoming(cur, main_b)
    size.add_incoming(other_size, other_end)
    found = b.phi(I1)
    found.add_incoming(ir.Constant(I1, 1), main_b)
    found.add_incoming(other_found, other_end)
    return low, size, found


def _declare(module: ir.Module, name: str, ret, args) -> ir.Function:
    if name in module.globals:
        return module.globals[name]
    return ir.Function(module, ir.FunctionType(ret, args), name)
