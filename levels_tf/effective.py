"""Per-environment effective configuration: overrides deep-merged over defaults.

An override is written under `environments.<env>`, either nested
(`services: {api: {scaling: {min: 4}}}`) or with a dotted key
(`services.api.scaling: {min: 4}`). Mappings merge key by key; lists and
scalars replace. Positions travel with the values, so an error in a merged
value still points at the line that wrote it.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ConfigError
from .loader import Document


def expand_dotted(document: Document) -> Document:
    """Rewrite dotted override keys as nested mappings, keeping positions."""
    environments = document.data.get("environments")
    if not isinstance(environments, dict):
        return document
    data = dict(document.data)
    positions = dict(document.positions)
    key_positions = dict(document.key_positions)
    problems = []
    new_envs: dict[str, Any] = {}
    for env, overrides in environments.items():
        if not isinstance(overrides, dict) or not any("." in str(k) for k in overrides):
            new_envs[env] = overrides
            continue
        nested: dict[str, Any] = {}
        for key, value in overrides.items():
            parts = str(key).split(".")
            source = ("environments", env, key)
            target = ("environments", env, *parts)
            if "." in str(key):
                _move(positions, source, target)
                _move(key_positions, source, target)
                for depth in range(1, len(parts)):
                    prefix = ("environments", env, *parts[:depth])
                    key_positions.setdefault(prefix, document.key_positions[source])
                    positions.setdefault(prefix, document.key_positions[source])
            node = nested
            clash = False
            for part in parts[:-1]:
                existing = node.setdefault(part, {})
                if not isinstance(existing, dict):
                    clash = True
                    break
                node = existing
            if clash or (parts[-1] in node and _overlaps(node[parts[-1]], value)):
                problems.append(
                    document.problem(source, "overrides the same value twice", key=True)
                )
                continue
            if parts[-1] in node:
                node[parts[-1]] = deep_merge(node[parts[-1]], value)
            else:
                # a copy: later dotted keys descend into it and must not
                # change the document's own data
                node[parts[-1]] = copy.deepcopy(value)
        new_envs[env] = nested
    if problems:
        raise ConfigError(problems)
    data["environments"] = new_envs
    return Document(data, document.file, positions, key_positions)


def _overlaps(base: Any, override: Any) -> bool:
    """True when merging `override` into `base` would replace a value of `base`."""
    if isinstance(base, dict) and isinstance(override, dict):
        return any(key in base and _overlaps(base[key], value) for key, value in override.items())
    return True


def _move(table: dict[tuple, Any], source: tuple, target: tuple) -> None:
    n = len(source)
    for path in [p for p in table if p[:n] == source]:
        table[target + path[n:]] = table[path]


def deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def merge(document: Document, env: str) -> Document:
    """The document as environment `env` sees it."""
    overrides = (document.data.get("environments") or {}).get(env) or {}
    data = dict(document.data)
    positions = dict(document.positions)
    key_positions = dict(document.key_positions)
    for section, value in overrides.items():
        if value is None:
            continue
        data[section] = deep_merge(data.get(section), value)
        source = ("environments", env, section)
        _move(positions, source, (section,))
        _move(key_positions, source, (section,))
    return Document(data, document.file, positions, key_positions)
