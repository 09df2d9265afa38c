"""Each fleet's launch template sizes the root volume of its own AMI.

The device name of an AMI's root volume depends on its distribution: a block
device mapping under any other name adds a second, blank volume and leaves
the real root at the AMI's size. Real packer bakes an image of every
supported base and one from a `source_ami` against moto, whose AMIs carry
their publishers' root device names; the real terraform plan of the stack
must map exactly those devices, also for an images.lock entry written before
bakes recorded the device (the module then asks EC2).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from levels_tf import image_lock
from levels_tf.packer_files import BASES
from levels_tf.terraform import PLAN_FILE
from levels_tf.validation import load_config

from .conftest import ROOT, emulator_provider, require_tool
from .test_bake import SEED, SEED_AMI, _moto_offering
from .test_bake import real_packer as real_packer  # a fixture, used by name

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

CONFIG = ROOT / "tests" / "configs" / "root-devices" / "infra.yaml"
REGION = "us-east-1"
CUSTOM_AMI = "ami-0c0ffee0c0ffee0c5"  # the source_ami of tests/configs/root-devices


def _ami(ami_id: str, owner: str, name: str, root: str) -> dict:
    return {
        "ami_id": ami_id,
        "state": "available",
        "public": True,
        "owner_id": owner,
        "name": name,
        "image_location": f"{owner}/{name}",
        "root_device_type": "ebs",
        "root_device_name": root,
        "description": name,
        "image_type": "machine",
        "platform": None,
        "architecture": "x86_64",
        "virtualization_type": "hvm",
        "hypervisor": "xen",
        "sriov": "simple",
    }


# One AMI per supported base, named as its publisher names it, with the root
# device its publisher gives it (Ubuntu: /dev/sda1; Debian, Amazon Linux: /dev/xvda),
# and an AMI of the team's own whose root is /dev/sda.
DISTRIBUTIONS = SEED + [
    _ami(
        "ami-0aaaaaaaaaaaaaaa2",
        "099720109477",
        "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240801",
        "/dev/sda1",
    ),
    _ami("ami-0aaaaaaaaaaaaaaa3", "136693071363", "debian-12-amd64-20240717-1811", "/dev/xvda"),
    _ami(
        "ami-0aaaaaaaaaaaaaaa4",
        "137112412989",
        "al2023-ami-2023.5.20240805.0-kernel-6.1-x86_64",
        "/dev/xvda",
    ),
    _ami(CUSTOM_AMI, "123456789012", "roots-custom-base-20240801", "/dev/sda"),
]
SOURCE = {  # image -> the AMI packer must start from
    "jammy": SEED_AMI,
    "noble": "ami-0aaaaaaaaaaaaaaa2",
    "bookworm": "ami-0aaaaaaaaaaaaaaa3",
    "al2023": "ami-0aaaaaaaaaaaaaaa4",
    "custom": CUSTOM_AMI,
}
ROOT_DEVICE = {ami["ami_id"]: ami["root_device_name"] for ami in DISTRIBUTIONS}
LEGACY_AMI = (
    "ami-0aaaaaaaaaaaaaaa3"  # recorded by hand, as a lock from before root devices would be
)


@pytest.fixture(scope="module")
def moto_distributions(tmp_path_factory):
    yield from _moto_offering(tmp_path_factory.mktemp("moto-distributions"), DISTRIBUTIONS)


@pytest.fixture
def emulator_env(moto_distributions, terraform_env, monkeypatch) -> str:
    """Credentials and settings that reach only that moto server."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    return moto_distributions


def _launch_template_devices(stack: Path) -> dict[str, tuple[str, list[str]]]:
    """service -> (AMI, device names of its launch template's block device mappings), from the saved plan's JSON."""
    shown = subprocess.run(
        [require_tool("terraform"), "show", "-json", PLAN_FILE],
        cwd=stack,
        capture_output=True,
        text=True,
        check=True,
    )
    result = {}
    for change in json.loads(shown.stdout)["resource_changes"]:
        if change["type"] == "aws_launch_template":
            after = change["change"]["after"]
            service = json.loads(
                change["module_address"].removeprefix("module.service[").removesuffix("]")
            )
            result[service] = (
                after["image_id"],
                [m["device_name"] for m in after["block_device_mappings"]],
            )
    return result


