"""The temporary folder the programs levels-tf starts get: Terraform's
providers and Packer's builders listen on Unix sockets in TMPDIR, whose path
must fit in 107 bytes, so a long TMPDIR (a deep CI workspace, a test's
folder) is swapped for a short one rather than breaking every plugin."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from levels_tf import process
from tests.conftest import require_tool

NULL_BUILD = """\
source "null" "probe" {
  communicator = "none"
}

build {
  sources = ["source.null.probe"]
}
"""

ONE_RESOURCE = """\
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

resource "aws_sqs_queue" "probe" {
  name = "probe"
}
"""


@pytest.fixture
def short_root():
    """A folder with a short path (a test's own folder can be 75 bytes deep
    already), removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="t", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _long_folder(root: Path, length: int) -> Path:
    """A folder under `root` whose absolute path is `length` bytes long."""
    base = str(root / "t")
    assert len(base) + 2 < length, "the test's own folder is already too long"
    folder = Path(base + "-" + "x" * (length - len(base) - 1))
    folder.mkdir()
    assert len(os.fsencode(str(folder))) == length
    return folder


def test_a_short_tmpdir_is_kept(tmp_path):
    short = tmp_path / "s"
    short.mkdir()
    assert process.socket_safe_temp_folder(str(short)) == str(short)
    env = process._environment({"TMPDIR": str(short)})
    assert env["TMPDIR"] == str(short)


def test_without_tmpdir_nothing_is_added():
    assert "TMPDIR" not in process._environment({"PATH": "/usr/bin"})


def test_the_limit_counts_the_socket_room_and_the_callers_subfolder(short_root):
    room = process.SOCKET_PATH_MAX - process.SOCKET_ROOM
    at_limit = _long_folder(short_root, room)
    over = _long_folder(short_root, room + 1)
    assert process.socket_safe_temp_folder(str(at_limit)) == str(at_limit)
    assert process.socket_safe_temp_folder(str(over)) in process.SHORT_TEMP_FOLDERS
    # The rehearsal adds its own ltf-XXXXXXXX folder: 13 bytes fewer to spare.
    assert process.socket_safe_temp_folder(str(at_limit), extra=13) in process.SHORT_TEMP_FOLDERS


def test_a_long_tmpdir_is_replaced_for_the_programs(short_root):
    long = _long_folder(short_root, 100)
    env = process._environment({"TMPDIR": str(long), "PATH": os.environ["PATH"]})
    assert env["TMPDIR"] in process.SHORT_TEMP_FOLDERS
    result = process.run(
        ["sh", "-c", 'printf %s "$TMPDIR"'], timeout=30, env={**env, "TMPDIR": str(long)}
    )
    assert result.stdout in process.SHORT_TEMP_FOLDERS


def test_no_short_folder_leaves_the_users_choice(short_root, tmp_path, monkeypatch):
    long = _long_folder(short_root, 100)
    monkeypatch.setattr(process, "SHORT_TEMP_FOLDERS", (str(tmp_path / "missing"),))
    assert process.socket_safe_temp_folder(str(long)) == str(long)


def test_packer_builds_with_a_long_tmpdir(tmp_path, short_root):
    """Packer 1.6 refuses to start its builder under a long TMPDIR; through
    the one place that starts programs, it builds."""
    packer = require_tool("packer")
    (tmp_path / "probe.pkr.hcl").write_text(NULL_BUILD, encoding="utf-8")
    long = _long_folder(short_root, 90)
    env = {**os.environ, "TMPDIR": str(long), "CHECKPOINT_DISABLE": "1"}
    argv = [packer, "build", "-color=false", "probe.pkr.hcl"]
    bare = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert bare.returncode != 0, "the premise: Packer cannot start its builder under this TMPDIR"
    assert "bind" in bare.stdout + bare.stderr
    result = process.run(argv, timeout=120, cwd=tmp_path, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_validates_with_a_long_tmpdir(tmp_path, short_root, terraform_env):
    """The aws provider is a plugin on a socket in TMPDIR: validate starts it."""
    terraform = require_tool("terraform")
    (tmp_path / "main.tf").write_text(ONE_RESOURCE, encoding="utf-8")
    long = _long_folder(short_root, 100)
    env = {**terraform_env, "TMPDIR": str(long), "AWS_EC2_METADATA_DISABLED": "true"}
    process.run(
        [terraform, "init", "-input=false", "-backend=false"], timeout=300, cwd=tmp_path, env=env
    )
    bare = subprocess.run(
        [terraform, "validate", "-no-color"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bare.returncode != 0, "the premise: the provider cannot start under this TMPDIR"
    result = process.run(
        [terraform, "validate", "-no-color"], timeout=300, cwd=tmp_path, env=env, check=False
    )
    assert result.returncode == 0, textwrap.shorten(result.stdout + result.stderr, 2000)
