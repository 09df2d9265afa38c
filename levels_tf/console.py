"""The only place that writes to the terminal."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import click

# Where out() goes: "stdout", "stderr" (stdout is kept for a machine-readable
# report) or "none" (a step's own chatter is not wanted).
_target = "stdout"
_lock = threading.Lock()


def out(text: str = "", nl: bool = True) -> None:
    if _target == "none":
        return
    click.echo(text, nl=nl, err=_target == "stderr")


def err(text: str) -> None:
    click.echo(text, err=True)


def lines(rows: list[str], *, to_err: bool = False) -> None:
    for row in rows:
        if to_err:
            err(row)
        else:
            out(row)


def confirm(question: str) -> bool:
    """Ask a yes/no question; no answer (no terminal) means no."""
    try:
        return click.confirm(question, default=False)
    except click.Abort:
        return False


@contextlib.contextmanager
def _sending(target: str) -> Iterator[None]:
    global _target
    with _lock:
        previous, _target = _target, target
    try:
        yield
    finally:
        with _lock:
            _target = previous


def progress_to_stderr() -> contextlib.AbstractContextManager[None]:
    """Within the block, out() writes to standard error: stdout stays for one report."""
    return _sending("stderr")


def muted() -> contextlib.AbstractContextManager[None]:
    """Within the block, out() writes nothing (errors still reach standard error)."""
    return _sending("none")


def report(text: str) -> None:
    """The one report of a command, on standard output whatever the block around it says."""
    click.echo(text)
