"""The files of packer/ that infra.yaml's images need, and where their AMIs start.

Pure: nothing here writes a file. `packer_targets` says which packer files to
render from which template with which values; render.py renders them and
writer.py writes them. `BASES` says where the AMIs of each base OS come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from .model import Infra
from .validation import Config

AMAZON_PLUGIN_VERSION = ">= 1.2"
HARDEN_SCRIPT = "packer/scripts/harden.sh"
PLUGINS_FILE = "packer/plugins/required-plugins.pkr.hcl"
MANIFESTS_DIR = "packer/manifests"
BUILD_AWS = "amazon-ebs.aws"
BUILD_EMULATOR = "amazon-ebs.emulator"
DEFAULT_SSH_USER = "ec2-user"  # for an explicit source_ami without ssh_user


@dataclass(frozen=True)
class Base:
    """Where the AMIs of a base OS come from, and who logs in to them."""

    owner: str
    name: str  # an AMI name pattern for the DescribeImages name filter
    ssh_user: str


BASES: dict[str, Base] = {
    "ubuntu-22.04": Base(
        "099720109477", "ubuntu/images/hvm-ssd*/ubuntu-jammy-22.04-amd64-server-*", "ubuntu"
    ),
    "ubuntu-24.04": Base(
        "099720109477", "ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-amd64-server-*", "ubuntu"
    ),
    "debian-12": Base("136693071363", "debian-12-amd64-*", "admin"),
    "amazon-linux-2023": Base("amazon", "al2023-ami-2023.*-x86_64", "ec2-user"),
}


def packer_targets(config: Config) -> list[tuple[str, str, dict]]:
    """(output path, template, context) of every packer file; none without images.

    Paths are relative to the output root, templates to templates/. The .hcl
    and .sh files get their "generated" header from render.py.
    """
    infra: Infra = config.infra
    if not infra.images:
        return []
    result: list[tuple[str, str, dict]] = [
        (
            PLUGINS_FILE,
            "packer/required-plugins.pkr.hcl.j2",
            {"amazon_plugin_version": AMAZON_PLUGIN_VERSION},
        ),
        (HARDEN_SCRIPT, "packer/scripts/harden.sh.j2", {}),
        (f"{MANIFESTS_DIR}/.gitignore", "packer/manifests.gitignore.j2", {}),
    ]
    for name in sorted(infra.images):
        result.append(
            (f"packer/{name}.pkr.hcl", "packer/image.pkr.hcl.j2", image_context(infra, name))
        )
    return result


def image_context(infra: Infra, name: str) -> dict[str, Any]:
    """The values packer/image.pkr.hcl.j2 sees for image `name`."""
    image = infra.images[name]
    base = BASES[image.base] if image.base else None
    if base is not None:
        source_filter = {
            "filters": {
                "architecture": "x86_64",
                "name": base.name,
                "root-device-type": "ebs",
                "virtualization-type": "hvm",
            },
            "owners": [base.owner],
        }
    else:
        source_filter = None
    ssh_user = image.ssh_user or (base.ssh_user if base else DEFAULT_SSH_USER)
    described = f"{image.base} image" if image.base else f"image from {image.source_ami}"
    return {
        "project": infra.project,
        "image": name,
        "region": infra.region,
        "instance_type": image.instance_type,
        "ssh_username": ssh_user,
        "source_ami": image.source_ami,
        "source_ami_filter": source_filter,
        "scripts": [script_path(s) for s in image.scripts],
        "user_tags": dict(sorted(infra.tags.items())),
        "ami_name_prefix": f"{infra.project}-{name}",
        "ami_description": f"{infra.project} {name}: {described}, baked by levels-tf",
    }


def script_path(script: str) -> str:
    """A script path from infra.yaml in the form the template uses."""
    return PurePosixPath(script).as_posix()
