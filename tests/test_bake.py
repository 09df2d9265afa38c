"""`levels-tf bake`: the real packer (1.6.6 here) bakes the emulator build
against a real moto server; the AMI lands in images.lock and in the rendered
launch templates. Fake packer scripts cover what 1.6.6 cannot show (init on
1.7+, failures of the binary itself)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from levels_tf import image_lock, packer
from levels_tf.commands.bake import default_version

from .conftest import (
    _free_local_port,
    _local_http,
    _moto_installed,
    _moto_server_command,
    _skip_or_fail,
    copy_reference,
    next_step,
    require_tool,
)

SEED_AMI = "ami-0aaaaaaaaaaaaaaa1"  # the only base AMI the emulator has: Ubuntu 22.04
SEED = [
    {
        "ami_id": SEED_AMI,
        "state": "available",
        "public": True,
        "owner_id": "099720109477",
        "name": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240501",
        "image_location": "099720109477/ubuntu-jammy",
        "root_device_type": "ebs",
        "root_device_name": "/dev/sda1",
        "description": "Ubuntu 22.04",
        "image_type": "machine",
        "platform": None,
        "architecture": "x86_64",
        "virtualization_type": "hvm",
        "hypervisor": "xen",
        "sriov": "simple",
    }
]
REGION = "us-east-1"  # the reference's
ENVIRONMENTS = ("production", "dev", "test", "qa")


# --- fixtures and helpers -------------------------------------------------------------


def _moto_offering(folder: Path, seed: list[dict]):
    """A moto server on 127.0.0.1 whose EC2 offers the AMIs of `seed`, and no others; yields its URL."""
    if not _moto_installed():
        _skip_or_fail(
            "moto's server is not installed (pip install 'moto[server]'): no AWS emulator to bake against"
        )
    (folder / "amis.json").write_text(json.dumps(seed), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        MOTO_AMIS_PATH=str(folder / "amis.json"),
        HOME=str(folder),
        NO_PROXY="127.0.0.1",
        no_proxy="127.0.0.1",
    )
    port = _free_local_port()
    url = f"http://127.0.0.1:{port}"
    with open(folder / "server.log", "wb") as log:
        server = subprocess.Popen(
            _moto_server_command("127.0.0.1", port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _local_http("GET", f"{url}/moto-api/", timeout=1) == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"moto server did not start:\n{(folder / 'server.log').read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def moto_ec2(tmp_path_factory):
    """A moto server on 127.0.0.1 whose EC2 offers the base AMI of SEED, and nothing else."""
    yield from _moto_offering(tmp_path_factory.mktemp("moto-ec2"), SEED)


@pytest.fixture
def moto(moto_ec2) -> str:
    """The moto server, emptied of everything but the seeded base AMI."""
    assert _local_http("POST", f"{moto_ec2}/moto-api/reset") == 200
    return moto_ec2


@pytest.fixture
def real_packer() -> str:
    path = require_tool("packer")
    version = subprocess.run(
        [path, "version"],
        capture_output=True,
        text=True,
        env=dict(os.environ, CHECKPOINT_DISABLE="1"),
    )
    if not version.stdout.startswith("Packer v1.6."):
        pytest.skip(
            f"these bakes expect Debian's Packer 1.6 (amazon builder built in), not {version.stdout.strip()!r}"
        )
    return path


def _tree(folder: Path, run, worker_base: str | None = None, endpoint: str | None = None) -> Path:
    """The reference configuration in `folder`, rendered (for the emulator at
    `endpoint`, if given, which bake then builds on); returns its infra.yaml."""
    config = copy_reference(folder)
    if worker_base:
        text = config.read_text(encoding="utf-8")
        original = "  worker:\n    base: ubuntu-22.04\n"
        assert text.count(original) == 1
        config.write_text(
            text.replace(original, f"  worker:\n    base: {worker_base}\n"), encoding="utf-8"
        )
    result = run("render", *(("--aws-endpoint", endpoint) if endpoint else ()), config=config)
    assert result.exit_code == 0, result.output
    return config


def _bake(run, config: Path, *args: str):
    return run("bake", *args, config=config)


def _lock(config: Path) -> image_lock.ImageLock:
    return image_lock.load_lock(config.parent / image_lock.LOCK_FILE)


def _entry(config: Path, image: str) -> image_lock.LockEntry:
    """What images.lock records for `image` in REGION; the test fails when it records nothing."""
    entry = _lock(config).entry(image, REGION)
    assert entry is not None, f"images.lock records no AMI for {image} in {REGION}"
    return entry


def _launch_template_amis(config: Path) -> dict[tuple[str, str], str | None]:
    """(environment, image) -> the ami_id each services.tf hands the service module."""
    result = {}
    for env in ENVIRONMENTS:
        text = (config.parent / "stacks" / env / "services.tf").read_text(encoding="utf-8")
        pairs = re.findall(
            r'^\s+image\s+= "([^"]+)"\n\s+ami_id\s+= (null|"ami-[0-9a-f]+")$', text, re.M
        )
        assert pairs, f"no services in stacks/{env}/services.tf"
        for image, ami in pairs:
            result[(env, image)] = None if ami == "null" else json.loads(ami)
    return result


def _ec2(endpoint: str):
    import boto3

    return boto3.client(
        "ec2",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="emulator",
        aws_secret_access_key="emulator",
    )


def _after_second_of(built_at: str) -> None:
    """Wait until the UTC second after `built_at`: AMI names carry the build's second."""
    moment = (
        datetime.strptime(built_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    )
    while time.time() < moment + 1.05:
        time.sleep(0.05)


def _git_commit(folder: Path) -> str:
    git = shutil.which("git")
    if git is None:
        return ""

    def call(*args: str) -> str:
        return subprocess.run(
            [git, *args], cwd=folder, check=True, capture_output=True, text=True
        ).stdout.strip()

    call("init", "-q")
    call("add", "-A")
    call(
        "-c",
        "user.name=levels",
        "-c",
        "user.email=levels@example.invalid",
        "-c",
        "commit.gpgsign=false",
        "commit",
        "-qm",
        "platform",
    )
    return call("rev-parse", "HEAD")


def _fake_packer(folder: Path, version: str, body: str = "") -> Path:
    """A shell script that answers `version` like packer `version` would and runs `body` otherwise."""
    script = folder / f"packer-{version}"
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = version ]; then echo "Packer v{version}"; exit 0; fi\n{body}\n',
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


