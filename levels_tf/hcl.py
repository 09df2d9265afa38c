"""Python values -> HCL expressions, laid out exactly as `terraform fmt` would.

fmt aligns the `=` of consecutive single-line attributes; an attribute whose
value spans several lines stands alone and ends the group. These filters
follow the same rule so rendered files are fmt-clean as written.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

INDENT = "  "
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_INLINE_LIST_WIDTH = 100
# JSON escapes HCL lacks: \b and \f become \uNNNN (other escapes are shared).
_JSON_ONLY_ESCAPE = re.compile(r"\\(.)")
_HCL_ESCAPES = {"b": "\\u0008", "f": "\\u000c"}


class Expression(str):
    """An HCL expression written as is (a reference such as module.x.arn), not quoted."""


def string(value: str) -> str:
    """A quoted HCL string; template sequences are escaped so they stay literal."""
    text = json.dumps(value, ensure_ascii=False)
    text = _JSON_ONLY_ESCAPE.sub(lambda m: _HCL_ESCAPES.get(m.group(1), m.group(0)), text)
    return text.replace("${", "$${").replace("%{", "%%{")


def key(name: str) -> str:
    # A bare `for` opening an object would start a for expression.
    return (
        name
        if _IDENT.match(name) and name not in ("true", "false", "null", "for")
        else string(name)
    )


def value(obj: Any, level: int = 0) -> str:
    """The HCL expression for `obj`, continuation lines indented for `level`."""
    if obj is None:
        return "null"
    if isinstance(obj, Expression):
        return str(obj)
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, (int, float)):
        if isinstance(obj, float) and not math.isfinite(obj):
            raise ValueError(f"no HCL form for the number {obj!r}")
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
        width = max((_columns(k) for k, _ in group), default=0)
        lines.extend(f"{pad}{k}{' ' * (width - _columns(k))} = {v}\n" for k, v in group)
        group.clear()

    for k, v in rendered:
        if "\n" in v:
            flush()
            lines.append(f"{pad}{k} = {v}\n")
        else:
            group.append((k, v))
    flush()
    return "".join(lines)


def _columns(key: str) -> int:
    """The columns fmt counts for a key: grapheme clusters, not code points.

    fmt counts each token on its own, so the quotes of a quoted key are apart
    from its text. Approximates Unicode's cluster rules for what a key may
    hold: combining marks, emoji ZWJ sequences and modifiers, flags,
    decomposed Hangul.
    """
    if key.isascii():
        return len(key)
    if key.startswith('"'):
        return 2 + _columns(key[1:-1])
    columns = 0
    previous = ""
    flag_open = False
    for char in key:
        regional = "\U0001f1e6" <= char <= "\U0001f1ff"
        joins = previous != "" and (
            unicodedata.category(char) in ("Mn", "Me", "Mc")
            or char == "\u200d"
            or (
                previous == "\u200d"
                and (char >= "\U0001f000" or unicodedata.category(char) == "So")
            )
            or "\U0001f3fb" <= char <= "\U0001f3ff"
            or (regional and flag_open)
            or (_jamo_vt(char) and (_jamo(previous) or "\uac00" <= previous <= "\ud7a3"))
        )
        flag_open = regional and not flag_open
        columns += not joins
        previous = char
    return columns


def _jamo(char: str) -> bool:
    return (
        "\u1100" <= char <= "\u11ff" or "\ua960" <= char <= "\ua97c" or "\ud7b0" <= char <= "\ud7fb"
    )


def _jamo_vt(char: str) -> bool:
    return "\u1160" <= char <= "\u11ff" or "\ud7b0" <= char <= "\ud7fb"
