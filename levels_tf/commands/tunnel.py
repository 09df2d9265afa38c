"""`levels-tf tunnel db --env ENV [--local-port N] [--reader | --endpoint HOST]`:
the double SSH tunnel of the case study, laptop -> bastion -> application
server -> database. The bastion only carries SSH; the forward to the
database is opened from an application server the database admits.

`--endpoint HOST` forwards to another cluster's endpoint through the same
hops: one in ENV's database security groups, such as the copy `levels-tf db
restore` makes (it shares the live cluster's subnet group, security groups
and port). The checks are the live cluster's groups', so they hold for it."""

from __future__ import annotations

import errno
import socket
import time
from pathlib import Path

from .. import access, console, process
from ..access_lookup import Lookup, environments, login_user
from ..errors import LevelsError, UsageError
from ..options import RenderOptions, resolve
from ..terraform import EngineChoice
from ..validation import load_config

READY_TIMEOUT = 60  # seconds ssh gets to log in through both hops and listen


def tunnel(
    config_path: Path,
    env: str,
    *,
    local_port: int | None,
    reader: bool,
    as_json: bool,
    endpoint: str | None = None,
    user: str | None,
    ssh_config_file: Path | None,
    options: RenderOptions,
    engine: EngineChoice,
) -> int:
    """Open the tunnel to `env`'s database (writer endpoint, or reader with
    `reader`, or `endpoint`: another cluster's in the same security groups) on 127.0.0.1:`local_port` (default: the database's port), say
    how to connect, and hold it until Ctrl-C or SIGTERM, which end every ssh
    process of it. AccessRefused (exit 1) when the security groups admit
    the bastion to the database, or no running server may be the second hop;
    LevelsError when ssh fails or ends."""
    if endpoint is not None and reader:
        raise UsageError("--endpoint and --reader name two targets: give one of them")
    # What the command line says is checked before the tree's freshness and AWS are:
    # options that contradict the tree first, as every command that reads it does.
    config = load_config(config_path)
    resolve(config_path.parent, options, config.infra.state.backend)
    (env,) = environments(config, env)
    login = login_user(config, user)
    group = config.infra.group_of(env)
    if config.environments[env].database is None:
        raise UsageError(
            f"environment {env} of {config.path} has no database: choose an environment that has one"
        )
    lookup = Lookup(config_path, options, engine)
    config = lookup.config
    bastion = lookup.bastion(group)
    database = lookup.database(group)
    candidates = lookup.servers(env)
    ids = {database.security_group_id, bastion.security_group_id}
    ids.update(g for server in candidates for g in server.security_group_ids)
    groups = lookup.aws.security_groups(sorted(i for i in ids if i))
    access.check_bastion(bastion, database, groups)
    server = access.choose_server(candidates, bastion, database, groups, env)
    port = database.port if local_port is None else local_port
    _check_free(port)
    target = endpoint or (database.reader_endpoint if reader else database.endpoint)
    argv = access.tunnel_argv(
        user=login,
        bastion=bastion,
        server=server,
        target=target,
        port=database.port,
        local_port=port,
        ssh_config_file=str(ssh_config_file) if ssh_config_file else None,
    )
    what = (
        f"endpoint {target}:{database.port} (beside {env}'s database)"
        if endpoint
        else f"{'reader' if reader else 'writer'} endpoint {target}:{database.port} of {env}"
    )
    console.err(
        f"opening {what} "
        f"on {access.LOOPBACK}:{port}: through bastion {bastion.alias} ({bastion.address}) "
        f"and server {server.alias} ({server.address}, {server.instance_id})"
    )
    held = process.hold(argv, advice="install the OpenSSH client (apt-get install openssh-client)")
    try:
        _wait_ready(held, port)
        if as_json:
            # JSON Lines: this event now, the end or error event (cli._run) when it stops.
            console.report_json_line(
                {
                    "event": "open",
                    "environment": env,
                    "endpoint": target,
                    "reader": reader,
                    "local_address": access.LOOPBACK,
                    "local_port": port,
                    "bastion": bastion.address,
                    "server": server.address,
                    "instance_id": server.instance_id,
                    "pid": held.pid,
                }
            )
        else:
            console.out(f"connect with: mysql -h {access.LOOPBACK} -P {port} -u <user> -p")
            console.err("the tunnel stays open until Ctrl-C")
        code = held.wait()
        raise LevelsError(_ended(held, code))
    finally:
        held.stop()


def _check_free(port: int) -> None:
    """UsageError when 127.0.0.1:`port` is taken: ssh could not listen there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((access.LOOPBACK, port))
        except OSError as exc:
            why = "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise UsageError(
                f"{access.LOOPBACK}:{port} is {why}: give --local-port with a free port"
            ) from None


def _wait_ready(held: process.Held, port: int) -> None:
    """Return once 127.0.0.1:`port` accepts connections; LevelsError when ssh
    ends first or does not listen within READY_TIMEOUT seconds."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not held.running():
            raise LevelsError(_ended(held, held.returncode))
        try:
            with socket.create_connection((access.LOOPBACK, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise LevelsError(f"ssh did not open {access.LOOPBACK}:{port} in {READY_TIMEOUT} s")


def _ended(held: process.Held, code: int | None) -> str:
    detail = [line.strip() for line in held.errors().splitlines() if line.strip()][-3:]
    said = ": " + " / ".join(detail) if detail else ""
    hint = (
        "; connect once with ssh to check and accept the host keys"
        if "Host key verification failed" in held.errors()
        else "; check that ssh reaches the bastion and the server (levels-tf ssh-config)"
    )
    return f"the tunnel's ssh ended (exit {code}){said}{hint}"
