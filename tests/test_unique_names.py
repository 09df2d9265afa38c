"""Every name an AWS resource is created with is unique where AWS requires it,
and no longer than AWS accepts.

The names are read from the plans Terraform itself made of every stack of
every configuration the tests render (tests/planned.py), so they are the
resolved names, not template text. Names are compared per platform (one
configuration is one account and one region, plus us-east-1 for CloudFront),
within the scope AWS enforces: the world for S3 buckets, the account for IAM
and CloudFront, the region for everything else, and a parent (a role, a
function, a group) for names that live inside another resource.

A new resource type fails `test_every_planned_resource_type_is_classified`
until it is listed below, with its name, scope and limit or the reason it
has no name of its own: the next resource cannot be forgotten.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import pytest

from .planned import PlannedStack, config_resource, references_of

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

GLOBAL, ACCOUNT, REGION, PARENT = "global", "account", "region", "parent"

# Terraform's name_prefix adds a unique suffix of 26 characters (a timestamp
# and a counter: terraform-plugin-sdk helper/id, UniqueIDSuffixLength).
PREFIX_SUFFIX = 26


@dataclass(frozen=True)
class Name:
    """How one resource type is named: the argument holding the name, where AWS
    requires it to be unique, its longest accepted length and where that limit
    is documented. `parent` is the argument naming the enclosing resource for
    PARENT scope; `kind` separates namespaces that share a scope."""

    argument: str
    scope: str
    limit: int
    source: str
    parent: str = ""
    kind: str = ""
    unknown_because: str = ""


NAMED: dict[str, Name] = {
    "aws_s3_bucket": Name(
        "bucket",
        GLOBAL,
        63,
        "S3 User Guide, general purpose bucket naming rules: 3 to 63 characters",
    ),
    "aws_iam_role": Name("name", ACCOUNT, 64, "IAM API CreateRole, RoleName: 1 to 64"),
    "aws_iam_policy": Name("name", ACCOUNT, 128, "IAM API CreatePolicy, PolicyName: 1 to 128"),
    "aws_iam_instance_profile": Name(
        "name", ACCOUNT, 128, "IAM API CreateInstanceProfile, InstanceProfileName: 1 to 128"
    ),
    "aws_iam_role_policy": Name(
        "name", PARENT, 128, "IAM API PutRolePolicy, PolicyName: 1 to 128", parent="role"
    ),
    "aws_cloudfront_function": Name(
        "name", ACCOUNT, 64, "CloudFront API CreateFunction, Name: 1 to 64"
    ),
    "aws_cloudfront_origin_access_control": Name(
        "name", ACCOUNT, 64, "CloudFront API OriginAccessControlConfig, Name: up to 64"
    ),
    "aws_cloudfront_response_headers_policy": Name(
        "name",
        ACCOUNT,
        128,
        "API ResponseHeadersPolicyConfig gives no length; 128 (its Comment's) assumed",
    ),
    "aws_cloudfront_cache_policy": Name(
        "name", ACCOUNT, 128, "API CachePolicyConfig gives no length; 128 (its Comment's) assumed"
    ),
    "aws_wafv2_web_acl": Name(
        "name", REGION, 128, "WAFv2 API CreateWebACL, Name: 1 to 128", kind="scope"
    ),
    "aws_cloudwatch_log_group": Name(
        "name", REGION, 512, "CloudWatch Logs API CreateLogGroup, logGroupName: 1 to 512"
    ),
    "aws_kms_alias": Name("name", REGION, 256, "KMS API CreateAlias, AliasName: 1 to 256"),
    "aws_ssm_parameter": Name("name", REGION, 2048, "SSM API PutParameter, Name: 1 to 2048"),
    "aws_secretsmanager_secret": Name(
        "name", REGION, 512, "Secrets Manager API CreateSecret, Name: 1 to 512"
    ),
    "aws_sqs_queue": Name("name", REGION, 80, "SQS API CreateQueue, QueueName: up to 80"),
    "aws_sns_topic": Name("name", REGION, 256, "SNS API CreateTopic, Name: 1 to 256"),
    "aws_lambda_function": Name(
        "function_name", REGION, 64, "Lambda API CreateFunction, FunctionName: 64 for a name"
    ),
    "aws_lambda_permission": Name(
        "statement_id",
        PARENT,
        100,
        "Lambda API AddPermission, StatementId: 1 to 100",
        parent="function_name",
    ),
    "aws_lb": Name("name", REGION, 32, "ELBv2 API CreateLoadBalancer, Name: up to 32"),
    "aws_lb_target_group": Name("name", REGION, 32, "ELBv2 API CreateTargetGroup, Name: up to 32"),
    "aws_launch_template": Name(
        "name", REGION, 128, "EC2 API CreateLaunchTemplate, LaunchTemplateName: 3 to 128"
    ),
    "aws_autoscaling_group": Name(
        "name", REGION, 255, "Auto Scaling API CreateAutoScalingGroup: 1 to 255"
    ),
    "aws_autoscaling_policy": Name(
        "name",
        PARENT,
        255,
        "Auto Scaling API PutScalingPolicy, PolicyName: 1 to 255",
        parent="autoscaling_group_name",
    ),
    "aws_security_group": Name(
        "name", REGION, 255, "EC2 API CreateSecurityGroup, GroupName: up to 255"
    ),
    "aws_rds_cluster": Name(
        "cluster_identifier", REGION, 63, "RDS API CreateDBCluster, DBClusterIdentifier: 1 to 63"
    ),
    "aws_rds_cluster_instance": Name(
        "identifier", REGION, 63, "RDS API CreateDBInstance, DBInstanceIdentifier: 1 to 63"
    ),
    "aws_rds_cluster_parameter_group": Name(
        "name",
        REGION,
        255,
        "RDS API CreateDBClusterParameterGroup, DBClusterParameterGroupName: 1 to 255",
    ),
    "aws_db_subnet_group": Name(
        "name", REGION, 255, "RDS API CreateDBSubnetGroup, DBSubnetGroupName: up to 255"
    ),
    "aws_backup_vault": Name(
        "name", REGION, 50, "AWS Backup API CreateBackupVault, BackupVaultName: 2 to 50"
    ),
    "aws_backup_plan": Name(
        "name",
        REGION,
        50,
        "API BackupPlanInput gives no length; 50, as for vaults and selections, assumed",
    ),
    "aws_backup_selection": Name(
        "name",
        PARENT,
        50,
        "AWS Backup API BackupSelection, SelectionName: 1 to 50",
        parent="plan_id",
    ),
    "aws_route53_record": Name(
        "name",
        PARENT,
        255,
        "Route 53: a domain name is at most 255 octets",
        parent="zone_id",
        kind="type",
        unknown_because="certificate validation records are named by ACM",
    ),
}

# Resource types that create no name of their own, and why.
UNNAMED: dict[str, str] = {
    "aws_acm_certificate": "identified by its ARN; the domain names may repeat",
    "aws_acm_certificate_validation": "a waiter, creates nothing",
    "aws_cloudfront_distribution": "identified by a generated ID",
    "aws_default_security_group": "adopts the VPC's default group",
    "aws_eip": "identified by its allocation ID",
    "aws_flow_log": "identified by a generated ID",
    "aws_iam_role_policy_attachment": "attaches a policy to a role by ARN",
    "aws_internet_gateway": "identified by a generated ID",
    "aws_kms_key": "identified by a generated ID; its aliases are named",
    "aws_lb_listener": "one per port of its load balancer, by ARN",
    "aws_lb_listener_rule": "one per priority of its listener, by ARN",
    "aws_nat_gateway": "identified by a generated ID",
    "aws_network_acl": "identified by a generated ID",
    "aws_network_acl_rule": "numbered within its ACL",
    "aws_route": "a destination within its route table",
    "aws_route_table": "identified by a generated ID",
    "aws_route_table_association": "links a subnet and a route table",
    "aws_s3_bucket_lifecycle_configuration": "a setting of its bucket",
    "aws_s3_bucket_logging": "a setting of its bucket",
    "aws_s3_bucket_notification": "a setting of its bucket",
    "aws_s3_bucket_ownership_controls": "a setting of its bucket",
    "aws_s3_bucket_policy": "a setting of its bucket",
    "aws_s3_bucket_public_access_block": "a setting of its bucket",
    "aws_s3_bucket_server_side_encryption_configuration": "a setting of its bucket",
    "aws_s3_bucket_versioning": "a setting of its bucket",
    "aws_secretsmanager_secret_version": "a version of its secret",
    "aws_sns_topic_policy": "a setting of its topic",
    "aws_sns_topic_subscription": "identified by a generated ARN",
    "aws_sqs_queue_policy": "a setting of its queue",
    "aws_sqs_queue_redrive_allow_policy": "a setting of its queue",
    "aws_subnet": "identified by a generated ID",
    "aws_vpc": "identified by a generated ID",
    "aws_vpc_endpoint": "identified by a generated ID; one per service in its VPC",
    "aws_vpc_security_group_egress_rule": "identified by a generated ID",
    "aws_vpc_security_group_ingress_rule": "identified by a generated ID",
    "aws_wafv2_web_acl_association": "links a web ACL and a resource",
    "aws_wafv2_web_acl_logging_configuration": "a setting of its web ACL",
}

# WAF logs only to destinations whose name starts with this (WAF API
# LoggingConfiguration: "The name that you give the destination must start
# with aws-waf-logs-").
WAF_LOG_PREFIX = "aws-waf-logs-"


@dataclass(frozen=True)
class CreatedName:
    """One name a plan creates: where AWS requires it to be unique (`scope`, a
    tuple), the name itself (None when Terraform generates it from `prefix`)."""

    stack: str
    address: str
    resource_type: str
    scope: tuple[str, ...]
    name: str | None
    prefix: str | None


def _region(stack: PlannedStack, change: dict) -> str:
    """The region a planned resource is created in, from the provider it uses.

    The plan names that provider by the stack's own configuration key, having
    followed every module call's `providers` (nested calls too, such as the
    cdn module's waf on aws.us_east_1)."""
    key = config_resource(stack.plan, change).get("provider_config_key", "aws")
    configs = stack.plan["configuration"]["provider_config"]
    assert key in configs, f"{stack.label}: {change['address']} uses {key}, not the stack's"
    return configs[key]["expressions"]["region"]["constant_value"]


