"""`terraform init` runs only when something it reads changed: the real
terraform and aws provider, no AWS needed (local state)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from levels_tf.options import RenderOptions
from levels_tf.plugin_cache import folder as plugin_cache
from levels_tf.terraform import EngineChoice, TerraformError
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
