"""The image lock: `images.lock` beside infra.yaml, the AMI each bake produced.

Per image and region, one `LockEntry`: the AMI id, the version and git
revision it was baked from, its source AMI, when it was built and its root
device. `levels-tf bake` writes it (`format_lock`), `levels-tf render` and
`load_config` read it (`load_lock`); the same lock always formats to the
same bytes, and every lock that exists formats to a file that loads.
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
from pathlib import Path
from typing import Annotated, Any

from . import loader, typed
from .errors import ConfigError, Problem
from .model import NAME_RE, NAME_RULE
from .typed import Pattern, Record, record

LOCK_FILE = "images.lock"

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
        """The last bake of `image` in `region`; None when it was never baked there."""
        return self.images.get(image, {}).get(region)

    def ami(self, image: str, region: str) -> str | None:
        """The AMI id (ami-...) of that bake; None when there is none."""
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
    """The image lock at `path`; an empty lock when there is no such file.

    A ConfigError when it cannot be read, is not a regular file, is over
    loader.MAX_FILE_BYTES, or does not parse (see `parse_lock`)."""
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
