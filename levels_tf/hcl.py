"""Python values -> HCL expressions, laid out exactly as `terraform fmt` would.

fmt aligns the `=` of consecutive single-line attributes; an attribute whose
value spans several lines stands alone and ends the group. These filters
follow the same rule so rendered files are fmt-clean as written.
"""

from __future__ import annotations

import json
import re
from typing import Any

INDENT = "  "
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_INLINE_LIST_WIDTH = 100


def string(value: str) -> str:
    """A quoted HCL string; template sequences are escaped so they stay literal."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("${", "$${").replace("%{", "%%{")


def key(name: str) -> str:
    return name if _IDENT.match(name) and name not in ("true", "false", "null") else string(name)


def value(obj: Any, level: int = 0) -> str:
    """The HCL expression for `obj`, continuation lines indented for `level`."""
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, (int, float)):
        return repr(obj)
    if isinstance(obj, str):
        return string(obj)
    if isinstance(obj, (list, tuple)):
        return _list(list(obj), level)
    if isinstance(obj, dict):
        return _object(obj, level)
    raise TypeError(f"no HCL form for {type(obj).__name__}")


def _list(items: list, level: int) -> str:
    if not items:
        return "[]"
    parts = [value(item, level + 1) for item in items]
    inline = "[" + ", ".join(parts) + "]"
    if all("\n" not in p for p in parts) and len(inline) <= _INLINE_LIST_WIDTH:
        return inline
    pad = INDENT * (level + 1)
    body = "".join(f"{pad}{p},\n" for p in parts)
    return "[\n" + body + INDENT * level + "]"


def _object(obj: dict, level: int) -> str:
    if not obj:
        return "{}"
    return "{\n" + attributes(obj, level + 1) + INDENT * level + "}"


def attributes(obj: dict, level: int = 1) -> str:
    """`key = value` lines for each item, aligned like fmt aligns them."""
    pad = INDENT * level
    rendered = [(key(str(k)), value(v, level)) for k, v in obj.items()]
    lines: list[str] = []
    group: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(k) for k, _ in group), default=0)
        lines.extend(f"{pad}{k.ljust(width)} = {v}\n" for k, v in group)
        group.clear()

    for k, v in rendered:
        if "\n" in v:
            flush()
            lines.append(f"{pad}{k} = {v}\n")
        else:
            group.append((k, v))
    flush()
    return "".join(lines)
