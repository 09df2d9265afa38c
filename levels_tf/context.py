"""The values each template sees, computed from the validated configuration.

Rendering is pure: every builder here reads the configuration (and, for
fleets, the baked AMIs it is handed) and returns new values in a stable
order; templates only lay them out. Names come from names.py.

Each template's input is typed, so a missing or misspelt value is a type
error, not a surprise at render time:

- Values a template lays out as HCL (the `hcl` and `hcl_attributes`
  filters take mappings and keep their order) or iterates are TypedDicts,
  which are plain dicts at run time.
- Records a template only reads attribute by attribute (`Emulator`,
  `StackInfo`, `Backend`) are frozen dataclasses.
- A stack's whole input is an `EnvironmentStackValues` or a
  `SharedStackValues`: Jinja takes the top level as a mapping.

Which template reads what:

- modules/*: `CommonValues`.
- stacks/common/versions.tf, providers.tf: `CommonValues`, `StackInfo`,
  `Backend`, the default tags.
- stacks/environment/shared.tf: `RemoteState`; data.tf: `DataValues`;
  services.tf: a `ServiceValues` per fleet.
- stacks/shared/main.tf: `NetworkValues`; access.tf and load-balancer.tf:
  `AccessValues`; database.tf: `DatabaseValues`; ci.tf: `CiValues`;
  variables.tf: `deletion_protection`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypedDict

from . import __version__, github_oidc, regions, subnets, vpc_endpoints
from .hcl import Expression
from .model import Infra, as_dict
from .names import (
    STATE_FILE,
    asset_bucket,
    bastion_name,
    bundle_parameter,
    ci_role_name,
    endpoint_security_group,
    environment_resource,
    fleet_short_name,
    function_name,
    function_package,
    group_resource,
    load_balancer_name,
    log_bucket,
    parameter_path,
    parameter_prefix,
    resource_name,
    shared_stack,
    state_bucket,
)
from .options import ENDPOINT_SERVICES, endpoint_settings
from .skips import Scanner, Where
from .skips import comments as skip_comments
from .stacks import ENVIRONMENT, Stack
from .validation import Config

TERRAFORM_VERSION = ">= 1.10"
AWS_PROVIDER_ROOT = "~> 5.100"
AWS_PROVIDER_MODULE = ">= 5.100"
MYSQL_PORT = 3306
BACKTRACK_SECONDS = 24 * 3600
DATA_KEY = Expression("module.data_key.arn")
CI_ROLE = Expression("data.terraform_remote_state.shared.outputs.ci_role_arn")
CI_UPLOADS = ("deployments", "web")

# Protection follows a root variable of the shared stack, whose default is the
# group's setting, so `levels-tf destroy --lift-protection` can turn it off in
# a reviewed apply before it destroys.
LIFTABLE_PROTECTION = Expression("var.deletion_protection")

# Days Secrets Manager keeps a deleted secret recoverable, under its name, in
# production (DeleteSecret's RecoveryWindowInDays, 7 to 30; AWS Secrets
# Manager API Reference). Elsewhere 0: deleted at once.
SECRET_RECOVERY_DAYS = 30


# -- Every template ---------------------------------------------------------------------


@dataclass(frozen=True)
class Emulator:
    """One AWS emulator every provider endpoint points at (a rehearsal)."""

    endpoint: str
    services: tuple[str, ...]


class CommonValues(TypedDict):
    """What every template sees; all a module template sees."""

    emulator: Emulator | None
    project: str
    region: str
    terraform_version: str
    aws_provider_root: str
    aws_provider_module: str
    levels_tf_version: str
    # Inline scanner skips that hold for the template: scanner -> "<place> <block>" -> lines.
    skips: dict[Scanner, dict[str, list[str]]]


# -- Every stack ------------------------------------------------------------------------


@dataclass(frozen=True)
class StackInfo:
    """The stack being rendered; `environment` is None for a shared stack."""

    name: str
    kind: str
    group: str
    environment: str | None
    production: bool


@dataclass(frozen=True)
class Backend:
    """The `backend` block of stacks/common/versions.tf: its type and attributes."""

    type: Literal["local", "s3"]
    settings: dict[str, object]


class S3Location(TypedDict):
    """Where a stack's state lives in its group's state bucket."""

    bucket: str
    key: str
    region: str


class S3BackendSettings(S3Location):
    encrypt: bool
    use_lockfile: bool


class RemoteState(TypedDict):
    """How an environment stack reads its shared stack's outputs: the
    arguments of shared.tf's terraform_remote_state data source."""

    backend: Literal["local", "s3"]
    config: dict[str, object]


