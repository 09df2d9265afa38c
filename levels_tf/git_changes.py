"""The files of a folder that differ from a git commit, for `--affected`.

git itself answers, through the one place that starts programs: tracked
files changed since the commit (committed, staged or not) and files git
does not track yet (but does not ignore).
"""

from __future__ import annotations

from pathlib import Path

from . import process
from .errors import UsageError

GIT_TIMEOUT = 120.0  # seconds; a diff of a rendered tree takes well under one
# What to do without git, for the commands that select stacks (plan, apply, drift, ...).
SELECT_INSTEAD = "name the stacks or give --all instead"


def changed_paths(folder: Path, base: str, instead: str = SELECT_INSTEAD) -> list[str]:
    """Paths relative to `folder` of the files under it that were added,
    removed or modified since commit `base` (any ref git resolves: a branch,
    a tag, a SHA, `HEAD~1`), renames counted as a removal and an addition.

    UsageError (exit 2) when `folder` is not in a git repository (saying
    `instead`, what the command can do without git) or `base` names no commit; ToolError when git is missing or fails otherwise."""
    advice = "install git: --affected compares the tree with a git commit"
    inside = process.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        cwd=folder, timeout=GIT_TIMEOUT, check=False, advice=advice,
    )  # fmt: skip
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise UsageError(
            f"{folder} is not in a git repository: --affected compares the tree with a commit; "
            f"{instead}"
        )
    commit = process.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"],
        cwd=folder, timeout=GIT_TIMEOUT, check=False,
    )  # fmt: skip
    if commit.returncode != 0:
        raise UsageError(
            f"--base {base}: no such commit in this repository (a shallow CI clone has to fetch "
            f"it first: `git fetch origin {base}`)"
        )
    sha = commit.stdout.strip()
    changed = process.run(
        ["git", "diff", "--name-only", "--no-renames", "--relative", "-z", sha, "--", "."],
        cwd=folder, timeout=GIT_TIMEOUT,
    )  # fmt: skip
    untracked = process.run(
        ["git", "ls-files", "--others", "--exclude-standard", "-z", "--", "."],
        cwd=folder, timeout=GIT_TIMEOUT,
    )  # fmt: skip
    paths = changed.stdout.split("\0") + untracked.stdout.split("\0")
    return sorted({path for path in paths if path})


def repository_root(folder: Path) -> Path | None:
    """The top folder of the git work tree holding `folder`, None when
    `folder` is in none (or git is not installed: nothing then tells where
    the repository starts)."""
    try:
        top = process.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=folder, timeout=GIT_TIMEOUT, check=False,
        )  # fmt: skip
    except process.ToolError:
        return None
    path = top.stdout.strip()
    return Path(path) if top.returncode == 0 and path else None
