"""The values each template sees, computed from the validated configuration.

Everything here is plain data (dicts, lists, strings, numbers) in a stable
order; templates only lay it out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import __version__, regions, subnets
from .hcl import Expression
from .model import Infra, as_dict
from .names import (
    STATE_FILE,
    asset_bucket,
    bastion_name,
    bundle_parameter,
    ci_role_name,
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


def common(infra: Infra, endpoint: str | None = None) -> dict[str, Any]:
    return {
        "emulator": {"endpoint": endpoint, "services": list(ENDPOINT_SERVICES)}
        if endpoint
        else None,
        "project": infra.project,
        "region": infra.region,
        "terraform_version": TERRAFORM_VERSION,
        "aws_provider_root": AWS_PROVIDER_ROOT,
        "aws_provider_module": AWS_PROVIDER_MODULE,
        "levels_tf_version": __version__,
    }


def backend(infra: Infra, stack: Stack, endpoint: str | None = None) -> dict[str, Any]:
    if infra.state.backend == "local":
        return {"type": "local", "settings": {"path": STATE_FILE}}
    settings: dict[str, Any] = {
        "bucket": state_bucket(infra, stack.group),
        "key": stack.state_key,
        "region": infra.region,
        "encrypt": True,
        "use_lockfile": True,
    }
    if endpoint:
        settings.update(endpoint_settings(endpoint))
    return {"type": "s3", "settings": settings}


def remote_state(infra: Infra, stack: Stack, endpoint: str | None = None) -> dict[str, Any]:
    """How an environment stack reads the outputs of its shared stack."""
    shared = Stack(shared_stack(stack.group), "shared", stack.group)
    if infra.state.backend == "local":
        return {"backend": "local", "config": {"path": f"../{shared.name}/{STATE_FILE}"}}
    config: dict[str, Any] = {
        "bucket": state_bucket(infra, stack.group),
        "key": shared.state_key,
        "region": infra.region,
    }
    if endpoint:
        config.update(endpoint_settings(endpoint))
    return {"backend": "s3", "config": config}


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


def network(infra: Infra, group_name: str) -> dict[str, Any]:
    group = infra.vpc_groups[group_name]
    zone_names = regions.zones(infra.region, group.azs)
    plan = subnets.plan(group.cidr, zone_names, as_dict(group.subnets))
    zones = {
        zone.zone: {
            "slot": slot,
            "public": zone.public,
            "private": zone.private,
            "database": zone.database,
        }
        for slot, zone in enumerate(plan)
    }
    ssh = sorted(infra.bastion.allowed_cidrs) if infra.bastion else []
    return {
        "name": group_resource(infra, group_name),
        "cidr": group.cidr,
        "nat_mode": group.nat_mode,
        "zones": zones,
        "ssh_ingress_cidrs": ssh,
        "database_port": MYSQL_PORT,
        "flow_log_retention_days": group.flow_logs.retention_days,
        "flow_log_traffic": group.flow_logs.traffic,
    }


# Protection follows a root variable of the shared stack, whose default is the
# group's setting, so `levels-tf destroy --lift-protection` can turn it off in
# a reviewed apply before it destroys.
LIFTABLE_PROTECTION = Expression("var.deletion_protection")


def access(infra: Infra, group_name: str) -> dict[str, Any]:
    """The shared stack's bastion, load balancer and per-environment access groups."""
    group = infra.vpc_groups[group_name]
    result: dict[str, Any] = {
        "environments": list(group.environments),
        "bastion": None,
        "load_balancer": None,
    }
    if infra.bastion:
        result["bastion"] = {
            "name": bastion_name(infra, group_name),
            "allowed_cidrs": sorted(infra.bastion.allowed_cidrs),
            "users": dict(sorted(infra.bastion.users.items())),
            "instance_type": infra.bastion.instance_type,
        }
    if infra.web_services():
        hostnames = [host for env in group.environments for host in infra.hostnames(env)]
        lb = infra.load_balancer
        result["load_balancer"] = {
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
    return result


def services(
    infra: Infra,
    env: str,
    ami_for: Callable[[str], str | None],
    root_device_for: Callable[[str], str | None] = lambda image: None,
) -> dict[str, Any]:
    """Every fleet of environment `env`, as the service module takes it.

    `ami_for` and `root_device_for` give an image's baked AMI and its root
    device name from images.lock (None: not baked, or not recorded)."""
    group = infra.vpc_groups[infra.group_of(env)]
    slot = group.environments.index(env)
    hosts = infra.hostnames(env)
    deployments = (
        asset_bucket(infra, env, "deployments") if "deployments" in infra.buckets else None
    )
    result = {}
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
        routes: dict[str, Any] = {}
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


def service_role(name: str) -> Expression:
    return Expression(f"module.service[{hcl_quote(name)}].role_arn")


def function_output(name: str, output: str) -> Expression:
    return Expression(f"module.function[{hcl_quote(name)}].{output}")


def hcl_quote(text: str) -> str:
    return '"' + text + '"'


# Days Secrets Manager keeps a deleted secret recoverable, under its name, in
# production (DeleteSecret's RecoveryWindowInDays, 7 to 30; AWS Secrets
# Manager API Reference). Elsewhere 0: deleted at once.
SECRET_RECOVERY_DAYS = 30


def keeps_deleted_data(infra: Infra, group: str) -> bool:
    """Whether destroying the stacks of VPC group `group` keeps the data AWS can
    keep after a delete: AWS Backup recovery points, and deleted secrets for
    their recovery window, which holds their names. True in production, where
    that data outlives the stack; elsewhere a destroy deletes it, so the stacks
    can be created again at once under the same names."""
    return infra.vpc_groups[group].production


def data(infra: Infra, env: str) -> dict[str, Any]:
    """An environment's data: key, buckets, queues, topics, functions, parameters."""
    name = environment_resource(infra, env)
    buckets: dict[str, Any] = {}
    # References to other modules stay out of the maps modules iterate over,
    # so Terraform can expand every module before wiring them together.
    access: dict[str, Any] = {}
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
        triggers = {}
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
    topics = {}
    for topic_name, topic in infra.topics.items():
        queues = [s.split(".", 1)[1] for s in topic.subscribers]
        for queue in queues:
            subscribers[queue][topic_name] = Expression(
                f"module.topic[{hcl_quote(topic_name)}].arn"
            )
        topics[topic_name] = {"name": resource_name(infra, env, topic_name)}
        subscriptions[topic_name] = {
            q: Expression(f"module.queue[{hcl_quote(q)}].arn") for q in queues
        }
    queues = {
        queue_name: {
            "name": resource_name(infra, env, queue_name),
            "visibility_timeout": queue.visibility_timeout,
            "retention_days": queue.retention_days,
            "dead_letter_after": queue.dead_letter_after,
        }
        for queue_name, queue in infra.queues.items()
    }
    functions = {
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
    cdn = None
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
            },
        }
    prefixes = {
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


def ci(infra: Infra, group_name: str) -> dict[str, Any]:
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
        "assumed_by": list(infra.ci.assumed_by),
        "upload_buckets": uploads,
        "read_parameter_paths": reads,
        "write_parameter_paths": writes,
    }


