"""After `levels-tf db resize`, Terraform's next plan changes no instance class.

terraform with the aws provider against moto, on tests/configs/redeploy
with one reader: the cluster and its instances are applied (targeted, as in
tests/test_redeploy.py: moto lacks what other resources of the stack need),
resized, and planned again from the infra.yaml and tree the resize wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

CONFIG = ROOT / "tests" / "configs" / "redeploy" / "infra.yaml"
INSTANCES = "module.database.aws_rds_cluster_instance.this"
OLD = "db.t4g.medium"
NEW = "db.r6g.large"


def _terraform(stack: Path, *args: str) -> str:
    env = dict(os.environ, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    done = subprocess.run(
        ["terraform", *args, "-input=false", "-no-color"],
        cwd=stack,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (
        f"terraform {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    return done.stdout


def _instance_changes(stack: Path) -> dict[str, dict]:
    """address -> {"actions", "before", "after"} of each instance in a fresh targeted plan."""
    _terraform(stack, "plan", f"-target={INSTANCES}", "-out", "db.tfplan")
    shown = json.loads(_terraform(stack, "show", "-json", "db.tfplan").splitlines()[-1])
    return {
        c["address"]: c["change"]
        for c in shown.get("resource_changes", [])
        if c["address"].startswith(INSTANCES)
    }


def test_the_plan_after_a_resize_changes_no_instance_class(
    run, tmp_path, aws_env, terraform_env, monkeypatch
):
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    config = tmp_path / "infra.yaml"
    config.write_text(CONFIG.read_text().replace("replicas: 0", "replicas: 1"))
    rendered = run("render", "--aws-endpoint", aws_env, "--backend", "local", config=config)
    assert rendered.exit_code == 0, rendered.output
    stack = tmp_path / "stacks" / "lab-shared"
    _terraform(stack, "init")
    _terraform(stack, "apply", "-auto-approve", f"-target={INSTANCES}")

    resized = run("db", "resize", "--env", "trial", "--instance-class", NEW, "--yes", config=config)
    assert resized.exit_code == 0, resized.output + resized.stderr
    assert f"instance_class: {NEW}" in config.read_text()

    changes = _instance_changes(stack)
    assert set(changes) == {f'{INSTANCES}["instance-1"]', f'{INSTANCES}["instance-2"]'}
    for address, change in changes.items():
        assert change["before"]["instance_class"] == NEW, address
        assert change["after"]["instance_class"] == NEW, address
        # Everything else Terraform would change is what moto does not keep
        # (measured: none, so the plan is empty for the instances).
        differing = {
            key
            for key in change["after"]
            if key in change["before"] and change["after"][key] != change["before"][key]
        }
        assert differing == set(), (address, differing)
        assert change["actions"] == ["no-op"], (address, change["actions"])
