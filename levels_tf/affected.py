"""Which stacks a change touches: change detection for `--affected`.

A stack is affected when a file of its own folder changed, or a file of a
module it calls (directly, or through another module), or the render
options stored with the tree; and so is every stack that reads an affected
one (an environment reads its shared stack's outputs). The changed paths
come from git (git_changes.py); which module a file calls comes from the
rendered files, read here as text: levels-tf writes every `source` itself,
one per line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .options import STORED
from .stacks import Stack
from .working_files import is_working_file

STACKS_DIR = "stacks"
MODULES_DIR = "modules"
# `source = "../../modules/network"` in a stack, `source = "../waf"` in a module.
_LOCAL_SOURCE = re.compile(r'^\s*source\s*=\s*"(?:\.\./)+(?:modules/)?([A-Za-z0-9_-]+)"\s*$', re.M)


def modules_called(files: Mapping[str, str]) -> dict[str, set[str]]:
    """Folder (`stacks/<name>` or `modules/<name>`) -> the modules it calls,
    directly or through the modules those call. `files`: path -> text of the
    rendered tree (render.render()), paths relative to its root."""
    direct: dict[str, set[str]] = {}
    for path, text in files.items():
        parts = path.split("/")
        if len(parts) != 3 or parts[0] not in (STACKS_DIR, MODULES_DIR) or not path.endswith(".tf"):
            continue
        direct.setdefault(f"{parts[0]}/{parts[1]}", set()).update(_LOCAL_SOURCE.findall(text))
    closed: dict[str, set[str]] = {}
    for folder in direct:
        seen: set[str] = set()
        todo = list(direct[folder])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(direct.get(f"{MODULES_DIR}/{module}", ()))
        closed[folder] = seen
    return closed


def affected(changed: Iterable[str], files: Mapping[str, str], ordered: list[Stack]) -> list[Stack]:
    """The stacks of `ordered` (dependency order, kept) that `changed` paths
    touch, with every stack that reads one of them.

    `changed`: paths relative to the tree's root that differ between the
    base and now (added, removed or modified; paths outside stacks/ and
    modules/, and Terraform's working files (is_working_file), are ignored);
    `files`: the rendered tree now, to see which modules each stack calls."""
    changed = {path for path in changed if not is_working_file(path)}
    if STORED in changed:  # the provider settings of every stack
        return list(ordered)
    changed_modules = {p.split("/")[1] for p in changed if p.startswith(f"{MODULES_DIR}/")}
    changed_stacks = {p.split("/")[1] for p in changed if p.startswith(f"{STACKS_DIR}/")}
    calls = modules_called(files)
    hit = {
        stack.name
        for stack in ordered
        if stack.name in changed_stacks
        or calls.get(f"{STACKS_DIR}/{stack.name}", set()) & changed_modules
    }
    grew = True
    while grew:  # readers of an affected stack, and theirs
        readers = {s.name for s in ordered if set(s.depends_on) & hit} - hit
        hit |= readers
        grew = bool(readers)
    return [stack for stack in ordered if stack.name in hit]


def describe(selected: list[Stack], base: str) -> str:
    """One line saying which stacks the changes since `base` touch."""
    if not selected:
        return f"no stack is affected by the changes since {base}"
    return f"affected by the changes since {base}: {', '.join(s.name for s in selected)}"
