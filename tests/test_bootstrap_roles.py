"""The CI's Terraform roles: `levels-tf bootstrap` against a moto server, and
the policy documents of levels_tf/ci_roles.py read as data.

moto neither simulates nor enforces these documents faithfully (it has no
iam:SimulatePrincipalPolicy and no kms:ViaService), so what a statement
denies is checked with the small evaluator below: IAM's rule that an
explicit Deny wins, Action/NotAction and Resource/NotResource with `*` and
`?` wildcards, and the condition operators the documents use.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest

from levels_tf import ci_roles, names
from levels_tf.aws import Aws
from levels_tf.validation import load_config

from .conftest import REFERENCE, ROOT
from .test_bootstrap import (
    ACCOUNT,
    BASE_TAGS,
    PROVIDER,
    _bootstrap,
    _bucket_names,
    _client,
    _without_github,
)
from .test_bootstrap import _simulation as simulation

REPO = "acme/levels"
ROLES = {
    "production": ("levels-production-tf-plan", "levels-production-tf-apply"),
    "nonprod": ("levels-nonprod-tf-plan", "levels-nonprod-tf-apply"),
}
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
POWER_USER = "arn:aws:iam::aws:policy/PowerUserAccess"
SUB = "token.actions.githubusercontent.com:sub"
AUD = "token.actions.githubusercontent.com:aud"


@pytest.fixture
def endpoint(aws_env, monkeypatch) -> str:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LEVELS_TF_AWS_ENDPOINT", raising=False)
    return aws_env


def _subjects(trust: dict) -> list[str]:
    (statement,) = trust["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": PROVIDER}
    condition = statement["Condition"]
    assert condition["StringEquals"][AUD] == "sts.amazonaws.com"
    (test,) = [t for t in condition if SUB in condition[t]]
    values = condition[test][SUB]
    return [values] if isinstance(values, str) else list(values)


def _role_names(endpoint: str) -> set[str]:
    return {r["RoleName"] for r in _client(endpoint, "iam").list_roles()["Roles"]}


def test_bootstrap_creates_the_plan_and_apply_roles_of_each_group(run, reference_copy, endpoint):
    first = _bootstrap(run, reference_copy, endpoint)
    assert first.exit_code == 0, first.output
    iam = _client(endpoint, "iam")
    subjects = {"production": [f"repo:{REPO}:environment:production"]}
    subjects["nonprod"] = [f"repo:{REPO}:ref:refs/heads/main"]
    for group, (plan, apply) in ROLES.items():
        assert f"role {plan}: created: ReadOnlyAccess, inline policy levels-tf, 5 tags" in (
            first.stdout
        )
        assert f"role {apply}: created: PowerUserAccess, inline policy levels-tf" in first.stdout
        plan_role = iam.get_role(RoleName=plan)["Role"]
        apply_role = iam.get_role(RoleName=apply)["Role"]
        assert sorted(_subjects(plan_role["AssumeRolePolicyDocument"])) == sorted(
            [f"repo:{REPO}:pull_request", *subjects[group]]
        )
        assert _subjects(apply_role["AssumeRolePolicyDocument"]) == subjects[group]
        for name, managed in ((plan, READ_ONLY), (apply, POWER_USER)):
            attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            assert [p["PolicyArn"] for p in attached] == [managed]
            assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["levels-tf"]
            tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}
            assert tags == {**BASE_TAGS, "VpcGroup": group}
        inline = iam.get_role_policy(RoleName=plan, PolicyName="levels-tf")["PolicyDocument"]
        state = f"arn:aws:s3:::levels-tfstate-{group}"
        assert _decide(inline, "s3:GetObject", f"{state}/{group}-shared/terraform.tfstate") == (
            "allow"
        )
        assert _decide(inline, "s3:PutObject", f"{state}/x/terraform.tfstate") == "none"
        assert _decide(inline, "s3:PutObject", f"{state}/x/terraform.tfstate.tflock") == "allow"

    second = _bootstrap(run, reference_copy, endpoint)
    assert second.exit_code == 0, second.output
    for plan, apply in ROLES.values():
        assert f"role {plan}: up to date" in second.stdout
        assert f"role {apply}: up to date" in second.stdout
    assert "updated" not in second.stdout


def test_a_drifted_role_is_put_back(run, reference_copy, endpoint):
    assert _bootstrap(run, reference_copy, endpoint, "nonprod").exit_code == 0
    iam = _client(endpoint, "iam")
    plan, apply = ROLES["nonprod"]
    wide = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.update_assume_role_policy(RoleName=apply, PolicyDocument=json.dumps(wide))
    iam.detach_role_policy(RoleName=plan, PolicyArn=READ_ONLY)
    iam.attach_role_policy(RoleName=plan, PolicyArn=POWER_USER)
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    iam.put_role_policy(
        RoleName=plan, PolicyName="levels-tf", PolicyDocument=json.dumps(everything)
    )

    result = _bootstrap(run, reference_copy, endpoint, "nonprod")
    assert result.exit_code == 0, result.output
    assert f"role {apply}: updated trust policy" in result.stdout
    assert f"role {plan}: updated inline policy, managed policies" in result.stdout
    trust = iam.get_role(RoleName=apply)["Role"]["AssumeRolePolicyDocument"]
    assert _subjects(trust) == [f"repo:{REPO}:ref:refs/heads/main"]
    attached = iam.list_attached_role_policies(RoleName=plan)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [READ_ONLY]
    assert "up to date" in _bootstrap(run, reference_copy, endpoint, "nonprod").stdout


def test_a_same_named_role_not_ours_is_refused_and_untouched(run, reference_copy, endpoint):
    iam = _client(endpoint, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}
        ],
    }
    name = ROLES["production"][1]
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 1
    assert f"role {name} exists but levels-tf bootstrap did not create it" in result.stderr
    assert "nothing was changed" in result.stderr and "Traceback" not in result.output
    assert _bucket_names(endpoint) == set()
    assert _role_names(endpoint) == {name}
    role = iam.get_role(RoleName=name)["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == trust["Statement"]
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == []


def test_groups_without_a_github_trust_get_no_roles(run, reference_copy, endpoint):
    """Validation requires a subject for every group once ci.github is set, so
    a group without one is a file without ci.github (IAM role ARNs only)."""
    reference_copy.write_text(_without_github(reference_copy.read_text()))
    result = _bootstrap(run, reference_copy, endpoint)
    assert result.exit_code == 0, result.output
    assert "role " not in result.stdout
    assert _role_names(endpoint) == set()
    assert _bucket_names(endpoint) == {f"levels-tfstate-{group}" for group in ROLES}


def test_the_permission_check_covers_the_role_actions(run, reference_copy, endpoint, monkeypatch):
    calls: list = []
    monkeypatch.setattr(Aws, "_simulation_results", simulation({"iam:CreateRole"}, calls))
    result = _bootstrap(run, reference_copy, endpoint, "production")
    assert result.exit_code == 1
    assert "iam:CreateRole; nothing was changed" in result.stderr
    arns = [f"arn:aws:iam::{ACCOUNT}:role/{name}" for name in ROLES["production"]]
    assert f"  iam:CreateRole on {', '.join(arns)}" in result.stderr.splitlines()
    checked = {action: resources for _, actions, resources in calls for action in actions}
    for action in ("iam:GetRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:TagRole"):
        assert checked[action] == arns, action
    assert _role_names(endpoint) == set() and _bucket_names(endpoint) == set()


# -- the documents as data ----------------------------------------------------


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _like(pattern: str, value: str, *, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def _condition_holds(condition: dict, context: dict[str, str]) -> bool:
    for test, block in condition.items():
        for key, values in block.items():
            value = context.get(key)
            wanted = _listed(values)
            if test == "StringEquals":
                ok = value in wanted
            elif test == "StringNotEquals":
                ok = value not in wanted
            elif test in ("StringLike", "ArnEquals", "ArnLike"):
                ok = value is not None and any(_like(w, value) for w in wanted)
            else:
                raise AssertionError(f"operator {test} is not in this evaluator")
            if not ok:
                return False
    return True


def _matches(statement: dict, action: str, resource: str, context: dict[str, str]) -> bool:
    if "Action" in statement:
        hit = any(_like(a, action, case=False) for a in _listed(statement["Action"]))
    else:
        hit = not any(_like(a, action, case=False) for a in _listed(statement["NotAction"]))
    if "Resource" in statement:
        hit = hit and any(_like(r, resource) for r in _listed(statement["Resource"]))
    else:
        hit = hit and not any(_like(r, resource) for r in _listed(statement["NotResource"]))
    return hit and _condition_holds(statement.get("Condition", {}), context)


def _decide(policy: dict, action: str, resource: str, **context: str) -> str:
    """'deny' (an explicit Deny matches), 'allow' (an Allow does), else 'none'."""
    effects = {s["Effect"] for s in policy["Statement"] if _matches(s, action, resource, context)}
    return "deny" if "Deny" in effects else "allow" if "Allow" in effects else "none"


@pytest.fixture(scope="module")
def documents() -> dict[str, ci_roles.RoleSpec]:
    infra = load_config(REFERENCE).infra
    specs = ci_roles.roles(infra, "production", "aws", ACCOUNT, "levels-tfstate-production", {})
    return {spec.name.rsplit("-", 1)[-1]: spec for spec in specs}


def test_the_plan_role_reads_state_and_no_data(documents):
    policy = documents["plan"].inline
    state = "arn:aws:s3:::levels-tfstate-production"
    assert (
        _decide(policy, "s3:GetObject", f"{state}/production-shared/terraform.tfstate") == "allow"
    )
    assert _decide(policy, "s3:ListBucket", state) == "allow"
    # ReadOnlyAccess allows these; the explicit Deny wins.
    assert _decide(policy, "s3:GetObject", "arn:aws:s3:::levels-production-uploads/a") == "deny"
    assert _decide(policy, "s3:GetObjectVersion", "arn:aws:s3:::other/a") == "deny"
    assert _decide(policy, "s3:GetObject", "arn:aws:s3:::levels-tfstate-nonprod/x") == "deny"
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234"
    ssm = {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}
    assert _decide(policy, "kms:Decrypt", key, **ssm) == "deny"
    assert _decide(policy, "kms:Decrypt", key) == "deny"
    assert (
        _decide(policy, "kms:Decrypt", key, **{"kms:ViaService": "s3.us-east-1.amazonaws.com"})
        == "none"
    )
    for action in (
        "secretsmanager:GetSecretValue",
        "sqs:ReceiveMessage",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:BatchGetItem",
        "lambda:InvokeFunction",
    ):
        assert _decide(policy, action, "*") == "deny", action
    assert documents["plan"].managed == (READ_ONLY,)


def test_the_apply_role_manages_project_iam_and_cannot_escalate(documents):
    policy = documents["apply"].inline
    iam = f"arn:aws:iam::{ACCOUNT}"
    assert _decide(policy, "iam:CreateRole", f"{iam}:role/levels-production-api") == "allow"
    assert _decide(policy, "iam:PutRolePolicy", f"{iam}:role/levels-production-api") == "allow"
    assert _decide(policy, "iam:PassRole", f"{iam}:role/levels-production-api") == "allow"
    assert _decide(policy, "iam:CreateRole", f"{iam}:role/someone-else") == "none"
    assert _decide(policy, "iam:CreateUser", f"{iam}:user/levels-x") == "none"
    for broad in ("AdministratorAccess", "IAMFullAccess", "PowerUserAccess"):
        arn = f"arn:aws:iam::aws:policy/{broad}"
        assert (
            _decide(
                policy, "iam:AttachRolePolicy", f"{iam}:role/levels-x", **{"iam:PolicyARN": arn}
            )
            == "deny"
        ), broad
    assert (
        _decide(
            policy,
            "iam:AttachRolePolicy",
            f"{iam}:role/levels-x",
            **{"iam:PolicyARN": f"{iam}:policy/levels-x"},
        )
        == "allow"
    )
    infra = load_config(REFERENCE).infra
    for name in names.tf_role_names(infra):  # every group's, not only its own
        for action in ("iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:DeleteRole"):
            assert _decide(policy, action, f"{iam}:role/{name}") == "deny", (name, action)
        assert _decide(policy, "iam:GetRole", f"{iam}:role/{name}") == "allow"
    assert _decide(policy, "iam:DeleteOpenIDConnectProvider", PROVIDER) == "deny"
    state = "arn:aws:s3:::levels-tfstate-production"
    assert _decide(policy, "s3:PutObject", f"{state}/production-shared/terraform.tfstate") == (
        "allow"
    )
    for action in ("s3:DeleteBucket", "s3:PutBucketPolicy"):
        assert _decide(policy, action, state) == "deny", action
    assert documents["apply"].managed == (POWER_USER,)


def test_the_apply_role_never_trusts_a_pull_request(documents):
    plan = json.dumps(documents["plan"].trust)
    apply = json.dumps(documents["apply"].trust)
    assert f"repo:{REPO}:pull_request" in plan and "pull_request" not in apply
    assert f"repo:{REPO}:environment:production" in apply


@pytest.mark.parametrize(
    "config", sorted((ROOT / "tests" / "configs").glob("*/infra.yaml")), ids=lambda p: p.parent.name
)
def test_role_names_fit_iam_and_are_unique(config: Path):
    infra = load_config(config).infra
    role_names = names.tf_role_names(infra)
    assert len(set(role_names)) == len(role_names) == 2 * len(infra.vpc_groups)
    assert all(len(name) <= names.ROLE_NAME_LIMIT for name in role_names)
