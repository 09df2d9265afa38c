"""The typed-record layer and the JSON Schema it produces."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

import jsonschema
import pytest
import yaml

from levels_tf import typed
from levels_tf.schema import json_schema
from levels_tf.typed import Doc, Length, Pattern, Range, Record, record

from .conftest import REFERENCE


@record
class Inner(Record):
    size: Annotated[int, Range(1, 10)] = 5


@record
class Outer(Record):
    """An outer record."""

    name: Annotated[str, Pattern("[a-z]+", "lowercase only"), Doc("A name.")]
    kind: Literal["a", "b"] = "a"
    inner: Inner = Inner()
    items: Annotated[list[int], Length(1)] = dataclasses.field(default_factory=lambda: [1])
    ratio: float | None = None


def test_valid_data_becomes_records_with_defaults():
    value = typed.load(Outer, {"name": "x", "inner": {"size": 3}, "ratio": 2})
    assert value == Outer(name="x", inner=Inner(size=3), ratio=2.0)
    assert value.kind == "a" and isinstance(value.ratio, float)


def test_every_issue_is_reported_with_its_path():
    with pytest.raises(typed.Invalid) as caught:
        typed.load(
            Outer,
            {"name": "X", "kind": "c", "inner": {"size": 11, "sise": 1}, "items": [], "extra": 1},
        )
    issues = {(i.path, i.kind): i.message for i in caught.value.issues}
    assert issues[(("name",), "value")] == "'X': lowercase only"
    assert issues[(("kind",), "value")] == "expected one of a, b; found the string 'c'"
    assert issues[(("inner", "size"), "value")] == "11 is above the maximum 10"
    assert issues[(("inner", "sise"), "unknown")] == "unknown key; did you mean 'size'?"
    assert issues[(("items",), "value")] == "has 0 entries; at least 1 needed"
    assert issues[(("extra",), "unknown")].startswith(
        "unknown key; expected one of: inner, items, kind"
    )
    assert len(caught.value.issues) == 6


def test_missing_required_key():
    with pytest.raises(typed.Invalid) as caught:
        typed.load(Outer, {})
    assert [(i.path, i.kind) for i in caught.value.issues] == [(("name",), "missing")]


@pytest.mark.parametrize("value", ["1", True, 1.5, None, [1]])
def test_strict_integers(value):
    with pytest.raises(typed.Invalid):
        typed.load(Inner, {"size": value})


def test_reference_config_satisfies_the_generated_schema():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(REFERENCE.read_text()))


@pytest.mark.parametrize(
    "change",
    [
        {"colour": "red"},
        {"project": "Bad_Name"},
        {"vpc_groups": {"x": {"cidr": "10.0.0.0/16", "environments": [], "azs": 4}}},
        {"state": {"backend": "gcs"}},
    ],
)
def test_generated_schema_rejects_what_validate_rejects(change):
    document = yaml.safe_load(REFERENCE.read_text()) | change
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(json_schema()).validate(document)


def test_every_list_names_each_item_once():
    with pytest.raises(typed.Invalid) as info:
        typed.load(Outer, {"name": "x", "items": [1, 2, 1, 3, 2]})
    assert [(i.path, i.message) for i in info.value.issues] == [
        (("items", 2), "1 is already item 0"),
        (("items", 4), "2 is already item 1"),
    ]


def test_every_array_of_the_schema_says_its_items_are_unique():
    def arrays(node):
        if isinstance(node, dict):
            if node.get("type") == "array":
                yield node
            for value in node.values():
                yield from arrays(value)
        elif isinstance(node, list):
            for value in node:
                yield from arrays(value)

    found = list(arrays(json_schema()))
    assert len(found) > 10 and all(a.get("uniqueItems") is True for a in found)
