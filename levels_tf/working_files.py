"""What Terraform and levels-tf leave in the rendered tree as they work,
which is no input of any stack: one list, read by change detection
(affected.py ignores these paths) and rendered as the tree's `.gitignore`
files, so what `--affected` ignores is what git ignores.
"""

from __future__ import annotations

import fnmatch

# In each stack's folder: Terraform's data folder (providers and modules
# `terraform init` fetched, a local backend's lock), saved plans, a local
# backend's state (which can hold secrets) and the files of a write in
# progress (writer.py). A changed .terraform.lock.hcl is an input: not here.
WORKING_DIRS = (".terraform",)
WORKING_SUFFIXES = (
    ".tfplan", ".tfstate", ".tfstate.backup", ".tfstate.lock.info",
    ".levels-tf-new", ".levels-tf-old",
)  # fmt: skip

# In `.levels-tf/`: the records of work in progress on this machine (an
# unfinished write's journal, writer.py; an unfinished resize, db_resize.py).
# The manifest and the stored render options there are the tree's own.
RECORDS = ("journal.json", "db-resize-*.json")

RECORDS_FOLDER = ".levels-tf"
STACKS_IGNORE = "stacks/.gitignore"
RECORDS_IGNORE = f"{RECORDS_FOLDER}/.gitignore"


def is_working_file(path: str) -> bool:
    """Whether `path` (relative to the tree, `/`-separated) is Terraform's or
    levels-tf's working data rather than an input of a stack."""
    parts = path.split("/")
    if len(parts) == 2 and parts[0] == RECORDS_FOLDER:
        return any(fnmatch.fnmatchcase(parts[1], pattern) for pattern in RECORDS)
    return bool(set(WORKING_DIRS).intersection(parts[:-1])) or parts[-1].endswith(WORKING_SUFFIXES)


def stack_patterns() -> list[str]:
    """The gitignore patterns of stacks/.gitignore, e.g. `.terraform/`, `*.tfplan`."""
    return [f"{name}/" for name in WORKING_DIRS] + [f"*{suffix}" for suffix in WORKING_SUFFIXES]
