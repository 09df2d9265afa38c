"""`levels-tf deploy` against a real moto server on 127.0.0.1: the bundle in the
deployments bucket (KMS by the bucket's default), then the version parameter.

The endpoint reaches the command only through --aws-endpoint or
$LEVELS_TF_AWS_ENDPOINT; AWS_ENDPOINT_URL is removed and the proxies are dead.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

BUCKET = "levels-dev-deployments"
PARAMETER = "/levels/dev/api/bundle-version"


@pytest.fixture
def endpoint(aws_env, monkeypatch) -> str:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LEVELS_TF_AWS_ENDPOINT", raising=False)
    return aws_env


def _client(endpoint: str, service: str):
    config = Config(s3={"addressing_style": "path"}) if service == "s3" else None
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", config=config)


@pytest.fixture
def s3(endpoint):
    return _client(endpoint, "s3")


@pytest.fixture
def ssm(endpoint):
    return _client(endpoint, "ssm")


def _kms_bucket(endpoint: str, name: str) -> str:
    """A deployments bucket as the environment's stack makes it: default SSE-KMS with its own key."""
    key = _client(endpoint, "kms").create_key(Description="levels dev data")["KeyMetadata"]["Arn"]
    s3 = _client(endpoint, "s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    return key


@pytest.fixture
def deployments(endpoint) -> str:
    return _kms_bucket(endpoint, BUCKET)


def _bundle(folder: Path, name: str, files: dict[str, bytes]) -> Path:
    path = folder / name
    with tarfile.open(path, "w:gz") as archive:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _deploy(run, config, endpoint, *args):
    return run("deploy", *args, "--aws-endpoint", endpoint, config=config)


def _keys(s3, bucket: str = BUCKET) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _parameter(ssm, name: str = PARAMETER):
    try:
        return ssm.get_parameter(Name=name)["Parameter"]
    except ssm.exceptions.ParameterNotFound:
        return None


def test_deploy_uploads_the_bundle_then_records_its_version(
    run, reference_copy, endpoint, deployments, s3, ssm, monkeypatch
):
    bundle = _bundle(
        reference_copy.parent,
        "api.tar.gz",
        {"app/main.py": b"print('v1')\n", "app/VERSION": b"1\n"},
    )
    data = bundle.read_bytes()
    version = hashlib.sha256(data).hexdigest()[:12]

    result = _deploy(run, reference_copy, endpoint, "api", str(bundle), "--env", "dev")
    assert result.exit_code == 0, result.output
    assert f"uploaded api.tar.gz (2 entries, {len(data)} bytes, sha256 {version})" in result.stdout
    assert f"to s3://{BUCKET}/api/{version}.tar.gz (aws:kms" in result.stdout
    assert f"{PARAMETER}: (none) -> {version} (parameter version 1)" in result.stdout
    assert _keys(s3) == [f"api/{version}.tar.gz"]
    stored = s3.get_object(Bucket=BUCKET, Key=f"api/{version}.tar.gz")
    assert stored["Body"].read() == data
    assert stored["ServerSideEncryption"] == "aws:kms"
    assert stored["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
    parameter = _parameter(ssm)
    assert (parameter["Value"], parameter["Type"], parameter["Version"]) == (version, "String", 1)

    # The next one, with a version of its own and the endpoint from the environment.
    newer = _bundle(reference_copy.parent, "api-2.tar.gz", {"app/main.py": b"print('v2')\n"})
    monkeypatch.setenv("LEVELS_TF_AWS_ENDPOINT", endpoint)
    result = run(
        "deploy", "api", str(newer), "--env", "dev", "--version", "2.0.1", config=reference_copy
    )
    assert result.exit_code == 0, result.output
    assert f"{PARAMETER}: {version} -> 2.0.1 (parameter version 2)" in result.stdout
    assert sorted(_keys(s3)) == sorted([f"api/{version}.tar.gz", "api/2.0.1.tar.gz"])
    assert s3.get_object(Bucket=BUCKET, Key="api/2.0.1.tar.gz")["Body"].read() == newer.read_bytes()
    assert _parameter(ssm)["Value"] == "2.0.1"


def test_a_version_names_one_bundle_for_good(run, reference_copy, endpoint, deployments, s3, ssm):
    first = _bundle(reference_copy.parent, "a.tar.gz", {"app": b"a"})
    version = hashlib.sha256(first.read_bytes()).hexdigest()[:12]
    assert _deploy(run, reference_copy, endpoint, "api", str(first), "--env", "dev").exit_code == 0

    again = _deploy(run, reference_copy, endpoint, "api", str(first), "--env", "dev")
    assert again.exit_code == 0, again.output
    assert f"s3://{BUCKET}/api/{version}.tar.gz already holds a.tar.gz" in again.stdout
    assert f"{PARAMETER}: already {version}, left as it is" in again.stdout
    assert _parameter(ssm)["Version"] == 1

    other = _bundle(reference_copy.parent, "b.tar.gz", {"app": b"b"})
    clash = _deploy(
        run, reference_copy, endpoint, "api", str(other), "--env", "dev", "--version", version
    )
    assert clash.exit_code == 2
    assert f"s3://{BUCKET}/api/{version}.tar.gz already exists" in clash.stderr
    assert (
        s3.get_object(Bucket=BUCKET, Key=f"api/{version}.tar.gz")["Body"].read()
        == first.read_bytes()
    )
    assert _parameter(ssm)["Version"] == 1


def _gzip_not_tar(folder: Path) -> Path:
    path = folder / "notes.tar.gz"
    path.write_bytes(gzip.compress(b"just some text, no tar headers\n" * 40))
    return path


def _plain_text(folder: Path) -> Path:
    path = folder / "plain.tar.gz"
    path.write_text("not compressed at all\n")
    return path


def _empty_tar(folder: Path) -> Path:
    return _bundle(folder, "empty.tar.gz", {})


def _escaping(folder: Path) -> Path:
    return _bundle(folder, "escape.tar.gz", {"../../etc/cron.d/x": b"* * * * * root true\n"})


def _good(folder: Path) -> Path:
    return _bundle(folder, "good.tar.gz", {"app": b"ok"})


@pytest.mark.parametrize(
    ("service", "make", "extra", "message"),
    [
        ("billing", _good, (), "no service 'billing' in environment dev"),
        ("api", _good, ("--env", "staging"), "--env staging: no such environment in"),
        ("api", lambda folder: folder / "missing.tar.gz", (), "missing.tar.gz does not exist"),
        ("api", _plain_text, (), "plain.tar.gz is not gzip-compressed"),
        ("api", _gzip_not_tar, (), "notes.tar.gz is gzip but not a readable tar archive"),
        ("api", _empty_tar, (), "empty.tar.gz is an empty tar archive"),
        ("api", _escaping, (), "has a member outside its root: '../../etc/cron.d/x'"),
        ("api", _good, ("--version", "../v1"), "--version '../v1': use 1 to 64 letters"),
    ],
    ids=[
        "unknown-service",
        "unknown-env",
        "missing-file",
        "not-gzip",
        "gzip-not-tar",
        "empty-tar",
        "unsafe-member",
        "bad-version",
    ],
)
def test_deploy_refuses_bad_input_before_touching_aws(
    run, reference_copy, endpoint, deployments, s3, ssm, service, make, extra, message
):
    bundle = make(reference_copy.parent)
    args = [service, str(bundle)]
    env = () if "--env" in extra else ("--env", "dev")
    result = _deploy(run, reference_copy, endpoint, *args, *env, *extra)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert _keys(s3) == []
    assert _parameter(ssm) is None


def test_deploy_needs_a_deployments_bucket_class(run, reference_copy, endpoint, deployments, s3):
    text = reference_copy.read_text()
    assert "  deployments: {}\n" in text
    reference_copy.write_text(text.replace("  deployments: {}\n", ""))
    bundle = _good(reference_copy.parent)
    result = _deploy(run, reference_copy, endpoint, "api", str(bundle), "--env", "dev")
    assert result.exit_code == 2
    assert "declares no 'deployments' bucket class" in result.stderr
    assert _keys(s3) == []


def test_no_parameter_when_the_upload_fails(run, reference_copy, endpoint, ssm):
    bundle = _good(reference_copy.parent)
    result = _deploy(run, reference_copy, endpoint, "api", str(bundle), "--env", "dev")
    assert result.exit_code == 1
    assert f"bucket {BUCKET} does not exist" in result.stderr
    assert _parameter(ssm) is None


def test_no_parameter_when_the_bucket_is_not_kms_encrypted(run, reference_copy, endpoint, s3, ssm):
    s3.create_bucket(Bucket=BUCKET)  # no default encryption: not the bucket the stack renders
    bundle = _good(reference_copy.parent)
    result = _deploy(run, reference_copy, endpoint, "api", str(bundle), "--env", "dev")
    assert result.exit_code == 1
    assert "encryption, not the bucket's KMS key" in result.stderr
    assert f"{PARAMETER} was left at nothing" in result.stderr
    assert _parameter(ssm) is None


def test_each_environment_has_its_own_bucket_and_parameter(
    run, reference_copy, endpoint, deployments, s3, ssm
):
    _kms_bucket(endpoint, "levels-qa-deployments")
    bundle = _bundle(reference_copy.parent, "worker.tar.gz", {"worker.py": b"run()\n"})
    result = _deploy(
        run, reference_copy, endpoint, "worker", str(bundle), "--env", "qa", "--version", "7"
    )
    assert result.exit_code == 0, result.output
    assert _keys(s3, "levels-qa-deployments") == ["worker/7.tar.gz"]
    assert _keys(s3) == []
    assert _parameter(ssm, "/levels/qa/worker/bundle-version")["Value"] == "7"
    assert _parameter(ssm) is None
