"""Runs the steps of an Aurora resize (aurora.py plans them), one at a time,
recording progress so a stopped resize continues where it stopped.

Progress lives in `.levels-tf/db-resize-<cluster>.json` beside infra.yaml,
replaced atomically (writer.write_atomic) after every finished step. A step
interrupted (Ctrl-C, an AWS error, a timeout) is not marked done; `--resume`
runs it again from its start, which every step allows (aurora.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import aurora, console, writer
from .aurora import ADD_READER, FAILOVER, MODIFY, REMOVE, ResizePlan, Step
from .aws import Aws, AwsError
from .errors import UsageError

STATE_FOLDER = ".levels-tf"
# Seconds between two looks at the cluster while waiting, and the longest wait
# of one step (a modify of a large instance takes tens of minutes on AWS).
POLL_SECONDS = 15.0
STEP_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Waiting:
    """How to wait for RDS: `poll` seconds between looks, at most `timeout` seconds."""

    poll: float = POLL_SECONDS
    timeout: float = STEP_TIMEOUT
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


WAITING = Waiting()


def state_path(config_path: Path, cluster: str) -> Path:
    """Where the resize of `cluster` records its progress."""
    return config_path.parent / STATE_FOLDER / f"db-resize-{cluster}.json"


def load_state(path: Path) -> ResizePlan | None:
    """The recorded resize at `path`, or None when there is none; UsageError when unreadable."""
    if not path.exists():
        return None
    try:
        return ResizePlan.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"{path}: not a resize record ({exc}); remove it once the cluster is as it should be"
        ) from None


def save_state(path: Path, plan: ResizePlan) -> None:
    """Record `plan` at `path`, atomically."""
    writer.write_atomic(path, json.dumps(plan.as_json(), indent=2) + "\n")


def wait_until(what: str, done: Callable[[], bool], waiting: Waiting) -> None:
    """Look (`done()`) every `waiting.poll` seconds until it is true; AwsError after
    `waiting.timeout` seconds, naming `what` was awaited."""
    start = waiting.clock()
    while not done():
        if waiting.clock() - start >= waiting.timeout:
            raise AwsError(f"timed out after {waiting.timeout:.0f}s waiting until {what}")
        waiting.sleep(waiting.poll)


def is_writer(aws: Aws, cluster: str, instance: str) -> bool:
    """True when `instance` is `cluster`'s writer and the cluster is available."""
    record = aws.db_cluster(cluster)
    if record is None:
        raise AwsError(f"cluster {cluster} is gone")
    writers = [
        m["DBInstanceIdentifier"]
        for m in record.get("DBClusterMembers", [])
        if m.get("IsClusterWriter")
    ]
    return writers == [instance] and record.get("Status") == aurora.AVAILABLE


def _available(aws: Aws, instance: str, instance_class: str | None = None) -> bool:
    record = aws.db_instance(instance)
    if record is None:
        return False
    pending = record.get("PendingModifiedValues", {}).get("DBInstanceClass")
    right_class = instance_class is None or (
        record.get("DBInstanceClass") == instance_class and not pending
    )
    return record.get("DBInstanceStatus") == aurora.AVAILABLE and right_class


def run_step(
    aws: Aws, plan: ResizePlan, step: Step, cluster: aurora.Cluster, waiting: Waiting
) -> None:
    """Do `step` of `plan` and wait for its end; a step already done in AWS is only awaited."""
    name = step.instance
    if step.action == ADD_READER:
        if aws.db_instance(name) is None:
            aws.create_db_reader(
                cluster.id,
                name,
                engine=cluster.engine,
                instance_class=plan.instance_class,
                zone=plan.zone,
                promotion_tier=aurora.TEMPORARY_TIER,
                tags={
                    aurora.TEMPORARY_TAG: f"resize to {plan.instance_class}",
                    "ManagedBy": "levels-tf db resize",
                },
                settings=aurora.reader_settings(aws.db_instance(plan.writer) or {}),
            )
        wait_until(f"{name} is available", lambda: _available(aws, name), waiting)
    elif step.action == FAILOVER:
        wait_until(f"{name} is available", lambda: _available(aws, name), waiting)
        if not is_writer(aws, cluster.id, name):
            aws.failover_db_cluster(cluster.id, name)
        wait_until(
            f"{name} is the writer of {cluster.id}",
            lambda: is_writer(aws, cluster.id, name),
            waiting,
        )
    elif step.action == MODIFY:
        record = aws.db_instance(name)
        if record is None:
            raise AwsError(f"{name} is gone from {cluster.id}")
        if record.get("DBInstanceClass") != plan.instance_class:
            aws.modify_db_instance_class(name, plan.instance_class)
        wait_until(
            f"{name} is available as {plan.instance_class}",
            lambda: _available(aws, name, plan.instance_class),
            waiting,
        )
    elif step.action == REMOVE:
        if aws.db_instance(name) is not None:
            aws.delete_db_instance(name)
        wait_until(f"{name} is gone", lambda: aws.db_instance(name) is None, waiting)


def cluster_state(aws: Aws, cluster: str) -> str:
    """One line: `cluster`'s writer and each member's class and status, as AWS says now."""
    try:
        record = aws.db_cluster(cluster)
        if record is None:
            return f"{cluster}: not found"
        found = aurora.members(record, aws.db_instances(cluster))
    except AwsError as exc:
        return f"{cluster}: state unknown ({exc})"
    parts = [
        f"{m.id} {'writer' if m.writer else 'reader'} {m.instance_class} {m.status}" for m in found
    ]
    return f"{cluster} ({record.get('Status')}): " + "; ".join(parts)


def execute(
    aws: Aws,
    plan: ResizePlan,
    cluster: aurora.Cluster,
    path: Path,
    resume_command: str,
    waiting: Waiting = WAITING,
) -> None:
    """Run `plan`'s unfinished steps in order, recording each finished one at `path`.

    Prints each step and its elapsed seconds. On an error or Ctrl-C the record
    stays, the cluster's state and `resume_command` are printed, and the
    exception goes on (exit 130 for Ctrl-C)."""
    total = len(plan.steps)
    started = time.monotonic()
    step = plan.pending()
    while step is not None:
        number = plan.steps.index(step) + 1
        console.out(f"[{number}/{total}] {step.describe(plan.instance_class)}")
        begun = time.monotonic()
        try:
            run_step(aws, plan, step, cluster, waiting)
        except (Exception, KeyboardInterrupt) as exc:
            stopped = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            console.err(f"step {number}/{total} {stopped}: {step.describe(plan.instance_class)}")
            console.err(f"cluster now: {cluster_state(aws, cluster.id)}")
            console.err(f"progress is recorded in {path}; continue with: {resume_command}")
            raise
        step.done = True
        save_state(path, plan)
        console.out(
            f"      done in {time.monotonic() - begun:.1f}s (total {time.monotonic() - started:.1f}s)"
        )
        step = plan.pending()
