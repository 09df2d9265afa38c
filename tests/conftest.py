"""Shared fixtures: the checkout's paths, a CLI runner, and a home that tests may not write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from levels_tf.cli import cli

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "infra.yaml"


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
