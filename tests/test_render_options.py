"""How a tree was rendered is one fact stored with it, and no command disagrees.

`render --aws-endpoint URL --backend local` stores both options in
`.levels-tf/render-options`. Every command that reads the rendered tree
takes the same two options: none means the stored ones, and one that
contradicts them (or $AWS_ENDPOINT_URL where no option is given) is one
clear line naming the render to run. The command list comes from the CLI
itself, so a command added later without this is caught here.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import click
import pytest

from levels_tf import options
from levels_tf.cli import cli
from levels_tf.errors import UsageError
from levels_tf.options import RenderOptions

from .conftest import ROOT, _provider_mirror, next_step, require_tool
from .test_deploy import _kms_bucket

CONFIG = ROOT / "tests" / "configs" / "rehearsal" / "infra.yaml"
STORED_ENDPOINT = (
    "http://127.0.0.1:9"  # nothing listens there: no command may get as far as calling it
)
OTHER_ENDPOINT = "http://127.0.0.1:10"

# Commands that never read a rendered tree, and why.
TREE_FREE = {
    "init": "writes a starter infra.yaml",
    "validate": "reads infra.yaml only",
    "schema": "prints the schema",
    "stacks": "reads infra.yaml only",
    "rehearse": "renders a temporary tree of its own; never reads the one beside infra.yaml",
    "package": "builds function zips from their sources",
    "ci": "writes CI workflows from infra.yaml only; the jobs they run read the tree",
    "diagram": "draws infra.yaml, not the rendered tree",
}
# Everything else reads the tree: the arguments that get each one as far as its options.
TREE_READERS = {
    "render": ("--check",),
    "plan": ("trial",),
    "drift": ("trial",),
    "apply": ("trial",),
    "output": ("trial",),
    "destroy": ("trial", "--confirm", "trial"),
    "bake": ("worker",),
    "bootstrap": (),
    "deploy": ("worker", "bundle.tar.gz", "--env", "trial"),
    "lock": ("trial",),
    "check": ("trial",),
    "ssh-config": (),
    "tunnel": ("db", "--env", "trial"),
    "db failover": ("--env", "trial"),
    "db resize": ("--env", "trial", "--instance-class", "db.r6g.large"),
    "db restore": ("--env", "trial", "--latest", "--as", "trial-restore"),
    "db drop": ("trial-restore", "--confirm", "trial-restore"),
}


def _commands() -> dict[str, click.Command]:
    """Every command, a group's own as "GROUP COMMAND" unless the group is in TREE_FREE."""
    found: dict[str, click.Command] = {}
    for name, command in cli.commands.items():
        if isinstance(command, click.Group) and name not in TREE_FREE:
            found.update({f"{name} {sub}": c for sub, c in command.commands.items()})
        else:
            found[name] = command
    return found


def test_every_command_is_known_to_read_the_tree_or_not():
    unknown = set(_commands()) - set(TREE_FREE) - set(TREE_READERS)
    assert not unknown, (
        f"say whether {sorted(unknown)} read the rendered tree (TREE_READERS or TREE_FREE)"
    )
    for name in TREE_READERS:
        params = {p.name for p in _commands()[name].params}
        assert {"aws_endpoint", "backend"} <= params, (
            f"{name} must take --aws-endpoint and --backend"
        )