def group_infra(config: Config, group: str) -> Infra:
    """What a shared stack sees: the environment's effective configuration in a
    group of one (its overrides apply), the top-level one in a shared group."""
    environments = config.infra.vpc_groups[group].environments
    return config.environments[environments[0]] if len(environments) == 1 else config.infra


def database(infra: Infra, group_name: str) -> dict[str, Any] | None:
    if infra.database is None:
        return None
    db = infra.database
    return {
        "name": group_resource(infra, group_name),
        "engine_version": db.engine_version,
        "instance_class": db.instance_class,
        "replicas": db.replicas,
        "serverless": as_dict(db.serverless) if db.serverless else None,
        "backup_retention_days": db.backup_retention_days,
        "backtrack_seconds": 0 if db.serverless else BACKTRACK_SECONDS,
        "deletion_protection": LIFTABLE_PROTECTION,
        "delete_backups_with_stack": not keeps_deleted_data(infra, group_name),
    }


def stack_context(config: Config, stack: Stack) -> dict[str, Any]:
    if stack.kind == ENVIRONMENT:
        infra = config.environments[stack.environment]
    else:
        infra = group_infra(config, stack.group)
    endpoint = config.options.aws_endpoint
    context = common(infra, endpoint)
    context.update(
        {
            "stack": {
                "name": stack.name,
                "kind": stack.kind,
                "group": stack.group,
                "environment": stack.environment,
                "production": infra.vpc_groups[stack.group].production,
            },
            "backend": backend(infra, stack, endpoint),
            "default_tags": default_tags(infra, stack),
        }
    )
    if stack.kind == ENVIRONMENT:
        context["remote_state"] = remote_state(infra, stack, endpoint)
        context["services"] = services(
            infra, stack.environment, config.ami_for, config.root_device_for
        )
        context["data"] = data(infra, stack.environment)
        context["web"] = bool(infra.web_services())
    else:
        context["network"] = network(infra, stack.group)
        context["access"] = access(infra, stack.group)
        context["database"] = database(infra, stack.group)
        context["ci"] = ci(infra, stack.group)
        context["deletion_protection"] = infra.vpc_groups[stack.group].deletion_protection
    return context