def _parent(stack: PlannedStack, change: dict, argument: str) -> str:
    """The resource a PARENT-scoped name lives in: its value where the plan knows
    it, else the address of the resource the argument refers to."""
    value = (change["change"]["after"] or {}).get(argument)
    if value is not None:
        return str(value)
    references = references_of(config_resource(stack.plan, change).get("expressions", {}), argument)
    assert references, (
        f"{stack.label}: {change['address']}.{argument} is neither known nor a reference"
    )
    return f"{stack.label}:{change.get('module_address') or ''}.{references[-1]}"


def created_names(stack: PlannedStack) -> list[CreatedName]:
    """Every name `stack`'s plan creates, with the scope it must be unique in."""
    names = []
    for change in stack.plan["resource_changes"]:
        if change["mode"] != "managed" or "create" not in change["change"]["actions"]:
            continue
        rule = NAMED.get(change["type"])
        if rule is None:
            continue
        after = change["change"]["after"] or {}
        name = after.get(rule.argument)
        prefix = after.get(f"{rule.argument}_prefix")
        if name is None and not prefix:
            assert rule.unknown_because, (
                f"{stack.label}: {change['address']} has no known {rule.argument}"
            )
            continue
        if rule.scope == GLOBAL:
            scope: tuple[str, ...] = (change["type"],)
        elif rule.scope == ACCOUNT:
            scope = (change["type"],)
        elif rule.scope == REGION:
            scope = (change["type"], _region(stack, change))
        else:
            scope = (change["type"], _parent(stack, change, rule.parent))
        if rule.kind:
            scope += (str(after.get(rule.kind)),)
        names.append(
            CreatedName(stack.label, change["address"], change["type"], scope, name, prefix)
        )
    return names


