"""The command line: parses arguments, runs one command, maps errors to exit codes."""

from __future__ import annotations

import functools
import itertools
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from . import __version__, completion, console, errors
from .cache_dir import cache_dir
from .errors import LevelsError

FC = TypeVar("FC", bound=Callable[..., Any] | click.Command)

# Each command imports its module when it runs, not at startup, so --help,
# --version and init load neither the model nor the templates. A command's
# body is one call of its module's function with the parsed options, so the
# bodies look alike by design (tests/test_messages.py reads which module each
# command imports); the options they share are defined once below.

DEFAULT_CONFIG = "infra.yaml"


def _asks_for_json(args: list[str]) -> bool:
    """Whether a command line (the command's own arguments) asks for JSON:
    `--json`, or `--format json` / `--format=json`, before any `--`."""
    if "--" in args:
        args = args[: args.index("--")]
    formats = [b for a, b in itertools.pairwise(args) if a == "--format"]
    return "--json" in args or "--format=json" in args or "json" in formats


class JsonCommand(click.Command):
    """A command that answers in JSON when asked to, even when click refuses
    its command line (an unknown option, a bad value, a missing one): the
    usage error goes to stderr as click words it, and its JSON error
    document (errors.failure, type UsageError) to stdout. `json_lines`: the
    command's --json is JSON Lines, whose last event is then an `error`."""

    def __init__(self, *args: Any, json_lines: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.json_lines = json_lines

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        asked = _asks_for_json(list(args))
        try:
            ctx = super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            if asked:
                failure = errors.failure("UsageError", exc.exit_code, [exc.format_message()])
                _print_failure(failure, json_lines=self.json_lines)
            raise
        if self.json_lines:
            ctx.meta[JSON_LINES] = True
        return ctx


class JsonGroup(click.Group):
    """A group whose commands are JsonCommands, and whose groups are JsonGroups."""

    command_class = JsonCommand
    group_class = type  # a subgroup is of this group's own class


@click.group(cls=JsonGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config",
    default=DEFAULT_CONFIG,
    show_default=True,
    type=click.Path(path_type=Path, dir_okay=True),
    help="The infra.yaml to read.",
)
@click.option("--debug", is_flag=True, help="Show full tracebacks of unexpected errors.")
@click.version_option(__version__, prog_name="levels-tf")
@click.pass_context
def cli(ctx: click.Context, config: Path, debug: bool) -> None:
    """Turn one infra.yaml into the Terraform and Packer of an AWS platform."""
    ctx.obj = {"config": config, "debug": debug}
    console.name_config(None if config == Path(DEFAULT_CONFIG) else str(config))
    console.allow_live(True)  # until the command's own --no-progress says otherwise


class Terminated(KeyboardInterrupt):
    """SIGTERM reached levels-tf: handled as Ctrl-C is (the programs it runs,
    each in a process group of its own, are stopped cleanly first), but
    reported as terminated, exit 143 (128 + SIGTERM)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _run(ctx: click.Context, action: Callable[[], int]) -> None:
    """Run a command; every error becomes a message and an exit code, and,
    when the command was asked for JSON (`--json`, `--format json`), also
    errors.document's JSON on stdout.

    While it runs, SIGTERM (a CI job cancelled, `timeout`, `kill`) is
    turned into `Terminated`: without that Python would end at once and
    leave a running Terraform, in its own process group, to go on alone."""
    debug = ctx.obj["debug"]
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main else None
    # A command asked for JSON prints JSON on stdout even when it fails.
    as_json = bool(ctx.params.get("as_json")) or ctx.params.get("output_format") == "json"
    failure: dict | None = None
    try:
        code = action()
    except LevelsError as exc:
        console.lines(exc.lines(), to_err=True)
        code = exc.exit_code
        failure = errors.document(exc, [console.with_config(line) for line in exc.lines()])
    except Terminated:
        console.err("terminated")
        code = 143
        failure = errors.failure("terminated", code, ["terminated"])
    except KeyboardInterrupt:
        console.err("interrupted")
        code = 130
        failure = errors.failure("interrupted", code, ["interrupted"])
    except Exception as exc:
        if debug:
            raise
        report = _crash_report()
        lines = [
            f"levels-tf: internal error: {type(exc).__name__}: {exc}".splitlines()[0],
            f"the full report is in {report}; rerun with --debug to see it here",
        ]
        console.lines(lines, to_err=True)
        code = 1
        failure = errors.failure("internal", code, lines)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    if as_json and failure is not None:
        _report_failure(ctx, failure)
    ctx.exit(code)


# Set in ctx.meta by a command whose --json is JSON Lines (tunnel db).
JSON_LINES = "levels_tf.json_lines"
# The failures that are how a held command (tunnel db) is meant to stop.
STOPPED = ("interrupted", "terminated")


def _report_failure(ctx: click.Context, failure: dict) -> None:
    """`failure` (errors.failure) on stdout: the one JSON document, or, for
    a JSON Lines command, its last event: `end` when Ctrl-C or SIGTERM
    stopped it, else `error` with the error document's `error`."""
    _print_failure(failure, json_lines=bool(ctx.meta.get(JSON_LINES)))


def _print_failure(failure: dict, *, json_lines: bool) -> None:
    if not json_lines:
        console.report_json(failure)
        return
    error = failure["error"]
    if error["type"] in STOPPED:
        console.report_json_line(
            {"event": "end", "reason": error["type"], "exit_code": error["exit_code"]}
        )
    else:
        console.report_json_line({"event": "error", **failure})


def _json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--json: the command gets `as_json`; with it, everything printed for
    people goes to stderr and the command ends with one JSON document on
    stdout (console.report_json), or _run's error document when it fails,
    or errors.failure's for a usage error found before _run (options that
    do not go together), which click then explains on stderr as usual."""

    @functools.wraps(command)
    def with_json(*args: Any, as_json: bool, **kwargs: Any) -> Any:
        if not as_json:
            return command(*args, as_json=False, **kwargs)
        try:
            with console.progress_to_stderr():
                return command(*args, as_json=True, **kwargs)
        except click.UsageError as exc:
            failure = errors.failure("UsageError", exc.exit_code, [exc.format_message()])
            _report_failure(click.get_current_context(), failure)
            raise

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="One JSON document on stdout; progress and messages go to stderr.",
    )(with_json)


BACKENDS = ("s3", "local")


def _backend_option(help: str) -> Callable[[FC], FC]:
    """--backend s3|local, overriding state.backend; `help` says what for in this command."""
    return click.option("--backend", type=click.Choice(BACKENDS), help=help)


def _endpoint_option(
    flag: str, help: str, *, loopback: bool = False, envvar: str | None = None
) -> Callable[[FC], FC]:
    """An endpoint URL option (`flag` URL), checked by check_endpoint as it is
    parsed: a bad URL is refused, exit 2, in the same words in every command,
    before anything runs; the command gets it without a trailing slash."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        from .endpoint import check_endpoint

        if value is None:
            return None
        try:
            return check_endpoint(value, option=flag, loopback=loopback)
        except LevelsError as exc:
            console.lines(exc.lines(), to_err=True)
            ctx.exit(exc.exit_code)

    return click.option(flag, metavar="URL", envvar=envvar, callback=check, help=help)


