"""The two IAM roles per VPC group that let GitHub Actions run Terraform. Pure.

`levels-tf bootstrap` creates them outside Terraform, as it creates the state
buckets and the OIDC provider: a role made by the shared stack could not be
what first applies that stack, and the CI role of templates/modules/ci-role
may only deploy bundles and parameters.

- `<project>-<group>-tf-plan` (names.tf_plan_role_name): plan, check and
  drift jobs. Trusted for pull request runs and the group's own subjects;
  the AWS managed policy ReadOnlyAccess, the state bucket's objects (locks
  only written), and explicit denials of the data reads a pull request's
  code must never make.
- `<project>-<group>-tf-apply` (names.tf_apply_role_name): apply and bake
  jobs. Trusted for the group's own subjects only, never for a pull request;
  the AWS managed policy PowerUserAccess, IAM limited to the project's own
  names, the state bucket, and explicit denials of the ways out of that
  limit that a policy can name.

GitHub's subject claims (GitHub Docs, "About security hardening with OpenID
Connect" / "OpenID Connect reference", example subject claims,
https://docs.github.com/en/actions/reference/security/oidc#example-subject-claims):
`repo:OWNER/REPO:pull_request` for a run triggered by a pull request (whatever
its branch), `repo:OWNER/REPO:environment:NAME` for a job naming an
environment, else `repo:OWNER/REPO:ref:refs/heads/BRANCH` or
`...:ref:refs/tags/TAG` (github_oidc.subjects).

Every document is a dict in IAM's JSON policy grammar (IAM User Guide, "IAM
JSON policy element reference"), lists where IAM allows one value or many.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import github_oidc, names

if TYPE_CHECKING:
    from .model import Infra

VERSION = "2012-10-17"
INLINE_POLICY = "levels-tf"
"""The name of the one inline policy bootstrap keeps on each role."""

# AWS managed job-function policies (IAM User Guide, "AWS managed policies
# for job functions", https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_job-functions.html);
# each ARN is arn:<partition>:iam::aws:policy/<name>.
READ_ONLY = "ReadOnlyAccess"
"""Read-only access to every service's metadata; includes s3:Get* and ssm:Get*,
which the plan role's Deny narrows."""
POWER_USER = "PowerUserAccess"
"""Everything but IAM, AWS Organizations and account management."""
ADMINISTRATOR = "AdministratorAccess"
IAM_FULL = "IAMFullAccess"
BROAD_POLICIES = (ADMINISTRATOR, IAM_FULL, POWER_USER)
"""Managed policies the apply role may never attach to a role."""

LOCK_SUFFIX = ".tflock"
"""The S3 backend's lock object with `use_lockfile = true` (the rendered
backends' setting, context.py): `<key>.tflock` beside the state object
(Terraform docs, "Backend Type: s3", State Locking)."""


def managed_policy_arn(partition: str, name: str) -> str:
    """arn:<partition>:iam::aws:policy/<name>, an AWS managed policy."""
    return f"arn:{partition}:iam::aws:policy/{name}"


@dataclass(frozen=True)
class RoleSpec:
    """One role as bootstrap converges it: name, trust policy, the inline
    policy INLINE_POLICY, the managed policy ARNs attached, tags."""

    name: str
    trust: dict[str, Any]
    inline: dict[str, Any]
    managed: tuple[str, ...]
    tags: dict[str, str]


def trust_policy(provider_arn: str, subjects: list[str]) -> dict[str, Any]:
    """Allow sts:AssumeRoleWithWebIdentity from OIDC provider `provider_arn`
    when the token's `aud` is sts.amazonaws.com and its `sub` is one of
    `subjects`: StringEquals, or StringLike when one holds a wildcard (IAM
    User Guide, "Condition operators": StringLike's `*` and `?`)."""
    test = "StringLike" if any(github_oidc.has_wildcard(s) for s in subjects) else "StringEquals"
    condition: dict[str, Any] = {"StringEquals": {github_oidc.AUDIENCE_KEY: github_oidc.AUDIENCE}}
    condition.setdefault(test, {})[github_oidc.SUBJECT_KEY] = list(subjects)
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "GithubActions",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": condition,
            }
        ],
    }


