"""The one error family of levels-tf.

Every error carries the data its message is built from; only the command layer
turns errors into output and exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass


class LevelsError(Exception):
    """Base of every error levels-tf raises on purpose."""

    exit_code = 1

    def lines(self) -> list[str]:
        return [str(self)]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a configuration file, with where it is."""

    line: int
    column: int
    path: str
    message: str
    file: str = ""

    def format(self, severity: str = "") -> str:
        """`file:line:col: path: message` on one line (`file:line:col:
        severity: path: message` with a `severity` such as "warning"): a line
        break or other unprintable character a value brought along is shown
        escaped (`\\n`, `\\u202e`), so it can neither split the line nor
        reorder it on screen."""
        where = f"{self.path}: " if self.path else ""
        label = f"{severity}: " if severity else ""
        return f"{self.file}:{self.line}:{self.column}: {label}{_printable(where + self.message)}"


def _printable(text: str) -> str:
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def document(error: LevelsError, lines: list[str] | None = None) -> dict:
    """The JSON a command asked for `--json` (or `--format json`) prints on
    stdout instead of its report when it ends with `error`, so a program
    reading stdout always gets JSON:
    `{"error": {"type": str, "exit_code": int, "message": str, "problems": [...]}}`.
    `message` is what stderr says (lines joined by newlines); `problems`
    lists a ConfigError's problems as `{"file", "line", "column", "path",
    "message"}` (line and column 1-based), else it is empty."""
    problems = [
        {"file": p.file, "line": p.line, "column": p.column, "path": p.path, "message": p.message}
        for p in (error.problems if isinstance(error, ConfigError) else [])
    ]
    shown = error.lines() if lines is None else lines
    return failure(type(error).__name__, error.exit_code, shown, problems)


def failure(
    kind: str, exit_code: int, lines: list[str], problems: list[dict] | None = None
) -> dict:
    """The JSON of a command that failed (see `document`) from its parts:
    `kind` names the failure (an error class, `interrupted`, `internal`)."""
    return {
        "error": {
            "type": kind,
            "exit_code": exit_code,
            "message": "\n".join(lines),
            "problems": problems or [],
        }
    }


class ConfigError(LevelsError):
    """infra.yaml cannot be used; carries every problem found."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(p.format() for p in self.problems))

    def lines(self) -> list[str]:
        return [p.format() for p in self.problems]


class UsageError(LevelsError):
    """The command was asked for something it cannot do as asked."""

    exit_code = 2


class TemplateError(LevelsError):
    """A template failed to render; names the template and its line."""

    def __init__(self, template: str, line: int | None, message: str):
        self.template = template
        self.line = line
        where = f"{template}:{line}" if line else template
        super().__init__(f"template {where}: {message}")


class WriteError(LevelsError):
    """The output tree could not be written; the previous tree is intact."""
