"""The shared plugin cache under concurrent Terraform runs: the real terraform
with the aws provider served as the registry serves it (zip packages), on an
empty cache, against a moto server."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from levels_tf import plugin_cache
from levels_tf.terraform import EngineChoice, Terraform, TerraformError

from .conftest import ROOT

pytestmark = [pytest.mark.terraform]

CONFIG = ROOT / "tests" / "configs" / "two-groups" / "infra.yaml"
SHARED = ("prod-shared", "lab-shared")


def _start_plan_all(folder: Path, endpoint: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "levels_tf",
            "-c",
            str(folder / "infra.yaml"),
            "plan",
            "--all",
            "--parallelism",
            "4",
            "--json",
            "--aws-endpoint",
            endpoint,
            "--backend",
            "local",
        ],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_first_plan_all_of_fresh_stacks_on_an_empty_cache_from_zip_packages(
    tmp_path, run, aws_env, zip_terraform_env
):
    """Two `plan --all` at once, each running its stacks in parallel, on fresh
    stacks (no lock files) sharing one empty plugin cache: every init installs
    the provider from its zip into that cache while other plans read it."""
    env = dict(os.environ, TF_CLI_CONFIG_FILE=zip_terraform_env["TF_CLI_CONFIG_FILE"])
    cache = Path(env["XDG_CACHE_HOME"])
    assert not plugin_cache.folder().exists(), "the plugin cache must start empty"
    folders = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(CONFIG, folder / "infra.yaml")
        rendered = run(
            "render", "--aws-endpoint", aws_env, "--backend", "local", config=folder / "infra.yaml"
        )
        assert rendered.exit_code == 0, rendered.output
        folders.append(folder)

    running = [_start_plan_all(folder, aws_env, env) for folder in folders]
    results = [process.communicate(timeout=1200) for process in running]

    for folder, (stdout, stderr) in zip(folders, results, strict=False):
        assert "checksum" not in stdout + stderr, f"{folder.name}:\n{stderr}"
        planned = {stack["stack"]: stack for stack in json.loads(stdout)["stacks"]}
        for name in SHARED:
            assert name in planned, f"{folder.name}: {name} was not planned:\n{stderr}"
            assert planned[name]["add"] > 0
    cached = list((cache / "levels-tf" / plugin_cache.FOLDER).rglob("terraform-provider-aws_*"))
    assert cached, "the provider was not installed into the shared cache"


def _verbs() -> dict[str, inspect.Signature]:
    """Every Terraform verb that runs in a stack's folder (takes `folder`)."""
    verbs = {}
    for name, member in inspect.getmembers(Terraform, inspect.isfunction):
        signature = inspect.signature(member)
        if not name.startswith("_") and "folder" in signature.parameters:
            verbs[name] = signature
    return verbs


def _bare_stack(tmp_path: Path) -> tuple[Terraform, Path, Path, list[str]]:
    """Terraform with a cache of its own, a stack needing no provider, and the waits it reports."""
    cache = tmp_path / "cache"
    terraform = Terraform.locate(EngineChoice("binary"), cache)
    waits: list[str] = []
    terraform.on_wait = waits.append
    folder = tmp_path / "stack"
    folder.mkdir()
    (folder / "main.tf").write_text('output "x" {\n  value = 1\n}\n', encoding="utf-8")
    return terraform, cache, folder, waits


EXTRA_ARGUMENTS = {"platforms": ("linux_amd64",)}


def test_the_verbs_are_found():
    assert {"init", "plan", "apply", "output"} <= set(_verbs())


@pytest.mark.parametrize("verb", sorted(_verbs()))
def test_every_terraform_run_in_a_stack_waits_while_an_init_holds_the_cache(
    verb, tmp_path, terraform_env, monkeypatch
):
    """The kind: whatever Terraform runs in a stack reads (or, for init,
    writes) the providers in the shared cache, so it must not start while an
    init holds the cache; and init must not start while anything runs."""
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    terraform, cache, folder, waits = _bare_stack(tmp_path)
    signature = _verbs()[verb]
    arguments = {
        name: EXTRA_ARGUMENTS[name]
        for name, parameter in signature.parameters.items()
        if name not in ("self", "folder") and parameter.default is inspect.Parameter.empty
    }
    finished = threading.Event()

    def call() -> None:
        try:
            getattr(terraform, verb)(folder, **arguments)
        except TerraformError:
            pass  # whether Terraform succeeds here does not matter, only when it starts
        finally:
            finished.set()

    # init is held off by a run that only reads; every other verb by an init.
    with plugin_cache.held(cache, exclusive=verb != "init"):
        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(1.5)
        assert not finished.is_set(), f"Terraform.{verb} ran while the plugin cache was held"
    assert finished.wait(120), f"Terraform.{verb} did not run once the plugin cache was free"
    worker.join()
    assert waits and str(cache) in waits[0], waits


def test_runs_that_only_read_the_cache_share_it(tmp_path, terraform_env, monkeypatch):
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    terraform, cache, folder, waits = _bare_stack(tmp_path)
    terraform.init(folder)
    with plugin_cache.held(cache, exclusive=False):
        changes, _ = terraform.plan(folder)
    assert changes and not waits
