"""Lambda: size variants and a backup copy of every upload to an "uploads" bucket.

Triggered by S3 ObjectCreated notifications. For each uploaded object:

1. skip it when its key is under VARIANTS_PREFIX (our own output: no recursion);
2. copy it server-side to BACKUP_BUCKET under the same key (every upload, images or not);
3. download it and, when it is a JPEG, PNG, WebP or GIF image, write one variant
   per size in SIZES to VARIANTS_BUCKET at ``<VARIANTS_PREFIX><size>/<key>``:
   no wider or taller than the size, aspect ratio kept, never upscaled, EXIF
   orientation applied (and EXIF dropped), same format and content type.

Failure policy: what retrying cannot fix is logged and skipped (not an image,
an image format we do not make variants of, a corrupt or oversized image, an
object deleted before we got to it); everything else, S3 and network errors
above all, raises once every record has been tried, so that Lambda retries the
event and finally hands it to the function's failure destination. Every write
is an overwrite of a key derived from the input, so a retry is harmless.

Environment:
  BACKUP_BUCKET    required; the bucket receiving the copies of originals
  SIZES            required; comma-separated bounding-box sizes in pixels, e.g. "320,640,1280"
  VARIANTS_BUCKET  optional; default: the bucket the upload arrived in
  VARIANTS_PREFIX  optional; default "variants/" (a "/" is added when missing)
  MAX_IMAGE_BYTES  optional; larger objects are backed up but not resized; default 52428800
  LOG_LEVEL        optional; default INFO

Depends on boto3 (in the Lambda runtime) and Pillow only; never on levels_tf.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
import urllib.parse
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

# -- logging: one JSON object per line on stdout -----------------------------

LOGGER_NAME = "image_variants"


class _JsonLines(logging.Handler):
    """Writes each record as one line of JSON to the current sys.stdout."""

    _image_variants_json = True  # marks our handler, whichever copy of this module added it

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line: dict[str, Any] = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
            line.update(getattr(record, "fields", {}))
            sys.stdout.write(json.dumps(line, default=str, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        except Exception:  # pragma: no cover - logging must never break the function
            self.handleError(record)


def _logger() -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    if not any(getattr(h, "_image_variants_json", False) for h in logger.handlers):
        logger.addHandler(_JsonLines())
    # The Lambda runtime puts a text handler on the root logger; not propagating
    # keeps each line pure JSON and written once.
    logger.propagate = False
    logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    return logger


log = _logger()


def _log(level: int, message: str, **fields: Any) -> None:
    log.log(level, message, extra={"fields": fields})


# -- the pure part: bytes in, variants out ------------------------------------


class ImageProblem(Exception):
    """An object that no retry can turn into variants."""

    outcome = "skipped"


class NotAnImage(ImageProblem):
    outcome = "not_image"


class UnsupportedImage(ImageProblem):
    """An image Pillow reads, in a format we do not make variants of."""

    outcome = "unsupported"


class CorruptImage(ImageProblem):
    """Recognised as an image, but its pixels cannot be decoded."""

    outcome = "corrupt"


class ConfigError(Exception):
    """The function's environment is wrong: every event would fail the same way."""


# Pillow format -> (format to save as, content type). MPO is the multi-picture
# JPEG that many phone cameras write; it is a JPEG to everyone else.
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("JPEG", "image/jpeg"),
    "MPO": ("JPEG", "image/jpeg"),
    "PNG": ("PNG", "image/png"),
    "WEBP": ("WEBP", "image/webp"),
    "GIF": ("GIF", "image/gif"),
}
JPEG_QUALITY = 85
WEBP_QUALITY = 85
_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 or 270 degrees


def _check_sizes(sizes: list[int]) -> list[int]:
    if not sizes:
        raise ValueError("sizes: at least one size is needed")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"sizes: {size!r} is not a positive whole number of pixels")
    return sorted(set(sizes))


