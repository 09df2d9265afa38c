"""`levels-tf lock`: lock files a team can share, with the real terraform and
aws provider served from filesystem mirrors (zip packages, as the registry
delivers them, and unpacked)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from levels_tf.model import PLATFORMS
from levels_tf.options import RenderOptions
from levels_tf.terraform import LOCK_FILE, EngineChoice
from levels_tf.workspace import open_workspace

from .conftest import ROOT, _provider_mirror

pytestmark = [pytest.mark.terraform]

CONFIG = ROOT / "tests" / "configs" / "two-groups" / "infra.yaml"
STACKS = ("prod-shared", "live", "lab-shared", "trial")


def _host_platform() -> str:
    done = subprocess.run(
        ["terraform", "version", "-json"], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout)["platform"]


def _rendered(run, folder: Path, platforms: list[str] | None) -> Path:
    folder.mkdir(exist_ok=True)
    config = folder / "infra.yaml"
    text = CONFIG.read_text(encoding="utf-8")
    if platforms is not None:
        text += f"terraform:\n  platforms: [{', '.join(platforms)}]\n"
    config.write_text(text, encoding="utf-8")
    result = run("render", "--backend", "local", config=config)
    assert result.exit_code == 0, result.output
    return config


def _hashes(lock: Path) -> list[str]:
    return re.findall(r'"((?:h1|zh):[^"]+)"', lock.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_locks_from_zip_packages_are_what_init_then_uses(
    run, tmp_path, zip_terraform_env, zip_provider_mirror, monkeypatch
):
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", zip_terraform_env["TF_CLI_CONFIG_FILE"])
    config = _rendered(run, tmp_path, [_host_platform()])

    result = run(
        "lock",
        "prod-shared",
        "live",
        "--backend",
        "local",
        "--fs-mirror",
        str(zip_provider_mirror),
        config=config,
    )
    assert result.exit_code == 0, result.output + result.stderr
    locks = {name: tmp_path / "stacks" / name / LOCK_FILE for name in ("prod-shared", "live")}
    for name, lock in locks.items():
        assert f"{name}: {LOCK_FILE} written" in result.stdout
        assert 'provider "registry.terraform.io/hashicorp/aws"' in lock.read_text()
        assert any(h.startswith("h1:") for h in _hashes(lock)), lock.read_text()
    assert not (tmp_path / "stacks" / "trial" / LOCK_FILE).exists(), (
        "a stack not asked for was locked"
    )
    before = {name: lock.read_bytes() for name, lock in locks.items()}

    # With the lock, the first init installs the provider into the empty
    # cache and the second links that copy instead of extracting it again
    # (which is what a plan reading the cache cannot survive).
    workspace = open_workspace(
        config,
        ("prod-shared", "live"),
        False,
        RenderOptions(backend="local"),
        EngineChoice("binary"),
    )
    first, second = workspace.stacks
    assert workspace.init(first)
    cache = workspace.terraform.plugin_cache
    assert cache is not None  # open_workspace always gives Terraform the shared cache
    (binary,) = cache.rglob("terraform-provider-aws_*")
    installed = binary.stat().st_mtime_ns
    assert workspace.init(second)
    assert binary.stat().st_mtime_ns == installed, (
        "init extracted the provider over the cached copy"
    )
    assert {name: lock.read_bytes() for name, lock in locks.items()} == before, (
        "init had to change the lock"
    )


def _mirrors():
    return ["zip"] + (["unpacked"] if _provider_mirror() else [])


def _mirror(kind: str, request) -> Path:
    if kind == "zip":
        return request.getfixturevalue("zip_provider_mirror")
    mirror = _provider_mirror()
    assert mirror is not None  # _mirrors() offers "unpacked" only where there is one
    return Path(mirror)


def _refused(run, config: Path, source: Path, host: str) -> str:
    """`lock --all` with the team's default platforms, of which the mirror holds the host's only: its stderr."""
    result = run("lock", "--all", "--backend", "local", "--fs-mirror", str(source), config=config)
    assert result.exit_code == 1, result.output + result.stderr
    missing = [p for p in PLATFORMS if p != host]
    first = result.stderr.splitlines()[0]
    assert first.startswith(
        "no lock file was written: the provider packages of prod-shared for "
    ), result.stderr
    assert (
        f"for {', '.join(missing)} could not be fetched from the filesystem mirror {source} ({host} could)"
        in first
    )
    for platform in missing:
        assert re.search(rf"^  {platform}: .*not available for {platform}", result.stderr, re.M), (
            result.stderr
        )
    assert "terraform.platforms" in result.stderr and "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("mirror", _mirrors())
def test_platforms_the_mirror_lacks_are_named_and_no_lock_is_written(
    mirror, run, tmp_path, terraform_env, request, monkeypatch
):
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    config = _rendered(run, tmp_path, None)
    _refused(run, config, _mirror(mirror, request), _host_platform())
    assert not any((tmp_path / "stacks" / name / LOCK_FILE).exists() for name in STACKS)


def test_a_lock_is_rewritten_only_when_it_changes_and_kept_when_refused(
    run, tmp_path, terraform_env, request, monkeypatch
):
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    source = _mirror(_mirrors()[-1], request)
    host = _host_platform()
    config = _rendered(run, tmp_path, [host])
    lock = tmp_path / "stacks" / "prod-shared" / LOCK_FILE
    locked = run(
        "lock", "prod-shared", "--backend", "local", "--fs-mirror", str(source), config=config
    )
    assert locked.exit_code == 0 and f"prod-shared: {LOCK_FILE} written" in locked.stdout, (
        locked.output + locked.stderr
    )
    kept = lock.read_bytes()
    again = run(
        "lock", "prod-shared", "--backend", "local", "--fs-mirror", str(source), config=config
    )
    assert again.exit_code == 0 and f"prod-shared: {LOCK_FILE} unchanged" in again.stdout, (
        again.output
    )

    config.write_text(CONFIG.read_text(encoding="utf-8"), encoding="utf-8")  # the default platforms
    _refused(run, config, source, host)
    assert lock.read_bytes() == kept


def test_lock_files_are_committed_not_ignored():
    ignored = subprocess.run(
        [
            "git",
            "-C",
            str(ROOT),
            "check-ignore",
            "--no-index",
            "-q",
            f"stacks/production/{LOCK_FILE}",
        ],
        timeout=60,
    )
    assert ignored.returncode == 1, ".gitignore keeps the stacks' lock files out of the repository"


def test_lock_asks_for_one_package_source(run, tmp_path):
    config = _rendered(run, tmp_path, None)
    result = run(
        "lock",
        "--all",
        "--fs-mirror",
        str(tmp_path),
        "--net-mirror",
        "https://mirror.example",
        config=config,
    )
    assert result.exit_code == 2 and "give one" in result.output
