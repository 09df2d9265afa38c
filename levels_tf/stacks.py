"""The Terraform root modules (stacks) of a configuration and their order.

One shared stack per VPC group (network, and later bastion, load balancer,
database, keys) and one stack per environment, which reads its shared stack's
outputs. Order is deterministic: groups and environments as infra.yaml lists
them, each shared stack before the environments that depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import names
from .model import Infra

SHARED = "shared"
ENVIRONMENT = "environment"


@dataclass(frozen=True)
class Stack:
    name: str
    kind: str
    group: str
    environment: str | None = None
    depends_on: tuple[str, ...] = field(default=())

    @property
    def state_key(self) -> str:
        return names.state_key(self.name)


def stacks(infra: Infra) -> list[Stack]:
    """Every stack, each after all it depends on."""
    result = []
    for group, vpc_group in infra.vpc_groups.items():
        shared = names.shared_stack(group)
        result.append(Stack(shared, SHARED, group))
        for env in vpc_group.environments:
            result.append(Stack(env, ENVIRONMENT, group, env, (shared,)))
    return result
