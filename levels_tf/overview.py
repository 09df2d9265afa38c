"""The platform as a person reads it: one description, drawn twice. Pure.

`describe` turns a validated configuration into the VPCs (their zones and
subnet tiers), what each stack contains, the security group rules (who may
reach what, on which port) and the traffic and SSH paths between the parts.
docs/ARCHITECTURE.md (architecture_doc.py) and `levels-tf diagram`
(diagram.py) both draw this description, so they show the same platform.

Every value comes from the builders the templates read (context.py, which
takes its names from names.py and its subnets from subnets.py): the overview
cannot say other than the rendered code. Each rule names the module resource
that creates it (`Rule.resource`), so a test can hold its port to the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import context
from .stacks import ENVIRONMENT, Stack, stacks
from .subnets import TIERS
from .validation import Config

SSH_PORT = 22
HTTPS_PORT = 443
HTTP_PORT = 80
INTERNET = "0.0.0.0/0"

TIER_TITLES = {
    "public": "public subnets",
    "private": "application subnets",
    "database": "database subnets",
}
"""The three subnet tiers of subnets.TIERS, as the overview names them."""

# The parts a link or a rule may name besides fleets and functions.
USERS = "users"
OPERATORS = "operators"
LOAD_BALANCER = "load balancer"
BASTION = "bastion"
DATABASE = "database"
S3_ENDPOINT = "S3 (gateway endpoint)"
AWS_ENDPOINTS = "AWS APIs (interface endpoints)"


@dataclass(frozen=True)
class Tier:
    """One subnet tier of a VPC: `name` is one of subnets.TIERS, `subnets`
    its (zone, CIDR block) pairs in the order of the subnet plan."""

    name: str
    subnets: tuple[tuple[str, str], ...]

    @property
    def title(self) -> str:
        return TIER_TITLES[self.name]


@dataclass(frozen=True)
class Database:
    """A VPC group's Aurora MySQL cluster: the writer's zone and each reader's
    zone (as the database module places them: instance n in zone n modulo
    the zone count), its port, and its capacity in Aurora capacity units
    when it is Serverless v2."""

    name: str
    engine_version: str
    instance_class: str
    writer_zone: str
    reader_zones: tuple[str, ...]
    port: int
    serverless: tuple[float, float] | None


@dataclass(frozen=True)
class Fleet:
    """An Auto Scaling group of one environment; `port` None for a worker."""

    service: str
    name: str
    image: str
    instance_type: str
    port: int | None
    min: int
    max: int
    consumes: tuple[str, ...]
    publishes: tuple[str, ...]


@dataclass(frozen=True)
class Function:
    """A Lambda function started by uploads to `source` (an asset class)."""

    name: str
    function_name: str
    runtime: str
    source: str
    variants: str


@dataclass(frozen=True)
class Environment:
    """One environment's regional services, as its stack creates them.
    Buckets, queues and topics map the name infra.yaml gives to the AWS name."""

    name: str
    group: str
    hostnames: tuple[str, ...]
    fleets: tuple[Fleet, ...]
    buckets: dict[str, str]
    cdn_origins: tuple[str, ...]
    queues: dict[str, str]
    topics: dict[str, str]
    subscriptions: tuple[tuple[str, str], ...]  # (topic, queue)
    functions: tuple[Function, ...]
    parameter_path: str
    secrets_store: str


@dataclass(frozen=True)
class Vpc:
    """A VPC group's network and its shared parts (None where there is none)."""

    group: str
    name: str
    cidr: str
    production: bool
    nat_mode: str
    zones: tuple[str, ...]
    tiers: tuple[Tier, ...]
    bastion: str | None
    admin_cidrs: tuple[str, ...]
    load_balancer: str | None
    database: Database | None
    interface_endpoints: tuple[str, ...]
    environments: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """A security group rule: `source` may reach `target` on `protocol`/`port`
    (a number, or "from-to"). `direction` is the side that carries the rule:
    "ingress" (the target's group admits the source) or "egress" (the
    source's group lets it out). `resource` is the module and resource
    address that creates it, e.g. ("app-access",
    "aws_vpc_security_group_ingress_rule.ssh_from_bastion")."""

    source: str
    target: str
    protocol: str
    port: str
    direction: str
    purpose: str
    resource: tuple[str, str]


@dataclass(frozen=True)
class Link:
    """A path traffic takes, from `source` to `target`, named as the parts of
    the overview are (see `node ids` in architecture_doc.py and diagram.py);
    `ssh`: part of the operators' SSH path."""

    source: str
    target: str
    label: str
    ssh: bool = False


