"""What a Terraform plan will do, per stack, and whether it may go ahead.

Pure functions, no I/O: the caller runs terraform and hands over its output.

Two inputs give the same `StackSummary`:

- `summarize()` reads the JSON of `terraform show -json PLANFILE`
  (format_version 1.x): `resource_changes`, `resource_drift`, `output_changes`;
- `from_json_lines()` reads the machine-readable stream of
  `terraform plan -json` (UI version 1.x): `planned_change`, `resource_drift`,
  `change_summary` and `outputs` messages, so the caller can skip a second
  invocation that loads the provider again.

The stream carries no attribute values, so only `summarize()` can recognise a
Terraform state bucket by its name (`state_buckets=`); any `aws_s3_bucket`
replaced or destroyed is flagged by both.

Counts follow what happens to real objects: a replace counts once, as a
replace (Terraform's own summary counts it as one add and one destroy); reads
of data sources and no-ops are not changes. Moves, imports and forgets
(`removed` blocks with `destroy = false`) are changes that touch no object and
are listed apart. A replace that leaves the old object alone (`destroy = false`
on a resource: create then forget) is still a replace, as the stream cannot
tell it from one that destroys: flagged on the safe side.

A replace or destroy of a resource that holds data (`STATEFUL`) is flagged;
in production a flagged item blocks the stack (the caller refuses unless told
`--allow-destroy`), and a state bucket blocks in any stack, because losing it
orphans every stack of its VPC group.

Renderers take every stack asked for, planned (`StackSummary`) or not
(`NotPlanned`: failed, skipped or waiting), and return strings (`text`,
`markdown`) or plain data (`as_json`), each stack with its `Status`;
`exit_code` follows `terraform plan -detailed-exitcode`, with 1 for blocked,
failed or skipped, and 2 also for stacks waiting for another's first apply.
"""

from __future__ import annotations

import enum
import html
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .errors import LevelsError

__all__ = [
    "GITHUB_COMMENT_LIMIT",
    "STATEFUL",
    "Change",
    "Drift",
    "Item",
    "NotPlanned",
    "PlanError",
    "StackSummary",
    "Status",
    "as_json",
    "exit_code",
    "from_json_lines",
    "markdown",
    "next_step",
    "summarize",
    "text",
]

GITHUB_COMMENT_LIMIT = 65536
"""The most characters GitHub accepts in a pull-request comment."""

STATEFUL: Mapping[str, str] = {
    "aws_rds_cluster": "database cluster and its data",
    "aws_rds_cluster_instance": "database instance (failover and outage)",
    "aws_db_instance": "database and its data",
    "aws_s3_bucket": "bucket and every object in it",
    "aws_kms_key": "key: whatever it encrypted becomes unreadable",
    "aws_dynamodb_table": "table and its items",
    "aws_efs_file_system": "file system and its files",
    "aws_backup_vault": "backup vault and its recovery points",
    "aws_secretsmanager_secret": "secret whose value is set out of band",
    "aws_secretsmanager_secret_version": "secret value set out of band (a new version brings back the placeholder)",
    "aws_ssm_parameter": "parameter whose value is set out of band (a new one holds the placeholder)",
    "aws_cloudwatch_log_group": "log group: audit, flow and database logs kept for retention",
}
"""Resource types whose replace or destroy loses data, with what is lost.

Parameters and secret versions are here because levels-tf declares them with a
placeholder and `ignore_changes`: the real value is set out of band, and a
replacement comes back holding the placeholder."""

STATE_BUCKET = "Terraform state bucket: every stack of its VPC group loses its state"

