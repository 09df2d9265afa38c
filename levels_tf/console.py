"""The only place that writes to the terminal."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import click

# Where out() goes: "stdout", "stderr" (stdout is kept for a machine-readable
# report) or "none" (a step's own chatter is not wanted).
_target = "stdout"
_lock = threading.Lock()
# The live view drawing now (rich.live.Live), if any: lines go above it.
_live: Any = None
# False after --no-progress (or LEVELS_TF_NO_PROGRESS=1): never draw a live view.
_live_allowed = True
# `-c CONFIG` for the next steps a message names, when the user named an
# infra.yaml other than the default one (name_config).
_config_flag = ""
# A command a message tells the user to run next, in backquotes, without -c
# (init takes its folder as an argument, and reads no infra.yaml).
_NEXT_STEP = re.compile(r"`levels-tf (?!-c |--config |init\b)")


def name_config(config: str | None) -> None:
    """The infra.yaml this run reads, when not the default `infra.yaml` of
    the working folder (None when it is): from now on every next step a
    line names (`` `levels-tf render` ``) carries `-c CONFIG`, so it works
    as printed."""
    global _config_flag
    _config_flag = "" if config is None else f"-c {shlex.quote(config)} "


def with_config(text: str) -> str:
    """`text` with `-c CONFIG` (name_config) in each `` `levels-tf ...` ``
    it suggests that has none; `text` itself when the config is the default.
    err() applies it; a report on stdout that names next steps applies it
    itself (out() prints documents and Terraform's outputs verbatim)."""
    if not _config_flag:
        return text
    return _NEXT_STEP.sub(lambda _: f"`levels-tf {_config_flag}", text)


def out(text: str = "", nl: bool = True) -> None:
    if _target == "none":
        return
    if _live is not None and _target == "stdout":
        _live.console.print(text, end="\n" if nl else "", markup=False, highlight=False)
        return
    click.echo(text, nl=nl, err=_target == "stderr")


def err(text: str) -> None:
    """`text` on standard error, for people only: a next step it names
    carries the -c of this run (with_config)."""
    text = with_config(text)
    if _live is not None and sys.stderr.isatty():
        _live.console.print(text, markup=False, highlight=False)
        return
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


def report_json(document: Any) -> None:
    """The one JSON document of a command run with --json (indented by 2),
    on standard output whatever the block around it says."""
    report(json.dumps(document, indent=2))


def report_json_line(document: Any) -> None:
    """One event of a command whose --json is JSON Lines (`tunnel db`: it
    runs until stopped): `document` compact on one line of standard output,
    flushed at once so a reader has it while the command goes on."""
    report(json.dumps(document, separators=(",", ":")))


def allow_live(allowed: bool) -> None:
    """--no-progress: `allowed` False keeps every command to plain lines."""
    global _live_allowed
    _live_allowed = allowed


def live_possible() -> bool:
    """Whether a live view may draw: on a terminal (standard output), not
    asked for plain lines (--no-progress, LEVELS_TF_NO_PROGRESS=1), not
    with TERM=dumb, and while out() writes to standard output."""
    return (
        _live_allowed
        and os.environ.get("LEVELS_TF_NO_PROGRESS", "") in ("", "0")
        and os.environ.get("TERM", "") != "dumb"
        and _target == "stdout"
        and _live is None
        and sys.stdout.isatty()
    )


@contextlib.contextmanager
def live(render: Callable[[], Any]) -> Iterator[bool]:
    """Draw `render()` (a rich renderable) in place, a few times a second,
    while the block runs, when live_possible(); yields whether it draws.
    Lines printed meanwhile (out, err) appear above the view; the view's
    last drawing stays on the screen."""
    global _live
    if not live_possible():
        yield False
        return
    from rich.console import Console
    from rich.live import Live

    view = Live(
        get_renderable=render,
        console=Console(file=sys.stdout),
        refresh_per_second=4,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with view:
        _live = view
        try:
            yield True
        finally:
            _live = None
