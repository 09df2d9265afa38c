"""Closed, typed records for configuration files.

A record is a frozen dataclass whose fields carry their constraints in
`Annotated[...]`. From that one declaration come validation that reports
every problem at once, each with its path, and the JSON Schema editors use.

Strict by design: a YAML string is never turned into a number, nor a number
into a string, and a key no record declares is an error.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union

__all__ = [
    "Check",
    "Doc",
    "Invalid",
    "Issue",
    "Length",
    "Pattern",
    "Range",
    "Record",
    "json_schema",
    "load",
    "record",
]


# --- constraints -----------------------------------------------------------


class Constraint:
    def check(self, value: Any) -> tuple[Any, str | None]:
        return value, None

    def schema(self, base: dict) -> dict:
        return {}


@dataclass(frozen=True)
class Doc(Constraint):
    text: str

    def schema(self, base: dict) -> dict:
        return {"description": self.text}


@dataclass(frozen=True)
class Pattern(Constraint):
    regex: str
    explain: str

    def check(self, value: Any) -> tuple[Any, str | None]:
        # ASCII: \w and \d mean what they mean in the JSON Schema (ECMA-262)
        # pattern, not every Unicode letter and digit.
        if re.fullmatch(self.regex, value, re.ASCII):
            return value, None
        return value, f"{value!r}: {self.explain}"

    def schema(self, base: dict) -> dict:
        return {"pattern": f"^(?:{self.regex})$"}


@dataclass(frozen=True)
class Range(Constraint):
    ge: float | None = None
    le: float | None = None

    def check(self, value: Any) -> tuple[Any, str | None]:
        if self.ge is not None and value < self.ge:
            return value, f"{value} is below the minimum {self.ge}"
        if self.le is not None and value > self.le:
            return value, f"{value} is above the maximum {self.le}"
        return value, None

    def schema(self, base: dict) -> dict:
        out = {}
        if self.ge is not None:
            out["minimum"] = self.ge
        if self.le is not None:
            out["maximum"] = self.le
        return out


@dataclass(frozen=True)
class Length(Constraint):
    min: int | None = None
    max: int | None = None

    def check(self, value: Any) -> tuple[Any, str | None]:
        what = "characters" if isinstance(value, str) else "entries"
        if self.min is not None and len(value) < self.min:
            return value, f"has {len(value)} {what}; at least {self.min} needed"
        if self.max is not None and len(value) > self.max:
            return value, f"has {len(value)} {what}; at most {self.max} allowed"
        return value, None

    def schema(self, base: dict) -> dict:
        kind = {"string": "Length", "array": "Items", "object": "Properties"}.get(
            base.get("type", ""), "Length"
        )
        out = {}
        if self.min is not None:
            out[f"min{kind}"] = self.min
        if self.max is not None:
            out[f"max{kind}"] = self.max
        return out


@dataclass(frozen=True)
class Check(Constraint):
    """A function that returns the (possibly normalised) value or raises ValueError."""

    func: Callable[[Any], Any]

    def check(self, value: Any) -> tuple[Any, str | None]:
        try:
            return self.func(value), None
        except ValueError as exc:
            return value, str(exc)


# --- records ---------------------------------------------------------------


class Record:
    """Base of configuration records; subclasses are made with @record."""

    if typing.TYPE_CHECKING:
        # @record makes every subclass a dataclass: dataclasses.asdict takes them.
        __dataclass_fields__: typing.ClassVar[dict[str, dataclasses.Field[Any]]]

    def problems(self) -> list[tuple[tuple, str]]:
        """Rules relating several fields of this record: (relative path, message)."""
        return []


_T = typing.TypeVar("_T")

if typing.TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # the decorator only informs type checkers; Python 3.10 lacks it in typing

    def dataclass_transform(**_: object) -> Callable[[_T], _T]:
        return lambda target: target


@dataclass_transform(frozen_default=True, kw_only_default=True)
def record(cls: type[_T]) -> type[_T]:
    """Make `cls` a frozen, keyword-only dataclass record (type checkers see
    its fields as the constructor's keyword arguments)."""
    return dataclass(frozen=True, kw_only=True)(cls)


@dataclass(frozen=True)
class Issue:
    path: tuple
    message: str
    kind: str = "value"  # value | unknown | missing | key


class Invalid(Exception):
    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("; ".join(f"{i.path}: {i.message}" for i in issues))


def load(cls: type, data: Any) -> Any:
    """`data` as an instance of record `cls`; raises Invalid with every issue."""
    issues: list[Issue] = []
    value = _convert(cls, data, (), issues)
    if issues:
        raise Invalid(issues)
    return value


_BAD = object()
_HINTS: dict[type, dict[str, Any]] = {}


def hints(cls: type) -> dict[str, Any]:
    """Field name -> annotation (with its constraints) of a record class."""
    if cls not in _HINTS:
        module = sys.modules[cls.__module__]
        _HINTS[cls] = typing.get_type_hints(cls, vars(module), include_extras=True)
    return _HINTS[cls]


def fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} value"


def _repeats(items: list[Any]) -> list[tuple[int, int]]:
    """(index, index of its first occurrence) of each item equal to an
    earlier one: every list of infra.yaml names each thing once."""
    found = []
    for index, item in enumerate(items):
        first = next((j for j in range(index) if items[j] == item), None)
        if first is not None:
            found.append((index, first))
    return found


def _shown(value: Any) -> str:
    """A list item as infra.yaml wrote it, for a message."""
    return repr(value) if isinstance(value, (str, int, float)) else "this item"


_EXPECTED = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}


