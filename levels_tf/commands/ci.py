from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import ci_github, console, writer
from ..validation import load_config
from .render import report_check


def github(
    config_path: Path,
    out: Path | None,
    check: bool,
    default_branch: str,
    as_json: bool = False,
) -> int:
    """Write the GitHub Actions workflows of infra.yaml into `out` (default
    `.github/workflows` beside infra.yaml), or with `check` show how the
    files there differ and exit 1 when they are stale. A workflow file there
    that levels-tf did not generate is never overwritten (WriteError, exit 1).
    Says, on stderr, which VPC groups' pull request plans their CI role does
    not trust.

    With `as_json`, ends with `{"out": str, "default_branch": str,
    "warnings": [str], "workflows": [{"file": str, "state": "written" |
    "unchanged"}]}`, or with `check` `{"out": str, "default_branch": str,
    "warnings": [str], "up_to_date": bool, "stale": [{"path": str,
    "action": "create" | "update"}]}`."""
    ci_github.check_branch(default_branch)
    config = load_config(config_path)
    out = out if out is not None else config_path.parent / ci_github.FOLDER
    files = ci_github.workflows(config.infra, default_branch)
    gaps = ci_github.trust_gaps(config.infra)
    for gap in gaps:
        console.err(f"warning: {gap}")
    document: dict[str, Any] = {
        "out": str(out),
        "default_branch": default_branch,
        "warnings": gaps,
    }
    if check:
        changes = writer.plan_marked(out, files, ci_github.HEADER)
        if as_json:
            stale = [{"path": c.path, "action": c.action} for c in changes]
            console.report_json({**document, "up_to_date": not changes, "stale": stale})
        return report_check(out, changes, f"{len(files)} workflows", "ci github")
    changes = writer.write_marked(out, files, ci_github.HEADER)
    written = {change.path for change in changes}
    states = {name: "written" if name in written else "unchanged" for name in sorted(files)}
    for name, state in states.items():
        console.out(f"{out / name}: {state}")
    if as_json:
        workflows = [{"file": str(out / name), "state": state} for name, state in states.items()]
        console.report_json({**document, "workflows": workflows})
    return 0