def _render_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--aws-endpoint and --backend, which reach the command as one `options`.

    Every command that renders or reads the rendered tree takes them, with one
    meaning: how the tree is rendered (see levels_tf/options.py)."""

    @functools.wraps(command)
    def with_options(
        *args: Any, aws_endpoint: str | None, backend: str | None, **kwargs: Any
    ) -> Any:
        from .options import RenderOptions

        return command(*args, options=RenderOptions(aws_endpoint, backend), **kwargs)

    with_options = _backend_option(
        "Override state.backend (local for a rehearsal); later commands read it from the tree."
    )(with_options)
    return _endpoint_option(
        "--aws-endpoint",
        "Every AWS service at one endpoint (an emulator such as moto); default $AWS_ENDPOINT_URL at render, "
        "then what the tree was rendered with.",
        envvar="LEVELS_TF_AWS_ENDPOINT",
    )(with_options)


def _engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--engine and --terraform-bin, which reach the command as one `engine` choice."""

    @functools.wraps(command)
    def with_engine(*args: Any, engine: str, terraform_bin: str | None, **kwargs: Any) -> Any:
        from .terraform import EngineChoice

        return command(*args, engine=EngineChoice(engine, terraform_bin), **kwargs)

    for option in reversed(
        [
            click.option(
                "--engine",
                type=click.Choice(["auto", "binary", "embedded"]),
                default="auto",
                show_default=True,
                envvar="LEVELS_TF_ENGINE",
                help="binary: terraform or tofu; embedded: Terraform bundled as a library (levels-tf[embedded]); auto: the binary if there is one.",
            ),
            click.option(
                "--terraform-bin",
                metavar="PATH",
                help="terraform or tofu to run (default: terraform, then tofu, on PATH).",
            ),
        ]
    ):
        with_engine = option(with_engine)
    return with_engine


