"""The rendered tree's .gitignore files keep Terraform's and levels-tf's
working data out of git, and are the same list change detection ignores:
checked with the real git (and, for what `terraform init` leaves, the real
terraform)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from levels_tf import working_files
from levels_tf.affected import affected
from levels_tf.stacks import stacks
from levels_tf.validation import load_config

from .conftest import ROOT, require_tool

CONFIG = ROOT / "tests" / "golden" / "two-az-single-env" / "infra.yaml"

# What working leaves in a stack folder and in .levels-tf/, one file per pattern.
STACK_LEFTOVERS = (
    ".terraform/providers/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64/x",
    ".terraform/terraform.tfstate",
    "prod.tfplan",
    "terraform.tfstate",
    "terraform.tfstate.backup",
    ".terraform.tfstate.lock.info",
    "main.tf.levels-tf-new",
    "main.tf.levels-tf-old",
)
RECORDS = ("journal.json", "db-resize-levels-prod.json")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def repo(run, tmp_path) -> Path:
    """A git repository holding a rendered configuration, committed."""
    require_tool("git")
    shutil.copy(CONFIG, tmp_path / "infra.yaml")
    assert run("render", config=tmp_path / "infra.yaml").exit_code == 0
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "rendered")
    return tmp_path


def _untracked(repo: Path) -> list[str]:
    return _git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()


def test_git_ignores_what_working_leaves_and_keeps_the_lock_file(repo):
    stack = next(p for p in (repo / "stacks").iterdir() if p.is_dir())
    made = [stack / name for name in STACK_LEFTOVERS] + [
        repo / ".levels-tf" / name for name in RECORDS
    ]
    for path in made:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    assert _untracked(repo) == []
    # Change detection ignores exactly these too.
    for path in made:
        assert working_files.is_working_file(path.relative_to(repo).as_posix()), path
    # A stack's lock file is an input: git sees it, and so does --affected.
    (stack / ".terraform.lock.hcl").write_text("# providers\n")
    assert _untracked(repo) == [f"?? {(stack / '.terraform.lock.hcl').relative_to(repo)}"]
    config = load_config(repo / "infra.yaml")
    ordered = stacks(config.infra)
    lock = (stack / ".terraform.lock.hcl").relative_to(repo).as_posix()
    assert stack.name in [s.name for s in affected([lock], {}, ordered)]


def test_every_working_pattern_is_in_the_stacks_gitignore(repo):
    text = (repo / working_files.STACKS_IGNORE).read_text()
    lines = {line for line in text.splitlines() if line and not line.startswith("#")}
    assert lines == set(working_files.stack_patterns())
    assert {f"{d}/" for d in working_files.WORKING_DIRS} <= lines
    records = (repo / working_files.RECORDS_IGNORE).read_text()
    assert {line for line in records.splitlines() if line and not line.startswith("#")} == set(
        working_files.RECORDS
    )


@pytest.mark.terraform
def test_what_terraform_init_leaves_is_ignored_but_its_lock_file(repo, terraform_env):
    stack = repo / "stacks" / next(p.name for p in (repo / "stacks").iterdir() if p.is_dir())
    done = subprocess.run(
        ["terraform", "init", "-input=false", "-no-color"],
        cwd=stack,
        env=terraform_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (stack / ".terraform").is_dir()
    assert _untracked(repo) == [f"?? {(stack / '.terraform.lock.hcl').relative_to(repo)}"]
