"""Edits of infra.yaml made by commands, through ruamel.yaml's round trip, so
that every comment, blank line, flow mapping and key order stays as written.

Only the database's `instance_class` is edited so far (`db resize`). Where it
goes (aurora.py explains which cluster a group has):

- a VPC group of one environment E: `environments.E` gets
  `database.instance_class` (in the dotted form the reference uses, or inside
  a `database:` mapping when E already has one);
- a shared VPC group: the top-level `database.instance_class`; every group of
  one environment that took the top-level class gets its old value as its own
  override, so its cluster does not change. Another shared group would take
  the new class too, so that edit is refused.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from .errors import UsageError

DOTTED_KEY = "database.instance_class"


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _dump(yaml: YAML, document: Any) -> str:
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


def _set_override(environments: CommentedMap, env: str, value: str) -> None:
    entry = environments.get(env)
    if entry is None:
        entry = environments[env] = CommentedMap()
    database = entry.get("database")
    if isinstance(database, dict) and DOTTED_KEY not in entry:
        database["instance_class"] = value
        return
    entry[DOTTED_KEY] = value


def _override(environments: Any, env: str) -> str | None:
    entry = (environments or {}).get(env) or {}
    database = entry.get("database")
    if DOTTED_KEY in entry:
        return str(entry[DOTTED_KEY])
    if isinstance(database, dict) and "instance_class" in database:
        return str(database["instance_class"])
    return None


def set_instance_class(
    text: str,
    source: str,
    groups: dict[str, list[str]],
    group: str,
    instance_class: str,
    default_class: str,
) -> str:
    """`text` (infra.yaml, named `source` in errors) with the database instance
    class of VPC group `group` set to `instance_class`, every other byte kept.

    `groups`: each VPC group's environments; `default_class`: the class the
    top-level database has now (its default when the file names none).
    Raises UsageError when the file does not survive a round trip unchanged
    (then it is edited by hand) or another shared group would change too."""
    yaml = _yaml()
    try:
        document = yaml.load(text)
        unchanged = _dump(yaml, document) == text
    except YAMLError as exc:
        raise UsageError(
            f"{source}: cannot be read for editing: {str(exc).splitlines()[0]}"
        ) from None
    if not unchanged:
        raise UsageError(
            f"{source}: its layout would not survive an automatic edit; set the database's "
            f"instance_class of {group} to {instance_class} by hand, then run `levels-tf render`"
        )
    environments = document.get("environments")
    members = groups[group]
    if len(members) == 1:
        if environments is None:
            environments = document["environments"] = CommentedMap()
        _set_override(environments, members[0], instance_class)
        return _dump(yaml, document)
    others = [name for name, envs in groups.items() if name != group and len(envs) > 1]
    if others:
        raise UsageError(
            f"{source}: the top-level database configures {group} and {', '.join(others)} alike; "
            f"set the instance_class of {group} by hand, then run `levels-tf render`"
        )
    for name, envs in groups.items():
        if name != group and _override(environments, envs[0]) is None:
            if environments is None:
                environments = document["environments"] = CommentedMap()
            _set_override(environments, envs[0], default_class)
    document["database"]["instance_class"] = instance_class
    return _dump(yaml, document)
