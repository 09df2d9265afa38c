"""Operator access against real parts: Debian's sshd started twice on
loopback (127.0.0.2 the bastion, 127.0.0.3 an application server) with
throwaway host and user keys, TCP services on 127.0.0.4 and 127.0.0.5
standing in for the database's writer and reader, the shared stack's outputs
in a state Terraform wrote, and the instances and security groups in moto.

`levels-tf tunnel db` runs as a process of its own, as an operator runs it,
and is stopped with SIGINT (Ctrl-C) or SIGTERM; /proc is scanned for any
ssh it leaves behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from levels_tf import names

from .conftest import ROOT, _skip_or_fail, require_tool

pytestmark = [pytest.mark.slow, pytest.mark.terraform]

SMALL = ROOT / "tests" / "configs" / "rehearsal-small" / "infra.yaml"
BASTION, SERVER, WRITER, READER = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
GROUP, ENV = "main", "staging"
LOGIN = "root"  # a real account of this machine: sshd logs in as a user it knows


def _free_port(*addresses: str) -> int:
    """A TCP port free on every one of `addresses`."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        try:
            for address in addresses[1:]:
                with socket.socket() as other:
                    other.bind((address, port))
        except OSError:
            continue
        return port
    raise AssertionError("no port free on " + ", ".join(addresses))


def _wait_listening(address: str, port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {address}:{port}: {log.read_text(errors='replace')}")


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(self.server.prefix + data)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    """Two sshd (bastion and server) on one free port, the writer and reader
    services on another, the user key, and known_hosts trusting the host key."""
    # Debian keeps sshd in /usr/sbin, which is not on every PATH.
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if sshd is None:
        sshd = require_tool("sshd")
    require_tool("ssh")
    require_tool("ssh-keygen")
    if os.geteuid() != 0:
        _skip_or_fail("sshd needs root to log in as another user; run the access tests as root")
    folder = tmp_path_factory.mktemp("access")
    for name in ("host_key", "user_key"):
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "access-test",
                "-f",
                str(folder / name),
            ],
            check=True,
        )
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    ssh_port = _free_port(BASTION, SERVER)
    db_port = _free_port(WRITER, READER)
    servers = []
    for address, prefix in ((WRITER, b"writer:"), (READER, b"reader:")):
        server = socketserver.ThreadingTCPServer((address, db_port), _Echo)
        server.daemon_threads = True
        server.prefix = prefix  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    processes = []
    logs = {}
    for role, address, permit in (
        ("bastion", BASTION, f"{SERVER}:{ssh_port}"),
        ("server", SERVER, f"{WRITER}:{db_port} {READER}:{db_port}"),
    ):
        config = folder / f"sshd_{role}.conf"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress {address}:{ssh_port}",
                    f"HostKey {folder / 'host_key'}",
                    f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                    "PidFile none",
                    "UsePAM no",
                    "StrictModes no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    f"AllowUsers {LOGIN}",
                    "AllowTcpForwarding local",
                    f"PermitOpen {permit}",
                    "X11Forwarding no",
                    "LogLevel DEBUG1",
                    "",
                ]
            )
        )
        logs[role] = folder / f"sshd_{role}.log"
        with open(logs[role], "wb") as log:
            process = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        processes.append(process)
        _wait_listening(address, ssh_port, process, logs[role])
    host_key = (folder / "host_key.pub").read_text().split()
    trusted = f"[{BASTION}]:{ssh_port},[{SERVER}]:{ssh_port} {host_key[0]} {host_key[1]}\n"
    try:
        yield {
            "folder": folder,
            "ssh_port": ssh_port,
            "db_port": db_port,
            "logs": logs,
            "trusted": trusted,
            "public_key": (folder / "user_key.pub").read_text().strip(),
        }
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        for server in servers:
            server.shutdown()
            server.server_close()


def _client_config(
    hosts, folder: Path, *, trusted: bool = True, include: Path | None = None
) -> Path:
    """An ssh client configuration for the test's hosts: their port, the
    user key, and a known_hosts of its own (trusting the host key, or empty)."""
    known = folder / "known_hosts"
    known.write_text(hosts["trusted"] if trusted else "")
    config = folder / "ssh_config"
    lines = [f"Include {include}"] if include else []
    lines += [
        "Host *",
        f"  Port {hosts['ssh_port']}",
        f"  IdentityFile {hosts['folder'] / 'user_key'}",
        "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {known}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "",
    ]
    config.write_text("\n".join(lines))
    return config


