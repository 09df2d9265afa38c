"""The shared click options: --aws-endpoint / --endpoint, --backend, --engine."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from levels_tf import cli as cli_module
from levels_tf.cli import cli


def probe(*decorators) -> click.Command:
    """A command that echoes what the decorated options hand it."""

    def show(**values: object) -> None:
        click.echo(repr(sorted(values.items())))

    for decorator in reversed(decorators):
        show = decorator(show)
    return click.command()(show)


def invoke(command: click.Command, *args: str, **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(command, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_an_endpoint_reaches_the_command_checked_and_without_its_slash():
    command = probe(cli_module._endpoint_option("--endpoint", "h", loopback=True))
    assert invoke(command, "--endpoint", "http://127.0.0.1:5/")[1] == (
        "[('endpoint', 'http://127.0.0.1:5')]\n"
    )
    assert invoke(command)[1] == "[('endpoint', None)]\n"


def test_a_bad_endpoint_is_one_line_and_exit_2_before_the_command_runs():
    command = probe(cli_module._endpoint_option("--endpoint", "h", loopback=True))
    code, out, err = invoke(command, "--endpoint", "http://192.0.2.1:5")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("--endpoint 'http://192.0.2.1:5' is not")


def test_the_endpoint_variable_is_checked_like_the_option():
    command = probe(cli_module._render_options)
    code, _, err = invoke(command, LEVELS_TF_AWS_ENDPOINT="localhost:5000")
    assert code == 2
    assert err == "--aws-endpoint 'localhost:5000' is not an http(s) URL with a host\n"
    code, out, _ = invoke(command, LEVELS_TF_AWS_ENDPOINT="http://localhost:5000/")
    assert "RenderOptions(aws_endpoint='http://localhost:5000', backend=None)" in out


def test_engine_options_become_one_choice():
    code, out, _ = invoke(probe(cli_module._engine_options), "--terraform-bin", "/bin/tofu")
    assert code == 0
    assert "EngineChoice(kind='auto', binary='/bin/tofu')" in out


def help_of(command: str, option: str) -> tuple[object, ...]:
    (param,) = [p for p in cli.commands[command].params if option in p.opts]
    assert isinstance(param, click.Option)
    return (param.type, param.metavar, param.envvar, param.help, param.default)


@pytest.mark.parametrize("option", ["--aws-endpoint", "--backend", "--engine", "--terraform-bin"])
def test_every_command_with_an_option_defines_it_alike(option):
    takers = [name for name, c in cli.commands.items() if any(option in p.opts for p in c.params)]
    assert len(takers) >= 4
    if option == "--backend":  # the same choices; the help says what for in each command
        assert len({repr(help_of(name, option)[0]) for name in takers}) == 1
    else:
        assert len({repr(help_of(name, option)) for name in takers}) == 1


def _commands_with(option: str) -> dict[tuple[str, ...], click.Command]:
    """Every command (subcommands too) that takes `option`, by its words."""
    found: dict[tuple[str, ...], click.Command] = {}

    def walk(group: click.Group, words: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, (*words, name))
            elif any(option in p.opts for p in command.params):
                found[words + (name,)] = command

    walk(cli, ())
    return found


# What each command with --env needs besides it to reach the environment's check.
ENV_COMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("ssh-config",): (),
    ("tunnel",): ("db",),
    ("diagram",): (),
    ("deploy",): ("api", "bundle.tar.gz"),
    ("db", "failover"): (),
    ("db", "resize"): ("--instance-class", "db.r6g.xlarge"),
    ("db", "restore"): ("--latest", "--as", "restored"),
}


def test_every_command_says_an_unknown_environment_alike(tmp_path, monkeypatch):
    """One wording, the file, the closest name and the defined ones, exit 2,
    before any AWS call (no endpoint or credentials are set here)."""
    from tests.conftest import copy_reference

    for name in ("AWS_ENDPOINT_URL", "LEVELS_TF_AWS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    config = copy_reference(tmp_path / "project")
    assert set(_commands_with("--env")) == set(ENV_COMMANDS), "a command with --env is not listed"
    for words, extra in ENV_COMMANDS.items():
        argv = ["-c", str(config), *words, "--env", "productoin", *extra]
        result = CliRunner().invoke(cli, argv, catch_exceptions=False)
        assert result.exit_code == 2, (words, result.output)
        assert result.stderr == (
            f"--env productoin: no such environment in {config}; did you mean 'production'? "
            "defined: production, dev, test, qa\n"
        ), (words, result.output)