def _platforms(planned: dict[str, PlannedStack]) -> dict[str, list[PlannedStack]]:
    platforms: dict[str, list[PlannedStack]] = defaultdict(list)
    for stack in planned.values():
        platforms[stack.config].append(stack)
    return platforms


def test_every_planned_resource_type_is_classified(planned_platforms):
    types = {
        change["type"]
        for stack in planned_platforms.values()
        for change in stack.plan["resource_changes"]
        if change["mode"] == "managed"
    }
    assert not set(NAMED) & set(UNNAMED)
    unknown = sorted(types - set(NAMED) - set(UNNAMED))
    assert not unknown, (
        f"say how these are named (NAMED) or why they have no name (UNNAMED): {unknown}"
    )


def test_unnamed_types_really_take_no_name(planned_platforms):
    """A type listed as having no name of its own must not have a name argument set."""
    for stack in planned_platforms.values():
        for change in stack.plan["resource_changes"]:
            if change["type"] in UNNAMED and change["mode"] == "managed":
                after = change["change"]["after"] or {}
                set_names = {key: after[key] for key in ("name", "name_prefix") if after.get(key)}
                assert not set_names, f"{stack.label}: {change['address']} is named {set_names}"


def test_names_are_unique_within_their_scope(planned_platforms):
    for config, platform in sorted(_platforms(planned_platforms).items()):
        seen: dict[tuple, CreatedName] = {}
        collisions = []
        count = 0
        for stack in platform:
            for created in created_names(stack):
                if created.name is None:
                    continue  # Terraform makes it unique from the prefix
                count += 1
                key = (*created.scope, created.name)
                if key in seen:
                    first = seen[key]
                    collisions.append(
                        f"{created.name!r} ({created.stack} {created.address} and {first.stack} {first.address})"
                    )
                seen.setdefault(key, created)
        assert count >= 2 * len(platform), f"{config}: only {count} names collected"
        assert not collisions, f"{config}: names created twice in one scope:\n" + "\n".join(
            collisions
        )