# What an action list of `show -json` means, in the stream's vocabulary
# (forget-then-create is a replace there too, so it is one here).
_SHOW_ACTIONS: Mapping[tuple[str, ...], str] = {
    ("no-op",): "no-op",
    ("create",): "create",
    ("read",): "read",
    ("update",): "update",
    ("delete",): "delete",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
    ("forget",): "forget",
    ("forget", "create"): "replace",
    ("create", "forget"): "replace",
}
# The stream's action names, as this module names them.
_STREAM_ACTIONS: Mapping[str, str] = {
    "noop": "no-op",
    "create": "create",
    "read": "read",
    "update": "update",
    "replace": "replace",
    "delete": "delete",
    "remove": "forget",
    "move": "move",
    "import": "import",
}
# `show -json` spells some reasons longer than the stream; the stream's names are kept.
_SHOW_REASONS: Mapping[str, str] = {
    "replace_because_cannot_update": "cannot_update",
    "replace_because_tainted": "tainted",
    "replace_by_request": "requested",
    "replace_by_triggers": "replace_triggered_by",
}
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
_DESTRUCTIVE = ("replace", "delete")
_NOT_CHANGES = ("no-op", "read")


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
        return self.action in _DESTRUCTIVE

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
    planned once they are applied)."""

    stack: str
    status: Status
    reason: str
    after: tuple[str, ...] = ()
    file: str = ""
    line: int = 0

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


# -- reading `terraform show -json` --------------------------------------------


def summarize(
    stack: str,
    plan: Mapping,
    *,
    production: bool,
    refresh_only: bool = False,
    state_buckets: Collection[str] = (),
) -> StackSummary:
    """The summary of a plan from `terraform show -json PLANFILE`.

    `refresh_only` says the plan came from `terraform plan -refresh-only`, whose
    drift is its change. `state_buckets` names the Terraform state buckets: a
    replace or destroy of one, or of a resource attached to one, is flagged and
    blocks in any stack."""
    if not isinstance(plan, Mapping):
        raise PlanError(f"{stack}: a plan is a JSON object, not {type(plan).__name__}")
    version = str(plan.get("format_version", ""))
    if version.split(".")[0] != "1":
        raise PlanError(
            f"{stack}: plan format_version {version or '(none)'} is not 1.x; is this `terraform show -json PLANFILE`?"
        )
    if plan.get("errored"):
        raise PlanError(f"{stack}: the plan errored; it cannot be applied")
    buckets = frozenset(state_buckets)
    changes = []
    for entry in plan.get("resource_changes") or ():
        parsed = _show_entry(stack, entry)
        if parsed is None:
            continue
        address, type_, action, reason, previous = parsed
        if action in _NOT_CHANGES:
            continue
        state_bucket = (
            action in _DESTRUCTIVE and bool(buckets) and _touches_bucket(entry, type_, buckets)
        )
        changes.append(_change(address, type_, action, reason, previous, state_bucket))
    drift = []
    for entry in plan.get("resource_drift") or ():
        parsed = _show_entry(stack, entry)
        if parsed is not None:
            address, type_, action, _, _ = parsed
            drift.append(Drift(address, action, type_))
    outputs = [
        name
        for name, output in (plan.get("output_changes") or {}).items()
        if _show_action(stack, name, (output or {}).get("actions")) not in _NOT_CHANGES
    ]
    return _summary(stack, production, refresh_only, changes, drift, outputs)


def _show_entry(stack: str, entry: Mapping) -> tuple[str, str, str, str, str] | None:
    """(address, type, action, reason, previous address) of a managed resource's entry; None for data sources."""
    try:
        if entry.get("mode", "managed") != "managed":
            return None
        address = entry["address"]
        type_ = entry["type"]
        change = entry["change"]
        action = _show_action(stack, address, change.get("actions"))
    except (AttributeError, KeyError, TypeError) as error:
        raise PlanError(
            f"{stack}: a resource change without {error}: {json.dumps(entry)[:200]}"
        ) from None
    previous = entry.get("previous_address") or ""
    if previous == address:
        previous = ""
    if action == "no-op":  # as the stream does: a move or an import shows only over a no-op
        if previous:
            action = "move"
        elif change.get("importing"):
            action = "import"
    reason = entry.get("action_reason") or ""
    return address, type_, action, _SHOW_REASONS.get(reason, reason), previous


def _show_action(stack: str, what: str, actions) -> str:
    try:
        return _SHOW_ACTIONS[tuple(actions)]
    except (KeyError, TypeError):
        raise PlanError(
            f"{stack}: {what}: unknown actions {actions!r}; refusing to guess what they do"
        ) from None


