"""GitHub Actions OpenID Connect: the facts the CI role's trust is built from. Pure.

A workflow job asks GitHub for a token and trades it with STS
(AssumeRoleWithWebIdentity) for the CI role's credentials. IAM accepts the
token when the role trusts the account's OIDC identity provider for
`ISSUER_HOST` and the token's claims meet the trust's conditions:

- `aud`: the audience; `aws-actions/configure-aws-credentials` asks for
  `AUDIENCE`, which must also be a client id of the identity provider.
- `sub`: the subject, which says which repository and which part of it the job
  runs for. With GitHub's default subject template (GitHub Docs, "OpenID
  Connect reference", example subject claims,
  https://docs.github.com/en/actions/reference/security/oidc#example-subject-claims)
  it is `repo:OWNER/REPO:environment:NAME` for a job that references an
  environment, else `repo:OWNER/REPO:ref:refs/heads/BRANCH` or
  `repo:OWNER/REPO:ref:refs/tags/TAG` for the ref the workflow runs on.

The identity provider is one per issuer URL per AWS account (IAM answers
EntityAlreadyExists to a second), so no stack creates it: `levels-tf
bootstrap` does, once per account, and the stacks refer to its ARN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import GithubSubject

ISSUER_HOST = "token.actions.githubusercontent.com"
ISSUER_URL = f"https://{ISSUER_HOST}"
AUDIENCE = "sts.amazonaws.com"
AUDIENCE_KEY = f"{ISSUER_HOST}:aud"
SUBJECT_KEY = f"{ISSUER_HOST}:sub"
REPOSITORY_PLACEHOLDER = "<owner>/<repository>"
"""What `levels-tf init` writes for ci.github.repository: `<` and `>` are in
no GitHub owner or repository name, so it can never name someone's
repository, and validation (model.Github) refuses it until the user writes
theirs."""

# StringLike's wildcards (IAM User Guide, "IAM JSON policy elements: Condition
# operators", string condition operators).
WILDCARDS = ("*", "?")


def provider_arn(partition: str, account: str) -> str:
    """The ARN IAM gives the GitHub identity provider of `account`:
    arn:<partition>:iam::<account>:oidc-provider/token.actions.githubusercontent.com."""
    return f"arn:{partition}:iam::{account}:oidc-provider/{ISSUER_HOST}"


def subjects(repository: str, subject: GithubSubject) -> list[str]:
    """The `sub` claims `subject` admits for `repository` (OWNER/REPO), in
    GitHub's default format (see the module docstring), in the order written."""
    base = f"repo:{repository}"
    if subject.environment is not None:
        return [f"{base}:environment:{subject.environment}"]
    return [f"{base}:ref:refs/heads/{branch}" for branch in subject.branches] + [
        f"{base}:ref:refs/tags/{tag}" for tag in subject.tags
    ]


def has_wildcard(value: str) -> bool:
    """Whether `value` holds a character StringLike reads as a wildcard."""
    return any(character in value for character in WILDCARDS)
