"""The configuration reference: every key of infra.yaml, from its JSON Schema.

The README's reference table is this module's output, so a field added to
the model appears there with its type, default and description, and a test
fails when the README is stale or a key has no description.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .markdown import cell, code


@dataclass(frozen=True)
class Key:
    """One key of infra.yaml: its dotted `path` (`<name>` where the user picks
    the name), the values it takes, its default (`""` when it has none, or
    "required") and what it means."""

    path: str
    kind: str
    default: str
    meaning: str


def keys(schema: dict[str, Any]) -> list[Key]:
    """Every key of the schema, depth first in the model's order.

    `schema` is levels_tf.schema.json_schema(); a record's keys follow the
    key that holds it, and a map of records (`services`) gets one row for the
    map and its records' keys under `<name>`."""
    return list(_keys(schema, schema, ""))


def _keys(root: dict, node: dict, prefix: str) -> Iterator[Key]:
    required = set(node.get("required", ()))
    for name, prop in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        record, under = _record_in(root, prop)
        if "default" in prop:
            default = _value(prop["default"]) if _shown(prop["default"]) else ""
        else:
            default = "required" if name in required else ""
        meaning = prop.get("description") or (record or {}).get("description", "")
        yield Key(path, _kind(root, prop), default, meaning)
        if record is not None:
            yield from _keys(root, record, f"{path}{under}.")


def _record_in(root: dict, prop: dict) -> tuple[dict | None, str]:
    """The record a key holds directly, or as the values of a map, and the
    path piece between the key and the record's keys (`""` or `.<name>`)."""
    target, under = _unwrap(prop), ""
    if target.get("type") == "object" and isinstance(target.get("additionalProperties"), dict):
        target, under = _unwrap(target["additionalProperties"]), ".<name>"
    if "$ref" in target:
        return _definition(root, target["$ref"]), under
    return None, ""


def _unwrap(prop: dict) -> dict:
    """`prop` without a `null` alternative: `X | None` reads as X."""
    members = [m for m in prop.get("anyOf", ()) if m.get("type") != "null"]
    return members[0] if len(members) == 1 else prop


def _definition(root: dict, ref: str) -> dict:
    return root["$defs"][ref.rsplit("/", 1)[1]]


def _kind(root: dict, prop: dict) -> str:
    """What values a key takes, in a few words."""
    optional = any(m.get("type") == "null" for m in prop.get("anyOf", ()))
    # A constraint on `X | None` sits beside the anyOf, not in X.
    outer = {k: v for k, v in prop.items() if k in ("minimum", "maximum")}
    prop = {**_unwrap(prop), **outer}
    if "anyOf" in prop:
        text = " or ".join(_kind(root, m) for m in prop["anyOf"])
    elif "$ref" in prop:
        text = "mapping (keys below)"
    elif "enum" in prop:
        text = "one of " + ", ".join(_value(v) for v in prop["enum"])
    elif prop.get("type") == "array":
        items = _kind(root, prop.get("items", {}))
        text = f"list, each {items}" if items.startswith("one of") else f"list of {_plural(items)}"
    elif prop.get("type") == "object":
        values = prop.get("additionalProperties")
        text = "mapping" if not isinstance(values, dict) else f"map to {_kind(root, values)}"
    else:
        text = str(prop.get("type", "any value"))
        low, high = prop.get("minimum"), prop.get("maximum")
        if low is not None and high is not None:
            text += f", {_number(low)} to {_number(high)}"
        elif low is not None:
            text += f", at least {_number(low)}"
    return text + (", optional" if optional else "")


def _plural(kind: str) -> str:
    for word, plural in (("string", "strings"), ("integer", "integers"), ("mapping", "mappings")):
        if kind.startswith(word):
            return plural + kind[len(word) :]
    return kind


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _shown(default: Any) -> bool:
    """Whether a default says more than "nothing": records' defaults are
    their keys' defaults, listed on those keys' rows."""
    return default not in (None, [], {}) and not isinstance(default, dict)


def _value(value: Any) -> str:
    return code(value if isinstance(value, str) else json.dumps(value))


def markdown_table(schema: dict[str, Any]) -> str:
    """The README's configuration reference: one row per key, as markdown."""
    rows = ["| key | values | default | meaning |", "| --- | --- | --- | --- |"]
    for key in keys(schema):
        rows.append(
            f"| {code(key.path)} | {cell(key.kind)} | {cell(key.default)} | {cell(key.meaning)} |"
        )
    return "\n".join(rows) + "\n"
