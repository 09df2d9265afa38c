"""Where operator access finds its facts: infra.yaml (groups, environments,
fleets, bastion users), the shared stacks' outputs read through Terraform
(`terraform output -json`, as `levels-tf output` reads them), and the running
instances and security groups through the EC2 API (aws.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import access, names
from .aws import Aws
from .errors import LevelsError, UsageError
from .options import RenderOptions
from .terraform import EngineChoice, TerraformError
from .validation import Config, require_environment
from .workspace import open_workspace

# A DNS name or an IPv4 address, as RDS endpoints are: nothing ssh could read as an option.
HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")


class Lookup:
    """The facts of one configuration: its workspace (rendered tree, every
    stack, terraform) and the EC2 API of its region (at the tree's endpoint,
    if it was rendered with one). UsageError when the tree is stale."""

    def __init__(self, config_path: Path, options: RenderOptions, engine: EngineChoice):
        self.workspace = open_workspace(config_path, (), True, options, engine)
        self.config = self.workspace.config
        self.aws = Aws(self.config.infra.region, self.config.options.aws_endpoint)
        self._outputs: dict[str, dict[str, Any]] = {}

    def outputs(self, group: str) -> dict[str, Any]:
        """The outputs of `group`'s shared stack, name -> value (init first,
        then `terraform output -json`, once). LevelsError when Terraform cannot read them."""
        if group in self._outputs:
            return self._outputs[group]
        workspace = self.workspace
        stack = next(s for s in workspace.stacks if s.name == names.shared_stack(group))
        folder = workspace.folder(stack)
        try:
            workspace.init(stack)
            shown = workspace.terraform.output(folder)
        except TerraformError as error:
            raise LevelsError(
                f"cannot read the outputs of stack {stack.name}: {str(error).splitlines()[-1].strip()}"
            ) from None
        values = shown if isinstance(shown, dict) else {}
        self._outputs[group] = {
            name: item.get("value") for name, item in values.items() if isinstance(item, dict)
        }
        return self._outputs[group]

    def bastion(self, group: str) -> access.Bastion:
        """`group`'s bastion: its Elastic IP and security group from the shared
        stack's `bastion` output, its private addresses from its running instances."""
        infra = self.config.infra
        alias = names.bastion_name(infra, group)
        value = self.outputs(group).get("bastion")
        stack = names.shared_stack(group)
        if not isinstance(value, Mapping) or not value.get("public_ip"):
            raise LevelsError(
                f"stack {stack} has no bastion output yet: run `levels-tf plan {stack}` and "
                f"`levels-tf apply {stack}` first"
            )
        running = self.aws.instances_named([alias])
        return access.Bastion(
            group=group,
            alias=alias,
            address=str(value["public_ip"]),
            security_group_id=str(value.get("security_group_id") or ""),
            private_addresses=access.private_addresses(running),
        )

    def database(self, group: str) -> access.Database:
        """`group`'s database from its shared stack's `database` output."""
        stack = names.shared_stack(group)
        value = self.outputs(group).get("database")
        if not isinstance(value, Mapping) or not value.get("endpoint"):
            raise LevelsError(
                f"stack {stack} has no database output yet: run `levels-tf plan {stack}` and "
                f"`levels-tf apply {stack}` first"
            )
        found = access.Database(
            endpoint=str(value["endpoint"]),
            reader_endpoint=str(value.get("reader_endpoint") or value["endpoint"]),
            port=int(value["port"]),
            security_group_id=str(value.get("security_group_id") or ""),
        )
        for host in (found.endpoint, found.reader_endpoint):
            if not HOST_RE.fullmatch(host):
                raise LevelsError(
                    f"stack {stack}'s database output names endpoint {host!r}, no host name: "
                    f"check `levels-tf output {stack} database`"
                )
        if not found.security_group_id:
            raise LevelsError(
                f"stack {stack}'s database output lacks security_group_id: run `levels-tf render`, "
                f"then plan and apply {stack}"
            )
        return found

    def servers(self, env: str) -> list[access.Server]:
        """The running application servers of `env`'s fleets, by launch time."""
        fleets = [
            names.resource_name(self.config.infra, env, service)
            for service in self.config.environments[env].services
        ]
        return access.servers(self.aws.instances_named(fleets))


def environments(config: Config, env: str | None) -> list[str]:
    """`env` alone, or every environment; UsageError naming the defined ones when `env` is unknown."""
    known = config.infra.all_environments
    if env is None:
        return known
    return [require_environment(config, env)]


def login_user(config: Config, user: str | None) -> str:
    """The login name for both hops: `user` (one of bastion.users), or the
    only user of bastion.users. UsageError when infra.yaml has no bastion,
    `user` is not one of its users, or there are several and none was chosen."""
    bastion = config.infra.bastion
    if bastion is None:
        raise UsageError(
            f"{config.path} defines no bastion, the only SSH door into a VPC: add one (bastion: "
            "allowed_cidrs, users), then plan and apply the shared stacks"
        )
    users = sorted(bastion.users)
    if user is None:
        if len(users) == 1:
            return users[0]
        raise UsageError(f"bastion.users has {', '.join(users)}: give --user NAME")
    if user not in bastion.users:
        raise UsageError(f"--user {user!r} is not one of bastion.users ({', '.join(users)})")
    return user