def test_names_fit_the_limits_aws_documents(planned_platforms):
    too_long = []
    for stack in planned_platforms.values():
        for created in created_names(stack):
            rule = NAMED[created.resource_type]
            if created.name is not None:
                length = len(created.name)
            else:
                assert created.prefix is not None, "created_names keeps a name or a prefix"
                length = len(created.prefix) + PREFIX_SUFFIX
            if length > rule.limit:
                shown = created.name or f"{created.prefix}<26 generated characters>"
                too_long.append(
                    f"{created.stack} {created.address}: {shown!r} is {length} > {rule.limit} ({rule.source})"
                )
    assert not too_long, "\n".join(too_long)


def test_firewall_logs_go_to_log_groups_waf_accepts(planned_platforms):
    """Every WAF logging configuration's log group is named aws-waf-logs-*."""
    checked = 0
    for stack in planned_platforms.values():
        groups = {
            (change.get("module_address"), change["name"]): (change["change"]["after"] or {}).get(
                "name"
            )
            for change in stack.plan["resource_changes"]
            if change["type"] == "aws_cloudwatch_log_group"
        }
        for change in stack.plan["resource_changes"]:
            if change["type"] != "aws_wafv2_web_acl_logging_configuration":
                continue
            expressions = config_resource(stack.plan, change).get("expressions", {})
            targets = [
                re.sub(r"\[\d+\]$", "", ref)
                for ref in references_of(expressions, "log_destination_configs")
                if ref.startswith("aws_cloudwatch_log_group.") and ref.count(".") == 1
            ]
            assert targets, f"{stack.label}: {change['address']} logs to no log group of its module"
            for target in targets:
                name = groups[(change.get("module_address"), target.split(".")[1])]
                assert name is not None and name.startswith(WAF_LOG_PREFIX), (
                    f"{stack.label}: {change['address']} logs to {name!r}"
                )
                checked += 1
    assert checked >= 2
