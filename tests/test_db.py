"""`levels-tf db failover` and `db resize` on the emulator (moto in server mode).

moto performs every call a resize makes (CreateDBInstance in a cluster,
FailoverDBCluster, ModifyDBInstance, DeleteDBInstance) and finishes each at
once, so the waits end at their first look. It lists no orderable instance
classes for aurora-mysql, so the class check is skipped there (said on
stderr) and its refusal is proven with an injected answer. A member that
is not available, and failures at a step, cannot be produced on moto: they
are injected at that step, and the resume then runs on the real emulator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from levels_tf import aurora
from levels_tf.aws import Aws, AwsError

from .conftest import copy_reference

pytestmark = pytest.mark.slow

OLD = "db.r6g.large"
NEW = "db.r6g.xlarge"
PRODUCTION = "levels-production"
NONPROD = "levels-nonprod"


def _rds(endpoint: str):
    return boto3.client("rds", endpoint_url=endpoint, region_name="us-east-1")


def _create(rds, cluster: str, count: int, instance_class: str = OLD, **instance: object) -> None:
    rds.create_db_cluster(
        DBClusterIdentifier=cluster,
        Engine="aurora-mysql",
        EngineVersion="8.0.mysql_aurora.3.08.0",
        MasterUsername="admin",
        MasterUserPassword="emulated-only-1",
    )
    for n in range(1, count + 1):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{cluster}-instance-{n}",
            DBClusterIdentifier=cluster,
            Engine="aurora-mysql",
            DBInstanceClass=instance_class,
            PromotionTier=0 if n == 1 else 1,
            **instance,
        )


def _state(rds, cluster: str) -> tuple[str | None, dict[str, str]]:
    """(writer, {member: class}) as the emulator says."""
    record = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
    writer = next(
        (m["DBInstanceIdentifier"] for m in record["DBClusterMembers"] if m["IsClusterWriter"]),
        None,
    )
    ids = {m["DBInstanceIdentifier"] for m in record["DBClusterMembers"]}
    classes = {
        i["DBInstanceIdentifier"]: i["DBInstanceClass"]
        for i in rds.describe_db_instances()["DBInstances"]
        if i["DBInstanceIdentifier"] in ids
    }
    return writer, classes


@pytest.fixture
def platform(tmp_path, aws_env):
    """The reference infra.yaml in tmp_path, and its two clusters on the emulator
    as Terraform makes them: production 3 members, nonprod 2, all db.r6g.large."""
    config = copy_reference(tmp_path / "project")
    rds = _rds(aws_env)
    _create(rds, PRODUCTION, 3)
    _create(rds, NONPROD, 2)
    return config, rds


def spy_on(monkeypatch, names: tuple[str, ...], entry: Callable[..., Any]) -> list[Any]:
    """Record `entry(name, first, args, kwargs)` for every call of Aws methods
    `names`, in order, each still made (to the emulator); the list of records."""
    made: list[Any] = []
    for name in names:
        original = getattr(Aws, name)

        def spy(self, first, *args, _name=name, _original=original, **kwargs):
            made.append(entry(_name, first, args, kwargs))
            return _original(self, first, *args, **kwargs)

        monkeypatch.setattr(Aws, name, spy)
    return made


@pytest.fixture
def calls(monkeypatch):
    """The changing RDS calls levels-tf makes, in order, each still sent to the emulator."""

    def entry(name, first, args, kwargs):
        target = args[0] if args and name in ("create_db_reader", "failover_db_cluster") else first
        return (name, target)

    names = (
        "create_db_reader",
        "failover_db_cluster",
        "modify_db_instance_class",
        "delete_db_instance",
    )
    return spy_on(monkeypatch, names, entry)


# -- failover -----------------------------------------------------------------------


def test_failover_drill_promotes_the_reader_asked_for(run, platform):
    config, rds = platform
    result = run(
        "db",
        "failover",
        "--env",
        "dev",
        "--target",
        f"{NONPROD}-instance-2",
        "--json",
        config=config,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cluster"] == NONPROD
    assert report["writer_before"] == f"{NONPROD}-instance-1"
    assert report["writer_after"] == f"{NONPROD}-instance-2"
    assert report["seconds"] >= 0
    assert _state(rds, NONPROD)[0] == f"{NONPROD}-instance-2"
    assert _state(rds, PRODUCTION)[0] == f"{PRODUCTION}-instance-1"


def test_failover_in_production_asks_and_without_target_aurora_picks(run, platform):
    config, rds = platform
    refused = run("db", "failover", "--env", "production", config=config)
    assert refused.exit_code == 2, refused.output
    assert "--yes" in refused.output
    assert _state(rds, PRODUCTION)[0] == f"{PRODUCTION}-instance-1"

    result = run("db", "failover", "--env", "production", "--yes", config=config)
    assert result.exit_code == 0, result.output
    writer = _state(rds, PRODUCTION)[0]
    assert writer in {f"{PRODUCTION}-instance-2", f"{PRODUCTION}-instance-3"}
    assert f"writer {PRODUCTION}-instance-1 -> {writer} in" in result.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["--env", "dev", "--target", "nope"], "not a reader of levels-nonprod"),
        (["--env", "dev", "--target", f"{NONPROD}-instance-1"], "not a reader"),
        (["--env", "staging"], "--env staging: no such environment in"),
        (["--env", "dev", "--group", "nonprod"], "one of them"),
    ],
)
def test_failover_refusals_change_nothing(run, platform, args, words):
    config, rds = platform
    result = run("db", "failover", *args, config=config)
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert _state(rds, NONPROD)[0] == f"{NONPROD}-instance-1"


def test_failover_of_a_cluster_without_reader_is_refused(run, tmp_path, aws_env):
    config = copy_reference(tmp_path / "project")
    _create(_rds(aws_env), NONPROD, 1)
    result = run("db", "failover", "--group", "nonprod", config=config)
    assert result.exit_code == 2, result.output
    assert "no reader to fail over to" in result.output


def test_failover_of_a_cluster_infra_yaml_gives_no_reader_is_refused_before_aws(
    run, tmp_path, aws_env
):
    """No cluster exists on the emulator: the refusal comes from infra.yaml alone."""
    config = copy_reference(tmp_path / "project")
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("database.replicas: 2", "database.replicas: 0"), encoding="utf-8"
    )
    result = run("db", "failover", "--env", "production", "--yes", config=config)
    assert result.exit_code == 2, result.output
    assert "database.replicas to 0" in result.stderr
    assert "apply" in result.stderr and "shared stack first" not in result.stderr


def test_failover_of_a_cluster_not_applied_says_what_to_do(run, tmp_path, aws_env):
    config = copy_reference(tmp_path / "project")
    result = run("db", "failover", "--env", "dev", config=config)
    assert result.exit_code == 2, result.output
    assert "apply the nonprod shared stack first" in result.output


# -- resize -------------------------------------------------------------------------


def _expected_calls(cluster: str, temporary: str, readers: list[str], writer: str):
    return [
        ("create_db_reader", temporary),
        ("failover_db_cluster", temporary),
        *(("modify_db_instance_class", r) for r in readers),
        ("modify_db_instance_class", writer),
        ("failover_db_cluster", writer),
        ("delete_db_instance", temporary),
    ]


def test_resize_of_the_shared_cluster_runs_every_step_in_order(run, platform, calls, monkeypatch):
    config, rds = platform
    before = config.read_text()
    result = run(
        "db",
        "resize",
        "--group",
        "nonprod",
        "--instance-class",
        NEW,
        "--yes",
        "--json",
        config=config,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    temporary = calls[0][1]
    assert temporary.startswith(f"{NONPROD}-resize-")
    assert calls == _expected_calls(
        NONPROD, temporary, [f"{NONPROD}-instance-2"], f"{NONPROD}-instance-1"
    )
    assert [(s["action"], s["instance"]) for s in report["steps"]] == [
        ("add-reader", temporary),
        ("failover", temporary),
        ("modify", f"{NONPROD}-instance-2"),
        ("modify", f"{NONPROD}-instance-1"),
        ("failover", f"{NONPROD}-instance-1"),
        ("remove", temporary),
    ]
    assert "is not checked" in result.stderr  # moto lists no orderable classes
    writer, classes = _state(rds, NONPROD)
    assert writer == f"{NONPROD}-instance-1"
    assert classes == {f"{NONPROD}-instance-1": NEW, f"{NONPROD}-instance-2": NEW}
    assert set(_state(rds, PRODUCTION)[1].values()) == {OLD}
    # infra.yaml: the shared class changes, production keeps its own.
    after = config.read_text()
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=False) if a != b
    ]
    assert changed[0] == (f"  instance_class: {OLD}", f"  instance_class: {NEW}")
    assert f"    database.instance_class: {OLD}\n" in after
    assert len(after.splitlines()) == len(before.splitlines()) + 1
    shared = (config.parent / "stacks" / "nonprod-shared" / "database.tf").read_text()
    assert f'"{NEW}"' in shared
    production = (config.parent / "stacks" / "production-shared" / "database.tf").read_text()
    assert f'"{OLD}"' in production
    assert not (config.parent / ".levels-tf" / f"db-resize-{NONPROD}.json").exists()
    # The tree now stores the emulator's endpoint: a later command finds it there.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    drill = run("db", "failover", "--group", "nonprod", config=config)
    assert drill.exit_code == 0, drill.output
    assert _state(rds, NONPROD)[0] == f"{NONPROD}-instance-2"


def test_the_temporary_reader_runs_with_the_writers_parameter_group(
    run, tmp_path, aws_env, monkeypatch
):
    """The temporary reader is the writer while Terraform's instances are
    modified: it gets the writer's DB parameter group (as the emulator keeps
    it), not the engine's default one."""
    config = copy_reference(tmp_path / "project")
    rds = _rds(aws_env)
    rds.create_db_parameter_group(
        DBParameterGroupName="levels-nonprod-instances",
        DBParameterGroupFamily="aurora-mysql8.0",
        Description="the instances' parameters",
    )
    _create(rds, NONPROD, 2, DBParameterGroupName="levels-nonprod-instances")
    seen: dict = {}
    original = Aws.create_db_reader

    def look(self, cluster, instance, **kwargs):
        original(self, cluster, instance, **kwargs)
        seen.update(rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0])

    monkeypatch.setattr(Aws, "create_db_reader", look)
    result = run(
        "db", "resize", "--group", "nonprod", "--instance-class", NEW, "--yes", config=config
    )
    assert result.exit_code == 0, result.output
    assert seen["DBInstanceClass"] == NEW
    assert [g["DBParameterGroupName"] for g in seen["DBParameterGroups"]] == [
        "levels-nonprod-instances"
    ]


