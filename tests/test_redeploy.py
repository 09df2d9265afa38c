"""What AWS keeps after a delete, and what it changes by itself, for real:
terraform with the aws provider against moto, on tests/configs/redeploy (a
non-production group of two zones with an Aurora cluster and Secrets
Manager secrets, rendered by levels-tf for the emulator).

Names AWS holds after a delete (a final snapshot, a secret in its recovery
window) must not stop a destroy, a re-create or a second destroy; an AWS
Backup vault deletes its recovery points with the stack outside production
only. A minor upgrade AWS applies by itself must not turn into a downgrade
at the next plan, while a change of major version still shows.

moto has no AWS Backup selections, recovery point listings or AWS managed
IAM policies, so the applies target the resources under test (and what
they depend on), not the whole stack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest

from .conftest import ROOT

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

CONFIG = ROOT / "tests" / "configs" / "redeploy" / "infra.yaml"
REGION = "eu-west-1"
CLUSTER = "module.database.aws_rds_cluster.this"
VAULT = "module.database.aws_backup_vault.this"
SECRETS = "module.parameters"
DATA_KEY = "module.data_key"
VERSION = "8.0.mysql_aurora.3.08.0"


@pytest.fixture
def tree(tmp_path, aws_env, terraform_env, monkeypatch, run) -> Path:
    """tests/configs/redeploy rendered for the emulator, with local state."""
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    shutil.copy(CONFIG, tmp_path / "infra.yaml")
    _render(run, tmp_path, aws_env)
    return tmp_path


@pytest.fixture
def env(tree, terraform_env) -> dict[str, str]:
    """The environment of terraform: its CLI configuration and the emulator's settings."""
    return dict(os.environ, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")


def _render(run, folder: Path, endpoint: str) -> None:
    result = run(
        "render", "--aws-endpoint", endpoint, "--backend", "local", config=folder / "infra.yaml"
    )
    assert result.exit_code == 0, result.output + result.stderr


def _start(env: dict[str, str], stack: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["terraform", *args, "-input=false", "-no-color"],
        cwd=stack,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _terraform(env: dict[str, str], *runs: tuple[Path, list[str]]) -> None:
    """Runs terraform in each stack at once (they are independent), and fails on any error."""
    started = [(stack, args, _start(env, stack, *args)) for stack, args in runs]
    for stack, args, process in started:
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, (
            f"terraform {' '.join(args)} in {stack.name}:\n{output[-4000:]}"
        )


def _planned(env: dict[str, str], stack: Path, *targets: str) -> list[dict]:
    """The resource changes of a saved plan, from its JSON."""
    plan = stack / "test.tfplan"
    _terraform(env, (stack, ["plan", "-out", str(plan), *(f"-target={t}" for t in targets)]))
    shown = subprocess.run(
        ["terraform", "show", "-json", str(plan)],
        cwd=stack,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(shown.stdout).get("resource_changes", [])


def _change(changes: list[dict], address: str) -> dict:
    (change,) = [c["change"] for c in changes if c["address"] == address]
    return change


def test_destroy_apply_destroy_with_what_aws_keeps(tree, env, aws_env):
    shared, environment = tree / "stacks" / "lab-shared", tree / "stacks" / "trial"
    # One init at a time: Terraform's shared plugin cache is not safe for
    # concurrent inits (levels-tf serialises them the same way).
    _terraform(env, (shared, ["init"]))
    _terraform(env, (environment, ["init"]))

    # Outside production the vault goes with its recovery points and secrets
    # are deleted at once: nothing of the stack holds a name after a destroy.
    assert _change(_planned(env, shared, VAULT), VAULT)["after"]["force_destroy"] is True
    secret = f'{SECRETS}.aws_secretsmanager_secret.this["app/signing_key"]'
    assert (
        _change(_planned(env, environment, SECRETS), secret)["after"]["recovery_window_in_days"]
        == 0
    )

    for _ in range(2):
        _terraform(
            env,
            (shared, ["apply", "-auto-approve", f"-target={CLUSTER}"]),
            (environment, ["apply", "-auto-approve", f"-target={SECRETS}"]),
        )
        # The environment's destroy targets too: it would read outputs of its
        # shared stack that a targeted apply does not write.
        _terraform(
            env,
            (shared, ["destroy", "-auto-approve"]),
            (
                environment,
                ["destroy", "-auto-approve", f"-target={SECRETS}", f"-target={DATA_KEY}"],
            ),
        )

    # Each cluster left its own final snapshot, and no secret is left behind.
    rds = boto3.client("rds", region_name=REGION, endpoint_url=aws_env)
    finals = [
        s["DBClusterSnapshotIdentifier"]
        for s in rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    ]
    assert len(finals) == 2 and len(set(finals)) == 2, finals
    assert all(name.startswith("again-lab-final-") for name in finals), finals
    secrets = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws_env)
    assert secrets.list_secrets(IncludePlannedDeletion=True)["SecretList"] == []


def test_production_keeps_backups_and_deleted_secrets(tree, env, run, aws_env):
    """In production, while deletion protection is on, a destroy keeps the
    recovery points (destroy refuses until --lift-protection) and a recovery window."""
    config = tree / "infra.yaml"
    cidr = "    cidr: 172.22.0.0/20"
    text = config.read_text().replace("deletion_protection: false", "deletion_protection: true")
    config.write_text(text.replace(cidr, "    production: true\n" + cidr))
    _render(run, tree, aws_env)
    shared, environment = tree / "stacks" / "lab-shared", tree / "stacks" / "trial"
    # One init at a time: Terraform's shared plugin cache is not safe for
    # concurrent inits (levels-tf serialises them the same way).
    _terraform(env, (shared, ["init"]))
    _terraform(env, (environment, ["init"]))
    assert _change(_planned(env, shared, VAULT), VAULT)["after"]["force_destroy"] is False
    secret = f'{SECRETS}.aws_secretsmanager_secret.this["app/signing_key"]'
    assert (
        _change(_planned(env, environment, SECRETS), secret)["after"]["recovery_window_in_days"]
        == 30
    )


def test_a_minor_upgrade_by_aws_is_not_undone(tree, env, run, aws_env):
    shared = tree / "stacks" / "lab-shared"
    _terraform(env, (shared, ["init"]))
    _terraform(env, (shared, ["apply", "-auto-approve", f"-target={CLUSTER}"]))
    rds = boto3.client("rds", region_name=REGION, endpoint_url=aws_env)
    assert (
        rds.describe_db_clusters(DBClusterIdentifier="again-lab")["DBClusters"][0]["EngineVersion"]
        == VERSION
    )

    # AWS installs a newer release of the same major version in the maintenance window.
    upgraded = "8.0.mysql_aurora.3.08.1"
    rds.modify_db_cluster(
        DBClusterIdentifier="again-lab", EngineVersion=upgraded, ApplyImmediately=True
    )
    cluster = _change(_planned(env, shared, CLUSTER), CLUSTER)
    assert cluster["before"]["engine_version"] == upgraded
    assert cluster["after"]["engine_version"] == upgraded

    # A newer release, or another major version, asked for in infra.yaml is still a change.
    config = tree / "infra.yaml"
    for wanted in ("8.0.mysql_aurora.3.09.0", "5.7.mysql_aurora.2.12.0"):
        config.write_text(
            CONFIG.read_text().replace("database:\n", f"database:\n  engine_version: {wanted}\n")
        )
        _render(run, tree, aws_env)
        cluster = _change(_planned(env, shared, CLUSTER), CLUSTER)
        assert cluster["before"]["engine_version"] == upgraded
        assert cluster["after"]["engine_version"] == wanted
