"""Aurora day-2 operations, the pure part: which cluster serves an
environment, what its members are, and the steps of a resize.

Nothing here calls AWS; `db_resize.py` and `commands/db.py` read the cluster
through `aws.py` and hand the answers in.

Which cluster: every VPC group has one (modules/database, called by the
group's shared stack), identified <project>-<group> (names.database_cluster).
A group of one environment (production) takes that environment's overrides
(`environments.<env>.database.*`); a group of several (nonprod: dev, test,
qa) shares one cluster configured by the top-level `database`.

Terraform's members are <cluster>-instance-1 .. -<replicas+1>; instance-1 has
promotion tier 0 (the writer Terraform intends), the others tier 1.

The resize (the case study's recipe, made safe to stop at any step):

1. add a temporary reader of the new class, <cluster>-resize-<stamp>, tagged
   `levels-tf:temporary-member`, promotion tier 15 (Aurora promotes it only
   when asked), in the writer's zone, and wait until it is available;
2. fail over to it (one brief interruption of writes, as in a failure) and
   wait until it is the writer;
3. modify Terraform's members one at a time to the new class, immediately,
   waiting until each is available in its new class (the readers left keep
   serving reads);
4. fail back to the member that was the writer before (a second brief
   interruption): deleting a writer would make Aurora fail over by itself,
   at a moment nobody chose, and Terraform's promotion tiers name it;
5. remove the temporary reader and wait until it is gone.

The end state: the same members Terraform knows, every one of the new
class, the same writer as before. infra.yaml is then changed to the new
class and rendered, so the next plan has no change of instance class.

When the writer already has the new class, only the members that lack it
are modified (no temporary reader, no failover). A member left out of
Terraform's set (added by hand) stops the resize: it would keep its class.

Every step can run again: an instance that exists is not created again, a
writer that already is the target is not failed over, a member of the new
class is not modified, a member that is gone is not deleted. So a resume
runs the first unfinished step again from its start.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import UsageError
from .names import database_cluster, database_instances
from .validation import Config, require_environment

TEMPORARY_TAG = "levels-tf:temporary-member"
# Aurora promotes the reader of the lowest tier first (0 to 15); the
# temporary reader is promoted only on request.
TEMPORARY_TIER = 15
SERVERLESS_CLASS = "db.serverless"
AVAILABLE = "available"

# The tags of a cluster `db restore` made (and no other): `db drop` deletes
# only a cluster tagged ManagedBy=levels-tf-restore.
MANAGED_BY = "ManagedBy"
RESTORE_MANAGED_BY = "levels-tf-restore"
RESTORED_FROM = "RestoredFrom"
RESTORED_TO = "RestoredTo"

ADD_READER = "add-reader"
FAILOVER = "failover"
MODIFY = "modify"
REMOVE = "remove"
ACTIONS = (ADD_READER, FAILOVER, MODIFY, REMOVE)


@dataclass(frozen=True)
class Cluster:
    """The cluster that serves an environment or a VPC group, as infra.yaml says.

    `environments`: those it serves; `members`: Terraform's instance ids, the
    first being the intended writer; `override_env`: the environment whose
    overrides configure it (a group of one), None for a shared group."""

    id: str
    group: str
    environments: tuple[str, ...]
    members: tuple[str, ...]
    engine: str
    engine_version: str
    instance_class: str
    serverless: bool
    override_env: str | None


@dataclass(frozen=True)
class Member:
    """One instance of the running cluster (from DescribeDBClusters and DescribeDBInstances)."""

    id: str
    instance_class: str
    status: str
    writer: bool
    promotion_tier: int
    zone: str | None
    temporary: bool


@dataclass
class Step:
    """One step of a resize: `action` (one of ACTIONS) on `instance`; `done` once finished."""

    action: str
    instance: str
    done: bool = False

    def describe(self, instance_class: str) -> str:
        """What the step does, in one line."""
        return {
            ADD_READER: f"add reader {self.instance} ({instance_class}) and wait until it is available",
            FAILOVER: f"fail over to {self.instance} and wait until it is the writer",
            MODIFY: f"modify {self.instance} to {instance_class} and wait until it is available",
            REMOVE: f"remove {self.instance} and wait until it is gone",
        }[self.action]


@dataclass
class ResizePlan:
    """A resize of `cluster` from `previous_class` to `instance_class`, and its steps.

    Stored as JSON (`as_json`/`from_json`) while it runs, so it can resume."""

    cluster: str
    instance_class: str
    previous_class: str
    writer: str
    temporary: str | None
    steps: list[Step] = field(default_factory=list)
    zone: str | None = None  # of the temporary reader: the writer's

    def pending(self) -> Step | None:
        """The first unfinished step, or None when every step is done."""
        return next((step for step in self.steps if not step.done), None)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResizePlan:
        """A plan from `as_json`'s dict; ValueError when it is not one."""
        try:
            steps = [
                Step(str(s["action"]), str(s["instance"]), bool(s["done"])) for s in data["steps"]
            ]
            if any(step.action not in ACTIONS for step in steps):
                raise ValueError("unknown step")
            return cls(
                str(data["cluster"]),
                str(data["instance_class"]),
                str(data["previous_class"]),
                str(data["writer"]),
                None if data["temporary"] is None else str(data["temporary"]),
                steps,
                None if data.get("zone") is None else str(data["zone"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a resize plan: {exc}") from None


def cluster_of(config: Config, env: str | None, group: str | None) -> Cluster:
    """The cluster serving environment `env` or VPC group `group` (exactly one given).

    Raises UsageError for an unknown name, both or neither given, or a file
    without a database."""
    infra = config.infra
    if (env is None) == (group is None):
        raise UsageError("give --env ENV or --group GROUP (one of them)")
    if env is not None:
        require_environment(config, env)
        group = infra.group_of(env)
    assert group is not None
    if group not in infra.vpc_groups:
        raise UsageError(f"no VPC group {group!r}; defined: {', '.join(infra.vpc_groups)}")
    environments = tuple(infra.vpc_groups[group].environments)
    override_env = environments[0] if len(environments) == 1 else None
    effective = config.environments[override_env] if override_env else infra
    database = effective.database
    if database is None:
        raise UsageError("infra.yaml has no database: there is no cluster to operate on")
    cluster = database_cluster(infra, group)
    return Cluster(
        id=cluster,
        group=group,
        environments=environments,
        members=tuple(database_instances(cluster, database.replicas)),
        engine=database.engine,
        engine_version=database.engine_version,
        instance_class=database.instance_class,
        serverless=database.serverless is not None,
        override_env=override_env,
    )


def members(cluster: dict[str, Any], instances: list[dict[str, Any]]) -> list[Member]:
    """The running members of `cluster` (a DescribeDBClusters record) from
    `instances` (DescribeDBInstances records), in the cluster's order."""
    writers = {
        m["DBInstanceIdentifier"]: bool(m.get("IsClusterWriter"))
        for m in cluster.get("DBClusterMembers", [])
    }
    by_id = {i["DBInstanceIdentifier"]: i for i in instances}
    found = []
    for instance_id, writer in writers.items():
        record = by_id.get(instance_id, {})
        tags = {t.get("Key"): t.get("Value") for t in record.get("TagList", [])}
        found.append(
            Member(
                id=instance_id,
                instance_class=str(record.get("DBInstanceClass", "")),
                status=str(record.get("DBInstanceStatus", "unknown")),
                writer=writer,
                promotion_tier=int(record.get("PromotionTier", 1)),
                zone=record.get("AvailabilityZone"),
                temporary=TEMPORARY_TAG in tags,
            )
        )
    return found


def reader_settings(record: dict[str, Any]) -> dict[str, Any]:
    """The CreateDBInstance parameters that make a new instance run like the
    instance of `record` (a DescribeDBInstances record): its DB parameter
    group, Performance Insights, Enhanced Monitoring, CA certificate and minor
    version upgrades. A temporary reader is the writer for a while: without
    them it would run with the engine's default parameters and unmonitored.
    Field and parameter names: Amazon RDS API Reference, DescribeDBInstances
    (DBInstance) and CreateDBInstance."""
    settings: dict[str, Any] = {}
    groups = [g.get("DBParameterGroupName") for g in record.get("DBParameterGroups") or []]
    if groups and groups[0]:
        settings["DBParameterGroupName"] = groups[0]
    if record.get("PerformanceInsightsEnabled"):
        settings["EnablePerformanceInsights"] = True
        for source, target in (
            ("PerformanceInsightsKMSKeyId", "PerformanceInsightsKMSKeyId"),
            ("PerformanceInsightsRetentionPeriod", "PerformanceInsightsRetentionPeriod"),
        ):
            if record.get(source) is not None:
                settings[target] = record[source]
    interval = record.get("MonitoringInterval")
    if interval and record.get("MonitoringRoleArn"):
        settings["MonitoringInterval"] = interval
        settings["MonitoringRoleArn"] = record["MonitoringRoleArn"]
    for key in ("CACertificateIdentifier", "AutoMinorVersionUpgrade"):
        if record.get(key) is not None:
            settings[key] = record[key]
    return settings


def writer_of(found: list[Member]) -> Member | None:
    """The writer among `found`, or None (a cluster between writers)."""
    return next((m for m in found if m.writer), None)


def refuse_serverless(cluster: Cluster, record: dict[str, Any], found: list[Member]) -> None:
    """UsageError when `cluster` (DescribeDBClusters `record`, members `found`) is
    Serverless: it has no instance class to resize."""
    if record.get("EngineMode") == "serverless":
        raise UsageError(
            f"{cluster.id} is Aurora Serverless v1: it has no instances to resize; "
            "set its capacity in the RDS console instead"
        )
    if cluster.serverless or any(m.instance_class == SERVERLESS_CLASS for m in found):
        raise UsageError(
            f"{cluster.id} runs Aurora Serverless v2 ({SERVERLESS_CLASS}): it scales by itself; "
            "set database.serverless.min_capacity/max_capacity in infra.yaml instead"
        )


def resize_plan(
    cluster: Cluster, found: list[Member], instance_class: str, temporary: str
) -> ResizePlan:
    """The steps that bring every member of `cluster` (running as `found`) to
    `instance_class`, using `temporary` as the temporary reader's id (see the
    module docstring). No steps when every member already has the class.

    Raises UsageError when a member is not available, the cluster has no
    writer, or a member is not one of Terraform's."""
    unavailable = [f"{m.id} ({m.status})" for m in found if m.status != AVAILABLE]
    if unavailable:
        raise UsageError(
            f"{cluster.id}: not every member is available: {', '.join(unavailable)}; "
            "wait until it is, then run the resize again"
        )
    foreign = [m.id for m in found if m.id not in cluster.members]
    if foreign:
        raise UsageError(
            f"{cluster.id} has members Terraform does not manage: {', '.join(foreign)}; "
            "a leftover reader of a stopped resize is finished with --resume, any other must be removed first"
        )
    writer = writer_of(found)
    if writer is None:
        raise UsageError(f"{cluster.id} has no writer now; wait until it has one, then run again")
    stale = [m for m in found if m.instance_class != instance_class]
    previous = writer.instance_class
    plan = ResizePlan(cluster.id, instance_class, previous, writer.id, None)
    if not stale:
        return plan
    if writer.instance_class == instance_class:
        plan.steps = [Step(MODIFY, m.id) for m in stale]
        return plan
    readers = [m for m in stale if not m.writer]
    plan.temporary = temporary
    plan.zone = writer.zone
    plan.steps = [
        Step(ADD_READER, temporary),
        Step(FAILOVER, temporary),
        *(Step(MODIFY, m.id) for m in readers),
        Step(MODIFY, writer.id),
        Step(FAILOVER, writer.id),
        Step(REMOVE, temporary),
    ]
    return plan


def tags_of(record: dict[str, Any]) -> dict[str, str]:
    """The tags of a DescribeDBClusters or DescribeDBInstances record."""
    return {str(t.get("Key")): str(t.get("Value")) for t in record.get("TagList", [])}


def restore_time(text: str) -> datetime | None:
    """`text`, an ISO 8601 time with a zone ("2026-05-01T12:00:00Z",
    "2026-05-01T14:00:00+02:00"), in UTC; None when it is not one."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None or when.utcoffset() is None:
        return None
    return when.astimezone(timezone.utc)


def stamp(when: datetime) -> str:
    """`when` as RDS tags and reports show it: 2026-05-01T12:00:00Z (UTC, whole seconds)."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def first_whole_second(when: datetime) -> datetime:
    """The first whole second at or after `when`: the earliest time of a window
    that `stamp` can show and the window still holds."""
    whole = when.replace(microsecond=0)
    return whole if whole == when else whole + timedelta(seconds=1)


def restore_tags(source: str, when: datetime) -> dict[str, str]:
    """The tags of a cluster restored from `source` at `when`: what marks it as
    `db restore`'s, and none of Terraform's (Project, Stack, VpcGroup,
    ManagedBy=levels-tf), so nothing takes it for part of a stack."""
    return {MANAGED_BY: RESTORE_MANAGED_BY, RESTORED_FROM: source, RESTORED_TO: stamp(when)}
