"""levels-tf's folder in the user's cache: what it can always rebuild, and the
logs of the Terraform and Packer runs it started."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

NAME = "levels-tf"


def cache_dir() -> Path:
    """levels-tf's cache folder (not created): `$XDG_CACHE_HOME/levels-tf`,
    else `~/.cache/levels-tf`.

    $XDG_CACHE_HOME counts only when it is an absolute path: the XDG base
    directory specification says to ignore a relative one, which would name a
    different folder in every working directory.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / NAME


LOGS = "logs"
LOG_DAYS = 14  # logs older than this are deleted when a new one is made


def new_log(subject: str, command: str) -> Path | None:
    """A fresh path for the log of one run of `command` (e.g. "apply") on
    `subject` (a stack or image name): `<cache_dir>/logs/<subject>-<command>-
    <UTC time to the millisecond>-<pid>.log`, its folder created. Logs older
    than LOG_DAYS days are deleted on the way. None when the folder cannot be
    made: a run is never refused for want of a log."""
    folder = cache_dir() / LOGS
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    _prune(folder, time.time() - LOG_DAYS * 86400)
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    return folder / f"{subject}-{command}-{stamp}-{os.getpid()}.log"


def _prune(folder: Path, before: float) -> None:
    for path in folder.glob("*.log"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < before:
                path.unlink()
