"""`terraform init` runs only when something it reads changed: the real
terraform and aws provider, no AWS needed (local state)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from levels_tf.options import RenderOptions
from levels_tf.plugin_cache import folder as plugin_cache
from levels_tf.terraform import EngineChoice, Terraform, TerraformError
from levels_tf.workspace import open_workspace

from .conftest import ROOT

pytestmark = [pytest.mark.terraform]

CONFIG = ROOT / "tests" / "golden" / "two-az-single-env" / "infra.yaml"


def test_init_runs_again_only_when_what_it_reads_changed(run, tmp_path, terraform_env, monkeypatch):
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    config = tmp_path / "infra.yaml"
    shutil.copy(CONFIG, config)
    assert run("render", "--backend", "local", config=config).exit_code == 0
    workspace = open_workspace(
        config, ("main-shared",), False, RenderOptions(backend="local"), EngineChoice("binary")
    )
    (stack,) = workspace.stacks
    folder = workspace.folder(stack)

    assert workspace.init(stack) is True
    assert (folder / ".terraform.lock.hcl").is_file()
    assert workspace.init(stack) is False, "nothing changed, yet init ran again"

    # A module the stack calls changed (it might need another provider).
    module = tmp_path / "modules" / "network" / "main.tf"
    module.write_text(module.read_text() + "\n# changed\n")
    assert workspace.init(stack) is True
    assert workspace.init(stack) is False

    # The dependency lock file changed (say, a provider upgrade was merged).
    lock = folder / ".terraform.lock.hcl"
    lock.unlink()
    assert workspace.init(stack) is True and lock.is_file()
    assert workspace.init(stack) is False

    # The plugin cache was cleared: the providers init linked are gone.
    shutil.rmtree(plugin_cache())
    assert workspace.init(stack) is True
    assert workspace.init(stack) is False

    # Another Terraform CLI configuration (another mirror, say).
    rc = tmp_path / "terraformrc"
    rc.write_text(Path(terraform_env["TF_CLI_CONFIG_FILE"]).read_text() + "\n# another\n")
    workspace.terraform.env["TF_CLI_CONFIG_FILE"] = str(rc)
    assert workspace.init(stack) is True
    assert workspace.init(stack) is False

    # A failed init leaves no mark: the next one runs.
    (folder / "broken.tf").write_text('module "nowhere" {\n  source = "./no-such-folder"\n}\n')
    with pytest.raises(TerraformError, match="terraform init failed"):
        workspace.init(stack)
    (folder / "broken.tf").unlink()
    assert workspace.init(stack) is True


def test_an_init_that_leaves_no_data_folder_says_why_and_what_to_do(
    run, tmp_path, terraform_env, monkeypatch
):
    """TF_DATA_DIR moves what init installs out of the stack: levels-tf, which
    reads the stack's .terraform next, stops with the cause and the fix (exit
    1, one line), not a traceback."""
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    config = tmp_path / "infra.yaml"
    shutil.copy(CONFIG, config)
    assert run("render", "--backend", "local", config=config).exit_code == 0
    elsewhere = tmp_path / "data"
    monkeypatch.setenv("TF_DATA_DIR", str(elsewhere))
    result = run("output", "main-shared", config=config)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    folder = tmp_path / "stacks" / "main-shared"
    assert line.startswith(f"terraform init in {folder} ended without error but left no .terraform")
    assert f"TF_DATA_DIR is set ({elsewhere})" in line and "unset TF_DATA_DIR" in line
    assert (elsewhere / "providers").is_dir()  # init did run, only elsewhere


def test_a_program_that_writes_nothing_is_an_error_naming_it(tmp_path, terraform_env):
    """A stack that uses providers (it has a lock file, as every rendered
    stack does after `levels-tf lock` or a first init) and gets no .terraform
    from init: the error says to check which program runs. Real terraform
    leaves none for a configuration without providers, which needs none."""
    engine = Terraform.locate(EngineChoice("binary"))
    engine.env["TF_CLI_CONFIG_FILE"] = terraform_env["TF_CLI_CONFIG_FILE"]
    engine.env.pop("TF_DATA_DIR", None)
    folder = tmp_path / "stack"
    folder.mkdir()
    (folder / "main.tf").write_text("locals {\n  a = 1\n}\n")
    assert engine.init(folder, "inputs") is True
    assert not (folder / ".terraform").exists() and not (folder / ".terraform.lock.hcl").exists()
    (folder / ".terraform.lock.hcl").write_text("# the stack's providers\n")

    # A stand-in that answers every verb with success and writes nothing.
    fake = tmp_path / "not-terraform"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    stand_in = Terraform((str(fake),), dict(engine.env), name="not-terraform")
    with pytest.raises(TerraformError, match=r"not-terraform init in .* left no \.terraform"):
        stand_in.init(folder, "inputs")
    (folder / ".terraform.lock.hcl").unlink()
    with pytest.raises(
        TerraformError, match=r"providers lock in .* left no \.terraform\.lock\.hcl"
    ):
        stand_in.providers_lock(folder, ["linux_amd64"])
