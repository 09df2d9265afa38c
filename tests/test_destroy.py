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
        ["terraform", "show", "-json"],
        cwd=config.parent / "stacks" / stack,
        capture_output=True,
        text=True,
        check=True,
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


def test_destroy_refuses_live_dependents_and_asset_data_and_empties_log_buckets(
    run, rehearse, aws_env
):
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
    refused = _cli(
        run, config, aws_env, "destroy", SHARED, "--confirm", SHARED, "--allow-production"
    )
    assert refused.exit_code == 2, refused.output + refused.stderr
    assert (
        f"{ENV} ({len(env_before)} resources), {SPARE} ({len(spare)} resources)" in refused.stderr
    )
    assert "--ignore-dependents" in refused.stderr
    assert _state_addresses(config, SHARED) == shared_before

    # The asset bucket holds a user's data: refused before anything is destroyed.
    kept = _cli(run, config, aws_env, "destroy", ENV, "--confirm", ENV, "--allow-production")
    assert kept.exit_code == 2, kept.output + kept.stderr
    assert (
        UPLOADS in kept.stderr
        and "--empty-asset-buckets" in kept.stderr
        and LOGS not in kept.stderr
    )
    assert _state_addresses(config, ENV) == env_before
    assert _versions(s3, UPLOADS) == 1 and _versions(s3, LOGS) == 4

    # Said explicitly: both buckets are emptied (every version and delete
    # marker) and the production destroy goes through, without a BLOCKED line
    # naming an option destroy does not have.
    destroyed = _cli(
        run,
        config,
        aws_env,
        "destroy",
        ENV,
        "--confirm",
        ENV,
        "--allow-production",
        "--empty-asset-buckets",
    )
    assert destroyed.exit_code == 0, destroyed.output + destroyed.stderr
    assert (
        f"emptied {LOGS} (4 " in destroyed.stdout and f"emptied {UPLOADS} (1 " in destroyed.stdout
    )
    assert "BLOCKED" not in destroyed.output and "--allow-destroy" not in destroyed.output
    assert "allowed by --allow-production" in destroyed.stdout
    assert _state_addresses(config, ENV) == []
    remaining = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not remaining & {LOGS, UPLOADS}

    # An empty dependent no longer holds the shared stack; one with resources
    # still does, unless the user says to leave it behind.
    still = _cli(run, config, aws_env, "destroy", SHARED, "--confirm", SHARED, "--allow-production")
    assert still.exit_code == 2 and f"{SPARE} ({len(spare)} resources)" in still.stderr, (
        still.output
    )
    assert f"{ENV} (" not in still.stderr and _state_addresses(config, SHARED) == shared_before
    gone = _cli(
        run,
        config,
        aws_env,
        "destroy",
        SHARED,
        "--confirm",
        SHARED,
        "--allow-production",
        "--ignore-dependents",
    )
    assert gone.exit_code == 0, gone.output + gone.stderr
    assert f"{SPARE} ({len(spare)} resources) still read" in gone.stderr
    assert _state_addresses(config, SHARED) == [] and _state_addresses(config, SPARE) == spare


PROTECTED = ROOT / "tests" / "configs" / "protected" / "infra.yaml"
LB_LOGS = "guard-prod-lb-logs"


