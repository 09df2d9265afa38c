"""Everything an emulator does differently from AWS, in one place, each with its reason.

A rehearsal adapts only its own temporary tree, never the user's, and its
report lists every adaptation and every known difference, so nothing is
ignored silently:

- Seeds: what a fresh emulator lacks and AWS has (public AMIs for each
  image base, a hosted zone for the domain). Seeding adds to the emulator,
  it changes nothing levels-tf renders.
- Adaptations: Terraform override files (`*_override.tf`, merged by
  Terraform over the rendered files) where the emulator cannot run a
  resource as rendered.
- Differences: resources the emulator reads back differently from what it
  was given, so every plan after an apply shows them again. Only these may
  be in a re-plan; anything else fails the rehearsal as real drift.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from . import packer_files
from .model import Infra
from .names import BASTION_AMI_PARAMETER

# The base of the AMI a rehearsal seeds for the bastion, whose id it sets in
# names.BASTION_AMI_PARAMETER.
BASTION_BASE = "amazon-linux-2023"

# The root device each base's published AMIs use (the AMIs of Canonical,
# Debian and Amazon in every region: /dev/sda1 for Ubuntu, /dev/xvda for
# Debian 12 and Amazon Linux 2023).
ROOT_DEVICES = {
    "ubuntu-22.04": "/dev/sda1",
    "ubuntu-24.04": "/dev/sda1",
    "debian-12": "/dev/xvda",
    "amazon-linux-2023": "/dev/xvda",
}
AMAZON_OWNER_ID = "137112412989"  # the account behind the "amazon" owner alias for Amazon Linux
SEED_DATE = "20240501"


@dataclass(frozen=True)
class Adaptation:
    """An override file of the rehearsal tree: `path` relative to the tree."""

    path: str
    text: str
    reason: str


@dataclass(frozen=True)
class Difference:
    """A planned change the emulator causes: `address` is an fnmatch pattern over "stack:resource address"."""

    address: str
    reason: str

    def matches(self, stack: str, address: str) -> bool:
        return fnmatch.fnmatchcase(f"{stack}:{address}", self.address)


@dataclass(frozen=True)
class ReadBack:
    """Attributes of a resource of module `module` that the emulator reads back
    differently from what it was given: the rehearsal tree ignores changes to
    them (`ignore_changes`), so no plan after an apply shows them again.
    `keep` are the resource's own ignore_changes, which the override must repeat."""

    module: str
    resource: str  # TYPE.NAME
    attributes: tuple[str, ...]
    reason: str
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class Seeded:
    """What the rehearsal made in the emulator before rendering: the hosted zone's id."""

    zone_id: str | None


