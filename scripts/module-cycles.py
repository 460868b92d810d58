#!/usr/bin/env python3
"""Fails when modules of one crate import each other in a circle.

For every crate under crates/ (and benches/), each source file is a module
(`src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` are the root).
An edge M -> N is a `use crate::...` item in M whose path names module N (the
longest module prefix of the path; the root and M's own ancestors do not count, since
a child naming its parent's items is the ordinary shape of a tree). Every strongly
connected component with more than one module is a cycle and is printed; the exit
status is 1 if there is any.

Usage: python3 scripts/module-cycles.py [ROOT]
"""
import os
import re
import sys

USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+crate::(.*?);", re.S | re.M)


def module_of(src, path):
    rel = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return ()
    return tuple(rel)


def expand(tree):
    """Paths of a use tree like `a::{b, c::{d, e}}` as lists of segments."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, t):
        if "{" not in t:
            for part in split_top(t):
                if part:
                    out.append(prefix + part.split(" as ")[0].split("::"))
            return
        for part in split_top(t):
            if "{" in part:
                head, rest = part.split("{", 1)
                head = [h for h in head.split("::") if h]
                walk(prefix + head, rest[:-1])
            elif part:
                out.append(prefix + part.split("::"))

    walk([], tree)
    return out


def split_top(t):
    parts, depth, cur = [], 0, ""
    for ch in t:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return parts


def crate_graph(src):
    files = []
    for d, _, names in os.walk(src):
        files += [os.path.join(d, n) for n in names if n.endswith(".rs")]
    mods = {module_of(src, f): f for f in files}
    graph = {m: set() for m in mods}
    for m, f in mods.items():
        text = open(f, encoding="utf-8").read()
        text = re.sub(r"//[^\n]*", "", text)
        for tree in USE.findall(text):
            for path in expand(tree):
                target = None
                for n in range(len(path), 0, -1):
                    if tuple(path[:n]) in mods:
                        target = tuple(path[:n])
                        break
                if target is None or target == m or m[: len(target)] == target:
                    continue
                graph[m].add(target)
    return graph


def cycles(graph):
    """Tarjan's strongly connected components with more than one node."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    dirs = []
    for base in ("crates", "."):
        b = os.path.join(root, base)
        for name in sorted(os.listdir(b)):
            src = os.path.join(b, name, "src")
            if os.path.isdir(src) and (base == "crates" or name == "benches"):
                dirs.append(src)
    bad = 0
    for src in dirs:
        for comp in cycles(crate_graph(src)):
            bad += 1
            names = ", ".join("::".join(m) or "crate" for m in comp)
            print(f"{os.path.relpath(src, root)}: modules import each other in a circle: {names}")
    print(f"module cycles: {bad} in {len(dirs)} crates")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
