"""subnets.plan on its own: one aligned block per tier, a slot per zone position."""

from __future__ import annotations

import ipaddress

import pytest

from levels_tf import subnets

DEFAULT_BITS = {"public": 5, "private": 4, "database": 5}
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


def _networks(plan: list[subnets.ZoneSubnets]) -> list[ipaddress.IPv4Network]:
    return [
        ipaddress.IPv4Network(cidr)
        for zone in plan
        for cidr in (zone.public, zone.private, zone.database)
    ]


def test_a_16_gives_20_private_and_21_public_and_database_subnets():
    plan = subnets.plan("10.0.0.0/16", ZONES, DEFAULT_BITS)
    assert [zone.zone for zone in plan] == ZONES
    assert plan[0] == subnets.ZoneSubnets(
        "us-east-1a", "10.0.96.0/21", "10.0.0.0/20", "10.0.144.0/21"
    )
    assert plan[1].private == "10.0.16.0/20" and plan[1].public == "10.0.104.0/21"


def test_subnets_lie_in_the_vpc_and_never_overlap():
    vpc = ipaddress.IPv4Network("10.1.0.0/16")
    found = _networks(subnets.plan(str(vpc), ZONES * 2, DEFAULT_BITS))
    assert all(net.subnet_of(vpc) for net in found)
    assert not any(a.overlaps(b) for i, a in enumerate(found) for b in found[i + 1 :])


def test_adding_zones_moves_no_existing_subnet():
    two = subnets.plan("10.2.0.0/16", ZONES[:2], DEFAULT_BITS)
    six = subnets.plan("10.2.0.0/16", [f"z{i}" for i in range(6)], DEFAULT_BITS)

    def cidrs(plan: list[subnets.ZoneSubnets]) -> list[tuple[str, str, str]]:
        return [(zone.public, zone.private, zone.database) for zone in plan]

    assert cidrs(two) == cidrs(six[:2])


def test_more_than_six_zones_do_not_fit():
    with pytest.raises(subnets.PlanError, match="at most 6 zones"):
        subnets.plan("10.0.0.0/16", [f"z{i}" for i in range(7)], DEFAULT_BITS)


def test_subnets_smaller_than_a_28_are_refused():
    with pytest.raises(subnets.PlanError, match="smaller than AWS's /28"):
        subnets.plan("10.0.0.0/24", ZONES, {"public": 5, "private": 4, "database": 5})


def test_blocks_that_overflow_the_vpc_are_refused():
    with pytest.raises(subnets.PlanError, match="use a larger CIDR or more newbits"):
        subnets.plan("10.0.0.0/16", ZONES, {"public": 2, "private": 2, "database": 2})