def _touches_bucket(entry: Mapping, type_: str, buckets: frozenset[str]) -> bool:
    """Whether an aws_s3_bucket* resource is, or belongs to, one of `buckets` (before or after)."""
    if not type_.startswith("aws_s3_bucket"):
        return False
    change = entry.get("change") or {}
    for values in (change.get("before"), change.get("after")):
        if isinstance(values, Mapping) and values.get("bucket") in buckets:
            return True
    return False


# -- reading `terraform plan -json` --------------------------------------------


def from_json_lines(
    stack: str,
    lines: Iterable[str | bytes] | str,
    *,
    production: bool,
    refresh_only: bool = False,
) -> StackSummary:
    """The summary of a plan from the stream `terraform plan -json` prints, one message a line.

    Equal to `summarize()` of the same plan (without `state_buckets`: the stream
    has no attribute values). Refuses a stream with error diagnostics or without
    its `change_summary` (a plan that did not finish), and one whose own counts
    disagree with the planned changes read."""
    if isinstance(lines, (str, bytes)):
        lines = lines.splitlines()
    changes = []
    drift = []
    outputs: list[str] = []
    totals = None
    errors = []
    for number, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            line = line.decode("utf-8")
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except ValueError:
            raise PlanError(
                f"{stack}: line {number} of the plan stream is not JSON: {line[:200]}"
            ) from None
        if not isinstance(message, dict):
            raise PlanError(
                f"{stack}: line {number} of the plan stream is not a message: {line[:200]}"
            )
        kind = message.get("type")
        if kind == "version":
            ui = str(message.get("ui", ""))
            if ui.split(".")[0] != "1":
                raise PlanError(f"{stack}: machine-readable UI version {ui or '(none)'} is not 1.x")
        elif kind == "diagnostic" and message.get("@level") == "error":
            diagnostic = message.get("diagnostic") or {}
            errors.append(diagnostic.get("summary") or message.get("@message", "error"))
        elif kind in ("planned_change", "resource_drift"):
            parsed = _stream_change(stack, number, message)
            if parsed is None:
                continue
            address, type_, action, reason, previous = parsed
            if kind == "resource_drift":
                drift.append(Drift(address, action, type_))
            elif action not in _NOT_CHANGES:
                changes.append(_change(address, type_, action, reason, previous, False))
        elif kind == "change_summary":
            totals = message.get("changes") or {}
            if totals.get("operation", "plan") != "plan":
                raise PlanError(
                    f"{stack}: this stream is of a terraform {totals.get('operation')}, not of a plan"
                )
        elif kind == "outputs":
            for name, output in (message.get("outputs") or {}).items():
                action = _STREAM_ACTIONS.get((output or {}).get("action", ""), "")
                if not action:
                    raise PlanError(f"{stack}: output {name}: unknown action {output!r}")
                if action not in _NOT_CHANGES:
                    outputs.append(name)
    if errors:
        raise PlanError(f"{stack}: the plan failed: " + "; ".join(errors))
    if totals is None:
        raise PlanError(f"{stack}: the plan stream has no change_summary: the plan did not finish")
    summary = _summary(stack, production, refresh_only, changes, drift, outputs)
    # Terraform counts a replace as an add and a remove, but a forget-and-create
    # replace as neither; so only a summary counting more than the messages say
    # (messages lost, a stream cut short) is refused.
    read = {
        "add": summary.add + summary.replace,
        "change": summary.change,
        "remove": summary.destroy + summary.replace,
    }
    reported = {name: totals.get(name, 0) for name in read}
    if (
        reported["change"] != read["change"]
        or reported["add"] > read["add"]
        or reported["remove"] > read["remove"]
    ):
        raise PlanError(
            f"{stack}: the plan stream's change_summary {reported} disagrees with its planned changes {read}"
        )
    return summary


def _stream_change(
    stack: str, number: int, message: Mapping
) -> tuple[str, str, str, str, str] | None:
    try:
        change = message["change"]
        resource = change["resource"]
        if str(resource.get("resource", "")).startswith("data."):
            return None
        address = resource["addr"]
        type_ = resource["resource_type"]
        action = _STREAM_ACTIONS[change["action"]]
    except (AttributeError, KeyError, TypeError) as error:
        raise PlanError(
            f"{stack}: line {number}: a {message.get('type')} message without a known {error}"
        ) from None
    previous = ((change.get("previous_resource") or {}).get("addr")) or ""
    if previous == address:
        previous = ""
    return address, type_, action, change.get("reason") or "", previous