def _imported_certificate(endpoint: str) -> str:
    """The ARN of a self-signed certificate imported into the emulator's ACM (its
    load balancer listeners accept only certificates ACM knows)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "live.guard.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    acm = boto3.client("acm", region_name="eu-west-1", endpoint_url=endpoint)
    return acm.import_certificate(
        Certificate=certificate.public_bytes(serialization.Encoding.PEM),
        PrivateKey=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )["CertificateArn"]


def test_a_protected_load_balancer_is_refused_at_once_then_lifted_in_a_reviewed_apply(
    run, rehearse, aws_env, tmp_path
):
    source = tmp_path / "protected.yaml"
    text = PROTECTED.read_text()
    (placeholder,) = re.findall(r"arn:aws:acm:\S+", text)
    source.write_text(text.replace(placeholder, _imported_certificate(aws_env)))
    config = rehearse(source)
    _bring_up(run, config, aws_env, SHARED)
    elbv2 = boto3.client("elbv2", region_name="eu-west-1", endpoint_url=aws_env)
    (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]

    def protection() -> str:
        attributes = elbv2.describe_load_balancer_attributes(
            LoadBalancerArn=balancer["LoadBalancerArn"]
        )["Attributes"]
        return {a["Key"]: a["Value"] for a in attributes}["deletion_protection.enabled"]

    assert protection() == "true"
    before = _state_addresses(config, SHARED)

    # No emulator enforces a load balancer's protection, so a wait or a
    # failure there would prove nothing: the refusal comes before any delete,
    # from the state, with the command that goes on.
    refused = _cli(
        run, config, aws_env, "destroy", SHARED, "--confirm", SHARED, "--allow-production"
    )
    assert refused.exit_code == 2, refused.output + refused.stderr
    assert "module.load_balancer.aws_lb.this (enable_deletion_protection)" in refused.stderr
    (command,) = re.findall(r"`(levels-tf -c \S+ destroy [^`]*)`", refused.stderr)
    assert "--lift-protection" in command and "--allow-production" in command
    assert _state_addresses(config, SHARED) == before and protection() == "true"

    # The command as printed: protection off in a reviewed apply (changes in
    # place only: the load balancer, and what moto does not keep), then the
    # destroy. (The access-log bucket stays empty here: emptying it on moto
    # needs its policy gone, which the reviewed apply would put back.)
    assert command.split()[2] == str(config)
    destroyed = run(*command.split()[1:])
    assert destroyed.exit_code == 0, destroyed.output + destroyed.stderr
    assert "turning deletion protection off first" in destroyed.stdout
    lb = "module.load_balancer.aws_lb.this"
    assert destroyed.stdout.index(f"{lb}: Updated") < destroyed.stdout.index(f"{lb}: Destroying...")
    lifted = destroyed.stdout.split("turning deletion protection off first:")[1].split("\ntotal")[0]
    assert re.search(rf"\n{SHARED}\s+0\s+[1-9]\d*\s+0\s+0", lifted), lifted
    assert _state_addresses(config, SHARED) == []
    assert elbv2.describe_load_balancers()["LoadBalancers"] == []
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=aws_env)
    assert LB_LOGS not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    options = re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", destroyed.output + refused.output)
    assert set(options) <= _destroy_options(), set(options) - _destroy_options()


def _destroy_options() -> set[str]:
    return {
        o
        for p in [*cli.params, *cli.commands["destroy"].params]
        for o in p.opts
        if o.startswith("--")
    }


PROTECTION_WORDS = re.compile(r"protection|termination")

# Types with a force_destroy/force_delete argument that AWS deletes all the same.
DELETED_WITHOUT_FORCE = {
    "aws_s3_bucket": "destroy empties the stack's buckets itself (log buckets always, asset buckets on request)",
    "aws_autoscaling_group": "force_delete only skips waiting for the instances to end; AWS does not refuse the delete",
    "aws_rds_cluster_instance": "an instance holds no data of its own (the cluster's storage does); AWS does not refuse it",
}


def test_every_deletion_protection_the_modules_can_set_is_known_and_follows_the_lift_variable(
    run, reference_copy, terraform_env
):
    """The next protected resource is caught: the provider's own schema lists every
    argument of the resource types the modules use whose name speaks of
    protection or termination; one the modules set must be in
    teardown.PROTECTION (so destroy sees it), and every stack must set it from
    the variable --lift-protection turns off."""
    assert run("render", config=reference_copy).exit_code == 0
    root = reference_copy.parent
    # The schema of the provider the stacks pin, from a folder of its own
    # (a stack's folder would want its backend first).
    folder = root / "schema"
    folder.mkdir()
    shutil.copy(root / "stacks" / "production-shared" / "versions.tf", folder / "versions.tf")
    (folder / "versions.tf").write_text(
        re.sub(r'(?s)\n\s*backend "\w+" \{.*?\n  \}', "", (folder / "versions.tf").read_text())
    )
    subprocess.run(
        ["terraform", "init", "-input=false", "-no-color"],
        cwd=folder,
        env=terraform_env,
        check=True,
        capture_output=True,
    )
    shown = subprocess.run(
        ["terraform", "providers", "schema", "-json"],
        cwd=folder,
        env=terraform_env,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    (provider,) = [
        p
        for name, p in json.loads(shown.stdout)["provider_schemas"].items()
        if name.endswith("/aws")
    ]
    modules = {path: path.read_text() for path in (root / "modules").rglob("*.tf")}
    used = {t for text in modules.values() for t in re.findall(r'^resource "(\w+)"', text, re.M)}
    assert {"aws_lb", "aws_rds_cluster", "aws_launch_template"} <= used
    candidates = {
        (type_, attribute)
        for type_ in used
        for attribute, spec in provider["resource_schemas"][type_]["block"]
        .get("attributes", {})
        .items()
        if PROTECTION_WORDS.search(attribute) and spec.get("type") == "bool"
    }
    assert ("aws_lb", "enable_deletion_protection") in candidates
    set_by_modules = {
        (type_, attribute)
        for type_, attribute in candidates
        if any(
            re.search(rf"^\s*{attribute}\s*=\s*(?!false\b)", text, re.M)
            for text in modules.values()
        )
    }
    unknown = {pair for pair in set_by_modules if teardown.PROTECTION.get(pair[0]) != pair[1]}
    assert not unknown, f"destroy does not know these protections: {sorted(unknown)}"
    assert {
        ("aws_lb", "enable_deletion_protection"),
        ("aws_rds_cluster", "deletion_protection"),
    } <= set_by_modules
    # Resources AWS refuses to delete while they hold data, unless told to
    # delete it too: destroy must know each one (S3 buckets it empties itself).
    keeps_data = {
        type_
        for type_ in used
        for attribute, spec in provider["resource_schemas"][type_]["block"]
        .get("attributes", {})
        .items()
        if attribute in ("force_destroy", "force_delete") and spec.get("type") == "bool"
    }
    assert "aws_backup_vault" in keeps_data
    unknown = keeps_data - set(teardown.KEEPS_DATA) - set(DELETED_WITHOUT_FORCE)
    assert not unknown, f"say how destroy deletes what these hold: {sorted(unknown)}"
    for type_, attribute in teardown.KEEPS_DATA.items():
        setting = [
            m
            for text in modules.values()
            for m in re.findall(
                rf'(?s)resource "{type_}" "\w+" \{{.*?^\s*{attribute}\s*=\s*(.+?)$', text, re.M
            )
        ]
        assert setting and all(f"!var.{teardown.LIFT_VARIABLE}" in s for s in setting), (
            type_,
            setting,
        )
    for stack in ("production-shared", "nonprod-shared"):
        settings = re.findall(
            r"^\s*deletion_protection\s*=\s*(.+)$",
            "".join(p.read_text() for p in (root / "stacks" / stack).glob("*.tf")),
            re.M,
        )
        assert settings and set(settings) == {f"var.{teardown.LIFT_VARIABLE}"}, (stack, settings)