@dataclass(frozen=True)
class StackOverview:
    """What one stack contains (one line per part) and the rules it creates."""

    name: str
    kind: str
    group: str
    environment: str | None
    contents: tuple[str, ...]
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Overview:
    project: str
    region: str
    vpcs: tuple[Vpc, ...]
    environments: tuple[Environment, ...]
    stacks: tuple[StackOverview, ...]
    links: tuple[Link, ...] = field(default=())

    def environment(self, name: str) -> Environment:
        return next(env for env in self.environments if env.name == name)

    def vpc(self, group: str) -> Vpc:
        return next(vpc for vpc in self.vpcs if vpc.group == group)


def describe(config: Config) -> Overview:
    """The overview of a validated configuration: VPCs and environments in
    infra.yaml's order, stacks in dependency order (stacks.stacks)."""
    vpcs = tuple(_vpc(config, group) for group in config.infra.vpc_groups)
    environments = tuple(
        _environment(config, env, group)
        for group, vpc_group in config.infra.vpc_groups.items()
        for env in vpc_group.environments
    )
    by_group = {vpc.group: vpc for vpc in vpcs}
    by_env = {env.name: env for env in environments}
    stack_overviews = tuple(
        _stack(config, stack, by_group[stack.group], by_env.get(stack.environment or ""))
        for stack in stacks(config.infra)
    )
    links = tuple(
        link for vpc in vpcs for link in _links(vpc, [by_env[e] for e in vpc.environments])
    )
    return Overview(
        config.infra.project, config.infra.region, vpcs, environments, stack_overviews, links
    )


def _vpc(config: Config, group: str) -> Vpc:
    infra = context.group_infra(config, group)
    network = context.network(infra, group)
    access = context.access(infra, group)
    database = context.database(infra, group)
    zones = tuple(network["zones"])
    tiers = tuple(
        Tier(tier, tuple((zone, values[tier]) for zone, values in network["zones"].items()))
        for tier in ("public", "private", "database")
    )
    assert {tier.name for tier in tiers} == set(TIERS)
    db: Database | None = None
    if database is not None:
        instances = [zones[n % len(zones)] for n in range(database["replicas"] + 1)]
        serverless = database["serverless"]
        db = Database(
            database["name"],
            database["engine_version"],
            database["instance_class"],
            instances[0],
            tuple(instances[1:]),
            network["database_port"],
            (serverless["min_capacity"], serverless["max_capacity"]) if serverless else None,
        )
    bastion = access["bastion"]
    load_balancer = access["load_balancer"]
    return Vpc(
        group,
        network["name"],
        network["cidr"],
        infra.vpc_groups[group].production,
        network["nat_mode"],
        zones,
        tiers,
        bastion["name"] if bastion else None,
        tuple(bastion["allowed_cidrs"]) if bastion else (),
        load_balancer["name"] if load_balancer else None,
        db,
        tuple(network["interface_endpoints"]),
        tuple(access["environments"]),
    )


def _environment(config: Config, env: str, group: str) -> Environment:
    infra = config.environments[env]
    services = context.services(infra, env, config.ami_for)
    data = context.data(infra, env)
    fleets = tuple(
        Fleet(
            service,
            values["short_name"],
            values["image"],
            values["instance_type"],
            values["port"],
            values["scaling"]["min"],
            values["scaling"]["max"],
            tuple(infra.services[service].consumes),
            tuple(infra.services[service].publishes),
        )
        for service, values in services.items()
    )
    functions = tuple(
        Function(
            name,
            values["name"],
            values["runtime"],
            infra.functions[name].on_upload_to,
            infra.functions[name].variants_bucket or infra.functions[name].on_upload_to,
        )
        for name, values in data["functions"].items()
    )
    subscriptions = tuple(
        (topic, queue) for topic, queues in data["topic_subscriptions"].items() for queue in queues
    )
    cdn = data["cdn"]
    return Environment(
        env,
        group,
        tuple(infra.hostnames(env)),
        fleets,
        {name: values["name"] for name, values in data["buckets"].items()},
        tuple(cdn["origins"]) if cdn else (),
        {name: values["name"] for name, values in data["queues"].items()},
        {name: values["name"] for name, values in data["topics"].items()},
        subscriptions,
        functions,
        data["parameters"]["path"],
        data["parameters"]["store"],
    )


def fleet_id(env: str, service: str) -> str:
    """The name of environment `env`'s fleet of `service` in links and rules."""
    return f"{env} {service} fleet"


def app_servers(env: str) -> str:
    """The name of environment `env`'s application servers (its access group)."""
    return f"{env} application servers"


def _stack(
    config: Config, stack: Stack, vpc: Vpc, environment: Environment | None
) -> StackOverview:
    if stack.kind == ENVIRONMENT:
        assert environment is not None
        return StackOverview(
            stack.name,
            stack.kind,
            stack.group,
            stack.environment,
            _environment_contents(environment),
            _environment_rules(environment, vpc),
        )
    infra = context.group_infra(config, stack.group)
    access = context.access(infra, stack.group)
    return StackOverview(
        stack.name,
        stack.kind,
        stack.group,
        None,
        _shared_contents(vpc),
        _shared_rules(vpc, access),
    )


