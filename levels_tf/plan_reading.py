"""Reading a Terraform plan into a `StackSummary`: pure, no I/O.

The caller runs terraform and hands over its output. Two inputs give the
same summary:

- `summarize()` reads the JSON of `terraform show -json PLANFILE`
  (format_version 1.x): `resource_changes`, `resource_drift`, `output_changes`;
- `from_events()` reads the messages of `terraform plan -json` (UI version
  1.x) as terraform.py decoded them: `planned_change`, `resource_drift`,
  `change_summary` and `outputs`, so the caller can skip a second invocation
  that loads the provider again; `from_json_lines()` reads the same stream
  as text.

The stream carries no attribute values, so only `summarize()` can recognise a
Terraform state bucket by its name (`state_buckets=`); any `aws_s3_bucket`
replaced or destroyed is flagged by both.

Reads of data sources and no-ops are not changes. A replace that leaves the
old object alone (`destroy = false` on a resource: create then forget) is
still a replace, as the stream cannot tell it from one that destroys:
flagged on the safe side. Every input this module cannot read with
confidence raises PlanError.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping

from .plan_summary import DESTRUCTIVE, Change, Drift, PlanError, StackSummary

__all__ = [
    "STATEFUL",
    "STATE_BUCKET",
    "Message",
    "from_events",
    "from_json_lines",
    "summarize",
]

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
_NOT_CHANGES = ("no-op", "read")
"""Actions that change no real object."""


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
            action in DESTRUCTIVE and bool(buckets) and _touches_bucket(entry, type_, buckets)
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

Message = Mapping
"""One message of the `terraform plan -json` stream as JSON decodes it: its
"type" ("version", "planned_change", "resource_drift", "change_summary",
"outputs", "diagnostic"...), its "@level" and what the type carries."""


def from_events(
    stack: str,
    messages: Iterable[Message],
    *,
    production: bool,
    refresh_only: bool = False,
) -> StackSummary:
    """The summary of a plan from the messages of `terraform plan -json`, in order.

    The events terraform.py hands over, each decoded once. Equal to
    `summarize()` of the same plan (without `state_buckets`: the stream has
    no attribute values). A PlanError, naming the N-th message "line N", for
    a message that is not a JSON object; and for a stream with error
    diagnostics, without its `change_summary` (a plan that did not finish),
    or whose own counts disagree with the planned changes read."""
    return _from_stream(
        stack, enumerate(messages, 1), production=production, refresh_only=refresh_only
    )


def from_json_lines(
    stack: str,
    lines: Iterable[str | bytes] | str | bytes,
    *,
    production: bool,
    refresh_only: bool = False,
) -> StackSummary:
    """The summary of a plan from the text `terraform plan -json` prints, one message a line.

    `lines` is that text whole (str or UTF-8 bytes) or its lines; blank lines
    are skipped. A PlanError for a line that is not JSON; otherwise read and
    refused as by `from_events()`, each error naming its line."""
    if isinstance(lines, (str, bytes)):
        lines = lines.splitlines()
    return _from_stream(
        stack, _decoded(stack, lines), production=production, refresh_only=refresh_only
    )


def _decoded(stack: str, lines: Iterable[str | bytes]) -> Iterator[tuple[int, object]]:
    """(line number, JSON value) of each line that is not blank."""
    for number, raw in enumerate(lines, 1):
        line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except ValueError:
            raise PlanError(
                f"{stack}: line {number} of the plan stream is not JSON: {line[:200]}"
            ) from None
        yield number, message


def _from_stream(
    stack: str,
    numbered: Iterable[tuple[int, object]],
    *,
    production: bool,
    refresh_only: bool,
) -> StackSummary:
    """The summary of the stream's messages, each with its line number for errors."""
    changes: list[Change] = []
    drift: list[Drift] = []
    outputs: list[str] = []
    totals = None
    errors = []
    for number, message in numbered:
        if not isinstance(message, Mapping):
            raise PlanError(
                f"{stack}: line {number} of the plan stream is not a message: {json.dumps(message)[:200]}"
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
    if action in DESTRUCTIVE:
        stateful = STATE_BUCKET if state_bucket else STATEFUL.get(type_, "")
    return Change(
        address, action, type_, reason, previous, stateful, state_bucket and action in DESTRUCTIVE
    )


def _summary(
    stack: str,
    production: bool,
    refresh_only: bool,
    changes: list[Change],
    drift: list[Drift],
    outputs: list[str],
) -> StackSummary:
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