def test_reader_settings_copy_what_the_writer_runs_with():
    """moto keeps no Performance Insights or Enhanced Monitoring settings, so
    the mapping from a DescribeDBInstances record is checked here."""
    record = {
        "DBParameterGroups": [{"DBParameterGroupName": "pg", "ParameterApplyStatus": "in-sync"}],
        "PerformanceInsightsEnabled": True,
        "PerformanceInsightsKMSKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
        "PerformanceInsightsRetentionPeriod": 7,
        "MonitoringInterval": 60,
        "MonitoringRoleArn": "arn:aws:iam::123456789012:role/levels-rds-monitoring",
        "CACertificateIdentifier": "rds-ca-rsa2048-g1",
        "AutoMinorVersionUpgrade": True,
        "DBInstanceClass": OLD,
    }
    assert aurora.reader_settings(record) == {
        "DBParameterGroupName": "pg",
        "EnablePerformanceInsights": True,
        "PerformanceInsightsKMSKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
        "PerformanceInsightsRetentionPeriod": 7,
        "MonitoringInterval": 60,
        "MonitoringRoleArn": "arn:aws:iam::123456789012:role/levels-rds-monitoring",
        "CACertificateIdentifier": "rds-ca-rsa2048-g1",
        "AutoMinorVersionUpgrade": True,
    }
    assert (
        aurora.reader_settings({"PerformanceInsightsEnabled": False, "MonitoringInterval": 0}) == {}
    )