def _seed(
    aws_env: str, db_port: int, *, bastion_reaches_database: bool = False, admitted: bool = True
) -> dict:
    """The VPC's security groups and running instances in moto: the bastion's
    group, the application group (SSH from the bastion's group) and the
    database's group (its port from the application group only, unless told)."""
    ec2 = boto3.client("ec2", region_name="eu-west-1", endpoint_url=aws_env)
    vpc = ec2.create_vpc(CidrBlock="127.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="127.0.0.0/24")["Subnet"]["SubnetId"]

    def group(name: str) -> str:
        return ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]

    def admit(target: str, port: int, source: str) -> None:
        ec2.authorize_security_group_ingress(
            GroupId=target,
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                 "UserIdGroupPairs": [{"GroupId": source}]}
            ],
        )  # fmt: skip

    ids = {name: group(name) for name in ("bastion", "app", "database", "other")}
    admit(ids["app"], 22, ids["bastion"])
    admit(ids["other"], 22, ids["bastion"])
    admit(ids["database"], db_port, ids["app"])
    if bastion_reaches_database:
        admit(ids["database"], db_port, ids["bastion"])

    def instance(name: str, address: str, security_group: str) -> None:
        ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet,
            PrivateIpAddress=address, SecurityGroupIds=[security_group],
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}
            ],
        )  # fmt: skip

    instance("small-main-bastion", BASTION, ids["bastion"])
    instance(f"small-{ENV}-web", SERVER, ids["app" if admitted else "other"])
    return ids


def _write_outputs(
    config: Path, groups: dict, db_port: int, terraform_env: dict, tmp_path: Path
) -> None:
    """The shared stack's state as Terraform writes it: apply a configuration
    of the same outputs, then put its state where the stack's local backend keeps it."""
    source = tmp_path / "outputs"
    source.mkdir()
    bastion = {"public_ip": BASTION, "security_group_id": groups["bastion"]}
    database = {
        "endpoint": WRITER,
        "reader_endpoint": READER,
        "port": db_port,
        "security_group_id": groups["database"],
        "master_user_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db",
    }
    (source / "main.tf").write_text(
        f'output "bastion" {{\n  value = jsondecode({json.dumps(json.dumps(bastion))})\n}}\n'
        f'output "database" {{\n  value = jsondecode({json.dumps(json.dumps(database))})\n}}\n'
    )
    for argv in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        done = subprocess.run(
            ["terraform", *argv], cwd=source, env=terraform_env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    stack = config.parent / "stacks" / names.shared_stack(GROUP)
    shutil.copy(source / names.STATE_FILE, stack / names.STATE_FILE)


@pytest.fixture
def platform(rehearse, hosts, aws_env, terraform_env, tmp_path, monkeypatch):
    """A rendered small platform whose bastion user is this machine's root
    with the throwaway key; returns a function seeding moto and the outputs."""
    text = SMALL.read_text()
    start = text.index("    bob: ")
    end = text.index("\n", start)
    config_source = tmp_path / "source" / "infra.yaml"
    config_source.parent.mkdir()
    config_source.write_text(text[:start] + f"    {LOGIN}: {hosts['public_key']}" + text[end:])
    shutil.copytree(SMALL.parent / "scripts", tmp_path / "scripts")
    config = rehearse(config_source)
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])

    def seed(**rules) -> Path:
        groups = _seed(aws_env, hosts["db_port"], **rules)
        _write_outputs(config, groups, hosts["db_port"], terraform_env, tmp_path)
        return config

    return seed


