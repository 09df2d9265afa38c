"""The configuration reference: every key of infra.yaml, drawn from the schema,
described, and the README's copy in step with it."""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated

import yaml

from levels_tf import config_reference, schema, typed
from levels_tf.typed import Doc, Range, Record, record

from .conftest import ROOT

TABLE = re.compile(r"<!-- reference:start -->\n(.*?)<!-- reference:end -->", re.S)


def test_every_key_says_what_it_means():
    undescribed = [k.path for k in config_reference.keys(schema.json_schema()) if not k.meaning]
    assert not undescribed, (
        "give these fields a Doc(...) in levels_tf/model.py (or their record a docstring): "
        f"{undescribed}"
    )


@record
class _Inner(Record):
    """Holds a number."""

    count: Annotated[int, Range(1, 9)] = 3


@record
class _Outer(Record):
    named: Annotated[str, Doc("A name.")]
    inner: _Inner = _Inner()
    many: dict[str, _Inner] = dataclasses.field(default_factory=dict)


def test_a_key_without_a_description_is_found():
    found = {k.path: k for k in config_reference.keys(typed.json_schema(_Outer, "t"))}
    assert set(found) == {"named", "inner", "inner.count", "many", "many.<name>.count"}
    assert found["named"].meaning == "A name." and found["named"].default == "required"
    assert found["inner"].meaning == "Holds a number."
    assert found["inner.count"].meaning == ""  # what the test above reports
    assert found["inner.count"].kind == "integer, 1 to 9" and found["inner.count"].default == "`3`"
    assert found["many"].kind == "map to mapping (keys below)"


def test_the_readme_reference_is_the_generated_one(run):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = TABLE.search(readme)
    assert found, "README.md has no <!-- reference:start --> ... <!-- reference:end --> section"
    printed = run("schema", "--format", "markdown")
    assert printed.exit_code == 0, printed.output
    assert found.group(1) == printed.output, (
        "README.md's configuration reference is stale: replace the table between its markers "
        "with the output of `levels-tf schema --format markdown`"
    )


def _paths(value, prefix: str, maps: set[str]) -> set[str]:
    """Dotted key paths of a YAML document, `<name>` for the keys of a map."""
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}{key}"
            found.add(path)
            if path in maps:
                for child in item.values():
                    found |= _paths(child, f"{path}.<name>.", maps)
            else:
                found |= _paths(item, f"{path}.", maps)
    return found


def test_the_reference_covers_every_key_the_reference_configuration_uses():
    keys = config_reference.keys(schema.json_schema())
    listed = {k.path for k in keys}
    maps = {k.path for k in keys if k.kind.startswith("map to mapping")}
    document = yaml.safe_load((ROOT / "infra.yaml").read_text(encoding="utf-8"))
    document.pop("environments", None)  # overrides repeat other keys, dotted or nested
    used = _paths(document, "", maps)
    # A key with no keys below it (tags, bastion users, hostnames) ends the path.
    leaves = {k for k in listed if not any(other.startswith(f"{k}.") for other in listed)}
    used = {p for p in used if not any(p.startswith(f"{leaf}.") for leaf in leaves)}
    assert used <= listed, sorted(used - listed)
    assert len(used) > 40, len(used)
