"""A typed adapter for the packer binary.

Everything levels-tf knows about Packer's command line, its output and its
manifest file is here; every run goes through process.py. Packer 1.6.6
(Debian's) has the amazon builder built in; 1.7 and newer need
`packer init` of the plugin requirements first (README, "Images and
Packer"), which `init` does only there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import cache_dir, process

ADVICE = "apt-get install packer"
INIT_FROM = (1, 7, 0)  # the first Packer with `packer init`
VERSION_TIMEOUT = 60
INIT_TIMEOUT = 15 * 60
BUILD_TIMEOUT = 3 * 3600  # a real build: launch, provision, snapshot, copy
TAIL_LINES = 20  # of the output of a failed run, when packer listed no errors
ERROR_LINES = 40  # of packer's list of errors
ERRORS_HEADING = "==> Some builds didn't complete successfully and had errors:"

OnLine = Callable[[str], None]

_VERSION_RE = re.compile(r"(?:^|\s)v?(\d+)\.(\d+)\.(\d+)\b")
_VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_FOUND_AMI_RE = re.compile(r"Found Image ID: (ami-[0-9a-f]+)\s*$")


class PackerError(process.ToolError):
    """Packer could not be found, or one of its runs failed; `log` is the file
    holding everything that run printed, when it was kept."""

    def __init__(self, message: str, log: Path | None = None):
        super().__init__(message)
        self.log = log

    def lines(self) -> list[str]:
        return [*super().lines(), *([f"its output is in {self.log}"] if self.log else [])]


@dataclass(frozen=True)
class Build:
    """What one successful `packer build` printed."""

    template: str
    only: str
    lines: tuple[str, ...]

    def source_ami(self) -> str | None:
        """The AMI a source_ami_filter chose (packer's "Found Image ID" line), if any."""
        for line in reversed(self.lines):
            match = _FOUND_AMI_RE.search(line)
            if match:
                return match.group(1)
        return None


@dataclass(frozen=True)
class ManifestBuild:
    """One build of the latest run in a manifest post-processor's file."""

    run_uuid: str
    name: str
    artifact_id: str
    custom_data: Mapping[str, str] = field(default_factory=dict)

    def amis(self) -> dict[str, str]:
        """region -> AMI of an amazon artifact id ("us-east-1:ami-1,eu-west-1:ami-2")."""
        result = {}
        for part in self.artifact_id.split(","):
            region, sep, ami = part.strip().partition(":")
            if not sep or not region or not ami.startswith("ami-"):
                raise PackerError(
                    f"unexpected artifact id {self.artifact_id!r} in the manifest: expected REGION:ami-..."
                )
            result[region] = ami
        return result


@dataclass(frozen=True)
class Packer:
    """One packer binary and its version."""

    binary: str
    version: tuple[int, int, int]
    env: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def locate(cls, explicit: str | os.PathLike | None = None) -> Packer:
        """packer from an explicit path or name (--packer-bin), else PATH; asks it its version."""
        if explicit is None:
            try:
                binary = process.find("packer", ADVICE)
            except process.ToolError as exc:
                raise PackerError(str(exc)) from None
        else:
            found = shutil.which(os.fspath(explicit))
            if found is None:
                raise PackerError(
                    f"packer is not installed at {os.fspath(explicit)} (no such program); {ADVICE}"
                )
            binary = os.path.abspath(found)  # builds run in another folder
        env = dict(os.environ)
        env.setdefault("CHECKPOINT_DISABLE", "1")  # no update check against HashiCorp's servers
        env["PACKER_NO_COLOR"] = "1"
        return cls(binary, _version(binary, env), env)

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def needs_init(self) -> bool:
        """Packer 1.7+ installs the amazon plugin with `packer init`; 1.6 has it built in."""
        return self.version >= INIT_FROM

    def init(self, folder: Path, *, cwd: Path, on_line: OnLine | None = None) -> bool:
        """`packer init FOLDER` (the plugin requirements) on Packer 1.7+; before 1.7
        there is nothing to install and nothing is run. True when it ran."""
        if not self.needs_init:
            return False
        self._stream(
            [self.binary, "init", str(folder)],
            cwd,
            on_line,
            process.timeout_setting(INIT_TIMEOUT),
            f"packer init {folder}",
            cache_dir.new_log("packer", "init"),
        )
        return True

    def build(
        self,
        template: str | os.PathLike,
        *,
        only: str,
        variables: Mapping[str, str],
        cwd: Path,
        on_line: OnLine | None = None,
        timeout: float | None = None,
    ) -> Build:
        """`packer build -only=ONLY -var K=V ... TEMPLATE` in `cwd`, each output line to `on_line`.

        Its output is kept in a log named after the template's image
        (cache_dir.new_log); past `timeout` seconds (default
        $LEVELS_TF_TIMEOUT, else BUILD_TIMEOUT) Packer is stopped as
        process.stream says (SIGTERM: it cancels the build and deletes what
        it made; SIGKILL after a grace), and a PackerError names the build."""
        argv = [self.binary, "build", "-color=false", f"-only={only}"]
        for name, value in variables.items():
            if not _VARIABLE_RE.fullmatch(name):
                raise ValueError(f"not a packer variable name: {name!r}")
            argv += ["-var", f"{name}={value}"]
        argv.append(os.fspath(template))
        what = f"packer build of {os.fspath(template)} ({only})"
        limit = process.timeout_setting(BUILD_TIMEOUT) if timeout is None else timeout
        log = cache_dir.new_log(Path(template).name.split(".")[0], "build")
        return Build(os.fspath(template), only, self._stream(argv, cwd, on_line, limit, what, log))

    def _stream(
        self,
        argv: list[str],
        cwd: Path,
        on_line: OnLine | None,
        timeout: float,
        what: str,
        log: Path | None,
    ) -> tuple[str, ...]:
        try:
            result = process.stream(
                argv,
                on_line or _ignore,
                timeout=timeout,
                cwd=cwd,
                env=self.env,
                check=False,
                log=log,
            )
        except process.Stopped as stopped:
            raise PackerError(f"{what} {stopped.how}", log) from None
        except process.ToolError as exc:  # could not start
            raise PackerError(f"{what}: {exc}") from None
        lines = tuple(result.stdout.splitlines())
        if result.returncode != 0:
            raise PackerError(
                f"{what} failed (exit {result.returncode})" + _failure_detail(lines, result.stderr),
                log,
            )
        return lines


def _ignore(line: str) -> None:
    pass


def _failure_detail(stdout: tuple[str, ...], stderr: str) -> str:
    """Packer's own list of the errors when it printed one, else the end of its output."""
    shown = [line for line in (*stdout, *stderr.splitlines()) if line.strip()]
    start = next((i for i, line in enumerate(shown) if line.startswith(ERRORS_HEADING)), None)
    if start is not None:
        errors = [line for line in shown[start + 1 :] if not line.startswith("==> Builds finished")]
        if len(errors) > ERROR_LINES:
            errors = errors[:ERROR_LINES] + ["..."]
        return "; its errors:" + "".join(f"\n  {line}" for line in errors)
    tail = shown[-TAIL_LINES:]
    return "; the end of its output:" + "".join(f"\n  {line}" for line in tail) if tail else ""


def _version(binary: str, env: Mapping[str, str]) -> tuple[int, int, int]:
    try:
        result = process.run([binary, "version"], timeout=VERSION_TIMEOUT, env=env, check=False)
    except process.ToolError as exc:
        raise PackerError(f"{exc}; {ADVICE}") from None
    first = (result.stdout.strip() or result.stderr.strip() or "nothing").splitlines()[0]
    match = _VERSION_RE.search(first)
    if result.returncode != 0 or not match or "packer" not in first.lower():
        raise PackerError(
            f"{binary} does not look like packer: `{Path(binary).name} version` printed {first!r}; {ADVICE}"
        )
    major, minor, patch = (int(g) for g in match.groups())
    return (major, minor, patch)


def read_manifest(path: Path) -> list[ManifestBuild]:
    """The builds of the latest run (`last_run_uuid`) in a manifest file; [] when there is no file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PackerError(f"{path}: unreadable packer manifest: {exc}") from None
    try:
        last = data.get("last_run_uuid", "")
        builds = [
            ManifestBuild(
                run_uuid=build["packer_run_uuid"],
                name=build.get("name", ""),
                artifact_id=build.get("artifact_id", ""),
                custom_data={str(k): str(v) for k, v in (build.get("custom_data") or {}).items()},
            )
            for build in data.get("builds", [])
        ]
    except (AttributeError, KeyError, TypeError) as exc:
        raise PackerError(f"{path}: not a packer manifest ({type(exc).__name__}: {exc})") from None
    return [build for build in builds if last and build.run_uuid == last]
