"""`levels-tf bootstrap` against a real moto server on 127.0.0.1.

Every command gets the endpoint explicitly (--aws-endpoint): AWS_ENDPOINT_URL
is removed and the proxies point at a dead port, so a request that ignored the
option could not reach anything. moto has no iam:SimulatePrincipalPolicy, so
the ordinary runs show the "cannot verify" warning; the report of missing
permissions is tested with a stubbed simulation answer (the only stub here),
and a real denial with moto's own IAM enforcement.
"""

from __future__ import annotations

import json
import urllib.request

import boto3
import pytest
from botocore.config import Config

from levels_tf.aws import Aws

ACCOUNT = "123456789012"
BUCKETS = {"production": "levels-tfstate-production", "nonprod": "levels-tfstate-nonprod"}
BASE_TAGS = {
    "Owner": "platform",
    "CostCenter": "levels",
    "Project": "levels",
    "ManagedBy": "levels-tf",
}
GITHUB_URL = "token.actions.githubusercontent.com"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GITHUB_URL}"


@pytest.fixture
def endpoint(aws_env, monkeypatch) -> str:
    """The moto URL, reachable only through the command's own --aws-endpoint."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LEVELS_TF_AWS_ENDPOINT", raising=False)
    return aws_env


def _client(endpoint: str, service: str, region: str = "us-east-1", **credentials):
    config = Config(s3={"addressing_style": "path"}) if service == "s3" else None
    return boto3.client(
        service, endpoint_url=endpoint, region_name=region, config=config, **credentials
    )


def _bootstrap(run, config, endpoint, *args):
    return run("bootstrap", *args, "--aws-endpoint", endpoint, config=config)


def _bucket_names(endpoint: str, **credentials) -> set[str]:
    return {b["Name"] for b in _client(endpoint, "s3", **credentials).list_buckets()["Buckets"]}


def _assert_configured(s3, name: str, group: str) -> None:
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    ownership = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
    (deny,) = [s for s in policy["Statement"] if s.get("Sid") == "DenyInsecureTransport"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] in ("*", {"AWS": "*"})
    assert deny["Action"] in ("s3:*", ["s3:*"])
    assert sorted(deny["Resource"]) == [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
    assert tags == {**BASE_TAGS, "VpcGroup": group}


def test_bootstrap_creates_every_group_bucket_then_finds_them(run, reference_copy, endpoint):
    first = _bootstrap(run, reference_copy, endpoint)
    assert first.exit_code == 0, first.output
    for group, name in BUCKETS.items():
        assert f"{name}: created (group {group})" in first.stdout
    assert "cannot verify permissions" in first.stderr  # moto cannot simulate IAM policies
    s3 = _client(endpoint, "s3")
    assert _bucket_names(endpoint) == set(BUCKETS.values())
    for group, name in BUCKETS.items():
        _assert_configured(s3, name, group)
        assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") is None  # us-east-1

    second = _bootstrap(run, reference_copy, endpoint)
    assert second.exit_code == 0, second.output
    for group, name in BUCKETS.items():
        assert f"{name}: exists (group {group}), up to date" in second.stdout
    assert "created" not in second.stdout
    for group, name in BUCKETS.items():
        _assert_configured(s3, name, group)


def test_bootstrap_converges_drift_and_keeps_what_is_not_its_own(run, reference_copy, endpoint):
    assert _bootstrap(run, reference_copy, endpoint).exit_code == 0
    s3 = _client(endpoint, "s3")
    name = BUCKETS["production"]
    foreign = {
        "Sid": "AuditorsRead",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{name}/*",
    }
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_public_access_block(Bucket=name)
    s3.put_bucket_ownership_controls(
        Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )
    s3.delete_bucket_encryption(Bucket=name)
    s3.put_bucket_policy(
        Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [foreign]})
    )
    s3.put_bucket_tagging(
        Bucket=name,
        Tagging={
            "TagSet": [{"Key": "Team", "Value": "data"}, {"Key": "ManagedBy", "Value": "hand"}]
        },
    )
    # A KMS default on the other bucket is a stronger, deliberate choice: kept.
    s3.put_bucket_encryption(
        Bucket=BUCKETS["nonprod"],
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )

    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 0, result.output
    assert (
        f"{name}: exists (group production), updated: public access block, ownership, encryption, "
        "versioning, policy, tags" in result.stdout
    )
    assert f"{BUCKETS['nonprod']}: exists (group nonprod), up to date" in result.stdout
    policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["AuditorsRead", "DenyInsecureTransport"]
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
    assert tags == {**BASE_TAGS, "VpcGroup": "production", "Team": "data"}
    s3.delete_bucket_tagging(Bucket=name)  # so the full check below sees only ours
    assert "updated: tags" in _bootstrap(run, reference_copy, endpoint).stdout
    _assert_configured(s3, name, "production")
    rules = s3.get_bucket_encryption(Bucket=BUCKETS["nonprod"])[
        "ServerSideEncryptionConfiguration"
    ]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"

    again = _bootstrap(run, reference_copy, endpoint)
    # The buckets, the OIDC provider and the four roles of test_bootstrap_roles.py.
    assert "updated" not in again.stdout and again.stdout.count("up to date") == 7


def test_an_equivalent_tls_statement_of_another_name_is_enough(run, reference_copy, endpoint):
    assert _bootstrap(run, reference_copy, endpoint, "production").exit_code == 0
    s3 = _client(endpoint, "s3")
    name = BUCKETS["production"]
    theirs = {
        "Sid": "AllowSSLRequestsOnly",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": ["s3:*"],
        "Resource": [f"arn:aws:s3:::{name}/*", f"arn:aws:s3:::{name}"],
        "Condition": {"Bool": {"aws:SecureTransport": ["false"]}},
    }
    s3.put_bucket_policy(
        Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [theirs]})
    )
    result = _bootstrap(run, reference_copy, endpoint, "production")
    assert f"{name}: exists (group production), up to date" in result.stdout
    assert json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])["Statement"] == [theirs]


def test_bootstrap_one_group(run, reference_copy, endpoint):
    result = _bootstrap(run, reference_copy, endpoint, "nonprod")
    assert result.exit_code == 0, result.output
    assert "levels-tfstate-nonprod: created (group nonprod)" in result.stdout
    assert "production" not in result.stdout
    assert _bucket_names(endpoint) == {"levels-tfstate-nonprod"}


def test_bootstrap_unknown_group_is_a_usage_error(run, reference_copy, endpoint):
    result = _bootstrap(run, reference_copy, endpoint, "staging")
    assert result.exit_code == 2
    assert "no VPC group 'staging'" in result.stderr and "production, nonprod" in result.stderr
    assert _bucket_names(endpoint) == set()


def test_bootstrap_with_local_backend_creates_no_bucket_but_the_oidc_provider(
    run, reference_copy, endpoint
):
    text = reference_copy.read_text()
    reference_copy.write_text(text.replace("  backend: s3 ", "  backend: local "))
    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 0, result.output
    assert "state.backend is local" in result.stdout
    assert "no state bucket to create" in result.stdout
    assert _bucket_names(endpoint) == set()
    assert f"OIDC provider {GITHUB_URL}: created" in result.stdout
    assert _providers(endpoint) == [PROVIDER]


def test_bootstrap_with_local_backend_and_no_github_trust_creates_nothing(
    run, reference_copy, endpoint
):
    text = reference_copy.read_text()
    text = text.replace("  backend: s3 ", "  backend: local ")
    reference_copy.write_text(_without_github(text))
    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 0, result.output
    assert "no state bucket to create" in result.stdout
    assert "OIDC" not in result.stdout
    assert _bucket_names(endpoint) == set()
    assert _providers(endpoint) == []


def _without_github(text: str) -> str:
    """The reference's ci block with role ARNs in place of GitHub."""
    start = text.index("  github:")
    end = text.index("  assumed_by: []")
    return (
        text[:start]
        + f'  assumed_by: ["arn:aws:iam::{ACCOUNT}:role/runner"]'
        + text[end + len("  assumed_by: []") :]
    )