# -- shared --------------------------------------------------------------------


def _change(
    address: str, type_: str, action: str, reason: str, previous: str, state_bucket: bool
) -> Change:
    stateful = ""
    if action in _DESTRUCTIVE:
        stateful = STATE_BUCKET if state_bucket else STATEFUL.get(type_, "")
    return Change(
        address, action, type_, reason, previous, stateful, state_bucket and action in _DESTRUCTIVE
    )


def _summary(stack, production, refresh_only, changes, drift, outputs) -> StackSummary:
    if refresh_only and changes:
        raise PlanError(
            f"{stack}: a refresh-only plan with resource changes ({changes[0].address}): is it really refresh-only?"
        )
    return StackSummary(
        stack=stack,
        production=production,
        changes=tuple(sorted(changes)),
        drift=tuple(sorted(drift)),
        outputs=tuple(sorted(outputs)),
        refresh_only=refresh_only,
    )


def _split(items: Iterable[Item]) -> tuple[list[StackSummary], list[NotPlanned]]:
    items = list(items)
    return [i for i in items if isinstance(i, StackSummary)], [
        i for i in items if isinstance(i, NotPlanned)
    ]


def exit_code(items: Iterable[Item]) -> int:
    """As `terraform plan -detailed-exitcode`: 0 no changes, 2 changes; 1 when a
    stack failed, was skipped or is blocked; 2 also for a stack waiting for
    another's first apply (work is left, and nothing went wrong)."""
    summaries, not_planned = _split(items)
    if any(s.blocked for s in summaries) or any(
        n.status is not Status.WAITING for n in not_planned
    ):
        return 1
    return 2 if not_planned or any(s.has_changes for s in summaries) else 0


def next_step(items: Iterable[Item]) -> str:
    """What to run for the stacks waiting for another's first apply; "" when none waits.

    A stack waited for that was planned in this run has its plan saved: it
    is applied; one that was not is planned first."""
    items = list(items)
    waiting = [n for n in _split(items)[1] if n.status is Status.WAITING]
    if not waiting:
        return ""
    planned = {s.stack for s in _split(items)[0] if not s.blocked}
    blocked = {s.stack for s in _split(items)[0] if s.blocked}
    first = list(dict.fromkeys(d for n in waiting for d in n.after))
    steps = [f"`levels-tf apply {' '.join(first)}`"]
    unplanned = [d for d in first if d not in planned and d not in blocked]
    if unplanned:
        steps.insert(0, f"`levels-tf plan {' '.join(unplanned)}`")
    if any(d in blocked for d in first):  # its plan was not kept: review it and keep it on purpose
        steps.insert(
            0, f"`levels-tf plan --allow-destroy {' '.join(d for d in first if d in blocked)}`"
        )
    steps.append(f"`levels-tf plan {' '.join(n.stack for n in waiting)}`")
    return (
        "next: "
        + ", then ".join(steps)
        + "; or `levels-tf apply --all --waves` plans and applies wave by wave"
    )


# -- rendering -----------------------------------------------------------------

_COLUMNS = ("add", "change", "replace", "destroy")


def _totals(summaries: Sequence[StackSummary]) -> dict[str, int]:
    totals = {name: sum(getattr(s, name) for s in summaries) for name in _COLUMNS}
    totals["drift"] = sum(len(s.drift) for s in summaries)
    return totals


def _verb(action: str) -> str:
    """The word a person reads: Terraform's human output says destroy where its JSON says delete."""
    return "destroy" if action == "delete" else action


def _others(summary: StackSummary) -> str:
    parts = [
        f"{n} {word}"
        for n, word in (
            (summary.moved, "moved"),
            (summary.imported, "imported"),
            (summary.forgotten, "forgotten"),
        )
        if n
    ]
    return ", ".join(parts)