def _fit(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) scaled to fit a size x size box; never enlarged."""
    longest = max(width, height)
    if longest <= size:
        return width, height
    scale = size / longest
    return max(1, min(size, round(width * scale))), max(1, min(size, round(height * scale)))


def _open(data: bytes) -> tuple[Image.Image, tuple[str, str]]:
    """The image in `data` and how its variants are saved: (format, content type)."""
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as error:
        raise NotAnImage("not an image Pillow recognises") from error
    except Image.DecompressionBombError as error:
        raise UnsupportedImage(str(error)) from error
    except MemoryError:
        raise
    except Exception as error:  # a recognised header that then fails to parse
        raise CorruptImage(f"{type(error).__name__}: {error}") from error
    if image.format is None or image.format not in FORMATS:
        raise UnsupportedImage(f"{image.format} images get no variants")
    return image, FORMATS[image.format]


def _working_mode(image: Image.Image, save_as: str) -> Image.Image:
    """The image in a mode that resizes with a real filter and saves as `save_as`."""
    if save_as == "JPEG":  # CMYK and the rest become RGB, which every browser shows right
        return image if image.mode in ("RGB", "L") else image.convert("RGB")
    if image.mode in ("RGBA", "LA"):
        return image
    has_alpha = image.mode == "PA" or "transparency" in image.info
    if image.mode in ("RGB", "L") and not has_alpha:
        return image
    # Palette and other modes resize only with NEAREST (or not at all): go to RGB(A).
    return image.convert("RGBA" if has_alpha else "RGB")


def _encode(image: Image.Image, save_as: str, icc_profile: bytes | None) -> bytes:
    out = io.BytesIO()
    options: dict[str, Any] = {}
    if icc_profile and save_as != "GIF":  # GIF has no colour profile
        options["icc_profile"] = icc_profile
    if save_as == "JPEG":
        options.update(quality=JPEG_QUALITY, progressive=True, optimize=True)
    elif save_as == "WEBP":
        options.update(quality=WEBP_QUALITY, method=4)
    # No exif= anywhere: variants carry no EXIF (orientation is applied, GPS stays private).
    image.save(out, format=save_as, **options)
    return out.getvalue()


def make_variants(data: bytes, sizes: list[int]) -> dict[int, tuple[bytes, str]]:
    """One variant per size: {size: (encoded bytes, content type)}.

    Each variant fits a size x size box with the aspect ratio kept; an image
    already within the box keeps its dimensions (never upscaled) but is still
    re-encoded, so every variant has its orientation applied and no EXIF
    (GPS position included). The format is kept: JPEG (quality 85,
    progressive), PNG (alpha kept), WebP (quality 85, alpha kept), GIF (first
    frame). Raises NotAnImage, UnsupportedImage or CorruptImage, and
    ValueError for bad sizes.
    """
    wanted = _check_sizes(sizes)
    image, (save_as, content_type) = _open(data)
    try:
        raw_width, raw_height = image.size
        orientation = image.getexif().get(_ORIENTATION, 1)
        width, height = (
            (raw_height, raw_width) if orientation in _SWAPS_AXES else (raw_width, raw_height)
        )
        targets = {size: _fit(width, height, size) for size in wanted}
        largest = max(targets.values())
        if save_as == "JPEG" and largest != (width, height):
            # Let the JPEG decoder scale by 1/2, 1/4 or 1/8 while decoding, never
            # below the largest variant: a phone photo decodes several times faster.
            box = (largest[1], largest[0]) if orientation in _SWAPS_AXES else largest
            image.draft(image.mode, box)
        icc_profile = image.info.get("icc_profile")
        image.load()
        upright = ImageOps.exif_transpose(image)
        working = _working_mode(upright, save_as)
    except MemoryError:
        raise
    except Image.DecompressionBombError as error:
        raise UnsupportedImage(str(error)) from error
    except Exception as error:  # truncated or damaged pixel data, bad EXIF, ...
        raise CorruptImage(f"{type(error).__name__}: {error}") from error

    encoded: dict[tuple[int, int], bytes] = {}
    variants: dict[int, tuple[bytes, str]] = {}
    for size in wanted:
        dimensions = targets[size]
        if dimensions not in encoded:
            resized = (
                working
                if working.size == dimensions
                else working.resize(dimensions, Image.Resampling.LANCZOS)
            )
            encoded[dimensions] = _encode(resized, save_as, icc_profile)
        variants[size] = (encoded[dimensions], content_type)
    return variants


# -- configuration -------------------------------------------------------------


def _config() -> dict[str, Any]:
    """The function's settings, read from the environment on every invocation."""
    env = os.environ
    backup = env.get("BACKUP_BUCKET", "").strip()
    if not backup:
        raise ConfigError("BACKUP_BUCKET is not set")
    raw_sizes = env.get("SIZES", "")
    try:
        sizes = _check_sizes([int(part) for part in raw_sizes.split(",") if part.strip()])
    except ValueError as error:
        raise ConfigError(
            f"SIZES={raw_sizes!r}: expected comma-separated whole numbers, like 320,640,1280"
        ) from error
    prefix = env.get("VARIANTS_PREFIX", "variants/").strip()
    if not prefix.strip("/"):
        raise ConfigError("VARIANTS_PREFIX must not be empty: variants would overwrite originals")
    if not prefix.endswith("/"):
        prefix += "/"
    try:
        max_bytes = int(env.get("MAX_IMAGE_BYTES", str(50 * 1024 * 1024)))
    except ValueError as error:
        raise ConfigError(
            f"MAX_IMAGE_BYTES={env['MAX_IMAGE_BYTES']!r} is not a whole number"
        ) from error
    return {
        "backup_bucket": backup,
        "sizes": sizes,
        "variants_bucket": env.get("VARIANTS_BUCKET", "").strip() or None,
        "variants_prefix": prefix,
        "max_image_bytes": max_bytes,
    }


# -- S3 --------------------------------------------------------------------------

_CLIENT = None


