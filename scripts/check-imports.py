#!/usr/bin/env python3
"""Fails (exit 1) on any import cycle between the modules under src/.

Every import counts: top-level, inside a function (lazy) and under ``TYPE_CHECKING``, since
each one couples the two modules the same way. ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg``. A package's implicit import of its
parents (``import a.b.c`` runs ``a/__init__`` and ``a/b/__init__``) is not counted: that
is how packages work, not a choice the code made.

Usage: ``python scripts/check-imports.py [SRC_DIR]`` (default: src next to this script).
"""

from __future__ import annotations

import ast
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path

# Cycles known when the check was added (#14.5), each removed by another #14 branch.
# A cycle is let through only while all of its modules are inside one group below; a new
# module joining one of them fails the check. The coordinator deletes this allow-list once
# those branches have landed (an entry no longer needed is reported as stale).
KNOWN_CYCLES: list[tuple[frozenset[str], str]] = []


def module_names(src: Path) -> dict[str, Path]:
    """Dotted module name → file, for every .py file under ``src``."""
    names: dict[str, Path] = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts:
            names[".".join(parts)] = path
    return names


def _base_of_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    parts = module.split(".")
    if not is_package:
        parts.pop()
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, target] if target else parts)


def imported(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """The modules of ``known`` that ``module`` (the file ``path``) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = _base_of_relative(module, is_package, node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    yield sub
                elif base in known:
                    yield base


def import_graph(src: Path) -> dict[str, set[str]]:
    names = module_names(src)
    known = set(names)
    return {
        mod: {dep for dep in imported(mod, path, known) if dep != mod}
        for mod, path in names.items()
    }


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative; only components of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, for the message."""
    start = min(component)
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for dep in sorted(graph[node] & component):
            if dep == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if dep not in parent:
                parent[dep] = node
                queue.append(dep)
    return sorted(component)


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "src"
    graph = import_graph(src)
    components = strongly_connected(graph)
    failed = 0
    used: set[frozenset[str]] = set()
    for component in sorted(components, key=min):
        cycle = " -> ".join(one_cycle(graph, component))
        if len(component) > 2:
            cycle += f" (cycles among: {', '.join(sorted(component))})"
        group = next(((g, owner) for g, owner in KNOWN_CYCLES if component <= g), None)
        if group is None:
            failed += 1
            print(f"check-imports: import cycle: {cycle}", file=sys.stderr)
        else:
            used.add(group[0])
            print(f"check-imports: known cycle (removed by {group[1]}): {cycle}")
    for g, owner in KNOWN_CYCLES:
        if g not in used:
            print(f"check-imports: stale allow-list entry ({owner}): {', '.join(sorted(g))}")
    print(f"check-imports: {len(graph)} modules, {failed} new cycle(s), {len(used)} known")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
