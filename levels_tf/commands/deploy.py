"""`levels-tf deploy SERVICE BUNDLE --env ENV [--version V]`: ship one bundle.

The one change levels-tf makes in place: the bundle (a .tar.gz) goes to the
environment's deployments bucket as `<service>/<version>.tar.gz`, and only
after S3 stored it, KMS-encrypted, does the service's version parameter
(`/<project>/<env>/<service>/bundle-version`) point at it. Everything that can
be checked locally is checked before the first request to AWS.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .. import console
from ..aws import AccessDenied, Aws, AwsError
from ..errors import UsageError
from ..names import asset_bucket, bundle_parameter
from ..options import RenderOptions, resolve
from ..validation import load_config, require_environment

DEPLOYMENTS = "deployments"
GZIP_MAGIC = b"\x1f\x8b"
MAX_BUNDLE = 5 * 1024**3  # one PutObject
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Bundle:
    path: Path
    data: bytes
    sha256: bytes
    members: int

    @property
    def digest(self) -> str:
        return self.sha256.hex()


def deploy(
    config_path: Path,
    service: str,
    bundle_path: Path,
    env: str,
    version: str | None,
    options: RenderOptions = RenderOptions(),
    as_json: bool = False,
) -> int:
    """Upload the bundle as `service`'s next version in `env`, then record that version.

    `options` must agree with those the tree beside infra.yaml was rendered
    with; its endpoint is where the bundle goes.

    With `as_json`, ends with `{"service": str, "environment": str,
    "version": str, "bundle": {"path": str, "bytes": int, "sha256": str,
    "entries": int}, "object": {"bucket": str, "key": str, "uploaded": bool
    (false: it was there already), "encryption": str | null, "version_id":
    str | null}, "parameter": {"name": str, "previous": str | null
    ("unknown" when it could not be read), "changed": bool,
    "parameter_version": int | null}}`."""
    config = load_config(config_path)
    aws_endpoint = resolve(config_path.parent, options, config.infra.state.backend).aws_endpoint
    require_environment(config, env)
    effective = config.environments[env]
    if service not in effective.services:
        defined = ", ".join(effective.services) or "none"
        raise UsageError(
            f"no service {service!r} in environment {env} of {config_path}; defined: {defined}"
        )
    if DEPLOYMENTS not in effective.buckets:
        raise UsageError(
            f"{config_path} declares no {DEPLOYMENTS!r} bucket class (buckets.{DEPLOYMENTS}) for {env}, "
            f"so there is no bucket to deploy to; add `{DEPLOYMENTS}` under `buckets:`, render, "
            f"then plan and apply {env}'s stack"
        )
    bundle = read_bundle(bundle_path)
    named = version is not None
    version = version if version is not None else bundle.digest[:12]
    if not VERSION_RE.fullmatch(version):
        raise UsageError(
            f"--version {version!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    bucket = asset_bucket(effective, env, DEPLOYMENTS)
    key = f"{service}/{version}.tar.gz"
    parameter = bundle_parameter(effective, env, service)

    aws = Aws(effective.region, aws_endpoint)
    who = aws.identity()
    try:
        previous = aws.get_parameter(parameter)
    except AccessDenied:
        previous = "unknown"  # a CI role may record versions without reading them
        console.err(
            f"warning: cannot read {parameter} (no ssm:GetParameter); the previous version is unknown"
        )

    upload = aws.put_object(
        bucket,
        key,
        bundle.data,
        owner=who.account,
        content_type="application/gzip",
        metadata={"sha256": bundle.digest, "service": service, "version": version},
        sha256=bundle.sha256,
    )
    where = f"s3://{bucket}/{key}"
    if upload is None and named:
        raise UsageError(
            f"{where} already exists: a version names one bundle for good, so choose another --version "
            f"(or none, to name the bundle by its hash); {parameter} was left at {previous or 'nothing'}"
        )
    if upload is not None and upload.encryption not in ("aws:kms", "aws:kms:dsse"):
        raise AwsError(
            f"{where} was stored with {upload.encryption or 'no'} encryption, not the bucket's KMS key: "
            f"{bucket} is not configured as its stack renders it; {parameter} was left at {previous or 'nothing'}"
        )
    number = None
    if previous != version:
        number = aws.put_parameter(
            parameter,
            version,
            f"Bundle of {service} deployed by levels-tf (sha256 {bundle.digest})",
        )

    summary = f"{bundle.path.name} ({bundle.members} entries, {len(bundle.data)} bytes, sha256 {bundle.digest[:12]})"
    if upload is None:
        console.out(f"{where} already holds {summary}: not uploaded again")
    else:
        extra = f", object version {upload.version_id}" if upload.version_id else ""
        console.out(f"uploaded {summary} to {where} ({upload.encryption}{extra})")
    if previous == version:
        console.out(f"{parameter}: already {version}, left as it is")
    else:
        console.out(
            f"{parameter}: {previous or '(none)'} -> {version} (parameter version {number})"
        )
    if as_json:
        console.report_json(
            {
                "service": service,
                "environment": env,
                "version": version,
                "bundle": {
                    "path": str(bundle.path),
                    "bytes": len(bundle.data),
                    "sha256": bundle.digest,
                    "entries": bundle.members,
                },
                "object": {
                    "bucket": bucket,
                    "key": key,
                    "uploaded": upload is not None,
                    "encryption": upload.encryption if upload else None,
                    "version_id": upload.version_id if upload else None,
                },
                "parameter": {
                    "name": parameter,
                    "previous": previous,
                    "changed": previous != version,
                    "parameter_version": number,
                },
            }
        )
    return 0


# What to do about a bundle deploy refuses.
BUILD_BUNDLE = (
    "build it with `tar -czf bundle.tar.gz -C BUILD_DIR .` (relative paths, at least one file)"
)


def read_bundle(path: Path) -> Bundle:
    """The bundle's bytes, once they proved to be a non-empty gzip tarball with safe member names."""
    if not path.exists():
        raise UsageError(f"bundle {path} does not exist; {BUILD_BUNDLE}")
    if not path.is_file():
        raise UsageError(f"bundle {path} is not a file; {BUILD_BUNDLE}")
    size = path.stat().st_size
    if size > MAX_BUNDLE:
        raise UsageError(
            f"bundle {path} is {size} bytes, over the 5 GiB of one upload; {BUILD_BUNDLE}"
        )
    data = path.read_bytes()
    if not data.startswith(GZIP_MAGIC):
        raise UsageError(
            f"bundle {path} is not gzip-compressed (a .tar.gz starts with the bytes 1f 8b); {BUILD_BUNDLE}"
        )
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            members = archive.getmembers()
    except (tarfile.TarError, EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
        raise UsageError(
            f"bundle {path} is gzip but not a readable tar archive: {exc}; {BUILD_BUNDLE}"
        ) from None
    if not members:
        raise UsageError(f"bundle {path} is an empty tar archive; {BUILD_BUNDLE}")
    for member in members:
        parts = PurePosixPath(member.name).parts
        if member.name.startswith("/") or ".." in parts:
            raise UsageError(
                f"bundle {path} has a member outside its root: {member.name!r}; {BUILD_BUNDLE}"
            )
    return Bundle(path, data, hashlib.sha256(data).digest(), len(members))