# --- baking against the emulator ------------------------------------------------------


@pytest.mark.slow
def test_bake_records_the_ami_and_renders_it_into_the_launch_templates(
    run, tmp_path, moto, real_packer
):
    config = _tree(tmp_path / "platform", run, endpoint=moto)
    revision = _git_commit(config.parent)
    assert set(_launch_template_amis(config).values()) == {None}

    result = _bake(run, config, "api")
    assert result.exit_code == 0, result.output
    entry = _lock(config).entry("api", REGION)
    assert entry is not None and _lock(config).entry("worker", REGION) is None
    assert re.fullmatch(r"\d{8}\.\d{4}", entry.version)  # the default: UTC time of the bake
    assert entry.source_ami == SEED_AMI and entry.git_revision == revision
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry.built_at)
    # Progress came through the console as it ran, each line with image and seconds.
    assert re.search(rf"^\[api \d+s\] .*Found Image ID: {SEED_AMI}$", result.stdout, re.M)
    assert (
        f"api: {entry.ami} in {REGION}, version {entry.version}; recorded in images.lock"
        in result.stdout
    )
    for env in ENVIRONMENTS:
        assert f"  {env}: api (api: no AMI -> {entry.ami})" in result.stdout

    # The AMI is real in the emulator, tagged as the lock says.
    described = _ec2(moto).describe_images(ImageIds=[entry.ami])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert (
        tags["Image"] == "api"
        and tags["Version"] == entry.version
        and tags["SourceAMI"] == SEED_AMI
    )
    assert tags["GitRevision"] == revision and tags["BuiltAt"] == entry.built_at

    # Every environment's launch template takes it; the worker's has none yet.
    amis = _launch_template_amis(config)
    assert {amis[(env, "api")] for env in ENVIRONMENTS} == {entry.ami}
    assert {amis[(env, "worker")] for env in ENVIRONMENTS} == {None}
    assert run("render", "--check", config=config).exit_code == 0  # lock and tree agree
    services_before = (config.parent / "stacks" / "production" / "services.tf").read_text(
        encoding="utf-8"
    )

    # A second bake: a new AMI, recorded, and a changed launch template input.
    _after_second_of(entry.built_at)
    again = _bake(run, config, "api", "--version", "2.0.0")
    assert again.exit_code == 0, again.output
    second = _entry(config, "api")
    assert second.ami != entry.ami and second.version == "2.0.0" and second.git_revision == revision
    assert f"  production: api (api: {entry.ami} -> {second.ami})" in again.stdout
    amis = _launch_template_amis(config)
    assert {amis[(env, "api")] for env in ENVIRONMENTS} == {second.ami}
    services_after = (config.parent / "stacks" / "production" / "services.tf").read_text(
        encoding="utf-8"
    )
    assert (
        services_after
        == services_before.replace(f'"{entry.ami}"', f'"{second.ami}"')
        != services_before
    )
    assert _ec2(moto).describe_images(ImageIds=[second.ami])["Images"][0]["Tags"]


