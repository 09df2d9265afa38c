"""Every check a scanner is told to skip in the generated code, and why.

checkov and trivy judge the rendered tree (and a user's own run of either
judges it too). A check the platform must fail by design, or one a scanner
cannot see is met, is skipped inline, in the generated code, with its reason
in words; this registry is the one place such a skip comes from. Templates
write them through the macros of `templates/macros/skips.j2`:

- checkov: `# checkov:skip=<ID>:<reason>` as the first lines inside the block
  (https://www.checkov.io/2.Basics/Suppressing%20and%20Skipping%20Policies.html).
  Inside a `module` call it applies to every resource of the module.
- checkov-plan: `# checkov-plan:skip=<ID>:<reason>`, after those: a check
  that fails only on a plan, where a value known only after apply (a key's
  ARN, a web ACL's id) reads as missing. checkov itself does not read this
  form, so on the code it still judges the check; `levels-tf check` applies
  both forms to checkov's findings on a plan (levels_tf/code_skips.py).
- trivy: `# trivy:ignore:<ID>[<attribute>=<value>] <reason>` on the lines
  directly above the block; only consecutive ignore lines chain, and trivy
  reads the words after the id as nothing (https://trivy.dev/latest/docs/scanner/misconfiguration/#skipping-resources-by-inline-comments).
  The optional `[attribute=value]` limits it to the `for_each` instances whose
  attribute has that value. Above a `module` call it covers the module's resources.

A skip placed in `modules/` holds for every configuration (module templates see
only common values, so rendered modules are identical everywhere); a skip on a
module call in a stack may hold only when the configuration makes it so
(`when`), and its reason then names the infra.yaml key that decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .model import Infra

Scanner = Literal["checkov", "checkov-plan", "trivy"]

SCANNERS: tuple[Scanner, ...] = ("checkov", "checkov-plan", "trivy")

# Stack templates a skip can sit in (stacks/<kind>/), by the kind of stack.
STACK_PLACES = ("stacks/shared", "stacks/environment")


@dataclass(frozen=True)
class Where:
    """The stack a skip is rendered in: its configuration (the effective one of
    an environment, or of a VPC group), its group and environment (None for a
    shared stack)."""

    infra: Infra
    group: str
    environment: str | None


@dataclass(frozen=True)
class Skip:
    """One inline skip.

    `place` is the template folder (`modules/<module>` or `stacks/shared`,
    `stacks/environment`); `block` the address of the block in it that carries
    the comment (`aws_eip.this`, `data.aws_ami.this`, `module.cdn`); `reason`
    words that may name `{group}` or `{environment}`; `when` decides, for a
    stack, whether the skip is needed (None: always); `params` a trivy
    attribute filter such as `egress=false`.
    """

    scanner: Scanner
    check_id: str
    place: str
    block: str
    reason: str
    when: Callable[[Where], bool] | None = None
    params: str = ""

    def key(self) -> str:
        return f"{self.place} {self.block}"

    def reason_at(self, where: Where | None) -> str:
        if where is None:
            return self.reason
        return self.reason.format(group=where.group, environment=where.environment)

    def comment(self, where: Where | None = None) -> str:
        """The comment line, without indentation."""
        reason = self.reason_at(where)
        if self.scanner in ("checkov", "checkov-plan"):
            return f"# {self.scanner}:skip={self.check_id}:{reason}"
        params = f"[{self.params}]" if self.params else ""
        return f"# trivy:ignore:{self.check_id}{params} {reason}"


def _short_flow_logs(where: Where) -> bool:
    """flow-log retention under 365 days"""
    return where.infra.vpc_groups[where.group].flow_logs.retention_days < 365


def _cdn_without_aliases(where: Where) -> bool:
    """the environment serves buckets through CloudFront without cdn.aliases"""
    infra = where.infra
    served = any(spec.cdn for spec in infra.buckets.values())
    return served and not infra.cdn.aliases.get(where.environment or "")


def _unversioned_buckets(where: Where) -> bool:
    """a bucket class of the environment says versioning: false"""
    return any(not spec.versioning for spec in where.infra.buckets.values())


_SSH_TEST = "tests/test_security_invariants.py::test_ssh_and_database_access_follow_the_allow_lists"
_AFTER_APPLY_TEST = (
    "tests/test_plan_invariants.py"
    "::test_values_known_only_after_apply_come_from_the_platforms_own_resources"
)


def _after_apply(what: str, source: str) -> str:
    """The reason of a plan-only skip: `what` is known only after apply."""
    return (
        f"{what} is known only after apply, and checkov reads it as missing on a plan; on the "
        f"code checkov passes this check, and {_AFTER_APPLY_TEST} proves that every plan sets "
        f"it from {source}."
    )


_KEY = "the platform's own KMS key"

SKIPS: tuple[Skip, ...] = (
    # -- The load balancer: public by design ------------------------------------------
    Skip(
        "checkov",
        "CKV_AWS_260",
        "modules/load-balancer",
        "aws_vpc_security_group_ingress_rule.https",
        "A public load balancer must accept HTTPS from anywhere; that is its job.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_260",
        "modules/load-balancer",
        "aws_vpc_security_group_ingress_rule.http",
        "A public load balancer must accept HTTP from anywhere to redirect it to HTTPS.",
    ),
    Skip(
        "trivy",
        "AWS-0053",
        "modules/load-balancer",
        "aws_lb.this",
        "The platform's load balancer faces the internet by design: it serves HTTPS to anyone and redirects HTTP.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_2",
        "modules/load-balancer",
        "aws_lb_listener.http",
        "This listener only redirects to HTTPS.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_103",
        "modules/load-balancer",
        "aws_lb_listener.http",
        "This listener only redirects to HTTPS.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_378",
        "modules/service",
        "aws_lb_target_group.this",
        "TLS ends at the load balancer; targets sit in private subnets behind it.",
    ),
    # -- SSH: the bastion ---------------------------------------------------------------
    Skip(
        "checkov",
        "CKV2_AWS_5",
        "modules/app-access",
        "aws_security_group.this",
        "The environment stack attaches this group to its launch templates; that is another Terraform root.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_24",
        "modules/app-access",
        "aws_vpc_security_group_ingress_rule.ssh_from_bastion",
        "The source is the bastion's security group, not a CIDR; checkov does not read "
        f"referenced_security_group_id. {_SSH_TEST} proves it.",
    ),
    Skip(
        "checkov",
        "CKV2_AWS_19",
        "modules/bastion",
        "aws_eip.this",
        "Each bastion instance claims this address itself on boot (user data), so it survives replacement.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_88",
        "modules/bastion",
        "aws_launch_template.this",
        "The bastion is the one host that must be reachable from the internet; it needs a public "
        "address to claim its Elastic IP on boot.",
    ),
    # -- Logs -----------------------------------------------------------------------------
    Skip(
        "checkov",
        "CKV_AWS_145",
        "modules/log-bucket",
        "aws_s3_bucket.this",
        "S3 server access logs and load balancer access logs can only be delivered to SSE-S3 buckets, not SSE-KMS.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_18",
        "modules/log-bucket",
        "aws_s3_bucket.this",
        "This is the terminal log bucket; logging its access would need another bucket, which would need one too.",
    ),
    Skip(
        "trivy",
        "AWS-0089",
        "modules/log-bucket",
        "aws_s3_bucket.this",
        "This is the terminal log bucket; logging its access would need another bucket, which would need one too.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_144",
        "modules/log-bucket",
        "aws_s3_bucket.this",
        "Logs are not copied to a second region: they expire after their retention, and a region "
        "that is lost takes the platform it logged with it.",
    ),
    Skip(
        "trivy",
        "AWS-0132",
        "modules/log-bucket",
        "aws_s3_bucket_server_side_encryption_configuration.this",
        "S3 server access logs and load balancer access logs can only be delivered to SSE-S3 buckets, not SSE-KMS.",
    ),
    Skip(
        "checkov",
        "CKV2_AWS_65",
        "modules/log-bucket",
        "aws_s3_bucket_ownership_controls.this",
        "CloudFront standard logging delivers through object ACLs, which BucketOwnerEnforced disables.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_338",
        "stacks/shared",
        "module.network",
        "Flow logs are kept under a year by choice: see infra.yaml vpc_groups.{group}.flow_logs.retention_days.",
        when=_short_flow_logs,
    ),
    # -- Data -----------------------------------------------------------------------------
    Skip(
        "checkov",
        "CKV_AWS_144",
        "modules/bucket",
        "aws_s3_bucket.this",
        "Cross-region replication is not offered yet; S3 keeps every object in several zones of "
        "its region, and the backup class holds a second copy of every upload.",
    ),
    Skip(
        "trivy",
        "AWS-0090",
        "modules/bucket",
        "aws_s3_bucket_versioning.this",
        "trivy cannot resolve var.versioning, set per bucket through the stack's for_each; a bucket "
        "is versioned unless its class says versioning: false in infra.yaml buckets, as "
        "tests/test_security_invariants.py::test_buckets_are_versioned_as_infra_yaml_says proves.",
    ),
    Skip(
        "checkov",
        "CKV2_AWS_57",
        "modules/parameters",
        "aws_secretsmanager_secret.this",
        "These are application secrets set out of band; no rotation function exists for them.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_272",
        "modules/function",
        "aws_lambda_function.this",
        "Code signing needs AWS Signer in the build; levels-tf builds the package itself and "
        "pins it by source_code_hash instead.",
    ),
    # -- The CDN. The cdn module's templates are plain Terraform, so these lines are
    # written in them as they are here (tests/test_skips.py compares); they sit in
    # the module because a configuration without served buckets never calls it, and
    # scanners then judge it alone, with its defaults.
    Skip(
        "checkov",
        "CKV_AWS_310",
        "modules/cdn",
        "aws_cloudfront_distribution.this",
        "Origin failover needs a copy of every served bucket in a second region, which the platform does not keep.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_374",
        "modules/cdn",
        "aws_cloudfront_distribution.this",
        "Geo restriction is the caller's choice: var.geo_allow_list, from infra.yaml "
        "cdn.geo_allow_list; empty lets every country in.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_174",
        "modules/cdn",
        "aws_cloudfront_distribution.this",
        "Without aliases CloudFront serves its own cloudfront.net certificate and decides its TLS "
        "policy itself; with aliases this module requires TLSv1.2_2021.",
    ),
    Skip(
        "checkov",
        "CKV_AWS_259",
        "modules/cdn",
        "aws_cloudfront_response_headers_policy.security",
        "HSTS preload is the caller's choice: var.hsts_preload, from infra.yaml cdn.hsts_preload; "
        "it enrolls the whole domain in the browsers' HTTPS-only list, which is hard to undo.",
    ),
    # -- The network ACLs -----------------------------------------------------------------
    *(
        Skip(
            "trivy",
            "AWS-0102",
            "modules/network",
            f"aws_network_acl_rule.{tier}",
            "Inside the VPC every protocol passes this second fence; the security groups decide "
            "which ports each host admits.",
            params="egress=false",
        )
        for tier in ("public", "private")
    ),
    *(
        Skip(
            "trivy",
            "AWS-0102",
            "modules/network",
            f"aws_network_acl_rule.{tier}",
            "A network ACL cannot name a prefix list or a security group, and S3 through the "
            "gateway endpoint still goes to S3's public addresses: this fence lets every protocol "
            "out, and the stateful security groups narrow egress (tests/test_security_invariants.py"
            "::test_the_internet_is_reached_only_by_the_optional_https_rule).",
            params="egress=true",
        )
        for tier in ("public", "private")
    ),
    # -- Egress to the internet -------------------------------------------------------------
    *(
        Skip(
            "trivy",
            "AWS-0104",
            place,
            "aws_vpc_security_group_egress_rule.internet_https",
            "Present only when infra.yaml vpc_groups.<group>.internet_https lists these instances "
            "(count): OS package mirrors and third-party APIs are on the internet; AWS APIs go "
            "through the VPC endpoints (tests/test_security_invariants.py"
            "::test_the_internet_is_reached_only_by_the_optional_https_rule).",
        )
        for place in ("modules/app-access", "modules/bastion")
    ),
    *(
        Skip(
            "checkov",
            "CKV_AWS_352",
            "modules/network",
            f"aws_network_acl_rule.{tier}",
            "Inside the VPC every protocol passes this second fence; the security groups decide "
            "which ports each host admits (tests/test_plan_invariants.py"
            "::test_only_the_vpc_itself_passes_the_network_acls_on_every_port).",
        )
        for tier in ("public", "private")
    ),
    # -- Chosen in infra.yaml -----------------------------------------------------------
    Skip(
        "checkov",
        "CKV2_AWS_42",
        "stacks/environment",
        "module.cdn",
        "This environment has no cdn.aliases in infra.yaml, so CloudFront serves its own "
        "cloudfront.net certificate; with aliases the distribution uses cdn.certificate_arn.",
        when=_cdn_without_aliases,
    ),
    Skip(
        "checkov",
        "CKV_AWS_21",
        "stacks/environment",
        "module.bucket",
        "A bucket class of this environment says versioning: false in infra.yaml buckets; "
        "tests/test_security_invariants.py::test_buckets_are_versioned_as_infra_yaml_says "
        "proves every other bucket is versioned.",
        when=_unversioned_buckets,
    ),
    # -- Values known only after apply (checkov on a plan only) --------------------------
    *(
        Skip("checkov-plan", "CKV_AWS_27", place, block, _after_apply("The queue's key", _KEY))
        for place, block in (
            ("modules/queue", "aws_sqs_queue.this"),
            ("modules/queue", "aws_sqs_queue.dead_letter"),
            ("modules/function", "aws_sqs_queue.dead_letter"),
        )
    ),
    Skip(
        "checkov-plan",
        "CKV_AWS_26",
        "modules/topic",
        "aws_sns_topic.this",
        _after_apply("The topic's key", _KEY),
    ),
    Skip(
        "checkov-plan",
        "CKV_AWS_158",
        "modules/function",
        "aws_cloudwatch_log_group.this",
        _after_apply("The log group's key", _KEY),
    ),
    Skip(
        "checkov-plan",
        "CKV_AWS_173",
        "modules/function",
        "aws_lambda_function.this",
        _after_apply("The key of the function's environment variables", _KEY),
    ),
    Skip(
        "checkov-plan",
        "CKV_AWS_337",
        "modules/parameters",
        "aws_ssm_parameter.this",
        _after_apply("The parameter's key", _KEY),
    ),
    Skip(
        "checkov-plan",
        "CKV_AWS_149",
        "modules/parameters",
        "aws_secretsmanager_secret.this",
        _after_apply("The secret's key", _KEY),
    ),
    Skip(
        "checkov-plan",
        "CKV_AWS_86",
        "modules/cdn",
        "aws_cloudfront_distribution.this",
        _after_apply("The log bucket's domain name", "the environment's log bucket"),
    ),
    Skip(
        "checkov-plan",
        "CKV2_AWS_47",
        "modules/cdn",
        "aws_cloudfront_distribution.this",
        _after_apply(
            "The web ACL's id",
            "the waf module's web ACL, whose managed rules include AWSManagedRulesKnownBadInputsRuleSet",
        ),
    ),
    Skip(
        "checkov-plan",
        "CKV2_AWS_76",
        "modules/load-balancer",
        "aws_lb.this",
        _after_apply(
            "The web ACL's ARN in the association",
            "the waf module's web ACL, whose managed rules include AWSManagedRulesKnownBadInputsRuleSet",
        ),
    ),
)


def comments(where: Where | None = None) -> dict[Scanner, dict[str, list[str]]]:
    """The comment lines (no indentation) of the skips that hold, by scanner and
    then by `Skip.key()` ("<place> <block>").

    `where` None: the module skips, which hold everywhere; else the skips of
    that stack's kind (`environment` None: the shared stack) whose `when` holds.
    """
    place = "modules/" if where is None else STACK_PLACES[where.environment is not None]
    result: dict[Scanner, dict[str, list[str]]] = {scanner: {} for scanner in SCANNERS}
    for skip in SKIPS:
        if not skip.place.startswith(place):
            continue
        if where is not None and skip.when is not None and not skip.when(where):
            continue
        result[skip.scanner].setdefault(skip.key(), []).append(skip.comment(where))
    return result


def markdown_table() -> str:
    """The README's table of every skip: scanner, check, where, when and why."""
    rows = [
        "| Scanner | Check | Where | When | Reason |",
        "|---|---|---|---|---|",
    ]
    for skip in sorted(SKIPS, key=lambda s: (s.scanner, s.place, s.block, s.check_id)):
        check = skip.check_id + (f" `[{skip.params}]`" if skip.params else "")
        when = (skip.when.__doc__ or "").strip() if skip.when else "always"
        rows.append(
            f"| {skip.scanner} | {check} | `{skip.place}` `{skip.block}` | {when} | {skip.reason} |"
        )
    return "\n".join(rows) + "\n"