def test_resize_when_the_writer_already_has_the_class_only_modifies(run, platform, calls):
    config, rds = platform
    rds.modify_db_instance(
        DBInstanceIdentifier=f"{PRODUCTION}-instance-1", DBInstanceClass=NEW, ApplyImmediately=True
    )
    result = run(
        "db", "resize", "--env", "production", "--instance-class", NEW, "--yes", config=config
    )
    assert result.exit_code == 0, result.output
    assert calls == [
        ("modify_db_instance_class", f"{PRODUCTION}-instance-2"),
        ("modify_db_instance_class", f"{PRODUCTION}-instance-3"),
    ]
    assert set(_state(rds, PRODUCTION)[1].values()) == {NEW}
    assert f"    database.instance_class: {NEW}\n" in config.read_text()


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, AwsError])
def test_an_interrupted_resize_resumes_from_the_unfinished_step(
    run, platform, calls, monkeypatch, interruption
):
    config, rds = platform
    spied = Aws.modify_db_instance_class

    def fail_once(self, instance, instance_class):
        monkeypatch.setattr(Aws, "modify_db_instance_class", spied)
        if interruption is KeyboardInterrupt:
            raise KeyboardInterrupt
        raise AwsError(f"rds:ModifyDBInstance on {instance} failed: injected")

    monkeypatch.setattr(Aws, "modify_db_instance_class", fail_once)
    stopped = run("db", "resize", "--env", "dev", "--instance-class", NEW, "--yes", config=config)
    assert stopped.exit_code == (130 if interruption is KeyboardInterrupt else 1), stopped.output
    record = config.parent / ".levels-tf" / f"db-resize-{NONPROD}.json"
    assert record.exists()
    temporary = calls[0][1]
    assert f"cluster now: {NONPROD} (available): " in stopped.stderr
    assert f"{temporary} writer {NEW}" in stopped.stderr
    resume = f"db resize --env dev --instance-class {NEW} --resume"
    assert resume in stopped.stderr
    assert f"instance_class: {OLD}" in config.read_text()

    again = run("db", "resize", "--env", "dev", "--instance-class", NEW, "--yes", config=config)
    assert again.exit_code == 2 and "--resume" in again.output
    other = run(
        "db",
        "resize",
        "--env",
        "dev",
        "--instance-class",
        "db.r6g.2xlarge",
        "--resume",
        config=config,
    )
    assert other.exit_code == 2 and f"is to {NEW}" in other.output

    assert Aws.modify_db_instance_class is spied  # the injected failure happened once
    resumed = run(
        "db", "resize", "--env", "dev", "--instance-class", NEW, "--yes", "--resume", config=config
    )
    assert resumed.exit_code == 0, resumed.output
    assert "resuming" in resumed.stderr
    assert calls == _expected_calls(
        NONPROD, temporary, [f"{NONPROD}-instance-2"], f"{NONPROD}-instance-1"
    )
    writer, classes = _state(rds, NONPROD)
    assert writer == f"{NONPROD}-instance-1"
    assert classes == {f"{NONPROD}-instance-1": NEW, f"{NONPROD}-instance-2": NEW}
    assert not record.exists()