@dataclass(frozen=True)
class Profile:
    """One emulator's gaps on levels-tf's platform."""

    name: str
    env: dict[str, str]  # the emulator's own settings
    state_bucket_tls_statement: (
        bool  # False: bootstrap leaves the TLS-only statement out, see tls_reason
    )
    tls_reason: str
    differences: tuple[Difference, ...]
    unreadable: tuple[
        Difference, ...
    ]  # checks (fnmatch over "step:check name") the emulator cannot answer
    read_back: tuple[ReadBack, ...]  # attributes the emulator does not read back as written
    policy_names_reason: str  # "" when scaling policies are named per group, as in AWS
    ami_parameter_reason: str  # "" when the emulator's own public parameter names an AMI it has
    backup_selection_reason: str  # "" when the emulator implements AWS Backup selections
    refreshes_instances: bool  # StartInstanceRefresh implemented
    ca_certificate_reason: (
        str  # "" when the emulator keeps the CA certificate an instance is created with
    )
    cdn_policies_reason: (
        str  # "" when the emulator implements CloudFront response headers policies and functions
    )
    bucket_logging_reason: (
        str  # "" when the emulator accepts access logging into the platform's log buckets
    )
    queue_policy_reason: str  # "" when setting one queue attribute keeps the queue's policy

    def adaptations(
        self, infra: Infra, shared_stacks: list[str], seeded: Seeded, tree: Path
    ) -> list[Adaptation]:
        """The override files for the rendered tree of `infra` in `tree` (its shared stacks named), with their reasons."""
        result: list[Adaptation] = []
        cdn = tree / "modules" / "cdn" / "main.tf"
        if self.cdn_policies_reason and cdn.exists():
            blocks = [
                'resource "aws_cloudfront_response_headers_policy" "security" {\n  count = 0\n}\n',
                'resource "aws_cloudfront_function" "strip_prefix" {\n  count = 0\n}\n',
                'resource "aws_cloudfront_distribution" "this" {\n'
                + "\n".join(_without_cdn_policies(cdn.read_text(encoding="utf-8")))
                + "}\n",
            ]
            result.append(
                Adaptation(
                    "modules/cdn/rehearsal_override.tf",
                    _file([self.cdn_policies_reason], blocks),
                    self.cdn_policies_reason,
                )
            )
        for stack in shared_stacks:
            blocks = []
            reasons = []
            if self.ami_parameter_reason:
                blocks.append(
                    f'module "bastion" {{\n  ami_parameter = "{BASTION_AMI_PARAMETER}"\n}}\n'
                )
                reasons.append(self.ami_parameter_reason)
            if infra.dns is not None and seeded.zone_id and infra.dns.zone_id != seeded.zone_id:
                blocks.append(
                    f'module "load_balancer" {{\n  dns_zone_id = "{seeded.zone_id}"\n}}\n'
                )
                reasons.append(
                    f"an emulator gives a new hosted zone an id of its own, so the zone seeded for "
                    f"{infra.dns.domain} ({seeded.zone_id}) stands in for {infra.dns.zone_id}"
                )
            if blocks:
                result.append(
                    Adaptation(
                        f"stacks/{stack}/rehearsal_override.tf",
                        _file(reasons, blocks),
                        "; ".join(reasons),
                    )
                )
        if infra.database is not None:
            blocks, reasons = [], []
            if self.backup_selection_reason:
                blocks.append('resource "aws_backup_selection" "this" {\n  count = 0\n}\n')
                reasons.append(self.backup_selection_reason)
            if self.ca_certificate_reason:
                blocks.append(
                    'resource "aws_rds_cluster_instance" "this" {\n  ca_cert_identifier = null\n}\n'
                )
                reasons.append(self.ca_certificate_reason)
            if blocks:
                result.append(
                    Adaptation(
                        "modules/database/rehearsal_override.tf",
                        _file(reasons, blocks),
                        "; ".join(reasons),
                    )
                )
        if self.queue_policy_reason and infra.queues:
            block = (
                'resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {\n  count = 0\n}\n'
            )
            result.append(
                Adaptation(
                    "modules/queue/rehearsal_override.tf",
                    _file([self.queue_policy_reason], [block]),
                    self.queue_policy_reason,
                )
            )
        if self.bucket_logging_reason and infra.buckets:
            block = 'resource "aws_s3_bucket_logging" "this" {\n  count = 0\n}\n'
            result.append(
                Adaptation(
                    "modules/bucket/rehearsal_override.tf",
                    _file([self.bucket_logging_reason], [block]),
                    self.bucket_logging_reason,
                )
            )
        if not self.refreshes_instances and infra.services:
            reason = (
                f"{self.name} does not implement instance refreshes (StartInstanceRefresh), so a new launch "
                "template version reaches the groups without one: the roll checks the version each group runs"
            )
            block = (
                'resource "aws_autoscaling_group" "this" {\n  dynamic "instance_refresh" {\n'
                '    for_each = []\n\n    content {\n      strategy = "Rolling"\n    }\n  }\n}\n'
            )
            result.append(
                Adaptation(
                    "modules/service/rehearsal_override.tf", _file([reason], [block]), reason
                )
            )
        if self.policy_names_reason and infra.services:
            blocks = [
                f'resource "aws_autoscaling_policy" "{name}" {{\n  name = "{name}-${{aws_autoscaling_group.this.name}}"\n}}\n'
                for name in ("cpu", "requests", "backlog")
            ]
            result.append(
                Adaptation(
                    "modules/service/rehearsal_policies_override.tf",
                    _file([self.policy_names_reason], blocks),
                    self.policy_names_reason,
                )
            )
        modules = (
            {module.name for module in (tree / "modules").iterdir()}
            if (tree / "modules").is_dir()
            else set()
        )
        by_module: dict[str, list[ReadBack]] = {}
        for entry in self.read_back:
            if entry.module in modules:
                by_module.setdefault(entry.module, []).append(entry)
        for module, entries in sorted(by_module.items()):
            blocks = []
            for entry in entries:
                kind, name = entry.resource.split(".")
                ignored = ", ".join((*entry.keep, *entry.attributes))
                blocks.append(
                    f'# {entry.reason}\nresource "{kind}" "{name}" {{\n  lifecycle {{\n    ignore_changes = [{ignored}]\n  }}\n}}\n'
                )
            reasons = [f"{e.resource}: {', '.join(e.attributes)}: {e.reason}" for e in entries]
            text = (
                "# levels-tf rehearse: attributes the emulator reads back differently, in this rehearsal tree only.\n\n"
                + "\n".join(blocks)
            )
            result.append(
                Adaptation(
                    f"modules/{module}/rehearsal_read_back_override.tf", text, "; ".join(reasons)
                )
            )
        return result

    def difference(self, stack: str, address: str) -> Difference | None:
        return next((d for d in self.differences if d.matches(stack, address)), None)

    def unreadable_check(self, step: str, name: str) -> Difference | None:
        """Why the emulator cannot answer check `name`, if it cannot."""
        return next((d for d in self.unreadable if d.matches(step, name)), None)