@pytest.mark.slow
def test_a_failed_build_leaves_its_lock_entry_alone(run, tmp_path, moto, real_packer):
    # The emulator has no Debian AMI, so the worker's source_ami_filter matches nothing.
    config = _tree(tmp_path / "platform", run, worker_base="debian-12", endpoint=moto)
    lock_file = config.parent / image_lock.LOCK_FILE

    alone = _bake(run, config, "worker")
    assert alone.exit_code == 1
    assert (
        "packer build of packer/worker.pkr.hcl (amazon-ebs.emulator) failed (exit 1)"
        in alone.stderr
    )
    assert "No AMI was found matching filters" in alone.stderr
    assert "bake failed for worker; images.lock is unchanged for it" in alone.stderr
    # Packer's whole output is kept in the worker's build log, which the failure names.
    log = re.search(r"^its output is in (\S+/worker-build-\S+\.log)$", alone.stderr, re.M)
    assert log, alone.stderr
    assert "No AMI was found matching filters" in Path(log.group(1)).read_text()
    assert not lock_file.exists()
    assert run("render", "--check", config=config).exit_code == 0  # nothing re-rendered

    first = _bake(run, config, "api", "--version", "1")
    assert first.exit_code == 0, first.output
    recorded = lock_file.read_bytes()
    again = _bake(run, config, "worker")
    assert again.exit_code == 1 and lock_file.read_bytes() == recorded

    # Several images: the good ones are recorded, the command fails naming the others.
    _after_second_of(_entry(config, "api").built_at)
    both = _bake(run, config, "--all", "--version", "2")
    assert both.exit_code == 1
    assert "bake failed for worker; images.lock is unchanged for it (recorded: api)" in both.stderr
    lock = _lock(config)
    assert _entry(config, "api").version == "2" and lock.entry("worker", REGION) is None
    amis = _launch_template_amis(config)
    assert {amis[(env, "api")] for env in ENVIRONMENTS} == {lock.ami("api", REGION)}
    assert {amis[(env, "worker")] for env in ENVIRONMENTS} == {None}
    assert run("render", "--check", config=config).exit_code == 0


@pytest.mark.slow
def test_packer_17_and_newer_gets_init_before_the_build(run, tmp_path, moto, real_packer):
    log = tmp_path / "calls.log"
    # Packer 1.10 on the outside (init goes to the log), the real 1.6.6 does the build.
    fake = _fake_packer(
        tmp_path,
        "1.10.3",
        f'echo "$*" >> "{log}"\n[ "$1" = init ] && exit 0\nexec "{real_packer}" "$@"',
    )
    config = _tree(tmp_path / "platform", run, endpoint=moto)
    result = _bake(run, config, "api", "--packer-bin", str(fake), "--version", "1")
    assert result.exit_code == 0, result.output
    calls = log.read_text().splitlines()
    assert calls[0] == "init packer/plugins"
    assert calls[1].startswith("build -color=false -only=amazon-ebs.emulator ") and calls[
        1
    ].endswith("packer/api.pkr.hcl")
    assert len(calls) == 2
    assert "with packer 1.10.3" in result.stdout
    assert _entry(config, "api").version == "1"


