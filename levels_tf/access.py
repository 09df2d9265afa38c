"""Operator access, decided from data: the OpenSSH client configuration of
the bastions and application servers, the security group rules that allow a
database tunnel, the server it goes through, and the ssh command that opens it.

Pure: AWS answers come in as aws.py returns them (DescribeInstances and
DescribeSecurityGroups items), Terraform outputs as plain values; text,
decisions and argv lists come out. The terms are OpenSSH's (ssh_config(5):
Host, HostName, User, ProxyJump, patterns) and EC2's (IpPermissions).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import LevelsError, UsageError

HEADER = "# levels-tf ssh-config:"
"""The first line of every configuration ssh-config writes: --write replaces only such a file."""

SSH_PORT = 22
LOOPBACK = "127.0.0.1"


class AccessRefused(LevelsError):
    """The security groups do not allow the tunnel asked for (exit 1)."""


@dataclass(frozen=True)
class Bastion:
    """A VPC group's bastion: `alias` (<project>-<group>-bastion), `address`
    its Elastic IP (the shared stack's `bastion` output), its security group,
    and the private addresses of its running instances."""

    group: str
    alias: str
    address: str
    security_group_id: str
    private_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Server:
    """A running application instance: `alias` <fleet>-<n> (n from 1, by launch
    time), `fleet` its Name tag, `address` its private IPv4 address."""

    alias: str
    fleet: str
    instance_id: str
    address: str
    security_group_ids: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Database:
    """A group's database cluster as the shared stack's `database` output gives it."""

    endpoint: str
    reader_endpoint: str
    port: int
    security_group_id: str


def address_patterns(cidr: str) -> list[str]:
    """OpenSSH host patterns matching exactly the IPv4 addresses of `cidr`.

    A prefix on an octet boundary is one pattern ("10.1.0.0/16" ->
    ["10.1.*"]); any other prefix lists the next octet's values
    ("10.0.0.0/23" -> ["10.0.0.*", "10.0.1.*"]; a /25 to /31 its
    addresses); /32 is the address itself.
    UsageError for anything but an IPv4 network."""
    try:
        network = ipaddress.IPv4Network(cidr)
    except ValueError:
        raise UsageError(f"{cidr!r} is no IPv4 CIDR block: give one such as 10.0.0.0/16") from None
    whole = -(-network.prefixlen // 8) * 8  # up to the next octet boundary
    patterns = []
    for part in network.subnets(new_prefix=whole) if whole > network.prefixlen else [network]:
        octets = str(part.network_address).split(".")[: part.prefixlen // 8]
        if len(octets) == 4:
            patterns.append(".".join(octets))
        else:
            patterns.append(".".join(octets) + ".*" if octets else "*")
    return patterns


def vpc_patterns(cidrs: Mapping[str, str]) -> dict[str, list[str]]:
    """Host patterns of each VPC group's CIDR (`cidrs`: group -> CIDR), left
    out for groups whose CIDRs overlap another's: an address there could be
    behind either bastion."""
    networks = {group: ipaddress.IPv4Network(cidr) for group, cidr in cidrs.items()}
    return {
        group: address_patterns(cidrs[group])
        for group, network in networks.items()
        if not any(network.overlaps(other) for name, other in networks.items() if name != group)
    }


def servers(instances: Iterable[Mapping[str, Any]]) -> list[Server]:
    """The application servers of DescribeInstances items, in the order
    given, each named <Name tag>-<n>; items without a private address are left out."""
    counts: dict[str, int] = {}
    found = []
    for item in instances:
        address = item.get("PrivateIpAddress")
        if not address:
            continue
        fleet = _tag(item, "Name") or item["InstanceId"]
        counts[fleet] = counts.get(fleet, 0) + 1
        found.append(
            Server(
                alias=f"{fleet}-{counts[fleet]}",
                fleet=fleet,
                instance_id=item["InstanceId"],
                address=address,
                security_group_ids=tuple(g["GroupId"] for g in item.get("SecurityGroups", [])),
            )
        )
    return found


def private_addresses(instances: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The private IPv4 addresses of DescribeInstances items."""
    return tuple(item["PrivateIpAddress"] for item in instances if item.get("PrivateIpAddress"))


def _tag(item: Mapping[str, Any], key: str) -> str | None:
    return next((t["Value"] for t in item.get("Tags", []) if t.get("Key") == key), None)


def ssh_config(
    bastions: Sequence[Bastion],
    fleets: Mapping[str, Sequence[Server]],
    patterns: Mapping[str, Sequence[str]],
    *,
    user: str,
    identity: str | None = None,
    source: str = "infra.yaml",
) -> str:
    """The OpenSSH client configuration: one Host entry per bastion (its
    Elastic IP), one per application server (its private address, through
    its group's bastion: `fleets` by group), then one entry per group's
    address patterns, so servers started later are reached the same way.
    Specific entries come first: ssh_config(5) takes the first value found.
    Host key checking is left as the user has it."""
    login = [f"  User {user}"]
    if identity:
        login += [f"  IdentityFile {_quoted(identity)}", "  IdentitiesOnly yes"]
    lines = [
        f"{HEADER} the bastions and application servers of {source}.",
        "# levels-tf ssh-config --write replaces this file; edit infra.yaml instead.",
    ]
    for bastion in bastions:
        lines += ["", f"Host {bastion.alias}", f"  HostName {bastion.address}", *login]
        for server in fleets.get(bastion.group, ()):
            lines += [
                "",
                f"Host {server.alias}",
                f"  HostName {server.address}",
                f"  ProxyJump {bastion.alias}",
                *login,
            ]
    for bastion in bastions:
        if patterns.get(bastion.group):
            lines += [
                "",
                f"# Any address in VPC group {bastion.group}, through its bastion.",
                "Host " + " ".join(patterns[bastion.group]),
                f"  ProxyJump {bastion.alias}",
                *login,
            ]
    return "\n".join(lines) + "\n"


def check_identity(path: str) -> None:
    """UsageError when ssh_config(5) cannot hold `path` as an IdentityFile
    (a double quote or a newline in it)."""
    if '"' in path or "\n" in path:
        raise UsageError(
            f"--identity {path!r}: ssh_config cannot hold a path with a double quote or "
            "newline; move the key to another path"
        )


def _quoted(path: str) -> str:
    """A path as ssh_config(5) reads one argument: in double quotes when it has a space."""
    check_identity(path)
    return f'"{path}"' if " " in path else path


def is_ours(text: str) -> bool:
    """Whether an existing file's text is a configuration ssh-config wrote."""
    return text.startswith(HEADER)


# -- security groups ------------------------------------------------------------


def admitting(
    groups: Iterable[Mapping[str, Any]],
    port: int,
    *,
    sources: Iterable[str] = (),
    addresses: Iterable[str] = (),
) -> list[str]:
    """Which ingress rules of `groups` (DescribeSecurityGroups items) admit
    TCP `port` from a member of one of the security groups `sources` or from
    one of `addresses`; each as "<group id>: from <source>". A rule admits a
    port when its protocol is tcp (or -1, all) and the port lies in its
    FromPort..ToPort range."""
    sources = set(sources)
    hosts = [ipaddress.ip_address(a) for a in addresses]
    found = []
    for group in groups:
        for rule in group.get("IpPermissions", []):
            if not _covers(rule, port):
                continue
            for pair in rule.get("UserIdGroupPairs", []):
                if pair.get("GroupId") in sources:
                    found.append(f"{group['GroupId']}: from {pair['GroupId']}")
            for block in rule.get("IpRanges", []):
                network = ipaddress.ip_network(block["CidrIp"], strict=False)
                if any(host in network for host in hosts):
                    found.append(f"{group['GroupId']}: from {block['CidrIp']}")
    return found


def _covers(rule: Mapping[str, Any], port: int) -> bool:
    protocol = str(rule.get("IpProtocol", ""))
    if protocol == "-1":
        return True
    if protocol not in ("tcp", "6"):
        return False
    low, high = rule.get("FromPort"), rule.get("ToPort")
    return low is not None and high is not None and int(low) <= port <= int(high)


def by_id(groups: Iterable[Mapping[str, Any]], ids: Iterable[str]) -> list[Mapping[str, Any]]:
    """The items of `groups` whose GroupId is one of `ids`."""
    wanted = set(ids)
    return [group for group in groups if group["GroupId"] in wanted]


def check_bastion(
    bastion: Bastion, database: Database, groups: Sequence[Mapping[str, Any]]
) -> None:
    """AccessRefused when the database's security group admits the bastion
    itself: by the bastion's group, or by a CIDR holding one of its addresses.
    The bastion carries SSH only; the database is reached from an application server."""
    direct = admitting(
        by_id(groups, [database.security_group_id]),
        database.port,
        sources=[bastion.security_group_id],
        addresses=(bastion.address, *bastion.private_addresses),
    )
    if direct:
        raise AccessRefused(
            f"the database's security group admits the bastion {bastion.alias} on port "
            f"{database.port} ({'; '.join(direct)}): only application servers may reach it; "
            "remove that rule, then open the tunnel again"
        )


def choose_server(
    candidates: Sequence[Server],
    bastion: Bastion,
    database: Database,
    groups: Sequence[Mapping[str, Any]],
    env: str,
) -> Server:
    """The first of `candidates` the database's security group admits on its
    port and whose own groups admit SSH from the bastion's group (or one of
    its private addresses): the second hop of the tunnel. AccessRefused,
    naming the groups, when there is none."""
    database_group = by_id(groups, [database.security_group_id])
    for server in candidates:
        reaches_database = admitting(
            database_group,
            database.port,
            sources=server.security_group_ids,
            addresses=[server.address],
        )
        reached_by_ssh = admitting(
            by_id(groups, server.security_group_ids),
            SSH_PORT,
            sources=[bastion.security_group_id],
            addresses=bastion.private_addresses,
        )
        if reaches_database and reached_by_ssh:
            return server
    checked = ", ".join(
        f"{s.alias} ({' '.join(s.security_group_ids) or 'no group'})" for s in candidates
    )
    return _refuse(
        f"no running application server of {env} is both admitted by the database's security "
        f"group {database.security_group_id} on port {database.port} and reachable by SSH from "
        f"the bastion's group {bastion.security_group_id}"
        + (f" (checked: {checked})" if candidates else " (none is running)")
        + "; start one, or fix the rules in infra.yaml and apply"
    )


def _refuse(message: str) -> Server:
    raise AccessRefused(message)


def tunnel_argv(
    *,
    user: str,
    bastion: Bastion,
    server: Server,
    target: str,
    port: int,
    local_port: int,
    ssh_config_file: str | None = None,
) -> list[str]:
    """The ssh command of the double tunnel: SSH to `server` through the
    bastion (ProxyJump), and from the server a forward of 127.0.0.1:`local_port`
    to `target`:`port`, so the bastion carries only SSH. No command runs (-N);
    ssh exits when the forward cannot be set up, and never asks (BatchMode:
    a host key not yet known is refused, never written). `ssh_config_file` is
    passed as -F, which ssh hands to the jump too."""
    for address in (bastion.address, server.address):
        ipaddress.ip_address(address)  # ValueError: never an option or a name
    config = ["-F", ssh_config_file] if ssh_config_file else []
    return [
        "ssh",
        *config,
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ServerAliveInterval=30",
        "-J",
        f"{user}@{bastion.address}",
        "-L",
        f"{LOOPBACK}:{local_port}:{target}:{port}",
        f"{user}@{server.address}",
    ]
