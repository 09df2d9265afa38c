"""Plan summaries: counts, stateful flags, blocking, rendering and exit codes.

Unit tests build small plans by hand in both shapes Terraform prints them:
`terraform show -json PLANFILE` and the `terraform plan -json` stream. The
real tests apply a tiny configuration against moto with the real terraform
and aws provider, change it, and read the real plan both ways.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import TypedDict

import pytest

from levels_tf.errors import LevelsError
from levels_tf.plan_reading import STATEFUL, from_events, from_json_lines, summarize
from levels_tf.plan_report import (
    GITHUB_COMMENT_LIMIT,
    as_json,
    exit_code,
    markdown,
    next_step,
    text,
)
from levels_tf.plan_summary import Change, Drift, Item, NotPlanned, PlanError, StackSummary, Status

from .conftest import emulator_provider

# -- building plans by hand ----------------------------------------------------

# What Terraform's stream says for each action list of `show -json`.
STREAM_ACTION = {
    ("create",): "create",
    ("update",): "update",
    ("delete",): "delete",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
    ("no-op",): "noop",
    ("read",): "read",
    ("forget",): "remove",
    ("create", "forget"): "replace",
}
SHOW_REASON = {
    "cannot_update": "replace_because_cannot_update",
    "tainted": "replace_because_tainted",
}


def entry(
    address: str,
    actions,
    *,
    mode: str = "managed",
    reason: str = "",
    before=None,
    previous: str = "",
    importing: bool = False,
) -> dict:
    """One resource change; `type` comes from the address."""
    parts = address.split(".")
    if parts[0] == "module":
        parts = parts[2:]
    if parts[0] == "data":
        mode, parts = "data", parts[1:]
    change: dict[str, object] = {"actions": list(actions), "before": before, "after": None}
    if importing:
        change["importing"] = {"id": "imported-id"}
    found: dict[str, object] = {
        "address": address,
        "mode": mode,
        "type": parts[0],
        "name": parts[1].split("[")[0],
        "change": change,
    }
    if reason:
        found["action_reason"] = reason
    if previous:
        found["previous_address"] = previous
    return found


def show(*changes: dict, drift=(), outputs=None, refresh_only: bool = False) -> dict:
    plan = {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "applyable": True,
        "complete": True,
        "errored": False,
    }
    if not refresh_only:
        plan["resource_changes"] = list(changes)
    if drift:
        plan["resource_drift"] = list(drift)
    if outputs:
        plan["output_changes"] = {name: {"actions": actions} for name, actions in outputs.items()}
    return plan


def _addr(change: dict) -> dict:
    address = change["address"]
    resource = address.split(".", 2)[2] if address.startswith("module.") else address
    return {
        "addr": address,
        "module": address.rsplit(".", 2)[0] if address.startswith("module.") else "",
        "resource": resource,
        "implied_provider": "aws",
        "resource_type": change["type"],
        "resource_name": change["name"],
        "resource_key": None,
    }


def _stream_change(change: dict) -> dict:
    action = STREAM_ACTION[tuple(change["change"]["actions"])]
    out = {"resource": _addr(change), "action": action}
    if change.get("previous_address"):
        out["previous_resource"] = _addr({**change, "address": change["previous_address"]})
        if action == "noop":
            out["action"] = "move"
    if change["change"].get("importing"):
        out["importing"] = change["change"]["importing"]
        if out["action"] == "noop":
            out["action"] = "import"
    reason = change.get("action_reason", "")
    reason = {v: k for k, v in SHOW_REASON.items()}.get(reason, reason)
    if reason:
        out["reason"] = reason
    return out


def stream(plan: dict) -> list[str]:
    """The `terraform plan -json` lines Terraform prints for the same plan as `plan` (a show -json dict)."""
    lines: list[dict[str, object]] = [
        {
            "@level": "info",
            "@message": "Terraform 1.11.4",
            "type": "version",
            "terraform": "1.11.4",
            "ui": "1.2",
        }
    ]
    for change in plan.get("resource_drift", []):
        lines.append({"@level": "info", "type": "resource_drift", "change": _stream_change(change)})
    totals = {"add": 0, "change": 0, "import": 0, "remove": 0}
    for change in plan.get("resource_changes", []):
        actions = tuple(change["change"]["actions"])
        if change["mode"] == "data" and actions == ("delete",):
            continue
        totals["add"] += "create" in actions
        totals["remove"] += "delete" in actions
        totals["change"] += actions == ("update",)
        message = _stream_change(change)
        if message["action"] != "noop":
            lines.append({"@level": "info", "type": "planned_change", "change": message})
    lines.append(
        {"@level": "info", "type": "change_summary", "changes": {**totals, "operation": "plan"}}
    )
    outputs = {
        name: {"sensitive": False, "action": STREAM_ACTION[tuple(o["actions"])]}
        for name, o in plan.get("output_changes", {}).items()
    }
    if outputs:
        lines.append({"@level": "info", "type": "outputs", "outputs": outputs})
    return [json.dumps(line) for line in lines]


def both(
    plan: dict, *, production: bool = False, refresh_only: bool = False, stack: str = "dev"
) -> StackSummary:
    """The summary from both inputs, asserted equal; the stream read as text and as events."""
    from_show = summarize(stack, plan, production=production, refresh_only=refresh_only)
    lines = stream(plan)
    from_stream = from_json_lines(stack, lines, production=production, refresh_only=refresh_only)
    from_decoded = from_events(
        stack,
        [json.loads(line) for line in lines],
        production=production,
        refresh_only=refresh_only,
    )
    assert from_show == from_stream == from_decoded
    return from_show


def counts(summary: StackSummary) -> tuple[int, int, int, int]:
    return summary.add, summary.change, summary.replace, summary.destroy


# -- counting ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        (["create"], (1, 0, 0, 0)),
        (["update"], (0, 1, 0, 0)),
        (["delete"], (0, 0, 0, 1)),
        (["delete", "create"], (0, 0, 1, 0)),
        (["create", "delete"], (0, 0, 1, 0)),
        (["no-op"], (0, 0, 0, 0)),
        (["read"], (0, 0, 0, 0)),
    ],
)
def test_each_action_counts_once(actions, expected):
    summary = both(show(entry("aws_sqs_queue.jobs", actions)))
    assert counts(summary) == expected
    assert summary.has_changes == (expected != (0, 0, 0, 0))


def test_a_replace_is_one_replace_not_an_add_and_a_destroy():
    summary = both(
        show(
            entry("aws_sqs_queue.a", ["delete", "create"], reason="replace_because_cannot_update"),
            entry("aws_sqs_queue.b", ["create"]),
        )
    )
    assert counts(summary) == (1, 0, 1, 0)
    (replaced,) = summary.destructive
    assert (replaced.address, replaced.action, replaced.reason) == (
        "aws_sqs_queue.a",
        "replace",
        "cannot_update",
    )


def test_data_sources_and_no_ops_are_not_changes():
    plan = show(
        entry(
            "data.aws_iam_policy_document.read", ["read"], reason="read_because_dependency_pending"
        ),
        entry("data.aws_caller_identity.current", ["no-op"]),
        entry("aws_sqs_queue.jobs", ["no-op"]),
    )
    summary = both(plan)
    assert summary.changes == ()
    assert not summary.has_changes
    assert exit_code([summary]) == 0


def test_every_replace_and_destroy_is_listed_by_address():
    plan = show(
        entry('module.queue["b"].aws_sqs_queue.this', ["delete"], reason="delete_because_each_key"),
        entry('module.queue["a"].aws_sqs_queue.this', ["create", "delete"]),
        entry("aws_sqs_queue.kept", ["update"]),
        entry("aws_sqs_queue.new", ["create"]),
    )
    summary = both(plan)
    assert [(c.address, c.action) for c in summary.destructive] == [
        ('module.queue["a"].aws_sqs_queue.this', "replace"),
        ('module.queue["b"].aws_sqs_queue.this', "delete"),
    ]
    assert summary.destructive[1].reason_text == "for_each key no longer exists"


def test_moves_imports_and_forgets_are_changes_that_touch_no_object():
    plan = show(
        entry("aws_sqs_queue.renamed", ["no-op"], previous="aws_sqs_queue.old"),
        entry("aws_sqs_queue.moved_and_changed", ["update"], previous="aws_sqs_queue.before"),
        entry("aws_sqs_queue.adopted", ["no-op"], importing=True),
        entry("aws_s3_bucket.let_go", ["forget"]),
    )
    summary = both(plan, production=True)
    assert counts(summary) == (0, 1, 0, 0)
    assert (summary.moved, summary.imported, summary.forgotten) == (1, 1, 1)
    assert {c.address: c.previous_address for c in summary.changes if c.previous_address} == {
        "aws_sqs_queue.renamed": "aws_sqs_queue.old",
        "aws_sqs_queue.moved_and_changed": "aws_sqs_queue.before",
    }
    assert (
        summary.has_changes and not summary.blocked
    )  # forgetting a bucket leaves it and its data alone
    assert exit_code([summary]) == 2


# -- stateful resources and blocking ---------------------------------------------


@pytest.mark.parametrize("type_", sorted(STATEFUL))
@pytest.mark.parametrize("actions", [["delete"], ["delete", "create"], ["create", "delete"]])
def test_replacing_or_destroying_what_holds_data_is_flagged(type_, actions):
    summary = both(show(entry(f"{type_}.this", actions)), production=True, stack="production")
    (change,) = summary.flagged
    assert change.stateful == STATEFUL[type_]
    assert summary.blocked
    assert exit_code([summary]) == 1


@pytest.mark.parametrize(
    "type_", ["aws_s3_bucket", "aws_ssm_parameter", "aws_rds_cluster", "aws_kms_key"]
)
@pytest.mark.parametrize("actions", [["create"], ["update"], ["no-op"], ["forget"]])
def test_creating_or_updating_what_holds_data_is_not_flagged(type_, actions):
    summary = both(show(entry(f"{type_}.this", actions)), production=True)
    assert summary.flagged == ()
    assert not summary.blocked


@pytest.mark.parametrize(
    "type_", ["aws_sqs_queue", "aws_iam_role", "aws_s3_bucket_policy", "aws_lb", "aws_kms_alias"]
)
def test_destroying_what_holds_no_data_is_not_flagged(type_):
    summary = both(
        show(entry(f"{type_}.this", ["delete"]), entry(f"{type_}.that", ["delete", "create"])),
        production=True,
    )
    assert summary.destroy == 1 and summary.replace == 1
    assert summary.flagged == ()
    assert not summary.blocked
    assert exit_code([summary]) == 2


def test_parameters_are_stateful_because_their_values_are_set_out_of_band():
    summary = both(
        show(entry('module.parameters.aws_ssm_parameter.this["api/db"]', ["delete", "create"])),
        production=True,
    )
    assert "out of band" in summary.flagged[0].stateful
    assert summary.blocked


def test_only_production_is_blocked():
    plan = show(entry("aws_rds_cluster.this", ["delete"]))
    dev = both(plan, production=False)
    assert dev.flagged and not dev.blocked
    assert exit_code([dev]) == 2
    production = both(plan, production=True, stack="production")
    assert exit_code([dev, production]) == 1


def test_a_state_bucket_and_its_parts_are_flagged_and_block_any_stack():
    state = "levels-tfstate-nonprod"
    plan = show(
        entry("aws_s3_bucket.state", ["delete"], before={"bucket": state}),
        entry("aws_s3_bucket_versioning.state", ["delete"], before={"bucket": state}),
        entry("aws_s3_bucket_policy.assets", ["delete"], before={"bucket": "levels-dev-assets"}),
        entry("aws_s3_bucket_versioning.state_kept", ["update"], before={"bucket": state}),
    )
    summary = summarize("bootstrap", plan, production=False, state_buckets={state})
    assert [c.address for c in summary.flagged] == [
        "aws_s3_bucket.state",
        "aws_s3_bucket_versioning.state",
    ]
    assert all(c.state_bucket and "state" in c.stateful for c in summary.flagged)
    assert summary.blocked
    # without the names, a bucket is still a bucket, but its parts are not recognised
    plain = summarize("bootstrap", plan, production=False)
    assert [c.address for c in plain.flagged] == ["aws_s3_bucket.state"]
    assert not plain.blocked
    assert plain == from_json_lines("bootstrap", stream(plan), production=False)


# -- drift, outputs, exit codes ----------------------------------------------------


def test_drift_is_reported_with_its_action():
    plan = show(
        refresh_only=True,
        drift=[
            entry("aws_sqs_queue.jobs", ["update"]),
            entry("aws_ssm_parameter.flag", ["delete"]),
            entry("aws_sqs_queue.new", ["no-op"], previous="aws_sqs_queue.old"),
        ],
    )
    summary = both(plan, refresh_only=True)
    assert summary.drift == (
        Drift("aws_sqs_queue.jobs", "update", "aws_sqs_queue"),
        Drift("aws_sqs_queue.new", "move", "aws_sqs_queue"),
        Drift("aws_ssm_parameter.flag", "delete", "aws_ssm_parameter"),
    )
    assert summary.changes == () and summary.flagged == ()
    assert summary.has_changes
    assert exit_code([summary]) == 2


def test_drift_in_a_normal_plan_is_shown_but_is_not_a_change():
    summary = both(
        show(
            entry("aws_sqs_queue.jobs", ["no-op"]), drift=[entry("aws_sqs_queue.jobs", ["update"])]
        )
    )
    assert summary.drift and not summary.has_changes
    assert exit_code([summary]) == 0


def test_an_output_change_alone_is_a_change():
    summary = both(
        show(entry("aws_sqs_queue.jobs", ["no-op"]), outputs={"url": ["update"], "same": ["no-op"]})
    )
    assert summary.outputs == ("url",)
    assert exit_code([summary]) == 2


def test_exit_codes():
    nothing = StackSummary("dev", False)
    changed = both(show(entry("aws_sqs_queue.jobs", ["create"])))
    blocked = both(show(entry("aws_kms_key.data", ["delete"])), production=True, stack="production")
    assert exit_code([]) == 0
    assert exit_code([nothing]) == 0
    assert exit_code([nothing, changed]) == 2
    assert exit_code([changed, blocked]) == 1


@pytest.mark.parametrize(
    ("status", "code"), [(Status.FAILED, 1), (Status.SKIPPED, 1), (Status.WAITING, 2)]
)
def test_a_stack_without_a_plan_sets_the_exit_code_by_why(status, code):
    """Waiting for another stack's first apply is work left, not an error;
    failing or being skipped is."""
    nothing = StackSummary("prod-shared", False)
    assert exit_code([nothing, NotPlanned("live", status, "why", after=("prod-shared",))]) == code


# -- refusals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"format_version": "2.0", "resource_changes": []}, "format_version 2.0"),
        ({"resource_changes": []}, r"format_version \(none\)"),
        (show(entry("aws_sqs_queue.jobs", ["teleport"])), "unknown actions"),
        ({**show(), "errored": True}, "errored"),
        (
            show(entry("aws_sqs_queue.jobs", ["create"]))
            | {"resource_changes": [{"address": "x"}]},
            "without",
        ),
        (["not", "a", "plan"], "JSON object"),
    ],
)
def test_a_plan_it_cannot_read_with_confidence_is_refused(plan, message):
    with pytest.raises(PlanError, match=message) as caught:
        summarize("dev", plan, production=False)
    assert isinstance(caught.value, LevelsError)


def _lines(*messages: dict) -> list[str]:
    return [json.dumps(m) for m in messages]


NO_CHANGES: dict[str, int | str] = {
    "add": 0,
    "change": 0,
    "import": 0,
    "remove": 0,
    "operation": "plan",
}
SUMMARY_NONE = {"type": "change_summary", "changes": NO_CHANGES}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (_lines({"type": "version", "ui": "1.2"}), "no change_summary"),
        (_lines({"type": "version", "ui": "2.0"}, SUMMARY_NONE), "UI version 2.0"),
        (["Terraform will perform the following actions:"], "not JSON"),
        (
            _lines(
                {
                    "@level": "error",
                    "type": "diagnostic",
                    "diagnostic": {"severity": "error", "summary": "Invalid reference"},
                }
            ),
            "Invalid reference",
        ),
        (
            _lines(
                {"type": "version", "ui": "1.2"},
                {**SUMMARY_NONE, "changes": {**NO_CHANGES, "remove": 1}},
            ),
            "disagrees",
        ),
        (_lines({"type": "change_summary", "changes": {"add": 1, "operation": "apply"}}), "apply"),
        (
            stream(show(entry("aws_sqs_queue.a", ["update"])))[1:2] + _lines(SUMMARY_NONE),
            "disagrees",
        ),
    ],
)
def test_a_stream_it_cannot_read_with_confidence_is_refused(lines, message):
    with pytest.raises(PlanError, match=message):
        from_json_lines("dev", lines, production=False)


def test_events_are_read_as_their_lines_are():
    """What terraform.py hands over, decoded already: the same summary, and
    the same refusals, naming the message by its place in the stream."""
    plan = show(entry("aws_sqs_queue.jobs", ["create"]))
    events = [json.loads(line) for line in stream(plan)]
    assert from_events("dev", events, production=False) == summarize("dev", plan, production=False)
    with pytest.raises(PlanError, match="no change_summary"):
        from_events("dev", events[:-1], production=False)
    with pytest.raises(PlanError, match=r"line 2 of the plan stream is not a message: \[1, 2\]"):
        from_events("dev", [events[0], [1, 2], *events[1:]], production=False)  # type: ignore[list-item]
    broken = {"type": "planned_change", "change": {"action": "create"}}
    with pytest.raises(
        PlanError, match="line 2: a planned_change message without a known 'resource'"
    ):
        from_events("dev", [events[0], broken, *events[1:]], production=False)


def test_a_create_and_forget_replace_is_a_replace_terraform_does_not_count():
    """`lifecycle { destroy = false }`: the new object is created and the old one left
    alone. The stream calls it a replace like any other, so both parsers do, and its
    change_summary counts it as nothing."""
    plan = show(entry("aws_sqs_queue.jobs", ["create", "forget"]))
    lines = stream(plan)
    assert json.loads(lines[-1])["changes"]["add"] == 1  # what the helper counts
    lines[-1] = json.dumps(SUMMARY_NONE)  # what Terraform counts
    summary = from_json_lines("dev", lines, production=False)
    assert summary == summarize("dev", plan, production=False)
    assert summary.replace == 1


def test_a_refresh_only_plan_with_changes_is_refused():
    plan = show(entry("aws_sqs_queue.jobs", ["create"]))
    with pytest.raises(PlanError, match="refresh-only"):
        summarize("dev", plan, production=False, refresh_only=True)
    with pytest.raises(PlanError, match="refresh-only"):
        from_json_lines("dev", stream(plan), production=False, refresh_only=True)


def test_the_stream_may_come_as_one_text_or_as_bytes():
    plan = show(entry("aws_sqs_queue.jobs", ["create"]))
    expected = summarize("dev", plan, production=False)
    assert from_json_lines("dev", "\n".join(stream(plan)) + "\n\n", production=False) == expected
    assert (
        from_json_lines("dev", [line.encode() + b"\n" for line in stream(plan)], production=False)
        == expected
    )


# -- rendering -------------------------------------------------------------------


def _mixed() -> list[StackSummary]:
    production = both(
        show(
            entry(
                "aws_s3_bucket.assets", ["delete", "create"], reason="replace_because_cannot_update"
            ),
            entry("aws_sqs_queue.jobs", ["delete"], reason="delete_because_no_resource_config"),
            entry("aws_ssm_parameter.flag", ["update"]),
            entry("aws_sqs_queue.new", ["create"]),
        ),
        production=True,
        stack="production",
    )
    dev = both(
        show(
            entry("aws_sqs_queue.jobs", ["update"]), drift=[entry("aws_sqs_queue.jobs", ["update"])]
        ),
        stack="dev",
    )
    quiet = both(show(entry("aws_sqs_queue.jobs", ["no-op"])), stack="qa")
    return [production, dev, quiet]


def test_text_is_a_table_with_each_replace_and_destroy_under_its_stack():
    out = text(_mixed())
    lines = out.splitlines()
    assert lines[0].split() == ["stack", "add", "change", "replace", "destroy", "drift"]
    assert lines[1].split()[:6] == ["production", "1", "1", "1", "1", "0"] and "BLOCKED" in lines[1]
    assert lines[2] == "  replace  aws_s3_bucket.assets  !! " + STATEFUL["aws_s3_bucket"]
    assert lines[3] == "  destroy  aws_sqs_queue.jobs"
    assert lines[4].split()[:6] == ["dev", "0", "1", "0", "0", "1"]
    assert lines[5].split() == ["drift", "update", "aws_sqs_queue.jobs"]
    assert lines[6].split() == ["qa", "0", "0", "0", "0", "0", "no", "changes"]
    assert lines[7].split() == ["total", "1", "2", "1", "1", "1"]
    assert lines[8].startswith(
        "BLOCKED: production would replace or destroy 1 resource that holds data"
    )

    # the numbers end where their headings end
    def ends(line: str) -> list[int]:
        return [match.end() for match in re.finditer(r"\S+", line)][1:6]

    assert ends(lines[0]) == ends(lines[1]) == ends(lines[4]) == ends(lines[6]) == ends(lines[7])


def test_text_of_nothing():
    out = text([StackSummary("dev", False)])
    assert out.splitlines() == [
        "stack  add  change  replace  destroy",
        "dev      0       0        0        0  no changes",
        "total    0       0        0        0",
    ]


def test_markdown_of_a_small_plan_shows_everything():
    out = markdown(_mixed())
    assert "⛔ **Blocked**" in out
    assert "| stack | add | change | replace | destroy | drift | |" in out
    assert "| production | 1 | 1 | 1 | 1 | 0 | ⛔ blocked, ⚠️ 1 holding data |" in out
    assert "| **total** | **1** | **2** | **1** | **1** | **1** | |" in out
    assert (
        "- production: `aws_s3_bucket.assets` **replace** (a changed argument forces replacement) — ⚠️"
        in out
    )
    assert "- `aws_sqs_queue.jobs` **destroy** (no longer in the configuration)" in out
    assert "<details><summary>dev: 1 changed outside Terraform</summary>" in out
    assert "not shown" not in out


def test_markdown_without_changes_says_so():
    assert "No changes." in markdown([StackSummary("dev", False)])


def _huge(stacks: int = 3, per_stack: int = 3000) -> list[StackSummary]:
    """Thousands of replaces and destroys, half of them of buckets, with long addresses."""
    summaries = []
    for n in range(stacks):
        changes = []
        for i in range(per_stack):
            type_ = "aws_s3_bucket" if i % 2 else "aws_sqs_queue"
            action = "replace" if i % 3 else "delete"
            changes.append(
                Change(
                    f'module.environment["e{n}"].module.thing["{i:05d}"].{type_}.this',
                    action,
                    type_,
                    stateful=STATEFUL.get(type_, "") if type_ == "aws_s3_bucket" else "",
                )
            )
        drift = tuple(
            Drift(f"aws_sqs_queue.q{i:05d}", "update", "aws_sqs_queue") for i in range(500)
        )
        summaries.append(
            StackSummary(
                f"stack-{n}",
                production=n == 0,
                changes=tuple(sorted(changes)),
                drift=drift,
                outputs=("a", "b"),
            )
        )
    return summaries


def test_markdown_of_thousands_of_changes_stays_within_the_limit():
    summaries = _huge()
    out = markdown(summaries)
    assert len(out) <= 60000
    # the table and the total survive whole
    for s in summaries:
        assert f"| {s.stack} | 0 | 0 | {s.replace} | {s.destroy} | 500 |" in out
    assert "| **total** |" in out
    # the flagged items come first and are not folded away
    flagged_at = out.index("**Replaced or destroyed, and holding data:**")
    assert out.index("- stack-0: `module.environment") > flagged_at
    assert "<details>" not in out[:flagged_at]
    # every item is either shown or counted as not shown, once (a change that
    # holds data is listed with those, not again under its stack)
    items = sum(len(s.destructive) + len(s.drift) + len(s.outputs) for s in summaries)
    shown = sum(
        1 for line in out.splitlines() if line.startswith("- ") and "more not shown" not in line
    )
    hidden = [int(line.split()[2]) for line in out.splitlines() if line.startswith("- … ")]
    trailer = [int(line.split()[1]) for line in out.splitlines() if line.startswith("… ")]
    assert hidden, "a long list says how many it leaves out"
    assert shown + sum(hidden) + sum(trailer) == items
    # every <details> that is opened is closed
    assert out.count("<details>") == out.count("</details>")


@pytest.mark.parametrize("limit", [GITHUB_COMMENT_LIMIT, 60000, 20000, 4000, 1000, 300, 80, 1])
def test_markdown_never_exceeds_the_limit(limit):
    for summaries in (
        _huge(),
        _huge(1, 40),
        _mixed(),
        [StackSummary(f"s{i}", True) for i in range(3000)],
    ):
        out = markdown(summaries, limit=limit)
        assert len(out) <= limit
        if limit >= 1000:
            assert out.count("<details>") == out.count("</details>")


def _shown_and_counted(out: str) -> tuple[int, int, int]:
    """(table rows and list items shown, counted in a list's '- … N more', counted in the closing line)."""
    lines = out.splitlines()
    shown = [line for line in lines if line.startswith("- ") and not line.startswith("- … ")]
    shown += [
        line
        for line in lines
        if line.startswith("| ") and not line.startswith(("| stack |", "| --- |"))
    ]
    in_lists = sum(int(line.split()[2]) for line in lines if line.startswith("- … "))
    at_end = sum(int(line.split()[1]) for line in lines if line.startswith("… "))
    return len(shown), in_lists, at_end


@pytest.mark.parametrize("limit", [GITHUB_COMMENT_LIMIT, 20000, 4000, 1500])
def test_markdown_counts_each_thing_left_out_once(limit):
    """Shown plus counted is exactly what there is: every stack's row, the
    total, each stack without a plan, and each change, drift and output once,
    whatever the limit cuts; and no change is listed twice."""
    summaries = _huge(3, 400)
    not_planned = [
        NotPlanned(f"env-{i}", Status.FAILED, "boom " * 40, file="modules/x/main.tf", line=i + 1)
        for i in range(30)
    ]
    items: list[Item] = [*summaries, *not_planned]
    out = markdown(items, limit=limit)
    things = (
        len(items)
        + 1
        + len(not_planned)
        + sum(len(s.destructive) + len(s.drift) + len(s.outputs) for s in summaries)
    )
    shown, in_lists, at_end = _shown_and_counted(out)
    assert shown + in_lists + at_end == things, (shown, in_lists, at_end)
    listed = re.findall(r"`(module\.environment[^`]+)`", out)
    assert len(listed) == len(set(listed)), "a change is listed twice"
    if limit < GITHUB_COMMENT_LIMIT:
        assert in_lists or at_end


def test_markdown_of_a_change_holding_data_lists_it_once():
    """A replace that loses data is listed with what holds data; its stack's own
    list has only the others, and says so."""
    production = _mixed()[0]
    out = markdown([production])
    assert out.count("aws_s3_bucket.assets") == 1
    assert "production: 0 to replace, 1 to destroy (besides those holding data)" in out
    assert out.count("aws_sqs_queue.jobs") == 1


def _every_status() -> list:
    """A stack of each status: no changes, changes, failed (with where), waiting, skipped."""
    return [
        StackSummary("prod-shared", True),
        both(show(entry("aws_sqs_queue.jobs", ["create"])), stack="lab-shared"),
        NotPlanned(
            "live",
            Status.FAILED,
            "Resource precondition failed: image worker has no AMI yet: run levels-tf bake worker",
            file="modules/service/main.tf",
            line=91,
        ),
        NotPlanned(
            "trial",
            Status.WAITING,
            "waits for the first apply of lab-shared",
            after=("lab-shared",),
        ),
        NotPlanned("qa", Status.SKIPPED, "lab-shared did not succeed"),
    ]


def test_text_has_every_stack_with_its_status():
    lines = text(_every_status()).splitlines()
    rows = {line.split()[0]: line for line in lines if not line.startswith(" ")}
    assert rows["prod-shared"].split()[1:] == ["0", "0", "0", "0", "no", "changes"]
    assert rows["lab-shared"].split()[1:] == ["1", "0", "0", "0"]
    assert rows["live"].split()[1:] == ["-", "-", "-", "-", "FAILED"]
    assert rows["trial"].split()[1:] == ["-", "-", "-", "-", "waiting"]
    assert rows["qa"].split()[1:] == ["-", "-", "-", "-", "skipped"]
    under = {
        lines[i - 1].split()[0]: line.strip()
        for i, line in enumerate(lines)
        if line.startswith("  ")
    }
    assert (
        under["live"]
        == "modules/service/main.tf:91: Resource precondition failed: image worker has no AMI yet: run levels-tf bake worker"
    )
    assert under["trial"] == "waits for the first apply of lab-shared"
    assert under["qa"] == "skipped because lab-shared did not succeed"
    assert rows["total"].split()[1:] == ["1", "0", "0", "0"]
    assert lines[-1] == (
        "next: `levels-tf apply lab-shared`, then `levels-tf plan trial`; "
        "or `levels-tf apply --all --waves` plans and applies wave by wave"
    )


def test_markdown_has_every_stack_with_its_status():
    out = markdown(_every_status())
    assert "| prod-shared | 0 | 0 | 0 | 0 | no changes |" in out
    assert "| lab-shared | 1 | 0 | 0 | 0 |  |" in out
    assert "| live | – | – | – | – | ❌ failed |" in out
    assert "| trial | – | – | – | – | ⏳ waiting |" in out
    assert "| qa | – | – | – | – | ⏭️ skipped |" in out
    assert "❌ **Failed**: live (not planned; see below)." in out
    assert "⏭️ **Skipped**: qa (not planned; see below)." in out
    assert (
        "- ❌ **live** failed at `modules/service/main.tf:91`: Resource precondition failed: image worker has no AMI yet"
        in out
    )
    assert "- ⏳ **trial** waits for the first apply of lab-shared" in out
    assert "- ⏭️ **qa** skipped because lab-shared did not succeed" in out
    assert "⏳ **Next**: `levels-tf apply lab-shared`, then `levels-tf plan trial`" in out
    assert "No changes." not in out


def test_markdown_never_says_no_changes_when_a_stack_has_no_plan():
    for status in Status.FAILED, Status.SKIPPED, Status.WAITING:
        out = markdown(
            [
                StackSummary("prod-shared", True),
                NotPlanned("live", status, "why", after=("prod-shared",)),
            ]
        )
        assert "No changes." not in out


def test_json_has_every_stack_with_its_status():
    data = as_json(_every_status())
    assert json.loads(json.dumps(data)) == data
    assert [(s["stack"], s["status"]) for s in data["stacks"]] == [
        ("prod-shared", "no_changes"),
        ("lab-shared", "changes"),
        ("live", "failed"),
        ("trial", "waiting"),
        ("qa", "skipped"),
    ]
    live = data["stacks"][2]
    assert (live["file"], live["line"]) == ("modules/service/main.tf", 91)
    assert live["reason"].startswith("Resource precondition failed: ")
    assert data["stacks"][3]["after"] == ["lab-shared"]
    assert data["exit_code"] == 1
    assert data["next"].startswith("next: `levels-tf apply lab-shared`")
    assert as_json([StackSummary("dev", False)])["next"] is None


def test_the_next_step_plans_a_stack_waited_for_that_has_no_plan_yet():
    waiting = NotPlanned("live", Status.WAITING, "waits", after=("prod-shared",))
    assert next_step([waiting]).startswith(
        "next: `levels-tf plan prod-shared`, then `levels-tf apply prod-shared`, then `levels-tf plan live`"
    )
    assert next_step([StackSummary("prod-shared", True), waiting]).startswith(
        "next: `levels-tf apply prod-shared`, then `levels-tf plan live`"
    )
    assert next_step([StackSummary("prod-shared", True)]) == ""


def test_a_long_error_is_cut_in_a_comment_not_in_json():
    failed = NotPlanned("live", Status.FAILED, "x" * 5000, file="stacks/live/main.tf", line=3)
    assert len(markdown([failed])) < 2000
    assert as_json([failed])["stacks"][0]["reason"] == "x" * 5000


def test_markdown_refuses_a_limit_github_would_not_take():
    with pytest.raises(ValueError):
        markdown([], limit=GITHUB_COMMENT_LIMIT + 1)


def test_as_json_is_plain_data():
    data = as_json(_mixed())
    assert json.loads(json.dumps(data)) == data
    production = data["stacks"][0]
    assert {
        k: production[k]
        for k in ("stack", "add", "change", "replace", "destroy", "blocked", "has_changes")
    } == {
        "stack": "production",
        "add": 1,
        "change": 1,
        "replace": 1,
        "destroy": 1,
        "blocked": True,
        "has_changes": True,
    }
    assert production["flagged"] == ["aws_s3_bucket.assets"]
    assert production["changes"][0] == {
        "address": "aws_s3_bucket.assets",
        "action": "replace",
        "type": "aws_s3_bucket",
        "reason": "cannot_update",
        "stateful": STATEFUL["aws_s3_bucket"],
    }
    assert data["stacks"][1]["drift"] == [
        {"address": "aws_sqs_queue.jobs", "action": "update", "type": "aws_sqs_queue"}
    ]
    assert data["total"] == {"add": 1, "change": 2, "replace": 1, "destroy": 1, "drift": 1}
    assert (data["blocked"], data["exit_code"]) == (True, 1)


# -- real plans: terraform, the aws provider and moto ---------------------------------


class _Names(TypedDict):
    """The names of what the real plans create, unique to one run."""

    bucket: str
    queue: str
    parameter: str


def _config(
    moto: str,
    *,
    bucket: str,
    queue: str | None,
    parameter: str,
    value: str,
    queue_url: str = "",
    read_back: bool = False,
) -> str:
    text_ = (
        """terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.100" }
  }
}

"""
        + emulator_provider(moto, ("s3", "sqs", "ssm", "sts"))
        + f'''
resource "aws_s3_bucket" "assets" {{
  bucket = "{bucket}"
}}

resource "aws_ssm_parameter" "flag" {{
  name  = "{parameter}"
  type  = "String"
  value = "{value}"
}}

output "bucket" {{
  value = aws_s3_bucket.assets.bucket
}}
'''
    )
    if queue:
        text_ += f'''
resource "aws_sqs_queue" "jobs" {{
  name = "{queue}"
}}
'''
    if queue_url:
        text_ += f'''
import {{
  to = aws_sqs_queue.jobs
  id = "{queue_url}"
}}
'''
    if read_back:  # a data source read that waits for the apply: "read" in both outputs, no change
        text_ += """
data "aws_ssm_parameter" "flag" {
  name = aws_ssm_parameter.flag.name
}
"""
    return text_


def _terraform(env: dict, folder: Path, *args: str, ok=(0,)) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["terraform", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode in ok, (
        f"terraform {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@contextlib.contextmanager
def _moto_only():
    """boto3 reaches moto and nothing else: no profile, no proxy."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("AWS_") or n.lower().endswith("_proxy")]:
            patch.delenv(name)
        patch.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield


@pytest.fixture(scope="module")
def real(tmp_path_factory, terraform_env, moto_server) -> SimpleNamespace:
    """One applied configuration, then a plan that changes it and a refresh-only plan
    after changes made behind Terraform's back, each captured both ways."""
    import boto3

    folder = tmp_path_factory.mktemp("plan-summary")
    env = {k: v for k, v in terraform_env.items() if not k.startswith("AWS_")}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", TF_INPUT="0")
    suffix = uuid.uuid4().hex[:8]
    names: _Names = {
        "bucket": f"ps-assets-{suffix}",
        "queue": f"ps-jobs-{suffix}",
        "parameter": f"/ps/{suffix}/flag",
    }

    with _moto_only():
        options = {
            "endpoint_url": moto_server,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        sqs, ssm = boto3.client("sqs", **options), boto3.client("ssm", **options)
        # The provider waits 25 s after creating or changing a queue (six checks 5 s apart
        # that its attributes settled); importing one made here, as the provider would
        # make it, costs no wait.
        queue_url = sqs.create_queue(
            QueueName=names["queue"], Attributes={"MaximumMessageSize": "262144"}
        )["QueueUrl"]

    config = folder / "main.tf"
    config.write_text(_config(moto_server, **names, value="one", queue_url=queue_url))
    _terraform(env, folder, "init", "-no-color")
    _terraform(env, folder, "apply", "-auto-approve", "-no-color")

    # the bucket's name changes (a replace), the parameter's value (an update), the queue goes
    config.write_text(
        _config(
            moto_server,
            bucket=names["bucket"] + "-b",
            queue=None,
            parameter=names["parameter"],
            value="two",
            read_back=True,
        )
    )
    plan = _terraform(env, folder, "plan", "-out", "p", "-json", "-detailed-exitcode", ok=(2,))
    shown = _terraform(env, folder, "show", "-json", "p")

    # behind Terraform's back: the queue's visibility timeout changes, the parameter goes
    with _moto_only():
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "99"})
        ssm.delete_parameter(Name=names["parameter"])
    config.write_text(_config(moto_server, **names, value="one"))
    refresh = _terraform(
        env, folder, "plan", "-refresh-only", "-out", "r", "-json", "-detailed-exitcode", ok=(2,)
    )
    refresh_shown = _terraform(env, folder, "show", "-json", "r")
    return SimpleNamespace(
        plan_lines=plan.stdout.splitlines(),
        plan_code=plan.returncode,
        plan=json.loads(shown.stdout),
        refresh_lines=refresh.stdout.splitlines(),
        refresh_code=refresh.returncode,
        refresh=json.loads(refresh_shown.stdout),
    )


@pytest.mark.terraform
@pytest.mark.slow
def test_a_real_plan_reads_the_same_both_ways(real):
    from_show = summarize("production", real.plan, production=True)
    from_stream = from_json_lines("production", real.plan_lines, production=True)
    assert from_show == from_stream
    assert counts(from_show) == (0, 1, 1, 1)
    assert [(c.address, c.action, c.reason) for c in from_show.changes] == [
        ("aws_s3_bucket.assets", "replace", "cannot_update"),
        ("aws_sqs_queue.jobs", "delete", "delete_because_no_resource_config"),
        ("aws_ssm_parameter.flag", "update", ""),
    ]
    assert [c.address for c in from_show.flagged] == ["aws_s3_bucket.assets"]
    assert from_show.outputs == ("bucket",)
    assert from_show.blocked
    # the deferred read of the data source is in both outputs, and is no change
    assert any('"action":"read"' in line for line in real.plan_lines)
    assert any(
        c["mode"] == "data" and c["change"]["actions"] == ["read"]
        for c in real.plan["resource_changes"]
    )
    # outside production the same plan is allowed, and the exit code is terraform's own
    dev = from_json_lines("dev", real.plan_lines, production=False)
    assert not dev.blocked and dev.flagged
    assert exit_code([dev]) == real.plan_code == 2
    assert exit_code([from_show]) == 1


@pytest.mark.terraform
@pytest.mark.slow
def test_a_real_refresh_only_plan_shows_the_drift(real):
    from_show = summarize("dev", real.refresh, production=False, refresh_only=True)
    from_stream = from_json_lines("dev", real.refresh_lines, production=False, refresh_only=True)
    assert from_show == from_stream
    assert from_show.changes == ()
    drift = {(d.address, d.action) for d in from_show.drift}
    assert {("aws_sqs_queue.jobs", "update"), ("aws_ssm_parameter.flag", "delete")} <= drift
    assert exit_code([from_show]) == real.refresh_code == 2
    assert "aws_ssm_parameter.flag" in text([from_show])
    assert "No drift." not in markdown([from_show])


def test_a_blocked_stack_is_named_in_the_command_that_keeps_its_plan_and_comes_first_in_the_next_step():
    blocked = both(
        show(entry("aws_kms_key.data", ["delete"])), production=True, stack="prod-shared"
    )
    assert blocked.blocked
    waiting = NotPlanned("live", Status.WAITING, "waits for prod-shared", after=("prod-shared",))
    assert "`levels-tf plan --allow-destroy prod-shared`" in text([blocked, waiting])
    assert next_step([blocked, waiting]).startswith(
        "next: `levels-tf plan --allow-destroy prod-shared`, then `levels-tf apply prod-shared`, then `levels-tf plan live`"
    )


def test_repeated_failures_name_the_first_stack_with_the_same_error():
    from levels_tf.plan_summary import NotPlanned, Status, repeated_failures

    items = [
        NotPlanned("a", Status.FAILED, "no credentials"),
        NotPlanned("b", Status.FAILED, "no credentials"),
        NotPlanned("c", Status.FAILED, "no credentials", file="stacks/c/x.tf", line=3),
        NotPlanned("d", Status.SKIPPED, "no credentials"),
        NotPlanned("e", Status.FAILED, "other"),
        NotPlanned("f", Status.FAILED, "no credentials"),
    ]
    # Same words in another file or line are another error; a skip is not a failure.
    assert repeated_failures(items) == {"b": "a", "f": "a"}
