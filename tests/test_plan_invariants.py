"""Security invariants on what Terraform itself resolved: the plan JSON of
every stack of every configuration the tests render (`planned_platforms`).

The HCL invariants (test_security_invariants.py) read expressions; here the
values are resolved: IAM policy JSON decoded, CIDR blocks, bucket names. A
value known only after apply (an ARN in a policy) is left out of the plan
and stays proven by the HCL invariants alone.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any

import pytest

from levels_tf.stacks import stacks
from levels_tf.validation import load_config

from . import secret_scan
from .planned import (
    PLATFORM_CONFIGS,
    Untraceable,
    config_module,
    config_resource,
    module_path,
    references_of,
    trace,
)

# Attributes whose value is a policy document, as the aws provider plans them.
POLICY_ATTRIBUTES = ("policy", "assume_role_policy", "json", "minified_json")


def _values(plan: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(address, type, values) of every resource a plan creates or keeps, and
    of every data source it read while planning."""
    for change in plan.get("resource_changes", []):
        after = change.get("change", {}).get("after")
        if isinstance(after, dict):
            yield change["address"], change["type"], after
    modules = [plan.get("prior_state", {}).get("values", {}).get("root_module", {})]
    while modules:
        module = modules.pop()
        modules.extend(module.get("child_modules", []))
        for resource in module.get("resources", []):
            if resource.get("mode") == "data":
                yield resource["address"], resource["type"], resource.get("values") or {}