def _without_cdn_policies(main_tf: str) -> list[str]:
    """The distribution's cache behaviours from the rendered `main_tf` (terraform fmt
    layout: a block opens at the end of a line and closes alone on a line at
    its indentation), without the response headers policy and the function."""
    lines = main_tf.splitlines()
    found = []
    for opening in ("  default_cache_behavior {", '  dynamic "ordered_cache_behavior" {'):
        if opening not in lines:
            raise ValueError(f"modules/cdn/main.tf has no {opening.strip()!r} block to adapt")
        start = lines.index(opening)
        end = lines.index("  }", start)
        block = lines[start : end + 1]
        kept, skipping = [], ""
        for line in block:
            if skipping:
                if line == skipping:
                    skipping = ""
                continue
            if line.strip() == "function_association {":
                skipping = line[: len(line) - len(line.lstrip())] + "}"
                continue
            if "response_headers_policy_id" not in line:
                kept.append(line)
        found.extend(kept + [""])
    return found


def _file(reasons: list[str], blocks: list[str]) -> str:
    header = "".join(f"# {reason}\n" for reason in reasons)
    return (
        "# levels-tf rehearse: an adaptation to the emulator, in this rehearsal tree only.\n"
        + header
        + "\n"
        + "\n".join(blocks)
    )


def seed_images(infra: Infra) -> list[dict]:
    """AMI records (moto's MOTO_AMIS_PATH format) for the base of every image
    and for the bastion: one per base, owned and named as the base's filter
    in packer_files.BASES expects, so Packer's source_ami_filter and the bastion
    find them."""
    bases = sorted({image.base for image in infra.images.values() if image.base} | {BASTION_BASE})
    records = []
    for number, base in enumerate(bases, 1):
        spec = packer_files.BASES[base]
        owner = spec.owner if spec.owner.isdigit() else AMAZON_OWNER_ID
        name = seed_name(spec.name)
        records.append(
            {
                "ami_id": f"ami-0{number:016x}",
                "state": "available",
                "public": True,
                "owner_id": owner,
                "name": name,
                "image_location": f"{owner}/{name}",
                "root_device_type": "ebs",
                "root_device_name": ROOT_DEVICES[base],
                "description": f"{base}, seeded for a rehearsal",
                "image_type": "machine",
                "platform": None,
                "architecture": "x86_64",
                "virtualization_type": "hvm",
                "hypervisor": "xen",
                "sriov": "simple",
            }
        )
    return records


def seed_name(pattern: str) -> str:
    """A concrete AMI name the DescribeImages name filter `pattern` matches:
    a `*` before a `/` matches nothing, any other `*` a date."""
    parts = pattern.split("*")
    name = parts[0]
    for part in parts[1:]:
        name += ("" if part.startswith("/") else SEED_DATE) + part
    assert fnmatch.fnmatchcase(name, pattern), (name, pattern)
    return name


def bastion_ami(records: list[dict]) -> str:
    """The seeded AMI the bastion runs."""
    wanted = seed_name(packer_files.BASES[BASTION_BASE].name)
    return next(r["ami_id"] for r in records if r["name"] == wanted)


_TEMPLATE_TAGS = "moto does not read back a launch template's tag specifications (a new version at every apply otherwise)"
_GROUP = "moto does not read back an Auto Scaling group's capacity reservation and instance warm-up settings"
_EVENTBRIDGE = "moto accepts EventBridge notifications on a bucket but does not read them back"

