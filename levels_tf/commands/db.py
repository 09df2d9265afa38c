"""`levels-tf db failover` and `levels-tf db resize`: Aurora's day-2 operations.

failover: the case study's automatic failover, triggered on purpose, so a
team knows how long its applications lose the writer before a failure
teaches them. resize: the case study's manual recipe for a new instance
class with the least downtime (aurora.py explains each step), then
infra.yaml and the rendered tree say the new class, so the next plan is empty.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from datetime import datetime, timezone
from pathlib import Path

from .. import aurora, config_edit, console, db_resize, writer
from ..aws import Aws
from ..errors import UsageError
from ..names import temporary_db_instance
from ..options import RenderOptions, resolve
from ..validation import Config, load_config


def _connect(config_path: Path, options: RenderOptions) -> tuple[Config, Aws, bool]:
    """The configuration, clients for its region, and whether they reach an emulator."""
    config = load_config(config_path)
    endpoint = resolve(config_path.parent, options, config.infra.state.backend).aws_endpoint
    return config, Aws(config.infra.region, endpoint), endpoint is not None


def _running(aws: Aws, cluster: aurora.Cluster) -> tuple[dict, list[aurora.Member]]:
    record = aws.db_cluster(cluster.id)
    if record is None:
        raise UsageError(
            f"no cluster {cluster.id} in {aws.region}: apply the {cluster.group} shared stack first"
        )
    return record, aurora.members(record, aws.db_instances(cluster.id))


def _production(config: Config, cluster: aurora.Cluster) -> bool:
    return config.infra.vpc_groups[cluster.group].production


def _consent(config: Config, cluster: aurora.Cluster, yes: bool, question: str) -> None:
    if yes:
        return
    if not console.confirm(question):
        where = " (production)" if _production(config, cluster) else ""
        raise UsageError(f"nothing was changed{where}; answer yes, or add --yes")


def failover(
    config_path: Path,
    env: str | None,
    group: str | None,
    target: str | None,
    yes: bool,
    as_json: bool,
    options: RenderOptions = RenderOptions(),
    waiting: db_resize.Waiting = db_resize.WAITING,
) -> int:
    """Fail the cluster of `env` (or `group`) over to `target` (default: the reader
    Aurora picks by promotion tier); report the writer before and after and the
    seconds until the new writer was available. Production asks unless `yes`."""
    config, aws, _ = _connect(config_path, options)
    cluster = aurora.cluster_of(config, env, group)
    record, found = _running(aws, cluster)
    writer = aurora.writer_of(found)
    readers = [m.id for m in found if not m.writer]
    if writer is None:
        raise UsageError(f"{cluster.id} has no writer now; wait until it has one")
    if not readers:
        raise UsageError(
            f"{cluster.id} has no reader to fail over to; set database.replicas to 1 or more"
        )
    if target is not None and target not in readers:
        raise UsageError(
            f"--target {target}: not a reader of {cluster.id}; its readers: {', '.join(readers)}"
        )
    busy = [f"{m.id} ({m.status})" for m in found if m.status != aurora.AVAILABLE]
    if busy or record.get("Status") != aurora.AVAILABLE:
        raise UsageError(
            f"{cluster.id} is not ready for a failover: {', '.join(busy) or record.get('Status')}; wait, then run again"
        )
    if _production(config, cluster):
        _consent(
            config,
            cluster,
            yes,
            f"Fail over production cluster {cluster.id} (writes stop briefly)?",
        )
    console.err(
        f"{cluster.id}: writer {writer.id}; failing over to {target or 'the reader Aurora picks'}"
    )
    started = time.monotonic()
    aws.failover_db_cluster(cluster.id, target)

    def changed() -> bool:
        record = aws.db_cluster(cluster.id) or {}
        writers = [
            m["DBInstanceIdentifier"]
            for m in record.get("DBClusterMembers", [])
            if m.get("IsClusterWriter")
        ]
        new = writers[0] if len(writers) == 1 else None
        moved = new is not None and new != writer.id and (target is None or new == target)
        return moved and record.get("Status") == aurora.AVAILABLE

    db_resize.wait_until(f"{cluster.id} has a new writer", changed, waiting)
    seconds = round(time.monotonic() - started, 1)
    after = aurora.writer_of(aurora.members(aws.db_cluster(cluster.id) or {}, []))
    result = {
        "cluster": cluster.id,
        "writer_before": writer.id,
        "writer_after": after.id if after else None,
        "seconds": seconds,
    }
    if as_json:
        console.report_json(result)
    else:
        console.out(
            f"{cluster.id}: writer {writer.id} -> {result['writer_after']} in {seconds:.1f}s"
        )
    return 0


def _command(
    config_path: Path, cluster: aurora.Cluster, env: str | None, instance_class: str
) -> str:
    where = f"--env {env}" if env else f"--group {cluster.group}"
    return (
        f"levels-tf -c {shlex.quote(str(config_path))} db resize {where} "
        f"--instance-class {instance_class} --resume"
    )


def _check_class(
    aws: Aws, emulated: bool, cluster: aurora.Cluster, record: dict, instance_class: str
) -> None:
    version = str(record.get("EngineVersion") or cluster.engine_version)
    classes = aws.db_instance_classes(cluster.engine, version)
    if not classes and emulated:
        console.err(
            f"note: the emulator lists no orderable instance classes for {cluster.engine} {version}; "
            f"{instance_class} is not checked"
        )
        return
    if instance_class not in classes:
        known = ", ".join(sorted(classes)[:12]) or "none"
        raise UsageError(
            f"--instance-class {instance_class}: RDS offers no such class for {cluster.engine} {version} "
            f"in {aws.region}; offered: {known}{', ...' if len(classes) > 12 else ''}"
        )


def resize(
    config_path: Path,
    env: str | None,
    group: str | None,
    instance_class: str,
    yes: bool,
    resume: bool,
    as_json: bool,
    options: RenderOptions = RenderOptions(),
    waiting: db_resize.Waiting = db_resize.WAITING,
) -> int:
    """Bring every member of the cluster of `env` (or `group`) to `instance_class`
    (aurora.py's steps), then set it in infra.yaml and render.

    `resume` continues the resize recorded beside infra.yaml. Asks before the
    first step unless `yes`. UsageError (exit 2) for a Serverless cluster, a
    class RDS does not offer, a member not available, a recorded resize not
    resumed, or nothing to resume."""
    config, aws, emulated = _connect(config_path, options)
    cluster = aurora.cluster_of(config, env, group)
    path = db_resize.state_path(config_path, cluster.id)
    recorded = db_resize.load_state(path)
    resume_command = _command(config_path, cluster, env, instance_class)
    if recorded is not None and not resume:
        raise UsageError(
            f"a resize of {cluster.id} to {recorded.instance_class} is recorded in {path} and not finished: "
            f"run `{_command(config_path, cluster, env, recorded.instance_class)}`"
        )
    if recorded is None and resume:
        raise UsageError(f"--resume: no resize of {cluster.id} is recorded ({path} does not exist)")
    if recorded is not None and recorded.instance_class != instance_class:
        raise UsageError(
            f"--resume: the recorded resize of {cluster.id} is to {recorded.instance_class}, "
            f"not {instance_class}: {_command(config_path, cluster, env, recorded.instance_class)}"
        )
    if recorded is None:
        record, found = _running(aws, cluster)
        aurora.refuse_serverless(cluster, record, found)
        _check_class(aws, emulated, cluster, record, instance_class)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        plan = aurora.resize_plan(
            cluster, found, instance_class, temporary_db_instance(cluster.id, stamp)
        )
    else:
        plan = recorded
    steps = [s for s in plan.steps if not s.done]
    console.err(f"{'resuming: ' if recorded else ''}resize {cluster.id} to {instance_class}:")
    if not steps:
        console.err("  every member already has that class")
    for step in steps:
        console.err(f"  {plan.steps.index(step) + 1}. {step.describe(instance_class)}")
    if steps:
        question = f"Run these {len(steps)} steps on {cluster.id}?"
        _consent(config, cluster, yes, question)
        db_resize.save_state(path, plan)
        with console.progress_to_stderr() if as_json else contextlib.nullcontext():
            db_resize.execute(aws, plan, cluster, path, resume_command, waiting)
    edited = _record_class(config_path, config, cluster, instance_class, options)
    writer.remove(path)
    result = {
        "cluster": cluster.id,
        "instance_class": instance_class,
        "previous_class": plan.previous_class,
        "writer": plan.writer,
        "steps": [{"action": s.action, "instance": s.instance} for s in plan.steps],
        "config_changed": edited,
    }
    if as_json:
        console.report_json(result)
    else:
        console.out(f"{cluster.id}: every member is {instance_class}; writer {plan.writer}")
    return 0


def _record_class(
    config_path: Path,
    config: Config,
    cluster: aurora.Cluster,
    instance_class: str,
    options: RenderOptions,
) -> bool:
    """Set the class in infra.yaml and render; False when it already said so."""
    if cluster.instance_class == instance_class:
        return False
    from . import render as render_cmd

    infra = config.infra
    groups = {name: list(g.environments) for name, g in infra.vpc_groups.items()}
    default = infra.database.instance_class if infra.database else instance_class
    text = config_path.read_text(encoding="utf-8")
    edited = config_edit.set_instance_class(
        text, str(config_path), groups, cluster.group, instance_class, default
    )
    writer.write_atomic(config_path, edited)
    console.err(f"{config_path}: {cluster.group}'s database instance_class is now {instance_class}")
    with console.progress_to_stderr():
        render_cmd.render(config_path, None, False, options)
    return True
