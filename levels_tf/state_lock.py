"""The state lock a Terraform run that did not end by itself may leave behind.

Terraform takes a stack's state lock for plan and apply and releases it when
it ends, also when it is stopped with SIGINT or SIGTERM. Killed (SIGKILL at
the end of a grace period, the kernel's out-of-memory killer), it cannot:

- the S3 backend with `use_lockfile` keeps the lock as an object beside the
  state, `<key>.tflock`, whose JSON is Terraform's LockInfo (`ID`,
  `Operation`, `Who` as user@host, `Version`, `Created` in RFC 3339, `Path`);
  it stays until `terraform force-unlock ID` deletes it (Terraform's S3
  backend documentation, "State Locking"; hashicorp/terraform
  internal/backend/remote-state/s3 and internal/states/statemgr/locker.go);
- the local backend locks the state file with an operating system lock
  (flock), which ends with the process: nothing is left to release.
"""

from __future__ import annotations

import calendar
import contextlib
import getpass
import json
import os
import pwd
import re
import shlex
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import console, context
from .aws import Aws, AwsError
from .stacks import Stack
from .terraform import TerraformError

if TYPE_CHECKING:
    from .workspace import Workspace

LOCK_SUFFIX = ".tflock"
CLOCK_SLACK = 2  # seconds: Created is to the nanosecond, the run's start to the second


@dataclass(frozen=True)
class HeldLock:
    """A state lock object found in S3: Terraform's LockInfo."""

    id: str
    operation: str
    who: str
    created: str


def report(workspace: Workspace, stack: Stack, since: float, *, interrupted: bool = False) -> None:
    """After a run in `stack` that began at `since` (time.time()) and did
    not end by itself (stopped at its time limit, killed, or interrupted),
    say on stderr, one line, whether the state lock it took is still held,
    and if so the exact command that releases it. Nothing for a local
    backend (its lock ended with the process), nor for a lock another run
    took (one created before `since`, or by another user@host)."""
    backend = context.backend(workspace.config.infra, stack, workspace.config.options.aws_endpoint)
    if backend.type != "s3":
        return
    bucket, key = str(backend.settings["bucket"]), str(backend.settings["key"]) + LOCK_SUFFIX
    folder = workspace.folder(stack)
    unlock = " ".join(shlex.quote(word) for word in (*workspace.terraform.command, "force-unlock"))
    try:
        aws = Aws(workspace.config.infra.region, workspace.config.options.aws_endpoint)
        held = _ours(aws.object_text(bucket, key), since)
    except AwsError as error:
        console.err(
            f"{stack.name}: could not check its state lock ({error}); if the next run says the state "
            f"is locked, release it once no Terraform runs on {stack.name}: "
            f"cd {shlex.quote(str(folder))} && {unlock} -force LOCK_ID (the ID that message gives)"
        )
        return
    if held is None:
        if not interrupted:
            console.err(f"{stack.name}: the state lock was released (s3://{bucket}/{key} is gone)")
        return
    console.err(
        f"{stack.name}: the state lock is still held ({held.operation} since {held.created}, "
        f"s3://{bucket}/{key}); once no Terraform runs on {stack.name}, release it: "
        f"cd {shlex.quote(str(folder))} && {unlock} -force {held.id}"
    )


@contextlib.contextmanager
def watch(workspace: Workspace, stack: Stack) -> Iterator[None]:
    """Around Terraform runs in `stack` that take its state lock: when one
    does not end by itself (a TerraformError that is `abnormal`, or Ctrl-C),
    `report` what became of the lock, then let the error go on."""
    since = time.time()
    try:
        yield
    except TerraformError as error:
        if error.abnormal:
            report(workspace, stack, since)
        raise
    except KeyboardInterrupt:
        report(workspace, stack, since, interrupted=True)
        raise


def who() -> str:
    """This user@host, as Terraform writes it into a lock's `Who` (Go's
    user.Current, which reads the password database, and os.Hostname)."""
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = getpass.getuser()
    return f"{user}@{socket.gethostname()}"


def _ours(text: str | None, since: float) -> HeldLock | None:
    """The lock in `text` (a .tflock object) when this user on this host took it
    at or after `since`; None when there is none, or it is another run's."""
    if text is None:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        return None
    if not isinstance(info, dict) or not isinstance(info.get("ID"), str):
        return None
    created = str(info.get("Created", ""))
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", created)
    if match is None:
        return None
    taken = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    if taken < since - CLOCK_SLACK or info.get("Who") != who():
        return None
    return HeldLock(info["ID"], str(info.get("Operation", "")), str(info.get("Who")), created)
