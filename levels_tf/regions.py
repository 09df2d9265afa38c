"""Availability zones per region, as a static table.

The table lists the zones that accept new subnets for general-purpose
instances; a VPC group uses the first `azs` of them, in this order, so adding
a zone later never renumbers the zones already in use.
"""

from __future__ import annotations

ZONES: dict[str, tuple[str, ...]] = {
    "us-east-1": ("a", "b", "c", "d", "e", "f"),
    "us-east-2": ("a", "b", "c"),
    "us-west-1": ("a", "c"),
    "us-west-2": ("a", "b", "c", "d"),
    "ca-central-1": ("a", "b", "d"),
    "eu-west-1": ("a", "b", "c"),
    "eu-west-2": ("a", "b", "c"),
    "eu-west-3": ("a", "b", "c"),
    "eu-central-1": ("a", "b", "c"),
    "eu-north-1": ("a", "b", "c"),
    "eu-south-1": ("a", "b", "c"),
    "ap-northeast-1": ("a", "c", "d"),
    "ap-northeast-2": ("a", "b", "c", "d"),
    "ap-southeast-1": ("a", "b", "c"),
    "ap-southeast-2": ("a", "b", "c"),
    "ap-south-1": ("a", "b", "c"),
    "sa-east-1": ("a", "b", "c"),
}


def zones(region: str, count: int) -> list[str]:
    """The first `count` zone names of `region`."""
    return [region + letter for letter in ZONES[region][:count]]