class StackValues(CommonValues):
    stack: StackInfo
    backend: Backend
    default_tags: dict[str, str]


# -- A shared stack ---------------------------------------------------------------------


class ZoneValues(TypedDict):
    """A zone's slot in the subnet plan and its subnets' CIDR blocks."""

    slot: int
    public: str
    private: str
    database: str


class EndpointScope(TypedDict):
    """What the VPC endpoints' policies admit, as name patterns (`*` matches
    any run of characters): the group's buckets, queue and topic names,
    parameter paths, secret names and log groups, and the public package
    repository buckets instances read through the S3 gateway."""

    buckets: list[str]
    names: list[str]
    parameter_paths: list[str]
    secret_names: list[str]
    log_groups: list[str]
    package_buckets: list[str]


class NetworkValues(TypedDict):
    """stacks/shared/main.tf: the network module's arguments."""

    name: str
    cidr: str
    nat_mode: str
    zones: dict[str, ZoneValues]
    ssh_ingress_cidrs: list[str]
    database_port: int
    flow_log_retention_days: int
    flow_log_traffic: str
    interface_endpoints: list[str]
    endpoint_zones: list[str]
    endpoints_name: str
    endpoint_scope: EndpointScope


class BastionValues(TypedDict):
    """The bastion module's arguments; `internet_https`: whether it keeps HTTPS
    to the internet, `aws_endpoints`: whether the group has interface endpoints."""

    name: str
    allowed_cidrs: list[str]
    users: dict[str, str]
    instance_type: str
    internet_https: bool
    aws_endpoints: bool


class LoadBalancerValues(TypedDict):
    """stacks/shared/load-balancer.tf: the load balancer module's arguments.

    `idle_timeout` in seconds, `access_log_days` in days."""

    name: str
    hostnames: list[str]
    certificate_arn: str | None
    dns_zone_id: str | None
    ssl_policy: str
    idle_timeout: int
    deletion_protection: Expression
    access_log_days: int
    log_bucket_name: str


class AccessValues(TypedDict):
    """stacks/shared/access.tf: the bastion and the environments' access
    groups; load-balancer.tf: the load balancer. None where there is none."""

    environments: list[str]
    bastion: BastionValues | None
    load_balancer: LoadBalancerValues | None
    servers_internet_https: bool
    aws_endpoints: bool


class ServerlessValues(TypedDict):
    """Aurora Serverless v2 capacity, in Aurora capacity units."""

    min_capacity: float
    max_capacity: float


class DatabaseValues(TypedDict):
    """stacks/shared/database.tf: the database module's arguments."""

    name: str
    engine_version: str
    instance_class: str
    replicas: int
    serverless: ServerlessValues | None
    backup_retention_days: int
    backtrack_seconds: int
    deletion_protection: Expression
    delete_backups_with_stack: bool


class GithubTrust(TypedDict):
    """Which GitHub Actions runs the CI/CD role trusts: the `sub` claims (wildcards
    only outside production) and the OIDC provider, null for the account's own."""

    provider_arn: str | None
    subjects: list[str]


class CiValues(TypedDict):
    """stacks/shared/ci.tf: the CI/CD role module's arguments."""

    name: str
    group: str
    trusted_role_arns: list[str]
    github: GithubTrust | None
    upload_buckets: list[str]
    read_parameter_paths: list[str]
    write_parameter_paths: list[str]


class SharedStackValues(StackValues):
    network: NetworkValues
    access: AccessValues
    database: DatabaseValues | None
    ci: CiValues
    deletion_protection: bool


# -- An environment stack ---------------------------------------------------------------


class RouteValues(TypedDict):
    """A listener rule: its priority, path patterns and host names."""

    priority: int
    paths: list[str]
    hosts: list[str]