def _providers(endpoint: str) -> list[str]:
    iam = _client(endpoint, "iam")
    return sorted(
        p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    )


def test_bootstrap_creates_the_github_oidc_provider_once_without_a_thumbprint(
    run, reference_copy, endpoint
):
    first = _bootstrap(run, reference_copy, endpoint)
    assert first.exit_code == 0, first.output
    assert (
        f"OIDC provider {GITHUB_URL}: created: client id sts.amazonaws.com, no thumbprint "
        "(IAM trusts GitHub's certificate authority), 4 tags" in first.stdout
    )
    assert _providers(endpoint) == [PROVIDER]
    iam = _client(endpoint, "iam")
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=PROVIDER)
    assert provider["Url"] == GITHUB_URL
    assert provider["ClientIDList"] == ["sts.amazonaws.com"]
    assert not provider.get("ThumbprintList")
    tags = iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=PROVIDER)["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == BASE_TAGS  # the account's: no VpcGroup

    second = _bootstrap(run, reference_copy, endpoint, "nonprod")
    assert second.exit_code == 0, second.output
    assert f"OIDC provider {GITHUB_URL}: exists, up to date" in second.stdout
    assert _providers(endpoint) == [PROVIDER]


def test_a_provider_made_elsewhere_is_left_as_it_is(run, reference_copy, endpoint):
    iam = _client(endpoint, "iam")
    iam.create_open_id_connect_provider(
        Url=f"https://{GITHUB_URL}",
        ClientIDList=["https://github.com/acme"],
        ThumbprintList=["6938fd4d98bab03faadb97b34396831e3780aea1"],
        Tags=[{"Key": "Owner", "Value": "security"}],
    )
    refused = _bootstrap(run, reference_copy, endpoint)
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[-1:] == [
        f"OIDC provider {PROVIDER} does not accept the audience sts.amazonaws.com, which the CI "
        "roles require; add it to the provider's client ids (IAM "
        "AddClientIDToOpenIDConnectProvider), then run levels-tf bootstrap again; "
        "nothing was changed"
    ]
    assert _bucket_names(endpoint) == set()

    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=PROVIDER)
    iam.create_open_id_connect_provider(
        Url=f"https://{GITHUB_URL}",
        ClientIDList=["https://github.com/acme", "sts.amazonaws.com"],
        ThumbprintList=["6938fd4d98bab03faadb97b34396831e3780aea1"],
        Tags=[{"Key": "Owner", "Value": "security"}],
    )
    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 0, result.output
    assert f"OIDC provider {GITHUB_URL}: exists, up to date" in result.stdout
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=PROVIDER)
    assert sorted(provider["ClientIDList"]) == ["https://github.com/acme", "sts.amazonaws.com"]
    assert provider["ThumbprintList"] == ["6938fd4d98bab03faadb97b34396831e3780aea1"]
    tags = iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=PROVIDER)["Tags"]
    assert tags == [{"Key": "Owner", "Value": "security"}]


