"""An image never baked stops `terraform plan` with a clear message, never a made-up AMI.

Real parts: the rendered service module, terraform with the aws provider,
and a moto server standing in for AWS.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from levels_tf import writer
from levels_tf.render import render
from levels_tf.validation import load_config

from .conftest import REFERENCE, emulator_provider

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

SERVICES = ("autoscaling", "ec2", "elbv2", "iam", "kms", "s3", "sns", "sqs", "ssm", "sts")


def _root(moto: str, ami: str | None, root_device: str | None = None) -> str:
    return (
        emulator_provider(moto, SERVICES)
        + f"""
module "service" {{
  source = "./modules/service"

  name               = "levels-dev-api"
  short_name         = "levels-dev-api"
  service            = "api"
  image              = "api"
  ami_id             = {json.dumps(ami)}
  root_device_name   = {json.dumps(root_device)}
  instance_type      = "t3.small"
  vpc_id             = "vpc-12345678"
  subnet_ids         = {{ "us-east-1a" = "subnet-12345678" }}
  security_group_ids = []
  scaling            = {{ min = 1, max = 2, desired = 1 }}
  rollout            = {{ min_healthy_percentage = 90, checkpoints = [], checkpoint_delay = 300 }}
  access = {{
    read_buckets       = []
    write_buckets      = []
    consume_queues     = []
    publish_topics     = []
    parameter_prefixes = ["/levels/dev/api"]
  }}
  bundle = {{ bucket = null, parameter = "/levels/dev/api/bundle-version" }}
}}
"""
    )


def _plan(folder: Path, env: dict) -> subprocess.CompletedProcess:
    init = subprocess.run(
        ["terraform", "init", "-input=false", "-no-color"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    return subprocess.run(
        ["terraform", "plan", "-input=false", "-no-color", "-lock=false"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def service_module(tmp_path) -> Path:
    out = tmp_path / "rendered"
    writer.write(out, render(load_config(REFERENCE)))
    root = tmp_path / "root"
    shutil.copytree(out / "modules" / "service", root / "modules" / "service")
    return root


def test_plan_refuses_an_image_without_ami(service_module, terraform_env, moto_server):
    (service_module / "main.tf").write_text(_root(moto_server, None))
    result = _plan(service_module, terraform_env)
    assert result.returncode != 0
    assert "image api has no AMI yet: run levels-tf bake api" in result.stdout + result.stderr
    assert "ami-" not in result.stdout


def test_plan_goes_through_with_a_baked_ami(service_module, terraform_env, moto_server):
    # As a bake records it: the AMI and its root device.
    (service_module / "main.tf").write_text(
        _root(moto_server, "ami-0123456789abcdef0", "/dev/xvda")
    )
    result = _plan(service_module, terraform_env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r'image_id\s+= "ami-0123456789abcdef0"', result.stdout), result.stdout[-3000:]
    assert re.search(r'device_name\s+= "/dev/xvda"', result.stdout), result.stdout[-3000:]