def _crash_report() -> str:
    text = f"levels-tf {__version__}\nargv: {sys.argv}\n\n{traceback.format_exc()}"
    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(text, encoding="utf-8")
    except OSError:
        handle, name = tempfile.mkstemp(prefix="levels-tf-crash-", suffix=".log")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        path = Path(name)
    return str(path)


@cli.command()
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path))
@_json_option
@click.pass_context
def init(ctx: click.Context, directory: Path, as_json: bool) -> None:
    """Write a commented starter infra.yaml (and its schema) to DIRECTORY."""
    from .commands import init as init_cmd

    _run(ctx, lambda: init_cmd.init(directory, as_json))


@cli.command()
@_json_option
@click.pass_context
def validate(ctx: click.Context, as_json: bool) -> None:
    """Check infra.yaml; every problem is reported as FILE:LINE:COL: path: message."""
    from .commands import validate as validate_cmd

    _run(ctx, lambda: validate_cmd.validate(ctx.obj["config"], as_json))


@cli.command()
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "markdown"]),
    default="json",
    show_default=True,
    help="json: the JSON Schema; markdown: the configuration reference, a table of every key.",
)
@click.pass_context
def schema(ctx: click.Context, output_format: str) -> None:
    """Print the JSON Schema of infra.yaml, or the configuration reference drawn from it."""
    from .commands import schema as schema_cmd

    _run(ctx, lambda: schema_cmd.schema(output_format))


def _out_and_check(default: str, stale: str) -> Callable[[FC], FC]:
    """--out DIR (`default` says where without it) and --check (`stale`: what may be stale)."""

    def decorate(command: FC) -> FC:
        command = click.option(
            "--check",
            is_flag=True,
            help=f"Write nothing; show a diff and exit 1 when {stale} is stale.",
        )(command)
        return click.option(
            "--out",
            type=click.Path(path_type=Path, file_okay=False),
            help=f"Output folder (default: {default}).",
        )(command)

    return decorate


@cli.command()
@_out_and_check("infra.yaml's folder", "the tree")
@_render_options
@_json_option
@click.pass_context
def render(ctx: click.Context, out: Path | None, check: bool, options, as_json: bool) -> None:
    """Render modules/, stacks/ and packer/ from infra.yaml."""
    from .commands import render as render_cmd

    _run(ctx, lambda: render_cmd.render(ctx.obj["config"], out, check, options, as_json))


def _progress_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--no-progress: plain lines instead of the live view on a terminal."""

    def plain(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            console.allow_live(False)

    return click.option(
        "--no-progress",
        is_flag=True,
        expose_value=False,
        callback=plain,
        help="Print progress as plain lines, not a live view (as when not on a terminal).",
    )(command)


def _terraform_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options every Terraform-driving command shares: the engine, the render
    options and --no-progress."""
    return _progress_option(_render_options(_engine_options(command)))


def _summary_format(command):
    """--format text|markdown|json, and --json for --format json."""

    @functools.wraps(command)
    def with_format(*args, output_format, as_json, **kwargs):
        if as_json and output_format not in ("text", "json"):
            raise click.UsageError(
                f"--json and --format {output_format} ask for two formats: give one"
            )
        return command(*args, output_format="json" if as_json else output_format, **kwargs)

    with_format = click.option(
        "--json", "as_json", is_flag=True, help="The same as --format json."
    )(with_format)
    with_format = click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "markdown", "json"]),
        default="text",
        show_default=True,
        help="markdown: for a pull request comment (kept within GitHub's size limit); json: for machines.",
    )(with_format)
    return with_format


def _stack_selection(command):
    command = click.argument(
        "stack_names", nargs=-1, metavar="STACK...", shell_complete=completion.stack_names
    )(command)
    command = _affected_options(command)
    return click.option(
        "--all", "all_stacks", is_flag=True, help="Every stack, in dependency order."
    )(command)