def policy_documents(plan: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(address, resource type, decoded document) of every policy a plan resolved."""
    for address, kind, values in _values(plan):
        for attribute in POLICY_ATTRIBUTES:
            text = values.get(attribute)
            if isinstance(text, str) and text.lstrip().startswith("{"):
                document = json.loads(text)
                if isinstance(document, dict) and "Statement" in document:
                    yield f"{address}.{attribute}", kind, document


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _wide(action: str) -> bool:
    return action in ("*", "*:*") or (action.endswith(":*") and action.count(":") == 1)


def wildcard_problems(plan: dict[str, Any]) -> list[str]:
    """Allow statements granting a whole service (or NotAction) on every
    resource (or NotResource). A key policy's "*" resource is the key
    itself, so there only non-KMS actions count."""
    problems = []
    for where, kind, document in policy_documents(plan):
        statements = document["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            if statement.get("Effect") != "Allow":
                continue
            actions = _listed(statement.get("Action"))
            if kind == "aws_kms_key":
                if not actions or not all(a.startswith("kms:") for a in actions):
                    problems.append(f"{where}: a key policy grants {actions}")
                continue
            wide_action = any(map(_wide, actions)) or "NotAction" in statement
            wide_resource = "*" in _listed(statement.get("Resource")) or "NotResource" in statement
            if wide_action and wide_resource:
                problems.append(f"{where}: {actions} on every resource")
    return problems


def _group_of(config: str) -> dict[str, str]:
    """{stack name: VPC group} of configuration `config`."""
    infra = load_config(PLATFORM_CONFIGS[config]).infra
    return {stack.name: stack.group for stack in stacks(infra)}


def network_problems(plans: dict[str, dict[str, Any]], groups: dict[str, str]) -> list[str]:
    """The VPC groups of one configuration: their CIDR blocks do not overlap,
    every subnet lies in its own VPC, no route leads through a peering or a
    transit gateway or towards another group's addresses, and no bucket
    name is used twice. `plans`: {stack: plan JSON}; `groups`: {stack: group}."""
    problems = []
    vpcs: dict[str, ipaddress.IPv4Network] = {}
    buckets: dict[str, str] = {}
    for stack, plan in plans.items():
        group = groups[stack]
        for _, kind, values in _values(plan):
            if kind == "aws_vpc" and values.get("cidr_block"):
                vpcs[group] = ipaddress.IPv4Network(values["cidr_block"])
            if kind == "aws_s3_bucket" and values.get("bucket"):
                name = values["bucket"]
                if name in buckets:
                    problems.append(f"{stack}: bucket {name} also in {buckets[name]}")
                buckets[name] = stack
    for first, one in vpcs.items():
        for second, two in vpcs.items():
            if first < second and one.overlaps(two):
                problems.append(f"groups {first} ({one}) and {second} ({two}) overlap")
    for stack, plan in plans.items():
        group = groups[stack]
        for address, kind, values in _values(plan):
            subnet = values.get("cidr_block") if kind == "aws_subnet" else None
            if (
                subnet
                and group in vpcs
                and not ipaddress.IPv4Network(subnet).subnet_of(vpcs[group])
            ):
                problems.append(f"{stack}: {address} is outside the group's VPC")
            routes = [values] if kind == "aws_route" else []
            if kind == "aws_route_table":
                routes = list(values.get("route") or [])
            for route in routes:
                for target in ("vpc_peering_connection_id", "transit_gateway_id"):
                    if route.get(target):
                        problems.append(f"{stack}: {address} leads through {target}")
                destination = route.get("destination_cidr_block") or route.get("cidr_block")
                if not destination:
                    continue
                towards = ipaddress.IPv4Network(destination)
                for other, other_cidr in vpcs.items():
                    if other != group and towards.prefixlen and towards.overlaps(other_cidr):
                        problems.append(f"{stack}: {address} leads to group {other}")
    return problems


# What a plan may leave to be known only after apply, which checkov reads as
# missing (levels_tf/skips.py skips those checks on plans only), and the type
# of resource each such value must come from: type -> ((argument path), source type).
AFTER_APPLY = {
    "aws_sqs_queue": ((("kms_master_key_id",), "aws_kms_key"),),
    "aws_sns_topic": ((("kms_master_key_id",), "aws_kms_key"),),
    "aws_cloudwatch_log_group": ((("kms_key_id",), "aws_kms_key"),),
    "aws_ssm_parameter": ((("key_id",), "aws_kms_key"),),
    "aws_secretsmanager_secret": ((("kms_key_id",), "aws_kms_key"),),
    "aws_lambda_function": ((("kms_key_arn",), "aws_kms_key"),),
    "aws_cloudfront_distribution": (
        (("logging_config", "bucket"), "aws_s3_bucket"),
        (("web_acl_id",), "aws_wafv2_web_acl"),
    ),
    "aws_wafv2_web_acl_association": ((("web_acl_arn",), "aws_wafv2_web_acl"),),
}
# The managed rule group that blocks Log4j exploits (checkov CKV2_AWS_47, CKV2_AWS_76).
LOG4J_RULES = "AWSManagedRulesKnownBadInputsRuleSet"


def _at(value: Any, keys: tuple[str, ...]) -> Any:
    """The value at `keys` in a planned object (a nested block is its first element)."""
    for key in keys:
        if isinstance(value, list):
            value = value[0] if value else None
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _configuration_of(plan: dict[str, Any], address: str) -> dict[str, Any]:
    """The configuration block of a resource by its graph address
    (module.a.module.b.aws_wafv2_web_acl.this)."""
    steps = address.split(".")
    path: list[str] = []
    while steps[0] == "module":
        path.append(steps[1])
        steps = steps[2:]
    local = ".".join(steps)
    (found,) = [
        r for r in config_module(plan, tuple(path)).get("resources", []) if r["address"] == local
    ]
    return found


def _blocks_log4j(acl: dict[str, Any]) -> bool:
    """Whether a web ACL's configuration applies the Log4j rule group and lets it block."""
    for rule in acl.get("expressions", {}).get("rule", []):
        statement = _at(rule, ("statement", "managed_rule_group_statement", "name"))
        if (statement or {}).get("constant_value") == LOG4J_RULES and _at(
            rule, ("override_action", "none")
        ) is not None:
            return True
    return False


def after_apply_problems(plan: dict[str, Any]) -> list[str]:
    """Every value of AFTER_APPLY a plan leaves unknown comes from a resource
    of the expected type (traced through module inputs and outputs), and a
    web ACL it names blocks Log4j exploits; a value neither known nor
    unknown is missing."""
    problems = []
    for change in plan.get("resource_changes", []):
        after = change.get("change", {}).get("after")
        if change.get("mode") != "managed" or not isinstance(after, dict):
            continue
        unknown = change["change"].get("after_unknown") or {}
        for keys, source_type in AFTER_APPLY.get(change["type"], ()):
            where = f"{change['address']}.{'.'.join(keys)}"
            if _at(after, keys):
                continue
            if _at(unknown, keys) is not True:
                problems.append(f"{where} is not set")
                continue
            try:
                sources = trace(
                    plan,
                    module_path(change.get("module_address")),
                    references_of(config_resource(plan, change).get("expressions", {}), *keys),
                )
            except Untraceable as error:
                problems.append(f"{where}: {error}")
                continue
            wrong = sorted(s for s in sources if s.split(".")[-2] != source_type)
            if not sources or wrong:
                problems.append(f"{where} comes from {sorted(sources)}, not {source_type}")
            for source in sources - set(wrong):
                if source_type == "aws_wafv2_web_acl" and not _blocks_log4j(
                    _configuration_of(plan, source)
                ):
                    problems.append(f"{where}: {source} does not block with {LOG4J_RULES}")
    return problems


def _every_port(rule: dict[str, Any]) -> bool:
    return str(rule.get("protocol")) in ("-1", "all") or (
        (rule.get("from_port") or 0) <= 1 and (rule.get("to_port") or 0) >= 65535
    )


def network_acl_problems(plan: dict[str, Any]) -> list[str]:
    """A network ACL rule admits every protocol and port only from its own VPC's range."""
    vpcs = {values.get("cidr_block") for _, kind, values in _values(plan) if kind == "aws_vpc"}
    return [
        f"{address} admits every port from {values.get('cidr_block')}"
        for address, kind, values in _values(plan)
        if kind == "aws_network_acl_rule"
        and values.get("egress") is False
        and _every_port(values)
        and values.get("cidr_block") not in vpcs
    ]


def _every_plan(planned_platforms, check, kinds) -> tuple[list[str], int]:
    """The problems `check` finds in every plan, and how many resources of `kinds` they hold."""
    problems: list[str] = []
    count = 0
    for planned in planned_platforms.values():
        problems.extend(f"{planned.label}: {p}" for p in check(planned.plan))
        count += sum(1 for _, kind, _ in _values(planned.plan) if kind in kinds)
    return problems, count


@pytest.mark.terraform
@pytest.mark.slow
def test_values_known_only_after_apply_come_from_the_platforms_own_resources(planned_platforms):
    problems, checked = _every_plan(planned_platforms, after_apply_problems, AFTER_APPLY)
    assert problems == []
    assert checked > 100  # the walk reaches the keys, buckets and web ACLs


@pytest.mark.terraform
@pytest.mark.slow
def test_only_the_vpc_itself_passes_the_network_acls_on_every_port(planned_platforms):
    problems, rules = _every_plan(
        planned_platforms, network_acl_problems, ("aws_network_acl_rule",)
    )
    assert problems == []
    assert rules > 50


@pytest.mark.terraform
@pytest.mark.slow
def test_planned_platforms_keep_the_security_invariants(planned_platforms):
    by_config: dict[str, dict[str, dict[str, Any]]] = {}
    problems: list[str] = []
    documents = 0
    for planned in planned_platforms.values():
        by_config.setdefault(planned.config, {})[planned.name] = planned.plan
        problems.extend(f"{planned.label}: {p}" for p in wildcard_problems(planned.plan))
        documents += sum(1 for _ in policy_documents(planned.plan))
        problems.extend(
            map(str, secret_scan.scan(json.dumps(planned.plan, indent=1), planned.label))
        )
    for config, plans in by_config.items():
        problems.extend(f"{config}: {p}" for p in network_problems(plans, _group_of(config)))
    assert problems == []
    assert documents > 50  # the walk reaches the resolved policies


# -- each check can fail: small plans in the shape `terraform show -json` writes


def _plan(*resources: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "resource_changes": [
            {"address": address, "type": kind, "change": {"after": after}}
            for address, kind, after in resources
        ]
    }


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_wildcard_check_fails_on_a_broken_plan():
    narrow = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}
    endpoint = {"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}
    key = {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    fine = _plan(
        ("aws_iam_role_policy.a", "aws_iam_role_policy", {"policy": _policy(narrow, deny)}),
        ("aws_vpc_endpoint.sqs", "aws_vpc_endpoint", {"policy": _policy(endpoint)}),
        ("aws_kms_key.k", "aws_kms_key", {"policy": _policy(key)}),
    )
    assert wildcard_problems(fine) == []
    for broken in (
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "iam:*"], "Resource": ["*"]},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:*", "NotResource": "arn:aws:ec2:::vpc/x"},
    ):
        plan = _plan(("aws_iam_policy.p", "aws_iam_policy", {"policy": _policy(broken)}))
        assert wildcard_problems(plan), broken
    plan = _plan(("aws_kms_key.k", "aws_kms_key", {"policy": _policy(dict(key, Action="*"))}))
    assert wildcard_problems(plan)


