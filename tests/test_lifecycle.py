"""plan, apply, drift, output and destroy for real: terraform with the aws
provider against a moto server, on a small two-zone configuration."""

from __future__ import annotations

import json
import os

import boto3
import pytest

from .conftest import ROOT, emulated

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

CONFIG = ROOT / "tests" / "golden" / "two-az-single-env" / "infra.yaml"

# Settings moto accepts but does not keep, so every plan wants to set them
# again: S3's EventBridge notifications.
MOTO_GAPS = {("live", "module.log_bucket.aws_s3_bucket_notification.this")}


@pytest.fixture
def rehearsal(rehearse):
    """A copy of the configuration rendered for the emulator, with local state."""
    return rehearse(CONFIG)


_lifecycle = emulated


def test_plan_apply_plan_again_drift_and_guards(run, rehearsal, aws_env):
    config = rehearsal

    # Before anything exists, the environment waits for its shared stack's first apply.
    first = _lifecycle(run, config, aws_env, "plan", "--all", "--format", "json")
    assert first.exit_code == 2, first.output + first.stderr
    summary = json.loads(first.stdout)
    assert [(s["stack"], s["status"]) for s in summary["stacks"]] == [
        ("main-shared", "changes"),
        ("live", "waiting"),
    ]
    assert summary["stacks"][0]["add"] > 20
    assert summary["stacks"][1]["after"] == ["main-shared"]

    # Applying needs a fresh saved plan: touching infra.yaml makes it stale.
    os.utime(config, None)
    refused = _lifecycle(run, config, aws_env, "apply", "--all", "--yes")
    assert refused.exit_code == 2 and "older than" in refused.stderr

    # The shared stack first (the environment reads its outputs), then the environment.
    for stack in ("main-shared", "live"):
        planned = _lifecycle(run, config, aws_env, "plan", stack)
        assert planned.exit_code == 2, planned.output + planned.stderr
        applied = _lifecycle(run, config, aws_env, "apply", stack, "--yes")
        assert applied.exit_code == 0, applied.output + applied.stderr
        assert f"{stack}: applied in" in applied.stdout
        assert "aws_vpc.this: Creating..." in applied.stdout or stack == "live"

    # Planning again finds nothing to do, but for what moto does not keep.
    again = _lifecycle(run, config, aws_env, "plan", "--all", "--json")
    assert again.exit_code in (0, 2), again.output + again.stderr
    planned = {
        (s["stack"], c["address"])
        for s in json.loads(again.stdout)["stacks"]
        for c in s.get("changes", [])
    }
    assert planned <= MOTO_GAPS, planned - MOTO_GAPS

    outputs = _lifecycle(run, config, aws_env, "output", "main-shared", "network")
    assert outputs.exit_code == 0, outputs.stderr
    vpc_id = json.loads(outputs.stdout)["vpc_id"]
    assert vpc_id.startswith("vpc-")

    # A change behind Terraform's back shows as drift.
    ec2 = boto3.client("ec2", region_name="eu-west-1", endpoint_url=aws_env)
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": "changed-by-hand"}])
    drift = _lifecycle(run, config, aws_env, "drift", "main-shared", "--format", "json")
    assert drift.exit_code == 2, drift.output + drift.stderr
    assert "module.network.aws_vpc.this" in drift.stdout

    # Production guard: confirm the name, and allow production explicitly.
    unconfirmed = _lifecycle(run, config, aws_env, "destroy", "live")
    assert unconfirmed.exit_code == 2 and "--confirm live" in unconfirmed.stderr
    guarded = _lifecycle(run, config, aws_env, "destroy", "live", "--confirm", "live")
    assert guarded.exit_code == 2 and "--allow-production" in guarded.stderr
    destroyed = _lifecycle(
        run, config, aws_env, "destroy", "live", "--confirm", "live", "--allow-production"
    )
    assert destroyed.exit_code == 0, destroyed.output + destroyed.stderr


def test_stale_rendered_tree_is_refused(run, rehearsal, aws_env):
    text = rehearsal.read_text().replace("azs: 2", "azs: 3")
    rehearsal.write_text(text)
    result = _lifecycle(run, rehearsal, aws_env, "plan", "--all")
    assert result.exit_code == 2
    assert "stale" in result.stderr and "--aws-endpoint" in result.stderr


def test_terraform_missing_is_one_clear_line(run, rehearsal, aws_env):
    result = _lifecycle(
        run, rehearsal, aws_env, "plan", "--all", "--terraform-bin", "/nonexistent/terraform"
    )
    assert result.exit_code == 1
    assert "not installed" in result.stderr and "Traceback" not in result.stderr


def test_the_reference_shared_stack_plans_on_a_fresh_platform(
    run, tmp_path, aws_env, terraform_env, monkeypatch
):
    """Nothing in the reference configuration's shared stack waits on a value known only after apply."""
    from levels_tf.functions import FUNCTIONS
    from levels_tf.lambda_package import build_zip

    from .conftest import copy_reference

    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    config = copy_reference(tmp_path)
    # The function's zip, from its sources alone: plan needs the file, not Pillow.
    package = tmp_path / "build" / "functions" / "image-variants.zip"
    package.parent.mkdir(parents=True)
    package.write_bytes(build_zip(FUNCTIONS["image-variants"].source_dir, None))
    assert (
        run("render", "--aws-endpoint", aws_env, "--backend", "local", config=config).exit_code == 0
    )
    result = _lifecycle(run, config, aws_env, "plan", "production-shared", "--format", "json")
    assert result.exit_code == 2, result.output + result.stderr
    (stack,) = json.loads(result.stdout)["stacks"]
    assert stack["add"] > 100 and stack["destroy"] == 0
