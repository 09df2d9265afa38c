"""The pure part of Aurora operations (levels_tf/aurora.py): the resize plan,
its refusals and its record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from levels_tf import aurora

OLD = "db.r6g.large"
NEW = "db.r6g.xlarge"


def _member(name: str, writer: bool = False, status: str = "available", cls: str = OLD):
    return aurora.Member(name, cls, status, writer, 0 if writer else 1, "us-east-1a", False)


CLUSTER = aurora.Cluster(
    "p-g", "g", ("e",), ("p-g-instance-1", "p-g-instance-2"), "aurora-mysql", "v", OLD, False, "e"
)


def test_a_member_not_available_is_refused():
    found = [_member("p-g-instance-1", True), _member("p-g-instance-2", status="modifying")]
    with pytest.raises(aurora.UsageError, match=r"p-g-instance-2 \(modifying\)"):
        aurora.resize_plan(CLUSTER, found, NEW, "p-g-resize-1")


def test_a_member_terraform_does_not_know_is_refused():
    found = [_member("p-g-instance-1", True), _member("p-g-by-hand")]
    with pytest.raises(aurora.UsageError, match="p-g-by-hand"):
        aurora.resize_plan(CLUSTER, found, NEW, "p-g-resize-1")


def test_nothing_to_do_when_every_member_has_the_class():
    found = [_member("p-g-instance-1", True, cls=NEW), _member("p-g-instance-2", cls=NEW)]
    assert aurora.resize_plan(CLUSTER, found, NEW, "p-g-resize-1").steps == []


def test_a_plan_survives_its_record():
    found = [_member("p-g-instance-2"), _member("p-g-instance-1", True)]
    plan = aurora.resize_plan(CLUSTER, found, NEW, "p-g-resize-1")
    plan.steps[0].done = True
    again = aurora.ResizePlan.from_json(json.loads(json.dumps(plan.as_json())))
    assert again == plan
    assert again.pending() == aurora.Step("failover", "p-g-resize-1")
    assert plan.writer == "p-g-instance-1" and plan.zone == "us-east-1a"


def test_reference_path_of_record(tmp_path: Path):
    from levels_tf import db_resize

    assert (
        db_resize.state_path(tmp_path / "infra.yaml", "c")
        == tmp_path / ".levels-tf" / "db-resize-c.json"
    )
