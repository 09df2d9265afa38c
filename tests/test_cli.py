"""The command line, end to end in-process: init, validate, schema, render, stacks."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from levels_tf import resources
from levels_tf.commands.init import starter_text
from levels_tf.github_oidc import REPOSITORY_PLACEHOLDER
from levels_tf.schema import json_schema_text

from .conftest import REFERENCE, ROOT


def test_init_writes_starter_and_schema(run, tmp_path):
    result = run("init", str(tmp_path / "new"))
    assert result.exit_code == 0, result.output
    written = tmp_path / "new" / "infra.yaml"
    # The reference, but for the repository the CI roles trust: a placeholder.
    changed = [
        (mine, reference)
        for mine, reference in zip(
            written.read_text().splitlines(), REFERENCE.read_text().splitlines(), strict=True
        )
        if mine != reference
    ]
    assert [mine for mine, _ in changed] == [
        f'    repository: "{REPOSITORY_PLACEHOLDER}" # OWNER/REPO whose workflows deploy'
    ]
    assert (tmp_path / "new" / "infra.schema.json").read_text() == json_schema_text()
    assert written.read_text().startswith("# yaml-language-server: $schema=./infra.schema.json\n")


def test_the_starter_trusts_no_one_real():
    """Nothing in the starter lets someone deploy: no repository but the
    placeholder, no role ARN, so a starter applied unedited trusts no stranger."""
    text = starter_text()
    ci = yaml.safe_load(text)["ci"]
    assert ci["github"]["repository"] == REPOSITORY_PLACEHOLDER
    assert ci.get("assumed_by", []) == []
    assert not re.search(r"arn:aws[a-z-]*:iam::\d{12}:", text)


def test_init_refuses_to_overwrite_and_writes_nothing(run, tmp_path):
    (tmp_path / "infra.yaml").write_text("mine\n")
    result = run("init", str(tmp_path))
    assert result.exit_code != 0
    assert "already exists" in result.stderr
    assert (tmp_path / "infra.yaml").read_text() == "mine\n"
    assert not (tmp_path / "infra.schema.json").exists()


def test_the_starter_is_refused_until_its_repository_is_written(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("init").exit_code == 0
    text = (tmp_path / "infra.yaml").read_text()
    line = text.splitlines().index(
        f'    repository: "{REPOSITORY_PLACEHOLDER}" # OWNER/REPO whose workflows deploy'
    )
    for command in (["validate"], ["render"]):
        result = run(*command)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [
            f"infra.yaml:{line + 1}:17: ci.github.repository: '{REPOSITORY_PLACEHOLDER}' is a "
            "placeholder: write the GitHub repository whose workflows deploy, as OWNER/REPO "
            "(its CI runs may then assume the CI roles)"
        ]
    assert not (tmp_path / "stacks").exists() and not (tmp_path / "modules").exists()

    (tmp_path / "infra.yaml").write_text(text.replace(REPOSITORY_PLACEHOLDER, "my-org/platform"))
    assert run("validate").exit_code == 0
    result = run("render")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "stacks" / "production-shared" / "main.tf").is_file()
    assert (tmp_path / "modules" / "network" / "main.tf").is_file()
    assert run("render", "--check").exit_code == 0


def test_committed_schema_is_current(run):
    result = run("schema")
    assert result.exit_code == 0
    assert result.output == (ROOT / "infra.schema.json").read_text()
    schema = json.loads(result.output)
    assert schema["additionalProperties"] is False
    assert "vpc_groups" in schema["required"]


def test_packaged_reference_is_the_top_level_file():
    assert resources.starter_config().read_text() == REFERENCE.read_text()
    assert resources.schema_file().read_text() == (ROOT / "infra.schema.json").read_text()


def test_validate_reports_counts(run):
    result = run("validate", config=REFERENCE)
    assert result.exit_code == 0
    assert "valid (2 VPC groups, 4 environments, 6 stacks)" in result.output


def test_validate_reports_every_problem_on_stderr(run, tmp_path):
    bad = tmp_path / "infra.yaml"
    text = (
        REFERENCE.read_text()
        .replace("cidr: 10.1.0.0/16", "cidr: 10.0.128.0/17")
        .replace("image: worker", "image: wroker")
    )
    bad.write_text(text)
    cidr_line = text.splitlines().index("    cidr: 10.0.128.0/17") + 1
    result = run("validate", config=bad)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert any(
        f":{cidr_line}:" in line and "vpc_groups.nonprod.cidr: 10.0.128.0/17 overlaps" in line
        for line in lines
    ), lines
    assert any(
        "services.worker.image: unknown image 'wroker'; did you mean 'worker'?" in line
        for line in lines
    ), lines
    assert all(line.startswith(f"{bad}:") for line in lines)
    assert result.stdout == ""


def test_render_defaults_to_the_config_folder(run, reference_copy):
    result = run("render", config=reference_copy)
    assert result.exit_code == 0, result.output
    assert (reference_copy.parent / "stacks" / "dev" / "shared.tf").is_file()


def test_render_out_option(run, reference_copy, tmp_path):
    out = tmp_path / "elsewhere"
    assert run("render", "--out", str(out), config=reference_copy).exit_code == 0
    assert (out / "stacks" / "qa" / "versions.tf").is_file()
    assert not (reference_copy.parent / "stacks").exists()


def test_render_out_under_a_file_names_that_file(run, reference_copy, tmp_path):
    blocking = tmp_path / "notes.txt"
    blocking.write_text("mine\n")
    result = run("render", "--out", str(blocking / "tree"), config=reference_copy)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"{blocking / 'tree'}: {blocking} is a file, not a folder; give the tree a folder's path\n"
    )
    assert blocking.read_text() == "mine\n"


def test_render_check_on_stale_tree(run, reference_copy):
    assert run("render", config=reference_copy).exit_code == 0
    reference_copy.write_text(
        reference_copy.read_text().replace("azs: 4\n    nat: single", "azs: 3\n    nat: single")
    )
    result = run("render", "--check", config=reference_copy)
    assert result.exit_code == 1
    assert "-    us-east-1d = {" in result.stdout
    # A next step printed (not raised) names the infra.yaml given too.
    assert f"run `levels-tf -c {shlex.quote(str(reference_copy))} render`" in result.stderr


def test_stacks_in_dependency_order(run):
    result = run("stacks", "--json", config=REFERENCE)
    assert result.exit_code == 0
    rows = json.loads(result.output)
    names = [row["name"] for row in rows]
    assert names == ["production-shared", "production", "nonprod-shared", "dev", "test", "qa"]
    for index, row in enumerate(rows):
        for dependency in row["depends_on"]:
            assert names.index(dependency) < index
    assert rows[3]["depends_on"] == ["nonprod-shared"]


def test_stacks_table(run):
    result = run("stacks", config=REFERENCE)
    assert result.exit_code == 0
    assert result.output.splitlines()[1].split()[:2] == ["production", "environment"]


def test_unexpected_error_writes_a_report_not_a_traceback(
    run, reference_copy, monkeypatch, tmp_path
):
    from levels_tf.commands import validate as validate_cmd

    def boom(*args, **kwargs):
        raise RuntimeError("something broke")

    monkeypatch.setattr(validate_cmd, "validate", boom)
    result = run("validate", config=reference_copy)
    assert result.exit_code == 1
    assert "Traceback" not in result.output + result.stderr
    assert "internal error: RuntimeError: something broke" in result.stderr
    report = Path(result.stderr.split("the full report is in ")[1].split(";")[0])
    assert "Traceback" in report.read_text()


def test_debug_shows_the_traceback(reference_copy, monkeypatch):
    import pytest
    from click.testing import CliRunner

    from levels_tf.cli import cli
    from levels_tf.commands import validate as validate_cmd

    def boom(*args, **kwargs):
        raise RuntimeError("something broke")

    monkeypatch.setattr(validate_cmd, "validate", boom)
    with pytest.raises(RuntimeError):
        CliRunner().invoke(
            cli, ["--debug", "-c", str(reference_copy), "validate"], catch_exceptions=False
        )


def test_json_and_another_format_together_are_refused(run, reference_copy):
    result = run("plan", "--all", "--json", "--format", "markdown", config=reference_copy)
    assert result.exit_code == 2
    assert "--json and --format markdown ask for two formats" in result.stderr


def test_a_next_step_names_the_infra_yaml_the_user_named(run, reference_copy):
    """Told to run `levels-tf render`, a user who gave -c must get a command
    that works as printed: the hint carries the same -c, on stderr and in
    the JSON error."""
    config = str(reference_copy)
    hint = f"run `levels-tf -c {shlex.quote(config)} render` first"
    result = run("plan", "--all", config=config)
    assert result.exit_code == 2 and hint in result.stderr, result.output
    result = run("stacks", "--affected", "--json", config=config)
    assert hint in json.loads(result.stdout)["error"]["message"], result.output


@pytest.mark.parametrize(
    ("config", "line", "shown"),
    [
        (None, "run `levels-tf render` first", "run `levels-tf render` first"),
        (
            "my platform/infra.yaml",
            "run `levels-tf render`, then `levels-tf plan`",
            "run `levels-tf -c 'my platform/infra.yaml' render`, "
            "then `levels-tf -c 'my platform/infra.yaml' plan`",
        ),
        (
            "p/infra.yaml",
            "`levels-tf -c x/infra.yaml db drop a`",
            "`levels-tf -c x/infra.yaml db drop a`",
        ),
        ("p/infra.yaml", "levels-tf could not start", "levels-tf could not start"),
    ],
)
def test_which_next_steps_get_the_config(config, line, shown, capsys):
    from levels_tf import console

    console.name_config(config)
    try:
        assert console.with_config(line) == shown
        console.err(line)
        console.out(line)  # documents and Terraform's outputs go out verbatim
    finally:
        console.name_config(None)
    printed = capsys.readouterr()
    assert (printed.err, printed.out) == (shown + "\n", line + "\n")


def test_init_names_the_infra_yaml_it_wrote_in_its_next_step(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("init", "my platform")
    assert result.exit_code == 0, result.output
    config = shlex.quote("my platform/infra.yaml")
    assert f"then run `levels-tf -c {config} validate` and `levels-tf -c {config} render`" in (
        result.stdout
    )
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    result = run("init", ".")
    assert "then run `levels-tf validate` and `levels-tf render`" in result.stdout