def test_a_provider_arn_in_the_config_leaves_the_provider_alone(run, reference_copy, endpoint):
    text = reference_copy.read_text()
    named = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GITHUB_URL}"
    reference_copy.write_text(
        text.replace(
            "    repository: acme/levels", f"    provider_arn: {named}\n    repository: acme/levels"
        )
    )
    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 0, result.output
    assert f"ci.github.provider_arn is set: the OIDC provider {named} is managed elsewhere" in (
        result.stdout
    )
    assert "OIDC provider token" not in result.stdout
    assert _providers(endpoint) == []
    assert _bucket_names(endpoint) == set(BUCKETS.values())


def test_bootstrap_outside_us_east_1_names_the_region(run, reference_copy, endpoint):
    text = reference_copy.read_text()
    reference_copy.write_text(text.replace("region: us-east-1", "region: us-west-2"))
    result = _bootstrap(run, reference_copy, endpoint, "production")
    assert result.exit_code == 0, result.output
    s3 = _client(endpoint, "s3", region="us-west-2")
    assert s3.get_bucket_location(Bucket=BUCKETS["production"])["LocationConstraint"] == "us-west-2"
    assert (
        "exists (group production), up to date"
        in _bootstrap(run, reference_copy, endpoint, "production").stdout
    )


def test_bucket_of_another_account_is_an_error_and_nothing_is_created(
    run, reference_copy, endpoint
):
    sts = _client(endpoint, "sts")
    credentials = sts.assume_role(
        RoleArn="arn:aws:iam::111111111111:role/other", RoleSessionName="squatter"
    )["Credentials"]
    theirs = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
    _client(endpoint, "s3", **theirs).create_bucket(Bucket=BUCKETS["nonprod"])

    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 1
    assert "bucket levels-tfstate-nonprod already exists in another AWS account" in result.stderr
    assert "Traceback" not in result.output
    assert _bucket_names(endpoint) == set()  # production was not created either
    assert _bucket_names(endpoint, **theirs) == {BUCKETS["nonprod"]}