class ScalingValues(TypedDict):
    """Instance counts; `cpu_target` in percent; None: no such policy."""

    min: int
    max: int
    desired: int
    cpu_target: int | None
    requests_per_target: int | None
    queue_backlog_per_instance: int | None


class RolloutValues(TypedDict):
    """Instance refresh: percentages, and `checkpoint_delay` in seconds."""

    min_healthy_percentage: int
    checkpoints: list[int]
    checkpoint_delay: int


class ServiceAccess(TypedDict):
    """What a fleet's role may read and write, by bucket, queue, topic, path and key."""

    read_buckets: list[str]
    write_buckets: list[str]
    consume_queues: list[str]
    publish_topics: list[str]
    parameter_prefixes: list[str]
    write_parameter_prefixes: list[str]
    kms_keys: list[Expression]


class BundleValues(TypedDict):
    """Where deployed bundles live (None: no deployments bucket) and the
    parameter that names the deployed version."""

    bucket: str | None
    parameter: str


class ServiceValues(TypedDict):
    """stacks/environment/services.tf: one fleet, as the service module takes it.

    `ami_id` and `root_device_name` are None when the image is not baked
    (or its root device not recorded); `port` is None for a worker."""

    short_name: str
    image: str
    ami_id: str | None
    root_device_name: str | None
    instance_type: str
    port: int | None
    health_check_path: str
    routes: dict[str, RouteValues]
    scaling: ScalingValues
    rollout: RolloutValues
    access: ServiceAccess
    bundle: BundleValues


class BucketValues(TypedDict):
    """An asset bucket; ages in days, None: never."""

    name: str
    versioning: bool
    noncurrent_days: int
    archive_after_days: int | None
    cdn: bool


class LambdaTrigger(TypedDict):
    function_arn: Expression


class BucketAccess(TypedDict):
    """Roles that read and write a bucket, by principal; functions its uploads invoke."""

    readers: dict[str, Expression]
    writers: dict[str, Expression]
    lambda_triggers: dict[str, LambdaTrigger]


class QueueValues(TypedDict):
    """A queue; `visibility_timeout` in seconds, `retention_days` in days,
    `dead_letter_after` in receives."""

    name: str
    visibility_timeout: int
    retention_days: int
    dead_letter_after: int


class TopicValues(TypedDict):
    name: str


class FunctionValues(TypedDict):
    """A function; `memory` in MB, `timeout` in seconds, `sizes` in pixels."""

    name: str
    package_path: Expression
    runtime: str
    memory: int
    timeout: int
    concurrency: int
    source_bucket: str
    variants_bucket: str
    variants_prefix: str
    backup_bucket: str
    sizes: list[int]


class CdnSettings(TypedDict):
    name: str
    default_origin: str
    price_class: str
    aliases: list[str]
    certificate_arn: str | None
    dns_zone_id: str | None
    geo_allow_list: list[str]
    hsts_preload: bool


class CdnValues(TypedDict):
    """The asset classes CloudFront serves, and the cdn module's other arguments."""

    origins: list[str]
    settings: CdnSettings


class PrefixValues(TypedDict):
    parameters: list[str]
    developers_read: bool
    developers_write: bool


class ParametersValues(TypedDict):
    """The parameters module's arguments; `recovery_window_days` in days."""

    name: str
    path: str
    store: str
    recovery_window_days: int
    prefixes: dict[str, PrefixValues]


class DataValues(TypedDict):
    """stacks/environment/data.tf: an environment's key, buckets, queues,
    topics, functions, CDN (None: no bucket is served) and parameters."""

    name: str
    log_bucket: str
    buckets: dict[str, BucketValues]
    bucket_access: dict[str, BucketAccess]
    queues: dict[str, QueueValues]
    queue_publishers: dict[str, dict[str, Expression]]
    topics: dict[str, TopicValues]
    topic_subscriptions: dict[str, dict[str, Expression]]
    functions: dict[str, FunctionValues]
    cdn: CdnValues | None
    parameters: ParametersValues


class EnvironmentStackValues(StackValues):
    remote_state: RemoteState
    services: dict[str, ServiceValues]
    logins: dict[str, str]
    data: DataValues
    web: bool


# -- Builders ---------------------------------------------------------------------------