def _shared_contents(vpc: Vpc) -> tuple[str, ...]:
    nat = "one NAT gateway" if vpc.nat_mode == "single" else "a NAT gateway per zone"
    lines = [
        f"VPC {vpc.name} ({vpc.cidr}) across {len(vpc.zones)} zones: public, application "
        f"and database subnets in each, {nat}, network ACLs, flow logs",
    ]
    if vpc.interface_endpoints:
        lines.append("Interface endpoints: " + ", ".join(vpc.interface_endpoints))
    if vpc.bastion:
        lines.append(
            f"Bastion {vpc.bastion} in a public subnet: SSH from " + ", ".join(vpc.admin_cidrs)
        )
    lines.append(
        "Application access groups of "
        + ", ".join(vpc.environments)
        + (": SSH only from the bastion" if vpc.bastion else "")
    )
    if vpc.load_balancer:
        lines.append(f"Application Load Balancer {vpc.load_balancer}: HTTPS, HTTP redirected")
    if vpc.database:
        db = vpc.database
        size = (
            f"Serverless v2, {db.serverless[0]:g} to {db.serverless[1]:g} ACUs"
            if db.serverless
            else db.instance_class
        )
        lines.append(
            f"Aurora MySQL {db.name} ({size}): writer in {db.writer_zone}, "
            + (
                f"{len(db.reader_zones)} {'reader' if len(db.reader_zones) == 1 else 'readers'} "
                f"in {', '.join(db.reader_zones)}"
                if db.reader_zones
                else "no reader"
            )
        )
    lines.append("CI/CD role of the group")
    return tuple(lines)


def _environment_contents(env: Environment) -> tuple[str, ...]:
    lines = [
        f"Fleet {fleet.name}: image {fleet.image}, {fleet.instance_type}, "
        f"{fleet.min} to {fleet.max} instances"
        + (f", port {fleet.port} behind the load balancer" if fleet.port else ", a worker")
        for fleet in env.fleets
    ]
    if env.buckets:
        lines.append("S3 buckets: " + ", ".join(env.buckets.values()))
    if env.cdn_origins:
        lines.append("CloudFront distribution serving: " + ", ".join(env.cdn_origins))
    if env.queues:
        lines.append(
            "SQS queues (each with a dead-letter queue): " + ", ".join(env.queues.values())
        )
    if env.topics:
        lines.append("SNS topics: " + ", ".join(env.topics.values()))
    for function in env.functions:
        lines.append(
            f"Lambda function {function.function_name} ({function.runtime}): "
            f"on uploads to the {function.source} bucket"
        )
    store = "SSM Parameter Store" if env.secrets_store == "ssm" else "Secrets Manager"
    lines.append(f"Parameters under {env.parameter_path} in {store}, with a KMS key")
    return tuple(lines)


def _rule(
    source: str, target: str, port: int | str, direction: str, purpose: str, module: str, name: str
) -> Rule:
    kind = f"aws_vpc_security_group_{direction}_rule"
    return Rule(source, target, "tcp", str(port), direction, purpose, (module, f"{kind}.{name}"))


def _outbound_https(who: str, module: str, internet: bool, endpoints: bool) -> list[Rule]:
    rules = [
        _rule(
            who, S3_ENDPOINT, HTTPS_PORT, "egress", "S3 through the gateway endpoint", module, "s3"
        )
    ]
    if endpoints:
        rules.append(
            _rule(
                who,
                AWS_ENDPOINTS,
                HTTPS_PORT,
                "egress",
                "AWS APIs privately",
                module,
                "aws_endpoints",
            )
        )
    if internet:
        rules.append(
            _rule(
                who,
                INTERNET,
                HTTPS_PORT,
                "egress",
                "HTTPS to the internet",
                module,
                "internet_https",
            )
        )
    return rules


