"""What to do next about the failures people meet first, recognised in what
Terraform, its AWS provider or its S3 backend printed.

Terraform's own words stay in the message; a remedy adds one line after
them that names the cause and the next step, so the user is not left to
decode an SDK's credential chain or a backend's missing bucket. The
patterns are phrases those programs print (Terraform 1.10+, hashicorp/aws
5.x, the AWS SDK for Go v2 they are built on); `tests/test_remedies.py`
provokes each cause for real and checks that its remedy is the one found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Remedy:
    """One known cause: `patterns` (case-insensitive regular expressions, any
    of which marks it in Terraform's output), what it means (`cause`) and the
    next step (`action`)."""

    key: str
    patterns: tuple[str, ...]
    cause: str
    action: str

    def line(self) -> str:
        """The line shown under the failure: "next: <cause>: <action>"."""
        return f"next: {self.cause}: {self.action}"


# Order matters: the first match wins, so the more specific causes come first
# (an expired session also makes the SDK say it found no valid credentials).
REMEDIES: tuple[Remedy, ...] = (
    Remedy(
        "expired-credentials",
        (
            r"ExpiredToken",
            r"security token included in the request is expired",
            r"token has expired",
            r"refresh cached SSO token failed",
        ),
        "the AWS session has expired",
        "sign in again (for example with `aws sso login`) and run the command again",
    ),
    Remedy(
        "rejected-credentials",
        (
            r"InvalidClientTokenId",
            r"SignatureDoesNotMatch",
            r"security token included in the request is invalid",
        ),
        "AWS rejected the credentials",
        "check that AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, name a key "
        "of the account in infra.yaml",
    ),
    Remedy(
        "no-credentials",
        (
            r"No valid credential sources found",
            r"failed to refresh cached credentials",
            r"no EC2 IMDS role found",
            r"NoCredentialProviders",
        ),
        "no AWS credentials reached Terraform",
        "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and run the command "
        "again (`levels-tf rehearse` needs no account)",
    ),
    Remedy(
        "no-state-bucket",
        (r"S3 bucket \"?[^\"\s]*\"? does not exist", r"NoSuchBucket"),
        "the state bucket does not exist yet",
        "run `levels-tf bootstrap` once for this account and region, then run the command again",
    ),
    Remedy(
        "state-locked",
        (r"Error acquiring the state lock",),
        "another run holds the stack's state lock",
        "wait for it to end and run the command again; if it died without releasing the lock, "
        "run `terraform force-unlock LOCK_ID` in the stack's folder (the ID is in the lock info "
        "above)",
    ),
    Remedy(
        "access-denied",
        (r"AccessDenied", r"UnauthorizedOperation", r"is not authorized to perform"),
        "the credentials lack a permission",
        "use a role allowed to manage this platform (`levels-tf bootstrap` checks the "
        "permissions and names the missing ones)",
    ),
)

_COMPILED = tuple(
    (remedy, re.compile("|".join(f"(?:{p})" for p in remedy.patterns), re.IGNORECASE))
    for remedy in REMEDIES
)


def find(text: str) -> Remedy | None:
    """The first remedy (in REMEDIES order) one of whose patterns occurs in
    `text`, Terraform's output or message; None when none does."""
    for remedy, pattern in _COMPILED:
        if pattern.search(text):
            return remedy
    return None


def named(key: str) -> Remedy:
    """The remedy whose `key` is `key`; KeyError when there is none."""
    for remedy in REMEDIES:
        if remedy.key == key:
            return remedy
    raise KeyError(key)


def with_next_step(message: str) -> str:
    """`message`, followed on a line of its own by what to do next when a
    known cause is recognised in it; else `message` unchanged."""
    remedy = find(message)
    return f"{message}\n{remedy.line()}" if remedy else message