def test_resize_asks_first_and_a_no_changes_nothing(run, platform, calls):
    config, _ = platform
    before = config.read_text()
    result = run("db", "resize", "--env", "dev", "--instance-class", NEW, config=config)
    assert result.exit_code == 2, result.output
    assert "1. add reader" in result.stderr and "6. remove" in result.stderr
    assert calls == []
    assert config.read_text() == before
    assert not (config.parent / ".levels-tf").exists()


def test_resume_with_nothing_recorded_is_refused(run, platform):
    config, _ = platform
    result = run("db", "resize", "--env", "dev", "--instance-class", NEW, "--resume", config=config)
    assert result.exit_code == 2
    assert "no resize of levels-nonprod is recorded" in result.output


def test_a_class_rds_does_not_offer_is_refused(run, platform, calls, monkeypatch):
    """moto offers no list of classes: RDS's answer is injected."""
    config, _ = platform
    monkeypatch.setattr(Aws, "db_instance_classes", lambda self, engine, version: {OLD, NEW})
    result = run(
        "db", "resize", "--env", "dev", "--instance-class", "db.x9.huge", "--yes", config=config
    )
    assert result.exit_code == 2, result.output
    assert "RDS offers no such class for aurora-mysql 8.0.mysql_aurora.3.08.0" in result.output
    assert calls == []


@pytest.mark.parametrize("instance_class", ["bogus", "DB.R6G.LARGE", "db.r6g", "db.r6g.large; x"])
def test_a_class_of_no_rds_shape_is_refused_before_aws_is_asked(
    run, platform, calls, monkeypatch, instance_class
):
    config, _ = platform
    before = config.read_text()
    asked = []
    monkeypatch.setattr(Aws, "__init__", lambda *a, **k: asked.append(a))
    result = run(
        "db", "resize", "--env", "dev", "--instance-class", instance_class, "--yes", config=config
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"--instance-class {instance_class!r}: not an RDS instance class such as db.r6g.large"
    )
    assert asked == [] and calls == []
    assert config.read_text() == before


def test_a_serverless_cluster_is_refused(run, tmp_path, aws_env, calls):
    config = copy_reference(tmp_path / "project")
    _create(_rds(aws_env), NONPROD, 2, instance_class="db.serverless")
    result = run("db", "resize", "--env", "dev", "--instance-class", NEW, "--yes", config=config)
    assert result.exit_code == 2, result.output
    assert "Serverless v2" in result.output
    assert calls == []