def _affected_options(command):
    """--affected and --base REF (see _since)."""
    command = click.option(
        "--base",
        metavar="REF",
        default="HEAD",
        show_default=True,
        help="With --affected: the git commit to compare with (in CI: the pull request's base).",
    )(command)
    return click.option(
        "--affected",
        is_flag=True,
        help="The stacks whose rendered files changed since --base (a module: every stack "
        "calling it), and the stacks that read them.",
    )(command)


def _since(ctx: click.Context, affected: bool, base: str) -> str | None:
    """The commit --affected compares with, or None without --affected."""
    from click.core import ParameterSource

    if not affected:
        if ctx.get_parameter_source("base") is ParameterSource.COMMANDLINE:
            raise click.UsageError(
                "--base goes with --affected: add --affected, or leave --base out"
            )
        return None
    return base


@cli.command()
@_json_option
@_affected_options
@click.pass_context
def stacks(ctx: click.Context, as_json: bool, affected: bool, base: str) -> None:
    """List the stacks in dependency order."""
    from .commands import stacks as stacks_cmd

    since = _since(ctx, affected, base)
    _run(ctx, lambda: stacks_cmd.stacks(ctx.obj["config"], as_json, since))


def _many_stacks(command):
    command = _stack_selection(command)
    command = click.option(
        "--parallelism",
        default=4,
        show_default=True,
        type=click.IntRange(1, 32),
        help="Independent stacks at once.",
    )(command)
    return command


@cli.command()
@_many_stacks
@_terraform_options
@_summary_format
@click.option(
    "--allow-destroy",
    is_flag=True,
    help="Let production plans replace or destroy stateful resources.",
)
@click.pass_context
def plan(
    ctx,
    stack_names,
    all_stacks,
    affected,
    base,
    parallelism,
    options,
    engine,
    output_format,
    allow_destroy,
) -> None:
    """Plan stacks, save each plan for apply, and summarize them all. Exit 0: no changes, 2: changes or stacks waiting for another's first apply, 1: error."""
    from .commands import plan as plan_cmd

    since = _since(ctx, affected, base)
    _run(
        ctx,
        lambda: plan_cmd.plan(
            ctx.obj["config"],
            stack_names,
            all_stacks,
            options=options,
            engine=engine,
            output_format=output_format,
            allow_destroy=allow_destroy,
            parallelism=parallelism,
            since=since,
        ),
    )


@cli.command()
@_many_stacks
@_terraform_options
@_summary_format
@click.pass_context
def drift(
    ctx, stack_names, all_stacks, affected, base, parallelism, options, engine, output_format
) -> None:
    """Compare stacks with what really exists (a refresh-only plan). Exit 0: none, 2: drift, 1: error."""
    from .commands import plan as plan_cmd

    since = _since(ctx, affected, base)
    _run(
        ctx,
        lambda: plan_cmd.plan(
            ctx.obj["config"],
            stack_names,
            all_stacks,
            options=options,
            engine=engine,
            output_format=output_format,
            allow_destroy=True,
            parallelism=parallelism,
            refresh_only=True,
            since=since,
        ),
    )


@cli.command()
@_stack_selection
@_terraform_options
@_summary_format
@click.option(
    "--scanner",
    "scanners",
    multiple=True,
    type=click.Choice(["checkov", "trivy", "checkov-plan"]),
    help="Run only this scanner (repeat for more); default: all three.",
)
@click.pass_context
def check(
    ctx, stack_names, all_stacks, affected, base, options, engine, output_format, scanners
) -> None:
    """Run checkov and trivy over the rendered stacks, and checkov over their saved plans; report passed, failed and skipped checks per stack. Exit 0: nothing failed, 1: a check failed or a scanner could not run."""
    from .commands import check as check_cmd

    since = _since(ctx, affected, base)
    _run(
        ctx,
        lambda: check_cmd.check(
            ctx.obj["config"],
            stack_names,
            all_stacks,
            options=options,
            engine=engine,
            scanners=scanners,
            output_format=output_format,
            since=since,
        ),
    )