def test_every_base_and_a_source_ami_map_the_root_device_of_their_ami(
    run, tmp_path, emulator_env, real_packer
):
    folder = tmp_path / "roots"
    folder.mkdir()
    config = folder / "infra.yaml"
    shutil.copy(CONFIG, config)
    bases = {image.base for image in load_config(config).infra.images.values()}
    assert bases >= set(BASES), "the configuration must cover every supported base"

    rendered = run("render", "--aws-endpoint", emulator_env, "--backend", "local", config=config)
    assert rendered.exit_code == 0, rendered.output
    baked = run("bake", *SOURCE, "--version", "1", config=config)
    assert baked.exit_code == 0, baked.output + baked.stderr
    lock = image_lock.load_lock(folder / image_lock.LOCK_FILE)
    for image, source in SOURCE.items():
        entry = lock.entry(image, REGION)
        assert entry is not None, image
        assert entry.source_ami == source and entry.root_device == ROOT_DEVICE[source], image

    # A lock written before bakes recorded root devices: no root_device at all.
    text = (folder / image_lock.LOCK_FILE).read_text(encoding="utf-8")
    assert "root_device" in text
    legacy = image_lock.LockEntry(
        ami=LEGACY_AMI, version="0", source_ami=LEGACY_AMI, built_at="2024-08-01T00:00:00Z"
    )
    (folder / image_lock.LOCK_FILE).write_text(
        image_lock.format_lock(lock.with_bake("legacy", REGION, legacy)), encoding="utf-8"
    )
    assert "root_device" not in image_lock.format_lock(
        image_lock.ImageLock({"legacy": {REGION: legacy}})
    )
    assert run("render", config=config).exit_code == 0

    for command in (("plan", "lab-shared"), ("apply", "lab-shared"), ("plan", "trial")):
        result = run(*command, config=config)
        assert result.exit_code in (0, 2), " ".join(command) + "\n" + result.output + result.stderr

    devices = _launch_template_devices(folder / "stacks" / "trial")
    expected = {
        image: (lock.ami(image, REGION), [ROOT_DEVICE[source]]) for image, source in SOURCE.items()
    }
    expected["legacy"] = (LEGACY_AMI, ["/dev/xvda"])
    assert devices == expected


BASTION_MODULE = """
module "bastion" {
  source = "./modules/bastion"

  name          = "roots-lab-bastion"
  vpc_id        = "vpc-12345678"
  vpc_cidr      = "172.22.0.0/20"
  subnet_ids    = { "us-east-1a" = "subnet-12345678" }
  allowed_cidrs = ["203.0.113.0/24"]
  users         = { ops = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHdUQTlBW9h5l5n1J6w8vH5h2lS0sP2wQmV0p0nP1q2r ops" }
  ami_parameter = "/roots/bastion-ami"
  # The test registers the AMI itself, in the emulator's account.
  ami_owners        = ["self"]
  s3_prefix_list_id = "pl-12345678"
}
"""


def test_the_bastion_maps_the_root_device_of_the_ami_its_parameter_names(
    tmp_path, aws_env, terraform_env
):
    """The bastion's AMI comes from an SSM parameter: whichever image it names, the
    launch template maps that image's root device (here /dev/sda1, not Amazon Linux's /dev/xvda)."""
    import boto3

    from levels_tf import writer
    from levels_tf.render import render

    ec2 = boto3.client("ec2", region_name=REGION)
    ami = ec2.register_image(Name="roots-bastion-base")["ImageId"]
    root = ec2.describe_images(ImageIds=[ami])["Images"][0]["RootDeviceName"]
    assert root == "/dev/sda1"
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/roots/bastion-ami", Value=ami, Type="String"
    )

    out = tmp_path / "rendered"
    writer.write(out, render(load_config(CONFIG)))
    folder = tmp_path / "root"
    shutil.copytree(out / "modules" / "bastion", folder / "modules" / "bastion")
    services = ("autoscaling", "ec2", "iam", "ssm", "sts")
    (folder / "main.tf").write_text(
        emulator_provider(aws_env, services) + BASTION_MODULE, encoding="utf-8"
    )
    env = dict(terraform_env)
    for command in (
        ["init", "-input=false", "-no-color"],
        ["plan", "-input=false", "-no-color", "-out", "bastion.tfplan"],
    ):
        done = subprocess.run(
            [require_tool("terraform"), *command],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    shown = subprocess.run(
        [require_tool("terraform"), "show", "-json", "bastion.tfplan"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    (template,) = [
        c
        for c in json.loads(shown.stdout)["resource_changes"]
        if c["type"] == "aws_launch_template"
    ]
    after = template["change"]["after"]
    assert after["image_id"] == ami
    assert [m["device_name"] for m in after["block_device_mappings"]] == [root]
