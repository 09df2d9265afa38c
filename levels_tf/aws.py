"""The one place levels-tf talks to AWS.

Everything else asks this module for plain data (names, dicts, strings) and
gets LevelsError subclasses back instead of botocore exceptions, each with a
one-line message that names the IAM action and the resource involved.

An endpoint override (`--aws-endpoint URL`, or $LEVELS_TF_AWS_ENDPOINT) sends
every client to an emulator such as moto; S3 then uses path-style addressing,
which emulators on a bare host:port need.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from . import __version__
from .endpoint import check_endpoint
from .errors import LevelsError

# What botocore raises besides an AWS error answer (an emulator's HTML 500 page
# is a ResponseParserError, which is no BotoCoreError).
BOTO_ERRORS = (BotoCoreError, ResponseParserError)

ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "Forbidden",
    "403",
}
BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidToken",
    "AuthFailure",
}
NOT_FOUND = {
    "NoSuchTagSet",
    "NoSuchBucketPolicy",
    "NoSuchPublicAccessBlockConfiguration",
    "OwnershipControlsNotFoundError",
    "ServerSideEncryptionConfigurationNotFoundError",
    "ParameterNotFound",
}


class AwsError(LevelsError):
    """AWS refused or failed a request; the message names what and where."""

    exit_code = 1


class AccessDenied(AwsError):
    """AWS answered AccessDenied to one request."""

    def __init__(self, action: str, resource: str, detail: str = ""):
        self.action = action
        self.resource = resource
        tail = f" ({detail})" if detail else ""
        super().__init__(f"access denied: {action} on {resource}{tail}")


class MissingPermissions(AwsError):
    """The permission check found actions the caller may not perform."""

    def __init__(self, principal: str, missing: dict[str, list[str]], doing: str):
        self.principal = principal
        self.missing = missing
        actions = ", ".join(sorted(missing))
        super().__init__(
            f"{principal} lacks permissions to {doing}: {actions}; nothing was changed"
        )

    def lines(self) -> list[str]:
        rows = [str(self)]
        for action in sorted(self.missing):
            rows.append(f"  {action} on {', '.join(self.missing[action])}")
        return rows


class BucketTaken(AwsError):
    """A bucket name exists, but in an account other than the caller's."""


@dataclass(frozen=True)
class Identity:
    """Who the credentials are: account, ARN, and the IAM principal behind them."""

    account: str
    arn: str
    partition: str
    kind: str  # user, assumed-role, root, federated-user, other
    name: str = ""  # the user or role name, when there is one