@cli.command()
@_many_stacks
@_terraform_options
@click.option(
    "--yes",
    is_flag=True,
    help="Do not ask before applying production stacks (with --waves: before any wave).",
)
@click.option(
    "--waves",
    is_flag=True,
    help="Plan, show, ask and apply wave by wave (each wave reads what the one before applied): a first bring-up in one go.",
)
@_json_option
@click.pass_context
def apply(
    ctx, stack_names, all_stacks, affected, base, parallelism, options, engine, yes, waves, as_json
) -> None:
    """Apply the plans saved by `plan` (never a fresh one), showing progress; --all leaves out stacks without a plan and says what is next."""
    from .commands import apply as apply_cmd

    since = _since(ctx, affected, base)
    _run(
        ctx,
        lambda: apply_cmd.apply(
            ctx.obj["config"],
            stack_names,
            all_stacks,
            options=options,
            engine=engine,
            yes=yes,
            parallelism=parallelism,
            waves=waves,
            since=since,
            as_json=as_json,
        ),
    )


@cli.command()
@_stack_selection
@_terraform_options
@click.option(
    "--fs-mirror",
    metavar="DIR",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Fetch the provider packages from this filesystem mirror, not the registry.",
)
@click.option(
    "--net-mirror",
    metavar="URL",
    help="Fetch the provider packages from this network mirror (https), not the registry.",
)
@_json_option
@click.pass_context
def lock(
    ctx, stack_names, all_stacks, affected, base, options, engine, fs_mirror, net_mirror, as_json
) -> None:
    """Write each stack's .terraform.lock.hcl with provider checksums for every platform in terraform.platforms."""
    from .commands import lock as lock_cmd
    from .provider_locks import Sources

    if fs_mirror and net_mirror:
        raise click.UsageError("--fs-mirror and --net-mirror name two sources: give one")
    since = _since(ctx, affected, base)
    _run(
        ctx,
        lambda: lock_cmd.lock(
            ctx.obj["config"],
            stack_names,
            all_stacks,
            options=options,
            engine=engine,
            sources=Sources(fs_mirror, net_mirror),
            since=since,
            as_json=as_json,
        ),
    )


@cli.command()
@click.argument("stack_name", metavar="STACK", shell_complete=completion.stack_names)
@click.argument("name", required=False)
@_terraform_options
@click.pass_context
def output(ctx, stack_name, name, options, engine) -> None:
    """Print a stack's outputs (or one of them) as JSON."""
    from .commands import output as output_cmd

    _run(
        ctx,
        lambda: output_cmd.output(
            ctx.obj["config"], stack_name, name, options=options, engine=engine
        ),
    )


def _env_option(required: bool, help: str) -> Callable[[FC], FC]:
    """--env ENV, completed from infra.yaml's environments."""
    return click.option(
        "--env",
        "env",
        required=required,
        metavar="ENV",
        shell_complete=completion.environment_names,
        help=help,
    )


def _user_option(command: FC) -> FC:
    return click.option(
        "--user",
        metavar="NAME",
        help="The login on the bastion and the servers, one of bastion.users (default: the only one).",
    )(command)


@cli.command("ssh-config")
@_env_option(False, "Only this environment's servers and its group's bastion (default: all).")
@click.option(
    "--write",
    metavar="PATH",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the configuration to PATH atomically (only over a file ssh-config wrote) instead of printing it.",
)
@click.option("--json", "as_json", is_flag=True, help="The hosts as JSON instead.")
@click.option(
    "--identity", metavar="FILE", help="The private key file to log in with (IdentityFile)."
)
@_user_option
@_terraform_options
@click.pass_context
def ssh_config(ctx, env, write, as_json, identity, user, options, engine) -> None:
    """Print an OpenSSH client configuration: each group's bastion, and its application servers behind it (ProxyJump)."""
    from .commands import ssh_config as ssh_config_cmd

    _run(
        ctx,
        lambda: ssh_config_cmd.ssh_config(
            ctx.obj["config"],
            env,
            write=write,
            as_json=as_json,
            identity=identity,
            user=user,
            options=options,
            engine=engine,
        ),
    )


