"""Every command takes --json: one JSON document on stdout, what it printed
for people on stderr. Each command is run for real where that is cheap (moto
on 127.0.0.1, the real terraform and packer where they are needed) and made
to fail, which is JSON too (the error document of levels_tf/errors.py)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import click
import pytest

from levels_tf.terraform import LOCK_FILE

from .conftest import ROOT, emulated, leaf_commands
from .test_bake import REGION, SEED_AMI, _tree, moto, moto_ec2, real_packer  # noqa: F401
from .test_deploy import _bundle, _kms_bucket
from .test_provider_locks import _host_platform, _mirror, _mirrors, _rendered

SMALL = ROOT / "tests" / "configs" / "rehearsal-small" / "infra.yaml"
GOLDEN = ROOT / "tests" / "golden" / "two-az-single-env" / "infra.yaml"

# Commands whose whole output is JSON whatever is asked: `schema` (JSON
# Schema by default, --format markdown for the reference) and `output` (a
# stack's outputs, as terraform gives them).
JSON_BY_NATURE = {"schema", "output"}


def _json_flag(command: click.Command) -> click.Option | None:
    return next(
        (
            p
            for p in command.params
            if isinstance(p, click.Option) and "--json" in p.opts and p.name == "as_json"
        ),
        None,
    )


def test_subcommands_are_found():
    assert "ci github" in leaf_commands() and "ci" not in leaf_commands()


@pytest.mark.parametrize("name", sorted(leaf_commands()))
def test_every_command_takes_json(name):
    command = leaf_commands()[name]
    if name in JSON_BY_NATURE:
        assert _json_flag(command) is None, (
            f"{name} prints JSON anyway: drop it from JSON_BY_NATURE"
        )
        return
    flag = _json_flag(command)
    assert flag is not None, f"levels-tf {name} has no --json"
    assert flag.is_flag and "json" in (flag.help or "").lower()


def test_schema_prints_json_by_nature(run):
    result = run("schema")
    assert result.exit_code == 0 and json.loads(result.stdout)["type"] == "object"


def _document(result, keys: set[str], code: int = 0) -> dict:
    """stdout as the one JSON document of a command that ran, with exactly `keys`."""
    assert result.exit_code == code, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict) and set(document) == keys, document
    return document


def _small(tmp_path: Path) -> Path:
    config = tmp_path / "infra.yaml"
    shutil.copy(SMALL, config)
    shutil.copytree(SMALL.parent / "scripts", tmp_path / "scripts")
    return config


def test_init(run, tmp_path):
    folder = tmp_path / "new"
    result = run("init", str(folder), "--json")
    document = _document(result, {"directory", "written"})
    assert document["directory"] == str(folder)
    assert str(folder / "infra.yaml") in document["written"]
    assert all(Path(path).is_file() for path in document["written"])
    assert f"wrote {folder / 'infra.yaml'}" in result.stderr


def test_validate(run, tmp_path):
    config = _small(tmp_path)
    result = run("validate", "--json", config=config)
    document = _document(
        result,
        {
            "config",
            "valid",
            "vpc_groups",
            "environments",
            "stacks",
            "images",
            "functions",
            "warnings",
        },
    )
    listed = json.loads(run("stacks", "--json", config=config).stdout)
    assert document["valid"] is True and document["config"] == str(config)
    assert document["stacks"] == [stack["name"] for stack in listed]
    assert document["images"] == ["web", "jobs"] and document["vpc_groups"] == ["main"]
    assert f"{config}: valid (" in result.stderr


def test_render_and_render_check(run, tmp_path):
    config = _small(tmp_path)
    keys = {"out", "created", "updated", "removed", "unchanged"}
    first = _document(run("render", "--json", config=config), keys)
    assert first["created"] and not first["updated"] and not first["unchanged"]
    assert all((tmp_path / path).is_file() for path in first["created"])

    config.write_text(config.read_text() + "tags: {team: web}\n")
    check = run("render", "--check", "--json", config=config)
    stale = _document(check, {"out", "up_to_date", "stale"}, code=1)
    assert stale["up_to_date"] is False and stale["stale"]
    assert {entry["action"] for entry in stale["stale"]} == {"update"}
    assert "files differ from infra.yaml" in check.stderr and "+++ " in check.stderr

    again = run("render", "--json", config=config)
    second = _document(again, keys)
    assert sorted(second["updated"]) == sorted(entry["path"] for entry in stale["stale"])
    assert not second["created"] and set(second["unchanged"]) >= set(first["created"]) - set(
        second["updated"]
    )
    assert "updated" in again.stderr
    fresh = _document(
        run("render", "--check", "--json", config=config), {"out", "up_to_date", "stale"}
    )
    assert fresh == {"out": str(tmp_path), "up_to_date": True, "stale": []}


def test_ci_github_and_its_check(run, tmp_path):
    config = _small(tmp_path)
    out = tmp_path / "workflows"
    keys = {"out", "default_branch", "warnings", "workflows"}
    written = _document(run("ci", "github", "--out", str(out), "--json", config=config), keys)
    assert written["out"] == str(out) and written["default_branch"] == "main"
    assert written["workflows"] and {w["state"] for w in written["workflows"]} == {"written"}
    assert all(Path(w["file"]).is_file() for w in written["workflows"])
    again = _document(run("ci", "github", "--out", str(out), "--json", config=config), keys)
    assert {w["state"] for w in again["workflows"]} == {"unchanged"}

    check_keys = {"out", "default_branch", "warnings", "up_to_date", "stale"}
    fresh = run("ci", "github", "--out", str(out), "--check", "--json", config=config)
    assert _document(fresh, check_keys)["up_to_date"] is True
    first = Path(written["workflows"][0]["file"])
    first.unlink()
    stale = run("ci", "github", "--out", str(out), "--check", "--json", config=config)
    found = _document(stale, check_keys, code=1)
    assert found["stale"] == [{"path": first.name, "action": "create"}]
    assert "differ from infra.yaml" in stale.stderr


def test_package(run, reference_copy):
    result = run("package", "--json", config=reference_copy)
    (built,) = _document(result, {"functions"})["functions"]
    path = Path(built["path"])
    assert built["name"] == "image-variants" and built["changed"] is True
    assert built["bytes"] == path.stat().st_size
    assert built["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"{path}: {built['bytes']} bytes" in result.stderr


@pytest.mark.terraform
def test_lock(run, tmp_path, terraform_env, request, monkeypatch):
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    source = _mirror(_mirrors()[-1], request)
    host = _host_platform()
    config = _rendered(run, tmp_path, [host])
    result = run(
        "lock",
        "prod-shared",
        "--json",
        "--backend",
        "local",
        "--fs-mirror",
        str(source),
        config=config,
    )
    document = _document(result, {"platforms", "source", "stacks"})
    assert document["platforms"] == [host] and str(source) in document["source"]
    (stack,) = document["stacks"]
    lock = tmp_path / "stacks" / "prod-shared" / LOCK_FILE
    assert stack["path"] == str(lock) and stack["changed"] is True
    (version,) = stack["providers"].values()
    assert list(stack["providers"]) == ["registry.terraform.io/hashicorp/aws"]
    assert f'version     = "{version}"' in lock.read_text()
    assert f"prod-shared: {LOCK_FILE} written" in result.stderr


@pytest.fixture
def endpoint(aws_env, monkeypatch) -> str:
    """The moto URL, reachable only through the command's own --aws-endpoint."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LEVELS_TF_AWS_ENDPOINT", raising=False)
    return aws_env


