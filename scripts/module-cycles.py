#!/usr/bin/env python3
"""Fails when a crate's modules import each other in a circle.

A module is a source file under `crates/*/src` (`a/mod.rs` is `a`, `a/b.rs` is `a::b`). An
edge runs from a module to each module a `crate::`, `super::` or `self::` path in its code
names (through `use`, grouped `use`, or a path written inline), resolved to the longest prefix
that is a module. Test code is left out: each file is read up to its first `#[cfg(test)]`.
Usage: scripts/module-cycles.py [ROOT]; prints every circle with its edges, and exits 1 when
there is one.
"""

import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
ROOT_SEGMENTS = ("crate", "super", "self")


def module_of(src: Path, file: Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return tuple(parts)


def code_of(text: str) -> str:
    text = text.split("#[cfg(test)]", 1)[0]
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    lines = [line.split("//", 1)[0] for line in text.splitlines()]
    # String literals can hold `crate::` in messages; they name nothing.
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', "\n".join(lines))


def expand_use_tree(prefix: list, tree: str, out: list) -> None:
    """Expands `a::{b, c::{d, e}}` (whitespace removed) into full paths."""
    depth, start, items = 0, 0, []
    for i, ch in enumerate(tree):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(tree[start:i])
            start = i + 1
    items.append(tree[start:])
    for item in filter(None, items):
        head, brace, rest = item.partition("{")
        segments = [s for s in head.split("::") if s]
        if brace:
            expand_use_tree(prefix + segments, rest[: rest.rfind("}")], out)
        else:
            path = prefix + segments
            if path and path[-1].startswith("self"):
                path = path[:-1]
            out.append([p.split(" as ")[0] for p in path])


def paths_in(code: str) -> list:
    paths = []
    for use in re.finditer(r"\buse\s+((?:crate|super|self)\s*::[^;]*);", code):
        expand_use_tree([], re.sub(r"\s+", "", use.group(1).replace(" as ", "@")), paths)
    paths = [[s.split("@")[0] for s in p] for p in paths]
    code = re.sub(r"\buse\s+[^;]*;", "", code)
    inline = rf"\b(?:crate|super|self)(?:\s*::\s*{IDENT})+"
    for m in re.finditer(inline, code):
        paths.append([s.strip() for s in m.group(0).split("::")])
    return paths


def resolve(path: list, here: tuple, modules: set):
    """The module `path` (written in module `here`) names, or None for an outside crate."""
    segments = list(path)
    if not segments or segments[0] not in ROOT_SEGMENTS:
        return None
    if segments[0] == "crate":
        current, segments = [], segments[1:]
    else:
        current = list(here)
        while segments and segments[0] in ("super", "self"):
            if segments[0] == "super":
                current = current[:-1]
            segments = segments[1:]
    target = tuple(current)
    for seg in segments:
        if tuple(current + [seg]) not in modules:
            break
        current.append(seg)
        target = tuple(current)
    return target


def cycles(graph: dict) -> list:
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def crate_cycles(src: Path) -> list:
    files = {module_of(src, f): f for f in src.rglob("*.rs")}
    modules = set(files)
    graph = {}
    for here, file in files.items():
        for path in paths_in(code_of(file.read_text())):
            target = resolve(path, here, modules)
            if target is not None and target != here and target in modules:
                graph.setdefault(here, set()).add(target)
    return [(circle, graph) for circle in cycles(graph)]


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    found = False
    for src in sorted(root.glob("crates/*/src")):
        for circle, graph in crate_cycles(src):
            found = True
            name = lambda m: "::".join(m) or "(crate root)"  # noqa: E731
            print(f"{src.parent.name}: modules in a circle: {', '.join(map(name, circle))}")
            for m in circle:
                inside = sorted(t for t in graph.get(m, ()) if t in circle)
                print(f"  {name(m)} -> {', '.join(map(name, inside))}")
    if not found:
        print("no module cycle in any crate")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
