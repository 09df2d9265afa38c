from __future__ import annotations

from pathlib import Path

from .. import affected, console
from ..options import RenderOptions
from ..stacks import Stack
from ..stacks import stacks as stack_list
from ..validation import load_config
from ..workspace import open_tree


def stacks(config_path: Path, as_json: bool, since: str | None = None) -> int:
    """The stacks in dependency order, with what each depends on; with
    `since` (a git commit), only those the changes since it touch, read
    from the rendered tree (which must be up to date), for a CI matrix."""
    if since is None:
        ordered = stack_list(load_config(config_path).infra)
    else:
        ordered = open_tree(
            config_path,
            (),
            False,
            RenderOptions(),
            since=since,
            instead="leave out --affected to list every stack",
        ).stacks
        if not as_json:
            console.err(affected.describe(ordered, since))
    if as_json:
        console.report_json([_row(s) for s in ordered])
        return 0
    width = max((len(s.name) for s in ordered), default=0)
    for s in ordered:
        after = ", ".join(s.depends_on) if s.depends_on else "-"
        console.out(f"{s.name.ljust(width)}  {s.kind:<11}  group {s.group:<12}  after {after}")
    return 0


def _row(stack: Stack) -> dict:
    return {
        "name": stack.name,
        "kind": stack.kind,
        "group": stack.group,
        "environment": stack.environment,
        "depends_on": list(stack.depends_on),
        "path": f"stacks/{stack.name}",
    }
