"""Shell completion through click's own mechanism, run for real: the
installed `levels-tf` answers bash, zsh and fish, and completes the names
infra.yaml defines (stacks, images, functions, VPC groups, environments)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, require_tool

pytestmark = pytest.mark.slow  # each case starts the real command


def _levels_tf() -> str:
    found = shutil.which("levels-tf", path=str(Path(sys.executable).parent))
    assert found, "levels-tf is not installed beside this Python (pip install -e .)"
    return found


def _complete(words: str, cwd: Path, shell: str = "bash") -> list[str]:
    """What `levels-tf` offers for the last word of `words`, as click's bash protocol answers."""
    parts = words.split(" ")
    env = dict(os.environ, COMP_WORDS=words, COMP_CWORD=str(len(parts) - 1))
    env["_LEVELS_TF_COMPLETE"] = f"{shell}_complete"
    done = subprocess.run(
        [_levels_tf()], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line]


def test_stack_names_complete_from_infra_yaml():
    assert _complete("levels-tf plan pro", ROOT) == ["production-shared", "production"]
    offered = _complete("levels-tf apply production ", ROOT)
    assert "production" not in offered and {"nonprod-shared", "dev", "qa"} <= set(offered)
    assert _complete("levels-tf output de", ROOT) == ["dev"]


def test_other_names_complete_from_infra_yaml():
    assert _complete("levels-tf bake ", ROOT) == ["api", "worker"]
    assert _complete("levels-tf bootstrap ", ROOT) == ["production", "nonprod"]
    assert _complete("levels-tf package ", ROOT) == ["image-variants"]
    assert _complete("levels-tf tunnel db --env ", ROOT) == ["production", "dev", "test", "qa"]
    assert _complete("levels-tf ssh-config --env d", ROOT) == ["dev"]


def test_the_config_named_by_c_is_the_one_read(tmp_path):
    small = ROOT / "tests" / "configs" / "rehearsal-small" / "infra.yaml"
    assert _complete(f"levels-tf -c {small} bootstrap ", tmp_path) == ["main"]


def test_a_folder_without_a_valid_infra_yaml_completes_nothing_and_quietly(tmp_path):
    assert _complete("levels-tf plan ", tmp_path) == []
    (tmp_path / "infra.yaml").write_text("project: [\n")
    assert _complete("levels-tf plan ", tmp_path) == []
    # Commands still complete: they do not come from infra.yaml.
    assert _complete("levels-tf pla", tmp_path) == ["plan"]


def test_bash_sources_the_script_and_completes(tmp_path):
    """The README's line for bash, sourced by a real bash, fills COMPREPLY."""
    bash = require_tool("bash")
    script = (
        f'eval "$(_LEVELS_TF_COMPLETE=bash_source {_levels_tf()})"\n'
        "COMP_WORDS=(levels-tf plan pro); COMP_CWORD=2\n"
        f"_levels_tf_completion {_levels_tf()}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        [bash, "--norc", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["production-shared", "production"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_are_generated(shell):
    done = subprocess.run(
        [_levels_tf()],
        env=dict(os.environ, _LEVELS_TF_COMPLETE=f"{shell}_source"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "_LEVELS_TF_COMPLETE" in done.stdout and f"{shell}_complete" in done.stdout
