"""`plan --all` and `apply --all` when one stack fails for real: terraform with
the aws provider against a moto server, on two VPC groups of one environment
each (prod-shared -> live and lab-shared -> trial), so every stack has a sibling."""

from __future__ import annotations

import json
import re
import shutil

import boto3
import pytest
from botocore.exceptions import ClientError

from .conftest import ROOT

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

CONFIG = ROOT / "tests" / "configs" / "two-groups" / "infra.yaml"
REGION = "eu-west-1"
PROD_FLOW_LOGS = "/vpc/twin-prod/flow-logs"


@pytest.fixture
def platform(tmp_path, aws_env, terraform_env, monkeypatch, run):
    """The configuration rendered for the emulator with local state and both
    shared stacks applied, so that every stack can plan: a function running
    levels-tf commands on it."""
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    config = tmp_path / "infra.yaml"
    shutil.copy(CONFIG, config)

    def levels_tf(*args: str):
        return run(*args, "--aws-endpoint", aws_env, "--backend", "local", config=config)

    for args, expected in [
        (("render",), 0),
        (("plan", "prod-shared", "lab-shared"), 2),
        (("apply", "prod-shared", "lab-shared", "--yes"), 0),
    ]:
        result = levels_tf(*args)
        assert result.exit_code == expected, result.output + result.stderr
    return levels_tf


def _outcome_lines(stderr: str) -> list[str]:
    """The lines saying a stack failed or was skipped."""
    return [line for line in stderr.splitlines() if re.match(r"[\w-]+: (failed|skipped): ", line)]


def test_plan_all_plans_the_others_when_one_stack_fails(platform, tmp_path):
    """live's plan fails in terraform itself (its state file is corrupt); the
    stacks after it are still planned, and all three are summarized, live is
    reported as failed in the summary and on stderr, and the exit code is 1.
    One stack at a time, in the order of `levels-tf stacks`, so lab-shared and
    trial start only after live has failed."""
    (tmp_path / "stacks" / "live" / "terraform.tfstate").write_text('{"version": 4, "serial": ')

    result = platform("plan", "--all", "--parallelism", "1", "--format", "json")

    assert result.exit_code == 1, result.output + result.stderr
    summary = json.loads(result.stdout)
    planned = {s["stack"]: s["add"] for s in summary["stacks"]}
    assert sorted(planned) == ["lab-shared", "prod-shared", "trial"]
    assert planned["trial"] > 0
    assert list(summary["stacks_not_planned"]) == ["live"]
    reason = summary["stacks_not_planned"]["live"]
    assert reason.startswith("failed: ") and "state file" in reason
    assert not reason.startswith("failed: live:"), "the stack's name is said twice"
    outcomes = _outcome_lines(result.stderr)
    assert len(outcomes) == 1 and outcomes[0].startswith("live: failed: "), result.stderr


def test_apply_all_skips_only_the_dependents_of_a_failing_stack(platform, aws_env, tmp_path):
    """prod-shared's saved plan creates a log group that, by then, someone
    else has created: its apply fails in terraform. live, which reads
    prod-shared, is skipped and names it; the other group's lab-shared and
    trial, which start only after the failure (one stack at a time, in the
    order of `levels-tf stacks`), are applied; the summary says what was
    applied, what failed and what was skipped, and the exit code is 1."""
    logs = boto3.client("logs", region_name=REGION, endpoint_url=aws_env)
    logs.delete_log_group(logGroupName=PROD_FLOW_LOGS)
    planned = platform("plan", "--all", "--format", "json")
    assert planned.exit_code == 2, planned.output + planned.stderr
    creates = {
        s["stack"]: {c["address"] for c in s["changes"] if c["action"] == "create"}
        for s in json.loads(planned.stdout)["stacks"]
    }
    assert "module.network.aws_cloudwatch_log_group.flow_logs" in creates["prod-shared"]
    assert creates["live"] and creates["trial"]
    logs.create_log_group(logGroupName=PROD_FLOW_LOGS)

    result = platform("apply", "--all", "--yes", "--parallelism", "1")

    assert result.exit_code == 1, result.output + result.stderr
    applied = re.findall(r"^([\w-]+): applied in \d+s$", result.stdout, re.MULTILINE)
    assert sorted(applied) == ["lab-shared", "trial"], result.stdout
    failed, skipped = _outcome_lines(result.stderr)
    assert failed.startswith("prod-shared: failed: terraform apply failed: "), result.stderr
    assert PROD_FLOW_LOGS in failed and "already exists" in failed
    assert skipped == "live: skipped: prod-shared did not succeed"

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws_env)
    s3.head_bucket(Bucket="twin-trial-logs")
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket="twin-live-logs")
    kms = boto3.client("kms", region_name=REGION, endpoint_url=aws_env)
    aliases = {alias["AliasName"] for alias in kms.list_aliases()["Aliases"]}
    assert "alias/twin-trial-data" in aliases and "alias/twin-live-data" not in aliases
    assert not (tmp_path / "stacks" / "live" / "terraform.tfstate").exists()