def common(infra: Infra, endpoint: str | None = None) -> CommonValues:
    """What every template sees; `endpoint` is an AWS emulator's URL, or None."""
    return {
        "emulator": Emulator(endpoint, ENDPOINT_SERVICES) if endpoint else None,
        "project": infra.project,
        "region": infra.region,
        "terraform_version": TERRAFORM_VERSION,
        "aws_provider_root": AWS_PROVIDER_ROOT,
        "aws_provider_module": AWS_PROVIDER_MODULE,
        "levels_tf_version": __version__,
        "skips": skip_comments(),
    }


def _s3_location(infra: Infra, stack: Stack) -> S3Location:
    return {
        "bucket": state_bucket(infra, stack.group),
        "key": stack.state_key,
        "region": infra.region,
    }


def _at_endpoint(settings: S3Location, endpoint: str | None) -> dict[str, object]:
    """`settings`, then an emulator's endpoint settings when there is one."""
    result: dict[str, object] = dict(settings)
    if endpoint:
        result.update(endpoint_settings(endpoint))
    return result


def backend(infra: Infra, stack: Stack, endpoint: str | None = None) -> Backend:
    """Where `stack` keeps its state: a local file, or its group's state bucket."""
    if infra.state.backend == "local":
        return Backend("local", {"path": STATE_FILE})
    settings: S3BackendSettings = {
        **_s3_location(infra, stack),
        "encrypt": True,
        "use_lockfile": True,
    }
    return Backend("s3", _at_endpoint(settings, endpoint))


def remote_state(infra: Infra, stack: Stack, endpoint: str | None = None) -> RemoteState:
    """How an environment stack reads the outputs of its shared stack."""
    shared = Stack(shared_stack(stack.group), "shared", stack.group)
    if infra.state.backend == "local":
        return {"backend": "local", "config": {"path": f"../{shared.name}/{STATE_FILE}"}}
    return {"backend": "s3", "config": _at_endpoint(_s3_location(infra, shared), endpoint)}


def default_tags(infra: Infra, stack: Stack) -> dict[str, str]:
    """Provider-level tags: the file's tags, then what levels-tf adds."""
    tags = dict(sorted(infra.tags.items()))
    tags.update(
        {
            "Project": infra.project,
            "VpcGroup": stack.group,
            "Stack": stack.name,
            "ManagedBy": "levels-tf",
        }
    )
    if stack.environment:
        tags["Environment"] = stack.environment
    return tags


def network(infra: Infra, group_name: str) -> NetworkValues:
    """VPC group `group_name`'s network. Raises subnets.PlanError when the
    subnet plan does not fit (validation has refused such a file)."""
    group = infra.vpc_groups[group_name]
    zone_names = regions.zones(infra.region, group.azs)
    plan = subnets.plan(group.cidr, zone_names, as_dict(group.subnets))
    zones: dict[str, ZoneValues] = {
        zone.zone: {
            "slot": slot,
            "public": zone.public,
            "private": zone.private,
            "database": zone.database,
        }
        for slot, zone in enumerate(plan)
    }
    ssh = sorted(infra.bastion.allowed_cidrs) if infra.bastion else []
    interface = vpc_endpoints.interface_services(infra, group_name)
    return {
        "name": group_resource(infra, group_name),
        "cidr": group.cidr,
        "nat_mode": group.nat_mode,
        "zones": zones,
        "ssh_ingress_cidrs": ssh,
        "database_port": MYSQL_PORT,
        "flow_log_retention_days": group.flow_logs.retention_days,
        "flow_log_traffic": group.flow_logs.traffic,
        "interface_endpoints": interface,
        # The first zones of the subnet plan, which never move when zones are added.
        "endpoint_zones": list(zones)[: group.endpoints.zones or len(zones)] if interface else [],
        "endpoints_name": endpoint_security_group(infra, group_name),
        "endpoint_scope": endpoint_scope(infra, group_name),
    }