def _blocked_sentence(summaries: Sequence[StackSummary]) -> str:
    blocked = [s for s in summaries if s.blocked]
    count = sum(len(s.flagged) for s in blocked)
    names = ", ".join(s.stack for s in blocked)
    noun = "resource that holds data" if count == 1 else "resources that hold data"
    return (
        f"{names} would replace or destroy {count} {noun}; no plan is kept for apply without "
        f"`levels-tf plan --allow-destroy {' '.join(s.stack for s in blocked)}`"
    )


def _note(item: Item) -> str:
    """A planned stack's status beside its counts, when they do not say it."""
    if isinstance(item, NotPlanned):
        return "FAILED" if item.status is Status.FAILED else item.status.words
    if not item.has_changes:
        return "no drift" if item.refresh_only else "no changes"
    return ""


def text(items: Iterable[Item]) -> str:
    """A table for a terminal: one row per stack asked for, its replaces and
    destroys (or why it has no plan) under it, a total, then what blocks and
    what to run next."""
    items = list(items)
    summaries, _ = _split(items)
    with_drift = any(s.drift for s in summaries)
    columns = (*_COLUMNS, "drift") if with_drift else _COLUMNS
    width = max([len("stack"), len("total"), *(len(i.stack) for i in items)])

    def row(name: str, cells: Sequence[object], note: str = "") -> str:
        line = name.ljust(width) + "".join(
            str(cell).rjust(len(column) + 2) for cell, column in zip(cells, columns, strict=False)
        )
        return f"{line}  {note}" if note else line

    lines = [row("stack", columns)]
    for s in items:
        if isinstance(s, NotPlanned):
            lines.append(row(s.stack, ["-"] * len(columns), _note(s)))
            lines.append(f"  {s.sentence}")
            continue
        values = [getattr(s, c) for c in _COLUMNS] + ([len(s.drift)] if with_drift else [])
        notes = [
            n
            for n in (
                "BLOCKED" if s.blocked else "",
                "refresh-only" if s.refresh_only else "",
                _others(s),
                _note(s),
            )
            if n
        ]
        lines.append(row(s.stack, values, "  ".join(notes)))
        for c in s.destructive:
            mark = f"  !! {c.stateful}" if c.stateful else ""
            lines.append(f"  {_verb(c.action):<8} {c.address}{mark}")
        for d in s.drift:
            lines.append(f"  drift    {d.action:<7} {d.address}")
        if s.outputs:
            lines.append(f"  outputs  {', '.join(s.outputs)}")
    totals = _totals(summaries)
    lines.append(row("total", [totals[c] for c in columns]))
    if any(s.blocked for s in summaries):
        lines.append("BLOCKED: " + _blocked_sentence(summaries) + ".")
    if next_step(items):
        lines.append(next_step(items))
    return "\n".join(lines) + "\n"


def as_json(items: Iterable[Item]) -> dict:
    """Plain data for machines: every stack asked for with its status; for a
    planned one its counts, changes, drift and outputs, for another its reason
    (and a failure's file and line); the totals, the exit code and what to
    run next (null when nothing waits)."""
    items = list(items)
    summaries, _ = _split(items)

    def change(c: Change) -> dict:
        out = {"address": c.address, "action": c.action, "type": c.type}
        if c.reason:
            out["reason"] = c.reason
        if c.previous_address:
            out["previous_address"] = c.previous_address
        if c.stateful:
            out["stateful"] = c.stateful
        if c.state_bucket:
            out["state_bucket"] = True
        return out

    def stack(s: Item) -> dict:
        if isinstance(s, NotPlanned):
            return {
                "stack": s.stack,
                "status": s.status.value,
                "reason": s.reason,
                "after": list(s.after),
                "file": s.file or None,
                "line": s.line or None,
            }
        return {
            "stack": s.stack,
            "status": s.status.value,
            "production": s.production,
            "refresh_only": s.refresh_only,
            **{name: getattr(s, name) for name in (*_COLUMNS, "moved", "imported", "forgotten")},
            "has_changes": s.has_changes,
            "blocked": s.blocked,
            "changes": [change(c) for c in s.changes],
            "flagged": [c.address for c in s.flagged],
            "drift": [{"address": d.address, "action": d.action, "type": d.type} for d in s.drift],
            "outputs": list(s.outputs),
        }

    return {
        "stacks": [stack(s) for s in items],
        "total": _totals(summaries),
        "blocked": any(s.blocked for s in summaries),
        "exit_code": exit_code(items),
        "next": next_step(items) or None,
    }