MOTO = Profile(
    name="moto",
    env={
        # ACM issues a DNS-validated certificate after this many seconds (default 60).
        "MOTO_ACM_VALIDATION_WAIT": "0",
        # AWS managed policies (the backup service role attaches one).
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    },
    state_bucket_tls_statement=False,
    tls_reason=(
        "moto applies a bucket policy's Deny statement without evaluating its condition, so the "
        "TLS-only statement (Deny when aws:SecureTransport is false) would deny Terraform's backend "
        "every object: the state buckets get no TLS-only statement in a rehearsal on moto"
    ),
    differences=(
        Difference(
            "*:module.service*.aws_autoscaling_policy.*",
            "moto reads a target tracking scaling policy back with other defaults, so each plan updates it again",
        ),
    ),
    unreadable=(
        Difference(
            "check:*: CloudFront distribution * reads each bucket through an origin access control",
            "moto keeps no OriginAccessControlId on a distribution's origins (the access controls themselves exist)",
        ),
    ),
    read_back=(
        ReadBack(
            "database",
            "aws_backup_plan.this",
            ("tags", "tags_all"),
            "moto does not read back an AWS Backup plan's tags",
        ),
        ReadBack(
            "database",
            "aws_backup_vault.this",
            ("tags", "tags_all"),
            "moto does not read back an AWS Backup vault's tags",
        ),
        ReadBack(
            "database",
            "aws_rds_cluster.this",
            ("scaling_configuration",),
            "moto reads back an empty scaling configuration",
            keep=("final_snapshot_identifier",),
        ),
        ReadBack(
            "database",
            "aws_rds_cluster_instance.this",
            (
                "performance_insights_enabled",
                "performance_insights_kms_key_id",
                "performance_insights_retention_period",
            ),
            "moto does not keep an instance's Performance Insights settings",
        ),
        ReadBack("bastion", "aws_launch_template.this", ("tag_specifications",), _TEMPLATE_TAGS),
        ReadBack("service", "aws_launch_template.this", ("tag_specifications",), _TEMPLATE_TAGS),
        ReadBack(
            "bastion", "aws_autoscaling_group.this", ("capacity_reservation_specification",), _GROUP
        ),
        ReadBack(
            "service",
            "aws_autoscaling_group.this",
            ("capacity_reservation_specification", "default_instance_warmup"),
            _GROUP,
            keep=("desired_capacity",),
        ),
        # The load balancer's access log bucket is a log-bucket module too: the
        # log-bucket entry covers it.
        ReadBack("bucket", "aws_s3_bucket_notification.this", ("eventbridge",), _EVENTBRIDGE),
        ReadBack("log-bucket", "aws_s3_bucket_notification.this", ("eventbridge",), _EVENTBRIDGE),
        ReadBack(
            "cdn",
            "aws_cloudfront_distribution.this",
            ("default_cache_behavior", "ordered_cache_behavior", "origin", "viewer_certificate"),
            "moto reads a distribution's origins back without their access control, and its behaviours and certificate with defaults",
        ),
        ReadBack(
            "function",
            "aws_lambda_function.this",
            ("dead_letter_config",),
            "moto does not read back a function's dead-letter queue",
        ),
        ReadBack(
            "queue",
            "aws_sqs_queue.this",
            ("redrive_policy",),
            "moto reads a queue's redrive policy back in another form",
        ),
        ReadBack(
            "queue",
            "aws_sqs_queue_policy.this",
            ("policy",),
            "moto drops a queue's policy when another attribute of the queue is set",
        ),
    ),
    policy_names_reason=(
        "moto keys scaling policies by name across all groups (AWS: per group), so the groups' same-named "
        "policies would replace each other: each policy's name carries its group's"
    ),
    ami_parameter_reason=(
        "moto's public SSM parameters name AMIs that are not among the seeded ones, so the bastion "
        f"reads its AMI from {BASTION_AMI_PARAMETER}, which the rehearsal sets to the seeded Amazon Linux 2023 AMI"
    ),
    backup_selection_reason=(
        "moto does not implement AWS Backup selections (CreateBackupSelection answers 500), so the "
        "database's backup plan has no selection in a rehearsal on moto"
    ),
    refreshes_instances=False,
    ca_certificate_reason=(
        "moto ignores the CA certificate an instance is created with, so the provider modifies and "
        "reboots every new Aurora instance, three fixed 40-second waits each: the instances keep the emulator's CA"
    ),
    cdn_policies_reason=(
        "moto does not implement CloudFront response headers policies or CloudFront Functions, so the "
        "distributions' behaviours go without the security headers policy and the path function"
    ),
    bucket_logging_reason=(
        "moto's PutBucketLogging fails (500) when the log bucket's policy has a statement whose "
        'Principal is "*" (it reads every Principal as a mapping), so the asset buckets log no access'
    ),
    queue_policy_reason=(
        "moto does not keep a queue's RedriveAllowPolicy (the provider waits for it to read back until it "
        "times out), and its SetQueueAttributes drops the queue policy of any call that does not set it again: "
        "the dead-letter queues have no redrive allow policy, and so keep their queue policy"
    ),
)

PROFILES: dict[str, Profile] = {"moto": MOTO}
