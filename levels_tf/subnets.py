"""Carve a VPC CIDR into public, private and database subnets per zone.

Each tier gets one contiguous block holding SLOTS equal subnets, one slot per
zone position. The blocks are laid out largest subnets first, so every subnet
stays aligned to its own size. Reserving a slot for each of the six zones a
group may span means it can grow from 2 to 6 zones without moving a subnet.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SLOTS = 6
TIERS = ("private", "public", "database")
SMALLEST_SUBNET_PREFIX = 28


class PlanError(ValueError):
    """The subnet plan does not fit the VPC CIDR."""


@dataclass(frozen=True)
class ZoneSubnets:
    zone: str
    public: str
    private: str
    database: str


def plan(cidr: str, zones: list[str], newbits: dict[str, int]) -> list[ZoneSubnets]:
    """Subnets for each zone; `newbits` gives each tier's subnet size relative to the VPC."""
    network = ipaddress.ip_network(cidr)
    if len(zones) > SLOTS:
        raise PlanError(f"at most {SLOTS} zones fit the subnet plan; give `azs` {SLOTS} or fewer")
    cursor = 0
    start: dict[str, int] = {}
    total = network.num_addresses
    for tier in sorted(TIERS, key=lambda t: (newbits[t], TIERS.index(t))):
        prefix = network.prefixlen + newbits[tier]
        if prefix > SMALLEST_SUBNET_PREFIX:
            raise PlanError(
                f"{tier} subnets would be /{prefix}, smaller than AWS's /{SMALLEST_SUBNET_PREFIX}; "
                "give the VPC group a larger `cidr` (a /16 fits every tier)"
            )
        size = total >> newbits[tier]
        start[tier] = cursor
        cursor += size * SLOTS
    if cursor > total:
        raise PlanError(
            f"{SLOTS} slots per tier need {cursor} addresses, "
            f"but {cidr} has {total}; use a larger CIDR or more newbits"
        )
    base = int(network.network_address)
    result = []
    for index, zone in enumerate(zones):
        cidrs = {}
        for tier in TIERS:
            size = total >> newbits[tier]
            address = ipaddress.ip_address(base + start[tier] + index * size)
            cidrs[tier] = f"{address}/{network.prefixlen + newbits[tier]}"
        result.append(ZoneSubnets(zone, cidrs["public"], cidrs["private"], cidrs["database"]))
    return result
