"""The stacks' dependency lock files, kept for a whole team.

Each stack's `.terraform.lock.hcl` pins the provider versions and the
checksums `terraform init` accepts. Written by init on one machine it holds
that machine's platform only, and a teammate on another platform cannot
init. So the lock files are computed with `terraform providers lock` for
every platform in `terraform.platforms` of infra.yaml and committed with the
rendered tree.

A lock is computed in a scratch copy of the stack (Terraform writes only
there); the stacks' own lock files are written, by writer.py, only when
every stack's lock holds every platform: a lock missing a platform breaks
init there, so no such lock is ever written.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import writer
from .errors import LevelsError
from .terraform import LOCK_FILE, TerraformError
from .workspace import Workspace


@dataclass(frozen=True)
class Sources:
    """Where `terraform providers lock` fetches packages: each provider's
    origin registry, or a filesystem mirror (folder) or network mirror (URL)."""

    fs_mirror: Path | None = None
    net_mirror: str | None = None

    def describe(self) -> str:
        if self.fs_mirror is not None:
            return f"the filesystem mirror {self.fs_mirror}"
        if self.net_mirror is not None:
            return f"the network mirror {self.net_mirror}"
        return "the providers' registries"


class UnreachablePlatforms(LevelsError):
    """Some platforms' provider packages could not be fetched; nothing was written."""

    def __init__(self, stack: str, reasons: dict[str, str], platforms: list[str], sources: Sources):
        self.stack = stack
        self.reasons = reasons  # platform -> Terraform's message
        self.platforms = platforms
        self.sources = sources
        super().__init__(self.lines()[0])

    def lines(self) -> list[str]:
        missing = [p for p in self.platforms if p in self.reasons]
        reached = [p for p in self.platforms if p not in self.reasons]
        rows = [
            f"no lock file was written: the provider packages of {self.stack} for {', '.join(missing)} could not "
            f"be fetched from {self.sources.describe()}"
            + (f" ({', '.join(reached)} could)" if reached else "")
        ]
        rows += [f"  {platform}: {self.reasons[platform]}" for platform in missing]
        rows.append(
            "a lock without their checksums would fail `terraform init` on those platforms: run `levels-tf lock` "
            "where their packages can be fetched (the registry, or --fs-mirror/--net-mirror holding them), or list "
            "only the platforms the team uses in terraform.platforms of infra.yaml"
        )
        return rows


def compute(workspace: Workspace, sources: Sources) -> dict[str, bytes]:
    """The lock file of each selected stack (name -> bytes), for every platform in
    infra.yaml's `terraform.platforms`.

    Raises UnreachablePlatforms at the first stack some of whose platforms'
    packages cannot be fetched, naming each such platform with Terraform's
    reason, and TerraformError for any other failure.
    """
    platforms = list(workspace.config.infra.terraform.platforms)
    locks: dict[str, bytes] = {}
    for stack in workspace.stacks:
        try:
            locks[stack.name] = _lock(workspace, stack.name, platforms, sources)
        except TerraformError as error:
            found = _unreachable(workspace, stack.name, platforms, sources)
            if not found:
                raise TerraformError(
                    f"{stack.name}: terraform providers lock failed: {error}"
                ) from None
            raise UnreachablePlatforms(stack.name, found, platforms, sources) from None
    return locks


def write(workspace: Workspace, locks: dict[str, bytes]) -> dict[str, bool]:
    """Write each stack's lock file; stack name -> whether its bytes changed."""
    return {
        name: writer.write_artifact(workspace.out / "stacks" / name / LOCK_FILE, data)
        for name, data in locks.items()
    }


# A provider block of a lock file and the version it pins, as `terraform
# providers lock` writes them (the dependency lock file format:
# developer.hashicorp.com/terraform/language/files/dependency-lock).
_PROVIDER_VERSION = re.compile(r'^provider "([^"]+)" \{\n\s+version\s+= "([^"]+)"', re.MULTILINE)


def versions(lock: bytes) -> dict[str, str]:
    """The providers a lock file pins: source address (registry.terraform.io/hashicorp/aws) -> version."""
    return dict(_PROVIDER_VERSION.findall(lock.decode("utf-8")))


def _lock(workspace: Workspace, stack: str, platforms: list[str], sources: Sources) -> bytes:
    """The stack's lock for `platforms`, computed in a scratch copy of the stack and the modules."""
    with tempfile.TemporaryDirectory(prefix="levels-tf-lock-") as scratch:
        folder = Path(scratch) / "stacks" / stack
        folder.mkdir(parents=True)
        for path in workspace.out.joinpath("stacks", stack).glob("*.tf"):
            shutil.copy(path, folder / path.name)
        existing = workspace.out / "stacks" / stack / LOCK_FILE
        if existing.is_file():  # keeps the versions already chosen
            shutil.copy(existing, folder / LOCK_FILE)
        modules = workspace.out / "modules"
        if modules.is_dir():
            shutil.copytree(
                modules, Path(scratch) / "modules", ignore=shutil.ignore_patterns(".terraform")
            )
        workspace.terraform.providers_lock(
            folder, platforms, fs_mirror=sources.fs_mirror, net_mirror=sources.net_mirror
        )
        return (folder / LOCK_FILE).read_bytes()


def _unreachable(
    workspace: Workspace, stack: str, platforms: list[str], sources: Sources
) -> dict[str, str]:
    """Terraform's message for each platform whose packages cannot be fetched
    (Terraform stops at the first one, so each is tried alone)."""
    found = {}
    for platform in platforms:
        try:
            _lock(workspace, stack, [platform], sources)
        except TerraformError as error:
            found[platform] = _reason(str(error))
    return found


def _reason(message: str) -> str:
    """The part of Terraform's error that says what went wrong with the package."""
    marker = "could not be installed:"
    return message.split(marker, 1)[1].strip(" -") if marker in message else message
