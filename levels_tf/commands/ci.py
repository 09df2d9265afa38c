from __future__ import annotations

from pathlib import Path

from .. import ci_github, console, writer
from ..validation import load_config
from .render import report_check


def github(config_path: Path, out: Path | None, check: bool, default_branch: str) -> int:
    """Write the GitHub Actions workflows of infra.yaml into `out` (default
    `.github/workflows` beside infra.yaml), or with `check` show how the
    files there differ and exit 1 when they are stale. A workflow file there
    that levels-tf did not generate is never overwritten (WriteError, exit 1).
    Says, on stderr, which VPC groups' pull request plans their CI role does
    not trust."""
    ci_github.check_branch(default_branch)
    config = load_config(config_path)
    out = out if out is not None else config_path.parent / ci_github.FOLDER
    files = ci_github.workflows(config.infra, default_branch)
    for gap in ci_github.trust_gaps(config.infra):
        console.err(f"warning: {gap}")
    if check:
        changes = writer.plan_marked(out, files, ci_github.HEADER)
        return report_check(out, changes, f"{len(files)} workflows", "ci github")
    changes = writer.write_marked(out, files, ci_github.HEADER)
    written = {change.path for change in changes}
    for name in files:
        console.out(f"{out / name}: {'written' if name in written else 'unchanged'}")
    return 0
