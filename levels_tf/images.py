"""Packer images: the render plan of packer/, the image lock, script checks.

Pure: nothing here writes a file. `packer_targets` says which packer files to
render from which template with which values; render.py renders them and
writer.py writes them. The image lock (`images.lock` beside infra.yaml)
records the AMI each bake produced, per image and region: `levels-tf bake`
writes it, `levels-tf render` reads it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any

from . import loader, typed
from .errors import ConfigError, Problem
from .loader import Document
from .model import NAME_RE, NAME_RULE, Infra
from .typed import Pattern, Record, record

if TYPE_CHECKING:  # validation.py may import this module
    from .validation import Config

AMAZON_PLUGIN_VERSION = ">= 1.2"
HARDEN_SCRIPT = "packer/scripts/harden.sh"
PLUGINS_FILE = "packer/plugins/required-plugins.pkr.hcl"
MANIFESTS_DIR = "packer/manifests"
LOCK_FILE = "images.lock"
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


# --- the render plan -------------------------------------------------------


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


# --- image scripts -----------------------------------------------------------


def check_scripts(config_dir: Path, infra: Infra, document: Document) -> list[Problem]:
    """Every image script is a file inside the folder of infra.yaml."""
    problems: list[Problem] = []
    root = Path(config_dir).resolve()
    for name, image in infra.images.items():
        for i, script in enumerate(image.scripts):
            path = ("images", name, "scripts", i)
            message = _script_problem(root, script)
            if message:
                problems.append(document.problem(path, message))
    return problems


def _script_problem(root: Path, script: str) -> str | None:
    if not script.strip():
        return "empty script path"
    if "\\" in script:
        return f"{script!r}: write paths with '/'"
    if PurePosixPath(script).is_absolute():
        return f"{script!r}: give the path relative to the folder of infra.yaml"
    target = (root / script).resolve()
    if target != root and root not in target.parents:
        return f"{script!r} is outside the folder of infra.yaml"
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return f"{script!r}: no such file (relative to the folder of infra.yaml)"
    except OSError as exc:
        return f"{script!r}: cannot read: {exc.strerror}"
    if not stat.S_ISREG(mode):
        return f"{script!r} is not a file"
    return None


# --- the image lock ----------------------------------------------------------

AmiId = Annotated[
    str, Pattern(r"ami-[0-9a-f]{8,17}", "not an AMI id such as ami-0123456789abcdef0")
]
Region = Annotated[
    str, Pattern(r"[a-z]{2}(-[a-z]+)+-[0-9]+", "not an AWS region such as us-east-1")
]
Timestamp = Annotated[
    str,
    Pattern(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "not a UTC time such as 2024-05-01T12:00:00Z"
    ),
]
ImageName = Annotated[str, Pattern(NAME_RE, NAME_RULE)]
_WORD = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}"
Version = Annotated[
    str,
    Pattern(_WORD, "use up to 128 letters, digits and . _ + -, starting with a letter or digit"),
]
GitRevision = Annotated[str, Pattern(f"({_WORD})?", "use up to 128 letters, digits and . _ + -")]
ROOT_DEVICE_RE = r"/dev/[a-z][a-z0-9]{0,15}"
RootDevice = Annotated[str, Pattern(f"({ROOT_DEVICE_RE})?", "not a device name such as /dev/xvda")]


@record
class LockEntry(Record):
    """One bake of one image in one region."""

    ami: AmiId
    version: Version
    source_ami: AmiId
    git_revision: GitRevision = ""
    built_at: Timestamp
    # The AMI's root device; "" in locks written before bakes recorded it,
    # and then the service module asks EC2 at plan time.
    root_device: RootDevice = ""


@record
class _LockFile(Record):
    images: dict[ImageName, dict[Region, LockEntry]] = dataclasses.field(default_factory=dict)


_ENTRY_KEYS = tuple(f.name for f in dataclasses.fields(LockEntry))
_OMITTED_WHEN_EMPTY = ("root_device",)
_HEADER = """\
# The AMIs baked for infra.yaml, per image and region.
# Written by `levels-tf bake` and read by `levels-tf render`; commit it.
# To roll back, bake again or restore an earlier version of this file.
"""


@dataclass(frozen=True)
class ImageLock:
    """The AMI of each image in each region: image -> region -> LockEntry."""

    images: Mapping[str, Mapping[str, LockEntry]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked as parse_lock checks, so a lock that exists always formats
        # to a file that loads.
        plain = {
            image: {region: _entry_data(entry) for region, entry in regions.items()}
            for image, regions in self.images.items()
        }
        try:
            typed.load(_LockFile, {"images": plain})
        except typed.Invalid as exc:
            raise ValueError(f"invalid image lock: {exc}") from None
        frozen = {
            image: types.MappingProxyType(dict(sorted(regions.items())))
            for image, regions in sorted(self.images.items())
        }
        object.__setattr__(self, "images", types.MappingProxyType(frozen))

    def entry(self, image: str, region: str) -> LockEntry | None:
        return self.images.get(image, {}).get(region)

    def ami(self, image: str, region: str) -> str | None:
        entry = self.entry(image, region)
        return entry.ami if entry else None

    def with_bake(self, image: str, region: str, entry: LockEntry) -> ImageLock:
        """A new lock with `entry` as the AMI of `image` in `region`."""
        images = {name: dict(regions) for name, regions in self.images.items()}
        images.setdefault(image, {})[region] = entry
        return ImageLock(images)


def _entry_data(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, LockEntry):
        raise TypeError(f"expected a LockEntry, not {type(entry).__name__}")
    return dataclasses.asdict(entry)


def parse_lock(text: str, file: str) -> ImageLock:
    """The image lock in `text`; a ConfigError with file:line:col for every problem."""
    if all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        return ImageLock()
    document = loader.parse(text, file)
    try:
        parsed = typed.load(_LockFile, document.data)
    except typed.Invalid as exc:
        raise ConfigError([loader.issue_problem(document, issue) for issue in exc.issues]) from None
    return ImageLock(parsed.images)


def load_lock(path: str | os.PathLike) -> ImageLock:
    """The image lock at `path`; an empty lock when there is no such file."""
    file = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return ImageLock()
    except OSError as exc:
        raise ConfigError([Problem(1, 1, "", f"cannot read: {exc.strerror}", file)]) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError([Problem(1, 1, "", "is not a regular file", file)])
    if info.st_size > loader.MAX_FILE_BYTES:
        raise ConfigError([Problem(1, 1, "", "file is over the 1024 KiB limit", file)])
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([Problem(1, 1, "", f"cannot read: {exc.strerror}", file)]) from None
    return parse_lock(loader.decode(raw, file), file)


def format_lock(lock: ImageLock) -> str:
    """The text of images.lock: the same lock gives the same bytes."""
    if not lock.images:
        return _HEADER + "\nimages: {}\n"
    lines = [_HEADER, "images:"]
    for image, regions in sorted(lock.images.items()):
        lines.append(f"  {_yaml_key(image)}:")
        for region, entry in sorted(regions.items()):
            lines.append(f"    {_yaml_key(region)}:")
            for key in _ENTRY_KEYS:
                value = getattr(entry, key)
                if key in _OMITTED_WHEN_EMPTY and not value:
                    continue
                lines.append(f"      {key}: {_yaml_string(value)}")
    return "\n".join(lines) + "\n"


def _yaml_key(key: str) -> str:
    return key if re.fullmatch(r"[a-z][a-z0-9-]*", key) else _yaml_string(key)


def _yaml_string(value: str) -> str:
    # A JSON string is a YAML double-quoted scalar: always a string on the way
    # back, never a number, date or boolean ("1.10", "2024-05-01T12:00:00Z").
    return json.dumps(value)
