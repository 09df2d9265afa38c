"""`levels-tf ssh-config [--env ENV] [--write PATH]`: the OpenSSH client
configuration of the bastions and the application servers behind them."""

from __future__ import annotations

import json
from pathlib import Path

from .. import access, console, writer
from ..access_lookup import Lookup, environments, login_user
from ..errors import UsageError
from ..options import RenderOptions, resolve
from ..terraform import EngineChoice
from ..validation import load_config


def ssh_config(
    config_path: Path,
    env: str | None,
    *,
    write: Path | None,
    as_json: bool,
    identity: str | None,
    user: str | None,
    options: RenderOptions,
    engine: EngineChoice,
) -> int:
    """Print (or with `write`, write atomically) the configuration: one Host
    per VPC group's bastion (`env`: its group only), one per running
    application server (`env`'s only) with ProxyJump through its bastion,
    and one per group's address patterns. `write` replaces only a file that
    ssh-config wrote: any other is refused (UsageError, nothing written)."""
    if write is not None and as_json:
        raise UsageError("--write and --json ask for two outputs: give one")
    if write is not None:
        _check_replaceable(write)
    if identity is not None:
        access.check_identity(identity)
    # What the command line says is checked before the tree's freshness and AWS are:
    # options that contradict the tree first, as every command that reads it does.
    config = load_config(config_path)
    resolve(config_path.parent, options, config.infra.state.backend)
    login = login_user(config, user)
    wanted = environments(config, env)
    lookup = Lookup(config_path, options, engine)
    config = lookup.config
    groups = [
        g for g, vpc in config.infra.vpc_groups.items() if set(vpc.environments) & set(wanted)
    ]
    bastions = [lookup.bastion(group) for group in groups]
    fleets = {
        group: [
            server
            for name in wanted
            if config.infra.group_of(name) == group
            for server in lookup.servers(name)
        ]
        for group in groups
    }
    patterns = access.vpc_patterns({g: vpc.cidr for g, vpc in config.infra.vpc_groups.items()})
    if as_json:
        console.out(json.dumps(_document(bastions, fleets, patterns, login), indent=2))
        return 0
    text = access.ssh_config(
        bastions, fleets, patterns, user=login, identity=identity, source=str(config.path)
    )
    if write is None:
        console.out(text, nl=False)
        return 0
    _check_replaceable(write)
    writer.write_atomic(write, text)
    hosts = len(bastions) + sum(len(servers) for servers in fleets.values())
    console.err(f"wrote {write}: {hosts} hosts; use it with `ssh -F {write} HOST` or Include it")
    return 0


def _check_replaceable(path: Path) -> None:
    """UsageError unless `path` is absent or a configuration ssh-config wrote."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise UsageError(f"--write {path}: a folder; give a file path") from None
    if not access.is_ours(text):
        raise UsageError(
            f"--write {path}: the file exists and was not written by levels-tf ssh-config; "
            "give a new path, or Include that file from yours"
        )


def _document(
    bastions: list[access.Bastion],
    fleets: dict[str, list[access.Server]],
    patterns: dict[str, list[str]],
    user: str,
) -> dict:
    """The hosts as JSON: {"user", "bastions": [...], "servers": [...], "patterns": {group: [...]}}."""
    return {
        "user": user,
        "bastions": [{"host": b.alias, "group": b.group, "address": b.address} for b in bastions],
        "servers": [
            {
                "host": s.alias,
                "fleet": s.fleet,
                "instance_id": s.instance_id,
                "address": s.address,
                "proxy_jump": b.alias,
            }
            for b in bastions
            for s in fleets.get(b.group, [])
        ],
        "patterns": {b.group: patterns.get(b.group, []) for b in bastions},
    }
