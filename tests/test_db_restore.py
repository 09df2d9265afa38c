"""`levels-tf db restore` and `db drop` on the emulator (moto in server mode).

Measured on moto 5.2: RestoreDBClusterToPointInTime makes the new cluster
with the subnet group, security groups, KMS key, cluster parameter group and
tags it is given (a new cluster reads "creating" once, then "available");
DescribeDBClusters gives EarliestRestorableTime (the cluster's creation) and
LatestRestorableTime (now); CreateDBInstance, DeleteDBInstance and
DeleteDBCluster finish at once, so the waits for them end at their first
look. What moto does not do: it restores to any time at all, even one
outside the window (the refusal is levels-tf's own, from the window
DescribeDBClusters reports, and proven here), it ignores the time given
(the request's `RestoreToTime` is checked as sent), it holds no data to
compare, and a restore into a name in use replaces that cluster (levels-tf
refuses the name before asking). A failure while the restored cluster gets
its writer, or while a drop deletes the cluster, cannot happen on moto: it
is injected at that step, and the drop that follows runs on the real emulator.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import boto3
import pytest

from levels_tf import db_resize
from levels_tf.aws import Aws, AwsError

from .conftest import copy_reference
from .test_db import spy_on

pytestmark = pytest.mark.slow

CLASS = "db.r6g.large"
PRODUCTION = "levels-production"
NONPROD = "levels-nonprod"
COPY = "levels-nonprod-restore-1"
TERRAFORM_TAGS = {"ManagedBy": "levels-tf", "Project": "levels", "Stack": "nonprod-shared"}


def _clients(endpoint: str):
    def make(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")

    return make("rds"), make("ec2"), make("kms")


def _create(rds, ec2, kms, group: str) -> dict[str, str]:
    """A cluster as the group's shared stack makes it: its own subnet group,
    security group, KMS key, cluster and DB parameter groups, Terraform's tags,
    two members; what it was given."""
    cluster = f"levels-{group}"
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for n, z in ((1, "a"), (2, "b"))
    ]
    made = {
        "subnet_group": f"{cluster}-db",
        "security_group": ec2.create_security_group(
            GroupName=f"{cluster}-db", Description="database", VpcId=vpc
        )["GroupId"],
        "kms_key": kms.create_key()["KeyMetadata"]["Arn"],
        "cluster_parameter_group": cluster,
        "parameter_group": f"{cluster}-instance",
    }
    rds.create_db_subnet_group(
        DBSubnetGroupName=made["subnet_group"], DBSubnetGroupDescription="db", SubnetIds=subnets
    )
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName=cluster,
        DBParameterGroupFamily="aurora-mysql8.0",
        Description="cluster",
    )
    rds.create_db_parameter_group(
        DBParameterGroupName=made["parameter_group"],
        DBParameterGroupFamily="aurora-mysql8.0",
        Description="instances",
    )
    rds.create_db_cluster(
        DBClusterIdentifier=cluster,
        Engine="aurora-mysql",
        EngineVersion="8.0.mysql_aurora.3.08.0",
        MasterUsername="admin",
        MasterUserPassword="emulated-only-1",
        DBSubnetGroupName=made["subnet_group"],
        VpcSecurityGroupIds=[made["security_group"]],
        StorageEncrypted=True,
        KmsKeyId=made["kms_key"],
        DBClusterParameterGroupName=cluster,
        EnableIAMDatabaseAuthentication=True,
        Tags=[{"Key": k, "Value": v} for k, v in TERRAFORM_TAGS.items()],
    )
    for n in (1, 2):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{cluster}-instance-{n}",
            DBClusterIdentifier=cluster,
            Engine="aurora-mysql",
            DBInstanceClass=CLASS,
            DBParameterGroupName=made["parameter_group"],
            PromotionTier=0 if n == 1 else 1,
        )
    return made


def _cluster(rds, name: str) -> dict | None:
    found = [
        c for c in rds.describe_db_clusters()["DBClusters"] if c["DBClusterIdentifier"] == name
    ]
    return found[0] if found else None


def _record(rds, name: str) -> dict:
    record = _cluster(rds, name)
    assert record is not None, f"no cluster {name}"
    return record


def _instances(rds, cluster: str) -> list[dict]:
    return [
        i for i in rds.describe_db_instances()["DBInstances"] if i["DBClusterIdentifier"] == cluster
    ]


def _live(rds, name: str) -> tuple:
    """What must not change on the live cluster: members, writer, tags, protection."""
    record = _record(rds, name)
    return (
        sorted(
            (m["DBInstanceIdentifier"], m["IsClusterWriter"]) for m in record["DBClusterMembers"]
        ),
        sorted((t["Key"], t["Value"]) for t in record["TagList"]),
        record["DeletionProtection"],
        record["Status"],
    )


@pytest.fixture
def platform(tmp_path, aws_env, monkeypatch):
    """The reference infra.yaml and both of its clusters on the emulator; waits
    that look every hundredth of a second."""
    monkeypatch.setattr(db_resize, "WAITING", db_resize.Waiting(poll=0.01, timeout=30))
    config = copy_reference(tmp_path / "project")
    rds, ec2, kms = _clients(aws_env)
    made = _create(rds, ec2, kms, "nonprod")
    _create(rds, ec2, kms, "production")
    return config, rds, made


@pytest.fixture
def calls(monkeypatch):
    """The changing RDS calls of restore and drop, in order, each still sent to the
    emulator: (method, its first argument, its keyword arguments)."""
    names = ("restore_db_cluster", "create_db_writer", "delete_db_instance", "delete_db_cluster")
    return spy_on(monkeypatch, names, lambda name, first, args, kwargs: (name, first, kwargs))


def _check_copy(rds, made: dict, name: str = COPY) -> dict:
    record = _record(rds, name)
    assert record["Status"] == "available"
    assert record["DBSubnetGroup"] == made["subnet_group"]
    assert [g["VpcSecurityGroupId"] for g in record["VpcSecurityGroups"]] == [
        made["security_group"]
    ]
    assert record["KmsKeyId"] == made["kms_key"]
    assert record["DBClusterParameterGroup"] == made["cluster_parameter_group"]
    assert record["DeletionProtection"] is False
    assert record["IAMDatabaseAuthenticationEnabled"] is True
    (writer,) = _instances(rds, name)
    assert writer["DBInstanceIdentifier"] == f"{name}-instance-1"
    assert writer["DBInstanceStatus"] == "available"
    assert writer["DBInstanceClass"] == CLASS
    assert [g["DBParameterGroupName"] for g in writer["DBParameterGroups"]] == [
        made["parameter_group"]
    ]
    assert record["DBClusterMembers"][0]["IsClusterWriter"] is True
    return record


def _clusters(rds) -> list[str]:
    return sorted(c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"])


def _refused_without_change(run, config, rds, calls, words: str, *args: str) -> None:
    """`levels-tf db ARGS` ends with one line saying `words`, exit 2, having
    called nothing that changes RDS, and every cluster is as it was."""
    before = _clusters(rds)
    live = _live(rds, NONPROD)
    result = run("db", *args, config=config)
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert calls == []
    assert _clusters(rds) == before
    assert _live(rds, NONPROD) == live


# -- restore --------------------------------------------------------------------------


def test_restore_latest_makes_a_new_cluster_beside_the_live_one(run, platform, calls):
    config, rds, made = platform
    live = _live(rds, NONPROD)
    result = run(
        "db", "restore", "--env", "dev", "--latest", "--as", COPY, "--yes", "--json", config=config
    )
    assert result.exit_code == 0, result.output
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    record = _check_copy(rds, made)
    tags = {t["Key"]: t["Value"] for t in record["TagList"]}
    assert tags == {
        "ManagedBy": "levels-tf-restore",
        "RestoredFrom": NONPROD,
        "RestoredTo": report["restored_to"],
    }
    assert [(c[0], c[1]) for c in calls] == [
        ("restore_db_cluster", COPY),
        ("create_db_writer", COPY),
    ]
    assert calls[0][2]["to"] is None  # UseLatestRestorableTime
    assert report["cluster"] == COPY and report["source"] == NONPROD and report["latest"]
    assert report["writer"] == f"{COPY}-instance-1"
    assert report["endpoint"] == record["Endpoint"]
    assert report["port"] == 3306
    assert report["tunnel"].endswith(f"tunnel db --env dev --endpoint {record['Endpoint']}")
    assert report["drop"].endswith(f"db drop {COPY} --confirm {COPY}")
    assert "[1/2] restore levels-nonprod into" in result.stderr  # the steps go to stderr
    assert _live(rds, NONPROD) == live
    assert [i["DBInstanceIdentifier"] for i in _instances(rds, NONPROD)] == [
        f"{NONPROD}-instance-1",
        f"{NONPROD}-instance-2",
    ]


def test_restore_to_a_time_inside_the_window(run, platform, calls):
    config, rds, made = platform
    earliest = _record(rds, NONPROD)["EarliestRestorableTime"]
    to = earliest.isoformat()  # with microseconds and +00:00
    result = run(
        "db", "restore", "--group", "nonprod", "--to", to, "--as", "Copy-At-Time", "--yes",
        config=config,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = _check_copy(rds, made, "copy-at-time")  # RDS keeps identifiers in lowercase
    assert calls[0][2]["to"] == earliest
    assert {t["Key"]: t["Value"] for t in record["TagList"]}["RestoredTo"] == earliest.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert f"writer endpoint: {record['Endpoint']}:3306" in result.stdout
    # A shared group's tunnel goes through its first environment's servers.
    assert f"tunnel db --env dev --endpoint {record['Endpoint']}" in result.stdout
    assert "db drop copy-at-time --confirm copy-at-time" in result.stdout


def test_restore_asks_first_and_a_no_changes_nothing(run, platform, calls):
    config, rds, _ = platform
    result = run("db", "restore", "--env", "production", "--latest", "--as", COPY, config=config)
    assert result.exit_code == 2, result.output
    assert "--yes" in result.output and "(production)" in result.output
    assert "1. restore into" in result.stderr and "2. add writer" in result.stderr
    assert calls == [] and _cluster(rds, COPY) is None


@pytest.mark.parametrize(
    "args, words",
    [
        (["--latest", "--as", "1copy"], "starts with a letter"),
        (["--latest", "--as", "copy--1"], "two consecutive hyphens"),
        (["--latest", "--as", "copy-"], "cannot end with a hyphen"),
        (["--latest", "--as", "copy_1"], "letters, digits and hyphens only"),
        (["--latest", "--as", "c" * 64], "64 characters; a cluster identifier has 1 to 63"),
        (["--latest", "--as", NONPROD], "a cluster Terraform manages"),
        (["--latest", "--as", PRODUCTION.upper()], "a cluster Terraform manages"),
        (["--latest", "--as", "taken"], "a cluster of that name exists"),
        (
            ["--to", "2000-01-01T00:00:00Z", "--as", COPY],
            "outside levels-nonprod's restorable window",
        ),
        (["--to", "yesterday", "--as", COPY], "not an ISO 8601 time with a zone"),
        (["--to", "2026-05-01T12:00:00", "--as", COPY], "not an ISO 8601 time with a zone"),
        (["--as", COPY], "give --to TIMESTAMP or --latest"),
        (["--latest", "--to", "2026-05-01T12:00:00Z", "--as", COPY], "(one of them)"),
    ],
)
def test_restore_refusals_change_nothing(run, platform, calls, args, words):
    config, rds, _ = platform
    rds.create_db_cluster(
        DBClusterIdentifier="taken",
        Engine="aurora-mysql",
        MasterUsername="admin",
        MasterUserPassword="emulated-only-1",
    )
    _refused_without_change(
        run, config, rds, calls, words, "restore", "--env", "dev", *args, "--yes"
    )


def test_a_time_outside_the_window_names_the_window(run, platform):
    config, rds, _ = platform
    record = _record(rds, NONPROD)
    early = (record["EarliestRestorableTime"] - timedelta(hours=1)).isoformat()
    result = run(
        "db", "restore", "--env", "dev", "--to", early, "--as", COPY, "--yes", config=config
    )
    assert result.exit_code == 2, result.output
    # The window as said is inside the window: its first whole second.
    first = record["EarliestRestorableTime"].replace(microsecond=0) + timedelta(seconds=1)
    stamp = first.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"restorable window, {stamp} to " in result.output
    time.sleep(1.1)  # moto's latest restorable time is now: let it pass that second
    inside = run(
        "db", "restore", "--env", "dev", "--to", stamp, "--as", COPY, "--yes", config=config
    )
    assert inside.exit_code == 0, inside.output
    assert "give a time inside it, or --latest" in result.output


def test_a_failure_while_adding_the_writer_says_how_to_clean_up(run, platform, calls, monkeypatch):
    """moto creates every instance it is asked for: the failure is injected."""
    config, rds, _ = platform

    def refused(self, cluster, instance, **kwargs):
        raise AwsError(f"rds:CreateDBInstance on {instance} failed: injected")

    monkeypatch.setattr(Aws, "create_db_writer", refused)
    result = run("db", "restore", "--env", "dev", "--latest", "--as", COPY, "--yes", config=config)
    assert result.exit_code == 1, result.output
    assert [(c[0], c[1]) for c in calls] == [("restore_db_cluster", COPY)]
    assert f"the restore into {COPY} failed: {COPY} (available): " in result.stderr
    assert f"db drop {COPY} --confirm {COPY}`, then run the restore again" in result.stderr
    assert _cluster(rds, COPY) is not None and _instances(rds, COPY) == []

    dropped = run("db", "drop", COPY, "--confirm", COPY, config=config)
    assert dropped.exit_code == 0, dropped.output
    assert _cluster(rds, COPY) is None
    assert [(c[0], c[1]) for c in calls][1:] == [("delete_db_cluster", COPY)]


# -- drop -----------------------------------------------------------------------------


def test_drop_removes_the_restored_cluster_and_only_it(run, platform, calls):
    config, rds, _ = platform
    restored = run(
        "db", "restore", "--env", "dev", "--latest", "--as", COPY, "--yes", config=config
    )
    assert restored.exit_code == 0, restored.output
    live = _live(rds, NONPROD)
    # RDS keeps identifiers in lowercase: the name given in capitals is the same cluster.
    result = run("db", "drop", COPY, "--confirm", COPY.upper(), "--json", config=config)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cluster"] == COPY and report["instances"] == [f"{COPY}-instance-1"]
    assert [(c[0], c[1]) for c in calls][2:] == [
        ("delete_db_instance", f"{COPY}-instance-1"),
        ("delete_db_cluster", COPY),
    ]
    assert _cluster(rds, COPY) is None and _instances(rds, COPY) == []
    assert _live(rds, NONPROD) == live
    assert _cluster(rds, PRODUCTION) is not None


@pytest.mark.parametrize(
    "name, confirm, words",
    [
        (NONPROD, NONPROD, "a cluster Terraform manages"),
        (PRODUCTION, PRODUCTION, "a cluster Terraform manages"),
        ("handmade", "handmade", "not a copy db restore made (no tag ManagedBy=levels-tf-restore)"),
        ("protected", "protected", "has deletion protection on"),
        ("nothing-here", "nothing-here", "no cluster nothing-here in us-east-1"),
        (COPY, "levels-nonprod", "--confirm levels-nonprod: not levels-nonprod-restore-1"),
        (
            "bad_name",
            "bad_name",
            "bad_name: a cluster identifier has letters, digits and hyphens only",
        ),
    ],
)
def test_drop_refuses_what_it_did_not_restore(run, platform, calls, name, confirm, words):
    config, rds, _ = platform
    for cluster, tags, protected in (
        ("handmade", {"ManagedBy": "someone"}, False),
        ("protected", {"ManagedBy": "levels-tf-restore"}, True),
        (COPY, {"ManagedBy": "levels-tf-restore"}, False),
    ):
        rds.create_db_cluster(
            DBClusterIdentifier=cluster,
            Engine="aurora-mysql",
            MasterUsername="admin",
            MasterUserPassword="emulated-only-1",
            DeletionProtection=protected,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
    _refused_without_change(run, config, rds, calls, words, "drop", name, "--confirm", confirm)


def test_an_interrupted_drop_finishes_when_run_again(run, platform, calls, monkeypatch):
    """moto deletes a cluster at once: the interruption is injected at that step."""
    config, rds, _ = platform
    assert (
        run(
            "db", "restore", "--env", "dev", "--latest", "--as", COPY, "--yes", config=config
        ).exit_code
        == 0
    )
    spied = Aws.delete_db_cluster

    def interrupted(self, cluster):
        monkeypatch.setattr(Aws, "delete_db_cluster", spied)
        raise KeyboardInterrupt

    monkeypatch.setattr(Aws, "delete_db_cluster", interrupted)
    stopped = run("db", "drop", COPY, "--confirm", COPY, config=config)
    assert stopped.exit_code == 130, stopped.output
    assert f"the drop of {COPY} interrupted: {COPY} (available): " in stopped.stderr
    assert (
        f"finish it with `levels-tf -c {config} db drop {COPY} --confirm {COPY}`" in stopped.stderr
    )
    assert _cluster(rds, COPY) is not None and _instances(rds, COPY) == []

    again = run("db", "drop", COPY, "--confirm", COPY, config=config)
    assert again.exit_code == 0, again.output
    assert _cluster(rds, COPY) is None
    # The instance already gone is not deleted twice.
    assert [(c[0], c[1]) for c in calls][2:] == [
        ("delete_db_instance", f"{COPY}-instance-1"),
        ("delete_db_cluster", COPY),
    ]


def test_tunnel_takes_an_endpoint_or_the_reader_not_both(run, tmp_path):
    config = copy_reference(tmp_path / "project")
    result = run(
        "tunnel", "db", "--env", "dev", "--reader", "--endpoint", "copy.example", config=config
    )
    assert result.exit_code == 2, result.output
    assert "--endpoint and --reader name two targets" in result.output


def test_a_refusal_with_json_is_the_error_document(run, platform, calls):
    config, _, _ = platform
    for args in (
        ("restore", "--env", "dev", "--latest", "--as", NONPROD, "--yes"),
        ("drop", NONPROD, "--confirm", NONPROD),
    ):
        result = run("db", *args, "--json", config=config)
        assert result.exit_code == 2, result.output
        error = json.loads(result.stdout)["error"]
        assert error["exit_code"] == 2 and "a cluster Terraform manages" in error["message"]
    assert calls == []