@dataclass(frozen=True)
class PermissionCheck:
    """The result of simulating the caller's policies.

    `verified` is False when the simulation could not run (no permission to
    simulate, a principal that cannot be simulated, an emulator without it);
    then `reason` says why and `missing` is empty."""

    verified: bool
    principal: str = ""
    missing: dict[str, list[str]] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    size: int
    encryption: str | None
    kms_key: str | None
    version_id: str | None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _message(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Message") or error.get("Code") or exc).splitlines()[0]


class Aws:
    """Clients for one region (and optionally one endpoint), and the calls levels-tf makes."""

    def __init__(
        self, region: str, endpoint: str | None = None, credentials: tuple[str, str] | None = None
    ):
        """`credentials` (access key, secret key) replace the usual chain: an
        emulator gets placeholders, so these clients can never act on an account."""
        self.region = region
        self.endpoint = None if endpoint is None else check_endpoint(endpoint)
        keys = (
            {"aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]}
            if credentials
            else {}
        )
        self._session = boto3.session.Session(region_name=region, **keys)
        self._clients: dict[tuple[str, str, int], Any] = {}

    # -- plumbing -------------------------------------------------------------

    def client(self, service: str, *, region: str | None = None, attempts: int = 3) -> Any:
        region = region or self.region
        key = (service, region, attempts)
        if key not in self._clients:
            options: dict[str, Any] = {
                "region_name": region,
                "retries": {"mode": "standard", "max_attempts": attempts},
                "connect_timeout": 10,
                "read_timeout": 60,
                "user_agent_extra": f"levels-tf/{__version__}",
            }
            if self.endpoint and service == "s3":
                options["s3"] = {"addressing_style": "path"}
            kwargs: dict[str, Any] = {"config": Config(**options)}
            if self.endpoint:
                kwargs["endpoint_url"] = self.endpoint
            self._clients[key] = self._session.client(service, **kwargs)
        return self._clients[key]

    @contextlib.contextmanager
    def _calling(self, action: str, resource: str) -> Iterator[None]:
        """Turn whatever botocore raises into one AwsError line naming `action` on `resource`."""
        try:
            yield
        except (ClientError, *BOTO_ERRORS) as exc:
            raise self._error(exc, action, resource) from None

    def _error(self, exc: Exception, action: str, resource: str) -> AwsError:
        if isinstance(exc, ClientError):
            code = _code(exc)
            if code in BAD_CREDENTIALS:
                return AwsError(f"AWS rejected the credentials ({code}): {_message(exc)}")
            if code in ACCESS_DENIED or _status(exc) == 403:
                return AccessDenied(
                    action, resource, _message(exc) if code not in ("403", "Forbidden") else ""
                )
            return AwsError(f"{action} on {resource} failed: {code}: {_message(exc)}")
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return AwsError(
                "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        if isinstance(exc, BotoConnectionError):
            where = self.endpoint or "AWS"
            return AwsError(f"cannot reach {where} for {action}: {str(exc).splitlines()[0]}")
        if isinstance(exc, ResponseParserError):
            return AwsError(
                f"{action} on {resource} failed: the endpoint's answer is not AWS's format"
            )
        return AwsError(f"{action} on {resource} failed: {str(exc).splitlines()[0]}")

    # -- reads for checks ------------------------------------------------------------

    def _action(self, service: str, operation: str) -> str:
        """The IAM action of client method `operation`, e.g. ("elbv2", "describe_rules") -> elasticloadbalancing:DescribeRules."""
        meta = self.client(service).meta
        return f"{meta.service_model.signing_name}:{meta.method_to_api_mapping.get(operation, operation)}"

    def read(
        self, service: str, operation: str, *, missing: tuple[str, ...] = (), **request: Any
    ) -> dict[str, Any] | None:
        """The answer of client method `operation` of `service` to `request`;
        None when AWS answers one of the error codes in `missing` (what the
        request names does not exist). Any other failure is an AwsError."""
        resource = next((str(value) for value in request.values() if isinstance(value, str)), "*")
        try:
            return getattr(self.client(service), operation)(**request)
        except ClientError as exc:
            if _code(exc) in missing:
                return None
            raise self._error(exc, self._action(service, operation), resource) from None
        except BOTO_ERRORS as exc:
            raise self._error(exc, self._action(service, operation), resource) from None

    def read_all(self, service: str, operation: str, key: str, **request: Any) -> list[Any]:
        """The items under `key` of every page of paginated `operation`; AwsError on any failure."""
        items: list[Any] = []
        with self._calling(self._action(service, operation), "*"):
            for page in self.client(service).get_paginator(operation).paginate(**request):
                items.extend(page.get(key) or [])
        return items

    # -- images ---------------------------------------------------------------------

    def root_device_name(self, ami: str) -> str:
        """The device name of `ami`'s root volume, e.g. "/dev/xvda" or "/dev/sda1".

        EC2 DescribeImages reports it as RootDeviceName. Amazon Linux and
        Debian images boot from /dev/xvda, Ubuntu's from /dev/sda1; an image
        made with CreateImage keeps the device names of the instance it was
        made from, so a baked AMI has its source AMI's root device. AwsError
        when the image is unknown or cannot be described."""
        with self._calling("ec2:DescribeImages", ami):
            found = self.client("ec2").describe_images(ImageIds=[ami]).get("Images", [])
        name = found[0].get("RootDeviceName") if found else None
        if not name:
            raise AwsError(
                f"ec2:DescribeImages on {ami} failed: no such image, or it names no root device"
            )
        return str(name)

    def find_images(self, owner: str, name: str) -> list[str]:
        """The ids of the available AMIs owned by `owner` (an account id or an
        alias such as "amazon") whose name matches the DescribeImages filter `name`."""
        with self._calling("ec2:DescribeImages", name):
            found = self.client("ec2").describe_images(
                Owners=[owner],
                Filters=[
                    {"Name": "name", "Values": [name]},
                    {"Name": "state", "Values": ["available"]},
                ],
            )
        return sorted(image["ImageId"] for image in found.get("Images", []))

    # -- DNS ------------------------------------------------------------------------

    def create_hosted_zone(self, domain: str) -> str:
        """Create a public hosted zone for `domain`; its id (without "/hostedzone/")."""
        with self._calling("route53:CreateHostedZone", domain):
            answer = self.client("route53").create_hosted_zone(
                Name=domain, CallerReference=f"levels-tf-{domain}"
            )
        return str(answer["HostedZone"]["Id"]).rsplit("/", 1)[-1]

    # -- who am I, and what may I do ---------------------------------------------

    def identity(self) -> Identity:
        with self._calling("sts:GetCallerIdentity", "*"):
            answer = self.client("sts").get_caller_identity()
        arn = answer["Arn"]
        parts = arn.split(":", 5)
        partition = parts[1] if len(parts) == 6 else "aws"
        resource = parts[5] if len(parts) == 6 else ""
        kind, _, rest = resource.partition("/")
        if resource == "root":
            return Identity(answer["Account"], arn, partition, "root")
        if kind == "user":
            return Identity(answer["Account"], arn, partition, "user", rest.rsplit("/", 1)[-1])
        if kind == "assumed-role":
            return Identity(
                answer["Account"], arn, partition, "assumed-role", rest.split("/", 1)[0]
            )
        return Identity(answer["Account"], arn, partition, kind or "other")

    def _principal_arn(self, who: Identity) -> str:
        """The IAM ARN to simulate: the user's own ARN, or the role's (with its path, when we may read it)."""
        if who.kind == "user":
            return f"arn:{who.partition}:iam::{who.account}:{who.arn.split(':', 5)[5]}"
        # An assumed-role ARN drops the role's path (SSO roles live under
        # /aws-reserved/...), so ask IAM for the real one when allowed.
        try:
            with self._calling("iam:GetRole", who.name):
                return self.client("iam", attempts=1).get_role(RoleName=who.name)["Role"]["Arn"]
        except AwsError:
            return f"arn:{who.partition}:iam::{who.account}:role/{who.name}"

    def _simulation_results(
        self,
        principal: str,
        actions: list[str],
        resources: list[str] | None,
        context: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """The raw EvaluationResults of iam:SimulatePrincipalPolicy (every page)."""
        iam = self.client("iam", attempts=1)
        request: dict[str, Any] = {
            "PolicySourceArn": principal,
            "ActionNames": actions,
            "ContextEntries": context,
        }
        if resources:
            request["ResourceArns"] = resources
        results: list[dict[str, Any]] = []
        while True:
            page = iam.simulate_principal_policy(**request)
            results.extend(page.get("EvaluationResults", []))
            if not page.get("IsTruncated"):
                return results
            request["Marker"] = page["Marker"]

    def check_permissions(
        self, who: Identity, checks: list[tuple[list[str], list[str] | None]]
    ) -> PermissionCheck:
        """Simulate the caller's IAM policies for each (actions, resources) pair.

        The root user may do everything; federated users and other sessions
        cannot be simulated. Any failure of the simulation itself (AccessDenied
        above all) means the check could not run, not that permissions lack."""
        if who.kind == "root":
            return PermissionCheck(True, who.arn)
        if who.kind not in ("user", "assumed-role"):
            return PermissionCheck(
                False, who.arn, reason=f"a {who.kind} session cannot be simulated"
            )
        principal = self._principal_arn(who)
        context = [
            {
                "ContextKeyName": "aws:SecureTransport",
                "ContextKeyValues": ["true"],
                "ContextKeyType": "boolean",
            },
            {
                "ContextKeyName": "aws:RequestedRegion",
                "ContextKeyValues": [self.region],
                "ContextKeyType": "string",
            },
        ]
        missing: dict[str, list[str]] = {}
        for actions, resources in checks:
            try:
                with self._calling("iam:SimulatePrincipalPolicy", principal):
                    results = self._simulation_results(principal, actions, resources, context)
            except AccessDenied:
                return PermissionCheck(
                    False, principal, reason="no permission for iam:SimulatePrincipalPolicy"
                )
            except AwsError as exc:
                return PermissionCheck(False, principal, reason=str(exc))
            for action, resource in _denials(results):
                missing.setdefault(action, [])
                if resource not in missing[action]:
                    missing[action].append(resource)
        return PermissionCheck(True, principal, missing)

    # -- S3 buckets ------------------------------------------------------------

    def owned_buckets(self, prefix: str) -> set[str]:
        """Names of the caller's own buckets (any region) that start with `prefix`."""
        s3 = self.client("s3")
        names: set[str] = set()
        request: dict[str, Any] = {"Prefix": prefix, "MaxBuckets": 1000}
        with self._calling("s3:ListAllMyBuckets", "*"):
            while True:
                page = s3.list_buckets(**request)
                names.update(b["Name"] for b in page.get("Buckets", []))
                token = page.get("ContinuationToken")
                if not token:
                    return names
                request["ContinuationToken"] = token

    def bucket_region(self, name: str, owner: str | None = None) -> str | None:
        """The region of bucket `name`; None when no such bucket exists anywhere.

        A bucket that exists but answers 403 (another account's, or a policy
        that shuts the caller out) raises BucketTaken."""
        request: dict[str, Any] = {"Bucket": name}
        if owner:
            request["ExpectedBucketOwner"] = owner
        try:
            answer = self.client("s3").head_bucket(**request)
        except ClientError as exc:
            status, code = _status(exc), _code(exc)
            if status == 404 or code in ("404", "NoSuchBucket", "NotFound"):
                return None
            if status in (301, 400) and _region_header(exc):
                return _region_header(exc)
            if status == 403 and code not in BAD_CREDENTIALS:
                raise BucketTaken(
                    f"bucket {name} exists but answers 403 to this account: another AWS account owns it, "
                    "or a policy (yours or the bucket's) denies you s3:ListBucket on it"
                ) from None
            raise self._error(exc, "s3:ListBucket", name) from None
        except BOTO_ERRORS as exc:
            raise self._error(exc, "s3:ListBucket", name) from None
        return answer.get("BucketRegion") or answer.get("ResponseMetadata", {}).get(
            "HTTPHeaders", {}
        ).get("x-amz-bucket-region")

    def create_bucket(self, name: str, tags: dict[str, str]) -> bool:
        """Create `name` in this region, owner-enforced and tagged; False when it already was ours."""
        request: dict[str, Any] = {"Bucket": name, "ObjectOwnership": "BucketOwnerEnforced"}
        configuration: dict[str, Any] = {"Tags": _tag_set(tags)}
        if self.region != "us-east-1":  # us-east-1 refuses a LocationConstraint naming itself
            configuration["LocationConstraint"] = self.region
        request["CreateBucketConfiguration"] = configuration
        try:
            self.client("s3").create_bucket(**request)
        except ClientError as exc:
            code = _code(exc)
            if code == "BucketAlreadyOwnedByYou":
                return False
            if code == "BucketAlreadyExists":
                raise BucketTaken(f"bucket name {name} is taken by another AWS account") from None
            raise self._error(exc, "s3:CreateBucket", name) from None
        except BOTO_ERRORS as exc:
            raise self._error(exc, "s3:CreateBucket", name) from None
        # A new bucket can take a moment to answer everywhere; the settings come next.
        with self._calling("s3:ListBucket", name):
            self.client("s3").get_waiter("bucket_exists").wait(
                Bucket=name, WaiterConfig={"Delay": 2, "MaxAttempts": 15}
            )
        return True

    def _get(self, action: str, name: str, method: str, **request: Any) -> dict[str, Any] | None:
        """A bucket read; None when the setting is absent (the NoSuch... answers)."""
        try:
            return getattr(self.client("s3"), method)(Bucket=name, **request)
        except ClientError as exc:
            if _code(exc) in NOT_FOUND:
                return None
            raise self._error(exc, action, name) from None
        except BOTO_ERRORS as exc:
            raise self._error(exc, action, name) from None

    def _put(self, action: str, name: str, method: str, **request: Any) -> None:
        with self._calling(action, name):
            getattr(self.client("s3"), method)(Bucket=name, **request)

    def versioning(self, name: str, owner: str) -> str | None:
        answer = self._get(
            "s3:GetBucketVersioning", name, "get_bucket_versioning", ExpectedBucketOwner=owner
        )
        return (answer or {}).get("Status")

    def enable_versioning(self, name: str, owner: str) -> None:
        self._put(
            "s3:PutBucketVersioning",
            name,
            "put_bucket_versioning",
            VersioningConfiguration={"Status": "Enabled"},
            ExpectedBucketOwner=owner,
        )

    def default_encryption(self, name: str, owner: str) -> str | None:
        """The SSE algorithm of the bucket's default encryption, or None."""
        answer = self._get(
            "s3:GetEncryptionConfiguration",
            name,
            "get_bucket_encryption",
            ExpectedBucketOwner=owner,
        )
        rules = (answer or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        for rule in rules:
            algorithm = rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
            if algorithm:
                return algorithm
        return None

    def set_sse_s3(self, name: str, owner: str) -> None:
        self._put(
            "s3:PutEncryptionConfiguration",
            name,
            "put_bucket_encryption",
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            ExpectedBucketOwner=owner,
        )

    def public_access_block(self, name: str, owner: str) -> dict[str, bool]:
        answer = self._get(
            "s3:GetBucketPublicAccessBlock",
            name,
            "get_public_access_block",
            ExpectedBucketOwner=owner,
        )
        return dict((answer or {}).get("PublicAccessBlockConfiguration", {}))

    def block_public_access(self, name: str, owner: str) -> None:
        self._put(
            "s3:PutBucketPublicAccessBlock",
            name,
            "put_public_access_block",
            PublicAccessBlockConfiguration=dict.fromkeys(PUBLIC_ACCESS_BLOCK, True),
            ExpectedBucketOwner=owner,
        )

    def ownership(self, name: str, owner: str) -> str | None:
        answer = self._get(
            "s3:GetBucketOwnershipControls",
            name,
            "get_bucket_ownership_controls",
            ExpectedBucketOwner=owner,
        )
        rules = (answer or {}).get("OwnershipControls", {}).get("Rules", [])
        return rules[0].get("ObjectOwnership") if rules else None

    def enforce_owner(self, name: str, owner: str) -> None:
        self._put(
            "s3:PutBucketOwnershipControls",
            name,
            "put_bucket_ownership_controls",
            OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            ExpectedBucketOwner=owner,
        )

    def policy(self, name: str, owner: str) -> dict[str, Any] | None:
        answer = self._get(
            "s3:GetBucketPolicy", name, "get_bucket_policy", ExpectedBucketOwner=owner
        )
        return json.loads(answer["Policy"]) if answer and answer.get("Policy") else None

    def set_policy(self, name: str, owner: str, policy: dict[str, Any]) -> None:
        self._put(
            "s3:PutBucketPolicy",
            name,
            "put_bucket_policy",
            Policy=json.dumps(policy),
            ExpectedBucketOwner=owner,
        )

    def tags(self, name: str, owner: str) -> dict[str, str]:
        answer = self._get(
            "s3:GetBucketTagging", name, "get_bucket_tagging", ExpectedBucketOwner=owner
        )
        return {tag["Key"]: tag["Value"] for tag in (answer or {}).get("TagSet", [])}

    def set_tags(self, name: str, owner: str, tags: dict[str, str]) -> None:
        self._put(
            "s3:PutBucketTagging",
            name,
            "put_bucket_tagging",
            Tagging={"TagSet": _tag_set(tags)},
            ExpectedBucketOwner=owner,
        )

    # -- IAM OpenID Connect identity providers -------------------------------------

    def openid_connect_providers(self) -> list[str]:
        """The ARNs of the account's IAM OIDC identity providers (IAM returns them
        all in one answer: ListOpenIDConnectProviders has no paging)."""
        with self._calling("iam:ListOpenIDConnectProviders", "*"):
            answer = self.client("iam").list_open_id_connect_providers()
        return sorted(str(p["Arn"]) for p in answer.get("OpenIDConnectProviderList", []))

    def openid_connect_client_ids(self, arn: str) -> list[str]:
        """The client ids (audiences) OIDC provider `arn` accepts."""
        with self._calling("iam:GetOpenIDConnectProvider", arn):
            answer = self.client("iam").get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        return [str(client) for client in answer.get("ClientIDList", [])]

    def create_openid_connect_provider(
        self, url: str, client_ids: list[str], tags: dict[str, str]
    ) -> str:
        """Create the OIDC provider for issuer `url` (https://...), tagged; its ARN.

        No ThumbprintList: IAM verifies the TLS certificate of GitHub's and other
        well-known issuers through its own library of trusted root CAs (IAM API
        Reference, CreateOpenIDConnectProvider,
        https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateOpenIDConnectProvider.html),
        and the API takes none since botocore 1.34.83 (its changelog: "the
        ThumbprintList parameter is no longer required")."""
        with self._calling("iam:CreateOpenIDConnectProvider", url):
            answer = self.client("iam").create_open_id_connect_provider(
                Url=url, ClientIDList=client_ids, Tags=_tag_set(tags)
            )
        return str(answer["OpenIDConnectProviderArn"])

    # -- IAM roles -----------------------------------------------------------------

    def get_role(self, name: str) -> dict[str, Any] | None:
        """Role `name` as IAM GetRole describes it (Arn, AssumeRolePolicyDocument
        as a dict, Tags), or None when there is no such role."""
        answer = self.read("iam", "get_role", missing=("NoSuchEntity",), RoleName=name)
        if answer is None:
            return None
        role = dict(answer["Role"])
        document = role.get("AssumeRolePolicyDocument")
        if isinstance(document, str):  # botocore decodes it; an emulator may not
            role["AssumeRolePolicyDocument"] = json.loads(urllib.parse.unquote(document))
        return role

    def create_role(
        self, name: str, trust: dict[str, Any], tags: dict[str, str], description: str
    ) -> str:
        """Create role `name` trusting `trust`, tagged; its ARN."""
        with self._calling("iam:CreateRole", name):
            answer = self.client("iam").create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=description,
                Tags=_tag_set(tags),
            )
        return str(answer["Role"]["Arn"])

    def update_assume_role_policy(self, name: str, trust: dict[str, Any]) -> None:
        with self._calling("iam:UpdateAssumeRolePolicy", name):
            self.client("iam").update_assume_role_policy(
                RoleName=name, PolicyDocument=json.dumps(trust)
            )

    def role_policy(self, name: str, policy: str) -> dict[str, Any] | None:
        """Inline policy `policy` of role `name` as a dict, or None when it has none so named."""
        answer = self.read(
            "iam", "get_role_policy", missing=("NoSuchEntity",), RoleName=name, PolicyName=policy
        )
        if answer is None:
            return None
        document = answer["PolicyDocument"]
        return json.loads(urllib.parse.unquote(document)) if isinstance(document, str) else document

    def put_role_policy(self, name: str, policy: str, document: dict[str, Any]) -> None:
        with self._calling("iam:PutRolePolicy", name):
            self.client("iam").put_role_policy(
                RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(document)
            )

    def list_attached_role_policies(self, name: str) -> list[str]:
        """The ARNs of the managed policies attached to role `name`."""
        items = self.read_all(
            "iam", "list_attached_role_policies", "AttachedPolicies", RoleName=name
        )
        return sorted(str(item["PolicyArn"]) for item in items)

    def attach_role_policy(self, name: str, arn: str) -> None:
        with self._calling("iam:AttachRolePolicy", name):
            self.client("iam").attach_role_policy(RoleName=name, PolicyArn=arn)

    def detach_role_policy(self, name: str, arn: str) -> None:
        with self._calling("iam:DetachRolePolicy", name):
            self.client("iam").detach_role_policy(RoleName=name, PolicyArn=arn)

    def tag_role(self, name: str, tags: dict[str, str]) -> None:
        with self._calling("iam:TagRole", name):
            self.client("iam").tag_role(RoleName=name, Tags=_tag_set(tags))

    # -- S3 objects --------------------------------------------------------------

    def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        owner: str,
        content_type: str,
        metadata: dict[str, str],
        sha256: bytes,
    ) -> Upload | None:
        """One PUT of `data` unless `key` exists already (then None: S3's
        conditional write, If-None-Match), with its SHA-256 for S3 to verify.
        No SSE headers: the bucket's default encryption (its KMS key)
        applies, and the answer says which it was. (An explicit `aws:kms`
        without a key id would mean the AWS managed key `aws/s3` instead.)"""
        try:
            answer = self.client("s3").put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata=metadata,
                ChecksumSHA256=base64.b64encode(sha256).decode("ascii"),
                ExpectedBucketOwner=owner,
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if _code(exc) == "PreconditionFailed" or _status(exc) == 412:
                return None
            if _code(exc) == "NoSuchBucket":
                raise AwsError(
                    f"bucket {bucket} does not exist: apply the stack that creates it first "
                    "(`levels-tf plan`, then `levels-tf apply`)"
                ) from None
            raise self._error(exc, "s3:PutObject", f"{bucket}/{key}") from None
        except BOTO_ERRORS as exc:
            raise self._error(exc, "s3:PutObject", f"{bucket}/{key}") from None
        return Upload(
            bucket=bucket,
            key=key,
            size=len(data),
            encryption=answer.get("ServerSideEncryption"),
            kms_key=answer.get("SSEKMSKeyId"),
            version_id=answer.get("VersionId"),
        )

    def object_versions(self, bucket: str) -> Iterator[dict[str, str]]:
        """Every object version and delete marker of `bucket`, as {"Key", "VersionId"}
        (an unversioned bucket's objects have VersionId "null"); nothing when
        the bucket does not exist."""
        s3 = self.client("s3")
        request: dict[str, Any] = {"Bucket": bucket}
        while True:
            try:
                page = s3.list_object_versions(**request)
            except ClientError as exc:
                if _code(exc) == "NoSuchBucket":
                    return
                raise self._error(exc, "s3:ListBucketVersions", bucket) from None
            except BOTO_ERRORS as exc:
                raise self._error(exc, "s3:ListBucketVersions", bucket) from None
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                yield {"Key": item["Key"], "VersionId": item.get("VersionId") or "null"}
            if not page.get("IsTruncated"):
                return
            request["KeyMarker"] = page.get("NextKeyMarker")
            request["VersionIdMarker"] = page.get("NextVersionIdMarker")

    def object_text(self, bucket: str, key: str) -> str | None:
        """The content of object `key` in `bucket` as UTF-8 text; None when there
        is no such object. Any other failure is an AwsError (s3:GetObject)."""
        try:
            answer = self.client("s3").get_object(Bucket=bucket, Key=key)
            return answer["Body"].read().decode("utf-8", errors="replace")
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._error(exc, "s3:GetObject", f"{bucket}/{key}") from None
        except BOTO_ERRORS as exc:
            raise self._error(exc, "s3:GetObject", f"{bucket}/{key}") from None

    def is_empty(self, bucket: str) -> bool:
        """Whether `bucket` holds no object version and no delete marker (or does not exist)."""
        return next(self.object_versions(bucket), None) is None

    def empty_bucket(self, bucket: str) -> int:
        """Delete every object version and delete marker of `bucket`; how many.

        DeleteObjects takes at most 1,000 keys a request (Amazon S3 API
        reference, DeleteObjects); a key it could not delete is an error."""
        # Each round lists from the start again: a listing's markers may name
        # versions the previous round deleted.
        deleted = 0
        while True:
            batch = list(itertools.islice(self.object_versions(bucket), 1000))
            if not batch:
                return deleted
            deleted += self._delete_versions(bucket, batch)

    def _delete_versions(self, bucket: str, batch: list[dict[str, str]]) -> int:
        """One DeleteObjects of up to 1,000 versions; a key it could not delete is an error."""
        with self._calling("s3:DeleteObjectVersion", bucket):
            answer = self.client("s3").delete_objects(
                Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
            )
        errors = answer.get("Errors") or []
        if errors:
            first = errors[0]
            raise AwsError(
                f"s3:DeleteObjectVersion on {bucket}/{first.get('Key')} failed: {first.get('Code')}: {first.get('Message')}"
            )
        return len(batch)

    # -- SSM Parameter Store -------------------------------------------------------

    def get_parameter(self, name: str) -> str | None:
        """The value of String parameter `name`; None when it does not exist."""
        try:
            return self.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
        except ClientError as exc:
            if _code(exc) == "ParameterNotFound":
                return None
            raise self._error(exc, "ssm:GetParameter", name) from None
        except BOTO_ERRORS as exc:
            raise self._error(exc, "ssm:GetParameter", name) from None

    def put_parameter(self, name: str, value: str, description: str) -> int:
        """Write String parameter `name` (overwriting); its new version number."""
        with self._calling("ssm:PutParameter", name):
            answer = self.client("ssm").put_parameter(
                Name=name, Value=value, Type="String", Overwrite=True, Description=description
            )
        return int(answer.get("Version", 0))

    # -- EC2: what operator access reads ----------------------------------------------

    def instances_named(self, names: list[str]) -> list[dict[str, Any]]:
        """The running EC2 instances whose Name tag is one of `names`, as
        DescribeInstances gives them (Instances items: InstanceId,
        PrivateIpAddress, LaunchTime, SecurityGroups, Tags, ...), by launch
        time, then id. [] for no names. AwsError (ec2:DescribeInstances) on failure."""
        if not names:
            return []
        reservations = self.read_all(
            "ec2",
            "describe_instances",
            "Reservations",
            Filters=[
                {"Name": "tag:Name", "Values": sorted(set(names))},
                {"Name": "instance-state-name", "Values": ["running"]},
            ],
        )
        found = [item for reservation in reservations for item in reservation.get("Instances", [])]
        return sorted(found, key=lambda item: (str(item.get("LaunchTime", "")), item["InstanceId"]))

    def security_groups(self, ids: list[str]) -> list[dict[str, Any]]:
        """The security groups `ids` as DescribeSecurityGroups gives them
        (GroupId, GroupName, IpPermissions: the ingress rules). [] for no ids;
        AwsError (ec2:DescribeSecurityGroups) on failure, a group that does not
        exist included (InvalidGroup.NotFound)."""
        if not ids:
            return []
        return self.read_all(
            "ec2", "describe_security_groups", "SecurityGroups", GroupIds=sorted(set(ids))
        )

    # -- Aurora (RDS) -----------------------------------------------------------------
    # Request and answer shapes: Amazon RDS API Reference,
    # https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/

    def db_cluster(self, cluster: str) -> dict[str, Any] | None:
        """DescribeDBClusters' record of `cluster` (DBClusterMembers, EngineMode,
        EngineVersion, Status, DBSubnetGroup: the subnet group's name,
        VpcSecurityGroups: [{"VpcSecurityGroupId", "Status"}], KmsKeyId,
        DBClusterParameterGroup, DeletionProtection, TagList,
        EarliestRestorableTime and LatestRestorableTime: datetimes with a zone,
        Endpoint, ReaderEndpoint, Port, ...), or None when there is no such cluster."""
        answer = self.read(
            "rds",
            "describe_db_clusters",
            missing=("DBClusterNotFoundFault",),
            DBClusterIdentifier=cluster,
        )
        clusters = (answer or {}).get("DBClusters", [])
        return clusters[0] if clusters else None

    def db_instances(self, cluster: str) -> list[dict[str, Any]]:
        """DescribeDBInstances' records of every instance in `cluster`
        (DBInstanceIdentifier, DBInstanceClass, DBInstanceStatus, PromotionTier,
        AvailabilityZone, TagList, ...)."""
        return self.read_all(
            "rds",
            "describe_db_instances",
            "DBInstances",
            Filters=[{"Name": "db-cluster-id", "Values": [cluster]}],
        )

    def db_instance(self, instance: str) -> dict[str, Any] | None:
        """DescribeDBInstances' record of `instance`, or None when it does not exist."""
        answer = self.read(
            "rds",
            "describe_db_instances",
            missing=("DBInstanceNotFound", "DBInstanceNotFoundFault"),
            DBInstanceIdentifier=instance,
        )
        found = (answer or {}).get("DBInstances", [])
        return found[0] if found else None

    def db_instance_classes(self, engine: str, version: str) -> set[str]:
        """The instance classes RDS offers for `engine` at `version` in this region
        (DescribeOrderableDBInstanceOptions); empty when it lists none."""
        options = self.read_all(
            "rds",
            "describe_orderable_db_instance_options",
            "OrderableDBInstanceOptions",
            Engine=engine,
            EngineVersion=version,
        )
        return {str(option["DBInstanceClass"]) for option in options}

    def create_db_reader(
        self,
        cluster: str,
        instance: str,
        *,
        engine: str,
        instance_class: str,
        zone: str | None,
        promotion_tier: int,
        tags: dict[str, str],
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Add `instance`, of `instance_class`, to `cluster` as a reader (CreateDBInstance
        with DBClusterIdentifier); returns once RDS accepted it, not once it is available.
        `settings`: further CreateDBInstance parameters (aurora.reader_settings)."""
        request: dict[str, Any] = {
            **(settings or {}),
            "DBInstanceIdentifier": instance,
            "DBClusterIdentifier": cluster,
            "Engine": engine,
            "DBInstanceClass": instance_class,
            "PromotionTier": promotion_tier,
            "PubliclyAccessible": False,
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        }
        if zone:
            request["AvailabilityZone"] = zone
        with self._calling("rds:CreateDBInstance", instance):
            self.client("rds").create_db_instance(**request)

    def failover_db_cluster(self, cluster: str, target: str | None) -> None:
        """Make `target` (a reader of `cluster`; None: the reader Aurora picks by
        promotion tier) the writer (FailoverDBCluster). Returns once RDS accepted it."""
        request = {"DBClusterIdentifier": cluster}
        if target:
            request["TargetDBInstanceIdentifier"] = target
        with self._calling("rds:FailoverDBCluster", cluster):
            self.client("rds").failover_db_cluster(**request)

    def modify_db_instance_class(self, instance: str, instance_class: str) -> None:
        """Change `instance` to `instance_class` now, not in the maintenance window
        (ModifyDBInstance with ApplyImmediately)."""
        with self._calling("rds:ModifyDBInstance", instance):
            self.client("rds").modify_db_instance(
                DBInstanceIdentifier=instance,
                DBInstanceClass=instance_class,
                ApplyImmediately=True,
            )

    def delete_db_instance(self, instance: str) -> None:
        """Delete `instance`, a cluster member (DeleteDBInstance; a cluster member
        takes no final snapshot, the cluster's backups hold its data)."""
        with self._calling("rds:DeleteDBInstance", instance):
            self.client("rds").delete_db_instance(DBInstanceIdentifier=instance)

    def restore_db_cluster(
        self,
        cluster: str,
        source: str,
        *,
        to: datetime | None,
        subnet_group: str,
        security_groups: list[str],
        kms_key: str | None,
        parameter_group: str | None,
        serverless_v2: dict[str, Any] | None,
        iam_authentication: bool,
        tags: dict[str, str],
    ) -> None:
        """Restore `source` as it was at `to` (None: its latest restorable time)
        into a new cluster `cluster` (RestoreDBClusterToPointInTime, RestoreType
        full-copy), in DB subnet group `subnet_group` with VPC security groups
        `security_groups`, encrypted with `kms_key`, with cluster parameter group
        `parameter_group` (None: the engine's default), Serverless v2 capacity
        `serverless_v2` ({"MinCapacity", "MaxCapacity"}, as DescribeDBClusters
        gives it; None: none), IAM database authentication on when
        `iam_authentication`, tagged `tags` only, without deletion protection.

        The new cluster has no instances. Returns once RDS accepted the request,
        not once the cluster is available. AwsError (rds:RestoreDBClusterToPointInTime)
        on failure: DBClusterAlreadyExistsFault for a name in use,
        InvalidRestoreFault for a time outside the source's restorable window,
        DBClusterNotFoundFault for an unknown source."""
        request: dict[str, Any] = {
            "DBClusterIdentifier": cluster,
            "SourceDBClusterIdentifier": source,
            "RestoreType": "full-copy",
            "DBSubnetGroupName": subnet_group,
            "VpcSecurityGroupIds": security_groups,
            "DeletionProtection": False,
            "EnableIAMDatabaseAuthentication": iam_authentication,
            "Tags": _tag_set(tags),
        }
        if to is None:
            request["UseLatestRestorableTime"] = True
        else:
            request["RestoreToTime"] = to
        if kms_key:
            request["KmsKeyId"] = kms_key
        if parameter_group:
            request["DBClusterParameterGroupName"] = parameter_group
        if serverless_v2:
            request["ServerlessV2ScalingConfiguration"] = {
                key: serverless_v2[key]
                for key in ("MinCapacity", "MaxCapacity")
                if key in serverless_v2
            }
        with self._calling("rds:RestoreDBClusterToPointInTime", cluster):
            self.client("rds").restore_db_cluster_to_point_in_time(**request)

    def create_db_writer(
        self,
        cluster: str,
        instance: str,
        *,
        engine: str,
        instance_class: str,
        parameter_group: str | None,
        tags: dict[str, str],
    ) -> None:
        """Add `instance` of `instance_class` to `cluster`, which has no instance
        yet, so it becomes the writer (CreateDBInstance with DBClusterIdentifier;
        DB parameter group `parameter_group`, None: the engine's default; not
        publicly accessible). Returns once RDS accepted it, not once it is
        available. AwsError (rds:CreateDBInstance) on failure, e.g.
        DBInstanceAlreadyExists."""
        request: dict[str, Any] = {
            "DBInstanceIdentifier": instance,
            "DBClusterIdentifier": cluster,
            "Engine": engine,
            "DBInstanceClass": instance_class,
            "PromotionTier": 0,
            "PubliclyAccessible": False,
            "Tags": _tag_set(tags),
        }
        if parameter_group:
            request["DBParameterGroupName"] = parameter_group
        with self._calling("rds:CreateDBInstance", instance):
            self.client("rds").create_db_instance(**request)

    def delete_db_cluster(self, cluster: str) -> None:
        """Delete `cluster`, whose instances are gone, without a final snapshot
        (DeleteDBCluster with SkipFinalSnapshot: only for a throwaway copy).
        Returns once RDS accepted it. AwsError (rds:DeleteDBCluster) on
        failure: InvalidDBClusterStateFault while it still has members or is
        busy, InvalidParameterCombination when deletion protection is on."""
        with self._calling("rds:DeleteDBCluster", cluster):
            self.client("rds").delete_db_cluster(
                DBClusterIdentifier=cluster, SkipFinalSnapshot=True
            )


PUBLIC_ACCESS_BLOCK = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


def _tag_set(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def _region_header(exc: ClientError) -> str | None:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return headers.get("x-amz-bucket-region") or exc.response.get("Error", {}).get("Region")


def _denials(results: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """(action, resource) for every decision of a simulation that is not `allowed`."""
    for result in results:
        action = result.get("EvalActionName", "?")
        specific = result.get("ResourceSpecificResults") or []
        if specific:
            for item in specific:
                if item.get("EvalResourceDecision") != "allowed":
                    yield action, _resource_name(item.get("EvalResourceName", "*"))
        elif result.get("EvalDecision") != "allowed":
            yield action, _resource_name(result.get("EvalResourceName", "*"))


def _resource_name(arn: str) -> str:
    """`arn:aws:s3:::bucket` -> `bucket`; anything else as it is."""
    match = re.fullmatch(r"arn:[a-z-]+:s3:::(.+)", arn)
    return match.group(1) if match else arn
