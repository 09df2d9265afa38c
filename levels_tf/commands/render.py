from __future__ import annotations

from pathlib import Path

from .. import console, writer
from ..options import RenderOptions, apply, for_render, resolve
from ..render import render as render_files
from ..validation import load_config


def render(
    config_path: Path,
    out: Path | None,
    check: bool,
    options: RenderOptions = RenderOptions(),
    as_json: bool = False,
) -> int:
    """Write the generated tree, or with `check` show how the tree on disk differs.

    The options given (else $AWS_ENDPOINT_URL, else those the tree was
    rendered with) are stored with the tree; `check` compares with the stored
    ones and refuses options that contradict them.

    With `as_json`, ends with one document, paths relative to `out`:
    `{"out": str, "created": [str], "updated": [str], "removed": [str],
    "unchanged": [str]}`, or with `check` `{"out": str, "up_to_date": bool,
    "stale": [{"path": str, "action": "create"|"update"|"delete"}]}` (the
    diff then goes to stderr). Writing, it prints infra.yaml's warnings
    (validation.Config.advisories) to stderr."""
    base = load_config(config_path)
    out = out if out is not None else config_path.parent
    options = resolve(out, options, base.infra.state.backend) if check else for_render(out, options)
    config = apply(base, options)
    files = render_files(config)
    if check:
        changes = writer.plan_changes(out, files)
        if as_json:
            stale = [{"path": c.path, "action": c.action} for c in changes]
            console.report_json({"out": str(out), "up_to_date": not changes, "stale": stale})
        return report_check(out, changes, f"{len(files)} files", f"render{options.flags}")
    changes = writer.write(out, files)
    console.lines([problem.format("warning") for problem in config.advisories], to_err=True)
    counts = {
        action: sum(1 for c in changes if c.action == action)
        for action in ("create", "update", "delete")
    }
    unchanged = len(files) + 1 - counts["create"] - counts["update"]
    console.out(
        f"{out}: {counts['create']} created, {counts['update']} updated, "
        f"{counts['delete']} removed, {unchanged} unchanged"
    )
    if as_json:
        changed = {c.path for c in changes}
        console.report_json(
            {
                "out": str(out),
                **{
                    key: sorted(c.path for c in changes if c.action == action)
                    for key, action in (
                        ("created", "create"),
                        ("updated", "update"),
                        ("removed", "delete"),
                    )
                },
                "unchanged": sorted(
                    path for path in [*files, writer.MANIFEST] if path not in changed
                ),
            }
        )
    return 0


def report_check(out: Path, changes: list[writer.Change], total: str, command: str) -> int:
    """What a `--check` found: `out` up to date (with `total`, e.g. "12
    files"), exit 0; else the diff, a line saying to run `levels-tf
    COMMAND`, exit 1."""
    if not changes:
        console.out(f"{out}: up to date ({total})")
        return 0
    console.out(writer.diff(changes), nl=False)
    console.err(f"{out}: {len(changes)} files differ from infra.yaml; run `levels-tf {command}`")
    return 1
