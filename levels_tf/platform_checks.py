"""What a platform must look like once applied, checked through the AWS API.

The rehearsal applies every stack, then asks AWS itself (not Terraform's
state) whether the platform holds what infra.yaml promises: isolated VPCs,
SSH and database doors, fleets on the baked AMIs, routing, the database,
private buckets, distributions, queues, topics, the function and the
parameters. Each promise is one Check; the caller prints them.

Names come from names.py, and the values around them from context.py, as
the templates see them. Where a module adds a suffix of its own to a name
it is given, the suffix is below, with the module that adds it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from . import context
from .aws import Aws, BucketTaken
from .model import Infra
from .names import app_security_group, group_resource, parameter_prefix, resource_name
from .validation import Config

# Name tags the modules add to the names they are given.
DATABASE_GROUP_SUFFIX = "-db"  # modules/database: the database's security group
SubnetTier = Literal["public", "private", "database"]
SUBNET_TIERS: tuple[SubnetTier, ...] = (
    "public",
    "private",
    "database",
)  # modules/network: the Tier tag of each subnet
ENCRYPTIONS = ("aws:kms", "aws:kms:dsse", "AES256")
OBJECT_CREATED = "s3:ObjectCreated:*"

# Error codes meaning "no such resource", per service.
NO_LOAD_BALANCER = ("LoadBalancerNotFound",)
NO_TARGET_GROUP = ("TargetGroupNotFound",)
NO_TEMPLATE_VERSION = (
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateId.VersionNotFound",
    "InvalidLaunchTemplateId.Malformed",
    "InvalidLaunchTemplateName.NotFoundException",
)
NO_CLUSTER = ("DBClusterNotFoundFault",)
NO_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
NO_LAMBDA = ("ResourceNotFoundException",)
NO_SECRET = ("ResourceNotFoundException",)
NO_ACCESS_CONTROL = ("NoSuchOriginAccessControl",)
NO_BUCKET = ("NoSuchBucket",)


@dataclass(frozen=True)
class Check:
    name: str  # one line saying what must hold, e.g. "production: SSH reaches the bastion only from 203.0.113.0/24"
    passed: bool
    detail: str  # evidence when passed is False (what was found instead); may be "" when passed


def check_platform(aws: Aws, config: Config, amis: dict[str, str]) -> list[Check]:
    """Check the applied platform of `config` through the AWS API at `aws`.

    `amis` maps each image name to the AMI id its bake recorded (images.lock);
    every fleet of that image must run it. Returns one Check per promise, in
    this order: per VPC group its VPC and subnets, the isolation between
    groups (with two or more), its VPC endpoints, the bastion's, application and database
    security groups, the load balancer's listeners, the Aurora cluster; per
    environment each fleet (bounds, health checks, launch template version
    and its AMI), each web service's routing rules, every bucket (private,
    encrypted, versioned as configured; the load balancer log buckets too),
    the CloudFront distribution's origin access, queues and their dead-letter
    queues, topic subscriptions, functions and their S3 trigger, and the
    parameters or secrets under each prefix.

    A missing resource never raises: its check fails, and its detail says what
    was found instead. An AWS error (unreachable endpoint, access denied,
    anything but "not found") raises the AwsError of levels_tf.aws.
    """
    reader = _Reader(aws)
    infra = config.infra
    groups = list(infra.vpc_groups)
    environments = infra.all_environments
    checks: list[Check] = []
    for group in groups:
        checks.extend(_network(reader, context.group_infra(config, group), group))
    for group in groups:
        checks.extend(endpoint_checks(aws, context.group_infra(config, group), group, reader))
    if len(groups) > 1:
        checks.append(_isolation(reader, config, groups))
    for group in groups:
        checks.extend(_security(reader, config, group))
    for group in groups:
        checks.extend(_load_balancer(reader, context.group_infra(config, group), group))
    for group in groups:
        checks.extend(_database(reader, context.group_infra(config, group), group))
    for env in environments:
        checks.extend(_fleets(reader, config.environments[env], env, amis))
    for env in environments:
        checks.extend(_routing(reader, config.environments[env], env))
    for group in groups:
        checks.extend(_group_buckets(reader, context.group_infra(config, group), group))
    for env in environments:
        checks.extend(_buckets(reader, config.environments[env], env))
    for env in environments:
        checks.extend(_cdn(reader, config.environments[env], env))
    for env in environments:
        checks.extend(_messaging(reader, config.environments[env], env))
    for env in environments:
        checks.extend(_functions(reader, config.environments[env], env))
    for env in environments:
        checks.extend(_parameters(reader, config.environments[env], env))
    return checks


# -- reading AWS, each thing once ---------------------------------------------------------


class _Reader:
    """The AWS reads the checks share, each made once."""

    def __init__(self, aws: Aws):
        self.aws = aws
        self._cache: dict[tuple[Any, ...], Any] = {}

    def once(self, key: tuple[Any, ...], read: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = read()
        return self._cache[key]

    def vpcs(self, name: str) -> list[dict[str, Any]]:
        """The VPCs whose Name tag is `name`."""
        return self.once(
            ("vpcs", name),
            lambda: self.aws.read_all(
                "ec2", "describe_vpcs", "Vpcs", Filters=[{"Name": "tag:Name", "Values": [name]}]
            ),
        )

    def in_vpc(self, operation: str, key: str, vpc_id: str) -> list[dict[str, Any]]:
        return self.once(
            (operation, vpc_id),
            lambda: self.aws.read_all(
                "ec2", operation, key, Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
            ),
        )

    def security_groups(self, vpc_id: str, name: str) -> list[dict[str, Any]]:
        """The security groups of VPC `vpc_id` whose Name tag is `name`."""
        return [
            group
            for group in self.in_vpc("describe_security_groups", "SecurityGroups", vpc_id)
            if _name_tag(group) == name
        ]

    def auto_scaling_groups(self, name: str) -> list[dict[str, Any]]:
        """The Auto Scaling groups whose Name tag is `name`."""
        every = self.once(
            ("asgs",),
            lambda: self.aws.read_all(
                "autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups"
            ),
        )
        return [group for group in every if _name_tag(group) == name]

    def load_balancer(self, name: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            answer = self.aws.read(
                "elbv2", "describe_load_balancers", missing=NO_LOAD_BALANCER, Names=[name]
            )
            found = (answer or {}).get("LoadBalancers") or []
            return found[0] if found else None

        return self.once(("lb", name), read)

    def listeners(self, load_balancer_arn: str) -> list[dict[str, Any]]:
        return self.once(
            ("listeners", load_balancer_arn),
            lambda: self.aws.read_all(
                "elbv2", "describe_listeners", "Listeners", LoadBalancerArn=load_balancer_arn
            ),
        )

    def rules(self, listener_arn: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            rules: list[dict[str, Any]] = []
            request: dict[str, Any] = {"ListenerArn": listener_arn}
            while True:  # DescribeRules pages by marker, but botocore has no paginator for it
                page = self.aws.read("elbv2", "describe_rules", **request) or {}
                rules.extend(page.get("Rules") or [])
                if not page.get("NextMarker"):
                    return rules
                request["Marker"] = page["NextMarker"]

        return self.once(("rules", listener_arn), read)

    def target_group_arn(self, name: str) -> str | None:
        def read() -> str | None:
            answer = self.aws.read(
                "elbv2", "describe_target_groups", missing=NO_TARGET_GROUP, Names=[name]
            )
            found = (answer or {}).get("TargetGroups") or []
            return found[0]["TargetGroupArn"] if found else None

        return self.once(("tg", name), read)

    def queue(self, name: str) -> dict[str, str] | None:
        """The attributes of queue `name` (with its URL under "url"), or None."""

        def read() -> dict[str, str] | None:
            found = self.aws.read("sqs", "get_queue_url", missing=NO_QUEUE, QueueName=name)
            if not found:
                return None
            url = found["QueueUrl"]
            answer = self.aws.read(
                "sqs",
                "get_queue_attributes",
                missing=NO_QUEUE,
                QueueUrl=url,
                AttributeNames=["All"],
            )
            if answer is None:
                return None
            return {**(answer.get("Attributes") or {}), "url": url}

        return self.once(("queue", name), read)

    def topics(self) -> list[str]:
        return self.once(
            ("topics",),
            lambda: [t["TopicArn"] for t in self.aws.read_all("sns", "list_topics", "Topics")],
        )

    def distributions(self) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            request: dict[str, Any] = {}
            while True:  # the list is under DistributionList, which read_all cannot reach
                page = (self.aws.read("cloudfront", "list_distributions", **request) or {}).get(
                    "DistributionList"
                ) or {}
                items.extend(page.get("Items") or [])
                if not page.get("IsTruncated"):
                    return items
                request["Marker"] = page["NextMarker"]

        return self.once(("distributions",), read)

    def account(self) -> str:
        return self.once(("account",), lambda: self.aws.identity().account)


def _name_tag(resource: dict[str, Any]) -> str | None:
    for tag in resource.get("Tags") or []:
        if tag.get("Key") == "Name":
            return tag.get("Value")
    return None


def _tag(resource: dict[str, Any], key: str) -> str | None:
    return next(
        (tag.get("Value") for tag in resource.get("Tags") or [] if tag.get("Key") == key), None
    )


def _one(found: list[dict[str, Any]], what: str) -> tuple[dict[str, Any] | None, str]:
    """The single item of `found`, or None and why not."""
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, f"no {what}"
    return None, f"{len(found)} of {what}, expected one"


def _check(name: str, problems: list[str], passed_detail: str = "") -> Check:
    return Check(name, not problems, "; ".join(problems) if problems else passed_detail)


# -- 1. networks ---------------------------------------------------------------------------


def _group_vpc(reader: _Reader, infra: Infra, group: str) -> tuple[dict[str, Any] | None, str]:
    name = group_resource(infra, group)
    return _one(reader.vpcs(name), f"VPC named {name}")


def _network(reader: _Reader, infra: Infra, group: str) -> list[Check]:
    network = context.network(infra, group)
    zones = network["zones"]
    vpc_name = f"{group}: VPC {network['name']} has CIDR {network['cidr']}"
    subnets_name = f"{group}: public, private and database subnets in each of its {len(zones)} zones ({', '.join(zones)})"
    vpc, why = _group_vpc(reader, infra, group)
    if vpc is None:
        return [Check(vpc_name, False, why), Check(subnets_name, False, why)]
    checks = [
        _check(
            vpc_name,
            []
            if vpc["CidrBlock"] == network["cidr"]
            else [f"{vpc['VpcId']} has {vpc['CidrBlock']}"],
        )
    ]
    subnets = reader.in_vpc("describe_subnets", "Subnets", vpc["VpcId"])
    problems = []
    for tier in SUBNET_TIERS:
        found = [
            (subnet["AvailabilityZone"], subnet["CidrBlock"])
            for subnet in subnets
            if _tag(subnet, "Tier") == tier
        ]
        expected = {(zone, spec[tier]) for zone, spec in zones.items()}
        found_zones = [zone for zone, _ in found]
        if len(found) != len(zones):
            problems.append(f"{len(found)} {tier} subnets, expected {len(zones)}")
        repeated = sorted({zone for zone in found_zones if found_zones.count(zone) > 1})
        if repeated:
            problems.append(f"{tier} subnets share zones {', '.join(repeated)}")
        for zone, cidr in sorted(expected - set(found)):
            problems.append(f"no {tier} subnet {cidr} in {zone}")
        for zone, cidr in sorted(set(found) - expected):
            problems.append(f"unexpected {tier} subnet {cidr} in {zone}")
    checks.append(_check(subnets_name, problems))
    return checks


def endpoint_checks(
    aws: Aws, infra: Infra, group: str, reader: _Reader | None = None
) -> list[Check]:
    """VPC group `group`'s endpoints, read through `aws`: the S3 gateway
    endpoint on the route tables of the public and private tiers and not the
    database tier's; each interface endpoint the group has (none is a check
    too) with private DNS in the private subnets of its endpoint zones, and no
    other. Two Checks."""
    reader = reader or _Reader(aws)
    network = context.network(infra, group)
    services = network["interface_endpoints"]
    gateway_name = f"{group}: S3 is reached through a gateway endpoint on the public and private route tables, not the database's"
    if services:
        listed = ", ".join(services)
        zones = ", ".join(network["endpoint_zones"])
        interface_name = f"{group}: interface endpoints for {listed}, with private DNS, in the private subnets of {zones}"
    else:
        interface_name = f"{group}: no interface endpoint (none is chosen)"
    vpc, why = _group_vpc(reader, infra, group)
    if vpc is None:
        return [Check(gateway_name, False, why), Check(interface_name, False, why)]
    endpoints = reader.in_vpc("describe_vpc_endpoints", "VpcEndpoints", vpc["VpcId"])
    endpoints = [e for e in endpoints if e.get("State", "").lower() not in ("deleted", "deleting")]
    tables = reader.in_vpc("describe_route_tables", "RouteTables", vpc["VpcId"])
    tiers: dict[str, set[str]] = {tier: set() for tier in SUBNET_TIERS}
    for table in tables:
        tier = _tag(table, "Tier")
        if tier in tiers:
            tiers[tier].add(table["RouteTableId"])
    s3_service = f"com.amazonaws.{infra.region}.s3"
    gateways = [
        e
        for e in endpoints
        if e.get("ServiceName") == s3_service and e.get("VpcEndpointType") == "Gateway"
    ]
    problems = []
    if len(gateways) != 1:
        problems.append(f"{len(gateways)} S3 gateway endpoints in {vpc['VpcId']}, expected 1")
    else:
        routed = set(gateways[0].get("RouteTableIds") or [])
        expected = tiers["public"] | tiers["private"]
        problems += [f"not on route table {t}" for t in sorted(expected - routed)]
        problems += [f"on the database route table {t}" for t in sorted(routed & tiers["database"])]
        problems += [
            f"on route table {t} of no public or private tier"
            for t in sorted(routed - expected - tiers["database"])
        ]
    checks = [_check(gateway_name, problems)]
    subnets = reader.in_vpc("describe_subnets", "Subnets", vpc["VpcId"])
    private = {
        subnet["AvailabilityZone"]: subnet["SubnetId"]
        for subnet in subnets
        if _tag(subnet, "Tier") == "private"
    }
    expected_subnets = {
        private.get(zone, f"(no private subnet in {zone})") for zone in network["endpoint_zones"]
    }
    prefix = f"com.amazonaws.{infra.region}."
    found = {
        e["ServiceName"].removeprefix(prefix): e
        for e in endpoints
        if e.get("VpcEndpointType") == "Interface"
    }
    problems = [
        f"no interface endpoint for {service}" for service in services if service not in found
    ]
    problems += [
        f"an interface endpoint for {service} nobody chose"
        for service in sorted(set(found) - set(services))
    ]
    for service in services:
        endpoint = found.get(service)
        if endpoint is None:
            continue
        if not endpoint.get("PrivateDnsEnabled"):
            problems.append(f"{service} ({endpoint['VpcEndpointId']}) has no private DNS")
        subnet_ids = set(endpoint.get("SubnetIds") or [])
        if subnet_ids != expected_subnets:
            problems.append(
                f"{service} is in subnets {', '.join(sorted(subnet_ids)) or 'none'}, expected {', '.join(sorted(expected_subnets))}"
            )
    checks.append(_check(interface_name, problems))
    return checks


def _isolation(reader: _Reader, config: Config, groups: list[str]) -> Check:
    name = f"VPC groups {', '.join(groups)} are isolated: no peering connection and no route between them"
    vpcs: dict[str, dict[str, Any]] = {}
    problems = []
    for group in groups:
        vpc, why = _group_vpc(reader, context.group_infra(config, group), group)
        if vpc is None:
            problems.append(f"{group}: {why}")
        else:
            vpcs[group] = vpc
    by_id = {vpc["VpcId"]: group for group, vpc in vpcs.items()}
    peerings = reader.aws.read_all(
        "ec2", "describe_vpc_peering_connections", "VpcPeeringConnections"
    )
    for peering in peerings:
        ends = {
            peering.get("RequesterVpcInfo", {}).get("VpcId"),
            peering.get("AccepterVpcInfo", {}).get("VpcId"),
        }
        state = peering.get("Status", {}).get("Code", "")
        if len(ends & set(by_id)) == 2 and state not in (
            "deleted",
            "rejected",
            "failed",
            "expired",
        ):
            between = " and ".join(sorted(by_id[end] for end in ends if end))
            problems.append(
                f"peering {peering['VpcPeeringConnectionId']} ({state}) joins {between}"
            )
    for group, vpc in vpcs.items():
        others = {
            other: ipaddress.ip_network(found["CidrBlock"])
            for other, found in vpcs.items()
            if other != group
        }
        for table in reader.in_vpc("describe_route_tables", "RouteTables", vpc["VpcId"]):
            for route in table.get("Routes") or []:
                if route.get("GatewayId") == "local":
                    continue
                via = route.get("VpcPeeringConnectionId") or route.get("TransitGatewayId")
                destination = route.get("DestinationCidrBlock")
                block = ipaddress.ip_network(destination, strict=False) if destination else None
                # The default route (to the internet or a NAT gateway) covers every
                # address; only a narrower one aims at another group.
                reaches = [
                    other
                    for other, cidr in others.items()
                    if block and block.prefixlen and block.overlaps(cidr)
                ]
                if via or reaches:
                    target = f" to {', '.join(reaches)}" if reaches else ""
                    problems.append(
                        f"{group}: route table {table['RouteTableId']} routes {destination or route.get('DestinationPrefixListId')}"
                        f"{target} via {via or _route_target(route)}"
                    )
    return _check(name, problems)


def _route_target(route: dict[str, Any]) -> str:
    for key in (
        "GatewayId",
        "NatGatewayId",
        "NetworkInterfaceId",
        "InstanceId",
        "VpcPeeringConnectionId",
        "TransitGatewayId",
    ):
        if route.get(key):
            return str(route[key])
    return "?"


# -- 2. security groups --------------------------------------------------------------------


def _rules(group: dict[str, Any]) -> set[tuple[str, int, int, str]]:
    """The ingress rules of a security group, one per source: (protocol, from, to, source)."""
    rules = set()
    for permission in group.get("IpPermissions") or []:
        protocol = str(permission.get("IpProtocol", "-1"))
        low = int(permission.get("FromPort", -1)) if protocol != "-1" else 0
        high = int(permission.get("ToPort", -1)) if protocol != "-1" else 65535
        sources = (
            [r["CidrIp"] for r in permission.get("IpRanges") or []]
            + [r["CidrIpv6"] for r in permission.get("Ipv6Ranges") or []]
            + [r["GroupId"] for r in permission.get("UserIdGroupPairs") or []]
            + [r["PrefixListId"] for r in permission.get("PrefixListIds") or []]
        )
        for source in sources:
            rules.add((protocol, low, high, source))
    return rules


def _rule_text(rule: tuple[str, int, int, str], names: dict[str, str] | None = None) -> str:
    protocol, low, high, source = rule
    protocol = "all traffic" if protocol == "-1" else protocol
    ports = "" if protocol == "all traffic" else (f" {low}" if low == high else f" {low}-{high}")
    return f"{protocol}{ports} from {(names or {}).get(source, source)}"


def _compare(found: set, expected: set, names: dict[str, str] | None = None) -> list[str]:
    problems = [f"also admits {_rule_text(rule, names)}" for rule in sorted(found - expected)]
    problems += [f"does not admit {_rule_text(rule, names)}" for rule in sorted(expected - found)]
    return problems


def _admits_ssh(rule: tuple[str, int, int, str]) -> bool:
    protocol, low, high, _ = rule
    return protocol == "-1" or (protocol in ("tcp", "6") and low <= 22 <= high)


def _security(reader: _Reader, config: Config, group: str) -> list[Check]:
    infra = context.group_infra(config, group)
    environments = infra.vpc_groups[group].environments
    access = context.access(infra, group)
    checks = []
    vpc, why = _group_vpc(reader, infra, group)
    bastion_id: str | None = None
    bastion_why = ""
    names: dict[str, str] = {}
    if access["bastion"]:
        bastion = access["bastion"]
        name = f"{group}: SSH reaches the bastion only from {', '.join(bastion['allowed_cidrs'])}"
        if vpc is None:
            found, bastion_why = None, why
        else:
            found, bastion_why = _one(
                reader.security_groups(vpc["VpcId"], bastion["name"]),
                f"security group named {bastion['name']}",
            )
        if found is None:
            checks.append(Check(name, False, bastion_why))
        else:
            bastion_id = found["GroupId"]
            names[bastion_id] = f"the bastion ({bastion_id})"
            expected = {("tcp", 22, 22, cidr) for cidr in bastion["allowed_cidrs"]}
            checks.append(_check(name, _compare(_rules(found), expected)))
    app_ids: dict[str, str] = {}
    for env in environments:
        app_name = app_security_group(infra, env)
        env_infra = config.environments[env]
        if access["bastion"]:
            name = (
                f"{env}: SSH reaches its application servers only from the bastion's security group"
            )
        else:
            name = f"{env}: nothing reaches its application servers by SSH (no bastion)"
        if vpc is None:
            checks.append(Check(name, False, why))
            continue
        found, missing = _one(
            reader.security_groups(vpc["VpcId"], app_name), f"security group named {app_name}"
        )
        if found is None:
            checks.append(Check(name, False, missing))
            continue
        app_ids[env] = found["GroupId"]
        names[found["GroupId"]] = f"{env}'s application group ({found['GroupId']})"
        if access["bastion"] and bastion_id is None:
            checks.append(Check(name, False, f"the bastion's security group: {bastion_why}"))
            continue
        expected = {("tcp", 22, 22, bastion_id)} if bastion_id else set()
        problems = [f"{app_name} {problem}" for problem in _compare(_rules(found), expected, names)]
        # A fleet's instances carry its own group too: none of those may open SSH wider.
        for service in env_infra.services:
            fleet = resource_name(env_infra, env, service)
            for own in reader.security_groups(vpc["VpcId"], fleet):
                for rule in sorted(_rules(own)):
                    if _admits_ssh(rule) and rule[3] != bastion_id:
                        problems.append(
                            f"{fleet}'s group {own['GroupId']} admits {_rule_text(rule, names)}"
                        )
        checks.append(_check(name, problems))
    database = context.database(infra, group)
    if database:
        port = context.network(infra, group)["database_port"]
        name = f"{group}: the database admits port {port} only from the application security groups of {', '.join(environments)}"
        db_group = database["name"] + DATABASE_GROUP_SUFFIX
        if vpc is None:
            checks.append(Check(name, False, why))
        else:
            found, missing = _one(
                reader.security_groups(vpc["VpcId"], db_group), f"security group named {db_group}"
            )
            if found is None:
                checks.append(Check(name, False, missing))
            else:
                expected = {("tcp", port, port, group_id) for group_id in app_ids.values()}
                problems = _compare(_rules(found), expected, names)
                problems += [
                    f"no application group of {env} to admit"
                    for env in environments
                    if env not in app_ids
                ]
                checks.append(_check(name, problems))
    return checks


# -- 3. fleets -----------------------------------------------------------------------------


def _fleets(reader: _Reader, infra: Infra, env: str, amis: dict[str, str]) -> list[Check]:
    checks = []
    for service, spec in context.services(infra, env, amis.get).items():
        fleet = resource_name(infra, env, service)
        scaling = spec["scaling"]
        health = "ELB" if spec["port"] is not None else "EC2"
        ami = amis.get(spec["image"])
        name = (
            f"{env}: fleet {fleet} keeps {scaling['min']} to {scaling['max']} instances (desired {scaling['desired']}), "
            f"{health} health checks, a launch template version with image {spec['image']}'s baked AMI {ami or '(none recorded)'}"
        )
        found, why = _one(reader.auto_scaling_groups(fleet), f"Auto Scaling group named {fleet}")
        if found is None:
            checks.append(Check(name, False, why))
            continue
        group = found["AutoScalingGroupName"]
        problems = []
        for field, expected in (
            ("MinSize", scaling["min"]),
            ("MaxSize", scaling["max"]),
            ("DesiredCapacity", scaling["desired"]),
        ):
            if found.get(field) != expected:
                problems.append(f"{field} is {found.get(field)}, expected {expected}")
        if found.get("HealthCheckType") != health:
            problems.append(f"health check type {found.get('HealthCheckType')}, expected {health}")
        if spec["port"] is not None:
            target_group = reader.target_group_arn(spec["short_name"])
            if target_group is None:
                problems.append(f"no target group named {spec['short_name']}")
            elif target_group not in (found.get("TargetGroupARNs") or []):
                problems.append(f"not registered with target group {spec['short_name']}")
        version_detail = ""
        if not ami:
            problems.append(f"images.lock records no AMI for image {spec['image']}")
        template = found.get("LaunchTemplate") or (
            (found.get("MixedInstancesPolicy") or {})
            .get("LaunchTemplate", {})
            .get("LaunchTemplateSpecification")
        )
        if not template:
            problems.append("no launch template")
        else:
            version = str(template.get("Version") or "$Default")
            label = template.get("LaunchTemplateName") or template.get("LaunchTemplateId")
            if not version.isdigit():
                problems.append(f"follows {version} of {label}, not a fixed version")
            else:
                selector = (
                    {"LaunchTemplateId": template["LaunchTemplateId"]}
                    if template.get("LaunchTemplateId")
                    else {"LaunchTemplateName": template["LaunchTemplateName"]}
                )
                answer = reader.aws.read(
                    "ec2",
                    "describe_launch_template_versions",
                    missing=NO_TEMPLATE_VERSION,
                    Versions=[version],
                    **selector,
                )
                versions = (answer or {}).get("LaunchTemplateVersions") or []
                if not versions:
                    problems.append(f"uses version {version} of {label}, which does not exist")
                else:
                    image = (versions[0].get("LaunchTemplateData") or {}).get("ImageId")
                    version_detail = (
                        f"{group} runs launch template {label} version {version}, {image}"
                    )
                    if ami and image != ami:
                        problems.append(f"version {version} of {label} runs {image}, not {ami}")
        checks.append(
            Check(
                name,
                not problems,
                "; ".join([*problems, version_detail] if version_detail else problems),
            )
        )
    return checks


# -- 4. load balancers and routing -------------------------------------------------------


def _https_listener(listeners: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((item for item in listeners if item.get("Port") == 443), None)


def _load_balancer(reader: _Reader, infra: Infra, group: str) -> list[Check]:
    settings = context.access(infra, group)["load_balancer"]
    if not settings:
        return []
    lb_name = settings["name"]
    name = (
        f"{group}: load balancer {lb_name} listens on HTTPS 443 with {settings['ssl_policy']} "
        "and redirects HTTP 80 to HTTPS"
    )
    found = reader.load_balancer(lb_name)
    if found is None:
        return [Check(name, False, f"no load balancer named {lb_name}")]
    listeners = reader.listeners(found["LoadBalancerArn"])
    problems = []
    https = _https_listener(listeners)
    if https is None:
        problems.append("no listener on port 443")
    else:
        if https.get("Protocol") != "HTTPS":
            problems.append(f"port 443 speaks {https.get('Protocol')}, not HTTPS")
        if https.get("SslPolicy") != settings["ssl_policy"]:
            problems.append(f"port 443 has TLS policy {https.get('SslPolicy')}")
    http = next((item for item in listeners if item.get("Port") == 80), None)
    if http is None:
        problems.append("no listener on port 80")
    else:
        actions = http.get("DefaultActions") or []
        redirect = next(
            (a.get("RedirectConfig") or {} for a in actions if a.get("Type") == "redirect"), None
        )
        if redirect is None:
            problems.append(
                f"port 80 does {', '.join(a.get('Type', '?') for a in actions) or 'nothing'}, not a redirect"
            )
        elif redirect.get("Protocol") != "HTTPS" or str(redirect.get("Port")) != "443":
            problems.append(
                f"port 80 redirects to {redirect.get('Protocol')} port {redirect.get('Port')}"
            )
    others = sorted(
        str(item.get("Port")) for item in listeners if item.get("Port") not in (80, 443)
    )
    if others:
        problems.append(f"also listens on {', '.join(others)}")
    return [_check(name, problems)]


def _condition(rule: dict[str, Any], field: str) -> list[str]:
    configs = {"path-pattern": "PathPatternConfig", "host-header": "HostHeaderConfig"}
    values: list[str] = []
    for condition in rule.get("Conditions") or []:
        if condition.get("Field") == field:
            values += (
                (condition.get(configs[field]) or {}).get("Values") or condition.get("Values") or []
            )
    return sorted(set(values))


def _forwards_to(rule: dict[str, Any]) -> set[str]:
    targets = set()
    for action in rule.get("Actions") or []:
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            targets.add(action["TargetGroupArn"])
        for item in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            targets.add(item["TargetGroupArn"])
    return targets


def _routing(reader: _Reader, infra: Infra, env: str) -> list[Check]:
    group = infra.group_of(env)
    settings = context.access(infra, group)["load_balancer"]
    checks = []
    for service, spec in context.services(infra, env, lambda image: None).items():
        if not spec["routes"]:
            continue
        hosts = sorted({host for route in spec["routes"].values() for host in route["hosts"]})
        paths = [path for route in spec["routes"].values() for path in route["paths"]]
        name = (
            f"{env}: {', '.join(paths)} on {', '.join(hosts) or 'any host'} forward to {service}'s target group "
            f"{spec['short_name']}"
        )
        found = reader.load_balancer(settings["name"]) if settings else None
        if settings is None or found is None:
            checks.append(
                Check(
                    name, False, f"no load balancer named {settings['name'] if settings else '?'}"
                )
            )
            continue
        https = _https_listener(reader.listeners(found["LoadBalancerArn"]))
        if https is None:
            checks.append(Check(name, False, f"{settings['name']} has no listener on port 443"))
            continue
        target_group = reader.target_group_arn(spec["short_name"])
        rules = reader.rules(https["ListenerArn"])
        problems = [] if target_group else [f"no target group named {spec['short_name']}"]
        for path, route in spec["routes"].items():
            matching = [
                rule
                for rule in rules
                if _condition(rule, "path-pattern") == sorted(route["paths"])
                and _condition(rule, "host-header") == sorted(route["hosts"])
            ]
            where = f"{path} on {', '.join(route['hosts']) or 'any host'}"
            if not matching:
                problems.append(f"no rule for {where}")
            elif target_group and not any(target_group in _forwards_to(rule) for rule in matching):
                targets = sorted(
                    t.split("/")[-2] if "/" in t else t
                    for rule in matching
                    for t in _forwards_to(rule)
                )
                problems.append(
                    f"the rule for {where} forwards to {', '.join(targets) or 'no target group'}"
                )
        checks.append(_check(name, problems))
    return checks


# -- 5. database -----------------------------------------------------------------------


def _database(reader: _Reader, infra: Infra, group: str) -> list[Check]:
    database = context.database(infra, group)
    if not database:
        return []
    cluster_id = database["name"]
    replicas = database["replicas"]
    name = f"{group}: Aurora cluster {cluster_id} has a writer and {replicas} reader{'s' if replicas != 1 else ''}, storage encrypted"
    answer = reader.aws.read(
        "rds", "describe_db_clusters", missing=NO_CLUSTER, DBClusterIdentifier=cluster_id
    )
    clusters = (answer or {}).get("DBClusters") or []
    if not clusters:
        return [Check(name, False, f"no cluster {cluster_id}")]
    cluster = clusters[0]
    members = cluster.get("DBClusterMembers") or []
    writers = [m["DBInstanceIdentifier"] for m in members if m.get("IsClusterWriter")]
    readers = [m["DBInstanceIdentifier"] for m in members if not m.get("IsClusterWriter")]
    problems = []
    if len(writers) != 1:
        problems.append(f"{len(writers)} writers ({', '.join(writers) or 'none'})")
    if len(readers) != replicas:
        problems.append(f"{len(readers)} readers ({', '.join(readers) or 'none'})")
    if not cluster.get("StorageEncrypted"):
        problems.append("storage not encrypted")
    return [_check(name, problems)]


# -- 6. buckets ----------------------------------------------------------------------------


def _bucket(reader: _Reader, owner: str, label: str, bucket: str, versioning: bool) -> Check:
    name = f"{label}: bucket {bucket} is private, encrypted and {'versioned' if versioning else 'not versioned'}"
    aws = reader.aws
    try:
        region = aws.bucket_region(bucket, owner)
    except BucketTaken as exc:  # it exists, but is not ours
        return Check(name, False, str(exc))
    if region is None:
        return Check(name, False, f"no bucket {bucket}")
    problems = []
    block = aws.public_access_block(bucket, owner)
    open_settings = [
        key
        for key in (
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        )
        if not block.get(key)
    ]
    if open_settings:
        problems.append(f"public access not blocked: {', '.join(open_settings)} off")
    encryption = aws.default_encryption(bucket, owner)
    if encryption not in ENCRYPTIONS:
        problems.append(f"default encryption {encryption or 'none'}")
    status = aws.versioning(bucket, owner)
    if versioning and status != "Enabled":
        problems.append(f"versioning {status or 'never enabled'}")
    if not versioning and status == "Enabled":
        problems.append("versioning Enabled, but infra.yaml says versioning: false")
    return _check(name, problems)


def _group_buckets(reader: _Reader, infra: Infra, group: str) -> list[Check]:
    settings = context.access(infra, group)["load_balancer"]
    if not settings:
        return []
    return [_bucket(reader, reader.account(), group, settings["log_bucket_name"], True)]


def _buckets(reader: _Reader, infra: Infra, env: str) -> list[Check]:
    data = context.data(infra, env)
    owner = reader.account()
    checks = [_bucket(reader, owner, env, data["log_bucket"], True)]
    for spec in data["buckets"].values():
        checks.append(_bucket(reader, owner, env, spec["name"], spec["versioning"]))
    return checks


# -- 7. CloudFront -------------------------------------------------------------------------


def _cdn(reader: _Reader, infra: Infra, env: str) -> list[Check]:
    data = context.data(infra, env)
    cdn = data["cdn"]
    if not cdn:
        return []
    buckets = [data["buckets"][origin]["name"] for origin in cdn["origins"]]
    comment = cdn["settings"]["name"]
    name = f"{env}: CloudFront distribution {comment} serves {', '.join(buckets)}"
    control_name = f"{env}: CloudFront distribution {comment} reads each bucket through an origin access control"
    found = [d for d in reader.distributions() if d.get("Comment") == comment]
    distribution, why = _one(found, f"distribution with comment {comment}")
    if distribution is None:
        return [Check(name, False, why), Check(control_name, False, why)]
    origins = (distribution.get("Origins") or {}).get("Items") or []
    missing, problems = [], []
    for bucket in buckets:
        origin = next(
            (o for o in origins if str(o.get("DomainName", "")).startswith(f"{bucket}.s3.")), None
        )
        if origin is None:
            missing.append(f"no origin for {bucket}")
            continue
        control = origin.get("OriginAccessControlId")
        if not control:
            legacy = (origin.get("S3OriginConfig") or {}).get("OriginAccessIdentity")
            problems.append(
                f"{bucket} has no origin access control"
                + (f" (legacy identity {legacy})" if legacy else "")
            )
            continue
        answer = reader.aws.read(
            "cloudfront", "get_origin_access_control", missing=NO_ACCESS_CONTROL, Id=control
        )
        config = ((answer or {}).get("OriginAccessControl") or {}).get(
            "OriginAccessControlConfig"
        ) or {}
        if not answer:
            problems.append(f"{bucket}'s origin access control {control} does not exist")
        elif (
            config.get("OriginAccessControlOriginType") not in (None, "s3")
            or config.get("SigningBehavior") == "never"
        ):
            problems.append(
                f"{bucket}'s origin access control {control} is for {config.get('OriginAccessControlOriginType')}, "
                f"signing {config.get('SigningBehavior')}"
            )
    evidence = f"distribution {distribution.get('Id')}"
    return [_check(name, missing, evidence), _check(control_name, missing + problems, evidence)]


# -- 8. queues and topics ------------------------------------------------------------------


def _messaging(reader: _Reader, infra: Infra, env: str) -> list[Check]:
    data = context.data(infra, env)
    checks = []
    for spec in data["queues"].values():
        queue = spec["name"]
        after = spec["dead_letter_after"]
        name = (
            f"{env}: queue {queue} moves a message to its dead-letter queue after {after} receives"
        )
        found = reader.queue(queue)
        if found is None:
            checks.append(Check(name, False, f"no queue {queue}"))
            continue
        problems = []
        try:
            redrive = json.loads(found.get("RedrivePolicy") or "null")
        except ValueError:
            redrive = None
        if not isinstance(redrive, dict):
            checks.append(Check(name, False, f"{queue} has no redrive policy"))
            continue
        target = str(redrive.get("deadLetterTargetArn") or "")
        dead_letter = target.rsplit(":", 1)[-1]
        if not target:
            problems.append("the redrive policy names no dead-letter queue")
        elif target == found.get("QueueArn"):
            problems.append("the queue is its own dead-letter queue")
        elif reader.queue(dead_letter) is None:
            problems.append(f"its dead-letter queue {dead_letter} does not exist")
        if str(redrive.get("maxReceiveCount")) != str(after):
            problems.append(f"maxReceiveCount is {redrive.get('maxReceiveCount')}")
        checks.append(_check(name, problems, f"dead-letter queue {dead_letter}"))
    for topic_name, topic_values in data["topics"].items():
        topic = topic_values["name"]
        queues = [
            data["queues"][queue]["name"] for queue in data["topic_subscriptions"][topic_name]
        ]
        name = f"{env}: topic {topic} delivers to {'queues ' + ', '.join(queues) if queues else 'no queue'} over sqs"
        arn = next((a for a in reader.topics() if a.rsplit(":", 1)[-1] == topic), None)
        if arn is None:
            checks.append(Check(name, False, f"no topic {topic}"))
            continue
        subscriptions = reader.aws.read_all(
            "sns", "list_subscriptions_by_topic", "Subscriptions", TopicArn=arn
        )
        endpoints = {(s.get("Protocol"), s.get("Endpoint")) for s in subscriptions}
        problems = []
        for queue in queues:
            found = reader.queue(queue)
            if found is None:
                problems.append(f"no queue {queue} to deliver to")
            elif ("sqs", found.get("QueueArn")) not in endpoints:
                problems.append(f"no sqs subscription of {queue}")
        if problems and subscriptions:
            problems.append("found " + ", ".join(f"{p} {e}" for p, e in sorted(endpoints, key=str)))
        checks.append(_check(name, problems))
    return checks


# -- 9. functions --------------------------------------------------------------------------


def _functions(reader: _Reader, infra: Infra, env: str) -> list[Check]:
    data = context.data(infra, env)
    checks = []
    for spec in data["functions"].values():
        function = spec["name"]
        bucket = spec["source_bucket"]
        name = f"{env}: function {function} runs {spec['runtime']} and every new object in {bucket} invokes it"
        answer = reader.aws.read("lambda", "get_function", missing=NO_LAMBDA, FunctionName=function)
        if answer is None:
            checks.append(Check(name, False, f"no function {function}"))
            continue
        configuration = answer.get("Configuration") or {}
        arn = configuration.get("FunctionArn", "")
        problems = []
        if configuration.get("Runtime") != spec["runtime"]:
            problems.append(f"runtime {configuration.get('Runtime')}")
        notification = reader.aws.read(
            "s3", "get_bucket_notification_configuration", missing=NO_BUCKET, Bucket=bucket
        )
        if notification is None:
            problems.append(f"no bucket {bucket}")
        else:
            triggers = [
                t
                for t in notification.get("LambdaFunctionConfigurations") or []
                if str(t.get("LambdaFunctionArn", "")).split(":")[:7] == arn.split(":")[:7]
            ]
            if not triggers:
                problems.append(f"{bucket} notifies no function {function}")
            elif not any(
                event in ("s3:ObjectCreated:*", "s3:*") or event.startswith("s3:ObjectCreated:")
                for t in triggers
                for event in t.get("Events") or []
            ):
                events = sorted({e for t in triggers for e in t.get("Events") or []})
                problems.append(
                    f"{bucket} notifies it of {', '.join(events) or 'no event'}, not of new objects"
                )
            policy = reader.aws.read(
                "lambda", "get_policy", missing=NO_LAMBDA, FunctionName=function
            )
            statements = json.loads((policy or {}).get("Policy") or "{}").get("Statement") or []
            if not any(_lets_s3_invoke(statement, bucket) for statement in statements):
                problems.append(f"its policy lets no s3.amazonaws.com invoke from {bucket}")
        checks.append(_check(name, problems))
    return checks


def _lets_s3_invoke(statement: dict[str, Any], bucket: str) -> bool:
    principal = statement.get("Principal")
    service = principal.get("Service") if isinstance(principal, dict) else principal
    services = service if isinstance(service, list) else [service]
    source = json.dumps(statement.get("Condition") or {})
    return (
        statement.get("Effect") == "Allow"
        and "s3.amazonaws.com" in services
        and f"arn:aws:s3:::{bucket}"
        in source.replace("arn:aws-cn:", "arn:aws:").replace("arn:aws-us-gov:", "arn:aws:")
    )


# -- 10. parameters and secrets --------------------------------------------------------------


def _parameters(reader: _Reader, infra: Infra, env: str) -> list[Check]:
    store = infra.secrets.store
    checks = []
    for prefix_name, prefix in infra.secrets.prefixes.items():
        if not prefix.parameters:
            continue
        path = parameter_prefix(infra, env, prefix_name)
        wanted = [f"{path}/{parameter}" for parameter in prefix.parameters]
        if store == "ssm":
            name = f"{env}: SecureString parameters {', '.join(prefix.parameters)} under {path}/"
            found: dict[str, str] = {}
            for start in range(0, len(wanted), 10):  # GetParameters takes at most 10 names
                answer = (
                    reader.aws.read("ssm", "get_parameters", Names=wanted[start : start + 10]) or {}
                )
                found.update({p["Name"]: p.get("Type", "") for p in answer.get("Parameters") or []})
            problems = [f"no parameter {p}" for p in wanted if p not in found]
            problems += [
                f"{p} is a {found[p]}" for p in wanted if p in found and found[p] != "SecureString"
            ]
        else:
            # Secrets Manager names take no leading slash (modules/parameters).
            name = f"{env}: Secrets Manager secrets {', '.join(prefix.parameters)} under {path.lstrip('/')}/"
            problems = []
            for secret in wanted:
                secret_id = secret.lstrip("/")
                described = reader.aws.read(
                    "secretsmanager", "describe_secret", missing=NO_SECRET, SecretId=secret_id
                )
                if described is None:
                    problems.append(f"no secret {secret_id}")
                elif described.get("DeletedDate"):
                    problems.append(f"secret {secret_id} is scheduled for deletion")
        checks.append(_check(name, problems))
    return checks


@dataclass(frozen=True)
class FleetVersion:
    """What one fleet's Auto Scaling group runs: the launch template version
    (None when the group names none, or "$Latest"), that version's AMI, and
    whether an instance refresh was ever started on it."""

    group: str
    number: int | None
    image_id: str
    refreshing: bool


NO_REFRESHES = ("ValidationError", "InvalidAction", "UnknownOperationException", "NotImplemented")


def fleet_versions(
    aws: Aws, config: Config, image: str, *, refreshes: bool = True
) -> dict[tuple[str, str], FleetVersion]:
    """(environment, service) -> what the group of each fleet running `image` runs now.

    Fleets are found by their Name tag (names.resource_name); a fleet without
    a group is left out. `refreshes=False` does not ask for instance refreshes
    (an emulator without them). AwsError when the API cannot be read."""
    wanted = {
        resource_name(infra, env, service): (env, service)
        for env, infra in config.environments.items()
        for service, spec in infra.services.items()
        if spec.image == image
    }
    found: dict[tuple[str, str], FleetVersion] = {}
    for group in aws.read_all("autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups"):
        fleet = wanted.get(_tag(group, "Name") or "")
        if fleet is None:
            continue
        template = group.get("LaunchTemplate") or {}
        version = str(template.get("Version", ""))
        number = int(version) if version.isdigit() else None
        image_id = ""
        if number is not None:
            answer = aws.read(
                "ec2", "describe_launch_template_versions", missing=NO_TEMPLATE_VERSION,
                LaunchTemplateId=template["LaunchTemplateId"], Versions=[version],
            )  # fmt: skip
            versions = (answer or {}).get("LaunchTemplateVersions") or []
            image_id = (
                versions[0].get("LaunchTemplateData", {}).get("ImageId", "") if versions else ""
            )
        name = group["AutoScalingGroupName"]
        started = False
        if refreshes:
            answer = aws.read(
                "autoscaling",
                "describe_instance_refreshes",
                missing=NO_REFRESHES,
                AutoScalingGroupName=name,
            )
            started = bool((answer or {}).get("InstanceRefreshes"))
        found[fleet] = FleetVersion(name, number, image_id, started)
    return found
