"""A fresh platform, nothing applied: by hand (`plan --all`, `apply --all`,
wave by wave) and in one command (`apply --all --waves`). terraform with the
aws provider against a moto server, on two VPC groups of one environment each
(prod-shared -> live and lab-shared -> trial)."""

from __future__ import annotations

import json
import re
import shutil

import boto3
import pytest
from click.testing import CliRunner

from levels_tf.cli import cli

from .conftest import ROOT, next_step

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

CONFIG = ROOT / "tests" / "configs" / "two-groups" / "infra.yaml"
REGION = "eu-west-1"
# What moto accepts but does not keep, so every plan sets it again: S3's EventBridge notifications.
MOTO_GAPS = {
    (env, "module.log_bucket.aws_s3_bucket_notification.this") for env in ("live", "trial")
}


@pytest.fixture
def fresh(tmp_path, aws_env, terraform_env, monkeypatch, run):
    """The configuration rendered for the emulator with local state, nothing
    applied: a function running levels-tf commands on it (`input` answers
    the questions asked)."""
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    config = tmp_path / "infra.yaml"
    shutil.copy(CONFIG, config)

    def levels_tf(*args: str, input: str | None = None):
        argv = ["-c", str(config), *args, "--aws-endpoint", aws_env, "--backend", "local"]
        return CliRunner().invoke(cli, argv, input=input, catch_exceptions=False)

    assert levels_tf("render").exit_code == 0
    return levels_tf


def _applied(stdout: str) -> list[str]:
    return re.findall(r"^([\w-]+): applied in \d+s$", stdout, re.MULTILINE)


def _data_key_aliases(endpoint: str) -> set[str]:
    """The KMS aliases of the environments' data keys that exist: what an environment stack's apply made."""
    kms = boto3.client("kms", region_name=REGION, endpoint_url=endpoint)
    return {a["AliasName"] for a in kms.list_aliases()["Aliases"]} & {
        "alias/twin-live-data",
        "alias/twin-trial-data",
    }


def _statuses(stdout: str) -> dict[str, str]:
    return {s["stack"]: s["status"] for s in json.loads(stdout)["stacks"]}


def test_a_fresh_platform_wave_by_wave(fresh, tmp_path, aws_env):
    """plan --all: the shared stacks have changes, the environments wait for
    them (not failed) and the summary says what to run next; exit 2. apply
    --all applies the shared stacks, the only ones with a saved plan, and says
    what comes next; then the environments plan."""
    first = fresh("plan", "--all", "--format", "json")
    assert first.exit_code == 2, first.output + first.stderr
    summary = json.loads(first.stdout)
    assert _statuses(first.stdout) == {
        "prod-shared": "changes",
        "live": "waiting",
        "lab-shared": "changes",
        "trial": "waiting",
    }
    waiting = {s["stack"]: s["after"] for s in summary["stacks"] if s["status"] == "waiting"}
    assert waiting == {"live": ["prod-shared"], "trial": ["lab-shared"]}
    config = tmp_path / "infra.yaml"
    assert summary["next"].startswith(
        f"next: {next_step(config, 'apply prod-shared lab-shared')}`, "
        f"then {next_step(config, 'plan live trial')}`"
    )
    assert not first.stderr.strip() or "failed" not in first.stderr
    assert not (tmp_path / "stacks" / "live" / "levels-tf.tfplan").exists()

    applied = fresh("apply", "--all", "--yes")
    assert applied.exit_code == 0, applied.output + applied.stderr
    assert sorted(_applied(applied.stdout)) == ["lab-shared", "prod-shared"]
    assert "not applied, no saved plan: live, trial" in applied.stdout
    assert (
        f"next: {next_step(config, 'plan --all')}`, then {next_step(config, 'apply --all')}`"
        in applied.stdout
    )
    assert _data_key_aliases(aws_env) == set()

    second = fresh("plan", "--all", "--format", "json")
    assert second.exit_code == 2, second.output + second.stderr
    assert _statuses(second.stdout) == {
        "prod-shared": "no_changes",
        "live": "changes",
        "lab-shared": "no_changes",
        "trial": "changes",
    }
    assert json.loads(second.stdout)["next"] is None


def test_a_fresh_platform_in_one_command(fresh, aws_env):
    """apply --all --waves plans the first wave, shows it and asks: a no stops
    before anything is applied. With --yes it applies each wave and plans the
    next against it, from nothing to every stack; a plan afterwards finds
    nothing left to do."""
    declined = fresh("apply", "--all", "--waves", input="n\n")
    assert declined.exit_code == 2, declined.output + declined.stderr
    assert "wave 1 of 2: planning prod-shared, lab-shared" in declined.stdout
    assert re.search(r"^prod-shared +\d+ ", declined.stdout, re.MULTILINE), (
        "the wave's plan is shown before the question"
    )
    assert "apply wave 1 of 2: prod-shared (production), lab-shared?" in declined.stdout
    assert "stopped before applying wave 1" in declined.stderr
    assert _applied(declined.stdout) == []
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=aws_env)
    assert not [v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")]

    walked = fresh("apply", "--all", "--waves", "--yes")
    assert walked.exit_code == 0, walked.output + walked.stderr
    out = walked.stdout
    assert out.index("wave 1 of 2: planning prod-shared, lab-shared") < out.index(
        "prod-shared: applied in"
    )
    assert (
        out.index("lab-shared: applied in")
        < out.index("wave 2 of 2: planning live, trial")
        < out.index("live: applied in")
    )
    assert sorted(_applied(out)) == ["lab-shared", "live", "prod-shared", "trial"]
    assert "every stack is applied (4 in 2 waves)" in out
    assert _data_key_aliases(aws_env) == {"alias/twin-live-data", "alias/twin-trial-data"}

    again = fresh("plan", "--all", "--format", "json")
    assert again.exit_code in (0, 2), again.output + again.stderr
    left = {
        (s["stack"], c["address"]) for s in json.loads(again.stdout)["stacks"] for c in s["changes"]
    }
    assert left <= MOTO_GAPS, left - MOTO_GAPS
