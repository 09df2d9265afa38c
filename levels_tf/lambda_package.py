"""Deterministic Lambda deployment zips: the same inputs give the same bytes.

A function's zip is its source folder merged with the packages pip installed
for the Lambda platform (`fetch_dependencies`), both at the root of the zip.
`build_zip` makes the archive reproducible: entries in sorted order, every
timestamp 1980-01-01 00:00:00, permissions 0644 (0755 for folders and
executables), Unix as the creating system, DEFLATE at a fixed level, and no
`__pycache__`, `*.pyc` or the parts of pip's records that name the machine
(`RECORD`, `direct_url.json`, `bin/` with its absolute shebangs). The bytes
depend only on the files' paths, contents and executable bits, and on the
zlib of the Python that builds it (the one used everywhere here).
"""

from __future__ import annotations

import io
import os
import stat
import sys
import zipfile
from pathlib import Path

from . import process
from .errors import LevelsError
from .functions import FUNCTIONS

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 9
FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755
LAMBDA_PLATFORM = "manylinux2014_x86_64"

_SKIP_DIRS = {"__pycache__", ".git", ".pytest_cache", ".mypy_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
# Files pip writes into *.dist-info that differ from one install to the next.
_SKIP_DIST_INFO = {"RECORD", "direct_url.json"}


class PackageError(LevelsError):
    """A Lambda package could not be built; says what and why."""


def _collect(root: Path, *, dependencies: bool) -> dict[str, Path]:
    """{archive name: file} for every file under `root` that belongs in the zip."""
    if not root.is_dir():
        raise PackageError(f"{root} is not a folder")
    files: dict[str, Path] = {}
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(folder)
        relative = here.relative_to(root)
        keep = []
        for name in dirnames:
            path = here / name
            if name in _SKIP_DIRS or (dependencies and relative == Path(".") and name == "bin"):
                continue
            if path.is_symlink():
                raise PackageError(
                    f"{path} is a link to a folder; a Lambda package holds real files only"
                )
            keep.append(name)
        dirnames[:] = keep
        for name in filenames:
            path = here / name
            if name.endswith(_SKIP_SUFFIXES):
                continue
            if name in _SKIP_DIST_INFO and here.name.endswith(".dist-info"):
                continue
            if not path.is_file():
                raise PackageError(f"{path} is not a regular file (a broken link, a socket, ...)")
            files[(relative / name).as_posix()] = path
    return files


def _info(name: str, mode: int, *, directory: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.create_system = 3  # Unix, so that unzip and Lambda read the permissions
    if directory:
        info.external_attr = ((stat.S_IFDIR | mode) << 16) | 0x10  # 0x10: MS-DOS directory flag
        info.compress_type = zipfile.ZIP_STORED
    else:
        info.external_attr = (stat.S_IFREG | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
    return info


def build_zip(source_dir: Path, dependencies_dir: Path | None) -> bytes:
    """The deployment zip of a function: `source_dir` and `dependencies_dir`
    (a `pip install --target` folder) merged at the root, reproducibly.

    A file present in both is an error: the source must not shadow a package.
    """
    files = _collect(Path(source_dir), dependencies=False)
    if dependencies_dir is not None:
        packages = _collect(Path(dependencies_dir), dependencies=True)
        clashes = sorted(set(files) & set(packages))
        if clashes:
            raise PackageError(
                f"{source_dir} and its dependencies both have {', '.join(clashes[:5])}"
            )
        files.update(packages)
    if not files:
        raise PackageError(f"{source_dir} has no files to package")

    directories = {
        parent.as_posix() + "/"
        for name in files
        for parent in Path(name).parents
        if parent != Path(".")
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in sorted(directories | set(files)):
            if name.endswith("/"):
                archive.writestr(_info(name, DIR_MODE, directory=True), b"")
                continue
            path = files[name]
            mode = EXEC_MODE if path.stat().st_mode & 0o111 else FILE_MODE
            archive.writestr(_info(name, mode), path.read_bytes(), compresslevel=COMPRESS_LEVEL)
    return out.getvalue()


def python_version_of(runtime: str) -> str:
    """'python3.12' -> '3.12', the form pip's --python-version takes."""
    if not runtime.startswith("python") or not runtime[len("python") :].replace(".", "").isdigit():
        raise PackageError(f"{runtime!r} is not a Python Lambda runtime")
    return runtime[len("python") :]


def fetch_dependencies(
    requirements: list[str],
    target: Path,
    *,
    python_version: str,
    platform: str = LAMBDA_PLATFORM,
    timeout: float = 900,
) -> None:
    """pip-install `requirements` into `target` for the Lambda platform: binary
    wheels only, for CPython `python_version` on `platform`, without compiling.

    `target` must be absent or empty, so nothing stale reaches the zip.
    """
    requirements = list(requirements)
    if not requirements:
        raise PackageError("no requirements to install")
    for requirement in requirements:
        if not requirement.strip() or requirement.lstrip().startswith("-"):
            raise PackageError(
                f"{requirement!r} is not a requirement (options are not accepted here)"
            )
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PackageError(f"{target} must be an empty folder or not exist yet")
    command = [
        sys.executable, "-m", "pip", "install",
        "--target", str(target),
        "--only-binary=:all:",
        "--platform", platform,
        "--python-version", python_version,
        "--implementation", "cp",
        "--no-compile",
        "--no-input",
        "--disable-pip-version-check",
        *requirements,
    ]  # fmt: skip
    try:
        result = process.run(command, timeout=timeout, check=False)
    except process.ToolError as error:
        raise PackageError(f"could not run pip for {', '.join(requirements)}: {error}") from None
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()
        details = "\n".join(output[-20:])
        raise PackageError(
            f"pip could not install {', '.join(requirements)} for CPython {python_version} on {platform}"
            f" (exit {result.returncode}):\n{details}"
        )


def package_function(name: str, work_dir: Path, *, runtime: str = "python3.12") -> bytes:
    """The deployment zip of function `name` (a key of FUNCTIONS) for `runtime`,
    fetching its pinned packages into `work_dir`/dependencies."""
    try:
        function = FUNCTIONS[name]
    except KeyError:
        raise PackageError(f"no function {name!r}; known: {', '.join(sorted(FUNCTIONS))}") from None
    dependencies = None
    if function.requirements:
        dependencies = Path(work_dir) / "dependencies"
        fetch_dependencies(
            list(function.requirements), dependencies, python_version=python_version_of(runtime)
        )
    return build_zip(function.source_dir, dependencies)


def build_function(code: str, runtime: str) -> bytes:
    """package_function in a scratch folder of its own, removed afterwards."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="levels-tf-package-") as work:
        return package_function(code, Path(work), runtime=runtime)
