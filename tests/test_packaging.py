"""The installed package works outside a checkout: templates and starter file travel with it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv

import pytest
import yaml

from levels_tf.github_oidc import REPOSITORY_PLACEHOLDER

from .conftest import REFERENCE, ROOT

# The reference's repository: written into the starter, it renders the reference tree.
REPOSITORY = yaml.safe_load(REFERENCE.read_text())["ci"]["github"]["repository"]

pytestmark = pytest.mark.slow


def test_pip_install_then_init_and_render_in_an_empty_folder(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "*.egg-info", "build", "__pycache__", ".pytest_cache"
        ),
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "-q", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    shutil.rmtree(source)  # nothing may be read from a checkout any more

    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    levels_tf = env_dir / "bin" / "levels-tf"
    steps = (["init"], ["validate"], ["render"], ["render", "--check"], ["ci", "github"])
    for args in (*steps, ["ci", "github", "--check"]):
        result = subprocess.run(
            [str(levels_tf), *args], cwd=work, env=env, capture_output=True, text=True, timeout=120
        )
        if args == ["validate"]:  # the starter's repository is a placeholder until written
            assert result.returncode == 2 and "is a placeholder" in result.stderr, result.stderr
            starter = work / "infra.yaml"
            starter.write_text(starter.read_text().replace(REPOSITORY_PLACEHOLDER, REPOSITORY))
            result = subprocess.run(
                [str(levels_tf), *args], cwd=work, env=env, capture_output=True, text=True
            )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    rendered = sorted(str(p.relative_to(work)) for p in work.rglob("*.tf"))
    expected = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "stacks").rglob("*.tf")) + sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "modules").rglob("*.tf")
    )
    assert rendered == sorted(expected)
    assert sorted(p.name for p in (work / ".github" / "workflows").iterdir()) == sorted(
        p.name for p in (ROOT / "tests" / "ci_github" / "reference").iterdir()
    )
    for path in rendered:
        assert (work / path).read_text() == (ROOT / path).read_text(), path
    where = subprocess.run(
        [str(python), "-c", "import levels_tf; print(levels_tf.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert str(env_dir) in where.stdout
    assert sys.prefix != str(env_dir)