@cli.command(json_lines=True)
@click.argument("target", metavar="db", type=click.Choice(["db"]))
@_env_option(True, "The environment whose database to reach.")
@click.option(
    "--local-port",
    type=click.IntRange(1, 65535),
    metavar="N",
    help="Listen on 127.0.0.1:N (default: the database's port).",
)
@click.option("--reader", is_flag=True, help="The reader endpoint instead of the writer.")
@click.option(
    "--endpoint",
    metavar="HOST",
    help="Another cluster endpoint behind ENV's database security groups instead, e.g. the one `db restore` printed.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON Lines: an `open` event saying where it listens, then an `end` or `error` event.",
)
@_user_option
@click.option(
    "-F",
    "--ssh-config",
    "ssh_config_file",
    metavar="FILE",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    envvar="LEVELS_TF_SSH_CONFIG",
    help="The ssh client configuration file for both hops (ssh -F; default: ssh's own).",
)
@_terraform_options
@click.pass_context
def tunnel(
    ctx, target, env, local_port, reader, endpoint, as_json, user, ssh_config_file, options, engine
) -> None:
    """Open the double SSH tunnel to ENV's database: bastion, then an application server, until Ctrl-C."""
    from .commands import tunnel as tunnel_cmd

    _run(
        ctx,
        lambda: tunnel_cmd.tunnel(
            ctx.obj["config"],
            env,
            local_port=local_port,
            reader=reader,
            endpoint=endpoint,
            as_json=as_json,
            user=user,
            ssh_config_file=ssh_config_file,
            options=options,
            engine=engine,
        ),
    )


@cli.command()
@click.argument("stack_name", metavar="STACK", shell_complete=completion.stack_names)
@click.option("--confirm", "confirm_name", metavar="STACK", help="The stack's name again.")
@click.option("--allow-production", is_flag=True, help="Also needed for a production stack.")
@click.option(
    "--ignore-dependents",
    is_flag=True,
    help="Destroy even though stacks reading this one's outputs still have resources.",
)
@click.option(
    "--lift-protection",
    is_flag=True,
    help="First turn deletion protection off in a reviewed apply, then destroy.",
)
@click.option(
    "--empty-asset-buckets",
    is_flag=True,
    help="Delete every object of the stack's asset buckets (log buckets are always emptied).",
)
@_terraform_options
@_json_option
@click.pass_context
def destroy(
    ctx,
    stack_name,
    confirm_name,
    allow_production,
    ignore_dependents,
    lift_protection,
    empty_asset_buckets,
    options,
    engine,
    as_json,
) -> None:
    """Destroy one stack: needs --confirm STACK, and --allow-production in production."""
    from .commands import destroy as destroy_cmd

    consent = destroy_cmd.Consent(
        allow_production, ignore_dependents, lift_protection, empty_asset_buckets
    )
    _run(
        ctx,
        lambda: destroy_cmd.destroy(
            ctx.obj["config"],
            stack_name,
            confirm=confirm_name,
            consent=consent,
            options=options,
            engine=engine,
            as_json=as_json,
        ),
    )


@cli.command()
@click.option(
    "--env",
    "env",
    metavar="ENV",
    shell_complete=completion.environment_names,
    help="Only this environment, in its VPC (default: the whole platform).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["png", "svg"]),
    help="png or svg (default: the suffix of --out, else png); "
    "svg carries its icons inside, so the file stands alone.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The image to write, ending in .png or .svg "
    "(default: docs/architecture[-ENV].FORMAT beside infra.yaml).",
)
@_json_option
@click.pass_context
def diagram(
    ctx: click.Context, env: str | None, output_format: str | None, out: Path | None, as_json: bool
) -> None:
    """Draw the architecture from infra.yaml with AWS icons (needs Graphviz's dot)."""
    from .commands import diagram as diagram_cmd

    _run(ctx, lambda: diagram_cmd.diagram(ctx.obj["config"], env, output_format, out, as_json))


@cli.command()
@click.argument("functions", nargs=-1, shell_complete=completion.function_names)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Output folder (default: infra.yaml's folder).",
)
@_json_option
@click.pass_context
def package(
    ctx: click.Context, functions: tuple[str, ...], out: Path | None, as_json: bool
) -> None:
    """Build the deployment zip of each function (all by default) into build/functions/."""
    from .commands import package as package_cmd

    _run(ctx, lambda: package_cmd.package(ctx.obj["config"], out, functions, as_json))