class _Budget:
    """Text that never grows past `limit` characters."""

    def __init__(self, limit: int):
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def room(self) -> int:
        return self.limit - self.size

    def add(self, piece: str) -> bool:
        if len(piece) > self.room():
            return False
        self.parts.append(piece)
        self.size += len(piece)
        return True


def _code(value: str) -> str:
    fence = "``" if "`" in value else "`"
    pad = " " if "`" in value else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _more(count: int) -> str:
    return f"- … {count} more not shown\n"


def _list_section(budget: _Budget, opening: str, items: Sequence[str], closing: str) -> int:
    """Adds `opening`, as many `items` as fit with a '… N more' line, and `closing`.
    Returns how many items were left out because not even the opening fitted."""
    reserve = len(closing) + len(_more(len(items)))
    if not items or len(opening) + len(items[0]) + reserve > budget.room():
        return len(items)  # not even one item: no section at all
    budget.add(opening)
    shown = 0
    for item in items:
        if len(item) + reserve > budget.room():
            break
        budget.add(item)
        shown += 1
    if shown < len(items):
        budget.add(_more(len(items) - shown))
    budget.add(closing)
    return 0


def _item(c: Change, stack: str = "") -> str:
    where = f"{stack}: " if stack else ""
    words = [f"**{_verb(c.action)}**"]
    if c.previous_address:
        words.append(f"from {_code(c.previous_address)}")
    if c.reason:
        words.append(f"({c.reason_text})")
    mark = f" — ⚠️ {c.stateful}" if c.stateful else ""
    return f"- {where}{_code(c.address)} {' '.join(words)}{mark}\n"


_MARKS: Mapping[Status, str] = {Status.FAILED: "❌", Status.SKIPPED: "⏭️", Status.WAITING: "⏳"}
_REASON_LIMIT = 600
"""Characters of one stack's reason in a comment: a Terraform error's detail can run long."""


def _not_planned_item(n: NotPlanned) -> str:
    reason = " ".join(n.reason.split())
    if len(reason) > _REASON_LIMIT:
        reason = reason[: _REASON_LIMIT - 1] + "…"
    reason = html.escape(reason, quote=False)
    if n.status is Status.FAILED:
        where = f" at {_code(n.location)}" if n.location else ""
        return f"- {_MARKS[n.status]} **{n.stack}** failed{where}: {reason}\n"
    if n.status is Status.SKIPPED:
        return f"- {_MARKS[n.status]} **{n.stack}** skipped because {reason}\n"
    return f"- {_MARKS[n.status]} **{n.stack}** {reason}\n"