def test_own_bucket_in_another_region_is_an_error(run, reference_copy, endpoint):
    _client(endpoint, "s3", region="eu-west-1").create_bucket(
        Bucket=BUCKETS["production"], CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 1
    assert (
        "levels-tfstate-production exists in eu-west-1, but infra.yaml's region is us-east-1"
        in result.stderr
    )
    assert _bucket_names(endpoint) == {BUCKETS["production"]}


def _simulation(denied: set[str], calls: list):
    """A stand-in for iam:SimulatePrincipalPolicy's answer (moto has none): every
    action allowed except `denied`, in the shape IAM returns."""

    def results(self, principal, actions, resources, context):
        calls.append((principal, list(actions), resources))
        out = []
        for action in actions:
            decision = "implicitDeny" if action in denied else "allowed"
            result = {"EvalActionName": action, "EvalResourceName": "*", "EvalDecision": decision}
            if resources:
                result["ResourceSpecificResults"] = [
                    {"EvalResourceName": arn, "EvalResourceDecision": decision} for arn in resources
                ]
            out.append(result)
        return out

    return results


def test_missing_permissions_are_named_and_nothing_is_created(
    run, reference_copy, endpoint, monkeypatch
):
    calls: list = []
    monkeypatch.setattr(
        Aws, "_simulation_results", _simulation({"s3:CreateBucket", "s3:PutBucketPolicy"}, calls)
    )
    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 1
    first = result.stderr.splitlines()[0]
    assert first == (
        f"arn:aws:iam::{ACCOUNT}:user/moto lacks permissions to bootstrap the state buckets: "
        "s3:CreateBucket, s3:PutBucketPolicy; nothing was changed"
    )
    assert "  s3:CreateBucket on levels-tfstate-production, levels-tfstate-nonprod" in result.stderr
    assert "cannot verify" not in result.stderr
    assert _bucket_names(endpoint) == set()
    assert _providers(endpoint) == []
    checked = {action: resources for _, actions, resources in calls for action in actions}
    assert {principal for principal, _, _ in calls} == {f"arn:aws:iam::{ACCOUNT}:user/moto"}
    assert checked["s3:PutBucketVersioning"] == [f"arn:aws:s3:::{n}" for n in BUCKETS.values()]
    assert checked["iam:ListOpenIDConnectProviders"] is None
    for action in (
        "iam:GetOpenIDConnectProvider",
        "iam:CreateOpenIDConnectProvider",
        "iam:TagOpenIDConnectProvider",
    ):
        assert checked[action] == [PROVIDER], action


def test_a_missing_provider_permission_matters_only_for_what_is_to_be_done(
    run, reference_copy, endpoint, monkeypatch
):
    calls: list = []
    denied = {"iam:CreateOpenIDConnectProvider"}
    monkeypatch.setattr(Aws, "_simulation_results", _simulation(denied, calls))
    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        f"arn:aws:iam::{ACCOUNT}:user/moto lacks permissions to bootstrap the state buckets: "
        "iam:CreateOpenIDConnectProvider; nothing was changed",
        f"  iam:CreateOpenIDConnectProvider on {PROVIDER}",
    ]
    assert _bucket_names(endpoint) == set() and _providers(endpoint) == []

    _client(endpoint, "iam").create_open_id_connect_provider(
        Url=f"https://{GITHUB_URL}", ClientIDList=["sts.amazonaws.com"]
    )
    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 0, result.output
    assert f"OIDC provider {GITHUB_URL}: exists, up to date" in result.stdout


