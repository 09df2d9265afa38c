"""The next step a failure names: each known cause provoked for real, with the
real terraform and its S3 backend, and the matching of what they print."""

from __future__ import annotations

import re

import pytest

from levels_tf import remedies
from levels_tf.terraform import TerraformError

from .conftest import ROOT, as_printed

CONFIG = ROOT / "tests" / "golden" / "two-az-single-env" / "infra.yaml"


def _copy(tmp_path, backend: str = "local"):
    """The small golden configuration in `tmp_path`, its state kept by `backend`."""
    target = tmp_path / "infra.yaml"
    text = CONFIG.read_text(encoding="utf-8")
    assert "  backend: local\n" in text
    target.write_text(text.replace("  backend: local\n", f"  backend: {backend}\n"), "utf-8")
    return target


@pytest.fixture
def no_credentials(no_aws_credentials, monkeypatch, terraform_env):
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])


@pytest.mark.terraform
def test_no_credentials_names_the_variables_to_set(run, tmp_path, no_credentials):
    config = _copy(tmp_path)
    assert run("render", config=config).exit_code == 0
    result = run("plan", "--all", config=config)
    assert result.exit_code == 1, result.output
    expected = remedies.find("No valid credential sources found")
    assert expected is not None and expected.key == "no-credentials"
    assert result.stderr.count(as_printed(expected.line(), config)) >= 1, result.stderr
    assert "Traceback" not in result.output + result.stderr


@pytest.mark.terraform
def test_one_error_of_every_stack_is_said_once(run, tmp_path, no_credentials):
    """With the S3 backend every stack's init fails alike without
    credentials: the error and its remedy are said once, on stderr and in the
    summary, and the other stacks name the first."""
    config = _copy(tmp_path, backend="s3")
    assert run("render", config=config).exit_code == 0
    result = run("plan", "--all", config=config)
    assert result.exit_code == 1, result.output
    expected = remedies.named("no-credentials")
    assert result.stderr.count(as_printed(expected.line(), config)) == 1, result.stderr
    failed = re.findall(r"^(\S+): failed: (.*)$", result.stderr, flags=re.M)
    (first, _), *others = failed
    assert others and result.stderr.count("No valid credential sources found") == 1
    assert all(said.startswith(f"the same error as {first}") for _, said in others), result.stderr
    assert result.stdout.count("No valid credential sources found") == 1, result.stdout
    assert result.stdout.count(f"  the same error as {first}\n") == len(others), result.stdout


@pytest.mark.terraform
@pytest.mark.slow
def test_a_missing_state_bucket_says_to_bootstrap(
    run, tmp_path, aws_env, terraform_env, monkeypatch
):
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    config = _copy(tmp_path, backend="s3")
    rendered = run("render", "--aws-endpoint", aws_env, config=config)
    assert rendered.exit_code == 0, rendered.output
    result = run("plan", "main-shared", "--aws-endpoint", aws_env, config=config)
    assert result.exit_code == 1, result.output
    remedy = remedies.named("no-state-bucket")
    assert as_printed(remedy.line(), config) in result.stderr, result.stderr
    # After the bootstrap it names, the bucket is found. (moto then refuses the
    # state object under the bucket policy's conditional TLS Deny, which it
    # evaluates as a plain Deny: the rehearsal bootstraps without it.)
    assert run("bootstrap", "--aws-endpoint", aws_env, config=config).exit_code == 0
    again = run("plan", "main-shared", "--aws-endpoint", aws_env, config=config)
    assert 'S3 bucket "tiny-tfstate-main"' in again.stderr, again.stderr
    assert "does not exist" not in again.stderr
    assert as_printed(remedy.line(), config) not in again.stderr


# What the AWS SDK for Go v2, the aws provider and Terraform's S3 backend print
# for each cause (copied from their output), and the remedy each must get.
SAMPLES = [
    (
        "Error: No valid credential sources found\n\nError: failed to refresh cached "
        "credentials, no EC2 IMDS role found, operation error ec2imds: GetMetadata",
        "no-credentials",
    ),
    (
        "Error: validating provider credentials: retrieving caller identity from STS: "
        "operation error STS: GetCallerIdentity, https response error StatusCode: 403, "
        "api error ExpiredToken: The security token included in the request is expired",
        "expired-credentials",
    ),
    (
        "api error InvalidClientTokenId: The security token included in the request is invalid.",
        "rejected-credentials",
    ),
    (
        'Error: Failed to get existing workspaces: S3 bucket "acme-tfstate" does not exist.',
        "no-state-bucket",
    ),
    (
        "Error: Error acquiring the state lock: operation error S3: PutObject, https response "
        "error StatusCode: 412, api error PreconditionFailed",
        "state-locked",
    ),
    (
        "operation error EC2: CreateVpc, https response error StatusCode: 403, api error "
        "UnauthorizedOperation: You are not authorized to perform this operation.",
        "access-denied",
    ),
]


@pytest.mark.parametrize(("text", "key"), SAMPLES, ids=[key for _, key in SAMPLES])
def test_each_cause_is_recognised(text, key):
    remedy = remedies.find(text)
    assert remedy is not None and remedy.key == key


def test_unknown_failures_get_no_guess():
    assert remedies.find('Error: Unsupported argument: An argument named "foo"') is None
    assert remedies.with_next_step("plain") == "plain"


def test_every_remedy_names_a_next_step_and_is_reachable():
    keys = [r.key for r in remedies.REMEDIES]
    assert len(keys) == len(set(keys))
    assert {key for _, key in SAMPLES} == set(keys), "each remedy needs a sample"
    for remedy in remedies.REMEDIES:
        assert remedy.line().startswith(f"next: {remedy.cause}: ")
        assert len(remedy.action.split()) >= 4


def test_a_terraform_error_carries_its_remedy_after_its_log(tmp_path):
    log = tmp_path / "plan.log"
    error = TerraformError(
        "terraform init failed:\n  Error: No valid credential sources found", log=log
    )
    [text] = error.lines()
    assert text.index(str(log)) < text.index("next: no AWS credentials")
    assert str(error).endswith(remedies.named("no-credentials").line())
    assert TerraformError("terraform plan failed: odd").lines() == ["terraform plan failed: odd"]
