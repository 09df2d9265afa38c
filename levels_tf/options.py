"""How a tree is rendered besides what infra.yaml says: for an emulator.

`--aws-endpoint URL` points every AWS service the stacks use at one
endpoint (moto, LocalStack), with the provider settings that requires;
`--backend local` keeps state in local files instead of S3. Both are meant
for rehearsals in a folder of their own, never for the committed tree.

They are one fact stored with the tree (`.levels-tf/render-options`, written
by render in the same transaction as the files it describes). Every later
command reads it: no option means the stored one, and an option (or
$AWS_ENDPOINT_URL) that contradicts it is an error naming the render to run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .endpoint import check_endpoint
from .errors import UsageError
from .writer import MANIFEST, STATE_DIR

STORED = f"{STATE_DIR}/render-options"
# The AWS SDKs' standard variable for one endpoint for every service.
SDK_ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
_KEYS = ("aws_endpoint", "backend")
_REWRITE = "delete it, then run `levels-tf render` with the options you mean"
_HEADER = (
    "# How this tree was rendered; every levels-tf command reads it. Render again to change it.\n"
)

# Every AWS API the rendered stacks call, by the aws provider's endpoint names.
ENDPOINT_SERVICES = (
    "acm",
    "autoscaling",
    "backup",
    "cloudfront",
    "cloudwatch",
    "ec2",
    "elbv2",
    "iam",
    "kms",
    "lambda",
    "logs",
    "rds",
    "route53",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "sts",
    "wafv2",
)


@dataclass(frozen=True)
class RenderOptions:
    aws_endpoint: str | None = None
    backend: str | None = None

    def __post_init__(self) -> None:
        if self.aws_endpoint is not None:
            # One spelling of the URL (no trailing slash) in the tree, the stored options and the clients.
            object.__setattr__(self, "aws_endpoint", check_endpoint(self.aws_endpoint))
        if self.backend not in (None, "s3", "local"):
            raise UsageError(f"--backend {self.backend!r}: use s3 or local")

    @property
    def flags(self) -> str:
        """The render options as command-line flags, e.g. " --backend local"; "" for none."""
        text = f" --aws-endpoint {self.aws_endpoint}" if self.aws_endpoint else ""
        return text + (f" --backend {self.backend}" if self.backend else "")


def stored_text(options: RenderOptions) -> str | None:
    """The text render stores with the tree; None when rendered with no options."""
    values = {key: getattr(options, key) for key in _KEYS if getattr(options, key)}
    if not values:
        return None
    return _HEADER + "".join(f"{key}: {value}\n" for key, value in values.items())


def _file_on_the_path(out: Path) -> Path:
    """The file that keeps the tree's folder `out` from being one."""
    return next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), out)


def read_stored(out: Path) -> RenderOptions:
    """The options the tree under `out` was rendered with (none when the file is absent).

    UsageError with file:line when the file is not what render writes."""
    path = out / STORED
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RenderOptions()
    except NotADirectoryError:
        raise UsageError(
            f"{out}: {_file_on_the_path(out)} is a file, not a folder; give the tree a folder's path"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}; {_REWRITE}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(": ")
        if not sep or key not in _KEYS or key in values or not value.strip():
            raise UsageError(f"{path}:{number}: not a line levels-tf writes; {_REWRITE}")
        values[key] = value.strip()
    try:
        return RenderOptions(**values)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}; {_REWRITE}") from None


def sdk_endpoint(environ: Mapping[str, str] = os.environ) -> str | None:
    """$AWS_ENDPOINT_URL when set and not empty."""
    return environ.get(SDK_ENDPOINT_VARIABLE) or None


def for_render(
    out: Path, given: RenderOptions, environ: Mapping[str, str] = os.environ
) -> RenderOptions:
    """What `render` renders with: each option given, else $AWS_ENDPOINT_URL for
    the endpoint, else what the tree under `out` was rendered with."""
    stored = read_stored(out)
    return RenderOptions(
        given.aws_endpoint or sdk_endpoint(environ) or stored.aws_endpoint,
        given.backend or stored.backend,
    )


def resolve(
    out: Path, given: RenderOptions, config_backend: str, environ: Mapping[str, str] = os.environ
) -> RenderOptions:
    """The options of a command that reads the tree under `out`: the stored ones.

    `given` are the command's own options, `config_backend` is state.backend of
    infra.yaml. An option given, or $AWS_ENDPOINT_URL where none is, must agree
    with the stored fact: otherwise UsageError saying what to run. Before the
    first render there is no fact: the options given, else $AWS_ENDPOINT_URL."""
    if not (out / MANIFEST).exists():
        return RenderOptions(given.aws_endpoint or sdk_endpoint(environ), given.backend)
    stored = read_stored(out)
    rendered = (
        f"rendered with{stored.flags}"
        if stored.flags
        else "rendered with no --aws-endpoint or --backend"
    )
    where = f"the tree in {out} was {rendered} ({STORED})"
    endpoint, source, fix = (
        given.aws_endpoint,
        f"--aws-endpoint {given.aws_endpoint}",
        "leave --aws-endpoint out",
    )
    if endpoint is None and sdk_endpoint(environ):
        endpoint = sdk_endpoint(environ)
        source, fix = f"{SDK_ENDPOINT_VARIABLE}={endpoint}", f"unset {SDK_ENDPOINT_VARIABLE}"
    if endpoint is not None and _same_url(endpoint) != _same_url(stored.aws_endpoint):
        raise UsageError(
            f"{source}: {where}; {fix}, or run "
            f"`levels-tf render{dataclasses.replace(stored, aws_endpoint=endpoint).flags}` first"
        )
    if given.backend is not None and given.backend != (stored.backend or config_backend):
        raise UsageError(
            f"--backend {given.backend}: {where}; leave --backend out, or run "
            f"`levels-tf render{dataclasses.replace(stored, backend=given.backend).flags}` first"
        )
    return stored


def _same_url(url: str | None) -> str | None:
    return url.rstrip("/") if url else None


def apply(config, options: RenderOptions):
    """`config` rendered with `options`: the backend override reaches every model."""
    if options.backend is None:
        return dataclasses.replace(config, options=options)

    def override(infra):
        return dataclasses.replace(
            infra, state=dataclasses.replace(infra.state, backend=options.backend)
        )

    return dataclasses.replace(
        config,
        infra=override(config.infra),
        environments={env: override(infra) for env, infra in config.environments.items()},
        options=options,
    )


def endpoint_settings(endpoint: str) -> dict[str, object]:
    """Settings of an S3 backend or remote state at an emulator."""
    return {
        "endpoints": {"s3": endpoint, "sts": endpoint},
        "use_path_style": True,
        "skip_credentials_validation": True,
        "skip_requesting_account_id": True,
        "skip_metadata_api_check": True,
    }
