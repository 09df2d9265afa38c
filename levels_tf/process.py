"""The one place that starts other programs.

Every command is an argv list, never a shell line. The executable is found
first, so a missing tool is one clear message; a failure carries the
command, its exit code and the end of its output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import LevelsError, UsageError

OUTPUT_LINES = 20
STOP_GRACE = 300  # seconds a program stopped at its timeout gets before SIGKILL

# A Unix socket's path holds at most 107 bytes (unix(7): sun_path is 108
# bytes with the terminating NUL). Terraform's providers (hashicorp/go-plugin:
# TMPDIR/plugin<digits>/plugin) and Packer 1.6's builders
# (TMPDIR/packer-plugin<digits>) listen on sockets in TMPDIR, both names 24
# bytes at most with their slashes; past the limit they fail to start
# ("bind: invalid argument"). SOCKET_ROOM keeps a margin over those 24.
SOCKET_PATH_MAX = 107
SOCKET_ROOM = 32
SHORT_TEMP_FOLDERS = ("/tmp", "/var/tmp")  # tempfile's own fallbacks, in its order

# The programs stream() is running. Python raises KeyboardInterrupt in the
# main thread only, and the scheduler runs stream() in worker threads, so the
# main thread passes Ctrl-C on to these (interrupt_running).
_running: set[subprocess.Popen] = set()
_interrupted: set[subprocess.Popen] = set()
_running_lock = threading.Lock()


class ToolError(LevelsError):
    """A program could not be run, or failed."""


class Stopped(ToolError):
    """A program ran past its timeout and was stopped: SIGTERM to its process
    group, then SIGKILL when it had not ended `grace` seconds later
    (`killed`). Either way the whole group is gone when this is raised."""

    def __init__(self, argv: Sequence[str], timeout: float, grace: float, killed: bool):
        self.argv = tuple(argv)
        self.timeout = timeout
        self.grace = grace
        self.killed = killed
        super().__init__(f"{_shown(argv)} {self.how}")

    @property
    def how(self) -> str:
        """What happened, after the program's name: "did not finish in 60 s: stopped ..."."""
        ended = (
            f"stopped with SIGTERM, then killed with SIGKILL {self.grace:g} s later"
            if self.killed
            else "stopped with SIGTERM"
        )
        return f"did not finish in {self.timeout:g} s: {ended}"


TIMEOUT_VARIABLE = "LEVELS_TF_TIMEOUT"