# --- refusals that run no build ------------------------------------------------------


def test_packer_missing_is_one_clear_line(run, tmp_path, monkeypatch):
    config = _tree(tmp_path / "platform", run, endpoint="http://127.0.0.1:9")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    with monkeypatch.context() as patch:
        patch.setenv("PATH", str(empty))
        result = _bake(run, config, "api")
    assert result.exit_code == 1
    assert result.stderr == "packer is not installed or not on PATH; apt-get install packer\n"
    result = _bake(run, config, "api", "--packer-bin", "/nonexistent/packer")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "packer is not installed at /nonexistent/packer (no such program); apt-get install packer\n"
    )
    assert not (config.parent / image_lock.LOCK_FILE).exists()


def test_a_program_that_is_not_packer_is_refused(run, tmp_path):
    config = _tree(tmp_path / "platform", run)
    impostor = tmp_path / "impostor"
    impostor.write_text("#!/bin/sh\necho hello\n")
    impostor.chmod(0o755)
    result = _bake(run, config, "api", "--packer-bin", str(impostor))
    assert result.exit_code == 1
    assert (
        "does not look like packer: `impostor version` printed 'hello'; apt-get install packer"
        in result.stderr
    )


def test_a_stale_tree_is_refused_before_any_build(run, tmp_path):
    log = tmp_path / "calls.log"
    fake = _fake_packer(tmp_path, "1.6.6", f'echo "$*" >> "{log}"; exit 1')
    config = copy_reference(tmp_path / "platform")
    never = _bake(run, config, "api", "--packer-bin", str(fake))
    assert never.exit_code == 1 and f"run {next_step(config, 'render')}` first" in never.stderr
    _tree(tmp_path / "platform", run)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("    instance_type: t3.small\n", "    instance_type: t3.large\n", 1),
        encoding="utf-8",
    )
    result = _bake(run, config, "api", "--packer-bin", str(fake))
    assert result.exit_code == 1
    assert (
        "the rendered tree is stale against infra.yaml (1 file differs: packer/api.pkr.hcl)"
        in result.stderr
    )
    assert f"run {next_step(config, 'render')}` first, then bake" in result.stderr
    assert not log.exists()  # packer was asked its version, and never to build
    assert not (config.parent / image_lock.LOCK_FILE).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name the images to bake, or give --all; defined: api, worker"),
        (("nope",), "no image 'nope' in"),
        (("api", "--all"), "name images or give --all, not both"),
        (("api", "--version", "1 0"), "--version: '1 0': use up to 128 letters"),
        (
            ("api", "--aws-endpoint", "localhost:5000"),
            "--aws-endpoint 'localhost:5000' is not an http(s) URL",
        ),
        (("api", "--aws-endpoint", "http://127.0.0.1:5000"), "the tree in "),
        (
            ("api", "--backend", "local"),
            "leave --backend out, or run `levels-tf -c CONFIG render --backend local` first",
        ),
    ],
)
def test_usage_errors(run, tmp_path, args, message):
    config = _tree(tmp_path / "platform", run)
    result = _bake(run, config, *args, "--packer-bin", "/nonexistent/packer")
    message = message.replace("`levels-tf -c CONFIG ", next_step(config, ""))
    assert result.exit_code == 2 and message in result.stderr


# --- the adapter on its own ---------------------------------------------------------------


def test_versions_and_init(tmp_path):
    log = tmp_path / "calls.log"
    old = packer.Packer.locate(_fake_packer(tmp_path, "1.6.6", f'echo "$*" >> "{log}"'))
    assert old.version == (1, 6, 6) and not old.needs_init
    assert old.init(Path("packer/plugins"), cwd=tmp_path) is False and not log.exists()
    new = packer.Packer.locate(
        _fake_packer(tmp_path, "1.7.0", f'echo "$*" >> "{log}"; echo installed')
    )
    assert new.version == (1, 7, 0) and new.needs_init and new.version_text == "1.7.0"
    seen: list[str] = []
    assert new.init(Path("packer/plugins"), cwd=tmp_path, on_line=seen.append) is True
    assert log.read_text() == "init packer/plugins\n" and seen == ["installed"]
    assert Path(new.binary).is_absolute()