def pull_request_subject(repository: str) -> str:
    """repo:OWNER/REPO:pull_request, the `sub` of every pull request run (module docstring)."""
    return f"repo:{repository}:pull_request"


def state_statements(partition: str, bucket: str | None, *, write: bool) -> list[dict[str, Any]]:
    """What Terraform's S3 backend needs of the state bucket `bucket` (none
    when the backend is local): list it, read every object, and write and
    delete the lock files; with `write`, the state objects as well. The
    state is SSE-S3 (bootstrap.py's docstring), so no KMS grant is needed."""
    if bucket is None:
        return []
    arn = f"arn:{partition}:s3:::{bucket}"
    statements: list[dict[str, Any]] = [
        {"Sid": "StateList", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn},
        {"Sid": "StateRead", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{arn}/*"},
        {
            "Sid": "StateLock",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": f"{arn}/*{LOCK_SUFFIX}",
        },
    ]
    if write:
        statements.append(
            {
                "Sid": "StateWrite",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{arn}/*",
            }
        )
    return statements


def plan_policy(partition: str, region: str, bucket: str | None) -> dict[str, Any]:
    """The plan role's inline policy: the state statements (locks only) and
    an explicit Deny, which wins over ReadOnlyAccess, of the data reads a
    pull request's code must never make. A pull request run executes the
    pull request's own workflow, so whoever can push a branch holds this
    role; it may see how things are configured, not what they hold:

    - s3:GetObject* outside the state bucket (NotResource): bundles,
      assets, uploads, logs;
    - kms:Decrypt unless through S3 in `region` (kms:ViaService): no
      SecureString parameter, secret or encrypted object decrypts;
    - secretsmanager:GetSecretValue: the secrets themselves;
    - sqs:ReceiveMessage, dynamodb item reads, lambda:InvokeFunction: the
      contents of queues and tables, and running code with its role.
    """
    state = [f"arn:{partition}:s3:::{bucket}/*"] if bucket else []
    deny: list[dict[str, Any]] = [
        {
            "Sid": "DenyObjectReadsOutsideState",
            "Effect": "Deny",
            "Action": "s3:GetObject*",
            **({"NotResource": state} if state else {"Resource": "*"}),
        },
        {
            "Sid": "DenyDecryptOutsideS3",
            "Effect": "Deny",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
        },
        {
            "Sid": "DenyDataReads",
            "Effect": "Deny",
            "Action": [
                "secretsmanager:GetSecretValue",
                "sqs:ReceiveMessage",
                "dynamodb:GetItem",
                "dynamodb:BatchGetItem",
                "dynamodb:Query",
                "dynamodb:Scan",
                "lambda:InvokeFunction",
            ],
            "Resource": "*",
        },
    ]
    return {
        "Version": VERSION,
        "Statement": state_statements(partition, bucket, write=False) + deny,
    }


def apply_policy(
    partition: str,
    account: str,
    project: str,
    bucket: str | None,
    protected_roles: list[str],
    provider_arn: str,
) -> dict[str, Any]:
    """The apply role's inline policy. PowerUserAccess grants no IAM, so:

    - ProjectIam: roles, their inline and managed policies, instance
      profiles and tags, on names starting `<project>-` only (the stacks'
      roles, policies and instance profiles are all named so, names.py);
    - PassProjectRoles: iam:PassRole of those roles to the services;
    - ServiceLinkedRoles: iam:CreateServiceLinkedRole (AWS names those);
    - IamRead: iam:Get* and iam:List* everywhere, for the refresh;
    - the state statements, state objects included.

    And an explicit Deny of the ways out of that limit a policy can name:
    attaching AdministratorAccess, IAMFullAccess or PowerUserAccess to any
    role, user or group (iam:PolicyARN); anything but reading the tf roles
    of every group (`protected_roles`) and the OIDC provider `provider_arn`;
    deleting the state bucket or changing its policy. What remains (a
    project-named role with a broad inline policy) is in the README."""
    iam = f"arn:{partition}:iam::{account}"
    project_roles = f"{iam}:role/{project}-*"
    allow: list[dict[str, Any]] = [
        {
            "Sid": "ProjectIam",
            "Effect": "Allow",
            "Action": [
                "iam:*Role*",
                "iam:*RolePolicy*",
                "iam:*InstanceProfile*",
                "iam:*Policy*",
                "iam:Tag*",
                "iam:Untag*",
            ],
            "Resource": [
                project_roles,
                f"{iam}:policy/{project}-*",
                f"{iam}:instance-profile/{project}-*",
            ],
        },
        {
            "Sid": "PassProjectRoles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": project_roles,
        },
        {
            "Sid": "ServiceLinkedRoles",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": "*",
        },
        {"Sid": "IamRead", "Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"},
    ]
    deny: list[dict[str, Any]] = [
        {
            "Sid": "DenyBroadManagedPolicies",
            "Effect": "Deny",
            "Action": ["iam:AttachRolePolicy", "iam:AttachUserPolicy", "iam:AttachGroupPolicy"],
            "Resource": "*",
            "Condition": {
                "ArnEquals": {
                    "iam:PolicyARN": [managed_policy_arn(partition, n) for n in BROAD_POLICIES]
                }
            },
        },
        {
            "Sid": "DenyChangesToCiTrust",
            "Effect": "Deny",
            "NotAction": ["iam:Get*", "iam:List*"],
            "Resource": [f"{iam}:role/{name}" for name in protected_roles] + [provider_arn],
        },
    ]
    if bucket is not None:
        deny.append(
            {
                "Sid": "DenyStateBucketChanges",
                "Effect": "Deny",
                "Action": ["s3:DeleteBucket", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"],
                "Resource": f"arn:{partition}:s3:::{bucket}",
            }
        )
    return {
        "Version": VERSION,
        "Statement": allow + state_statements(partition, bucket, write=True) + deny,
    }


def roles(
    infra: Infra,
    group: str,
    partition: str,
    account: str,
    bucket: str | None,
    tags: dict[str, str],
) -> list[RoleSpec]:
    """The plan and apply roles of VPC group `group`; none when ci.github
    names no subject for it. `bucket` is its state bucket (None: local
    backend); the provider is ci.github.provider_arn or the account's own."""
    github = infra.ci.github
    subject = github.subjects.get(group) if github is not None else None
    if github is None or subject is None:
        return []
    provider = github.provider_arn or github_oidc.provider_arn(partition, account)
    own = github_oidc.subjects(github.repository, subject)
    plan_subjects = [pull_request_subject(github.repository)] + own
    return [
        RoleSpec(
            names.tf_plan_role_name(infra, group),
            trust_policy(provider, plan_subjects),
            plan_policy(partition, infra.region, bucket),
            (managed_policy_arn(partition, READ_ONLY),),
            tags,
        ),
        RoleSpec(
            names.tf_apply_role_name(infra, group),
            trust_policy(provider, own),
            apply_policy(
                partition, account, infra.project, bucket, names.tf_role_names(infra), provider
            ),
            (managed_policy_arn(partition, POWER_USER),),
            tags,
        ),
    ]


def normal(document: Any) -> Any:
    """`document` in one spelling, for comparing what IAM returns with what we
    send: a lone string where IAM allows a list becomes a one-item list,
    lists are sorted, keys are kept."""
    if isinstance(document, dict):
        return {key: normal(value) for key, value in sorted(document.items())}
    if isinstance(document, list):
        items = [normal(item) for item in document]
        return sorted(items, key=repr) if len(items) != 1 else items[0]
    return document
