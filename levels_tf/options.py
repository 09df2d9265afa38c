"""How a tree is rendered besides what infra.yaml says: for an emulator.

`--aws-endpoint URL` points every AWS service the stacks use at one
endpoint (moto, LocalStack), with the provider settings that requires;
`--backend local` keeps state in local files instead of S3. Both are meant
for rehearsals in a folder of their own, never for the committed tree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from urllib.parse import urlparse

from .errors import UsageError

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
            url = urlparse(self.aws_endpoint)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise UsageError(f"--aws-endpoint {self.aws_endpoint!r} is not an http(s) URL")
        if self.backend not in (None, "s3", "local"):
            raise UsageError(f"--backend {self.backend!r}: use s3 or local")


def apply(config, options: RenderOptions):
    """`config` rendered with `options`: the backend override reaches every model."""
    if options.backend is None:
        return dataclasses.replace(config, options=options)

    def override(infra):
        return dataclasses.replace(infra, state=dataclasses.replace(infra.state, backend=options.backend))

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