def markdown(items: Iterable[Item], limit: int = 60000) -> str:
    """A pull-request comment: the table with every stack asked for, the stacks
    without a plan and why, what loses data, then each stack's other replaces
    and destroys, drift and outputs (long lists folded in <details>). Never
    longer than `limit` characters (at most GitHub's 65536).

    Each thing appears in one list only (a change that loses data is listed
    with what loses data, not again under its stack), so what does not fit is
    counted once: in its list's '… N more not shown' line, or, for a whole
    list or table row left out, in the closing '… N more not shown' line."""
    if not 0 < limit <= GITHUB_COMMENT_LIMIT:
        raise ValueError(f"limit must be within 1..{GITHUB_COMMENT_LIMIT}, not {limit}")
    items = list(items)
    summaries, not_planned = _split(items)
    with_drift = any(s.drift for s in summaries)
    columns = (*_COLUMNS, "drift") if with_drift else _COLUMNS
    drift_report = bool(summaries) and all(s.refresh_only for s in summaries)

    head = [
        "### Terraform drift (refresh-only plan)\n\n" if drift_report else "### Terraform plan\n\n"
    ]
    for status, words in ((Status.FAILED, "Failed"), (Status.SKIPPED, "Skipped")):
        names = [n.stack for n in not_planned if n.status is status]
        if names:
            head.append(
                f"{_MARKS[status]} **{words}**: {', '.join(names)} (not planned; see below).\n\n"
            )
    if any(s.blocked for s in summaries):
        head.append(f"⛔ **Blocked**: {_blocked_sentence(summaries)}.\n\n")
    elif not not_planned and not any(s.has_changes for s in summaries):
        head.append("No changes.\n\n" if not drift_report else "No drift.\n\n")
    step = next_step(items)
    if step:
        head.append(f"{_MARKS[Status.WAITING]} **Next**: {step.removeprefix('next: ')}.\n\n")
    head.append("| stack | " + " | ".join(columns) + " | |\n")
    head.append("| --- | " + " | ".join("--:" for _ in columns) + " | --- |\n")
    rows = []
    for s in items:
        if isinstance(s, NotPlanned):
            rows.append(
                f"| {_cell(s.stack)} | "
                + " | ".join("–" for _ in columns)
                + f" | {_MARKS[s.status]} {s.status.words} |\n"
            )
            continue
        values = [getattr(s, c) for c in _COLUMNS] + ([len(s.drift)] if with_drift else [])
        notes = [
            n
            for n in (
                "⛔ blocked" if s.blocked else "",
                f"⚠️ {len(s.flagged)} holding data" if s.flagged else "",
                _others(s),
                _note(s),
            )
            if n
        ]
        rows.append(
            f"| {_cell(s.stack)} | " + " | ".join(map(str, values)) + f" | {', '.join(notes)} |\n"
        )
    totals = _totals(summaries)
    total_row = "| **total** | " + " | ".join(f"**{totals[c]}**" for c in columns) + " | |\n"

    lists = []  # (opening, items, closing), in the order they are shown
    if not_planned:
        lists.append(("\n**Not planned:**\n\n", [_not_planned_item(n) for n in not_planned], ""))
    # what holds data comes first, that of blocked stacks before the others
    flagged = [
        _item(c, s.stack) for s in sorted(summaries, key=lambda s: not s.blocked) for c in s.flagged
    ]
    if flagged:
        lists.append(("\n**Replaced or destroyed, and holding data:**\n\n", flagged, ""))
    for s in summaries:
        others = [c for c in s.destructive if not c.stateful]
        if others:
            replace = sum(1 for c in others if c.action == "replace")
            title = f"{s.stack}: {replace} to replace, {len(others) - replace} to destroy"
            if s.flagged:
                title += " (besides those holding data)"
            lists.append(_folded(title, [_item(c) for c in others], fold=len(others) > 10))
        drift = [f"- {_code(d.address)} **{d.action}**\n" for d in s.drift]
        if drift:
            title = f"{s.stack}: {len(drift)} changed outside Terraform"
            lists.append(_folded(title, drift, fold=not s.refresh_only or len(drift) > 10))
        if s.outputs:
            lists.append(
                _folded(
                    f"{s.stack}: outputs that change",
                    [f"- {_code(n)}\n" for n in s.outputs],
                    fold=len(s.outputs) > 10,
                )
            )

    everything = len(rows) + 1 + sum(len(entries) for _, entries, _ in lists)

    def trailer(count: int) -> str:
        return f"\n… {count} more not shown (this comment keeps within {limit} characters).\n"

    budget = _Budget(
        limit - len(trailer(everything))
    )  # room for the trailer is kept from the start
    if not budget.add("".join(head)):
        cut = "\n…\n"  # a limit too small for the table's heading: cut the heading
        return ("".join(head)[: max(0, limit - len(cut))] + cut)[:limit]
    left_out = 0
    for number, piece in enumerate([*rows, total_row]):
        if not budget.add(piece):
            left_out += len(rows) + 1 - number
            break
    for opening, entries, closing in lists:
        left_out += _list_section(budget, opening, entries, closing)
    out = "".join(budget.parts)
    if left_out:
        out += trailer(left_out)
    return out


def _cell(value: str) -> str:
    return value.replace("|", "\\|")


def _folded(title: str, items: list[str], *, fold: bool) -> tuple[str, list[str], str]:
    if fold:
        return f"\n<details><summary>{html.escape(title)}</summary>\n\n", items, "\n</details>\n"
    return f"\n**{title}:**\n\n", items, ""