def test_bootstrap(run, reference_copy, endpoint):
    keys = {"region", "endpoint", "backend", "account", "buckets", "oidc_provider", "roles"}
    first = run("bootstrap", "--json", "--aws-endpoint", endpoint, config=reference_copy)
    created = _document(first, keys)
    assert created["account"] == "123456789012" and created["endpoint"] == endpoint
    assert {b["group"]: b["state"] for b in created["buckets"]} == {
        "production": "created",
        "nonprod": "created",
    }
    assert created["oidc_provider"]["state"] == "created"
    roles = {role["name"]: role["state"] for role in created["roles"]}
    assert roles == {
        f"levels-{group}-tf-{kind}": "created"
        for group in ("production", "nonprod")
        for kind in ("plan", "apply")
    }
    assert all(role["arn"].endswith(f":role/{role['name']}") for role in created["roles"])
    assert "account 123456789012" in first.stderr and ": created (group" in first.stderr

    found = _document(
        run("bootstrap", "--json", "--aws-endpoint", endpoint, config=reference_copy), keys
    )
    assert {b["state"] for b in found["buckets"]} == {"up to date"}
    assert found["oidc_provider"] == {**created["oidc_provider"], "state": "exists"}
    assert {role["state"] for role in found["roles"]} == {"up to date"}


def test_deploy(run, reference_copy, endpoint):
    _kms_bucket(endpoint, "levels-dev-deployments")
    bundle = _bundle(reference_copy.parent, "api.tar.gz", {"app/main.py": b"print(1)\n"})
    result = run(
        "deploy",
        "api",
        str(bundle),
        "--env",
        "dev",
        "--json",
        "--aws-endpoint",
        endpoint,
        config=reference_copy,
    )
    document = _document(
        result, {"service", "environment", "version", "bundle", "object", "parameter"}
    )
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert document["version"] == digest[:12] and document["bundle"]["sha256"] == digest
    assert document["object"]["uploaded"] is True
    assert document["object"]["key"] == f"api/{digest[:12]}.tar.gz"
    assert document["parameter"] == {
        "name": "/levels/dev/api/bundle-version",
        "previous": None,
        "changed": True,
        "parameter_version": 1,
    }
    assert "uploaded api.tar.gz" in result.stderr


