"""Turn Terraform's machine-readable events into progress lines for people."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import console

# Event types with a resource and an action worth a line of their own.
_SHOWN = {
    "apply_start": "{verb}...",
    "apply_progress": "still {verbing} ({elapsed}s)",
    "apply_complete": "{done} after {elapsed}s",
    "apply_errored": "failed after {elapsed}s",
    "refresh_start": "reading...",
}
_VERBS = {
    "create": ("creating", "created"),
    "update": ("updating", "updated"),
    "delete": ("destroying", "destroyed"),
    "replace": ("replacing", "replaced"),
    "read": ("reading", "read"),
    "noop": ("checking", "checked"),
}


def printer(stack: str, started: float | None = None) -> Callable[[dict], None]:
    """A callback that prints one line per interesting event, with the stack's name."""
    start = started if started is not None else time.monotonic()

    def on_event(event: dict) -> None:
        kind = event.get("type")
        if kind in _SHOWN:
            hook = event.get("hook") or {}
            address = (hook.get("resource") or {}).get("addr", "?")
            verbing, done = _VERBS.get(hook.get("action", ""), ("working", "done"))
            elapsed = int(hook.get("elapsed_seconds", 0))
            text = _SHOWN[kind].format(
                verb=verbing.capitalize(), verbing=verbing, done=done.capitalize(), elapsed=elapsed
            )
            console.out(f"[{stack} {time.monotonic() - start:4.0f}s] {address}: {text}")
        elif kind == "diagnostic" and event.get("@level") in ("error", "warning"):
            console.err(f"[{stack}] {event['@level']}: {event.get('@message', '')}")

    return on_event


# --- The live view: one row per stack or image -------------------------------

WAITING, RUNNING, DONE, FAILED, SKIPPED = "waiting", "running", "done", "failed", "skipped"


@dataclass
class Row:
    """One stack's (or image's) line in the live view. `done` and `total`
    count resources (`total` None while unknown); times are
    time.monotonic() seconds."""

    name: str
    state: str = WAITING
    activity: str = ""  # what it is doing now, e.g. "applying"
    done: int = 0
    total: int | None = None
    started: float | None = None
    ended: float | None = None
    note: str = ""  # how it ended, e.g. "+3 ~1 -0"

    def elapsed(self, now: float) -> float:
        """Seconds since it started (until it ended); 0 before it starts."""
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else now) - self.started


class Board:
    """The rows of a live view, updated from the scheduler's worker threads
    and read by the view's refresh thread.

    Nothing here may fail a stack: a malformed event is ignored, and an
    unknown name gets a row of its own."""

    def __init__(self, names: list[str], verb: str, clock: Callable[[], float] = time.monotonic):
        self.verb = verb
        self._clock = clock
        self._lock = threading.Lock()
        self._rows = {name: Row(name) for name in names}
        self.shown = False  # True while a live view draws the board (console.live)

    def _row(self, name: str) -> Row:
        return self._rows.setdefault(name, Row(name))

    def start(self, name: str, activity: str = "") -> None:
        """`name` begins (or begins its next step, `activity`)."""
        with self._lock:
            row = self._row(name)
            if row.started is None:
                row.started = self._clock()
            row.state, row.activity = RUNNING, activity or self.verb
            row.done, row.total = 0, None

    def event(self, name: str, event: dict) -> None:
        """Count one of Terraform's -json events: planned changes make the
        total, finished (or failed) changes and refreshed resources the done."""
        with contextlib.suppress(Exception), self._lock:
            row = self._row(name)
            kind = event.get("type")
            if kind == "planned_change" and self.verb != "planning":
                row.total = (row.total or 0) + 1  # an apply's changes, announced first
            elif kind in ("apply_complete", "apply_errored", "refresh_complete"):
                row.done += 1
            elif kind == "change_summary":
                changes = event.get("changes") or {}
                row.note = "+{} ~{} -{}".format(
                    changes.get("add", 0), changes.get("change", 0), changes.get("remove", 0)
                )

    def say(self, name: str, text: str) -> None:
        """Show `text` (a tool's latest line, cut to 80 characters) on `name`'s row."""
        with self._lock:
            self._row(name).note = " ".join(text.split())[:80]

    def finish(self, name: str, state: str, note: str = "") -> None:
        """`name` ended: DONE, FAILED or SKIPPED, with `note` (else the last change summary)."""
        with self._lock:
            row = self._row(name)
            row.state, row.ended = state, self._clock()
            if row.started is None:
                row.started = row.ended
            if note:
                row.note = note

    def rows(self) -> list[Row]:
        """A copy of the rows, in the order they were named."""
        with self._lock:
            return [dataclasses.replace(row) for row in self._rows.values()]

    def lines(self) -> list[str]:
        """The board as plain text, one line per row: name, state, resources, seconds."""
        now = self._clock()
        rows = self.rows()
        width = max((len(row.name) for row in rows), default=0)
        return [
            f"{row.name:<{width}}  {_state(row):<12} {_count(row):>9}  {row.elapsed(now):5.0f}s"
            + (f"  {row.note}" if row.note else "")
            for row in rows
        ]

    def table(self) -> Any:
        """The board as a rich Table (the live view draws it a few times a second)."""
        from rich.table import Table

        now = self._clock()
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for column, justify in (
            ("stack", "left"),
            ("state", "left"),
            ("resources", "right"),
            ("elapsed", "right"),
            ("", "left"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        styles = {DONE: "green", FAILED: "bold red", SKIPPED: "yellow", WAITING: "yellow"}
        styles[RUNNING] = "cyan"
        for row in self.rows():
            table.add_row(
                row.name,
                f"[{styles.get(row.state, 'dim')}]{_state(row)}[/]",
                _count(row),
                f"{row.elapsed(now):.0f}s",
                row.note,
            )
        return table


def _state(row: Row) -> str:
    return row.activity if row.state == RUNNING else row.state


def _count(row: Row) -> str:
    if row.total is not None:
        return f"{row.done}/{row.total}"
    return str(row.done) if row.done else ""


@contextlib.contextmanager
def view(names: list[str], verb: str) -> Iterator[Board]:
    """A Board for `names`, drawn live on a terminal (console.live) while the
    block runs; elsewhere, or with --no-progress, nothing is drawn and
    `board.shown` stays False: the callers print their lines as before."""
    board = Board(names, verb)
    with console.live(board.table) as shown:
        board.shown = shown
        yield board
    board.shown = False


def watcher(board: Board, stack: str, started: float | None = None) -> Callable[[dict], None]:
    """The on_event of a Terraform run in `stack`: counts on `board`, and
    while no live view shows, prints the lines `printer` prints. Errors and
    warnings are printed either way."""
    lines = printer(stack, started)

    def on_event(event: dict) -> None:
        board.event(stack, event)
        if not board.shown or (
            event.get("type") == "diagnostic" and event.get("@level") in ("error", "warning")
        ):
            lines(event)

    return on_event