def endpoint_scope(infra: Infra, group_name: str) -> EndpointScope:
    """The resources of VPC group `group_name`'s environments that its endpoint
    policies admit, one pattern per environment and kind."""
    environments = infra.vpc_groups[group_name].environments
    secrets = [parameter_path(infra, env).lstrip("/") + "/*" for env in environments]
    if infra.database is not None:
        # RDS names the master password secret it manages rds!cluster-<id>.
        secrets.append("rds!cluster-*")
    return {
        "buckets": [asset_bucket(infra, env, "*") for env in environments],
        "names": [resource_name(infra, env, "*") for env in environments],
        "parameter_paths": [parameter_path(infra, env) + "/*" for env in environments],
        "secret_names": secrets,
        "log_groups": [f"/aws/lambda/{resource_name(infra, env, '*')}" for env in environments]
        + [parameter_path(infra, env) + "/*" for env in environments],
        "package_buckets": vpc_endpoints.package_buckets(infra),
    }


def access(infra: Infra, group_name: str) -> AccessValues:
    """The shared stack's bastion, load balancer and per-environment access groups."""
    group = infra.vpc_groups[group_name]
    bastion: BastionValues | None = None
    if infra.bastion:
        bastion = {
            "name": bastion_name(infra, group_name),
            "allowed_cidrs": sorted(infra.bastion.allowed_cidrs),
            "users": dict(sorted(infra.bastion.users.items())),
            "instance_type": infra.bastion.instance_type,
            "internet_https": "bastion" in group.internet_https,
            "aws_endpoints": bool(vpc_endpoints.interface_services(infra, group_name)),
        }
    load_balancer: LoadBalancerValues | None = None
    if infra.web_services():
        hostnames = [host for env in group.environments for host in infra.hostnames(env)]
        lb = infra.load_balancer
        load_balancer = {
            "name": load_balancer_name(infra, group_name),
            "hostnames": hostnames,
            "certificate_arn": lb.certificates.get(group_name),
            "dns_zone_id": infra.dns.zone_id if infra.dns else None,
            "ssl_policy": lb.ssl_policy,
            "idle_timeout": lb.idle_timeout,
            "deletion_protection": LIFTABLE_PROTECTION,
            "access_log_days": lb.access_log_days,
            "log_bucket_name": log_bucket(infra, group_name),
        }
    return {
        "environments": list(group.environments),
        "bastion": bastion,
        "load_balancer": load_balancer,
        "servers_internet_https": "servers" in group.internet_https,
        "aws_endpoints": bool(vpc_endpoints.interface_services(infra, group_name)),
    }


def services(
    infra: Infra,
    env: str,
    ami_for: Callable[[str], str | None],
    root_device_for: Callable[[str], str | None] = lambda image: None,
) -> dict[str, ServiceValues]:
    """Every fleet of environment `env`, as the service module takes it, by service name.

    `ami_for` and `root_device_for` give an image's baked AMI and its root
    device name from images.lock (None: not baked, or not recorded)."""
    group = infra.vpc_groups[infra.group_of(env)]
    slot = group.environments.index(env)
    hosts = infra.hostnames(env)
    deployments = (
        asset_bucket(infra, env, "deployments") if "deployments" in infra.buckets else None
    )
    result: dict[str, ServiceValues] = {}
    web_index = 0
    for name, service in infra.services.items():
        readable = [parameter_prefix(infra, env, name)] + [
            parameter_prefix(infra, env, p)
            for p, prefix in infra.secrets.prefixes.items()
            if name in prefix.read
        ]
        read_buckets = [asset_bucket(infra, env, b) for b in service.buckets.read]
        if deployments and deployments not in read_buckets:
            read_buckets.append(deployments)
        routes: dict[str, RouteValues] = {}
        if service.web:
            base = 1000 * (slot + 1) + 10 * web_index
            paths = service.routes or ["/*"]
            for index, path in enumerate(paths):
                priority = base + index if path != "/*" else 1000 * (slot + 1) + 900 + web_index
                routes[path] = {"priority": priority, "paths": [path], "hosts": hosts}
            web_index += 1
        scaling = service.scaling
        result[name] = {
            "short_name": fleet_short_name(infra, env, name),
            "image": service.image,
            "ami_id": ami_for(service.image),
            "root_device_name": root_device_for(service.image),
            "instance_type": service.instance_type,
            "port": service.port,
            "health_check_path": service.health_check,
            "routes": routes,
            "scaling": {
                "min": scaling.min,
                "max": scaling.max,
                "desired": scaling.min if scaling.desired is None else scaling.desired,
                "cpu_target": scaling.cpu_target,
                "requests_per_target": scaling.requests_per_target,
                "queue_backlog_per_instance": scaling.queue_backlog_per_instance,
            },
            "rollout": {
                "min_healthy_percentage": service.rollout.min_healthy_percentage,
                "checkpoints": list(service.rollout.checkpoints),
                "checkpoint_delay": service.rollout.checkpoint_delay_seconds,
            },
            "access": {
                "read_buckets": read_buckets,
                "write_buckets": [asset_bucket(infra, env, b) for b in service.buckets.write],
                "consume_queues": [resource_name(infra, env, q) for q in service.consumes],
                "publish_topics": [resource_name(infra, env, t) for t in service.publishes],
                "parameter_prefixes": readable,
                "write_parameter_prefixes": [
                    parameter_prefix(infra, env, p)
                    for p, prefix in infra.secrets.prefixes.items()
                    if name in prefix.write
                ],
                "kms_keys": [DATA_KEY],
            },
            "bundle": {"bucket": deployments, "parameter": bundle_parameter(infra, env, name)},
        }
    return result