def _s3():
    """The S3 client, made on first use and kept for warm invocations.

    boto3 (botocore 1.31 and newer) reads AWS_ENDPOINT_URL and
    AWS_ENDPOINT_URL_S3 by itself, which is how the tests point it at a local
    emulator; in Lambda neither is set.
    """
    global _CLIENT
    if _CLIENT is None:
        import boto3
        from botocore.config import Config

        _CLIENT = boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))
    return _CLIENT


_GONE = {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}


def _error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code"))
    return None


class RecordsFailed(Exception):
    """Some records failed in a way a retry may fix; raised after trying them all."""


def _process(record: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    s3_part = record.get("s3", {})
    bucket = s3_part.get("bucket", {}).get("name")
    raw_key = s3_part.get("object", {}).get("key")
    event_name = str(record.get("eventName", ""))
    if not bucket or raw_key is None or not event_name.startswith("ObjectCreated:"):
        return {
            "outcome": "ignored",
            "reason": "not an S3 ObjectCreated record",
            "event": event_name,
        }
    key = urllib.parse.unquote_plus(raw_key)
    result: dict[str, Any] = {"bucket": bucket, "key": key}
    if key.startswith(config["variants_prefix"]):
        return {**result, "outcome": "ignored", "reason": "under the variants prefix"}
    if bucket == config["backup_bucket"]:
        return {**result, "outcome": "ignored", "reason": "an event of the backup bucket"}
    version = s3_part.get("object", {}).get("versionId")
    source: dict[str, str] = {"Bucket": bucket, "Key": key}
    if version:
        source["VersionId"] = version
    s3 = _s3()

    try:
        s3.copy_object(CopySource=source, Bucket=config["backup_bucket"], Key=key)
    except Exception as error:
        if _error_code(error) in _GONE:
            return {**result, "outcome": "missing", "reason": "deleted before it was processed"}
        raise
    result["backup"] = f"s3://{config['backup_bucket']}/{key}"

    try:
        obj = s3.get_object(**source)
    except Exception as error:
        if _error_code(error) in _GONE:
            return {**result, "outcome": "missing", "reason": "deleted before it was processed"}
        raise
    length = int(obj.get("ContentLength") or 0)
    if length > config["max_image_bytes"]:
        obj["Body"].close()
        return {**result, "outcome": "too_large", "reason": f"{length} bytes > MAX_IMAGE_BYTES"}
    data = obj["Body"].read()

    try:
        variants = make_variants(data, config["sizes"])
    except ImageProblem as problem:
        return {**result, "outcome": problem.outcome, "reason": str(problem)}

    target_bucket = config["variants_bucket"] or bucket
    written = {}
    for size, (body, content_type) in variants.items():
        variant_key = f"{config['variants_prefix']}{size}/{key}"
        s3.put_object(Bucket=target_bucket, Key=variant_key, Body=body, ContentType=content_type)
        written[size] = variant_key
    return {**result, "outcome": "resized", "variants_bucket": target_bucket, "variants": written}


_LEVELS = {
    "resized": logging.INFO,
    "ignored": logging.INFO,
    "failed": logging.ERROR,
    "corrupt": logging.ERROR,
}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process every record of an S3 notification; see the module's docstring."""
    request_id = getattr(context, "aws_request_id", None)
    try:
        config = _config()
    except ConfigError as error:
        _log(
            logging.ERROR,
            "configuration error",
            request_id=request_id,
            outcome="config_error",
            error=str(error),
        )
        raise
    records = event.get("Records") or []
    if not records:
        _log(
            logging.INFO,
            "no records",
            request_id=request_id,
            outcome="ignored",
            event=event.get("Event"),
        )
    results = []
    failures: list[tuple[dict[str, Any], BaseException]] = []
    for record in records:
        started = time.monotonic()
        try:
            result = _process(record, config)
        except Exception as error:  # retried by Lambda: try the other records first
            s3_part = record.get("s3", {}) if isinstance(record, dict) else {}
            result = {
                "bucket": s3_part.get("bucket", {}).get("name"),
                "key": urllib.parse.unquote_plus(s3_part.get("object", {}).get("key") or ""),
                "outcome": "failed",
                "error": f"{type(error).__name__}: {error}",
            }
            failures.append((result, error))
        result["ms"] = round((time.monotonic() - started) * 1000)
        results.append(result)
        _log(
            _LEVELS.get(result["outcome"], logging.WARNING),
            f"{result['outcome']} {result.get('key', '')}".strip(),
            request_id=request_id,
            **result,
        )
    summary: dict[str, Any] = {"records": len(records), "outcomes": {}, "results": results}
    for result in results:
        summary["outcomes"][result["outcome"]] = summary["outcomes"].get(result["outcome"], 0) + 1
    if failures:
        keys = ", ".join(repr(result["key"]) for result, _ in failures)
        raise RecordsFailed(
            f"{len(failures)} of {len(records)} records failed: {keys}"
        ) from failures[0][1]
    return summary
