"""images.lock: what `levels-tf bake` records and `levels-tf render` reads."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest
import yaml

from levels_tf.errors import ConfigError
from levels_tf.image_lock import ImageLock, LockEntry, format_lock, load_lock, parse_lock

API = LockEntry(
    ami="ami-0123456789abcdef0",
    version="1.10",
    source_ami="ami-0fedcba9876543210",
    git_revision="3f2c1a9",
    built_at="2024-05-01T12:00:00Z",
)
WORKER = LockEntry(
    ami="ami-0aaaabbbbccccdddd",
    version="2024.05.01",
    source_ami="ami-0fedcba9876543210",
    git_revision="",
    built_at="2024-05-01T12:30:00Z",
)


def _lock() -> ImageLock:
    return (
        ImageLock()
        .with_bake("worker", "us-east-1", WORKER)
        .with_bake("api", "us-east-1", API)
        .with_bake("api", "eu-west-1", dataclasses.replace(API, ami="ami-0123456789abcdef1"))
    )


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_lock(textwrap.dedent(text), "images.lock")
    return caught.value.lines()


def test_round_trip():
    lock = _lock()
    text = format_lock(lock)
    assert parse_lock(text, "images.lock") == lock
    assert format_lock(parse_lock(text, "images.lock")) == text


def test_format_is_sorted_readable_and_commented():
    text = format_lock(_lock())
    assert text.startswith("#")
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any("levels-tf bake" in line for line in header)
    assert any("levels-tf render" in line for line in header)
    body = text[text.index("images:") :]
    assert body == textwrap.dedent(
        """\
        images:
          api:
            eu-west-1:
              ami: "ami-0123456789abcdef1"
              version: "1.10"
              source_ami: "ami-0fedcba9876543210"
              git_revision: "3f2c1a9"
              built_at: "2024-05-01T12:00:00Z"
            us-east-1:
              ami: "ami-0123456789abcdef0"
              version: "1.10"
              source_ami: "ami-0fedcba9876543210"
              git_revision: "3f2c1a9"
              built_at: "2024-05-01T12:00:00Z"
          worker:
            us-east-1:
              ami: "ami-0aaaabbbbccccdddd"
              version: "2024.05.01"
              source_ami: "ami-0fedcba9876543210"
              git_revision: ""
              built_at: "2024-05-01T12:30:00Z"
        """
    )
    # Plain YAML for any other reader: versions stay strings, times are not dates.
    data = yaml.safe_load(text)
    assert data["images"]["api"]["us-east-1"]["version"] == "1.10"
    assert data["images"]["api"]["us-east-1"]["built_at"] == "2024-05-01T12:00:00Z"


def test_format_is_deterministic_whatever_the_order_of_bakes():
    one = ImageLock().with_bake("api", "us-east-1", API).with_bake("worker", "us-east-1", WORKER)
    other = ImageLock().with_bake("worker", "us-east-1", WORKER).with_bake("api", "us-east-1", API)
    assert format_lock(one) == format_lock(other)
    assert format_lock(one) == format_lock(one)
    assert one == other


def test_ami_lookup():
    lock = _lock()
    assert lock.ami("api", "us-east-1") == "ami-0123456789abcdef0"
    assert lock.ami("api", "eu-west-1") == "ami-0123456789abcdef1"
    assert lock.ami("api", "ap-south-1") is None
    assert lock.ami("nothing", "us-east-1") is None
    assert lock.entry("worker", "us-east-1") == WORKER


def test_with_bake_is_an_immutable_update():
    before = ImageLock().with_bake("api", "us-east-1", API)
    newer = dataclasses.replace(API, ami="ami-0999999999999999a", version="1.11")
    after = before.with_bake("api", "us-east-1", newer)
    assert before.ami("api", "us-east-1") == "ami-0123456789abcdef0"
    assert after.ami("api", "us-east-1") == "ami-0999999999999999a"
    with pytest.raises(TypeError):
        before.images["api"]["us-east-1"] = newer  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.images = {}  # type: ignore[misc]


def test_with_bake_refuses_what_could_not_be_read_back():
    with pytest.raises(ValueError, match="not an AMI id"):
        ImageLock().with_bake("api", "us-east-1", dataclasses.replace(API, ami="ami-XYZ"))
    with pytest.raises(ValueError, match="not an AWS region"):
        ImageLock().with_bake("api", "US East", API)
    with pytest.raises(ValueError):
        ImageLock().with_bake("API", "us-east-1", API)
    with pytest.raises(TypeError):
        ImageLock().with_bake("api", "us-east-1", {"ami": API.ami})  # type: ignore[arg-type]


def test_empty_and_missing_lock(tmp_path):
    assert load_lock(tmp_path / "images.lock") == ImageLock()
    assert parse_lock("", "images.lock") == ImageLock()
    assert parse_lock("# nothing baked yet\n\n", "images.lock") == ImageLock()
    empty = format_lock(ImageLock())
    assert "images: {}" in empty
    assert parse_lock(empty, "images.lock") == ImageLock()


def test_load_lock_reads_the_file(tmp_path):
    path = tmp_path / "images.lock"
    path.write_text(format_lock(_lock()), encoding="utf-8")
    assert load_lock(path) == _lock()
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_lock(tmp_path)


def test_bad_values_point_at_their_lines():
    lines = _errors(
        """\
        images:
          api:
            us-east-1:
              ami: ami-123
              version: 1.10
              source_ami: "ami-0fedcba9876543210"
              built_at: 2024-05-01T12:00:00Z
        """
    )
    assert lines == [
        "images.lock:4:12: images.api.us-east-1.ami: 'ami-123': not an AMI id such as ami-0123456789abcdef0",
        "images.lock:5:16: images.api.us-east-1.version: expected a string, found the number 1.1; quote it",
        "images.lock:7:17: images.api.us-east-1.built_at: expected a string, found a datetime value; quote it",
    ]


def test_unknown_and_missing_keys_point_at_their_lines():
    lines = _errors(
        """\
        images:
          api:
            us-east-1:
              amis: "ami-0123456789abcdef0"
              version: "1"
              source_ami: "ami-0fedcba9876543210"
              built_at: "2024-05-01T12:00:00Z"
              built_by: "ci"
        bakes: {}
        """
    )
    assert lines == [
        "images.lock:3:5: images.api.us-east-1.ami: required key is missing",
        "images.lock:4:7: images.api.us-east-1.amis: unknown key; did you mean 'ami'?",
        "images.lock:8:7: images.api.us-east-1.built_by: unknown key; did you mean 'built_at'?",
        "images.lock:9:1: bakes: unknown key; expected one of: images",
    ]


def test_bad_names_and_yaml_errors():
    lines = _errors(
        """\
        images:
          API:
            mars-north-one: {}
        """
    )
    assert lines[0].startswith("images.lock:2:3: images.API: invalid key:")
    assert any(
        line.startswith("images.lock:3:5: images.API.mars-north-one: invalid key: ")
        for line in lines
    )
    assert _errors("images: [\n")[0].startswith("images.lock:2:1: YAML:")
    dup = _errors("images:\n  api: {}\n  api: {}\n")
    assert dup == ["images.lock:3:3: images.api: duplicate key (first defined on line 2)"]


def test_the_root_device_is_kept_and_absent_in_older_entries():
    baked = dataclasses.replace(API, root_device="/dev/xvda")
    lock = ImageLock().with_bake("api", "us-east-1", baked).with_bake("worker", "us-east-1", WORKER)
    text = format_lock(lock)
    assert '      root_device: "/dev/xvda"\n' in text and text.count("root_device") == 1
    assert parse_lock(text, "images.lock") == lock
    assert parse_lock(text, "images.lock").entry("worker", "us-east-1") == WORKER
    assert WORKER.root_device == ""


def test_a_root_device_that_is_not_a_device_name_is_refused():
    errors = _errors(
        """\
        images:
          api:
            us-east-1:
              ami: ami-0123456789abcdef0
              version: "1"
              source_ami: ami-0fedcba9876543210
              built_at: "2024-05-01T12:00:00Z"
              root_device: xvda
        """
    )
    assert errors == [
        "images.lock:8:20: images.api.us-east-1.root_device: 'xvda': not a device name such as /dev/xvda"
    ]
