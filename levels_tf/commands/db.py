"""`levels-tf db failover`, `resize`, `restore` and `drop`: Aurora's day-2 operations.

failover: the case study's automatic failover, triggered on purpose, so a
team knows how long its applications lose the writer before a failure
teaches them. resize: the case study's manual recipe for a new instance
class with the least downtime (aurora.py explains each step), then
infra.yaml and the rendered tree say the new class, so the next plan is empty.
restore: a point-in-time restore rehearsed before it is needed, always into
a new cluster beside the live one (never over it), in the same network and
with the same key and parameter groups, so it is reached like the live one.
drop: removes such a copy, and only such a copy.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from .. import aurora, config_edit, console, db_resize, writer
from ..aws import Aws
from ..errors import UsageError
from ..model import DB_INSTANCE_CLASS
from ..names import (
    database_clusters,
    db_cluster_id_problem,
    restored_db_instance,
    temporary_db_instance,
)
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
    if len(cluster.members) < 2:  # infra.yaml says so: no need to ask AWS
        raise UsageError(
            f"{cluster.id} has no reader to fail over to: infra.yaml sets its database.replicas "
            "to 0; set it to 1 or more and apply first"
        )
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
    _, problem = DB_INSTANCE_CLASS.check(instance_class)
    if problem:  # before AWS is asked, and before infra.yaml could be given it
        raise UsageError(f"--instance-class {problem}")
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


def _tunnel_command(config_path: Path, env: str, endpoint: str) -> str:
    return (
        f"levels-tf -c {shlex.quote(str(config_path))} tunnel db --env {env} --endpoint {endpoint}"
    )


def _drop_command(config_path: Path, name: str) -> str:
    return f"levels-tf -c {shlex.quote(str(config_path))} db drop {name} --confirm {name}"


def _new_name(config: Config, name: str) -> str:
    """`name` as RDS stores it (lowercase); UsageError when RDS would refuse it
    or it is a cluster Terraform manages."""
    problem = db_cluster_id_problem(name)
    if problem:
        raise UsageError(f"--as {name}: {problem}; choose another name, e.g. --as levels-restore-1")
    name = name.lower()
    if name in database_clusters(config.infra):
        raise UsageError(
            f"--as {name}: that is a cluster Terraform manages, and a restore never replaces one; "
            "choose a new name"
        )
    return name


def _restore_time(to: str | None, latest: bool) -> datetime | None:
    """The time `--to` names (None for `--latest`); UsageError unless exactly one is given."""
    if (to is None) == (not latest):
        raise UsageError("give --to TIMESTAMP or --latest (one of them)")
    if to is None:
        return None
    when = aurora.restore_time(to)
    if when is None:
        raise UsageError(
            f"--to {to!r}: not an ISO 8601 time with a zone; give e.g. --to 2026-05-01T12:00:00Z"
        )
    return when


def _window(cluster: str, record: dict, when: datetime | None) -> datetime:
    """The source's latest restorable time; UsageError when it has no window or
    `when` is outside it."""
    earliest = record.get("EarliestRestorableTime")
    latest = record.get("LatestRestorableTime")
    if not isinstance(earliest, datetime) or not isinstance(latest, datetime):
        raise UsageError(
            f"{cluster} reports no restorable window (are its automated backups on?)"
            "; check database.backup_retention_days in infra.yaml"
        )
    if when is not None and not earliest <= when <= latest:
        raise UsageError(
            f"--to {aurora.stamp(when)}: outside {cluster}'s restorable window, "
            f"{aurora.stamp(aurora.first_whole_second(earliest))} to {aurora.stamp(latest)}; "
            "give a time inside it, or --latest"
        )
    return latest


def _parameter_group(instance: dict | None) -> str | None:
    """The DB parameter group of a DescribeDBInstances record, when it names one."""
    groups = (instance or {}).get("DBParameterGroups") or []
    return (
        str(groups[0]["DBParameterGroupName"])
        if groups and groups[0].get("DBParameterGroupName")
        else None
    )


def _available_cluster(aws: Aws, name: str) -> bool:
    record = aws.db_cluster(name)
    return record is not None and record.get("Status") == aurora.AVAILABLE


def _available_instance(aws: Aws, name: str) -> bool:
    record = aws.db_instance(name)
    return record is not None and record.get("DBInstanceStatus") == aurora.AVAILABLE


def _instance_gone(aws: Aws, instance: str) -> Callable[[], bool]:
    return lambda: aws.db_instance(instance) is None


def restore(
    config_path: Path,
    env: str | None,
    group: str | None,
    to: str | None,
    latest: bool,
    name: str,
    yes: bool,
    as_json: bool,
    options: RenderOptions = RenderOptions(),
    waiting: db_resize.Waiting | None = None,
) -> int:
    """Restore the cluster of `env` (or `group`) as it was at `to` (ISO 8601
    with a zone) or, with `latest`, at its latest restorable time, into a new
    cluster `name`; add one writer to it and wait until it is available.

    The copy has the source's DB subnet group, VPC security groups, KMS key,
    cluster parameter group and IAM database authentication, and its writer the source writer's class and DB
    parameter group; it is tagged as a restore (aurora.restore_tags), not as
    Terraform's. Asks first unless `yes`. UsageError (exit 2) for an invalid
    or taken name, a Terraform-managed name, a bad time or one outside the
    source's restorable window, or a source without a writer. A failure
    after the restore began leaves the copy and says how to drop it."""
    waiting = waiting or db_resize.WAITING
    config, aws, _ = _connect(config_path, options)
    cluster = aurora.cluster_of(config, env, group)
    when = _restore_time(to, latest)
    name = _new_name(config, name)
    record, found = _running(aws, cluster)
    if aws.db_cluster(name) is not None:
        raise UsageError(
            f"--as {name}: a cluster of that name exists in {aws.region}; choose a new name, "
            f"or remove it first with `{_drop_command(config_path, name)}`"
        )
    instance = restored_db_instance(name)
    if aws.db_instance(instance) is not None:
        raise UsageError(
            f"--as {name}: its writer would be {instance}, an instance that exists already; "
            "choose another name"
        )
    latest_time = _window(cluster.id, record, when)
    source_writer = aurora.writer_of(found)
    if source_writer is None:
        raise UsageError(
            f"{cluster.id} has no writer now, whose class the copy's writer takes"
            "; wait until it has one, then run again"
        )
    parameter_group = _parameter_group(aws.db_instance(source_writer.id))
    subnet_group = str(record.get("DBSubnetGroup") or "")
    security_groups = [str(g["VpcSecurityGroupId"]) for g in record.get("VpcSecurityGroups", [])]
    kms_key = record.get("KmsKeyId")
    cluster_parameters = record.get("DBClusterParameterGroup")
    at = (
        aurora.stamp(when)
        if when
        else f"its latest restorable time (now {aurora.stamp(latest_time)})"
    )
    console.err(f"restore {cluster.id} as it was at {at} into a new cluster {name}:")
    console.err(
        f"  1. restore into {name} (subnet group {subnet_group}, security groups "
        f"{', '.join(security_groups) or 'none'}, parameter group {cluster_parameters}) "
        "and wait until it is available"
    )
    console.err(
        f"  2. add writer {instance} ({source_writer.instance_class}) and wait until it is available"
    )
    _consent(config, cluster, yes, f"Restore {cluster.id} into new cluster {name}?")
    tags = aurora.restore_tags(cluster.id, when or latest_time)
    started = time.monotonic()
    with console.progress_to_stderr() if as_json else contextlib.nullcontext():
        try:
            console.out(f"[1/2] restore {cluster.id} into {name}")
            aws.restore_db_cluster(
                name,
                cluster.id,
                to=when,
                subnet_group=subnet_group,
                security_groups=security_groups,
                kms_key=str(kms_key) if kms_key else None,
                parameter_group=str(cluster_parameters) if cluster_parameters else None,
                serverless_v2=record.get("ServerlessV2ScalingConfiguration"),
                iam_authentication=bool(record.get("IAMDatabaseAuthenticationEnabled")),
                tags=tags,
            )
            db_resize.wait_until(
                f"{name} is available", lambda: _available_cluster(aws, name), waiting
            )
            console.out(f"      done in {time.monotonic() - started:.1f}s")
            begun = time.monotonic()
            console.out(f"[2/2] add writer {instance} ({source_writer.instance_class})")
            aws.create_db_writer(
                name,
                instance,
                engine=str(record.get("Engine") or cluster.engine),
                instance_class=source_writer.instance_class,
                parameter_group=parameter_group,
                tags=tags,
            )
            db_resize.wait_until(
                f"{instance} is available", lambda: _available_instance(aws, instance), waiting
            )
            console.out(f"      done in {time.monotonic() - begun:.1f}s")
        except (Exception, KeyboardInterrupt) as exc:
            stopped = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            console.err(f"the restore into {name} {stopped}: {db_resize.cluster_state(aws, name)}")
            console.err(
                f"remove what exists of it with `{_drop_command(config_path, name)}`, "
                "then run the restore again"
            )
            raise
    seconds = round(time.monotonic() - started, 1)
    made = aws.db_cluster(name) or {}
    endpoint = str(made.get("Endpoint") or "")
    port = made.get("Port")
    reach = _tunnel_command(config_path, env or cluster.environments[0], endpoint)
    result = {
        "cluster": name,
        "source": cluster.id,
        "restored_to": tags[aurora.RESTORED_TO],
        "latest": when is None,
        "writer": instance,
        "instance_class": source_writer.instance_class,
        "endpoint": endpoint,
        "reader_endpoint": made.get("ReaderEndpoint"),
        "port": port,
        "subnet_group": subnet_group,
        "security_groups": security_groups,
        "kms_key": kms_key,
        "cluster_parameter_group": cluster_parameters,
        "parameter_group": parameter_group,
        "tags": tags,
        "seconds": seconds,
        "tunnel": reach,
        "drop": _drop_command(config_path, name),
    }
    if as_json:
        console.report_json(result)
    else:
        console.out(
            f"{name}: {cluster.id} as it was at {tags[aurora.RESTORED_TO]}, "
            f"writer {instance} ({source_writer.instance_class}), in {seconds:.1f}s"
        )
        console.out(f"writer endpoint: {endpoint}:{port}")
        console.out(f"reach it through the double tunnel: {reach}")
        console.out(f"remove it when done: {result['drop']}")
    return 0


def drop(
    config_path: Path,
    name: str,
    confirm: str,
    as_json: bool,
    options: RenderOptions = RenderOptions(),
    waiting: db_resize.Waiting | None = None,
) -> int:
    """Delete cluster `name`, a copy `db restore` made: its instances, then
    the cluster, without a final snapshot, waiting until each is gone.

    UsageError (exit 2), nothing deleted, when `confirm` is not `name`, the
    cluster does not exist, or Terraform may manage it: its identifier is a
    cluster infra.yaml renders, it lacks the tag ManagedBy=levels-tf-restore,
    or its deletion protection is on. A failure part way is finished by
    running the same drop again (what is gone is not deleted twice)."""
    waiting = waiting or db_resize.WAITING
    problem = db_cluster_id_problem(name)
    if problem:
        raise UsageError(f"{name}: {problem}; give the name `levels-tf db restore` printed")
    # RDS keeps identifiers in lowercase, as db restore --as does.
    if confirm.lower() != name.lower():
        raise UsageError(
            f"--confirm {confirm}: not {name}; repeat the cluster's name: --confirm {name}"
        )
    config, aws, _ = _connect(config_path, options)
    name = name.lower()
    if name in database_clusters(config.infra):
        raise UsageError(
            f"{name} is a cluster Terraform manages (infra.yaml renders it); db drop removes only "
            "copies db restore made: destroy the stack with `levels-tf destroy` instead"
        )
    record = aws.db_cluster(name)
    if record is None:
        raise UsageError(
            f"no cluster {name} in {aws.region}: nothing to drop; check the name `levels-tf db restore` printed"
        )
    tags = aurora.tags_of(record)
    if tags.get(aurora.MANAGED_BY) != aurora.RESTORE_MANAGED_BY:
        raise UsageError(
            f"{name} is not a copy db restore made (no tag {aurora.MANAGED_BY}={aurora.RESTORE_MANAGED_BY}); "
            "nothing was deleted: remove it where it was made (Terraform, or the RDS console)"
        )
    if record.get("DeletionProtection"):
        raise UsageError(
            f"{name} has deletion protection on; nothing was deleted: check why, and turn it off "
            "(ModifyDBCluster, DeletionProtection false) only if it is a throwaway copy"
        )
    members = [str(m["DBInstanceIdentifier"]) for m in record.get("DBClusterMembers", [])]
    members += [
        str(i["DBInstanceIdentifier"])
        for i in aws.db_instances(name)
        if i["DBInstanceIdentifier"] not in members
    ]
    console.err(
        f"drop {name} (restored from {tags.get(aurora.RESTORED_FROM, '?')} at "
        f"{tags.get(aurora.RESTORED_TO, '?')}), no final snapshot: "
        f"{', '.join(members) or 'no instances'}, then the cluster"
    )
    started = time.monotonic()
    total = len(members) + 1
    with console.progress_to_stderr() if as_json else contextlib.nullcontext():
        try:
            for number, member in enumerate(members, start=1):
                console.out(f"[{number}/{total}] delete instance {member}")
                found = aws.db_instance(member)
                if found is not None and found.get("DBInstanceStatus") != "deleting":
                    aws.delete_db_instance(member)
                db_resize.wait_until(f"{member} is gone", _instance_gone(aws, member), waiting)
            console.out(f"[{total}/{total}] delete cluster {name}")
            left = aws.db_cluster(name)
            if left is not None and left.get("Status") != "deleting":
                aws.delete_db_cluster(name)
            db_resize.wait_until(f"{name} is gone", lambda: aws.db_cluster(name) is None, waiting)
        except (Exception, KeyboardInterrupt) as exc:
            stopped = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            console.err(f"the drop of {name} {stopped}: {db_resize.cluster_state(aws, name)}")
            console.err(f"finish it with `{_drop_command(config_path, name)}`")
            raise
    seconds = round(time.monotonic() - started, 1)
    result = {"cluster": name, "instances": members, "seconds": seconds}
    if as_json:
        console.report_json(result)
    else:
        console.out(f"{name}: dropped with {len(members)} instance(s) in {seconds:.1f}s")
    return 0
