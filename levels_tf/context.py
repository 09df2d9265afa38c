"""The values each template sees, computed from the validated configuration.

Everything here is plain data (dicts, lists, strings, numbers) in a stable
order; templates only lay it out.
"""

from __future__ import annotations

from typing import Any

from . import __version__, regions, subnets
from .model import Infra, as_dict
from .stacks import ENVIRONMENT, Stack, shared_name
from .validation import Config

TERRAFORM_VERSION = ">= 1.10"
AWS_PROVIDER_ROOT = "~> 5.100"
AWS_PROVIDER_MODULE = ">= 5.100"
MYSQL_PORT = 3306


def common(infra: Infra) -> dict[str, Any]:
    return {
        "project": infra.project,
        "region": infra.region,
        "terraform_version": TERRAFORM_VERSION,
        "aws_provider_root": AWS_PROVIDER_ROOT,
        "aws_provider_module": AWS_PROVIDER_MODULE,
        "levels_tf_version": __version__,
    }


def backend(infra: Infra, stack: Stack) -> dict[str, Any]:
    if infra.state.backend == "local":
        return {"type": "local", "settings": {"path": "terraform.tfstate"}}
    return {
        "type": "s3",
        "settings": {
            "bucket": infra.state_bucket(stack.group),
            "key": stack.state_key,
            "region": infra.region,
            "encrypt": True,
            "use_lockfile": True,
        },
    }


def remote_state(infra: Infra, stack: Stack) -> dict[str, Any]:
    """How an environment stack reads the outputs of its shared stack."""
    shared = Stack(shared_name(stack.group), "shared", stack.group)
    if infra.state.backend == "local":
        return {"backend": "local", "config": {"path": f"../{shared.name}/terraform.tfstate"}}
    return {
        "backend": "s3",
        "config": {
            "bucket": infra.state_bucket(stack.group),
            "key": shared.state_key,
            "region": infra.region,
        },
    }


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
        "name": f"{infra.project}-{group_name}",
        "cidr": group.cidr,
        "nat_mode": group.nat_mode,
        "zones": zones,
        "ssh_ingress_cidrs": ssh,
        "database_port": MYSQL_PORT,
        "flow_log_retention_days": group.flow_logs.retention_days,
        "flow_log_traffic": group.flow_logs.traffic,
    }


def stack_context(config: Config, stack: Stack) -> dict[str, Any]:
    infra = config.infra
    if stack.kind == ENVIRONMENT:
        infra = config.environments[stack.environment]
    context = common(infra)
    context.update(
        {
            "stack": {
                "name": stack.name,
                "kind": stack.kind,
                "group": stack.group,
                "environment": stack.environment,
                "production": infra.vpc_groups[stack.group].production,
            },
            "backend": backend(infra, stack),
            "default_tags": default_tags(infra, stack),
        }
    )
    if stack.kind == ENVIRONMENT:
        context["remote_state"] = remote_state(infra, stack)
    else:
        context["network"] = network(infra, stack.group)
    return context
