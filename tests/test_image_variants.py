"""The image-variants Lambda: the pure resizing on real images made here, and the
S3 glue end to end against a local moto server (nothing but 127.0.0.1)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import urllib.parse

import pytest

try:
    from PIL import Image, ImageCms, JpegImagePlugin, features
except ImportError:  # pragma: no cover - depends on the machine
    if os.environ.get("CI"):
        raise  # CI installs .[test], which has Pillow: a missing one is a failure there
    pytest.skip("Pillow is not installed: pip install -e '.[test]'", allow_module_level=True)

from levels_tf.functions import FUNCTIONS

SOURCE = FUNCTIONS["image-variants"].source_dir / "handler.py"


def _load_handler(name: str = "image_variants_handler"):
    """The handler as Lambda loads it: a top-level module from its own file."""
    spec = importlib.util.spec_from_file_location(name, SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


handler = _load_handler()

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 160, 0)


def _jpeg_rotated(width: int = 400, height: int = 200, orientation: int = 6) -> bytes:
    """A JPEG stored `width` x `height`, left half red and right half blue, whose
    EXIF says to turn it (6: 90 degrees clockwise, so it shows upright as height x width
    with red on top)."""
    raw = Image.new("RGB", (width, height), RED)
    raw.paste(BLUE, (width // 2, 0, width, height))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x8825] = {2: (52.0, 31.0, 0.0)}  # a GPS latitude that must not reach a variant
    out = io.BytesIO()
    raw.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def _png_with_alpha(width: int = 300, height: int = 150) -> bytes:
    """Left half fully transparent, right half opaque green."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    image.paste(GREEN + (255,), (width // 2, 0, width, height))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _alpha(image: Image.Image, xy: tuple[int, int]) -> int:
    """The alpha of the pixel at `xy` of an image with bands (RGBA, LA)."""
    pixel = image.getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel[-1]


def _close(actual, expected, tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))


# -- make_variants: real pixels ------------------------------------------------