def logins(infra: Infra) -> dict[str, str]:
    """The accounts of the application servers: bastion.users (login name ->
    public key), so the second hop of a tunnel (bastion -> server) can log in;
    none without a bastion."""
    return dict(sorted(infra.bastion.users.items())) if infra.bastion else {}


def service_role(name: str) -> Expression:
    return Expression(f"module.service[{hcl_quote(name)}].role_arn")


def function_output(name: str, output: str) -> Expression:
    return Expression(f"module.function[{hcl_quote(name)}].{output}")


def hcl_quote(text: str) -> str:
    return '"' + text + '"'


def keeps_deleted_data(infra: Infra, group: str) -> bool:
    """Whether destroying the stacks of VPC group `group` keeps the data AWS can
    keep after a delete: AWS Backup recovery points, and deleted secrets for
    their recovery window, which holds their names. True in production, where
    that data outlives the stack; elsewhere a destroy deletes it, so the stacks
    can be created again at once under the same names."""
    return infra.vpc_groups[group].production


def data(infra: Infra, env: str) -> DataValues:
    """An environment's data: key, buckets, queues, topics, functions, parameters."""
    name = environment_resource(infra, env)
    buckets: dict[str, BucketValues] = {}
    # References to other modules stay out of the maps modules iterate over,
    # so Terraform can expand every module before wiring them together.
    access: dict[str, BucketAccess] = {}
    for asset_class, spec in infra.buckets.items():
        readers = {
            s: service_role(s)
            for s, service in infra.services.items()
            if asset_class in service.buckets.read
        }
        writers = {
            s: service_role(s)
            for s, service in infra.services.items()
            if asset_class in service.buckets.write
        }
        if asset_class == "deployments":
            readers.update({s: service_role(s) for s in infra.services})
        if asset_class in CI_UPLOADS:
            writers["ci"] = CI_ROLE
        triggers: dict[str, LambdaTrigger] = {}
        for fn_name, function in infra.functions.items():
            if function.on_upload_to == asset_class:
                readers[fn_name] = function_output(fn_name, "role_arn")
                triggers[fn_name] = {"function_arn": function_output(fn_name, "arn")}
            if (function.variants_bucket or function.on_upload_to) == asset_class:
                writers[fn_name] = function_output(fn_name, "role_arn")
        buckets[asset_class] = {
            "name": asset_bucket(infra, env, asset_class),
            "versioning": spec.versioning,
            "noncurrent_days": spec.noncurrent_days,
            "archive_after_days": None,
            "cdn": spec.cdn,
        }
        access[asset_class] = {
            "readers": dict(sorted(readers.items())),
            "writers": dict(sorted(writers.items())),
            "lambda_triggers": triggers,
        }
    backup_writers = {f: function_output(f, "role_arn") for f in infra.functions}
    if any(spec.backup for spec in infra.buckets.values()) or infra.functions:
        buckets["backup"] = {
            "name": asset_bucket(infra, env, "backup"),
            "versioning": True,
            "noncurrent_days": 365,
            "archive_after_days": 30,
            "cdn": False,
        }
        access["backup"] = {"readers": {}, "writers": backup_writers, "lambda_triggers": {}}
    subscribers: dict[str, dict[str, Expression]] = {q: {} for q in infra.queues}
    subscriptions: dict[str, dict[str, Expression]] = {}
    topics: dict[str, TopicValues] = {}
    for topic_name, topic in infra.topics.items():
        subscribed = [s.split(".", 1)[1] for s in topic.subscribers]
        for queue in subscribed:
            subscribers[queue][topic_name] = Expression(
                f"module.topic[{hcl_quote(topic_name)}].arn"
            )
        topics[topic_name] = {"name": resource_name(infra, env, topic_name)}
        subscriptions[topic_name] = {
            q: Expression(f"module.queue[{hcl_quote(q)}].arn") for q in subscribed
        }
    queues: dict[str, QueueValues] = {
        queue_name: {
            "name": resource_name(infra, env, queue_name),
            "visibility_timeout": queue.visibility_timeout,
            "retention_days": queue.retention_days,
            "dead_letter_after": queue.dead_letter_after,
        }
        for queue_name, queue in infra.queues.items()
    }
    functions: dict[str, FunctionValues] = {
        fn_name: {
            "name": function_name(infra, env, fn_name),
            "package_path": Expression(f'"${{path.root}}/../../{function_package(fn_name)}"'),
            "runtime": function.runtime,
            "memory": function.memory,
            "timeout": function.timeout,
            "concurrency": function.concurrency,
            "source_bucket": asset_bucket(infra, env, function.on_upload_to),
            "variants_bucket": asset_bucket(
                infra, env, function.variants_bucket or function.on_upload_to
            ),
            "variants_prefix": function.variants_prefix,
            "backup_bucket": asset_bucket(infra, env, "backup"),
            "sizes": list(function.sizes),
        }
        for fn_name, function in infra.functions.items()
    }
    cdn_classes = [c for c, spec in infra.buckets.items() if spec.cdn]
    cdn: CdnValues | None = None
    if cdn_classes:
        aliases = list(infra.cdn.aliases.get(env, []))
        cdn = {
            "origins": cdn_classes,
            "settings": {
                "name": name,
                "default_origin": "web" if "web" in cdn_classes else cdn_classes[0],
                "price_class": infra.cdn.price_class,
                "aliases": aliases,
                "certificate_arn": infra.cdn.certificate_arn if aliases else None,
                "dns_zone_id": infra.dns.zone_id if aliases and infra.dns else None,
                "geo_allow_list": list(infra.cdn.geo_allow_list),
                "hsts_preload": infra.cdn.hsts_preload,
            },
        }
    prefixes: dict[str, PrefixValues] = {
        prefix_name: {
            "parameters": list(prefix.parameters),
            "developers_read": "developers" in prefix.read,
            "developers_write": "developers" in prefix.write,
        }
        for prefix_name, prefix in infra.secrets.prefixes.items()
    }
    return {
        "name": name,
        "log_bucket": asset_bucket(infra, env, "logs"),
        "buckets": buckets,
        "bucket_access": access,
        "queues": queues,
        "queue_publishers": subscribers,
        "topics": topics,
        "topic_subscriptions": subscriptions,
        "functions": functions,
        "cdn": cdn,
        "parameters": {
            "name": name,
            "path": parameter_path(infra, env),
            "store": infra.secrets.store,
            "recovery_window_days": SECRET_RECOVERY_DAYS
            if keeps_deleted_data(infra, infra.group_of(env))
            else 0,
            "prefixes": prefixes,
        },
    }