def test_network_check_fails_on_a_broken_plan():
    groups = {"a-shared": "a", "b-shared": "b", "b-env": "b"}

    def platform(b_cidr="10.1.0.0/16", route=None, bucket="x-b-env-data"):
        return {
            "a-shared": _plan(
                ("aws_vpc.this", "aws_vpc", {"cidr_block": "10.0.0.0/16"}),
                ("aws_s3_bucket.this", "aws_s3_bucket", {"bucket": "x-a-logs"}),
            ),
            "b-shared": _plan(
                ("aws_vpc.this", "aws_vpc", {"cidr_block": b_cidr}),
                ("aws_subnet.private", "aws_subnet", {"cidr_block": "10.1.0.0/20"}),
                ("aws_route.out", "aws_route", route or {"destination_cidr_block": "0.0.0.0/0"}),
            ),
            "b-env": _plan(("aws_s3_bucket.this", "aws_s3_bucket", {"bucket": bucket})),
        }

    assert network_problems(platform(), groups) == []
    for broken in (
        platform(b_cidr="10.0.128.0/17"),  # overlaps group a
        platform(b_cidr="10.2.0.0/16"),  # the subnet lies outside its VPC
        platform(route={"destination_cidr_block": "10.0.0.0/16", "gateway_id": "igw-1"}),
        platform(route={"destination_cidr_block": "0.0.0.0/0", "transit_gateway_id": "tgw-1"}),
        platform(bucket="x-a-logs"),
    ):
        assert network_problems(broken, groups)