@pytest.mark.terraform
@pytest.mark.slow
def test_apply_and_destroy(run, rehearse, aws_env):
    config = rehearse(GOLDEN)
    planned = emulated(run, config, aws_env, "plan", "main-shared")
    assert planned.exit_code == 2, planned.output + planned.stderr

    # A production apply asks; with --json it reads no answer and refuses.
    asked = emulated(run, config, aws_env, "apply", "main-shared", "--json")
    _failed(asked, 2)
    assert "--yes" in json.loads(asked.stdout)["error"]["message"]

    applied = emulated(run, config, aws_env, "apply", "main-shared", "--json", "--yes")
    document = _document(applied, {"stacks", "waves"})
    (stack,) = document["stacks"]
    assert stack["name"] == "main-shared" and stack["status"] == "applied"
    assert stack["seconds"] >= 0 and stack["error"] is None and document["waves"] is None
    assert "main-shared: applied in" in applied.stderr

    destroyed = emulated(
        run,
        config,
        aws_env,
        "destroy",
        "main-shared",
        "--confirm",
        "main-shared",
        "--allow-production",
        "--json",
    )
    gone = _document(
        destroyed,
        {
            "stack",
            "destroyed",
            "production",
            "seconds",
            "resources",
            "protection_lifted",
            "emptied",
        },
    )
    assert gone["stack"] == "main-shared" and gone["destroyed"] is True and gone["production"]
    assert gone["resources"] > 20 and gone["protection_lifted"] == []
    assert all(isinstance(count, int) for count in gone["emptied"].values())
    assert "main-shared: destroyed in" in destroyed.stderr

    # Wave by wave: the report names the waves walked.
    walked = emulated(run, config, aws_env, "apply", "main-shared", "--waves", "--json", "--yes")
    document = _document(walked, {"stacks", "waves"})
    assert document["waves"] == [["main-shared"]]
    assert [(s["name"], s["status"]) for s in document["stacks"]] == [("main-shared", "applied")]
    assert "wave 1 of 1: planning main-shared" in walked.stderr


@pytest.mark.slow
def test_bake(run, tmp_path, moto, real_packer):  # noqa: F811
    config = _tree(tmp_path / "platform", run, endpoint=moto)
    result = run("bake", "api", "--version", "1.0.0", "--json", config=config)
    document = _document(result, {"version", "region", "endpoint", "images", "failed"})
    assert document["version"] == "1.0.0" and document["region"] == REGION
    assert document["endpoint"] == moto and document["failed"] == []
    (image,) = document["images"]
    assert image["image"] == "api" and image["previous_ami"] is None
    assert image["ami"].startswith("ami-") and image["source_ami"] == SEED_AMI
    assert f"api: {image['ami']} in {REGION}" in result.stderr


# --- failures ---------------------------------------------------------------------


def _failed(result, code: int) -> dict:
    """stdout as the error document of a command that failed with exit `code`."""
    assert result.exit_code == code, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"error"} and document["error"]["exit_code"] == code, document
    assert document["error"]["message"] and result.stderr
    return document["error"]


def _existing_init(tmp_path: Path) -> list[str]:
    (tmp_path / "infra.yaml").write_text("project: taken\n")
    return ["init", str(tmp_path)]


# Each command made to fail cheaply: (arguments, exit code, words of the message).
FAILURES = {
    "init": (_existing_init, 1, "already exists"),
    "validate": (lambda tmp: ["validate"], 2, "azs"),
    "render": (lambda tmp: ["render"], 2, "azs"),
    "package": (lambda tmp: ["package", "nothing-such"], 2, "no function 'nothing-such'"),
    "lock": (
        lambda tmp: ["lock", "--all", "--fs-mirror", str(tmp), "--net-mirror", "https://x.test/"],
        2,
        "give one",
    ),
    "apply": (lambda tmp: ["apply"], 2, "give --all"),
    "destroy": (lambda tmp: ["destroy", "staging"], 2, "--confirm staging"),
    "bake": (lambda tmp: ["bake"], 2, "name the images to bake"),
    "bootstrap": (lambda tmp: ["bootstrap", "nothing-such"], 2, "no VPC group 'nothing-such'"),
    "deploy": (
        lambda tmp: ["deploy", "web", str(tmp / "missing.tar.gz"), "--env", "staging"],
        2,
        "does not exist",
    ),
    "ci github": (
        lambda tmp: ["ci", "github", "--default-branch=a..b"],
        2,
        "not a branch name",
    ),
}
# Made to fail by an invalid infra.yaml; the others by their arguments, on a valid rendered tree.
BROKEN_CONFIG = {"validate", "render"}


def test_every_command_given_json_here_has_a_failure_case():
    # stacks, plan, drift, check, diagram and rehearse: tests/test_json_errors.py.
    assert set(FAILURES) == {
        "init",
        "validate",
        "render",
        "apply",
        "lock",
        "destroy",
        "package",
        "bake",
        "bootstrap",
        "deploy",
        "ci github",
    }


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_a_failure_is_json(name, run, tmp_path):
    arguments, code, words = FAILURES[name]
    config = _small(tmp_path)
    if name in BROKEN_CONFIG:
        config.write_text(config.read_text().replace("azs: 2", "azs: many", 1))
    else:
        assert run("render", config=config).exit_code == 0
    result = run(*arguments(tmp_path), "--json", config=config)
    error = _failed(result, code)
    assert words in error["message"], error
