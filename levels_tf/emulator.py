"""The AWS emulators a rehearsal runs on: started on a free loopback port,
seeded with the public images a platform needs, watched, and stopped.

Only loopback: every emulator is told to bind 127.0.0.1, and a user's
`--endpoint` must be a loopback URL too. moto is the one offered; the README
says why (ministack, measured too, cannot keep an Auto Scaling group behind
a load balancer or move it to a new launch template version). Nothing here knows what an emulator lacks; that is
emulator_profile.py's job.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import process
from .endpoint import check_endpoint
from .errors import LevelsError

START_TIMEOUT = 60  # seconds for an emulator to answer its first request
LOOPBACK = "127.0.0.1"

# The environment an emulator and every program of a rehearsal gets: fake
# credentials, no instance metadata service, no profile or config file of
# the user's, and no proxy between them and the emulator.
FAKE_CREDENTIALS = ("rehearsal", "rehearsal")


class EmulatorError(LevelsError):
    """An emulator could not be started or did not answer."""

    exit_code = 1


@dataclass(frozen=True)
class Kind:
    """How to run one emulator: a Python module (or an executable) with its
    host and port flags, the pip requirement it comes from, and the request
    that says it is up."""

    name: str
    requirement: str  # what `pip install` needs, pinned to the version measured
    package: str  # the Python package that must be importable by the interpreter running levels-tf
    module: str  # python -m MODULE starts it
    ready_path: str  # a GET that answers 200 once the emulator serves
    argv: Callable[[str, int], list[str]]  # (host, port) -> arguments after the module

    def command(self) -> list[str]:
        """The program to start; EmulatorError with the pip line when it is not installed."""
        import importlib.util

        if importlib.util.find_spec(self.package) is None:
            raise EmulatorError(
                f"the {self.name} emulator is not installed: pip install '{self.requirement}'"
            )
        return [sys.executable, "-m", self.module]


KINDS: dict[str, Kind] = {
    "moto": Kind(
        name="moto",
        requirement="moto[server]==5.2.5",
        package="moto",
        module="levels_tf.moto_launcher",
        ready_path="/moto-api/",
        argv=lambda host, port: [host, str(port)],
    ),
}


@dataclass
class Emulator:
    """A running emulator (or one the user runs, when `server` is None)."""

    kind: Kind
    url: str
    server: process.Server | None = None
    _log_offset: int = field(default=0, repr=False)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def server_errors(self) -> list[str]:
        """Lines the emulator logged since the last call that tell of a 5xx
        answer or an API it does not implement; empty for an emulator the
        user runs (its log is not ours)."""
        if self.server is None or not self.server.log.exists():
            return []
        with open(self.server.log, "rb") as log:
            log.seek(self._log_offset)
            chunk = log.read()
        self._log_offset += len(chunk)
        return [
            line
            for line in chunk.decode(errors="replace").splitlines()
            if SERVER_ERROR.search(line)
        ]


# A werkzeug access line with a 5xx status (moto), or an API the emulator says it lacks.
SERVER_ERROR = re.compile(r'" 5\d\d [-\d]|not (been )?implemented|NotImplemented', re.IGNORECASE)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def answers(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of a GET to loopback `url`, never through a proxy; None when nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url), timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


def start(kind: Kind, folder: Path, env: dict[str, str], extra_env: dict[str, str]) -> Emulator:
    """Start `kind` on a free loopback port with its log in `folder`; wait
    until it answers (START_TIMEOUT). `env` is the rehearsal's environment,
    `extra_env` the emulator's settings (seed files, delays). A port taken
    between probe and bind gets another try."""
    command = kind.command()
    failure = ""
    for attempt in range(3):
        port = free_port()
        url = f"http://{LOOPBACK}:{port}"
        log = folder / f"{kind.name}-{attempt}.log"
        server = process.serve(
            [*command, *kind.argv(LOOPBACK, port)],
            log=log,
            cwd=folder,
            env={**env, "HOME": str(folder), **extra_env},
        )
        deadline = time.monotonic() + START_TIMEOUT
        while server.running() and time.monotonic() < deadline:
            if answers(url + kind.ready_path, timeout=1) == 200:
                return Emulator(kind, url, server)
            time.sleep(0.2)
        server.stop()
        last = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
        failure = "; ".join(last)
    raise EmulatorError(
        f"{kind.name} did not start on {LOOPBACK}: {failure or 'no output'}; check that it is "
        "installed (pip install 'levels-tf[rehearse]'), or start one and pass --endpoint"
    )


def user_run(kind: Kind, url: str) -> Emulator:
    """An emulator the user runs at loopback `url`; EmulatorError when it does not answer."""
    url = check_endpoint(url, option="--endpoint", loopback=True)
    if answers(url + "/") is None:
        raise EmulatorError(
            f"nothing answers at {url}; start the emulator first, or leave --endpoint out"
        )
    return Emulator(kind, url)


def write_seed(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path
