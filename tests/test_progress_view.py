"""The live view's board and when it draws; tests/test_live_view.py watches it in a real terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from levels_tf import console, progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _text(board: progress.Board) -> str:
    screen = Console(file=io.StringIO(), width=120, color_system=None)
    screen.print(board.table())
    return screen.file.getvalue()  # type: ignore[attr-defined]


def _event(kind: str, action: str = "create", **more) -> dict:
    return {"type": kind, "hook": {"resource": {"addr": "aws_vpc.this"}, "action": action}, **more}


def test_an_apply_counts_its_announced_changes_and_those_done():
    clock = Clock()
    board = progress.Board(["shared", "live"], "applying", clock=clock)
    board.start("shared")
    for _ in range(3):
        board.event("shared", _event("planned_change"))
    board.event("shared", _event("apply_start"))
    board.event("shared", _event("apply_complete"))
    clock.now += 7
    [shared, live] = board.rows()
    assert (shared.state, shared.done, shared.total, shared.elapsed(clock.now)) == (
        progress.RUNNING,
        1,
        3,
        7.0,
    )
    assert (live.state, live.elapsed(clock.now)) == (progress.WAITING, 0.0)
    text = _text(board)
    assert "applying" in text and "1/3" in text and "7s" in text and "waiting" in text

    board.event("shared", _event("apply_errored"))
    board.event("shared", _event("apply_complete"))
    board.event("shared", {"type": "change_summary", "changes": {"add": 2, "change": 1}})
    board.finish("shared", progress.DONE)
    board.finish("live", progress.SKIPPED)
    clock.now += 50
    [shared, live] = board.rows()
    assert (shared.done, shared.total, shared.note) == (3, 3, "+2 ~1 -0")
    assert shared.elapsed(clock.now) == 7.0, "a finished row stops counting"
    assert board.lines() == [
        "shared  done               3/3      7s  +2 ~1 -0",
        "live    skipped                     0s",
    ]


def test_a_plan_counts_what_it_read_not_its_changes():
    board = progress.Board(["dev"], "planning")
    board.start("dev")
    board.event("dev", _event("planned_change"))
    board.event("dev", _event("refresh_complete"))
    board.event("dev", _event("refresh_complete"))
    [row] = board.rows()
    assert (row.done, row.total) == (2, None)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"type": "change_summary", "changes": None},
        {"type": "change_summary", "changes": 3},
        {"type": None},
        {"type": "apply_complete", "hook": None},
    ],
)
def test_a_malformed_event_never_fails_the_run(event):
    board = progress.Board(["dev"], "applying")
    board.event("dev", event)
    board.event("unknown-stack", event)
    assert [row.name for row in board.rows()] == ["dev", "unknown-stack"]


def test_a_tool_line_shows_on_the_row_cut_to_fit():
    board = progress.Board(["web"], "baking")
    board.say("web", "==> amazon-ebs.aws:   Waiting for the instance to become ready " + "x" * 100)
    [row] = board.rows()
    assert row.note.startswith("==> amazon-ebs.aws: Waiting") and len(row.note) == 80


def test_the_watcher_prints_lines_unless_a_view_shows(capsys):
    board = progress.Board(["dev"], "applying")
    show = progress.watcher(board, "dev")
    show(_event("apply_start"))
    board.shown = True
    show(_event("apply_complete"))
    show({"type": "diagnostic", "@level": "error", "@message": "Error: boom"})
    out, err = capsys.readouterr()
    assert "aws_vpc.this: Creating..." in out and "Created" not in out
    assert "[dev] error: Error: boom" in err, "errors are printed even under a live view"
    assert [row.done for row in board.rows()] == [1]


def test_no_view_off_a_terminal_with_no_progress_or_on_a_dumb_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    monkeypatch.delenv("LEVELS_TF_NO_PROGRESS", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    console.allow_live(True)
    assert console.live_possible()
    monkeypatch.setenv("TERM", "dumb")
    assert not console.live_possible()
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("LEVELS_TF_NO_PROGRESS", "1")
    assert not console.live_possible()
    monkeypatch.delenv("LEVELS_TF_NO_PROGRESS")
    console.allow_live(False)
    try:
        assert not console.live_possible()
        with console.live(lambda: "") as shown:
            assert shown is False
    finally:
        console.allow_live(True)
    with console.progress_to_stderr():
        assert not console.live_possible(), "stdout kept for a report: no view"


def test_no_progress_is_taken_by_every_long_command_and_reset_per_invocation(run, tmp_path):
    from levels_tf.cli import cli

    for name in ("plan", "apply", "destroy", "drift", "bake", "deploy", "rehearse"):
        params = {p.name for p in cli.commands[name].params}
        assert "no_progress" in params, name
    config = tmp_path / "infra.yaml"
    run("plan", "--all", "--no-progress", config=config)  # fails: no infra.yaml
    assert not console._live_allowed
    run("validate", config=config)
    assert console._live_allowed, "the next command starts with the view allowed"
