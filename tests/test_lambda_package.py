"""Lambda deployment zips are reproducible to the byte, and what Lambda needs is in them."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import zipfile
import zipimport
from io import BytesIO
from pathlib import Path

import pytest

from levels_tf import lambda_package, process
from levels_tf.errors import LevelsError
from levels_tf.functions import FUNCTIONS
from levels_tf.lambda_package import PackageError, build_zip, fetch_dependencies, python_version_of

IMAGE_VARIANTS = FUNCTIONS["image-variants"]

TREE = {
    "handler.py": b"def handler(event, context):\n    return 'ok'\n",
    "lib/__init__.py": b"",
    "lib/util.py": b"X = 1\n" * 50,
    "lib/data/table.json": b'{"a": 1}\n',
    "bin-tool": b"#!/bin/sh\necho hi\n",
    "z\u00fcrich.txt": "gr\u00fcezi\n".encode(),
}


def _write_tree(root: Path, order: list[str], *, mtime: float, umask_mode: int) -> Path:
    """TREE under `root`, files created in `order`, every mtime `mtime`, modes from `umask_mode`."""
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(TREE[name])
        path.chmod(umask_mode | (0o111 if name == "bin-tool" else 0))
        os.utime(path, (mtime, mtime))
    # noise that must never reach the zip
    cache = root / "lib" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "util.cpython-311.pyc").write_bytes(os.urandom(16))
    (cache / f"util.cpython-311.pyc.{int(mtime)}").write_bytes(
        os.urandom(16)
    )  # importlib's temp name
    (root / "lib" / "stray.pyc").write_bytes(os.urandom(16))
    for folder in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        os.utime(folder, (mtime, mtime))
    return root


def _deps(root: Path, *, record: bytes, installer_path: str) -> Path:
    """A fake `pip install --target` folder with the machine-specific parts pip leaves."""
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_bytes(b"VALUE = 42\n")
    (root / "pkg" / "_native.so").write_bytes(b"\x7fELF" + bytes(range(200)))
    info = root / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_bytes(b"Name: pkg\nVersion: 1.0\n")
    (info / "RECORD").write_bytes(record)
    (info / "direct_url.json").write_text(f'{{"url": "file://{installer_path}"}}')
    (root / "bin").mkdir()
    (root / "bin" / "pkg-cli").write_text(f"#!{installer_path}/bin/python\n")
    return root


@pytest.fixture
def two_trees(tmp_path):
    first = _write_tree(
        tmp_path / "one" / "src", sorted(TREE), mtime=1_000_000_000, umask_mode=0o644
    )
    second = _write_tree(
        tmp_path / "another" / "place" / "src",
        sorted(TREE, reverse=True),
        mtime=1_700_000_000,
        umask_mode=0o600,
    )
    deps_first = _deps(
        tmp_path / "one" / "deps",
        record=b"pkg/__init__.py,sha256=a,11\n",
        installer_path="/home/a/venv",
    )
    deps_second = _deps(
        tmp_path / "another" / "deps",
        record=b"pkg/__init__.py,sha256=b,12\n",
        installer_path="/opt/b",
    )
    return (first, deps_first), (second, deps_second)


def test_same_inputs_in_other_places_orders_times_and_modes_give_identical_bytes(two_trees):
    (first, deps_first), (second, deps_second) = two_trees
    assert build_zip(first, None) == build_zip(second, None)
    assert build_zip(first, deps_first) == build_zip(second, deps_second)


def test_a_change_of_content_or_executable_bit_changes_the_bytes(two_trees):
    (first, _), (second, _) = two_trees
    before = build_zip(first, None)
    (second / "lib" / "util.py").write_bytes(b"X = 2\n")
    assert build_zip(second, None) != before
    (second / "lib" / "util.py").write_bytes(TREE["lib/util.py"])
    assert build_zip(second, None) == before
    (second / "handler.py").chmod(0o755)
    assert build_zip(second, None) != before


def test_entries_are_sorted_dated_1980_with_fixed_permissions(two_trees):
    (first, deps), _ = two_trees
    archive = zipfile.ZipFile(BytesIO(build_zip(first, deps)))
    infos = archive.infolist()
    names = [info.filename for info in infos]

    assert names == sorted(names)
    assert names == [
        "bin-tool",
        "handler.py",
        "lib/",
        "lib/__init__.py",
        "lib/data/",
        "lib/data/table.json",
        "lib/util.py",
        "pkg-1.0.dist-info/",
        "pkg-1.0.dist-info/METADATA",
        "pkg/",
        "pkg/__init__.py",
        "pkg/_native.so",
        "z\u00fcrich.txt",
    ]
    modes = {info.filename: info.external_attr >> 16 for info in infos}
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
        assert info.create_system == 3, info.filename
        if info.is_dir():
            assert modes[info.filename] == stat.S_IFDIR | 0o755, info.filename
        else:
            assert info.compress_type == zipfile.ZIP_DEFLATED, info.filename
            expected = 0o755 if info.filename == "bin-tool" else 0o644
            assert modes[info.filename] == stat.S_IFREG | expected, info.filename
            if info.filename in TREE:
                assert archive.read(info) == TREE[info.filename], info.filename
    assert archive.read("lib/util.py") == TREE["lib/util.py"]
    assert archive.getinfo("lib/util.py").compress_size < len(TREE["lib/util.py"])
    assert archive.testzip() is None


def test_source_and_dependencies_must_not_overlap(tmp_path):
    source = _write_tree(tmp_path / "src", sorted(TREE), mtime=1e9, umask_mode=0o644)
    deps = _deps(tmp_path / "deps", record=b"", installer_path="/x")
    (deps / "handler.py").write_text("shadow\n")
    with pytest.raises(PackageError, match=r"handler\.py"):
        build_zip(source, deps)


def test_links_to_folders_and_broken_links_are_refused(tmp_path):
    source = _write_tree(tmp_path / "src", sorted(TREE), mtime=1e9, umask_mode=0o644)
    (source / "loop").symlink_to(source, target_is_directory=True)
    with pytest.raises(PackageError, match="link to a folder"):
        build_zip(source, None)
    (source / "loop").unlink()
    (source / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(PackageError, match="not a regular file"):
        build_zip(source, None)


def test_a_missing_or_empty_source_is_an_error(tmp_path):
    with pytest.raises(PackageError, match="not a folder"):
        build_zip(tmp_path / "nope", None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackageError, match="no files"):
        build_zip(tmp_path / "empty", None)


def _require_pillow() -> None:
    try:
        import PIL  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise  # CI installs .[test], which has Pillow
        pytest.skip("Pillow is not installed: pip install -e '.[test]'")


def test_the_image_variants_zip_has_the_handler_at_its_root_and_it_imports(tmp_path):
    _require_pillow()
    data = build_zip(IMAGE_VARIANTS.source_dir, None)
    assert build_zip(IMAGE_VARIANTS.source_dir, None) == data
    names = zipfile.ZipFile(BytesIO(data)).namelist()
    assert names == ["handler.py"], "only the handler: no __pycache__ from the tests' own imports"
    zip_path = tmp_path / "image-variants.zip"
    zip_path.write_bytes(data)

    module = _zipimport(zip_path, "handler")
    assert module.__file__ == os.path.join(str(zip_path), "handler.py")
    assert callable(module.handler)
    variants = module.make_variants(_tiny_png(), [4])
    assert variants[4][1] == "image/png"

    # In a clean interpreter, as Lambda does: the handler must not need levels_tf.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import handler; "
        "assert handler.__file__.startswith(sys.argv[1]), handler.__file__; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'levels_tf'], 'imports levels_tf'; "
        "assert 'boto3' not in sys.modules, 'boto3 imported before first use'"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(zip_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def _zipimport(zip_path: Path, name: str):
    import importlib.util

    spec = zipimport.zipimporter(str(zip_path)).find_spec(name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"_zipped_{name}"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[f"_zipped_{name}"]
    return module


def _tiny_png() -> bytes:
    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


# -- pip ------------------------------------------------------------------------------


def test_pip_failure_is_a_levels_error_with_pip_s_message(tmp_path, monkeypatch):
    calls = []

    def fake_run(argv, **kwargs):
        argv = list(argv)
        calls.append((argv, kwargs))
        return subprocess.CompletedProcess(
            argv, 1, "", "ERROR: No matching distribution found for pillow==0.0.0\n"
        )

    monkeypatch.setattr(process.subprocess, "run", fake_run)
    with pytest.raises(PackageError) as raised:
        fetch_dependencies(["pillow==0.0.0"], tmp_path / "t", python_version="3.12")
    assert isinstance(raised.value, LevelsError)
    assert "No matching distribution found for pillow==0.0.0" in str(raised.value)
    assert "CPython 3.12 on manylinux2014_x86_64" in str(raised.value)

    argv, kwargs = calls[0]
    assert os.path.samefile(argv[0], sys.executable)
    assert argv[1:4] == ["-m", "pip", "install"]
    joined = " ".join(argv)
    for part in (
        f"--target {tmp_path / 't'}",
        "--only-binary=:all:",
        "--platform manylinux2014_x86_64",
        "--python-version 3.12",
        "--implementation cp",
        "--no-compile",
    ):
        assert part in joined
    assert argv[-1] == "pillow==0.0.0"
    assert "shell" not in kwargs or kwargs["shell"] is False


def test_pip_that_cannot_run_or_hangs_is_a_package_error(tmp_path, monkeypatch):
    def missing(argv, **kwargs):
        raise FileNotFoundError(2, "No such file", argv[0])

    monkeypatch.setattr(process.subprocess, "run", missing)
    with pytest.raises(PackageError, match="could not run pip"):
        fetch_dependencies(["pillow"], tmp_path / "t", python_version="3.12")

    def hangs(argv, **kwargs):
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

    monkeypatch.setattr(process.subprocess, "run", hangs)
    with pytest.raises(PackageError, match="did not finish"):
        fetch_dependencies(["pillow"], tmp_path / "t", python_version="3.12", timeout=1)


def test_a_real_pip_failure_is_reported(tmp_path, monkeypatch):
    # pip with no index at all fails at once, without touching the network.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(PackageError, match=r"(?s)exit 1\).*definitely-not-a-package-xyz"):
        fetch_dependencies(
            ["definitely-not-a-package-xyz==1"], tmp_path / "t", python_version="3.12"
        )


@pytest.mark.parametrize("requirements", [[], ["--index-url=http://evil"], ["  "], ["-r", "x.txt"]])
def test_requirements_that_are_options_or_empty_are_refused(tmp_path, requirements):
    with pytest.raises(PackageError):
        fetch_dependencies(requirements, tmp_path / "t", python_version="3.12")


def test_the_target_must_be_empty(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "old.py").write_text("")
    with pytest.raises(PackageError, match="empty"):
        fetch_dependencies(["pillow"], tmp_path / "t", python_version="3.12")


def test_runtime_to_python_version():
    assert python_version_of("python3.12") == "3.12"
    assert python_version_of("python3.13") == "3.13"
    with pytest.raises(PackageError):
        python_version_of("nodejs20.x")


def test_image_variants_pins_exactly_one_pillow():
    (requirement,) = IMAGE_VARIANTS.requirements
    name, _, version = requirement.partition("==")
    assert (
        name.lower() == "pillow" and version.count(".") == 2 and version.replace(".", "").isdigit()
    )
    assert IMAGE_VARIANTS.handler == "handler.handler"
    assert (IMAGE_VARIANTS.source_dir / "handler.py").is_file()


_OFFLINE_SIGNS = (
    "NewConnectionError",
    "Max retries exceeded",
    "ConnectTimeout",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ProxyError",
    "Failed to establish a new connection",
)


@pytest.mark.slow
def test_real_pillow_for_lambda_is_fetched_and_packaged_reproducibly(tmp_path):
    zips = []
    for attempt in ("first", "second"):
        try:
            zips.append(
                lambda_package.package_function(
                    "image-variants", tmp_path / attempt, runtime="python3.12"
                )
            )
        except PackageError as error:
            if any(sign in str(error) for sign in _OFFLINE_SIGNS):
                message = f"PyPI is unreachable: {str(error).splitlines()[-1]}"
                if os.environ.get("CI"):
                    pytest.fail(message + " (CI must reach it)")
                pytest.skip(message)
            raise
    assert zips[0] == zips[1], "two fetches and builds must give the same bytes"

    archive = zipfile.ZipFile(BytesIO(zips[0]))
    names = archive.namelist()
    assert "handler.py" in names
    assert "PIL/__init__.py" in names and "PIL/Image.py" in names
    assert [n for n in names if n.startswith("pillow.libs/libjpeg")], (
        "the wheel's bundled libraries travel too"
    )
    native = [n for n in names if n.startswith("PIL/_imaging.") and n.endswith(".so")]
    assert native == ["PIL/_imaging.cpython-312-x86_64-linux-gnu.so"], native
    pinned = IMAGE_VARIANTS.requirements[0].split("==")[1]
    assert f"pillow-{pinned}.dist-info/METADATA" in names
    assert not [
        n for n in names if "__pycache__" in n or n.endswith((".pyc", "/RECORD", "direct_url.json"))
    ]
    assert not [n for n in names if n.startswith("bin/")]
    assert len(zips[0]) < 50 * 1024 * 1024, "Lambda refuses direct uploads over 50 MB"
    print("image-variants zip:", len(zips[0]), "bytes, sha256", hashlib.sha256(zips[0]).hexdigest())


@pytest.mark.slow
def test_package_command_builds_the_same_zip_twice(run, reference_copy):
    """`levels-tf package` fetches Pillow for Lambda and writes build/functions/<name>.zip once."""
    first = run("package", config=reference_copy)
    if (
        first.exit_code != 0
        and "pip could not install" in first.stderr
        and not os.environ.get("CI")
    ):
        pytest.skip("PyPI is not reachable from here")
    assert first.exit_code == 0, first.stderr
    target = reference_copy.parent / "build" / "functions" / "image-variants.zip"
    data = target.read_bytes()
    names = zipfile.ZipFile(target).namelist()
    assert "handler.py" in names and any(n.startswith("PIL/") for n in names)
    mtime = target.stat().st_mtime_ns
    second = run("package", config=reference_copy)
    assert second.exit_code == 0 and "(unchanged)" in second.stdout
    assert target.read_bytes() == data and target.stat().st_mtime_ns == mtime


def test_package_refuses_an_unknown_function(run, reference_copy):
    result = run("package", "nope", config=reference_copy)
    assert result.exit_code == 2
    assert "no function 'nope'" in result.stderr
    assert not (reference_copy.parent / "build").exists()
