"""effective.py on its own: dotted overrides, deep merges, and where merged values point."""

from __future__ import annotations

import pytest

from levels_tf import loader
from levels_tf.effective import deep_merge, expand_dotted, merge
from levels_tf.errors import ConfigError

TEXT = """\
project: shop
services:
  api:
    scaling: {min: 2, max: 8}
    routes: [/api/*]
environments:
  dev:
    services.api.scaling: {min: 1}
    services.api.routes: [/v2/*]
"""


def _document(text: str = TEXT) -> loader.Document:
    return loader.parse(text, "infra.yaml")


def test_deep_merge_merges_mappings_and_replaces_lists_and_scalars():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    merged = deep_merge(base, {"a": {"c": [3]}, "e": 2})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # untouched
    assert deep_merge({"a": 1}, None) is None


def test_deep_merge_copies_what_it_takes_from_the_override():
    override = {"a": {"b": [1]}}
    merged = deep_merge({}, override)
    merged["a"]["b"].append(2)
    assert override == {"a": {"b": [1]}}


def test_dotted_keys_become_nested_mappings():
    expanded = expand_dotted(_document())
    assert expanded.data["environments"]["dev"] == {
        "services": {"api": {"scaling": {"min": 1}, "routes": ["/v2/*"]}}
    }


def test_merge_gives_the_environment_its_view_and_keeps_positions():
    document = expand_dotted(_document())
    dev = merge(document, "dev")
    assert dev.data["services"]["api"] == {"scaling": {"min": 1, "max": 8}, "routes": ["/v2/*"]}
    # The merged minimum points at the override's line, the untouched maximum at its own.
    assert dev.where(("services", "api", "scaling", "min"))[0] == 8
    assert dev.where(("services", "api", "scaling", "max"))[0] == 4
    assert document.data["services"]["api"]["scaling"] == {"min": 2, "max": 8}


def test_an_environment_without_overrides_sees_the_defaults():
    document = expand_dotted(_document())
    assert merge(document, "qa").data["services"] == document.data["services"]


def test_the_same_value_overridden_twice_is_a_problem():
    text = TEXT + "    services:\n      api:\n        scaling: {min: 3}\n"
    with pytest.raises(ConfigError) as raised:
        expand_dotted(_document(text))
    assert "overrides the same value twice" in str(raised.value)


def test_a_document_without_environments_is_returned_as_is():
    document = _document("project: shop\n")
    assert expand_dotted(document) is document