def test_jpeg_variants_fit_the_box_with_orientation_applied_and_exif_dropped():
    variants = handler.make_variants(_jpeg_rotated(), [100, 320, 1280])

    assert sorted(variants) == [100, 320, 1280]
    expected = {
        100: (50, 100),
        320: (160, 320),
        1280: (200, 400),
    }  # upright 200x400; 1280 not upscaled
    for size, (data, content_type) in variants.items():
        image = _open(data)
        assert content_type == "image/jpeg"
        assert image.format == "JPEG"
        assert image.size == expected[size], size
        width, height = image.size
        assert _close(image.getpixel((width // 2, height // 8)), RED), (
            "the stored left edge must end up on top"
        )
        assert _close(image.getpixel((width // 2, height * 7 // 8)), BLUE)
        exif = image.getexif()
        assert exif.get(0x0112) in (None, 1), "an orientation tag left in would turn it twice"
        assert 0x8825 not in exif, "GPS position must not travel into public variants"


def test_jpeg_variants_are_progressive_at_quality_85():
    reference = _open(_encoded(Image.new("RGB", (64, 64), RED), "JPEG", quality=85))
    data, _ = handler.make_variants(_jpeg_rotated(), [100])[100]
    image = _open(data)
    assert image.info.get("progressive") or image.info.get("progression")
    assert isinstance(image, JpegImagePlugin.JpegImageFile)
    assert isinstance(reference, JpegImagePlugin.JpegImageFile)
    assert image.quantization == reference.quantization


@pytest.mark.parametrize(
    "orientation, upright",
    [(1, (2000, 1000)), (3, (2000, 1000)), (6, (1000, 2000)), (8, (1000, 2000))],
)
def test_large_jpeg_is_drafted_and_still_gets_exact_dimensions(orientation, upright, monkeypatch):
    from PIL import JpegImagePlugin

    decoded = []
    original_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = original_draft(self, mode, size)
        decoded.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    data = _jpeg_rotated(2000, 1000, orientation)
    only_small = handler.make_variants(data, [320])[320][0]
    assert decoded == [(500, 250)], "decoded at 1/4 scale, still larger than the 320 box"
    assert _open(only_small).size == tuple(round(side * 320 / 2000) for side in upright)
    variants = handler.make_variants(data, [320, 1500])
    scale320 = 320 / max(upright)
    assert _open(variants[320][0]).size == (
        round(upright[0] * scale320),
        round(upright[1] * scale320),
    )
    scale1500 = 1500 / max(upright)
    assert _open(variants[1500][0]).size == (
        round(upright[0] * scale1500),
        round(upright[1] * scale1500),
    )


def test_png_keeps_its_transparency_and_format():
    variants = handler.make_variants(_png_with_alpha(), [64, 1000])

    small, content_type = variants[64]
    assert content_type == "image/png"
    image = _open(small)
    assert image.format == "PNG"
    assert image.size == (64, 32)
    assert image.mode == "RGBA"
    assert _alpha(image, (4, 16)) == 0
    assert image.getpixel((60, 16)) == GREEN + (255,)
    assert _open(variants[1000][0]).size == (300, 150)  # never upscaled


def test_palette_png_with_a_transparent_index_is_resized_smoothly_and_stays_transparent():
    image = Image.new("P", (200, 100), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (100, 0, 200, 100))
    variants = handler.make_variants(_encoded(image, "PNG", transparency=0), [50])

    out = _open(variants[50][0])
    assert out.size == (50, 25)
    assert out.mode == "RGBA"
    edge = [_alpha(out, (x, 12)) for x in range(50)]
    assert any(0 < alpha < 255 for alpha in edge), "a filtered edge, not NEAREST's hard step"
    assert _alpha(out.convert("RGBA"), (5, 12)) == 0
    assert out.convert("RGBA").getpixel((45, 12)) == (255, 0, 0, 255)


def test_an_image_smaller_than_every_size_is_never_upscaled():
    tiny = _encoded(Image.new("RGB", (10, 8), GREEN), "JPEG")
    variants = handler.make_variants(tiny, [320, 640, 1280])
    assert {size: _open(data).size for size, (data, _) in variants.items()} == {
        320: (10, 8),
        640: (10, 8),
        1280: (10, 8),
    }


@pytest.mark.skipif(not features.check("webp"), reason="this Pillow has no WebP support")
def test_webp_stays_webp_with_alpha():
    image = Image.new("RGBA", (400, 100), (0, 0, 0, 0))
    image.paste(BLUE + (255,), (200, 0, 400, 100))
    data, content_type = handler.make_variants(_encoded(image, "WEBP", lossless=True), [200])[200]
    out = _open(data)
    assert (content_type, out.format, out.size) == ("image/webp", "WEBP", (200, 50))
    assert out.mode == "RGBA" and _alpha(out, (10, 25)) == 0


def test_animated_gif_gives_its_first_frame_as_a_gif():
    frames = [Image.new("RGB", (120, 60), RED), Image.new("RGB", (120, 60), BLUE)]
    data = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(_open(data), "n_frames", 1) == 2

    out_data, content_type = handler.make_variants(data, [60])[60]
    out = _open(out_data)
    assert (content_type, out.format, out.size) == ("image/gif", "GIF", (60, 30))
    assert getattr(out, "n_frames", 1) == 1
    assert _close(out.convert("RGB").getpixel((30, 15)), RED)


def test_phone_style_mpo_jpeg_is_treated_as_a_jpeg():
    data = _encoded(
        Image.new("RGB", (300, 200), RED),
        "MPO",
        save_all=True,
        append_images=[Image.new("RGB", (300, 200), BLUE)],
    )
    assert Image.open(io.BytesIO(data)).format == "MPO"
    out_data, content_type = handler.make_variants(data, [150])[150]
    out = _open(out_data)
    assert (content_type, out.format, out.size) == ("image/jpeg", "JPEG", (150, 100))
    assert _close(out.getpixel((75, 50)), RED)


def test_cmyk_jpeg_becomes_an_rgb_jpeg():
    data = _encoded(Image.new("CMYK", (100, 100), (0, 255, 255, 0)), "JPEG")
    out = _open(handler.make_variants(data, [50])[50][0])
    assert (out.mode, out.size) == ("RGB", (50, 50))


def test_icc_profile_is_kept():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _encoded(Image.new("RGB", (100, 100), RED), "JPEG", icc_profile=profile)
    out = _open(handler.make_variants(data, [50])[50][0])
    assert out.info.get("icc_profile") == profile


def test_same_dimensions_are_encoded_once():
    variants = handler.make_variants(_encoded(Image.new("RGB", (10, 8), GREEN), "PNG"), [20, 30])
    assert variants[20][0] is variants[30][0]


def test_not_an_image():
    with pytest.raises(handler.NotAnImage):
        handler.make_variants(b"%PDF-1.7 hello, not a picture\n", [320])


def test_a_format_we_do_not_resize_is_unsupported():
    with pytest.raises(handler.UnsupportedImage, match="BMP"):
        handler.make_variants(_encoded(Image.new("RGB", (20, 20), RED), "BMP"), [10])


def test_a_truncated_jpeg_is_corrupt():
    data = _jpeg_rotated(800, 600, 1)
    with pytest.raises(handler.CorruptImage):
        handler.make_variants(data[: len(data) // 3], [100])


def test_a_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # errors past twice that
    with pytest.raises(handler.UnsupportedImage):
        handler.make_variants(_encoded(Image.new("RGB", (100, 100), RED), "PNG"), [10])


@pytest.mark.parametrize("sizes", [[], [0], [-5], ["320"], [True], [1.5]])
def test_bad_sizes_are_refused(sizes):
    with pytest.raises(ValueError):
        handler.make_variants(_png_with_alpha(), sizes)


# -- configuration -------------------------------------------------------------


@pytest.fixture
def function_env(monkeypatch):
    for name in ("VARIANTS_BUCKET", "VARIANTS_PREFIX", "MAX_IMAGE_BYTES", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BACKUP_BUCKET", "levels-dev-backup")
    monkeypatch.setenv("SIZES", "320, 640,1280")
    return monkeypatch


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("SIZES", "320,abc", "SIZES"),
        ("SIZES", "", "SIZES"),
        ("SIZES", "0,320", "SIZES"),
        ("BACKUP_BUCKET", "", "BACKUP_BUCKET"),
        ("VARIANTS_PREFIX", "/", "VARIANTS_PREFIX"),
        ("MAX_IMAGE_BYTES", "lots", "MAX_IMAGE_BYTES"),
    ],
)
def test_a_wrong_environment_fails_every_event_before_touching_s3(
    function_env, name, value, message, capsys
):
    function_env.setenv(name, value)
    with pytest.raises(handler.ConfigError, match=message):
        handler.handler({"Records": [_record("uploads", "a.jpg")]}, None)
    assert handler._CLIENT is None
    line = json.loads(capsys.readouterr().out.strip())
    assert line["outcome"] == "config_error" and line["level"] == "ERROR"


def test_configuration_defaults(function_env):
    config = handler._config()
    assert config["sizes"] == [320, 640, 1280]
    assert config["variants_bucket"] is None
    assert config["variants_prefix"] == "variants/"
    function_env.setenv("VARIANTS_PREFIX", "thumbs")
    assert handler._config()["variants_prefix"] == "thumbs/"


def test_the_client_is_made_on_first_use_only():
    fresh = _load_handler("image_variants_handler_fresh")
    try:
        assert fresh._CLIENT is None
        assert "boto3" not in vars(fresh)
    finally:
        del sys.modules["image_variants_handler_fresh"]


def test_an_event_without_records_is_ignored(function_env, capsys):
    summary = handler.handler({"Service": "Amazon S3", "Event": "s3:TestEvent"}, None)
    assert summary["records"] == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "ignored"


# -- the S3 glue, end to end against moto's server --------------------------------

UPLOADS, BACKUP = "levels-dev-uploads", "levels-dev-backup"


def _record(bucket: str, key: str, *, size: int = 0, event: str = "ObjectCreated:Put") -> dict:
    """One record as S3 sends it: the key URL-encoded with '+' for spaces."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2025-01-01T00:00:00.000Z",
        "eventName": event,
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "image-variants",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "EXAMPLE"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": urllib.parse.quote_plus(key, safe="/"),
                "size": size,
                "eTag": "0",
                "sequencer": "0",
            },
        },
    }


class _Context:
    aws_request_id = "req-1"


@pytest.fixture
def s3(aws_env, function_env):
    """A client of the moto server with the uploads and backup buckets, and a
    handler whose client is made afresh against it."""
    import boto3

    function_env.setattr(handler, "_CLIENT", None)
    client = boto3.client("s3")
    assert client.meta.endpoint_url == aws_env
    for bucket in (UPLOADS, BACKUP):
        client.create_bucket(Bucket=bucket)
    return client


def _keys(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def _upload_and_handle(s3, key: str, body: bytes, content_type: str = "image/jpeg") -> dict:
    s3.put_object(Bucket=UPLOADS, Key=key, Body=body, ContentType=content_type)
    return handler.handler({"Records": [_record(UPLOADS, key, size=len(body))]}, _Context())


def test_handler_backs_up_and_writes_every_variant(s3, capsys):
    original = _jpeg_rotated()
    summary = _upload_and_handle(s3, "photos/cat.jpg", original)

    assert summary["outcomes"] == {"resized": 1}
    assert handler._CLIENT is not None and handler._CLIENT.meta.endpoint_url.startswith(
        "http://127.0.0.1:"
    )
    backup = s3.get_object(Bucket=BACKUP, Key="photos/cat.jpg")
    assert backup["Body"].read() == original
    assert backup["ContentType"] == "image/jpeg"
    assert _keys(s3, UPLOADS) == [
        "photos/cat.jpg",
        "variants/1280/photos/cat.jpg",
        "variants/320/photos/cat.jpg",
        "variants/640/photos/cat.jpg",
    ]
    for size in (320, 640, 1280):
        variant = s3.get_object(Bucket=UPLOADS, Key=f"variants/{size}/photos/cat.jpg")
        assert variant["ContentType"] == "image/jpeg"
        image = _open(variant["Body"].read())
        assert image.size == {320: (160, 320), 640: (200, 400), 1280: (200, 400)}[size]

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1
    assert lines[0]["outcome"] == "resized" and lines[0]["key"] == "photos/cat.jpg"
    assert lines[0]["request_id"] == "req-1" and lines[0]["level"] == "INFO"


def test_variants_can_go_to_another_bucket(s3, function_env):
    s3.create_bucket(Bucket="levels-dev-cdn")
    function_env.setenv("VARIANTS_BUCKET", "levels-dev-cdn")
    function_env.setenv("SIZES", "64")
    _upload_and_handle(s3, "a.png", _png_with_alpha(), "image/png")

    assert _keys(s3, UPLOADS) == ["a.png"]
    variant = s3.get_object(Bucket="levels-dev-cdn", Key="variants/64/a.png")
    assert variant["ContentType"] == "image/png"
    assert _open(variant["Body"].read()).size == (64, 32)


def test_a_key_under_the_variants_prefix_is_ignored(s3, capsys):
    data = _png_with_alpha()
    s3.put_object(Bucket=UPLOADS, Key="variants/320/a.png", Body=data)
    summary = handler.handler({"Records": [_record(UPLOADS, "variants/320/a.png")]}, None)

    assert summary["outcomes"] == {"ignored": 1}
    assert _keys(s3, UPLOADS) == ["variants/320/a.png"]
    assert _keys(s3, BACKUP) == []
    assert json.loads(capsys.readouterr().out)["reason"] == "under the variants prefix"


def test_a_url_encoded_key_with_spaces_and_plus_works(s3):
    key = "albums/summer 2024/beach+sea ü.jpg"
    record = _record(UPLOADS, key)
    assert record["s3"]["object"]["key"] == "albums/summer+2024/beach%2Bsea+%C3%BC.jpg"
    s3.put_object(Bucket=UPLOADS, Key=key, Body=_jpeg_rotated())
    summary = handler.handler({"Records": [record]}, None)

    assert summary["outcomes"] == {"resized": 1}
    assert _keys(s3, BACKUP) == [key]
    assert f"variants/320/{key}" in _keys(s3, UPLOADS)


def test_a_non_image_is_backed_up_and_skipped_without_failing(s3, capsys):
    summary = _upload_and_handle(s3, "docs/readme.txt", b"just text\n", "text/plain")

    assert summary["outcomes"] == {"not_image": 1}
    assert _keys(s3, UPLOADS) == ["docs/readme.txt"]
    assert _keys(s3, BACKUP) == ["docs/readme.txt"]
    line = json.loads(capsys.readouterr().out)
    assert (line["outcome"], line["level"]) == ("not_image", "WARNING")


def test_a_corrupt_image_is_logged_as_an_error_and_skipped(s3, capsys):
    data = _jpeg_rotated(800, 600, 1)
    summary = _upload_and_handle(s3, "broken.jpg", data[: len(data) // 3])

    assert summary["outcomes"] == {"corrupt": 1}
    assert _keys(s3, UPLOADS) == ["broken.jpg"]
    assert _keys(s3, BACKUP) == ["broken.jpg"]
    assert json.loads(capsys.readouterr().out)["level"] == "ERROR"


def test_an_object_deleted_before_processing_is_skipped(s3):
    summary = handler.handler({"Records": [_record(UPLOADS, "gone.jpg")]}, None)
    assert summary["outcomes"] == {"missing": 1}
    assert _keys(s3, BACKUP) == []


def test_an_object_over_the_size_limit_is_backed_up_but_not_resized(s3, function_env):
    function_env.setenv("MAX_IMAGE_BYTES", "100")
    summary = _upload_and_handle(s3, "big.png", _png_with_alpha())
    assert summary["outcomes"] == {"too_large": 1}
    assert _keys(s3, UPLOADS) == ["big.png"]
    assert _keys(s3, BACKUP) == ["big.png"]


def test_other_records_are_done_before_an_s3_error_fails_the_event(s3, capsys):
    s3.put_object(Bucket=UPLOADS, Key="ok.png", Body=_png_with_alpha())
    event = {"Records": [_record("levels-dev-no-such-bucket", "x.png"), _record(UPLOADS, "ok.png")]}

    with pytest.raises(handler.RecordsFailed, match=r"1 of 2 records failed: 'x\.png'") as raised:
        handler.handler(event, None)

    from botocore.exceptions import ClientError

    assert isinstance(raised.value.__cause__, ClientError)
    assert _keys(s3, BACKUP) == ["ok.png"]
    assert "variants/320/ok.png" in _keys(s3, UPLOADS)
    outcomes = [json.loads(line)["outcome"] for line in capsys.readouterr().out.splitlines()]
    assert outcomes == ["failed", "resized"]


def test_an_event_of_the_backup_bucket_is_ignored(s3):
    s3.put_object(Bucket=BACKUP, Key="a.png", Body=_png_with_alpha())
    summary = handler.handler({"Records": [_record(BACKUP, "a.png")]}, None)
    assert summary["outcomes"] == {"ignored": 1}
    assert _keys(s3, BACKUP) == ["a.png"]


def test_log_lines_are_written_once_not_again_through_the_root_logger(s3, capsys):
    import logging

    s3.put_object(Bucket=UPLOADS, Key="a.png", Body=_png_with_alpha())
    root = logging.getLogger()
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record)

    collector = Collect(level=logging.DEBUG)
    root.addHandler(collector)
    try:
        handler.handler({"Records": [_record(UPLOADS, "a.png")]}, None)
    finally:
        root.removeHandler(collector)
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert not [r for r in seen if r.name == handler.LOGGER_NAME]
    assert logging.getLogger(handler.LOGGER_NAME).propagate is False


def test_a_record_that_is_not_an_object_creation_is_ignored(s3):
    s3.put_object(Bucket=UPLOADS, Key="a.png", Body=_png_with_alpha())
    summary = handler.handler(
        {"Records": [_record(UPLOADS, "a.png", event="ObjectRemoved:Delete")]}, None
    )
    assert summary["outcomes"] == {"ignored": 1}
    assert _keys(s3, BACKUP) == []


def test_a_versioned_upload_copies_the_version_of_the_event(s3):
    s3.put_bucket_versioning(Bucket=UPLOADS, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=UPLOADS, Key="v.png", Body=_png_with_alpha(300, 150))["VersionId"]
    s3.put_object(Bucket=UPLOADS, Key="v.png", Body=_png_with_alpha(100, 100))
    record = _record(UPLOADS, "v.png")
    record["s3"]["object"]["versionId"] = first

    handler.handler({"Records": [record]}, None)

    assert _open(s3.get_object(Bucket=BACKUP, Key="v.png")["Body"].read()).size == (300, 150)
    assert _open(s3.get_object(Bucket=UPLOADS, Key="variants/320/v.png")["Body"].read()).size == (
        300,
        150,
    )