def test_build_streams_lines_and_fails_with_the_tail(tmp_path):
    body = 'i=1; while [ $i -le 30 ]; do echo "line $i"; i=$((i+1)); done; echo "to stderr" >&2; exit 3'
    fake = packer.Packer.locate(_fake_packer(tmp_path, "1.6.6", body))
    seen: list[str] = []
    with pytest.raises(packer.PackerError) as caught:
        fake.build(
            "packer/api.pkr.hcl",
            only="amazon-ebs.aws",
            variables={"version": "1"},
            cwd=tmp_path,
            on_line=seen.append,
        )
    assert seen == [f"line {i}" for i in range(1, 31)]
    lines = str(caught.value).splitlines()
    assert (
        lines[0]
        == "packer build of packer/api.pkr.hcl (amazon-ebs.aws) failed (exit 3); the end of its output:"
    )
    assert lines[1:] == [f"  line {i}" for i in range(12, 31)] + ["  to stderr"]


def test_build_arguments(tmp_path):
    out = tmp_path / "argv"
    fake = packer.Packer.locate(
        _fake_packer(tmp_path, "1.6.6", f'for a in "$@"; do echo "$a"; done > "{out}"; echo done')
    )
    build = fake.build(
        "packer/api.pkr.hcl",
        only="amazon-ebs.emulator",
        variables={"version": "1", "git_revision": "", "config_dir": "/a b/c"},
        cwd=tmp_path,
    )
    assert out.read_text().splitlines() == [
        "build",
        "-color=false",
        "-only=amazon-ebs.emulator",
        "-var",
        "version=1",
        "-var",
        "git_revision=",
        "-var",
        "config_dir=/a b/c",
        "packer/api.pkr.hcl",
    ]
    assert build.lines == ("done",) and build.source_ami() is None
    with pytest.raises(ValueError):
        fake.build("packer/api.pkr.hcl", only="x", variables={"bad name": "1"}, cwd=tmp_path)


def test_manifest_of_the_last_run(tmp_path):
    path = tmp_path / "api.json"
    assert packer.read_manifest(path) == []
    build = {
        "name": "image",
        "builder_type": "amazon-ebs",
        "files": None,
        "custom_data": {"version": "1"},
    }
    path.write_text(
        json.dumps(
            {
                "builds": [
                    {
                        **build,
                        "artifact_id": "us-east-1:ami-0000000000000000a",
                        "packer_run_uuid": "old",
                    },
                    {
                        **build,
                        "artifact_id": "us-east-1:ami-0000000000000000b,eu-west-1:ami-0000000000000000c",
                        "packer_run_uuid": "new",
                    },
                ],
                "last_run_uuid": "new",
            }
        )
    )
    (latest,) = packer.read_manifest(path)
    assert latest.amis() == {
        "us-east-1": "ami-0000000000000000b",
        "eu-west-1": "ami-0000000000000000c",
    }
    assert latest.custom_data == {"version": "1"} and latest.run_uuid == "new"
    with pytest.raises(packer.PackerError, match="unexpected artifact id"):
        packer.ManifestBuild("r", "image", "ami-0000000000000000b").amis()
    path.write_text("{not json")
    with pytest.raises(packer.PackerError, match="unreadable packer manifest"):
        packer.read_manifest(path)


def test_default_version():
    assert (
        default_version(datetime(2026, 11, 26, 5, 12, 59, tzinfo=timezone.utc)) == "20261126.0512"
    )
    assert re.fullmatch(r"\d{8}\.\d{4}", default_version())


def test_source_ami_from_the_output():
    build = packer.Build(
        "t",
        "b",
        ("==> x: Prevalidating", f"    amazon-ebs.aws: Found Image ID: {SEED_AMI}", "done"),
    )
    assert build.source_ami() == SEED_AMI
