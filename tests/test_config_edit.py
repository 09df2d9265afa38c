"""infra.yaml edits (levels_tf/config_edit.py): the one value changes, every other byte stays."""

from __future__ import annotations

import pytest

from levels_tf.config_edit import set_instance_class
from levels_tf.errors import UsageError

from .conftest import REFERENCE

GROUPS = {"production": ["production"], "nonprod": ["dev", "test", "qa"]}
OLD = "db.r6g.large"
NEW = "db.r6g.xlarge"


def _without(text: str, line: str) -> str:
    lines = text.splitlines(keepends=True)
    lines.remove(line)
    return "".join(lines)


def test_a_group_of_one_gets_one_line_in_its_environment():
    before = REFERENCE.read_text(encoding="utf-8")
    after = set_instance_class(before, "infra.yaml", GROUPS, "production", NEW, OLD)
    added = f"    database.instance_class: {NEW}\n"
    assert _without(after, added) == before
    assert after.index(added) == after.index("    database.backup_retention_days: 30\n") + len(
        "    database.backup_retention_days: 30\n"
    )


def test_a_shared_group_changes_the_top_level_and_pins_the_others():
    before = REFERENCE.read_text(encoding="utf-8")
    after = set_instance_class(before, "infra.yaml", GROUPS, "nonprod", NEW, OLD)
    pinned = f"    database.instance_class: {OLD}\n"
    restored = _without(after, pinned).replace(
        f"  instance_class: {NEW}\n", f"  instance_class: {OLD}\n"
    )
    assert restored == before
    assert after.count(f"instance_class: {NEW}") == 1


def test_a_nested_override_and_a_missing_environment():
    text = (
        "project: p  # the project\n"
        "database:\n"
        "  replicas: 1\n"
        "environments:\n"
        "  live:\n"
        "    database: {replicas: 2}   # more readers\n"
    )
    groups = {"prod": ["live"], "lab": ["trial"], "shared": ["a", "b"]}
    nested = set_instance_class(text, "infra.yaml", groups, "prod", NEW, OLD)
    # The edited line keeps its comment; its column follows the longer value.
    assert nested.splitlines()[:-1] == text.splitlines()[:-1]
    assert (
        nested.splitlines()[-1]
        == f"    database: {{replicas: 2, instance_class: {NEW}}} # more readers"
    )
    shared = set_instance_class(text, "infra.yaml", groups, "shared", NEW, OLD)
    assert shared.startswith("project: p  # the project\ndatabase:\n  replicas: 1\n")
    assert f"  instance_class: {NEW}\n" in shared
    assert f"{{replicas: 2, instance_class: {OLD}}}" in shared
    assert f"  trial:\n    database.instance_class: {OLD}\n" in shared


def test_a_file_whose_layout_would_change_is_refused():
    text = "project: p\ndatabase:\n    replicas:    1\n"
    with pytest.raises(UsageError, match="by hand"):
        set_instance_class(text, "x/infra.yaml", {"g": ["e"]}, "g", NEW, OLD)


def test_a_second_shared_group_is_refused():
    text = REFERENCE.read_text(encoding="utf-8")
    groups = {"a": ["a1", "a2"], "b": ["b1", "b2"]}
    with pytest.raises(UsageError, match="configures a and b alike"):
        set_instance_class(text, "infra.yaml", groups, "a", NEW, OLD)
