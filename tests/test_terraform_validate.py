"""Every rendered stack is fmt-clean and valid for the real terraform and aws provider."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from levels_tf import writer
from levels_tf.render import render
from levels_tf.stacks import stacks
from levels_tf.validation import load_config

from .conftest import REFERENCE

GOLDEN = Path(__file__).parent / "golden"
CONFIGS = {"reference": REFERENCE} | {
    p.name: p / "infra.yaml" for p in sorted(GOLDEN.iterdir()) if (p / "infra.yaml").is_file()
}

pytestmark = pytest.mark.terraform


def _tf(env, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    roots = {}
    for name, config in CONFIGS.items():
        out = tmp_path_factory.mktemp(name)
        writer.write(out, render(load_config(config)))
        roots[name] = out
    return roots


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fmt_clean(name, rendered, terraform_env):
    result = _tf(terraform_env, rendered[name], "fmt", "-check", "-recursive", "-diff", "-no-color")
    assert result.returncode == 0, result.stdout + result.stderr


STACKS = [
    (name, stack.name)
    for name, config in CONFIGS.items()
    for stack in stacks(load_config(config).infra)
]


@pytest.mark.parametrize("name,stack", STACKS, ids=[f"{n}:{s}" for n, s in STACKS])
def test_validate(name, stack, rendered, terraform_env):
    folder = rendered[name] / "stacks" / stack
    init = _tf(terraform_env, folder, "init", "-backend=false", "-input=false", "-no-color")
    assert init.returncode == 0, init.stdout + init.stderr
    result = _tf(terraform_env, folder, "validate", "-json", "-no-color")
    report = json.loads(result.stdout)
    assert report["valid"], result.stdout
    assert report["warning_count"] == 0, result.stdout
    assert result.returncode == 0
