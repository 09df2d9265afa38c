"""Shared fixtures: the checkout's paths, a CLI runner, and a home that tests may not write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from levels_tf.cli import cli

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "infra.yaml"


def require_tool(name: str) -> str:
    """The path of tool `name`; skips the test where it is missing, but fails
    under CI, where .ci/run must have installed it."""
    import os

    path = shutil.which(name)
    if path is None:
        message = f"{name} is not on PATH"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must install it)")
        pytest.skip(message + "; .ci/run installs it")
    return path


@pytest.fixture(autouse=True)
def _no_home_writes(tmp_path_factory, monkeypatch):
    """Point HOME and the cache at a throwaway folder so no test writes the real home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))


@pytest.fixture
def run():
    """Run the CLI in-process: run('validate', config=path) -> click Result."""

    def invoke(*args: str, config: Path | str | None = None):
        argv = (["-c", str(config)] if config is not None else []) + list(args)
        return CliRunner().invoke(cli, argv, catch_exceptions=False)

    return invoke


@pytest.fixture
def reference_copy(tmp_path) -> Path:
    """A copy of the reference infra.yaml in an empty folder."""
    target = tmp_path / "infra.yaml"
    shutil.copy(REFERENCE, target)
    return target


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite the expected trees under tests/golden/ from the current templates.",
    )


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def _provider_mirror() -> str | None:
    """The aws provider mirror: $LEVELS_TF_PROVIDER_MIRROR, else ../shared/tools/provider-mirror."""
    import os
    import subprocess

    explicit = os.environ.get("LEVELS_TF_PROVIDER_MIRROR")
    if explicit:
        return explicit
    tool = ROOT.parent / "shared" / "tools" / "provider-mirror"
    if tool.is_file():
        found = subprocess.run(["sh", str(tool)], capture_output=True, text=True, timeout=300)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    return None


@pytest.fixture(scope="session")
def terraform_env(tmp_path_factory) -> dict[str, str]:
    """Environment for running the real terraform: a CLI config of the tests' own
    (provider mirror when this machine has one, else the registry) and a shared
    plugin cache, so the provider is stored once for every stack."""
    import json
    import os

    require_tool("terraform")
    folder = tmp_path_factory.mktemp("terraform")
    cache = folder / "plugin-cache"
    cache.mkdir()
    mirror = _provider_mirror()
    lines = [f"plugin_cache_dir = {json.dumps(str(cache))}"]
    if mirror:
        lines += [
            "provider_installation {",
            "  filesystem_mirror {",
            f"    path    = {json.dumps(mirror)}",
            '    include = ["registry.terraform.io/hashicorp/*"]',
            "  }",
            "  direct {",
            '    exclude = ["registry.terraform.io/hashicorp/*"]',
            "  }",
            "}",
        ]
    rc = folder / "terraformrc"
    rc.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = dict(os.environ)
    env.update({"TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})
    env.pop("TF_PLUGIN_CACHE_DIR", None)
    return env
