"""`plan --all` and `apply --all` when one stack fails for real: terraform with
the aws provider against a moto server, on two VPC groups of one environment
each (prod-shared -> live and lab-shared -> trial), so every stack has a sibling."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from levels_tf.cache_dir import cache_dir

from .conftest import ROOT, next_step

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


def _log_of(line: str, stack: str, command: str) -> str:
    """The text of the log a failure line names, which must be that stack's and command's."""
    match = re.search(r"; its output is in (\S+)$", line)
    assert match, line
    path = Path(match.group(1))
    assert path.parent == cache_dir() / "logs" and path.name.startswith(f"{stack}-{command}-")
    return path.read_text()


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
    statuses = {s["stack"]: s["status"] for s in summary["stacks"]}
    assert statuses == {
        "prod-shared": "no_changes",
        "live": "failed",
        "lab-shared": "no_changes",
        "trial": "changes",
    }
    assert next(s for s in summary["stacks"] if s["stack"] == "trial")["add"] > 0
    reason = next(s for s in summary["stacks"] if s["stack"] == "live")["reason"]
    assert "state file" in reason
    assert not reason.startswith("live:"), "the stack's name is said twice"
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
    # Terraform's whole output is kept, for reading after the fact.
    log = _log_of(failed, "prod-shared", "apply")
    assert PROD_FLOW_LOGS in log and "already exists" in log
    assert skipped == "live: skipped: prod-shared did not succeed"

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws_env)
    s3.head_bucket(Bucket="twin-trial-logs")
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket="twin-live-logs")
    kms = boto3.client("kms", region_name=REGION, endpoint_url=aws_env)
    aliases = {alias["AliasName"] for alias in kms.list_aliases()["Aliases"]}
    assert "alias/twin-trial-data" in aliases and "alias/twin-live-data" not in aliases
    assert not (tmp_path / "stacks" / "live" / "terraform.tfstate").exists()


UNBAKED_WORKER = """
images:
  worker:
    base: debian-12
services:
  worker:
    image: worker
    instance_type: t3.micro
    consumes: [jobs]
    scaling: {min: 1, max: 1, desired: 1, queue_backlog_per_instance: 10}
queues:
  jobs: {}
"""


@pytest.fixture
def four_statuses(tmp_path, aws_env, terraform_env, monkeypatch, run):
    """A stack of each planned status but skipped: prod-shared applied (no
    changes), live failing in Terraform (its worker's image was never baked:
    the launch template's precondition), lab-shared never applied (changes)
    and trial waiting for it. A function running levels-tf commands on it."""
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    config = tmp_path / "infra.yaml"
    config.write_text(CONFIG.read_text() + UNBAKED_WORKER)

    def levels_tf(*args: str):
        return run(*args, "--aws-endpoint", aws_env, "--backend", "local", config=config)

    for args, expected in [
        (("render",), 0),
        (("plan", "prod-shared"), 2),
        (("apply", "prod-shared", "--yes"), 0),
    ]:
        result = levels_tf(*args)
        assert result.exit_code == expected, result.output + result.stderr
    return levels_tf


def _precondition_line(tree) -> int:
    """The line of the rendered service module where the image precondition's condition is."""
    lines = (tree / "modules" / "service" / "main.tf").read_text().splitlines()
    (number,) = [
        n for n, line in enumerate(lines, 1) if "condition" in line and "var.ami_id != null" in line
    ]
    return number


def test_every_stack_is_in_every_summary_with_its_status(four_statuses, tmp_path):
    """text, markdown and json each name all four stacks with their status;
    live's failure comes with Terraform's first error and the file and line
    it points at (in the rendered tree), trial says what it waits for, and
    the failure is also one line on stderr. Exit 1: a stack failed."""
    where = f"modules/service/main.tf:{_precondition_line(tmp_path)}"
    error = "Resource precondition failed: image worker has no AMI yet: run levels-tf bake worker"

    as_json = four_statuses("plan", "--all", "--format", "json")
    assert as_json.exit_code == 1, as_json.output + as_json.stderr
    stacks = {s["stack"]: s for s in json.loads(as_json.stdout)["stacks"]}
    assert {name: s["status"] for name, s in stacks.items()} == {
        "prod-shared": "no_changes",
        "live": "failed",
        "lab-shared": "changes",
        "trial": "waiting",
    }, stacks["prod-shared"]
    assert (stacks["live"]["file"], stacks["live"]["line"], stacks["live"]["reason"]) == (
        where.split(":")[0],
        int(where.split(":")[1]),
        error,
    )
    assert stacks["trial"]["after"] == ["lab-shared"]
    assert stacks["lab-shared"]["add"] > 20
    (failed,) = _outcome_lines(as_json.stderr)
    assert failed.startswith(f"live: failed: {where}: {error}; its output is in ")
    assert "image worker has no AMI yet" in _log_of(failed, "live", "plan")
    assert "its output is in" not in as_json.stdout, "a local path in the shared summary"
    assert not (tmp_path / "stacks" / "live" / "levels-tf.tfplan").exists(), (
        "a failed plan leaves nothing to apply"
    )

    text = four_statuses("plan", "--all", "--format", "text")
    assert text.exit_code == 1, text.output + text.stderr
    rows = {
        line.split()[0]: line.split()[-2:]
        for line in text.stdout.splitlines()
        if re.match(r"[\w-]+ +(\d+|-) ", line)
    }
    assert (
        rows["prod-shared"] == ["no", "changes"]
        and rows["live"][-1] == "FAILED"
        and rows["trial"][-1] == "waiting"
    )
    assert rows["lab-shared"][-1].isdigit()
    assert f"  {where}: {error}" in text.stdout.splitlines()
    assert "  waits for the first apply of lab-shared" in text.stdout.splitlines()
    config = tmp_path / "infra.yaml"
    assert (
        f"next: {next_step(config, 'apply lab-shared')}`, then {next_step(config, 'plan trial')}`"
        in text.stdout
    )

    comment = four_statuses("plan", "--all", "--format", "markdown")
    assert comment.exit_code == 1, comment.output + comment.stderr
    # moto keeps some settings otherwise than asked: a drift column may come
    for row in (
        r"prod-shared \|( 0 \|){4}( \d+ \|)? no changes",
        r"live \|( – \|){4,5} ❌ failed",
        r"trial \|( – \|){4,5} ⏳ waiting",
    ):
        assert re.search(rf"^\| {row} \|$", comment.stdout, re.MULTILINE), row
    assert re.search(r"^\| lab-shared \| [1-9]\d* \| 0 \| 0 \| 0 \|", comment.stdout, re.MULTILINE)
    assert f"- ❌ **live** failed at `{where}`: {error}" in comment.stdout
    assert "❌ **Failed**: live" in comment.stdout and "No changes." not in comment.stdout
