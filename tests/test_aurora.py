"""The pure part of Aurora operations (levels_tf/aurora.py): the resize plan,
its refusals and its record."""

from __future__ import annotations

import json
from datetime import datetime, timezone
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


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-05-01T12:00:00Z", datetime(2026, 5, 1, 12, tzinfo=timezone.utc)),
        ("2026-05-01T14:00:00+02:00", datetime(2026, 5, 1, 12, tzinfo=timezone.utc)),
        ("2026-05-01 12:00:00.5+00:00", datetime(2026, 5, 1, 12, 0, 0, 500000, timezone.utc)),
        ("2026-05-01T12:00:00", None),  # no zone: whose noon?
        ("2026-05-01", None),
        ("yesterday", None),
    ],
)
def test_a_restore_time_is_iso_8601_with_a_zone(text, expected):
    assert aurora.restore_time(text) == expected


def test_the_window_is_stated_from_its_first_whole_second():
    start = datetime(2026, 5, 1, 12, 0, 0, 870000, timezone.utc)
    assert aurora.stamp(aurora.first_whole_second(start)) == "2026-05-01T12:00:01Z"
    whole = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)
    assert aurora.first_whole_second(whole) == whole


def test_a_restored_cluster_carries_none_of_terraforms_tags():
    tags = aurora.restore_tags("p-g", datetime(2026, 5, 1, 12, tzinfo=timezone.utc))
    assert tags == {
        "ManagedBy": "levels-tf-restore",
        "RestoredFrom": "p-g",
        "RestoredTo": "2026-05-01T12:00:00Z",
    }
