"""What a destroy must know about a stack's state before it starts. Pure.

Reads the JSON of `terraform show -json` (state format 1.x: `values`,
`root_module`, `child_modules`, each resource with `address`, `mode`, `type`
and `values`) and answers three questions: which managed resources the
stack still has, which of them refuse deletion until a setting is turned
off, and which S3 buckets it would delete.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

PROTECTION: Mapping[str, str] = {
    "aws_lb": "enable_deletion_protection",
    "aws_alb": "enable_deletion_protection",
    "aws_rds_cluster": "deletion_protection",
    "aws_db_instance": "deletion_protection",
    "aws_instance": "disable_api_termination",
    "aws_dynamodb_table": "deletion_protection_enabled",
    "aws_cloudformation_stack": "enable_termination_protection",
}
"""Resource types whose deletion AWS refuses while an argument is true, by that
argument (the aws provider's names, hashicorp/aws 5.x documentation). The
provider then retries the delete until its timeout, or fails: either way
nothing but turning the argument off first lets the destroy through."""

KEEPS_DATA: Mapping[str, str] = {
    "aws_backup_vault": "force_destroy",
}
"""Resource types AWS refuses to delete while they hold data, unless an
argument is true, by that argument: a backup vault with recovery points
(AWS Backup DeleteBackupVault fails with InvalidRequestException; the aws
provider's `force_destroy` deletes the recovery points first). Where that
argument is false the resource counts as protected: destroy refuses at once
instead of failing at it halfway, and --lift-protection turns it on with
the protection. S3 buckets, which have `force_destroy` too, are emptied by
the destroy itself (see `buckets`)."""

LIFT_VARIABLE = "deletion_protection"
"""The root variable of a shared stack that every protection argument it renders follows."""


@dataclass(frozen=True)
class Resource:
    """One managed resource of a state: its address, type and attribute values."""

    address: str
    type: str
    values: Mapping[str, Any]


def resources(state: Mapping[str, Any]) -> list[Resource]:
    """Every managed resource (not data source) of a `show -json` state, by address."""
    root = (state.get("values") or {}).get("root_module") or {}
    found = [
        Resource(r["address"], r["type"], r.get("values") or {})
        for r in _walk(root)
        if r.get("mode") == "managed"
    ]
    return sorted(found, key=lambda r: r.address)


def _walk(module: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from module.get("resources") or []
    for child in module.get("child_modules") or []:
        yield from _walk(child)


def protected(found: list[Resource]) -> list[tuple[str, str]]:
    """(address, argument) of every resource whose deletion protection is on,
    or that keeps the data AWS refuses to delete it with (KEEPS_DATA)."""
    on = [
        (r.address, PROTECTION[r.type])
        for r in found
        if r.type in PROTECTION and r.values.get(PROTECTION[r.type])
    ]
    keeps = [
        (r.address, KEEPS_DATA[r.type])
        for r in found
        if r.type in KEEPS_DATA and not r.values.get(KEEPS_DATA[r.type])
    ]
    return sorted(on + keeps)


def buckets(found: list[Resource]) -> dict[str, str]:
    """The S3 buckets a destroy deletes: {bucket name: address}."""
    return {
        str(r.values["bucket"]): r.address
        for r in found
        if r.type == "aws_s3_bucket" and r.values.get("bucket")
    }