def _configured(plan: dict[str, Any], *resources: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """`plan` with a root module configuration holding `resources` (address, expressions)."""
    configured = [{"address": address, "expressions": e} for address, e in resources]
    return dict(plan, configuration={"root_module": {"resources": configured}})


def _change(address: str, kind: str, after: dict, unknown: dict) -> dict[str, Any]:
    name = address.split(".")[1]
    change = {"after": after, "after_unknown": unknown}
    return {"address": address, "type": kind, "name": name, "mode": "managed", "change": change}


def test_after_apply_check_fails_on_a_broken_plan():
    queue = "aws_sqs_queue.q"

    def plan(after: dict, unknown: dict, references: list[str], rule: str = LOG4J_RULES):
        acl_rule = {
            "name": {"constant_value": rule},
            "override_action": [{"none": [{}]}],
            "statement": [{"managed_rule_group_statement": [{"name": {"constant_value": rule}}]}],
        }
        return _configured(
            {
                "resource_changes": [
                    _change(queue, "aws_sqs_queue", after, unknown),
                    _change(
                        "aws_wafv2_web_acl_association.a",
                        "aws_wafv2_web_acl_association",
                        {},
                        {"web_acl_arn": True},
                    ),
                ]
            },
            (queue, {"kms_master_key_id": {"references": references}}),
            (
                "aws_wafv2_web_acl_association.a",
                {"web_acl_arn": {"references": ["aws_wafv2_web_acl.w.arn", "aws_wafv2_web_acl.w"]}},
            ),
            ("aws_wafv2_web_acl.w", {"rule": [acl_rule]}),
        )

    key = ["aws_kms_key.k.arn", "aws_kms_key.k"]
    assert after_apply_problems(plan({}, {"kms_master_key_id": True}, key)) == []
    assert after_apply_problems(plan({"kms_master_key_id": "arn:aws:kms:x"}, {}, [])) == []
    for broken in (
        plan({}, {}, key),  # not set at all
        plan({}, {"kms_master_key_id": True}, ["aws_s3_bucket.b.arn", "aws_s3_bucket.b"]),
        plan({}, {"kms_master_key_id": True}, []),  # unknown, from nowhere
        plan({}, {"kms_master_key_id": True}, ["local.key"]),
        plan({}, {"kms_master_key_id": True}, key, rule="AWSManagedRulesCommonRuleSet"),
    ):
        assert after_apply_problems(broken), broken


def test_network_acl_check_fails_on_a_broken_plan():
    def plan(protocol: str, cidr: str, to_port: int = 0):
        rule = {"egress": False, "protocol": protocol, "cidr_block": cidr, "from_port": 0}
        return _plan(
            ("aws_vpc.this", "aws_vpc", {"cidr_block": "10.0.0.0/16"}),
            ("aws_network_acl_rule.r", "aws_network_acl_rule", dict(rule, to_port=to_port)),
        )

    assert network_acl_problems(plan("-1", "10.0.0.0/16")) == []
    assert network_acl_problems(plan("6", "0.0.0.0/0", to_port=443)) == []
    for broken in (
        plan("-1", "0.0.0.0/0"),
        plan("-1", "10.1.0.0/16"),
        plan("6", "0.0.0.0/0", to_port=65535),
    ):
        assert network_acl_problems(broken), broken
