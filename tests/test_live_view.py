"""The live view in a real terminal: levels-tf plans and applies a small
platform on moto inside tmux, and the test reads the screen as it changes."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time

import pytest

from .conftest import ROOT, require_tool

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

CONFIG = ROOT / "tests" / "golden" / "two-az-single-env" / "infra.yaml"
HEADER = re.compile(r"^stack\s+state\s+resources\s+elapsed\s*$")
ROW = re.compile(r"^(main-shared|live)\s+(\S+)\s+(?:(\d+(?:/\d+)?)\s+)?(\d+)s\b")
DONE_MARK = "LEVELS-TF-EXIT="


class Terminal:
    """A tmux session of 150 x 45 running one shell script."""

    def __init__(self, name: str, script: str) -> None:
        self.tmux = require_tool("tmux")
        self.name = name
        subprocess.run(
            [
                self.tmux,
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "150",
                "-y",
                "45",
                f"bash {shlex.quote(script)}; sleep 600",
            ],
            check=True,
        )

    def screen(self) -> str:
        """The visible screen."""
        return self._capture()

    def history(self) -> str:
        """Everything printed, scrolled off or not."""
        return self._capture("-S", "-")

    def _capture(self, *more: str) -> str:
        return subprocess.run(
            [self.tmux, "capture-pane", "-p", "-t", self.name, *more],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def frames_until_exit(self, timeout: float) -> list[str]:
        frames = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frames.append(self.screen())
            if DONE_MARK in frames[-1]:
                return frames
            time.sleep(0.5)
        pytest.fail(f"no exit after {timeout:.0f}s:\n{self.history()}")

    def close(self) -> None:
        subprocess.run([self.tmux, "kill-session", "-t", self.name], check=False)


@pytest.fixture
def terminal(tmp_path, rehearse, aws_env, terraform_env):
    """terminal(args) -> the frames of `levels-tf args` run in tmux on the small
    platform rendered for moto, and the tmux session."""
    config = rehearse(CONFIG)
    opened: list[Terminal] = []
    exports = {
        name: value
        for name, value in terraform_env.items()
        if name.startswith(("AWS_", "TF_", "CHECKPOINT", "HTTP", "NO_PROXY", "no_proxy", "http"))
        or name in ("PATH", "HOME", "LEVELS_TF_PROVIDER_MIRROR")
    }
    import os

    exports.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    exports["TF_CLI_CONFIG_FILE"] = terraform_env["TF_CLI_CONFIG_FILE"]
    exports["TERM"] = "xterm-256color"
    exports.pop("LEVELS_TF_NO_PROGRESS", None)

    def start(*args: str, timeout: float = 900) -> tuple[list[str], Terminal]:
        script = tmp_path / f"run-{len(opened)}.sh"
        lines = ["unset LEVELS_TF_NO_PROGRESS"]
        lines += [f"export {name}={shlex.quote(value)}" for name, value in exports.items()]
        command = [
            sys.executable,
            "-m",
            "levels_tf",
            "-c",
            str(config),
            *args,
            "--aws-endpoint",
            aws_env,
            "--backend",
            "local",
        ]
        lines.append(f"cd {shlex.quote(str(config.parent))}")
        lines.append(" ".join(shlex.quote(word) for word in command))
        lines.append(f'echo "{DONE_MARK}$?"')
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        session = Terminal(f"levels-tf-view-{os.getpid()}-{len(opened)}", str(script))
        opened.append(session)
        return session.frames_until_exit(timeout), session

    yield start
    for session in opened:
        session.close()


def _rows(frame: str) -> dict[str, tuple[str, str, int]]:
    """The view's rows on one screen: stack -> (state, resources, seconds)."""
    rows = {}
    for line in frame.splitlines():
        found = ROW.match(line)
        if found:
            rows[found[1]] = (found[2], found[3] or "", int(found[4]))
    return rows


def test_the_view_updates_in_place_then_plain_lines_with_no_progress(terminal):
    frames, session = terminal("plan", "--all")
    assert f"{DONE_MARK}2" in frames[-1], session.history()
    drawing = [f for f in frames if any(HEADER.match(line) for line in f.splitlines())]
    assert drawing, session.history()
    for frame in drawing:
        headers = [line for line in frame.splitlines() if HEADER.match(line)]
        assert len(headers) == 1, f"the view scrolled instead of drawing in place:\n{frame}"
    running = [
        _rows(f)["main-shared"][2]
        for f in drawing
        if _rows(f).get("main-shared", ("",))[0] == "planning"
    ]
    assert len(set(running)) >= 2 and running == sorted(running), (
        f"the elapsed time did not count up in place: {running}"
    )
    final = _rows(frames[-1])
    assert final["main-shared"][0] == "done" and final["live"][0] == "waiting", frames[-1]
    assert "[main-shared" not in session.history(), "per-resource lines under a live view"

    applied, session = terminal("apply", "main-shared", "--yes")
    assert f"{DONE_MARK}0" in applied[-1], session.history()
    counts = [
        _rows(f)["main-shared"][1]
        for f in applied
        if _rows(f).get("main-shared", ("",))[0] == "applying"
    ]
    done_counts = [int(c.split("/")[0]) for c in counts if "/" in c]
    assert done_counts and done_counts == sorted(done_counts) and len(set(done_counts)) >= 2, counts
    state, resources, _ = _rows(applied[-1])["main-shared"]
    total = int(resources.split("/")[1])
    assert state == "done" and resources == f"{total}/{total}" and total > 20, applied[-1]
    assert "main-shared: applied in" in applied[-1]

    plain, session = terminal("plan", "--all", "--no-progress")
    history = session.history()
    assert f"{DONE_MARK}" in plain[-1] and not any(
        HEADER.match(line) for line in history.splitlines()
    )
    assert re.search(r"^\[main-shared +\d+s\] \S+: reading\.\.\.$", history, re.M), history
    assert "stack        add  change  replace  destroy" in history
