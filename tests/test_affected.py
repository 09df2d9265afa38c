"""`--affected`: the stacks a change touches, with real git in a repository
of the test's own, as a team's repository holds infra.yaml and its tree."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from levels_tf.affected import affected, modules_called
from levels_tf.render import render
from levels_tf.stacks import stacks
from levels_tf.validation import load_config

from .conftest import REFERENCE, copy_reference, require_tool

ENVIRONMENTS = ["production", "dev", "test", "qa"]


def _git(folder: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com",
        GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
    )  # fmt: skip
    done = subprocess.run(
        [require_tool("git"), *args], cwd=folder, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def repo(tmp_path, run) -> Path:
    """A repository whose one commit holds the reference infra.yaml and its rendered tree."""
    folder = tmp_path / "platform"
    config = copy_reference(folder)
    assert run("render", config=config).exit_code == 0
    _git(folder, "init", "-q", "-b", "main")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", "platform")
    return config


def _edit(config: Path, old: str, new: str) -> None:
    text = config.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    config.write_text(text.replace(old, new), encoding="utf-8")


def _affected(run, config: Path, *args: str) -> list[str]:
    result = run("stacks", "--affected", "--json", *args, config=config)
    assert result.exit_code == 0, result.output
    return [row["name"] for row in json.loads(result.stdout)]


def test_no_change_affects_no_stack(repo, run):
    assert _affected(run, repo) == []


def test_one_environments_override_affects_that_environment_only(repo, run):
    _edit(repo, "services.api.scaling: {min: 1, max: 2, desired: 1}", "services.api.scaling: {min: 1, max: 3, desired: 1}")  # fmt: skip
    assert run("render", config=repo).exit_code == 0
    assert _affected(run, repo) == ["dev"]
    # Committed, it is a change since the commit before, not since HEAD.
    _git(repo.parent, "commit", "-qam", "dev scales to 3")
    assert _affected(run, repo) == []
    assert _affected(run, repo, "--base", "HEAD~1") == ["dev"]


def test_terraforms_working_files_affect_nothing_but_a_new_lock_file_does(repo, run):
    # What a local plan leaves behind, untracked: it is no change of the stack.
    dev = repo.parent / "stacks" / "dev"
    for name in (
        ".terraform/providers/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64/x",
        ".terraform/terraform.tfstate",
        "levels-tf.tfplan",
        "levels-tf-destroy.tfplan",
        "terraform.tfstate",
        "terraform.tfstate.backup",
        ".terraform.tfstate.lock.info",
        "main.tf.levels-tf-new",
    ):
        (dev / name).parent.mkdir(parents=True, exist_ok=True)
        (dev / name).write_text("x", encoding="utf-8")
    assert _affected(run, repo) == []
    # A lock file names the providers the stack runs with: that is a change.
    (dev / ".terraform.lock.hcl").write_text("# providers\n", encoding="utf-8")
    assert _affected(run, repo) == ["dev"]


def test_a_shared_stack_change_affects_the_environments_that_read_it(repo, run):
    _edit(repo, "    azs: 4\n    nat: single", "    azs: 3\n    nat: single")
    assert run("render", config=repo).exit_code == 0
    assert _affected(run, repo) == ["nonprod-shared", "dev", "test", "qa"]


def test_a_module_change_affects_every_stack_that_calls_it(repo, run):
    """A module changes when levels-tf does: the tree committed at the base
    was rendered by an older levels-tf. Every stack calling the module,
    directly or through another module, is affected."""
    folder = repo.parent
    queue = folder / "modules" / "queue" / "main.tf"
    queue.write_text(queue.read_text(encoding="utf-8") + "\n# older\n", encoding="utf-8")
    _git(folder, "commit", "-qam", "rendered by an older levels-tf")
    assert run("render", config=repo).exit_code == 0  # today's module again
    assert _affected(run, repo) == ENVIRONMENTS  # the queue module: environment stacks only

    waf = folder / "modules" / "waf" / "main.tf"
    waf.write_text(waf.read_text(encoding="utf-8") + "\n# older\n", encoding="utf-8")
    _git(folder, "commit", "-qam", "an older waf")
    assert run("render", config=repo).exit_code == 0
    every = [s.name for s in stacks(load_config(repo).infra)]
    # The load balancer (shared stacks) and the CDN (environments) both call the WAF module.
    assert _affected(run, repo) == every


def test_a_new_environment_is_affected_before_git_tracks_it(repo, run):
    _edit(repo, "environments: [dev, test, qa]", "environments: [dev, test, qa, uat]")
    assert run("render", config=repo).exit_code == 0
    assert "uat" in _affected(run, repo)
    assert "production" not in _affected(run, repo)


def test_the_selection_is_refused_clearly(repo, run, tmp_path):
    _edit(repo, "max: 2, desired: 1}", "max: 3, desired: 1}")
    stale = run("stacks", "--affected", config=repo)
    assert stale.exit_code == 2 and "stale" in stale.stderr
    assert run("render", config=repo).exit_code == 0

    both = run("plan", "dev", "--affected", config=repo)
    assert both.exit_code == 2 and "--affected selects the stacks" in both.stderr
    lone = run("stacks", "--base", "HEAD", config=repo)
    assert lone.exit_code == 2 and "--base goes with --affected" in lone.output
    unknown = run("stacks", "--affected", "--base", "no-such-branch", config=repo)
    assert unknown.exit_code == 2 and "--base no-such-branch: no such commit" in unknown.stderr

    elsewhere = tmp_path / "not-a-repository"
    config = copy_reference(elsewhere)
    assert run("render", config=config).exit_code == 0
    outside = run("stacks", "--affected", config=config)
    assert outside.exit_code == 2 and "is not in a git repository" in outside.stderr
    # stacks takes no names and no --all: it is told what it can do without git.
    assert outside.stderr.strip().endswith("; leave out --affected to list every stack")
    assert "--all" not in outside.stderr
    for command in ("plan", "apply", "drift"):
        selecting = run(command, "--affected", config=config)
        assert selecting.exit_code == 2 and "is not in a git repository" in selecting.stderr
        assert selecting.stderr.strip().endswith("; name the stacks or give --all instead")


@pytest.mark.terraform
def test_plan_plans_only_the_affected_stacks(repo, run, terraform_env, monkeypatch):
    """The real plan, on local state: with nothing affected it plans nothing
    and says so; after a change to dev it plans dev alone."""
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    assert run("render", "--backend", "local", config=repo).exit_code == 0
    _git(repo.parent, "add", "-A")
    _git(repo.parent, "commit", "-qm", "local state")

    nothing = run("plan", "--affected", "--format", "json", config=repo)
    assert nothing.exit_code == 0, nothing.output
    assert json.loads(nothing.stdout)["stacks"] == []
    assert "no stack is affected by the changes since HEAD" in nothing.stderr

    _edit(repo, "max: 2, desired: 1}", "max: 3, desired: 1}")
    assert run("render", config=repo).exit_code == 0
    planned = run("plan", "--affected", "--format", "json", config=repo)
    assert [s["stack"] for s in json.loads(planned.stdout)["stacks"]] == ["dev"], planned.output


def test_modules_called_follows_modules_into_modules():
    files = render(load_config(REFERENCE))
    calls = modules_called(files)
    assert {"cdn", "waf", "log-bucket"} <= calls["stacks/dev"]
    assert "waf" in calls["stacks/production-shared"]  # through the load balancer
    assert calls["modules/cdn"] == {"waf"}
    ordered = stacks(load_config(REFERENCE).infra)
    assert [s.name for s in affected(["modules/waf/main.tf"], files, ordered)] == [
        s.name for s in ordered
    ]
    assert affected(["README.md", "packer/api.pkr.hcl"], files, ordered) == []
