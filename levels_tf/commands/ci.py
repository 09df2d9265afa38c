from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import ci_github, console, git_changes, writer
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
    `.github/workflows` at the root of the git repository holding
    infra.yaml, where GitHub reads them; beside infra.yaml, with a warning,
    when it is in none), or with `check` show how the files there differ
    and exit 1 when they are stale. The jobs run in infra.yaml's folder. A
    workflow levels-tf generated before and no longer needs (the bake
    workflow once infra.yaml has no images) is removed, and `check` counts
    it stale. A workflow file there that levels-tf did not generate is never
    overwritten nor removed (WriteError, exit 1, when one is in the way).
    Says, on stderr, which VPC groups' pull request plans their CI role does
    not trust.

    With `as_json`, ends with `{"out": str, "default_branch": str,
    "warnings": [str], "workflows": [{"file": str, "state": "written" |
    "unchanged" | "removed"}]}`, or with `check` `{"out": str,
    "default_branch": str, "warnings": [str], "up_to_date": bool, "stale":
    [{"path": str, "action": "create" | "update" | "delete"}]}`."""
    ci_github.check_branch(default_branch)
    config = load_config(config_path)
    folder = config_path.parent.resolve()
    root = git_changes.repository_root(folder)
    warnings = []
    if root is None:
        warnings.append(
            f"{folder} is in no git repository: the workflows go beside infra.yaml and assume it "
            "sits at the repository's root; run `levels-tf ci github` again once it is in one"
        )
        where = ""
        default_out = folder / ci_github.FOLDER
    else:
        where = folder.relative_to(root.resolve()).as_posix()
        where = "" if where == "." else where
        default_out = root / ci_github.FOLDER
    if config_path.name != ci_github.CONFIG:
        warnings.append(
            f"{config_path.name}: the workflows run levels-tf in its folder without -c, so they "
            f"read {ci_github.CONFIG} there; rename the file {ci_github.CONFIG}"
        )
    out = out if out is not None else default_out
    files = ci_github.workflows(config.infra, default_branch, where)
    retired = [name for name in ci_github.FILES if name not in files]
    warnings += ci_github.trust_gaps(config.infra)
    for warning in warnings:
        console.err(f"warning: {warning}")
    github = config.infra.ci.github
    if github is None or github.levels_tf is None:
        console.err(
            f"note: the workflows install {ci_github.requirement(config.infra)} from PyPI; "
            "to install a fork or a wheel of your own, set ci.github.levels_tf"
        )
    document: dict[str, Any] = {
        "out": str(out),
        "default_branch": default_branch,
        "warnings": warnings,
    }
    if check:
        changes = writer.plan_marked(out, files, ci_github.HEADER, retired)
        if as_json:
            stale = [{"path": c.path, "action": c.action} for c in changes]
            console.report_json({**document, "up_to_date": not changes, "stale": stale})
        return report_check(out, changes, f"{len(files)} workflows", "ci github")
    changes = writer.write_marked(out, files, ci_github.HEADER, retired)
    written = {change.path for change in changes}
    removed = {change.path: "removed" for change in changes if change.action == "delete"}
    states = {name: "written" if name in written else "unchanged" for name in files} | removed
    states = dict(sorted(states.items()))
    for name, state in states.items():
        console.out(f"{out / name}: {state}")
    if as_json:
        workflows = [{"file": str(out / name), "state": state} for name, state in states.items()]
        console.report_json({**document, "workflows": workflows})
    return 0
