from __future__ import annotations

from pathlib import Path

from .. import console, provider_locks
from ..options import RenderOptions
from ..terraform import LOCK_FILE, EngineChoice
from ..workspace import open_workspace


def lock(
    config_path: Path,
    names: tuple[str, ...],
    all_stacks: bool,
    *,
    options: RenderOptions,
    engine: EngineChoice,
    sources: provider_locks.Sources,
    since: str | None = None,
    as_json: bool = False,
) -> int:
    """Write each stack's .terraform.lock.hcl with the provider checksums of every
    platform in terraform.platforms, or none of them when a platform cannot be fetched.

    With `as_json`, ends with `{"platforms": [str], "source": str, "stacks":
    [{"name": str, "path": str (the lock file), "changed": bool,
    "providers": {source address: version}}]}`."""
    workspace = open_workspace(config_path, names, all_stacks, options, engine, since=since)
    platforms = ", ".join(workspace.config.infra.terraform.platforms)
    console.out(f"locking providers for {platforms} from {sources.describe()}")
    locks = provider_locks.compute(workspace, sources)
    rows = []
    for name, changed in provider_locks.write(workspace, locks).items():
        console.out(f"{name}: {LOCK_FILE} {'written' if changed else 'unchanged'}")
        rows.append(
            {
                "name": name,
                "path": str(workspace.out / "stacks" / name / LOCK_FILE),
                "changed": changed,
                "providers": provider_locks.versions(locks[name]),
            }
        )
    console.out(
        "commit the lock files: every `terraform init` of the team then verifies the same providers"
    )
    if as_json:
        console.report_json(
            {
                "platforms": list(workspace.config.infra.terraform.platforms),
                "source": sources.describe(),
                "stacks": rows,
            }
        )
    return 0