def _levels_tf(config: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "levels_tf", "-c", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


def _ssh_left(marker: str) -> list[str]:
    """The command lines of running ssh processes that mention `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = " ".join(part.decode(errors="replace") for part in argv if part)
        if comm == "ssh" and marker in line:
            found.append(f"{entry.name}: {line}")
    return found


def _no_ssh_left(marker: str) -> bool:
    """Whether no ssh mentioning `marker` runs, given a moment: a process
    SIGKILL reached may not have ended yet when its parent returns."""
    deadline = time.monotonic() + 5
    while _ssh_left(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _ssh_left(marker) == []


def _open_tunnel(config: Path, client: Path, local_port: int, *extra: str):
    tunnel = _levels_tf(
        config, "tunnel", "db", "--env", ENV, "--local-port", str(local_port), "--json",
        "-F", str(client), *extra,
    )  # fmt: skip
    assert tunnel.stdout is not None
    line = tunnel.stdout.readline()
    if not line:
        tunnel.wait(timeout=60)
        raise AssertionError(f"exit {tunnel.returncode}: {tunnel.stderr.read()}")  # type: ignore[union-attr]
    (opened,) = _events(line)
    assert opened.pop("event") == "open", opened
    return tunnel, opened


def _events(stdout: str) -> list[dict]:
    """`tunnel db --json` is JSON Lines: every line of stdout one JSON object,
    on one line, with an "event"."""
    events = [json.loads(line) for line in stdout.splitlines()]
    assert events and all(isinstance(e, dict) and "event" in e for e in events), stdout
    return events


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        connection.settimeout(10)
        answer = b""
        while len(answer) < len(data) + 7:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


def _stop(tunnel: subprocess.Popen, signum: int) -> tuple[int, str]:
    returncode, _, errors = _stop_reading(tunnel, signum)
    return returncode, errors


def _stop_reading(tunnel: subprocess.Popen, signum: int) -> tuple[int, str, str]:
    """Stop the tunnel with `signum`: its exit code, the rest of its stdout, its stderr."""
    tunnel.send_signal(signum)
    out, errors = tunnel.communicate(timeout=60)
    return tunnel.returncode, out, errors


@pytest.mark.parametrize(
    ("endpoint", "extra", "signum", "code"),
    [
        ("writer", (), signal.SIGINT, 130),
        ("reader", ("--reader",), signal.SIGTERM, 143),
        # Another endpoint behind the same groups, as a `db restore` copy is.
        ("reader", ("--endpoint", READER), signal.SIGINT, 130),
    ],
)
def test_bytes_flow_through_both_hops_and_a_stop_leaves_no_ssh(
    platform, hosts, tmp_path, endpoint, extra, signum, code
):
    config = platform()
    client = _client_config(hosts, tmp_path)
    bastion_log_start = hosts["logs"]["bastion"].stat().st_size
    local_port = _free_port("127.0.0.1")
    tunnel, opened = _open_tunnel(config, client, local_port, *extra)
    try:
        assert opened["local_port"] == local_port and opened["server"] == SERVER
        assert opened["endpoint"] == (READER if extra else WRITER)
        assert _exchange(local_port, b"select 1") == endpoint.encode() + b":select 1"
        assert _ssh_left(str(client)), "the tunnel's ssh should be running"
    finally:
        returncode, out, errors = _stop_reading(tunnel, signum)
    assert returncode == code, errors
    reason = "interrupted" if signum == signal.SIGINT else "terminated"
    assert errors.splitlines()[-1] == reason
    # After the open event (read above), the last: how it ended.
    assert _events(out) == [{"event": "end", "reason": reason, "exit_code": code}]
    assert _no_ssh_left(str(client))
    bastion_log = hosts["logs"]["bastion"].read_text(errors="replace")[bastion_log_start:]
    assert f"to {SERVER} port {hosts['ssh_port']}" in bastion_log
    assert WRITER not in bastion_log and READER not in bastion_log


def test_without_json_it_says_how_to_connect(platform, hosts, tmp_path):
    config = platform()
    client = _client_config(hosts, tmp_path)
    local_port = _free_port("127.0.0.1")
    tunnel = _levels_tf(config, "tunnel", "db", "--env", ENV, "--local-port", str(local_port),
                        "-F", str(client))  # fmt: skip
    try:
        assert tunnel.stdout is not None
        line = tunnel.stdout.readline()
        assert line == f"connect with: mysql -h 127.0.0.1 -P {local_port} -u <user> -p\n"
        assert _exchange(local_port, b"ping") == b"writer:ping"
    finally:
        returncode, errors = _stop(tunnel, signal.SIGINT)
    assert returncode == 130, errors
    assert f"through bastion small-main-bastion ({BASTION})" in errors
    assert _no_ssh_left(str(client))


def test_a_bastion_the_database_admits_is_refused(platform, hosts, tmp_path):
    config = platform(bastion_reaches_database=True)
    client = _client_config(hosts, tmp_path)
    tunnel = _levels_tf(config, "tunnel", "db", "--env", ENV, "-F", str(client), "--local-port",
                        str(_free_port("127.0.0.1")))  # fmt: skip
    out, errors = tunnel.communicate(timeout=120)
    assert tunnel.returncode == 1, errors
    (line,) = errors.strip().splitlines()
    assert f"admits the bastion small-main-bastion on port {hosts['db_port']}" in line, line
    assert out == "" and _no_ssh_left(str(client))


def test_no_server_the_database_admits_is_refused(platform, hosts, tmp_path):
    config = platform(admitted=False)
    client = _client_config(hosts, tmp_path)
    tunnel = _levels_tf(config, "tunnel", "db", "--env", ENV, "-F", str(client), "--local-port",
                        str(_free_port("127.0.0.1")))  # fmt: skip
    _, errors = tunnel.communicate(timeout=120)
    assert tunnel.returncode == 1, errors
    (line,) = errors.strip().splitlines()
    assert "no running application server of staging" in line and "small-staging-web-1" in line
    assert _no_ssh_left(str(client))


def test_an_unknown_host_key_is_refused_and_never_recorded(platform, hosts, tmp_path):
    config = platform()
    client = _client_config(hosts, tmp_path, trusted=False)
    tunnel = _levels_tf(config, "tunnel", "db", "--env", ENV, "-F", str(client), "--local-port",
                        str(_free_port("127.0.0.1")))  # fmt: skip
    out, errors = tunnel.communicate(timeout=120)
    assert tunnel.returncode == 1, errors
    assert "Host key verification failed" in errors and "accept the host keys" in errors
    assert (tmp_path / "known_hosts").read_text() == ""
    assert out == "" and _no_ssh_left(str(client))


def test_with_json_an_ssh_that_ends_is_the_last_event(platform, hosts, tmp_path):
    config = platform()
    client = _client_config(hosts, tmp_path, trusted=False)
    tunnel = _levels_tf(config, "tunnel", "db", "--env", ENV, "-F", str(client), "--local-port",
                        str(_free_port("127.0.0.1")), "--json")  # fmt: skip
    out, errors = tunnel.communicate(timeout=120)
    assert tunnel.returncode == 1, errors
    (event,) = _events(out)
    assert event["event"] == "error" and event["error"]["exit_code"] == 1, event
    assert "accept the host keys" in event["error"]["message"]
    assert _no_ssh_left(str(client))


def test_the_written_configuration_reaches_the_server_through_the_bastion(
    platform, hosts, tmp_path, run
):
    config = platform()
    written = tmp_path / "levels.conf"
    result = run("ssh-config", "--env", ENV, "--write", str(written), config=config)
    assert result.exit_code == 0, result.output
    text = written.read_text()
    assert f"Host small-main-bastion\n  HostName {BASTION}\n  User {LOGIN}" in text
    assert f"Host small-{ENV}-web-1\n  HostName {SERVER}\n  ProxyJump small-main-bastion" in text
    assert "Host 10.20.*\n  ProxyJump small-main-bastion" in text
    client = _client_config(hosts, tmp_path, include=written)
    bastion_log_start = hosts["logs"]["bastion"].stat().st_size
    done = subprocess.run(
        ["ssh", "-F", str(client), "-o", "BatchMode=yes", f"small-{ENV}-web-1", "echo", "reached"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "reached"
    bastion_log = hosts["logs"]["bastion"].read_text(errors="replace")[bastion_log_start:]
    assert f"to {SERVER} port {hosts['ssh_port']}" in bastion_log
    # Written again over its own file; any other file is refused, untouched.
    assert run("ssh-config", "--write", str(written), config=config).exit_code == 0
    other = tmp_path / "mine.conf"
    other.write_text("Host work\n  HostName 192.0.2.1\n")
    refused = run("ssh-config", "--write", str(other), config=config)
    assert refused.exit_code == 2
    assert other.read_text() == "Host work\n  HostName 192.0.2.1\n"
    listed = run("ssh-config", "--json", config=config)
    assert listed.exit_code == 0, listed.output
    hosts_found = json.loads(listed.stdout)
    assert hosts_found["user"] == LOGIN and hosts_found["patterns"] == {GROUP: ["10.20.*"]}
    assert [(s["host"], s["address"], s["proxy_jump"]) for s in hosts_found["servers"]] == [
        (f"small-{ENV}-web-1", SERVER, "small-main-bastion")
    ]
