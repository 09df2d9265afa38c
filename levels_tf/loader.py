"""Load infra.yaml safely, keeping the line and column of every value.

The result is plain data (dicts, lists, scalars) plus a map from each value's
path to where it was written, so later stages can point at a line.
Duplicate keys, non-string keys, several documents and documents that expand
past a sane size (alias bombs) are errors, reported like every other problem.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import typed
from .errors import ConfigError, Problem

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Document:
    """Loaded data with the position (line, column; 1-based) of each path."""

    data: Any
    file: str
    positions: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[tuple, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: tuple, *, key: bool = False) -> tuple[int, int]:
        """Position of `path`, or of its nearest ancestor that has one."""
        table = self.key_positions if key else self.positions
        probe = tuple(path)
        while True:
            if probe in table:
                return table[probe]
            if key and probe in self.positions:
                return self.positions[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]

    def problem(self, path: tuple, message: str, *, key: bool = False) -> Problem:
        line, column = self.where(path, key=key)
        return Problem(line, column, dotted(path), message, self.file)


# A YAML scalar that quoting makes the string that was meant: 1.10, yes, 2024-01-01.
_QUOTE_IT = re.compile(
    r"expected a string, found (the number|the boolean|a date value|a datetime value)"
)


def issue_problem(document: Document, issue: typed.Issue) -> Problem:
    """An `issue` that typed.load found in `document.data`, as a Problem at its
    line: a bad key points at the key, a missing or unknown one at its
    mapping's key, a bad value at the value.

    Where a number, boolean or date stands for a string, the message says to
    quote it: that is the fix, and the value YAML read may not even be the
    one written (1.10 reads as 1.1).
    """
    if issue.kind == "key":
        return document.problem(issue.path, "invalid key: " + issue.message, key=True)
    message = issue.message + ("; quote it" if _QUOTE_IT.match(issue.message) else "")
    return document.problem(issue.path, message, key=issue.kind in ("unknown", "missing"))


def dotted(path: tuple) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Loader(yaml.SafeLoader):
    """SafeLoader used only to compose nodes and build scalars."""

    _depth = 0

    def compose_node(self, parent, index):
        # PyYAML composes recursively: refuse deep nesting before Python's
        # recursion limit turns it into a crash.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, f"nesting deeper than {MAX_DEPTH} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.loader = _Loader("")
        self.positions: dict[tuple, tuple[int, int]] = {}
        self.key_positions: dict[tuple, tuple[int, int]] = {}
        self.count = 0
        self.depth = 0
        self.active: set[int] = set()

    def fail(self, node: yaml.Node, path: tuple, message: str) -> ConfigError:
        line, column = _mark(node)
        return ConfigError([Problem(line, column, dotted(path), message, self.file)])

    def build(self, node: yaml.Node, path: tuple) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(
                node, path, f"document expands to more than {MAX_NODES} values (alias bomb?)"
            )
        # self.depth counts merges ('<<') as well as nesting: both recurse.
        if len(path) > MAX_DEPTH or self.depth > MAX_DEPTH:
            raise self.fail(node, path, f"nesting deeper than {MAX_DEPTH} levels")
        if id(node) in self.active:
            raise self.fail(node, path, "recursive alias")
        self.positions.setdefault(path, _mark(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self.active.add(id(node))
        self.depth += 1
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
        finally:
            self.depth -= 1
            self.active.discard(id(node))
        raise self.fail(node, path, "unsupported YAML node")  # pragma: no cover

    def _scalar(self, node: yaml.ScalarNode, path: tuple) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.fail(node, path, _yaml_message(exc)) from None
        except Exception:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise self.fail(node, path, f"YAML: {node.value!r} is not a valid {tag}") from None

    def _mapping(self, node: yaml.MappingNode, path: tuple) -> dict:
        result: dict[str, Any] = {}
        seen: dict[str, tuple[int, int]] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, path, "mapping keys must be plain strings")
            key = self._scalar(key_node, path)
            if not isinstance(key, str):
                key = key_node.value
            if key in seen:
                line, _ = seen[key]
                raise self.fail(
                    key_node, path + (key,), f"duplicate key (first defined on line {line})"
                )
            seen[key] = _mark(key_node)
            # setdefault: keys merged in by '<<' must not move explicit keys.
            self.key_positions.setdefault(path + (key,), _mark(key_node))
            result[key] = self.build(value_node, path + (key,))
        for source in merged:
            sources = source.value if isinstance(source, yaml.SequenceNode) else [source]
            for item in sources:
                if not isinstance(item, yaml.MappingNode):
                    raise self.fail(item, path, "'<<' merges only mappings")
                # through build(): merged mappings count towards MAX_NODES and
                # the depth limit, and a mapping merging itself is caught.
                for key, value in self.build(item, path).items():
                    result.setdefault(key, value)
        return result


def _yaml_message(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{context}: {problem}" if context else problem
    return "YAML: " + " ".join(text.split())


def parse(text: str, file: str) -> Document:
    """Parse YAML text into a Document; raises ConfigError."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        # Raised for characters YAML does not allow (e.g. U+0080..U+009F, U+FFFE).
        line, column = _position(text[: exc.position])
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ConfigError(
            [Problem(line, column, "", f"character U+{code:04X} is not allowed in YAML", file)]
        ) from None
    try:
        root = loader.get_single_node()
    except yaml.composer.ComposerError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if "expected a single document" in str(exc):
            message = "several YAML documents; infra.yaml holds exactly one"
        else:
            message = _yaml_message(exc)
        raise ConfigError([Problem(line, column, "", message, file)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError([Problem(line, column, "", _yaml_message(exc), file)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(1, 1, "", _yaml_message(exc), file)]) from None
    finally:
        loader.dispose()
    if root is None:
        raise ConfigError([Problem(1, 1, "", "file is empty: expected a mapping", file)])
    builder = _Builder(file)
    data = builder.build(root, ())
    if not isinstance(data, dict):
        line, column = _mark(root)
        raise ConfigError(
            [Problem(line, column, "", f"expected a mapping at the top, found {_kind(data)}", file)]
        )
    return Document(data, file, builder.positions, builder.key_positions)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f"a {type(value).__name__} value"


def missing(path: Path) -> str:
    """What to say of an infra.yaml at `path` that does not exist: how to
    start one there (`levels-tf init` writes infra.yaml into a folder), or
    how to read another."""
    if path.name != "infra.yaml":
        return "no such file; give -c the path of an infra.yaml, or run `levels-tf init DIR` to start one"
    folder = "" if str(path.parent) == "." else " " + shlex.quote(str(path.parent))
    return f"no such file; run `levels-tf init{folder}` to start one there, or give -c PATH to read another"


def load(path: str | os.PathLike) -> Document:
    """Read and parse infra.yaml at `path`; every failure is a ConfigError."""
    file = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError([Problem(1, 1, "", missing(Path(path)), file)]) from None
    except OSError as exc:
        raise ConfigError([Problem(1, 1, "", f"cannot read: {exc.strerror}", file)]) from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError([Problem(1, 1, "", "is a directory, not a file", file)])
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError([Problem(1, 1, "", "is not a regular file", file)])
    if info.st_size > MAX_FILE_BYTES:
        raise ConfigError(
            [
                Problem(
                    1,
                    1,
                    "",
                    f"file is {info.st_size / 1e6:.1f} MB, over the "
                    f"{MAX_FILE_BYTES // 1024} KiB limit for infra.yaml",
                    file,
                )
            ]
        )
    try:
        raw = Path(path).read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        raise ConfigError([Problem(1, 1, "", f"cannot read: {exc.strerror}", file)]) from None
    return parse(decode(raw, file), file)


def decode(raw: bytes, file: str) -> str:
    """UTF-8 text without NUL or other control bytes, or a ConfigError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(raw[: exc.start].decode("utf-8", "replace"))
        raise ConfigError(
            [Problem(line, column, "", f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", file)]
        ) from None
    bad = _CONTROL.search(text)
    if bad:
        line, column = _position(text[: bad.start()])
        code = ord(bad.group())
        raise ConfigError(
            [Problem(line, column, "", f"control character U+{code:04X} in text", file)]
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def _position(before: str) -> tuple[int, int]:
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return line, column