def timeout_setting(default: float) -> float:
    """The time limit in seconds of one Terraform or Packer run: $LEVELS_TF_TIMEOUT
    when set (a positive number of seconds), else `default`. A UsageError
    when the variable is set to anything else."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise UsageError(f"${TIMEOUT_VARIABLE} {text!r}: give a positive number of seconds")
    return seconds


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def find(program: str, advice: str = "") -> str:
    """The path of `program` (a name on PATH or a path), or a ToolError."""
    found = shutil.which(program)
    if found is None:
        hint = f"; {advice}" if advice else ""
        raise ToolError(f"{program} is not installed or not on PATH{hint}")
    return found


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    advice: str = "",
) -> Result:
    """Run `argv` to completion, capturing its output."""
    executable = find(argv[0], advice)
    command = (executable, *argv[1:])
    merged = _environment(env)
    try:
        completed = subprocess.run(
            command,
            cwd=cwd,
            env=merged,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ToolError(f"{_shown(argv)} did not finish in {timeout:g} s") from None
    except OSError as exc:
        raise ToolError(f"could not run {_shown(argv)}: {exc.strerror or exc}") from None
    result = Result(tuple(argv), completed.returncode, completed.stdout, completed.stderr)
    if check and result.returncode != 0:
        raise ToolError(failure(result))
    return result


def stream(
    argv: Sequence[str],
    on_line: Callable[[str], None],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    advice: str = "",
    interrupt_grace: float = 300,
    stop_grace: float | None = None,
    log: Path | None = None,
) -> Result:
    """Run `argv`, handing each line of its standard output to `on_line` as it
    comes; standard error is kept for the failure message.

    The program runs in a process group of its own. Past `timeout` seconds
    the group gets SIGTERM (Terraform and Packer take it as Ctrl-C: they
    stop cleanly, releasing the state lock or deleting what a build made),
    and SIGKILL when it has not ended `stop_grace` seconds (default
    STOP_GRACE) later; then `Stopped` is raised. On Ctrl-C the group gets
    SIGINT, the way a terminal would send it, and up to `interrupt_grace`
    seconds to stop cleanly before it is killed; then the interruption
    reaches the caller. When the program
    ends, however it ends, whatever it left running in its group is killed,
    so no process of the run outlives it (nor holds its output open).

    With `log`, a file path, every line of standard output and error is
    appended to it as it comes, after a heading line naming the command and
    its folder and before a closing line with the exit code, so the run can
    be read after the fact however it ended."""
    grace = STOP_GRACE if stop_grace is None else stop_grace
    # Started and registered as one step: a Ctrl-C or SIGTERM handled in the
    # main thread (interrupt_running) while this thread starts the program
    # must find it, or the program would run on unstopped and be waited for.
    with _running_lock:
        child = _start(
            argv, cwd, env, advice, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1,
        )  # fmt: skip
        _running.add(child)
    # Both are pipes: asked for above.
    stdout, stderr = child.stdout, child.stderr
    assert stdout is not None and stderr is not None
    record = _Log(log, argv, cwd)
    errors: list[str] = []

    def read_errors() -> None:
        for text in stderr:
            errors.append(text)
            record.write(text)

    reader = threading.Thread(target=read_errors, daemon=True)
    reader.start()

    def reap() -> None:
        # The run is the leader's: once it has ended, what it left in its group
        # (which may hold the output pipes open, and the reading with them) goes.
        child.wait()
        _signal_group(child, signal.SIGKILL)

    threading.Thread(target=reap, daemon=True).start()
    timed_out = threading.Event()
    killed = threading.Event()

    def kill() -> None:
        if child.poll() is None:
            killed.set()
            _signal_group(child, signal.SIGKILL)

    escalation = threading.Timer(grace, kill)
    escalation.daemon = True

    def expire() -> None:
        timed_out.set()
        _signal_group(child, signal.SIGTERM)
        escalation.start()

    watchdog = threading.Timer(timeout, expire)
    watchdog.daemon = True
    watchdog.start()
    lines: list[str] = []
    try:
        for line in stdout:
            lines.append(line)
            record.write(line)
            on_line(line.rstrip("\n"))
        child.wait()
    except KeyboardInterrupt:
        _signal_group(child, signal.SIGINT)
        try:
            child.wait(timeout=interrupt_grace)
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.wait()
        _signal_group(child, signal.SIGKILL)
        reader.join(timeout=5)
        record.close("interrupted", child.returncode)
        raise
    finally:
        watchdog.cancel()
        escalation.cancel()
        with _running_lock:
            _running.discard(child)
            _interrupted.discard(child)
    reader.join(timeout=5)
    if timed_out.is_set():
        stopped = Stopped(argv, timeout, grace, killed.is_set())
        record.close(str(stopped), child.returncode)
        raise stopped
    record.close("", child.returncode)
    result = Result(tuple(argv), child.returncode, "".join(lines), "".join(errors))
    if check and result.returncode != 0:
        raise ToolError(failure(result))
    return result


class _Log:
    """The log file of one stream() run, or nothing when there is none.
    Written from two threads (standard output and error), a line at a time."""

    def __init__(self, path: Path | None, argv: Sequence[str], cwd: Path | None):
        self._lock = threading.Lock()
        self._file = None
        if path is None:
            return
        try:
            self._file = open(path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        except OSError:
            return  # a log that cannot be written never stops the run
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.write(f"# {' '.join(argv)}\n# in {cwd or os.getcwd()}, started {started}\n")

    def write(self, text: str) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            if self._file is not None:
                self._file.write(text if text.endswith("\n") else text + "\n")
                self._file.flush()

    def close(self, why: str, returncode: int | None) -> None:
        if self._file is None:
            return
        ended = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.write(f"# {why or 'ended'}: exit {returncode}, at {ended}")
        with self._lock, contextlib.suppress(OSError):
            if self._file is not None:
                self._file.close()
                self._file = None


class Server:
    """A program left running in the background (an emulator), in a process
    group of its own, its output going to a log file; `stop` ends the group."""

    def __init__(self, argv: Sequence[str], child: subprocess.Popen, log: Path):
        self.argv = tuple(argv)
        self.log = log
        self._child = child

    @property
    def pid(self) -> int:
        return self._child.pid

    def running(self) -> bool:
        return self._child.poll() is None

    def stop(self, grace: float = 10) -> None:
        """SIGTERM to the group, SIGKILL after `grace` seconds; waits for the end. Idempotent."""
        _end_group(self._child, grace)


def serve(
    argv: Sequence[str], *, log: Path, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> Server:
    """Start `argv` in the background with its standard output and error in
    `log`; stdin is closed. The caller must `stop()` it (a `with` block of
    its own or a `finally`)."""
    with open(log, "ab") as out:
        child = _start(argv, cwd, env, "", stdout=out, stderr=subprocess.STDOUT)
    return Server(argv, child, log)


class Held:
    """A long-running program started by hold(), in a process group of its
    own: whatever it starts (ssh's ProxyJump child) is in that group too, so
    `stop` ends them all. Its standard error is kept for the failure message."""

    def __init__(self, argv: Sequence[str], child: subprocess.Popen):
        self.argv = tuple(argv)
        self._child = child
        self._errors: list[str] = []
        stderr = child.stderr
        assert stderr is not None  # a pipe: asked for in hold()

        def read_errors() -> None:
            for text in stderr:
                self._errors.append(text)

        self._reader = threading.Thread(target=read_errors, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The process id of the program, which is also its process group id."""
        return self._child.pid

    @property
    def returncode(self) -> int | None:
        """Its exit code once it ended (negative: the signal that ended it), else None."""
        return self._child.poll()

    def running(self) -> bool:
        """Whether the program (the group's leader) has not ended yet."""
        return self._child.poll() is None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to `timeout` seconds (None: until it ends); its exit code, or None if still running."""
        try:
            return self._child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def errors(self) -> str:
        """What it wrote to standard error so far (all of it once it has ended)."""
        if self._child.poll() is not None:
            self._reader.join(timeout=5)
        return "".join(self._errors)

    def stop(self, grace: float = 5) -> None:
        """SIGTERM to the whole group, SIGKILL after `grace` seconds; waits
        for the end. Idempotent; the group is gone when it returns."""
        _end_group(self._child, grace)
        # SIGKILL is sent, not yet done: give the group a moment to be gone. A
        # child left as a zombie for its new parent to reap still counts, so
        # the wait is bounded.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                os.killpg(self._child.pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.02)
        self._reader.join(timeout=5)


def hold(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    advice: str = "",
) -> Held:
    """Start `argv`, a program meant to run until stopped (an SSH tunnel), in
    a process group of its own with stdin closed, standard output discarded
    and standard error kept; ToolError when it cannot start. The caller must
    `stop()` it in a `finally`, so Ctrl-C or SIGTERM leaves nothing running."""
    child = _start(
        argv, cwd, env, advice, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        errors="replace",
    )  # fmt: skip
    return Held(argv, child)


def _start(
    argv: Sequence[str], cwd: Path | None, env: Mapping[str, str] | None, advice: str, **io
) -> subprocess.Popen:
    """`argv` started in a process group of its own with stdin closed; ToolError when it cannot start."""
    executable = find(argv[0], advice)
    merged = _environment(env)
    try:
        return subprocess.Popen(
            (executable, *argv[1:]),
            cwd=cwd,
            env=merged,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **io,
        )
    except OSError as exc:
        raise ToolError(f"could not run {_shown(argv)}: {exc.strerror or exc}") from None


def socket_safe_temp_folder(tmpdir: str | None, extra: int = 0) -> str:
    """The temporary folder for the programs levels-tf starts, an absolute path.

    `tmpdir` (the user's TMPDIR; None or empty for the system's default) when
    a plugin socket's path under it, plus `extra` bytes of subfolder the
    caller adds, stays within SOCKET_PATH_MAX; otherwise the first of
    SHORT_TEMP_FOLDERS that does and that this user may write, else `tmpdir`
    unchanged (its programs then say why they cannot start)."""
    chosen = os.path.abspath(tmpdir) if tmpdir else tempfile.gettempdir()

    def fits(folder: str) -> bool:
        return len(os.fsencode(folder)) + extra + SOCKET_ROOM <= SOCKET_PATH_MAX

    if fits(chosen):
        return chosen
    for folder in SHORT_TEMP_FOLDERS:
        if fits(folder) and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK):
            return folder
    return chosen


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """The environment a program starts with: `env` (default this process's),
    with TMPDIR moved to a short folder when a plugin socket would not fit
    under it (socket_safe_temp_folder)."""
    merged = dict(os.environ) if env is None else dict(env)
    current = merged.get("TMPDIR")  # Go's programs read TMPDIR alone, /tmp without it
    if current:
        safe = socket_safe_temp_folder(current)
        if safe != os.path.abspath(current):
            merged["TMPDIR"] = safe
    return merged


def stop_running() -> int:
    """Terminate every program stream() is running now (the watchdog's way to
    end a step the emulator cannot finish); how many were stopped."""
    with _running_lock:
        children = list(_running)
    for child in children:
        _signal_group(child, signal.SIGTERM)
    return len(children)


def interrupt_running(grace: float = 300) -> None:
    """Ctrl-C for the programs stream() runs in other threads: each group gets
    SIGINT once, as in stream(), and up to `grace` seconds to stop before it
    is killed."""
    with _running_lock:
        children = [child for child in _running if child not in _interrupted]
        _interrupted.update(children)
    for child in children:
        _signal_group(child, signal.SIGINT)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.wait()


def _end_group(child: subprocess.Popen, grace: float) -> None:
    """SIGTERM to `child`'s process group, SIGKILL after `grace` seconds;
    waits for the leader, then kills what it left in the group."""
    if child.poll() is None:
        _signal_group(child, signal.SIGTERM)
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.wait()
    # The leader may be gone while children it started live on.
    _signal_group(child, signal.SIGKILL)


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signum)


def failure(result: Result) -> str:
    lines = (result.stderr.strip() or result.stdout.strip()).splitlines()[-OUTPUT_LINES:]
    detail = "\n".join("  " + line for line in lines)
    return f"{_shown(result.argv)} failed (exit {result.returncode})" + (
        f":\n{detail}" if detail else ""
    )


def _shown(argv: Sequence[str]) -> str:
    return " ".join(argv[:4]) + (" ..." if len(argv) > 4 else "")
