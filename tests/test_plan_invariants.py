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
from .planned import PLATFORM_CONFIGS

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
