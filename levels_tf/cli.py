"""The command line: parses arguments, runs one command, maps errors to exit codes."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import click

from . import __version__, console
from .errors import LevelsError

# Each command imports its module when it runs, not at startup, so --help,
# --version and init load neither the model nor the templates.

DEFAULT_CONFIG = "infra.yaml"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


def _run(ctx: click.Context, action: Callable[[], int]) -> None:
    """Run a command; every error becomes a message and an exit code."""
    debug = ctx.obj["debug"]
    try:
        code = action()
    except LevelsError as exc:
        console.lines(exc.lines(), to_err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        console.err("interrupted")
        code = 130
    except Exception:  # noqa: BLE001 - the one place unexpected errors are caught
        if debug:
            raise
        report = _crash_report()
        kind, value, _ = sys.exc_info()
        console.err(f"levels-tf: internal error: {kind.__name__}: {value}".splitlines()[0])
        console.err(f"the full report is in {report}; rerun with --debug to see it here")
        code = 1
    ctx.exit(code)


def _crash_report() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    text = f"levels-tf {__version__}\nargv: {sys.argv}\n\n{traceback.format_exc()}"
    try:
        folder = Path(base) / "levels-tf"
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
@click.pass_context
def init(ctx: click.Context, directory: Path) -> None:
    """Write a commented starter infra.yaml (and its schema) to DIRECTORY."""
    from .commands import init as init_cmd

    _run(ctx, lambda: init_cmd.init(directory))


@cli.command()
@click.pass_context
def validate(ctx: click.Context) -> None:
    """Check infra.yaml; every problem is reported as FILE:LINE:COL: path: message."""
    from .commands import validate as validate_cmd

    _run(ctx, lambda: validate_cmd.validate(ctx.obj["config"]))


@cli.command()
@click.pass_context
def schema(ctx: click.Context) -> None:
    """Print the JSON Schema of infra.yaml."""
    from .commands import schema as schema_cmd

    _run(ctx, schema_cmd.schema)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="Output folder (default: infra.yaml's folder).")
@click.option("--check", is_flag=True, help="Write nothing; show a diff and exit 1 when the tree is stale.")
@click.option("--aws-endpoint", metavar="URL", help="Point every AWS service at one endpoint (an emulator such as moto).")
@click.option("--backend", type=click.Choice(["s3", "local"]), help="Override state.backend, e.g. local for a rehearsal.")
@click.pass_context
def render(ctx: click.Context, out: Path | None, check: bool, aws_endpoint: str | None, backend: str | None) -> None:
    """Render modules/, stacks/ and packer/ from infra.yaml."""
    from .commands import render as render_cmd
    from .options import RenderOptions

    _run(ctx, lambda: render_cmd.render(ctx.obj["config"], out, check, RenderOptions(aws_endpoint, backend)))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def stacks(ctx: click.Context, as_json: bool) -> None:
    """List the stacks in dependency order."""
    from .commands import stacks as stacks_cmd

    _run(ctx, lambda: stacks_cmd.stacks(ctx.obj["config"], as_json))


@cli.command()
@click.argument("functions", nargs=-1)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="Output folder (default: infra.yaml's folder).")
@click.pass_context
def package(ctx: click.Context, functions: tuple[str, ...], out: Path | None) -> None:
    """Build the deployment zip of each function (all by default) into build/functions/."""
    from .commands import package as package_cmd

    _run(ctx, lambda: package_cmd.package(ctx.obj["config"], out, functions))


def main() -> None:
    cli(prog_name="levels-tf")


if __name__ == "__main__":
    main()