def ci(infra: Infra, group_name: str) -> CiValues:
    """The group's CI/CD role: uploads, its parameters, deployed versions."""
    group = infra.vpc_groups[group_name]
    uploads = [
        asset_bucket(infra, env, c)
        for env in group.environments
        for c in CI_UPLOADS
        if c in infra.buckets
    ]
    reads, writes = [], []
    for env in group.environments:
        for prefix_name, prefix in infra.secrets.prefixes.items():
            path = parameter_prefix(infra, env, prefix_name) + "/*"
            if "ci" in prefix.read or "ci" in prefix.write:
                reads.append(path)
            if "ci" in prefix.write:
                writes.append(path)
        # Deploying records each service's version, and shows the one it replaces.
        reads.append(bundle_parameter(infra, env, "*"))
        writes.append(bundle_parameter(infra, env, "*"))
    return {
        "name": ci_role_name(infra, group_name),
        "group": group_name,
        "trusted_role_arns": list(infra.ci.assumed_by),
        "github": github_trust(infra, group_name),
        "upload_buckets": uploads,
        "read_parameter_paths": reads,
        "write_parameter_paths": writes,
    }


def github_trust(infra: Infra, group_name: str) -> GithubTrust | None:
    """The GitHub runs group `group_name`'s role trusts; None without ci.github or
    without a subject for the group (then only ci.assumed_by may assume it)."""
    github = infra.ci.github
    subject = github.subjects.get(group_name) if github else None
    if github is None or subject is None:
        return None
    return {
        "provider_arn": github.provider_arn,
        "subjects": github_oidc.subjects(github.repository, subject),
    }


