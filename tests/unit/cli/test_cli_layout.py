"""The CLI package's shape: its modules import no private names from each other, and no
two of them import each other (directly or around a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

import voiceops.cli

PACKAGE = Path(voiceops.cli.__file__).parent


def _imports() -> dict[str, list[tuple[str, list[str]]]]:
    """For each module of the package: (imported voiceops.cli module, names taken from it)."""
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        edges = found.setdefault(path.stem, [])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "voiceops.cli":
                # `from voiceops.cli import x`: a module of the package, or a name of __init__
                edges += [(a.name, []) if (PACKAGE / f"{a.name}.py").exists()
                          else ("__init__", [a.name]) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("voiceops.cli."):
                edges.append((node.module.rsplit(".", 1)[1], [a.name for a in node.names]))
    return found


def test_no_private_names_cross_modules() -> None:
    """No module of voiceops.cli takes an underscore name from another."""
    private = [(mod, dep, name) for mod, edges in _imports().items() for dep, names in edges
               for name in names if name.startswith("_")]
    assert not private, private


def test_no_import_circles() -> None:
    """The modules' imports of each other form no circle (the package's own __init__ aside)."""
    graph = {mod: {dep for dep, _ in edges} for mod, edges in _imports().items()
             if mod != "__init__"}
    done: set[str] = set()

    def visit(mod: str, path: tuple[str, ...]) -> None:
        assert mod not in path, " -> ".join((*path, mod))
        if mod in done:
            return
        for dep in graph.get(mod, ()):
            visit(dep, (*path, mod))
        done.add(mod)

    for mod in graph:
        visit(mod, ())
    assert {"app", "common", "client"} <= graph.keys()