def test_create_permission_is_not_needed_for_existing_buckets_of_a_role(
    run, reference_copy, endpoint, monkeypatch
):
    assert _bootstrap(run, reference_copy, endpoint).exit_code == 0
    iam = _client(endpoint, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(
        RoleName="deployer", Path="/ci/", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]
    credentials = _client(endpoint, "sts").assume_role(
        RoleArn=role["Arn"], RoleSessionName="pipeline"
    )["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
    calls: list = []
    monkeypatch.setattr(
        Aws, "_simulation_results", _simulation({"s3:CreateBucket", "s3:TagResource"}, calls)
    )

    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("up to date") == 7  # the buckets, the OIDC provider, the roles
    # The assumed-role ARN has no path; the simulated principal is the role's real ARN.
    assert {call[0] for call in calls} == {f"arn:aws:iam::{ACCOUNT}:role/ci/deployer"}

    _client(endpoint, "s3").delete_bucket(Bucket=BUCKETS["nonprod"])
    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 1
    assert "s3:CreateBucket, s3:TagResource; nothing was changed" in result.stderr
    assert "  s3:CreateBucket on levels-tfstate-nonprod" in result.stderr.splitlines()


def _moto_auth(endpoint: str, count: str) -> None:
    """moto's own switch for IAM enforcement: deny whatever the caller's policies do not allow."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with opener.open(request, timeout=5) as response:
        assert response.status == 200


@pytest.fixture
def enforced_user(endpoint, monkeypatch):
    """Credentials of an IAM user that may use S3 but not s3:PutBucketPolicy nor
    iam:SimulatePrincipalPolicy, with moto enforcing IAM for the test's duration."""
    iam = _client(endpoint, "iam")
    iam.create_user(UserName="operator")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "s3:*",
                    "sts:GetCallerIdentity",
                    "iam:ListOpenIDConnectProviders",
                    "iam:GetOpenIDConnectProvider",
                    "iam:CreateOpenIDConnectProvider",
                    "iam:TagOpenIDConnectProvider",
                    "iam:GetRole",
                    "iam:GetRolePolicy",
                    "iam:ListAttachedRolePolicies",
                ],
                "Resource": "*",
            },
            {"Effect": "Deny", "Action": "s3:PutBucketPolicy", "Resource": "*"},
        ],
    }
    iam.put_user_policy(
        UserName="operator", PolicyName="bootstrap", PolicyDocument=json.dumps(policy)
    )
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    _moto_auth(endpoint, "0")
    try:
        yield key
    finally:
        _moto_auth(endpoint, "inf")


def test_a_real_denial_names_the_action_and_the_bucket(
    run, reference_copy, endpoint, enforced_user
):
    result = _bootstrap(run, reference_copy, endpoint, "production")
    assert result.exit_code == 1
    assert (
        "warning: cannot verify permissions (no permission for iam:SimulatePrincipalPolicy); proceeding"
        in result.stderr
    )
    assert "access denied: s3:PutBucketPolicy on levels-tfstate-production" in result.stderr
    assert "was created but is not fully configured" in result.stderr
    assert "Traceback" not in result.output