def _convert(tp: Any, value: Any, path: tuple, issues: list[Issue], kind: str = "value") -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *constraints = typing.get_args(tp)
        value = _convert(base, value, path, issues, kind)
        if value is _BAD or value is None:
            return value
        for constraint in constraints:
            value, message = constraint.check(value)
            if message:
                issues.append(Issue(path, message, kind))
                return _BAD
        return value
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        members = typing.get_args(tp)
        if value is None and type(None) in members:
            return None
        others = [m for m in members if m is not type(None)]
        if len(others) == 1:
            return _convert(others[0], value, path, issues, kind)
        for member in others:
            trial: list[Issue] = []
            converted = _convert(member, value, path, trial, kind)
            if not trial:
                return converted
        issues.append(Issue(path, f"unexpected {_describe(value)}", kind))
        return _BAD
    if origin is Literal:
        choices = typing.get_args(tp)
        if any(value == c and type(value) is type(c) for c in choices):
            return value
        shown = ", ".join(str(c) for c in choices)
        issues.append(Issue(path, f"expected one of {shown}; found {_describe(value)}", kind))
        return _BAD
    if origin is list:
        if not isinstance(value, list):
            issues.append(Issue(path, f"expected a list, found {_describe(value)}", kind))
            return _BAD
        (item_type,) = typing.get_args(tp)
        items = [_convert(item_type, item, path + (i,), issues) for i, item in enumerate(value)]
        if any(i is _BAD for i in items):
            return _BAD
        repeats = _repeats(items)
        for index, first in repeats:
            issues.append(
                Issue(path + (index,), f"{_shown(value[index])} is already item {first}", kind)
            )
        return _BAD if repeats else items
    if origin is dict:
        if not isinstance(value, dict):
            issues.append(Issue(path, f"expected a mapping, found {_describe(value)}", kind))
            return _BAD
        key_type, value_type = typing.get_args(tp)
        result = {}
        bad = False
        for key, item in value.items():
            converted_key = _convert(key_type, key, path + (key,), issues, "key")
            converted = _convert(value_type, item, path + (key,), issues)
            if converted_key is _BAD or converted is _BAD:
                bad = True
            else:
                result[converted_key] = converted
        return _BAD if bad else result
    if isinstance(tp, type) and issubclass(tp, Record):
        return _record(tp, value, path, issues, kind)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp in _EXPECTED:
        if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
    else:  # pragma: no cover - a declaration error, not an input error
        raise TypeError(f"unsupported annotation {tp!r}")
    issues.append(Issue(path, f"expected {_EXPECTED[tp]}, found {_describe(value)}", kind))
    return _BAD


def _record(cls: type, value: Any, path: tuple, issues: list[Issue], kind: str) -> Any:
    if not isinstance(value, dict):
        issues.append(Issue(path, f"expected a mapping, found {_describe(value)}", kind))
        return _BAD
    declared = fields(cls)
    annotations = hints(cls)
    before = len(issues)
    for key in value:
        if key not in declared:
            issues.append(Issue(path + (key,), _unknown_key(str(key), list(declared)), "unknown"))
    kwargs = {}
    for name, spec in declared.items():
        if name in value:
            converted = _convert(annotations[name], value[name], path + (name,), issues)
            if converted is not _BAD:
                kwargs[name] = converted
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            issues.append(Issue(path + (name,), "required key is missing", "missing"))
    if len(issues) > before:
        return _BAD
    instance = cls(**kwargs)
    for relative, message in instance.problems():
        issues.append(Issue(path + relative, message))
    return _BAD if len(issues) > before else instance


def _unknown_key(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean '{close[0]}'?"
    return "unknown key; expected one of: " + ", ".join(sorted(allowed))


# --- JSON Schema -----------------------------------------------------------


def json_schema(cls: type, title: str) -> dict:
    definitions: dict[str, dict] = {}
    root = _record_schema(cls, definitions)
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
    }
    schema.update(root)
    if definitions:
        schema["$defs"] = dict(sorted(definitions.items()))
    return schema


def _record_schema(cls: type, definitions: dict) -> dict:
    annotations = hints(cls)
    properties = {}
    required = []
    for name, spec in fields(cls).items():
        prop = _schema(annotations[name], definitions)
        default = _default(spec)
        if default is not dataclasses.MISSING:
            prop["default"] = _plain(default)
        else:
            required.append(name)
        properties[name] = prop
    out: dict[str, Any] = {"type": "object"}
    doc = (cls.__doc__ or "").strip()
    if doc and not doc.startswith(cls.__name__ + "("):
        out["description"] = " ".join(doc.split())
    out["properties"] = properties
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    return out


def _default(spec: dataclasses.Field) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return dataclasses.MISSING


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    return value


def _schema(tp: Any, definitions: dict) -> dict:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *constraints = typing.get_args(tp)
        out = _schema(base, definitions)
        for constraint in constraints:
            out.update(constraint.schema(out))
        return out
    if tp is Any:
        return {}
    if origin in (Union, types.UnionType):
        members = [_schema(m, definitions) for m in typing.get_args(tp)]
        return {"anyOf": members}
    if tp is type(None):
        return {"type": "null"}
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin is list:
        return {
            "type": "array",
            "items": _schema(typing.get_args(tp)[0], definitions),
            "uniqueItems": True,
        }
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        out = {"type": "object", "additionalProperties": _schema(value_type, definitions)}
        names = _schema(key_type, definitions)
        names.pop("type", None)
        names.pop("description", None)
        if names:
            out["propertyNames"] = names
        return out
    if isinstance(tp, type) and issubclass(tp, Record):
        if tp.__name__ not in definitions:
            definitions[tp.__name__] = {}
            definitions[tp.__name__] = _record_schema(tp, definitions)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    return {"type": {str: "string", int: "integer", float: "number", bool: "boolean"}[tp]}