def _bundle(path: Path) -> None:
    """A deployable bundle: a gzip tarball of one file."""
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("app.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"v1"))


@pytest.fixture
def rehearsal_tree(tmp_path, run, monkeypatch) -> Path:
    for name in ("AWS_ENDPOINT_URL", "LEVELS_TF_AWS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "infra.yaml"
    shutil.copy(CONFIG, config)
    _bundle(tmp_path / "bundle.tar.gz")
    result = run("render", "--aws-endpoint", STORED_ENDPOINT, "--backend", "local", config=config)
    assert result.exit_code == 0, result.output
    assert (tmp_path / options.STORED).read_text(encoding="utf-8").splitlines()[1:] == [
        f"aws_endpoint: {STORED_ENDPOINT}",
        "backend: local",
    ]
    return config


def _refusal(result, source: str) -> str:
    assert result.exit_code == 2, result.output + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    line = result.stderr.strip()
    assert line.startswith(source), line
    assert f"was rendered with --aws-endpoint {STORED_ENDPOINT} --backend local" in line
    return line


@pytest.mark.parametrize("command", sorted(TREE_READERS))
def test_an_option_that_contradicts_the_tree_is_refused(run, rehearsal_tree, monkeypatch, command):
    args = TREE_READERS[command]
    monkeypatch.chdir(rehearsal_tree.parent)  # deploy's bundle is relative
    before = {p: p.read_bytes() for p in rehearsal_tree.parent.rglob("*") if p.is_file()}

    line = _refusal(
        run(*command.split(), *args, "--aws-endpoint", OTHER_ENDPOINT, config=rehearsal_tree),
        "--aws-endpoint",
    )
    render = next_step(rehearsal_tree, "render")
    assert f"{render} --aws-endpoint {OTHER_ENDPOINT} --backend local` first" in line
    line = _refusal(
        run(*command.split(), *args, "--backend", "s3", config=rehearsal_tree), "--backend s3"
    )
    assert f"{render} --aws-endpoint {STORED_ENDPOINT} --backend s3` first" in line
    monkeypatch.setenv("AWS_ENDPOINT_URL", OTHER_ENDPOINT)
    line = _refusal(
        run(*command.split(), *args, config=rehearsal_tree), f"AWS_ENDPOINT_URL={OTHER_ENDPOINT}"
    )
    assert "unset AWS_ENDPOINT_URL" in line

    after = {p: p.read_bytes() for p in rehearsal_tree.parent.rglob("*") if p.is_file()}
    assert after == before  # refused before writing anything


def test_render_keeps_the_stored_options_and_takes_new_ones(run, rehearsal_tree, monkeypatch):
    folder = rehearsal_tree.parent
    stored = folder / options.STORED
    assert run("render", config=rehearsal_tree).exit_code == 0
    assert options.read_stored(folder) == RenderOptions(STORED_ENDPOINT, "local")
    assert (
        run(
            "render", "--check", "--aws-endpoint", STORED_ENDPOINT + "/", config=rehearsal_tree
        ).exit_code
        == 0
    )

    # $AWS_ENDPOINT_URL, the SDKs' standard variable, where no option is given.
    monkeypatch.setenv("AWS_ENDPOINT_URL", OTHER_ENDPOINT)
    assert run("render", config=rehearsal_tree).exit_code == 0
    assert options.read_stored(folder) == RenderOptions(OTHER_ENDPOINT, "local")
    assert f'"{OTHER_ENDPOINT}"' in (folder / "stacks" / "trial" / "providers.tf").read_text(
        encoding="utf-8"
    )
    assert run("render", "--check", config=rehearsal_tree).exit_code == 0
    monkeypatch.delenv("AWS_ENDPOINT_URL")

    # A tree rendered with no options has no stored file; the render removes it.
    fresh = folder / "fresh"
    fresh.mkdir()
    shutil.copy(CONFIG, fresh / "infra.yaml")
    assert run("render", config=fresh / "infra.yaml").exit_code == 0
    assert not (fresh / options.STORED).exists()
    assert stored.exists()


def test_a_stored_file_levels_tf_did_not_write_is_one_clear_line(tmp_path):
    (tmp_path / ".levels-tf").mkdir()
    (tmp_path / options.STORED).write_text(
        "# comment\nendpoint: http://127.0.0.1:9\n", encoding="utf-8"
    )
    refused = (
        r"render-options:2: not a line levels-tf writes; delete it, then run `levels-tf render`"
    )
    with pytest.raises(UsageError, match=refused):
        options.read_stored(tmp_path)
    (tmp_path / options.STORED).write_text("aws_endpoint: localhost:9\n", encoding="utf-8")
    with pytest.raises(
        UsageError, match=r"render-options: --aws-endpoint 'localhost:9' is not an http\(s\) URL"
    ):
        options.read_stored(tmp_path)


def test_before_the_first_render_the_options_and_the_sdk_variable_count(tmp_path):
    sdk = {"AWS_ENDPOINT_URL": OTHER_ENDPOINT}
    assert options.resolve(tmp_path, RenderOptions(None, "local"), "s3", sdk) == RenderOptions(
        OTHER_ENDPOINT, "local"
    )
    assert options.resolve(tmp_path, RenderOptions(STORED_ENDPOINT), "s3", sdk) == RenderOptions(
        STORED_ENDPOINT
    )
    assert options.resolve(tmp_path, RenderOptions(), "s3", {}) == RenderOptions()


@pytest.mark.terraform
@pytest.mark.slow
def test_every_command_works_from_the_options_stored_with_the_tree(
    run, tmp_path, aws_env, terraform_env, monkeypatch
):
    """The whole life cycle on the emulator, with the options given to render only.

    $AWS_ENDPOINT_URL is unset after the render and the proxies are dead, so a
    command that did not take the endpoint from the tree could not reach moto."""
    require_tool("packer")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "infra.yaml"
    shutil.copy(CONFIG, config)
    _bundle(tmp_path / "bundle.tar.gz")
    assert (
        run("render", "--aws-endpoint", aws_env, "--backend", "local", config=config).exit_code == 0
    )
    monkeypatch.delenv("AWS_ENDPOINT_URL")

    ran = []

    def command(name: str, *args: str, codes=(0,)):
        result = run(name, *args, config=config)
        assert result.exit_code in codes, (
            f"{name} {' '.join(args)}: exit {result.exit_code}\n{result.output}{result.stderr}"
        )
        assert "rendered with" not in result.stderr and "stale" not in result.stderr
        ran.append(name)
        return result

    command("render", "--check")
    # The code scan reads the tree only; its findings are not this test's business.
    command("check", "lab-shared", "--scanner", "trivy", codes=(0, 1))
    assert "the tree was rendered with --backend local" in command("bootstrap").stdout
    baked = command("bake", "worker", "--version", "1")
    assert "rendered again" in baked.stdout
    command("plan", "lab-shared", codes=(2,))
    command("apply", "lab-shared")
    command("plan", "trial", codes=(2,))
    assert "app_security_group_ids" in command("output", "lab-shared").stdout
    command("drift", "lab-shared", codes=(0, 2))
    # The environment's deployments bucket as its stack makes it (applying
    # that stack here would only add minutes).
    _kms_bucket(aws_env, "rehearse-trial-deployments")
    command("deploy", "worker", "bundle.tar.gz", "--env", "trial", "--version", "v1")
    mirror = _provider_mirror()
    if mirror:  # the local mirror has one platform: lock names the others and writes nothing
        locked = command("lock", "lab-shared", "--fs-mirror", mirror, codes=(1,))
        assert "darwin_arm64" in locked.stderr
    else:
        command("lock", "lab-shared")
    command("destroy", "lab-shared", "--confirm", "lab-shared")
    # This platform has no database; tests/test_db.py runs `db` from the stored
    # options. Nor has it a bastion, without which ssh-config and tunnel stop
    # (exit 2) once they have read the options; that they take the stored
    # options is test_an_option_that_contradicts_the_tree_is_refused's.
    assert set(ran) == set(TREE_READERS) - {
        "db failover",
        "db resize",
        "db restore",
        "db drop",
        "ssh-config",
        "tunnel",
    }