@cli.command()
@_progress_option
@click.argument("images", nargs=-1, shell_complete=completion.image_names)
@click.option("--all", "all_images", is_flag=True, help="Bake every image in infra.yaml.")
@click.option("--packer-bin", metavar="PATH", help="The packer binary (default: packer on PATH).")
@click.option(
    "--version",
    "version",
    metavar="V",
    help="Version of the bake (default: UTC time, e.g. 20261126.0512).",
)
@_render_options
@_json_option
@click.pass_context
def bake(
    ctx: click.Context,
    images: tuple[str, ...],
    all_images: bool,
    packer_bin: str | None,
    version: str | None,
    options,
    as_json: bool,
) -> None:
    """Bake each IMAGE (or --all) with Packer, record its AMI in images.lock, render again.

    On a tree rendered with --aws-endpoint, Packer builds on that emulator."""
    from .commands import bake as bake_cmd

    _run(
        ctx,
        lambda: bake_cmd.bake(
            ctx.obj["config"], images, all_images, options, packer_bin, version, as_json
        ),
    )


@cli.command()
@click.argument("group", required=False, shell_complete=completion.group_names)
@_render_options
@_json_option
@click.pass_context
def bootstrap(ctx: click.Context, group: str | None, options, as_json: bool) -> None:
    """Create (or converge) the state bucket and the CI's Terraform roles of GROUP (default: every VPC group)."""
    from .commands import bootstrap as bootstrap_cmd

    _run(
        ctx,
        lambda: bootstrap_cmd.bootstrap(ctx.obj["config"], group, options, as_json=as_json),
    )


@cli.command()
@_progress_option
@click.argument("service")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--env", "env", required=True, metavar="ENV", help="The environment to deploy to.")
@click.option(
    "--version",
    "version",
    metavar="V",
    help="Version name (default: first 12 hex digits of the bundle's sha256).",
)
@_render_options
@_json_option
@click.pass_context
def deploy(
    ctx: click.Context,
    service: str,
    bundle: Path,
    env: str,
    version: str | None,
    options,
    as_json: bool,
) -> None:
    """Upload BUNDLE (.tar.gz) as SERVICE's next version in ENV and record that version."""
    from .commands import deploy as deploy_cmd

    _run(
        ctx,
        lambda: deploy_cmd.deploy(
            ctx.obj["config"], service, bundle, env, version, options, as_json
        ),
    )


@cli.group()
def ci() -> None:
    """Generate the CI workflows of infra.yaml."""


@ci.command()
@_out_and_check(
    ".github/workflows at the root of the git repository holding infra.yaml", "a workflow"
)
@click.option(
    "--default-branch",
    default="main",
    show_default=True,
    metavar="BRANCH",
    help="The branch whose pushes apply reviewed plans and bake images.",
)
@_json_option
@click.pass_context
def github(
    ctx: click.Context, out: Path | None, check: bool, default_branch: str, as_json: bool
) -> None:
    """Write GitHub Actions workflows: plan on pull requests, apply the reviewed plans on merge, bake, drift."""
    from .commands import ci as ci_cmd

    _run(ctx, lambda: ci_cmd.github(ctx.obj["config"], out, check, default_branch, as_json))


@cli.command()
@_progress_option
@click.option(
    "--emulator",
    "emulator_name",
    type=click.Choice(["moto"]),
    default="moto",
    show_default=True,
    help="The AWS emulator to start on loopback (its gaps are adapted in the rehearsal tree only).",
)
@_endpoint_option(
    "--endpoint",
    "Use the emulator you run at this loopback URL instead of starting one.",
    loopback=True,
)
@_backend_option("State on the emulator's S3 (default, as infra.yaml says) or in local files.")
@click.option(
    "--keep",
    is_flag=True,
    help="Leave the rehearsal tree (and the platform on an emulator you run) for inspection.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="The report as JSON on stdout; progress goes to stderr."
)
@click.option(
    "--parallelism",
    default=4,
    show_default=True,
    type=click.IntRange(1, 32),
    help="Independent stacks at once.",
)
@click.option(
    "--watchdog",
    "watchdog_seconds",
    default=90,
    show_default=True,
    type=click.IntRange(5, 3600),
    help="Fail a step once the emulator has answered errors for this many seconds.",
)
@_engine_options
@click.pass_context
def rehearse(
    ctx,
    emulator_name,
    endpoint,
    backend,
    keep,
    as_json,
    parallelism,
    watchdog_seconds,
    engine,
) -> None:
    """The whole platform's life cycle on an AWS emulator: apply, check, roll an image, re-plan, destroy.

    Runs in a temporary tree with fake credentials: the rendered tree, state
    and credentials beside infra.yaml are never used. Exit 0 when every step
    and check passed, 1 otherwise."""
    from .commands import rehearse as rehearse_cmd

    _run(
        ctx,
        lambda: rehearse_cmd.rehearse(
            ctx.obj["config"],
            emulator_name=emulator_name,
            endpoint=endpoint,
            backend=backend,
            keep=keep,
            as_json=as_json,
            engine=engine,
            parallelism=parallelism,
            watchdog_seconds=watchdog_seconds,
        ),
    )


