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
