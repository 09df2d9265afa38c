"""A command asked for JSON (`--json`, `--format json`) prints JSON on stdout
whatever happens: its report, or, when it fails, the error, while stderr says
the same in words. Every command with such an option is tried, so a new one
cannot forget it."""

from __future__ import annotations

import json
import shutil

import click
import pytest

from .conftest import ROOT, leaf_commands

SMALL = ROOT / "tests" / "configs" / "rehearsal-small" / "infra.yaml"


# Commands that print what levels-tf knows, never reading infra.yaml: no
# configuration of the user's can be invalid for them.
READ_NO_CONFIG = {"schema", "init"}

# The arguments a command needs before it reads infra.yaml.
REQUIRED = {
    "deploy": ["web", "bundle.tar.gz", "--env", "dev"],
    "destroy": ["dev", "--confirm", "dev"],
    "bake": ["--all"],
    "tunnel": ["db", "--env", "trial"],
    "db failover": ["--env", "trial"],
    "db resize": ["--env", "trial", "--instance-class", "db.r6g.large"],
    "db restore": ["--env", "trial", "--latest", "--as", "trial-restore"],
    "db drop": ["trial-restore", "--confirm", "trial-restore"],
}


def _json_commands() -> dict[str, list[str]]:
    """Each command with a JSON option -> the arguments that ask for JSON
    (and select every stack, where the command takes stacks)."""
    found = {}
    for name, command in leaf_commands().items():
        if name in READ_NO_CONFIG:
            continue
        options = {p.name: p for p in command.params if isinstance(p, click.Option)}
        if "as_json" in options:
            args = ["--json"]
        elif "output_format" in options and "json" in getattr(
            options["output_format"].type, "choices", ()
        ):
            args = ["--format", "json"]
        else:
            continue
        if "all_stacks" in options:
            args.append("--all")
        found[name] = REQUIRED.get(name, []) + args
    return found


COMMANDS = _json_commands()


def test_the_commands_with_json_are_found():
    assert {"plan", "drift", "check", "stacks", "rehearse", "apply", "bake"} <= set(COMMANDS)


# Commands whose --json is JSON Lines (they run until stopped): every line of
# stdout is one JSON object with an "event"; a failure is the last, "error".
JSON_LINES = {"tunnel"}


def _error(result, command: str = "") -> dict:
    assert result.stdout.strip(), f"no JSON on stdout; stderr: {result.stderr}"
    if command in JSON_LINES:
        events = [json.loads(line) for line in result.stdout.splitlines()]
        assert all(isinstance(event, dict) for event in events), result.stdout
        document = events[-1]
        assert document.pop("event") == "error", document
    else:
        document = json.loads(result.stdout)
    assert set(document) == {"error"}, document
    error = document["error"]
    assert error["exit_code"] == result.exit_code
    assert error["message"] == result.stderr.rstrip("\n")
    return error


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_invalid_config_is_json_with_its_file_and_line(command, run, tmp_path):
    config = tmp_path / "infra.yaml"
    text = SMALL.read_text().replace("azs: 2", "azs: many", 1)
    config.write_text(text)
    line = text.splitlines().index("    azs: many") + 1
    result = run(*command.split(), *COMMANDS[command], config=config)
    assert result.exit_code == 2, result.output
    error = _error(result, command)
    assert error["type"] == "ConfigError"
    (problem,) = error["problems"]
    assert problem["file"] == str(config) and problem["line"] == line, problem
    assert problem["path"].endswith(".azs"), problem


TAKE_STACKS = sorted(
    c for c in COMMANDS if any(p.name == "all_stacks" for p in leaf_commands()[c].params)
)


@pytest.mark.parametrize("command", TAKE_STACKS)
def test_a_stale_tree_is_json(command, run, tmp_path):
    config = tmp_path / "infra.yaml"
    shutil.copy(SMALL, config)
    shutil.copytree(SMALL.parent / "scripts", tmp_path / "scripts")
    assert run("render", config=config).exit_code == 0
    config.write_text(config.read_text() + "\n# changed\ntags: {team: web}\n")
    result = run(*command.split(), *COMMANDS[command], config=config)
    assert result.exit_code == 2, result.output
    error = _error(result, command)
    assert "stale" in error["message"] and error["problems"] == []


def test_an_unexpected_error_is_json_too(run, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def broken(*args, **kwargs):
        raise RuntimeError("something nobody planned for")

    monkeypatch.setattr("levels_tf.commands.stacks.stacks", broken)
    result = run("stacks", "--json", config=SMALL)
    assert result.exit_code == 1
    error = _error(result)
    assert error["type"] == "internal" and "something nobody planned for" in error["message"]


def test_without_json_stdout_stays_empty_on_error(run, tmp_path):
    config = tmp_path / "infra.yaml"
    config.write_text(SMALL.read_text().replace("azs: 2", "azs: many", 1))
    result = run("stacks", config=config)
    assert result.exit_code == 2 and result.stdout == ""


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_line_click_refuses_is_json_too(command, run, tmp_path):
    """An unknown option, which click refuses before the command runs: the
    JSON error on stdout, click's usage and error on stderr, exit 2."""
    config = tmp_path / "infra.yaml"
    shutil.copy(SMALL, config)
    result = run(*command.split(), *COMMANDS[command], "--no-such-option", config=config)
    assert result.exit_code == 2, result.output
    if command in JSON_LINES:
        (line,) = result.stdout.splitlines()
        document = json.loads(line)
        assert document.pop("event") == "error"
    else:
        document = json.loads(result.stdout)
    assert document == {
        "error": {
            "type": "UsageError",
            "exit_code": 2,
            "message": "No such option '--no-such-option'.",
            "problems": [],
        }
    }
    assert "Usage: " in result.stderr
    assert "Error: No such option '--no-such-option'." in result.stderr


def test_without_json_a_refused_command_line_prints_nothing_on_stdout(run, tmp_path):
    result = run("plan", "--all", "--parallelism", "abc")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Invalid value for '--parallelism'" in result.stderr


@pytest.mark.parametrize(
    ("args", "asks"),
    [
        (["--json"], True),
        (["--format", "json"], True),
        (["--format=json"], True),
        (["--format", "markdown"], False),
        (["--out", "json"], False),
        (["--", "--json"], False),
        ([], False),
    ],
)
def test_what_asks_for_json(args, asks):
    from levels_tf.cli import _asks_for_json

    assert _asks_for_json(args) is asks