def group_infra(config: Config, group: str) -> Infra:
    """What a shared stack sees: the environment's effective configuration in a
    group of one (its overrides apply), the top-level one in a shared group."""
    environments = config.infra.vpc_groups[group].environments
    return config.environments[environments[0]] if len(environments) == 1 else config.infra


def database(infra: Infra, group_name: str) -> DatabaseValues | None:
    """VPC group `group_name`'s database, or None when the file has none."""
    if infra.database is None:
        return None
    db = infra.database
    serverless: ServerlessValues | None = None
    if db.serverless:
        serverless = {
            "min_capacity": db.serverless.min_capacity,
            "max_capacity": db.serverless.max_capacity,
        }
    return {
        "name": group_resource(infra, group_name),
        "engine_version": db.engine_version,
        "instance_class": db.instance_class,
        "replicas": db.replicas,
        "serverless": serverless,
        "backup_retention_days": db.backup_retention_days,
        "backtrack_seconds": 0 if db.serverless else BACKTRACK_SECONDS,
        "deletion_protection": LIFTABLE_PROTECTION,
        "delete_backups_with_stack": not keeps_deleted_data(infra, group_name),
    }


def stack_context(config: Config, stack: Stack) -> EnvironmentStackValues | SharedStackValues:
    """Everything the templates of `stack` see. Raises ValueError for an
    environment stack without an environment."""
    if stack.kind != ENVIRONMENT:
        return shared_context(config, stack)
    if stack.environment is None:
        raise ValueError(f"environment stack {stack.name} names no environment")
    return environment_context(config, stack, stack.environment)


def _stack_values(config: Config, infra: Infra, stack: Stack) -> StackValues:
    endpoint = config.options.aws_endpoint
    return {
        **common(infra, endpoint),
        "stack": StackInfo(
            stack.name,
            stack.kind,
            stack.group,
            stack.environment,
            infra.vpc_groups[stack.group].production,
        ),
        "backend": backend(infra, stack, endpoint),
        "default_tags": default_tags(infra, stack),
        "skips": skip_comments(Where(infra, stack.group, stack.environment)),
    }


def environment_context(config: Config, stack: Stack, env: str) -> EnvironmentStackValues:
    """The values of environment `env`'s stack, from its effective configuration."""
    infra = config.environments[env]
    return {
        **_stack_values(config, infra, stack),
        "remote_state": remote_state(infra, stack, config.options.aws_endpoint),
        "services": services(infra, env, config.ami_for, config.root_device_for),
        "logins": logins(infra),
        "data": data(infra, env),
        "web": bool(infra.web_services()),
    }


def shared_context(config: Config, stack: Stack) -> SharedStackValues:
    """The values of VPC group `stack.group`'s shared stack."""
    infra = group_infra(config, stack.group)
    return {
        **_stack_values(config, infra, stack),
        "network": network(infra, stack.group),
        "access": access(infra, stack.group),
        "database": database(infra, stack.group),
        "ci": ci(infra, stack.group),
        "deletion_protection": infra.vpc_groups[stack.group].deletion_protection,
    }
