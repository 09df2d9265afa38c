"""destroy for real: terraform with the aws provider against a moto server.

A shared stack is not destroyed while a stack reading its outputs still has
resources (read through the backend, not guessed from local folders); log
buckets are emptied as part of a confirmed destroy, asset buckets only when
asked; production destroys only with --allow-production and says nothing of
options destroy does not have."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import boto3
import pytest

from levels_tf import teardown
from levels_tf.cli import cli

from .conftest import ROOT, emulated

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

CONFIG = ROOT / "tests" / "configs" / "teardown" / "infra.yaml"
SHARED, ENV, SPARE = "prod-shared", "live", "spare"
LOGS, UPLOADS = "fold-live-logs", "fold-live-uploads"


_cli = emulated


def _state_addresses(config, stack) -> list[str]:
    """What the stack's state holds, by `terraform show -json` through its backend."""
    shown = subprocess.run(
        ["terraform", "show", "-json"], cwd=config.parent / "stacks" / stack, capture_output=True, text=True, check=True
    )
    return [r.address for r in teardown.resources(json.loads(shown.stdout or "{}"))]


def _versions(s3, bucket: str) -> int:
    page = s3.list_object_versions(Bucket=bucket)
    return len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))


def _drop_tls_only_policy(s3, bucket: str) -> None:
    """The moto gap tests/test_locking.py describes: moto ignores the conditions of
    a bucket policy, so the statement denying requests without TLS denies every
    object request to the emulator. Against real S3 everything speaks TLS."""
    assert "aws:SecureTransport" in s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)


def _bring_up(run, config, endpoint, *stacks):
    """plan and apply `stacks` as a user would."""
    planned = _cli(run, config, endpoint, "plan", *stacks)
    assert planned.exit_code == 2, planned.output + planned.stderr
    applied = _cli(run, config, endpoint, "apply", *stacks, "--yes")
    assert applied.exit_code == 0, applied.output + applied.stderr


# A bucket of the user's own in the environment's stack (a file levels-tf did
# not generate and never touches): to destroy, an asset bucket like any other.
USER_BUCKET = f"""
resource "aws_s3_bucket" "uploads" {{
  bucket = "{UPLOADS}"
}}
"""


def test_destroy_refuses_live_dependents_and_asset_data_and_empties_log_buckets(run, rehearse, aws_env):
    config = rehearse(CONFIG)
    (config.parent / "stacks" / ENV / "uploads.tf").write_text(USER_BUCKET)
    _bring_up(run, config, aws_env, SHARED)
    _bring_up(run, config, aws_env, ENV, SPARE)

    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=aws_env)
    _drop_tls_only_policy(s3, LOGS)
    # Logs as S3 delivers them, with an older version and a delete marker;
    # a user's upload in the asset bucket.
    for body in (b"first", b"second"):
        s3.put_object(Bucket=LOGS, Key="access/2026-11-29-00-00-00", Body=body)
    s3.put_object(Bucket=LOGS, Key="cdn/E1.2026-11-29.gz", Body=b"log")
    s3.delete_object(Bucket=LOGS, Key="cdn/E1.2026-11-29.gz")
    s3.put_object(Bucket=UPLOADS, Key="users/1/avatar.jpg", Body=b"\xff\xd8 an image")
    assert _versions(s3, LOGS) == 4 and _versions(s3, UPLOADS) == 1

    # A production plan that would destroy the bucket is BLOCKED, and a block
    # blocks: no plan is kept, so apply has nothing to apply.
    user_file = config.parent / "stacks" / ENV / "uploads.tf"
    user_file.unlink()
    blocked = _cli(run, config, aws_env, "plan", ENV)
    assert blocked.exit_code == 1 and "BLOCKED" in blocked.stdout, blocked.output + blocked.stderr
    not_applied = _cli(run, config, aws_env, "apply", ENV, "--yes")
    assert not_applied.exit_code == 2 and "no saved plan" in not_applied.stderr, not_applied.output
    user_file.write_text(USER_BUCKET)

    shared_before = _state_addresses(config, SHARED)
    env_before = _state_addresses(config, ENV)
    spare = _state_addresses(config, SPARE)
    assert shared_before and env_before and spare

    # The environments still have resources: the shared stack stays, and the
    # refusal names each dependent and the one option that overrides it.
    refused = _cli(run, config, aws_env, "destroy", SHARED, "--confirm", SHARED, "--allow-production")
    assert refused.exit_code == 2, refused.output + refused.stderr
    assert f"{ENV} ({len(env_before)} resources), {SPARE} ({len(spare)} resources)" in refused.stderr
    assert "--ignore-dependents" in refused.stderr
    assert _state_addresses(config, SHARED) == shared_before

    # The asset bucket holds a user's data: refused before anything is destroyed.
    kept = _cli(run, config, aws_env, "destroy", ENV, "--confirm", ENV, "--allow-production")
    assert kept.exit_code == 2, kept.output + kept.stderr
    assert UPLOADS in kept.stderr and "--empty-asset-buckets" in kept.stderr and LOGS not in kept.stderr
    assert _state_addresses(config, ENV) == env_before
    assert _versions(s3, UPLOADS) == 1 and _versions(s3, LOGS) == 4

    # Said explicitly: both buckets are emptied (every version and delete
    # marker) and the production destroy goes through, without a BLOCKED line
    # naming an option destroy does not have.
    destroyed = _cli(
        run, config, aws_env, "destroy", ENV, "--confirm", ENV, "--allow-production", "--empty-asset-buckets"
    )
    assert destroyed.exit_code == 0, destroyed.output + destroyed.stderr
    assert f"emptied {LOGS} (4 " in destroyed.stdout and f"emptied {UPLOADS} (1 " in destroyed.stdout
    assert "BLOCKED" not in destroyed.output and "--allow-destroy" not in destroyed.output
    assert "allowed by --allow-production" in destroyed.stdout
    assert _state_addresses(config, ENV) == []
    remaining = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not remaining & {LOGS, UPLOADS}

    # An empty dependent no longer holds the shared stack; one with resources
    # still does, unless the user says to leave it behind.
    still = _cli(run, config, aws_env, "destroy", SHARED, "--confirm", SHARED, "--allow-production")
    assert still.exit_code == 2 and f"{SPARE} ({len(spare)} resources)" in still.stderr, still.output
    assert f"{ENV} (" not in still.stderr and _state_addresses(config, SHARED) == shared_before
    gone = _cli(
        run, config, aws_env, "destroy", SHARED, "--confirm", SHARED, "--allow-production", "--ignore-dependents"
    )
    assert gone.exit_code == 0, gone.output + gone.stderr
    assert f"{SPARE} ({len(spare)} resources) still read" in gone.stderr
    assert _state_addresses(config, SHARED) == [] and _state_addresses(config, SPARE) == spare