@cli.group()
def db() -> None:
    """Day-2 operations on the Aurora cluster of an environment: failover drill, resize, point-in-time restore."""


def _db_target(command: FC) -> FC:
    """--env ENV or --group GROUP (the cluster serving it), --yes and --json."""
    command = cast(FC, _json_option(command))
    command = click.option("--yes", is_flag=True, help="Do not ask before changing the cluster.")(
        command
    )
    command = click.option(
        "--group",
        metavar="GROUP",
        shell_complete=completion.group_names,
        help="The VPC group whose shared cluster to act on (instead of --env).",
    )(command)
    return click.option(
        "--env",
        "env",
        metavar="ENV",
        shell_complete=completion.environment_names,
        help="The environment whose cluster to act on (production's own, or its group's shared one).",
    )(command)


@db.command()
@_db_target
@click.option(
    "--target", metavar="READER", help="The reader to promote (default: the one Aurora picks)."
)
@_render_options
@click.pass_context
def failover(ctx, env, group, yes, as_json, target, options) -> None:
    """Fail the cluster over on purpose: the writer before and after, and how long it took."""
    from .commands import db as db_cmd

    _run(
        ctx,
        lambda: db_cmd.failover(
            ctx.obj["config"], env, group, target, yes, as_json, options=options
        ),
    )


@db.command()
@_db_target
@click.option(
    "--instance-class",
    "instance_class",
    required=True,
    metavar="CLASS",
    help="The new RDS instance class, e.g. db.r6g.xlarge.",
)
@click.option("--resume", is_flag=True, help="Continue the resize recorded beside infra.yaml.")
@_render_options
@click.pass_context
def resize(ctx, env, group, yes, as_json, instance_class, resume, options) -> None:
    """Change every instance of the cluster to CLASS through a temporary reader and two failovers, then update infra.yaml and render."""
    from .commands import db as db_cmd

    _run(
        ctx,
        lambda: db_cmd.resize(
            ctx.obj["config"], env, group, instance_class, yes, resume, as_json, options=options
        ),
    )


@db.command()
@_db_target
@click.option(
    "--to",
    metavar="TIMESTAMP",
    help="The time to restore to: ISO 8601 with a zone, e.g. 2026-05-01T12:00:00Z.",
)
@click.option("--latest", is_flag=True, help="Restore to the latest restorable time instead.")
@click.option(
    "--as",
    "name",
    required=True,
    metavar="NAME",
    help="The new cluster's identifier (1-63 letters, digits, hyphens; first a letter).",
)
@_render_options
@click.pass_context
def restore(ctx, env, group, yes, as_json, to, latest, name, options) -> None:
    """Restore the cluster as it was at a time into a NEW cluster NAME (never over the live one), with one writer; print how to reach it."""
    from .commands import db as db_cmd

    _run(
        ctx,
        lambda: db_cmd.restore(
            ctx.obj["config"], env, group, to, latest, name, yes, as_json, options=options
        ),
    )


@db.command()
@click.argument("name", metavar="NAME")
@click.option(
    "--confirm",
    "confirm_name",
    required=True,
    metavar="NAME",
    help="The cluster's name again.",
)
@_json_option
@_render_options
@click.pass_context
def drop(ctx, name, confirm_name, as_json, options) -> None:
    """Delete a cluster `db restore` made: its instances, then the cluster, with NO final snapshot (it is a throwaway copy). Refuses any cluster Terraform manages."""
    from .commands import db as db_cmd

    _run(
        ctx,
        lambda: db_cmd.drop(ctx.obj["config"], name, confirm_name, as_json, options=options),
    )


def main() -> None:
    cli(prog_name="levels-tf")


if __name__ == "__main__":
    main()
