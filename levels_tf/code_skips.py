"""Where a planned resource's code is in a rendered tree, and which inline
checkov skips its code carries: what lets the code's skips reach checkov's
findings on a plan.

checkov 3.3 cannot do this itself. With `--repo-root-for-plan-enrichment`
it looks a planned resource up by its type and name alone, over every file
of the tree (checkov/common/output/report.py, `get_plan_resource_raw_id`),
so `module.log_bucket.aws_s3_bucket.this` may be read in `modules/bucket`
and take that file's skips, or miss its own. Here the address is followed
through the plan's own configuration instead: each `module.<call>` step to
the call's block in its caller's folder and, by the call's `source`, to the
module's folder; the last step is the resource's block there.

The skips are read from the rendered files themselves, not worked out again
from levels_tf/skips.py: the tree holds exactly the skips that hold for its
configuration (a skip with a condition is written only where it holds), and
they are the ones the code's scanners read too. Two forms count, both as
levels_tf/skips.py writes them, inside the block:

- `# checkov:skip=<ID>:<reason>`: checkov reads it on the code as well;
- `# checkov-plan:skip=<ID>:<reason>`: only for the plan, where a value
  known only after apply reads as missing to checkov; checkov does not read
  this form, so on the code it still judges the check.

A skip in a `module` call's block covers every resource of the call, as it
does for checkov on the code.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SKIP_MARKERS = ("checkov", "checkov-plan")
"""The comment forms that skip a check on a plan: `# <marker>:skip=<ID>:<reason>`."""

# As checkov's own COMMENT_REGEX (checkov/common/comment/enum.py): several ids may be
# given separated by commas; the reason is optional there, never in our tree.
_SKIP = re.compile(
    r"#\s*(checkov|checkov-plan):skip=\s*([A-Za-z_\d-]+(?:,[A-Za-z_\d-]+)*)(?::(.*))?"
)
_OPENER = re.compile(r'^(?:(resource|data) "([^"]+)" "([^"]+)"|module "([^"]+)")\s*\{\s*$')
_CALL = re.compile(r'module\.([A-Za-z_][A-Za-z0-9_-]*)(?:\[(?:"(?:[^"\\]|\\.)*"|[0-9]+)\])?\.')
_INSTANCE = re.compile(r'\[(?:"(?:[^"\\]|\\.)*"|[0-9]+)\]$')


@dataclass(frozen=True)
class Block:
    """A block of a rendered file: its file (relative to the tree, e.g.
    modules/bucket/main.tf), its first line (1-based), and the checks its
    inline comments skip as ((check id, reason), ...) in file order."""

    file: str
    line: int
    skips: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Code:
    """A planned resource's code: its block, then the blocks of the module
    calls that lead to it, innermost first."""

    resource: Block
    calls: tuple[Block, ...]

    def skip_reason(self, check_id: str) -> str | None:
        """Why `check_id` is skipped for this resource: the reason of the
        first skip of it on the resource's block, else on the calls from the
        innermost out; None when none skips it."""
        for block in (self.resource, *self.calls):
            for skipped, reason in block.skips:
                if skipped == check_id:
                    return reason
        return None


def blocks(text: str, file: str) -> dict[str, Block]:
    """The top-level blocks of the Terraform file `file` whose content is
    `text` (formatted as `terraform fmt` writes it: a block opens at the
    start of a line and closes with `}` there), by address within its
    module: `aws_s3_bucket.this`, `data.aws_iam_policy_document.x`,
    `module.bucket`."""
    found: dict[str, Block] = {}
    address, start = "", 0
    skips: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        opened = _OPENER.match(line)
        if opened:
            kind, kind_type, name, call = opened.groups()
            address = f"module.{call}" if call else f"{kind_type}.{name}"
            address = f"data.{address}" if kind == "data" else address
            start, skips = number, []
        elif address and line.startswith("}"):
            found[address] = Block(file, start, tuple(skips))
            address = ""
        elif address:
            skip = _SKIP.search(line)
            if skip:
                reason = (skip.group(3) or "").strip()
                skips += [(check_id, reason) for check_id in skip.group(2).split(",")]
    return found


class Tree:
    """The blocks of a rendered tree's folders, each folder read once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._folders: dict[str, dict[str, Block]] = {}

    def folder(self, folder: str) -> dict[str, Block]:
        """The blocks of every .tf file of `folder` (relative to the root, e.g.
        modules/bucket), by address; empty when there is no such folder."""
        if folder not in self._folders:
            found: dict[str, Block] = {}
            path = self.root / folder
            for file in sorted(path.glob("*.tf")) if path.is_dir() else []:
                text = file.read_text(encoding="utf-8", errors="surrogateescape")
                found.update(blocks(text, f"{folder}/{file.name}"))
            self._folders[folder] = found
        return self._folders[folder]

    def code(self, configuration: Mapping[str, Any], stack: str, address: str) -> Code | None:
        """The code of the resource at `address` (an instance address from a
        plan, e.g. module.load_balancer.module.access_logs.aws_s3_bucket.this
        or module.bucket["web"].aws_s3_bucket.this) planned in
        stacks/`stack`, whose plan's `configuration` (from `terraform show
        -json`) names each module call's `source`. None when the address
        leads out of the tree (a module that is not a local folder) or to a
        block the tree does not hold."""
        calls, resource = split_address(address)
        folder = f"stacks/{stack}"
        module: Mapping[str, Any] = configuration.get("root_module") or {}
        chain: list[Block] = []
        for name in calls:
            call = (module.get("module_calls") or {}).get(name) or {}
            source = str(call.get("source") or "")
            block = self.folder(folder).get(f"module.{name}")
            if block is None or not source.startswith(("./", "../")):
                return None
            folder = posixpath.normpath(posixpath.join(folder, source))
            if folder.startswith(".."):
                return None
            chain.insert(0, block)
            module = call.get("module") or {}
        found = self.folder(folder).get(resource)
        return None if found is None else Code(found, tuple(chain))


def split_address(address: str) -> tuple[list[str], str]:
    """An instance address as (its module calls from the root down, the
    resource's address within its module without instance key):
    module.a["x.y"].module.b[0].aws_s3_bucket.this["k"] ->
    (["a", "b"], "aws_s3_bucket.this")."""
    calls = []
    rest = address
    while True:
        step = _CALL.match(rest)
        if step is None:
            break
        calls.append(step.group(1))
        rest = rest[step.end() :]
    return calls, _INSTANCE.sub("", rest)