def _shared_rules(vpc: Vpc, access: context.AccessValues) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    if vpc.interface_endpoints:
        rules.append(
            _rule(
                vpc.cidr,
                AWS_ENDPOINTS,
                HTTPS_PORT,
                "ingress",
                "AWS API calls from the VPC",
                "network",
                "endpoints_https",
            )
        )
    bastion = access["bastion"]
    if bastion:
        for cidr in bastion["allowed_cidrs"]:
            rules.append(
                _rule(cidr, BASTION, SSH_PORT, "ingress", "operators' SSH", "bastion", "ssh")
            )
        rules.append(
            _rule(
                BASTION,
                vpc.cidr,
                SSH_PORT,
                "egress",
                "SSH to the application servers",
                "bastion",
                "ssh_to_vpc",
            )
        )
        rules += _outbound_https(
            BASTION, "bastion", bastion["internet_https"], bastion["aws_endpoints"]
        )
    if access["load_balancer"]:
        rules += [
            _rule(
                INTERNET,
                LOAD_BALANCER,
                HTTPS_PORT,
                "ingress",
                "HTTPS from users",
                "load-balancer",
                "https",
            ),
            _rule(
                INTERNET,
                LOAD_BALANCER,
                HTTP_PORT,
                "ingress",
                "HTTP, redirected to HTTPS",
                "load-balancer",
                "http",
            ),
            _rule(
                LOAD_BALANCER,
                vpc.cidr,
                "1-65535",
                "egress",
                "targets and health checks",
                "load-balancer",
                "to_vpc",
            ),
        ]
    for env in vpc.environments:
        servers = app_servers(env)
        if bastion:
            rules.append(
                _rule(
                    BASTION,
                    servers,
                    SSH_PORT,
                    "ingress",
                    "SSH from the bastion only",
                    "app-access",
                    "ssh_from_bastion",
                )
            )
        rules += _outbound_https(
            servers, "app-access", access["servers_internet_https"], access["aws_endpoints"]
        )
        if vpc.database:
            rules.append(
                _rule(
                    servers,
                    vpc.cidr,
                    vpc.database.port,
                    "egress",
                    "the database",
                    "app-access",
                    "database",
                )
            )
    if vpc.database:
        for env in vpc.environments:
            rules.append(
                _rule(
                    app_servers(env),
                    DATABASE,
                    vpc.database.port,
                    "ingress",
                    "MySQL from the application servers",
                    "database",
                    "from_applications",
                )
            )
    return tuple(rules)


def _environment_rules(env: Environment, vpc: Vpc) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for fleet in env.fleets:
        if fleet.port is not None and vpc.load_balancer:
            rules.append(
                _rule(
                    LOAD_BALANCER,
                    fleet_id(env.name, fleet.service),
                    fleet.port,
                    "ingress",
                    "requests and health checks",
                    "service",
                    "from_load_balancer",
                )
            )
    for function in env.functions:
        rules.append(
            _rule(
                function.function_name,
                S3_ENDPOINT,
                HTTPS_PORT,
                "egress",
                "S3 through the gateway endpoint",
                "function",
                "s3",
            )
        )
    return tuple(rules)


def _links(vpc: Vpc, environments: list[Environment]) -> list[Link]:
    """The traffic paths of one VPC group: users to the load balancer and the
    CDN, on to the fleets and buckets; fleets to the database, queues and
    topics; uploads to the functions; and the operators' SSH path."""
    links: list[Link] = []
    g = vpc.group
    if vpc.load_balancer:
        links.append(Link(USERS, f"{g}/lb", f"HTTPS {HTTPS_PORT}"))
    if vpc.bastion:
        links.append(Link(OPERATORS, f"{g}/bastion", f"SSH {SSH_PORT}", ssh=True))
    for env in environments:
        e = env.name
        if env.cdn_origins:
            links.append(Link(USERS, f"{e}/cdn", f"HTTPS {HTTPS_PORT}"))
            for origin in env.cdn_origins:
                links.append(Link(f"{e}/cdn", f"{e}/bucket/{origin}", "origin access control"))
        for fleet in env.fleets:
            fleet_node = f"{e}/fleet/{fleet.service}"
            if fleet.port is not None and vpc.load_balancer:
                links.append(Link(f"{g}/lb", fleet_node, f"HTTP {fleet.port}"))
            if vpc.bastion:
                links.append(Link(f"{g}/bastion", fleet_node, f"SSH {SSH_PORT}", ssh=True))
            if vpc.database:
                links.append(Link(fleet_node, f"{g}/db", f"MySQL {vpc.database.port}"))
            for queue in fleet.consumes:
                links.append(Link(f"{e}/queue/{queue}", fleet_node, "jobs"))
            for topic in fleet.publishes:
                links.append(Link(fleet_node, f"{e}/topic/{topic}", "events"))
        for topic, queue in env.subscriptions:
            links.append(Link(f"{e}/topic/{topic}", f"{e}/queue/{queue}", "subscription"))
        for function in env.functions:
            links.append(
                Link(
                    f"{e}/bucket/{function.source}", f"{e}/function/{function.name}", "upload event"
                )
            )
            if function.variants != function.source:
                links.append(
                    Link(
                        f"{e}/function/{function.name}",
                        f"{e}/bucket/{function.variants}",
                        "variants",
                    )
                )
            if "backup" in env.buckets:
                links.append(
                    Link(f"{e}/function/{function.name}", f"{e}/bucket/backup", "original copy")
                )
    return links
