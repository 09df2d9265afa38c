"""What a Terraform plan will do, per stack: the records a summary is made of.

`StackSummary` is one planned stack: its `Change`s, its `Drift` and the
outputs that change; `NotPlanned` is a stack asked for that has no plan
(failed, skipped or waiting), and `Item` is either. plan_reading.py makes
summaries from Terraform's output, plan_report.py renders them.

Counts follow what happens to real objects: a replace counts once, as a
replace (Terraform's own summary counts it as one add and one destroy).
Moves, imports and forgets are changes that touch no object, counted apart.
A replace or destroy of a resource that holds data is flagged (`stateful`);
in production a flagged item blocks the stack (the caller refuses unless
told `--allow-destroy`), and a state bucket blocks in any stack, because
losing it orphans every stack of its VPC group.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import LevelsError

__all__ = [
    "DESTRUCTIVE",
    "Change",
    "Drift",
    "Item",
    "NotPlanned",
    "PlanError",
    "StackSummary",
    "Status",
]

_REASON_WORDS: Mapping[str, str] = {
    "cannot_update": "a changed argument forces replacement",
    "tainted": "tainted",
    "requested": "-replace asked for it",
    "replace_triggered_by": "replace_triggered_by",
    "delete_because_no_resource_config": "no longer in the configuration",
    "delete_because_wrong_repetition": "count or for_each added or removed",
    "delete_because_count_index": "count index no longer exists",
    "delete_because_each_key": "for_each key no longer exists",
    "delete_because_no_module": "its module is gone",
    "delete_because_no_move_target": "moved to an address that does not exist",
}
DESTRUCTIVE = ("replace", "delete")
"""The actions that end a real object: a replace or a delete."""


class PlanError(LevelsError):
    """A plan document or stream this module cannot read with confidence."""


@dataclass(frozen=True, order=True)
class Change:
    """One resource instance the plan changes.

    `action` is create, update, replace, delete, move, import or forget.
    `stateful` says what data is lost, only for a replace or delete of a
    resource that holds data ("" otherwise); `state_bucket` marks a Terraform
    state bucket or a part of one (its versioning, policy...)."""

    address: str
    action: str
    type: str
    reason: str = ""
    previous_address: str = ""
    stateful: str = ""
    state_bucket: bool = False

    @property
    def destructive(self) -> bool:
        return self.action in DESTRUCTIVE

    @property
    def reason_text(self) -> str:
        return _REASON_WORDS.get(self.reason, self.reason.replace("_", " "))


@dataclass(frozen=True, order=True)
class Drift:
    """A resource changed outside Terraform since the last apply: update, delete or move."""

    address: str
    action: str
    type: str


class Status(str, enum.Enum):
    """A stack's status in a summary; the value is what `as_json` writes."""

    CHANGES = "changes"
    NO_CHANGES = "no_changes"
    FAILED = "failed"
    SKIPPED = "skipped"
    WAITING = "waiting"

    @property
    def words(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class NotPlanned:
    """A stack asked for that has no plan, and why.

    `status` is FAILED (`reason` is the first error and `file`, `line` where
    Terraform's diagnostic range puts it, relative to the rendered tree; empty
    and 0 when it names no place), SKIPPED (`reason` names the stack that did
    not succeed) or WAITING (the stacks in `after` have no state yet: it can be
    planned once they are applied). `log` is the file holding the output of
    the Terraform run that failed, when it was kept (for people, not reports)."""

    stack: str
    status: Status
    reason: str
    after: tuple[str, ...] = ()
    file: str = ""
    line: int = 0
    log: Path | None = None

    @property
    def location(self) -> str:
        """FILE:LINE, FILE, or "" """
        return f"{self.file}:{self.line}" if self.file and self.line else self.file

    @property
    def sentence(self) -> str:
        """One line for people: what happened, and for a failure where."""
        if self.status is Status.FAILED:
            return f"{self.location}: {self.reason}" if self.location else self.reason
        if self.status is Status.SKIPPED:
            return f"skipped because {self.reason}"
        return self.reason


def repeated_failures(items: Iterable[Item]) -> dict[str, str]:
    """Each failed stack whose error (reason, file and line) a failed stack
    before it in `items` already had -> the first stack that had it. A
    missing credential or an unreachable backend fails every stack the same
    way: the reports say it once and name the others."""
    first: dict[tuple[str, str, int], str] = {}
    repeats: dict[str, str] = {}
    for item in items:
        if isinstance(item, NotPlanned) and item.status is Status.FAILED:
            key = (item.reason, item.file, item.line)
            if key in first:
                repeats[item.stack] = first[key]
            else:
                first[key] = item.stack
    return repeats


@dataclass(frozen=True)
class StackSummary:
    """What one stack's plan does. Equal for the same plan whichever input it came from."""

    stack: str
    production: bool
    changes: tuple[Change, ...] = ()
    drift: tuple[Drift, ...] = ()
    outputs: tuple[str, ...] = ()
    refresh_only: bool = False

    def _count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def add(self) -> int:
        return self._count("create")

    @property
    def change(self) -> int:
        return self._count("update")

    @property
    def replace(self) -> int:
        return self._count("replace")

    @property
    def destroy(self) -> int:
        return self._count("delete")

    @property
    def moved(self) -> int:
        return self._count("move")

    @property
    def imported(self) -> int:
        return self._count("import")

    @property
    def forgotten(self) -> int:
        return self._count("forget")

    @property
    def destructive(self) -> tuple[Change, ...]:
        """Every replace and destroy, by address."""
        return tuple(c for c in self.changes if c.destructive)

    @property
    def flagged(self) -> tuple[Change, ...]:
        """The replaces and destroys that lose data."""
        return tuple(c for c in self.changes if c.stateful)

    @property
    def blocked(self) -> bool:
        """True when applying needs --allow-destroy: production loses data, or any stack its state bucket."""
        return any(c.state_bucket or self.production for c in self.flagged)

    @property
    def has_changes(self) -> bool:
        """What `terraform plan -detailed-exitcode` answers 2 for: resource or output
        changes, and in a refresh-only plan, drift to record."""
        return bool(self.changes or self.outputs or (self.refresh_only and self.drift))

    @property
    def status(self) -> Status:
        return Status.CHANGES if self.has_changes else Status.NO_CHANGES


Item = StackSummary | NotPlanned
"""A stack's entry in a summary."""
