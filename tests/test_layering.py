"""How levels_tf's modules may import each other.

Read from the source with `ast`, so every import counts: at module level, in
a function (the CLI imports its commands when they run) and under
`if TYPE_CHECKING:`. Two rules:

- no import cycle among levels_tf's modules;
- the layers point one way: the CLI and the commands (levels_tf.commands.*)
  may import the core modules, a core module never imports a command or
  the CLI.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest

PACKAGE = "levels_tf"
SOURCE = Path(__file__).resolve().parent.parent / PACKAGE
TOP = ("levels_tf.cli", "levels_tf.__main__", "levels_tf.commands")
"""Where the layers above the core start: these may import the core, never the reverse."""

Graph = Mapping[str, frozenset[str]]
"""module -> the package's modules it imports, all dotted names."""


def module_name(root: Path, package: str, path: Path) -> str:
    """The dotted name of the module at `path` inside `root`, the folder of `package`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def imports_of(name: str, is_package: bool, tree: ast.AST, known: frozenset[str]) -> set[str]:
    """The modules of `known` that module `name` imports anywhere in `tree`.

    `from .x import y` counts as an import of x, and of x.y when that is a
    module; `import a.b` as one of a.b. Imports from outside `known` are left out."""
    found: set[str] = set()
    here = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {module for module in found if module in known and module != name}


def import_graph(root: Path, package: str) -> dict[str, frozenset[str]]:
    """Every module of the package in folder `root`, with the package's modules it imports."""
    paths = {module_name(root, package, path): path for path in sorted(root.rglob("*.py"))}
    known = frozenset(paths)
    return {
        name: frozenset(
            imports_of(
                name,
                path.name == "__init__.py",
                ast.parse(path.read_text(encoding="utf-8"), str(path)),
                known,
            )
        )
        for name, path in paths.items()
    }


def find_cycle(graph: Graph) -> list[str]:
    """One import cycle as [a, b, ..., a], or [] when there is none."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> list[str]:
        path.append(module)
        on_path.add(module)
        for imported in sorted(graph.get(module, ())):
            if imported in on_path:
                return path[path.index(imported) :] + [imported]
            if imported not in done:
                cycle = visit(imported)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(module)
        done.add(module)
        return []

    for module in sorted(graph):
        if module not in done:
            cycle = visit(module)
            if cycle:
                return cycle
    return []


def upward_imports(graph: Graph) -> list[str]:
    """Each import of the CLI or a command by a core module, as "core -> top"."""

    def top(module: str) -> bool:
        return any(module == t or module.startswith(t + ".") for t in TOP)

    return [
        f"{module} -> {imported}"
        for module, imported_set in sorted(graph.items())
        if not top(module)
        for imported in sorted(imported_set)
        if top(imported)
    ]


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(SOURCE, PACKAGE)


def test_no_import_cycle(graph):
    cycle = find_cycle(graph)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_core_never_imports_commands_or_cli(graph):
    assert (
        "levels_tf.commands.plan" in graph["levels_tf.cli"]
    )  # the graph sees function-level imports
    assert upward_imports(graph) == []


# -- the checks themselves can fail --------------------------------------------


def _package(root: Path, files: Mapping[str, str]) -> Path:
    folder = root / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        (
            {"a.py": "from . import b\n", "b.py": "def f():\n    from .a import x\n"},
            ["pkg.a", "pkg.b", "pkg.a"],
        ),
        (
            {
                "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub.c import C\n",
                "sub/__init__.py": "",
                "sub/c.py": "from ..a import thing\n",
            },
            ["pkg.a", "pkg.sub.c", "pkg.a"],
        ),
        ({"a.py": "import pkg.b\n", "b.py": "import os\nimport pkg\n"}, []),
    ],
)
def test_a_cycle_is_found_and_named(tmp_path, files, cycle):
    folder = _package(tmp_path, files)
    assert find_cycle(import_graph(folder, "pkg")) == cycle


def test_an_upward_import_is_named():
    graph = {
        "levels_tf.cli": frozenset({"levels_tf.commands.plan"}),
        "levels_tf.commands.plan": frozenset({"levels_tf.workspace"}),
        "levels_tf.workspace": frozenset({"levels_tf.commands.plan"}),
    }
    assert upward_imports(graph) == ["levels_tf.workspace -> levels_tf.commands.plan"]
