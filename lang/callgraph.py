"""The call graph of an IR module, walked without recursion (a chain of thousands of
functions, each calling the previous, is a valid program).

- `direct_callees(fn)`: the names `fn` calls (`func.call`), in order of first call.
- `reachable(m, name)`: `name` and every function of `m` it calls, directly or not.
- `postorder(m, roots)`: the functions reachable from `roots`, callees before callers (a
  cycle is entered once: its back edges are ignored).
- `recursive(m)`: the names of the functions on a cycle (calling themselves, directly or
  through others): Tarjan's strongly connected components with an explicit stack.
"""
from __future__ import annotations

from .ir import Function, Module
from .ops import isa, FUNC_CALL


def direct_callees(fn: Function) -> list[str]:
    seen: dict[str, None] = {}
    for op in fn.walk():
        if isa(op, FUNC_CALL):
            seen.setdefault(op.attrs["callee"], None)
    return list(seen)


def _graph(m: Module) -> dict[str, list[str]]:
    return {fn.name: [c for c in direct_callees(fn) if c in m.functions] for fn in m}


def reachable(m: Module, name: str) -> set[str]:
    if name not in m.functions:
        return set()
    seen, todo = {name}, [name]
    while todo:
        for c in direct_callees(m[todo.pop()]):
            if c in m.functions and c not in seen:
                seen.add(c)
                todo.append(c)
    return seen


def postorder(m: Module, roots, graph: dict[str, list[str]] | None = None) -> list[str]:
    graph = graph if graph is not None else _graph(m)
    out: list[str] = []
    state: dict[str, int] = {}  # 1: entered, 2: done
    for root in roots:
        if root not in graph or root in state:
            continue
        state[root] = 1
        stack = [(root, iter(graph[root]))]
        while stack:
            name, it = stack[-1]
            nxt = next((c for c in it if c not in state), None)
            if nxt is None:
                stack.pop()
                state[name] = 2
                out.append(name)
            else:
                state[nxt] = 1
                stack.append((nxt, iter(graph[nxt])))
    return out


def recursive(m: Module, graph: dict[str, list[str]] | None = None) -> set[str]:
    graph = graph if graph is not None else _graph(m)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    comp_stack: list[str] = []
    out: set[str] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        comp_stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    comp_stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph[w])))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = comp_stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in graph[v]:
                    out.update(comp)
    return out


__all__ = ["direct_callees", "reachable", "postorder", "recursive"]
