"""`levels-tf bootstrap [GROUP]`: what the stacks need before their first apply.

The S3 buckets Terraform keeps its state in, and the account's GitHub Actions
OIDC identity provider when the CI roles trust GitHub (ci.github) and no
`provider_arn` names one managed elsewhere. The provider is one per issuer
per account, so no stack can own it; bootstrap creates it once, with the
client id sts.amazonaws.com, no thumbprint (see Aws.create_openid_connect_provider)
and the project's tags. A provider that exists already is left as it is; one
that does not accept that client id is an error that names the fix, raised
before anything is created.

One bucket per VPC group (`<state.bucket_prefix>-<group>`), created in the
configured region and converged on every run to: versioning on, default
encryption, all four public access blocks, BucketOwnerEnforced ownership, a
policy that denies any request not made over TLS, and the project's tags.

Default encryption is SSE-S3 (AES256), not SSE-KMS with the AWS managed key
`aws/s3`: the rendered backends say `encrypt = true` without a `kms_key_id`,
and Terraform then sends `x-amz-server-side-encryption: AES256` with every
state and lock object, so a KMS default would never apply to them. The
`aws/s3` key would add nothing either: its key policy admits every principal
of the account that may use S3, it cannot be shared with another account, and
it costs a KMS request per object. Who may read state is decided by IAM and
this bucket's policy. An existing bucket whose default is already SSE-KMS is
left as it is (a customer key is a deliberate, stronger choice).

For each VPC group that ci.github trusts, two IAM roles for the CI's
Terraform runs (ci_roles.py: `<project>-<group>-tf-plan` and
`-tf-apply`), converged on every run to their trust policy, inline policy,
attached managed policies and tags. A role of that name without the tags
ManagedBy=levels-tf and this Project is someone else's: an error, before
anything is created, and the role is never touched.

The order is: who am I, may I (IAM policy simulation), what exists (read
only), then create and converge. Nothing is created before every check passed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import ci_roles, console, context, github_oidc
from ..aws import PUBLIC_ACCESS_BLOCK, Aws, AwsError, BucketTaken, Identity, MissingPermissions
from ..errors import UsageError
from ..model import Infra
from ..names import state_bucket
from ..options import RenderOptions, apply, resolve
from ..validation import Config, load_config

ENCRYPTED = ("AES256", "aws:kms", "aws:kms:dsse")
TLS_SID = "DenyInsecureTransport"

# What bootstrap may call, as IAM actions. Listing our buckets and reading one
# bucket's region come first and are read-only.
ACCOUNT_ACTIONS = ["s3:ListAllMyBuckets"]
READ_ACTIONS = ["s3:ListBucket"]
CREATE_ACTIONS = ["s3:CreateBucket", "s3:TagResource"]
CONVERGE_ACTIONS = [
    "s3:GetBucketVersioning",
    "s3:PutBucketVersioning",
    "s3:GetEncryptionConfiguration",
    "s3:PutEncryptionConfiguration",
    "s3:GetBucketPublicAccessBlock",
    "s3:PutBucketPublicAccessBlock",
    "s3:GetBucketOwnershipControls",
    "s3:PutBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:PutBucketPolicy",
    "s3:GetBucketTagging",
    "s3:PutBucketTagging",
]
BUCKET_ACTIONS = READ_ACTIONS + CREATE_ACTIONS + CONVERGE_ACTIONS
# The GitHub OIDC provider: listing the account's providers is read-only and
# takes no resource; the others act on the provider's ARN.
PROVIDER_LIST_ACTIONS = ["iam:ListOpenIDConnectProviders"]
PROVIDER_READ_ACTIONS = ["iam:GetOpenIDConnectProvider"]
PROVIDER_CREATE_ACTIONS = ["iam:CreateOpenIDConnectProvider", "iam:TagOpenIDConnectProvider"]
PROVIDER_ACTIONS = PROVIDER_READ_ACTIONS + PROVIDER_CREATE_ACTIONS
# The CI's Terraform roles: all act on the role's ARN.
ROLE_READ_ACTIONS = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies"]
ROLE_CREATE_ACTIONS = ["iam:CreateRole"]
ROLE_CONVERGE_ACTIONS = [
    "iam:TagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
]
ROLE_ACTIONS = ROLE_READ_ACTIONS + ROLE_CREATE_ACTIONS + ROLE_CONVERGE_ACTIONS


def bootstrap(
    config_path: Path,
    group: str | None,
    options: RenderOptions = RenderOptions(),
    *,
    tls_only: bool = True,
    as_json: bool = False,
) -> int:
    """Create or converge the state bucket of `group` (or of every group).

    `options` must agree with those the tree beside infra.yaml was rendered
    with: its backend decides whether there are buckets, its endpoint where.
    `tls_only=False` leaves the TLS-only policy statement out, for an
    emulator that denies every request under it (emulator_profile.py).

    With `as_json`, ends with `{"region": str, "endpoint": str | null,
    "backend": "s3" | "local", "account": str | null, "buckets": [{"group":
    str, "bucket": str, "state": "created" | "updated" | "up to date",
    "changed": [setting]}], "oidc_provider": {"arn": str, "state": "created"
    | "exists" | "managed elsewhere"} | null, "roles": [{"name": str, "arn":
    str, "state": "created" | "updated" | "up to date"}]}` (no buckets with a
    local backend; account null when AWS was not asked)."""
    config = load_config(config_path)
    options = resolve(config_path.parent, options, config.infra.state.backend)
    config = apply(config, options)
    infra = config.infra
    if group is not None and group not in infra.vpc_groups:
        raise UsageError(
            f"no VPC group {group!r} in {config_path}; defined: {', '.join(infra.vpc_groups)}"
        )
    groups = [group] if group is not None else list(infra.vpc_groups)
    github = infra.ci.github
    document: dict[str, Any] = {
        "region": infra.region,
        "endpoint": options.aws_endpoint,
        "backend": infra.state.backend,
        "account": None,
        "buckets": [],
        "oidc_provider": None,
        "roles": [],
    }
    if github is not None and github.provider_arn is not None:
        document["oidc_provider"] = {"arn": github.provider_arn, "state": "managed elsewhere"}
        console.out(
            f"{config_path}: ci.github.provider_arn is set: the OIDC provider "
            f"{github.provider_arn} is managed elsewhere"
        )
    wants_provider = github is not None and github.provider_arn is None
    wants_roles = github is not None and any(g in github.subjects for g in groups)
    if infra.state.backend != "s3":
        source = "the tree was rendered with --backend" if options.backend else "state.backend is"
        console.out(
            f"{config_path}: {source} {infra.state.backend}: Terraform keeps each stack's state "
            "in a local file, so there is no state bucket to create"
        )
        if not wants_provider and not wants_roles:
            if as_json:
                console.report_json(document)
            return 0
    buckets = {g: state_bucket(infra, g) for g in groups} if infra.state.backend == "s3" else {}
    aws = Aws(infra.region, options.aws_endpoint)

    who = aws.identity()
    document["account"] = who.account
    via = f" via {aws.endpoint}" if aws.endpoint else ""
    console.out(f"account {who.account} as {who.arn}, region {infra.region}{via}")

    provider = github_oidc.provider_arn(who.partition, who.account) if wants_provider else None
    arns = [f"arn:{who.partition}:s3:::{name}" for name in buckets.values()]
    specs = [
        spec
        for g in groups
        for spec in ci_roles.roles(
            infra, g, who.partition, who.account, buckets.get(g), bucket_tags(config, g)
        )
    ]
    roles = {_role_arn(who, spec.name): spec for spec in specs}
    checks: list[tuple[list[str], list[str] | None]] = [
        (ACCOUNT_ACTIONS if buckets else [], None),
        (BUCKET_ACTIONS if buckets else [], arns),
        (PROVIDER_LIST_ACTIONS if provider else [], None),
        (PROVIDER_ACTIONS if provider else [], [provider] if provider else None),
        (ROLE_ACTIONS if roles else [], list(roles) or None),
    ]
    check = aws.check_permissions(who, [(actions, on) for actions, on in checks if actions])
    if not check.verified:
        console.err(f"warning: cannot verify permissions ({check.reason}); proceeding")
    doing = "bootstrap the state buckets" if buckets else "bootstrap"
    reads = set(ACCOUNT_ACTIONS + READ_ACTIONS + PROVIDER_LIST_ACTIONS + ROLE_READ_ACTIONS)
    if check.missing and reads & set(check.missing):
        raise MissingPermissions(check.principal, check.missing, doing)

    plan = _plan(aws, who, buckets) if buckets else {}
    if provider:
        plan[provider] = _provider_plan(aws, provider)
    for arn, spec in roles.items():
        plan[arn] = _role_plan(aws, spec, infra.project)
    missing = _needed(check.missing, plan)
    if missing:
        raise MissingPermissions(check.principal, missing, doing)

    for group_name, name in buckets.items():
        tags = bucket_tags(config, group_name)
        created = plan[name] == "create" and aws.create_bucket(name, tags)
        try:
            changed = converge(aws, who, name, tags, tls_only=tls_only)
        except AwsError as exc:
            if not created:
                raise
            raise AwsError(
                f"{exc} - bucket {name} was created but is not fully configured; "
                "fix that and run levels-tf bootstrap again, it converges"
            ) from None
        state = "created" if created else "updated" if changed else "up to date"
        document["buckets"].append(
            {"group": group_name, "bucket": name, "state": state, "changed": changed}
        )
        if created:
            console.out(f"{name}: created (group {group_name}): {describe(tags, tls_only)}")
        elif changed:
            console.out(f"{name}: exists (group {group_name}), updated: {', '.join(changed)}")
        else:
            console.out(f"{name}: exists (group {group_name}), up to date")
    if provider:
        console.out(ensure_provider(aws, plan[provider], account_tags(config)))
        document["oidc_provider"] = {
            "arn": provider,
            "state": "created" if plan[provider] == "create" else "exists",
        }
    for arn, spec in roles.items():
        state, line = ensure_role(aws, spec, plan[arn])
        document["roles"].append({"name": spec.name, "arn": arn, "state": state})
        console.out(line)
    if as_json:
        console.report_json(document)
    return 0


def _role_arn(who: Identity, name: str) -> str:
    return f"arn:{who.partition}:iam::{who.account}:role/{name}"


def _role_plan(aws: Aws, spec: ci_roles.RoleSpec, project: str) -> str:
    """'create' or 'exists' for role `spec`. Read-only; an AwsError when a role
    of that name exists without our tags (someone else's: never touched)."""
    role = aws.get_role(spec.name)
    if role is None:
        return "create"
    tags = {t["Key"]: t["Value"] for t in role.get("Tags") or []}
    if tags.get("ManagedBy") != "levels-tf" or tags.get("Project") != project:
        raise AwsError(
            f"role {spec.name} exists but levels-tf bootstrap did not create it (no tags "
            f"ManagedBy=levels-tf and Project={project}); delete or rename it, or tag it so "
            "if it is this project's, then run levels-tf bootstrap again; nothing was changed"
        )
    return "exists"


def ensure_role(aws: Aws, spec: ci_roles.RoleSpec, state: str) -> tuple[str, str]:
    """Create role `spec` when `state` (see _role_plan) says so, else converge
    its trust policy, inline policy, managed policies and tags. Returns what
    happened ("created", "updated" or "up to date") and the line to print."""
    name = f"role {spec.name}"
    if state == "create":
        aws.create_role(spec.name, spec.trust, spec.tags, "levels-tf CI: Terraform (bootstrap)")
        try:
            _converge_role(aws, spec, trust=False)
        except AwsError as exc:
            raise AwsError(
                f"{exc} - role {spec.name} was created but is not fully configured; "
                "fix that and run levels-tf bootstrap again, it converges"
            ) from None
        managed = ", ".join(arn.rsplit("/", 1)[-1] for arn in spec.managed)
        return (
            "created",
            f"{name}: created: {managed}, inline policy {ci_roles.INLINE_POLICY}, {len(spec.tags)} tags",
        )
    changed = _converge_role(aws, spec, trust=True)
    if changed:
        return "updated", f"{name}: updated {', '.join(changed)}"
    return "up to date", f"{name}: up to date"


def _converge_role(aws: Aws, spec: ci_roles.RoleSpec, *, trust: bool) -> list[str]:
    """Bring role `spec` to its documents; what had to change. Other inline
    policies on the role are left alone; other managed policies are detached."""
    changed = []
    role = aws.get_role(spec.name) or {}
    if trust and ci_roles.normal(role.get("AssumeRolePolicyDocument")) != ci_roles.normal(
        spec.trust
    ):
        aws.update_assume_role_policy(spec.name, spec.trust)
        changed.append("trust policy")
    inline = aws.role_policy(spec.name, ci_roles.INLINE_POLICY)
    if ci_roles.normal(inline) != ci_roles.normal(spec.inline):
        aws.put_role_policy(spec.name, ci_roles.INLINE_POLICY, spec.inline)
        changed.append("inline policy")
    attached = set(aws.list_attached_role_policies(spec.name))
    for arn in sorted(set(spec.managed) - attached):
        aws.attach_role_policy(spec.name, arn)
    for arn in sorted(attached - set(spec.managed)):
        aws.detach_role_policy(spec.name, arn)
    if attached != set(spec.managed):
        changed.append("managed policies")
    tags = {t["Key"]: t["Value"] for t in role.get("Tags") or []}
    if trust and any(tags.get(key) != value for key, value in spec.tags.items()):
        aws.tag_role(spec.name, spec.tags)
        changed.append("tags")
    return changed


def _provider_plan(aws: Aws, arn: str) -> str:
    """'create' or 'exists' for the GitHub OIDC provider `arn`. Read-only; an
    AwsError when the provider exists but would refuse the CI's tokens."""
    if arn not in aws.openid_connect_providers():
        return "create"
    if github_oidc.AUDIENCE not in aws.openid_connect_client_ids(arn):
        raise AwsError(
            f"OIDC provider {arn} does not accept the audience {github_oidc.AUDIENCE}, which "
            "the CI roles require; add it to the provider's client ids (IAM "
            "AddClientIDToOpenIDConnectProvider), then run levels-tf bootstrap again; "
            "nothing was changed"
        )
    return "exists"


def ensure_provider(aws: Aws, state: str, tags: dict[str, str]) -> str:
    """Create the GitHub OIDC provider with client id sts.amazonaws.com and `tags`
    when `state` (see _provider_plan) says so; the line to print."""
    name = f"OIDC provider {github_oidc.ISSUER_HOST}"
    if state != "create":
        return f"{name}: exists, up to date"
    aws.create_openid_connect_provider(github_oidc.ISSUER_URL, [github_oidc.AUDIENCE], tags)
    return (
        f"{name}: created: client id {github_oidc.AUDIENCE}, no thumbprint "
        f"(IAM trusts GitHub's certificate authority), {len(tags)} tags"
    )


def _plan(aws: Aws, who: Identity, buckets: dict[str, str]) -> dict[str, str]:
    """'exists' or 'create' per bucket; errors for buckets we cannot use. Read-only."""
    prefix = _common_prefix(list(buckets.values()))
    ours = aws.owned_buckets(prefix)
    plan = {}
    for name in buckets.values():
        region = aws.bucket_region(name, who.account if name in ours else None)
        if name in ours:
            if region and region != aws.region:
                raise AwsError(
                    f"bucket {name} exists in {region}, but infra.yaml's region is {aws.region}; "
                    "move the state or change state.bucket_prefix"
                )
            plan[name] = "exists"
        elif region is not None:
            raise BucketTaken(
                f"bucket {name} already exists in another AWS account; choose another state.bucket_prefix"
            )
        else:
            plan[name] = "create"
    return plan


def _needed(missing: dict[str, list[str]], plan: dict[str, str]) -> dict[str, list[str]]:
    """The missing permissions that matter: creating only what is to be created."""
    needed: dict[str, list[str]] = {}
    for action, resources in missing.items():
        if action in CREATE_ACTIONS + PROVIDER_CREATE_ACTIONS + ROLE_CREATE_ACTIONS:
            resources = [r for r in resources if plan.get(r) == "create"]
        if resources:
            needed[action] = resources
    return needed


def _common_prefix(names: list[str]) -> str:
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


def bucket_tags(config: Config, group: str) -> dict[str, str]:
    """The tags of `group`'s shared stack (see context.default_tags), without Stack."""
    return {**_project_tags(context.group_infra(config, group)), "VpcGroup": group}


def account_tags(config: Config) -> dict[str, str]:
    """The tags of what bootstrap makes for the whole account (the OIDC provider):
    those of the state buckets without VpcGroup, as it serves every group."""
    return _project_tags(config.infra)


def _project_tags(infra: Infra) -> dict[str, str]:
    tags = dict(sorted(infra.tags.items()))
    tags.update({"Project": infra.project, "ManagedBy": "levels-tf"})
    return tags


def tls_statement(partition: str, name: str) -> dict[str, Any]:
    arn = f"arn:{partition}:s3:::{name}"
    return {
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def converge(
    aws: Aws, who: Identity, name: str, tags: dict[str, str], *, tls_only: bool = True
) -> list[str]:
    """Bring bucket `name` to the settings above (the TLS-only statement only
    with `tls_only`); the names of what had to change."""
    owner = who.account
    changed = []
    if aws.public_access_block(name, owner) != dict.fromkeys(PUBLIC_ACCESS_BLOCK, True):
        aws.block_public_access(name, owner)
        changed.append("public access block")
    if aws.ownership(name, owner) != "BucketOwnerEnforced":
        aws.enforce_owner(name, owner)
        changed.append("ownership")
    if aws.default_encryption(name, owner) not in ENCRYPTED:
        aws.set_sse_s3(name, owner)
        changed.append("encryption")
    if aws.versioning(name, owner) != "Enabled":
        aws.enable_versioning(name, owner)
        changed.append("versioning")
    policy = aws.policy(name, owner)
    wanted = tls_statement(who.partition, name)
    merged = _with_statement(policy, wanted) if tls_only else None
    if merged is not None:
        aws.set_policy(name, owner, merged)
        changed.append("policy")
    current = aws.tags(name, owner)
    if any(current.get(key) != value for key, value in tags.items()):
        aws.set_tags(name, owner, {**current, **tags})
        changed.append("tags")
    return changed


def describe(tags: dict[str, str], tls_only: bool = True) -> str:
    return (
        "versioning on, SSE-S3 by default, public access blocked, BucketOwnerEnforced, "
        f"{'TLS-only policy' if tls_only else 'no TLS-only policy'}, {len(tags)} tags"
    )


def _with_statement(policy: dict[str, Any] | None, wanted: dict[str, Any]) -> dict[str, Any] | None:
    """`policy` with `wanted` in it, or None when an equivalent statement is there already.

    Other statements are kept; a statement with our Sid that says something
    else is replaced."""
    if policy is None:
        return {"Version": "2012-10-17", "Statement": [wanted]}
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    if any(_normal(s) == _normal(wanted) for s in statements):
        return None
    kept = [s for s in statements if s.get("Sid") != wanted["Sid"]]
    return {**policy, "Version": policy.get("Version", "2012-10-17"), "Statement": kept + [wanted]}


def _normal(statement: dict[str, Any]) -> tuple:
    """A statement without its Sid, in one spelling: lists sorted, `*` principals alike,
    condition values as lowercase strings."""

    def listed(value: Any) -> tuple:
        return tuple(sorted(str(v) for v in (value if isinstance(value, list) else [value])))

    principal = statement.get("Principal")
    if principal == "*" or principal == {"AWS": "*"} or principal == {"AWS": ["*"]}:
        principal = "*"
    else:
        principal = repr(principal)
    condition = tuple(
        sorted(
            (operator, key, tuple(str(v).lower() for v in listed(values)))
            for operator, block in (statement.get("Condition") or {}).items()
            for key, values in block.items()
        )
    )
    return (
        statement.get("Effect"),
        principal,
        listed(statement.get("Action", [])),
        listed(statement.get("Resource", [])),
        condition,
    )
