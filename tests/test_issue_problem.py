"""loader.issue_problem: what typed.load finds wrong, as a Problem at its line."""

from __future__ import annotations

import pytest

from levels_tf import loader, typed
from levels_tf.errors import ConfigError
from levels_tf.image_lock import parse_lock
from levels_tf.validation import load_config

TEXT = "name: app\nsizes:\n  small: 1\nextra: 2\n"


def document() -> loader.Document:
    return loader.parse(TEXT, "f.yaml")


def test_a_bad_value_points_at_the_value():
    problem = loader.issue_problem(document(), typed.Issue(("sizes", "small"), "too small"))
    assert problem.format() == "f.yaml:3:10: sizes.small: too small"


@pytest.mark.parametrize("kind", ["unknown", "missing"])
def test_an_unknown_or_missing_key_points_at_the_key(kind):
    problem = loader.issue_problem(document(), typed.Issue(("extra",), "no such key", kind))
    assert (problem.line, problem.column, problem.message) == (4, 1, "no such key")


def test_a_bad_key_says_so_and_points_at_the_key():
    problem = loader.issue_problem(document(), typed.Issue(("sizes", "small"), "too long", "key"))
    assert (problem.line, problem.column, problem.message) == (3, 3, "invalid key: too long")


@pytest.mark.parametrize(
    "found", ["the number 1.1", "the boolean true", "a date value", "a datetime value"]
)
def test_a_scalar_where_a_string_belongs_is_to_be_quoted(found):
    issue = typed.Issue(("name",), f"expected a string, found {found}")
    assert loader.issue_problem(document(), issue).message.endswith(f"{found}; quote it")


@pytest.mark.parametrize("found", ["a list", "a mapping", "nothing (null)"])
def test_quoting_is_not_offered_where_it_would_not_help(found):
    # The image lock said "quote it" for a list too; quoting a list is no fix.
    issue = typed.Issue(("name",), f"expected a string, found {found}")
    assert loader.issue_problem(document(), issue).message == f"expected a string, found {found}"


def test_infra_yaml_and_the_image_lock_word_the_same_issue_alike(tmp_path):
    # infra.yaml gave no hint where the image lock did; both give it now.
    config = tmp_path / "infra.yaml"
    config.write_text("project: 12\nregion: us-east-1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as infra:
        load_config(config)
    lock = "images:\n  api:\n    us-east-1:\n      ami: 12\n"
    with pytest.raises(ConfigError) as image_lock:
        parse_lock(lock, "images.lock")
    wanted = "expected a string, found the number 12; quote it"
    assert wanted in [p.message for p in infra.value.problems if p.path == "project"]
    assert wanted in [p.message for p in image_lock.value.problems]
