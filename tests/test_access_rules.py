"""Operator access decided from data, quickly: the host patterns of a VPC's
CIDR (read back by the real `ssh -G`), the written configuration, the
security group rules a tunnel needs, the server it picks, `process.hold`,
and bad input refused in one line."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levels_tf import access, process
from levels_tf.errors import UsageError

from .conftest import ROOT, require_tool

SMALL = ROOT / "tests" / "configs" / "rehearsal-small" / "infra.yaml"


def _resolved(config: Path, host: str) -> dict[str, str]:
    """What the real ssh makes of `host` under `config` (ssh -G), key -> value."""
    require_tool("ssh")
    done = subprocess.run(
        ["ssh", "-G", "-F", str(config), host],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, check=True,
    )  # fmt: skip
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


@pytest.mark.parametrize(
    ("cidr", "patterns"),
    [
        ("10.0.0.0/8", ["10.*"]),
        ("10.1.0.0/16", ["10.1.*"]),
        ("10.1.2.0/24", ["10.1.2.*"]),
        ("10.0.0.0/23", ["10.0.0.*", "10.0.1.*"]),
        ("192.168.4.0/22", [f"192.168.{n}.*" for n in range(4, 8)]),
        ("10.9.9.9/32", ["10.9.9.9"]),
        ("10.9.9.8/31", ["10.9.9.8", "10.9.9.9"]),
        ("0.0.0.0/0", ["*"]),
    ],
)
def test_a_cidr_becomes_the_host_patterns_of_its_addresses(cidr, patterns):
    assert access.address_patterns(cidr) == patterns


def test_a_non_octet_prefix_lists_the_next_octet():
    patterns = access.address_patterns("10.16.0.0/12")
    assert len(patterns) == 16 and patterns[0] == "10.16.*" and patterns[-1] == "10.31.*"


def test_a_bad_cidr_is_a_usage_error():
    with pytest.raises(UsageError, match="no IPv4 CIDR"):
        access.address_patterns("10.0.0.0/33")


def test_overlapping_vpcs_get_no_pattern():
    found = access.vpc_patterns({"a": "10.0.0.0/16", "b": "10.0.128.0/17", "c": "10.2.0.0/16"})
    assert found == {"c": ["10.2.*"]}


@settings(max_examples=25, deadline=None)
@given(
    prefix=st.integers(min_value=8, max_value=30),
    network=st.integers(min_value=0, max_value=2**32 - 1),
    probe=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_ssh_reads_the_patterns_as_the_cidr_means_them(tmp_path_factory, prefix, network, probe):
    cidr = ipaddress.IPv4Network((network, prefix), strict=False)
    inside = cidr.network_address + probe % cidr.num_addresses
    outside = ipaddress.IPv4Address((int(cidr.broadcast_address) + 1 + probe % 1000) % 2**32)
    config = tmp_path_factory.mktemp("patterns") / "config"
    config.write_text(
        "Host jump\n  HostName 192.0.2.1\n"
        f"Host {' '.join(access.address_patterns(str(cidr)))}\n  ProxyJump jump\n"
    )
    assert _resolved(config, str(inside)).get("proxyjump") == "jump"
    if outside not in cidr:
        assert "proxyjump" not in _resolved(config, str(outside))


BASTION = access.Bastion("main", "small-main-bastion", "203.0.113.10", "sg-bastion", ("10.20.0.9",))


def _servers() -> list[access.Server]:
    instances = [
        {"InstanceId": f"i-{n}", "PrivateIpAddress": f"10.20.1.{n}",
         "SecurityGroups": [{"GroupId": "sg-app"}],
         "Tags": [{"Key": "Name", "Value": "small-staging-web" if n < 3 else "small-staging-jobs"}]}
        for n in (1, 2, 3)
    ] + [{"InstanceId": "i-gone", "Tags": [{"Key": "Name", "Value": "small-staging-web"}]}]  # fmt: skip
    return access.servers(instances)


def test_servers_are_numbered_per_fleet_and_need_an_address():
    assert [(s.alias, s.address) for s in _servers()] == [
        ("small-staging-web-1", "10.20.1.1"),
        ("small-staging-web-2", "10.20.1.2"),
        ("small-staging-jobs-1", "10.20.1.3"),
    ]


def test_the_configuration_is_what_ssh_reads(tmp_path):
    text = access.ssh_config(
        [BASTION],
        {"main": _servers()},
        {"main": ["10.20.*"]},
        user="bob",
        identity=str(tmp_path / "my key"),
    )
    assert access.is_ours(text)
    config = tmp_path / "config"
    config.write_text(text)
    bastion = _resolved(config, "small-main-bastion")
    assert (bastion["hostname"], bastion["user"]) == ("203.0.113.10", "bob")
    assert "proxyjump" not in bastion
    assert bastion["identityfile"] == str(tmp_path / "my key")
    server = _resolved(config, "small-staging-jobs-1")
    assert (server["hostname"], server["proxyjump"], server["user"]) == (
        "10.20.1.3",
        "small-main-bastion",
        "bob",
    )
    later = _resolved(config, "10.20.7.7")
    assert later["proxyjump"] == "small-main-bastion" and later["hostname"] == "10.20.7.7"
    # Host keys are checked as the user's own configuration says: never turned off here.
    assert "stricthostkeychecking" not in text.lower() and "/dev/null" not in text


def _group(group_id: str, *rules: dict) -> dict:
    return {"GroupId": group_id, "IpPermissions": list(rules)}


def _rule(port: int | tuple[int, int], *, group: str | None = None, cidr: str | None = None,
          protocol: str = "tcp") -> dict:  # fmt: skip
    low, high = port if isinstance(port, tuple) else (port, port)
    return {
        "IpProtocol": protocol,
        "FromPort": low,
        "ToPort": high,
        "UserIdGroupPairs": [{"GroupId": group}] if group else [],
        "IpRanges": [{"CidrIp": cidr}] if cidr else [],
    }


@pytest.mark.parametrize(
    ("rule", "admitted"),
    [
        (_rule(3306, group="sg-app"), True),
        (_rule((3000, 4000), group="sg-app"), True),
        (_rule(5432, group="sg-app"), False),
        (_rule(3306, group="sg-other"), False),
        (_rule(3306, cidr="10.20.1.0/24"), True),
        (_rule(3306, cidr="10.20.2.0/24"), False),
        (_rule(3306, group="sg-app", protocol="udp"), False),
        ({"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-app"}]}, True),
    ],
)
def test_a_rule_admits_its_protocol_port_range_and_sources(rule, admitted):
    found = access.admitting(
        [_group("sg-db", rule)], 3306, sources=["sg-app"], addresses=["10.20.1.5"]
    )
    assert bool(found) is admitted


DATABASE = access.Database("db.example", "db-ro.example", 3306, "sg-db")
SSH_FROM_BASTION = _group("sg-app", _rule(22, group="sg-bastion"))


def test_the_first_server_both_rules_allow_is_chosen():
    groups = [_group("sg-db", _rule(3306, cidr="10.20.1.2/32")), SSH_FROM_BASTION]
    assert access.choose_server(_servers(), BASTION, DATABASE, groups, "staging").alias == (
        "small-staging-web-2"
    )


def test_no_server_both_rules_allow_is_refused_naming_the_groups():
    groups = [_group("sg-db", _rule(3306, group="sg-app")), _group("sg-app")]
    with pytest.raises(access.AccessRefused) as refused:
        access.choose_server(_servers(), BASTION, DATABASE, groups, "staging")
    message = str(refused.value)
    assert (
        "sg-db" in message and "sg-bastion" in message and "small-staging-web-1 (sg-app)" in message
    )
    with pytest.raises(access.AccessRefused, match="none is running"):
        access.choose_server([], BASTION, DATABASE, groups, "staging")


@pytest.mark.parametrize(
    "rule", [_rule(3306, group="sg-bastion"), _rule(3306, cidr="10.20.0.0/16")]
)
def test_a_database_that_admits_the_bastion_is_refused(rule):
    groups = [_group("sg-db", _rule(3306, group="sg-app"), rule)]
    with pytest.raises(access.AccessRefused, match="admits the bastion small-main-bastion"):
        access.check_bastion(BASTION, DATABASE, groups)
    access.check_bastion(BASTION, DATABASE, [_group("sg-db", _rule(3306, group="sg-app"))])


def test_the_tunnel_forwards_from_the_server_and_never_asks():
    argv = access.tunnel_argv(
        user="bob", bastion=BASTION, server=_servers()[0], target="db.example", port=3306,
        local_port=13306, ssh_config_file="/tmp/cfg",
    )  # fmt: skip
    assert argv[:3] == ["ssh", "-F", "/tmp/cfg"]
    assert argv[-5:] == [
        "-J",
        "bob@203.0.113.10",
        "-L",
        "127.0.0.1:13306:db.example:3306",
        "bob@10.20.1.1",
    ]
    assert "BatchMode=yes" in argv and "ExitOnForwardFailure=yes" in argv


def _group_alive(pid: int) -> bool:
    """Whether a process of group `pid` still runs (/proc; a zombie awaiting its reaper does not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pid and fields[0] != "Z":
            return True
    return False


def test_hold_keeps_errors_and_stop_ends_the_whole_group():
    held = process.hold(["sh", "-c", "echo starting >&2; sleep 60 & sleep 60"])
    deadline = time.monotonic() + 10
    while "starting" not in held.errors() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert held.running() and _group_alive(held.pid)
    held.stop(grace=2)
    assert not held.running()
    deadline = time.monotonic() + 5  # a killed process may take a moment to be reaped
    while _group_alive(held.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(held.pid)
    assert held.errors() == "starting\n"
    held.stop()  # again: nothing to do


def test_hold_reports_how_a_program_ended():
    held = process.hold(["sh", "-c", "echo refused >&2; exit 3"])
    assert held.wait(timeout=10) == 3 and held.errors() == "refused\n"
    held.stop()


def test_hold_of_a_missing_program_is_a_tool_error():
    with pytest.raises(process.ToolError, match="not installed"):
        process.hold(["levels-tf-no-such-program"])


@pytest.fixture
def rendered(tmp_path, run, monkeypatch) -> Path:
    for name in ("AWS_ENDPOINT_URL", "LEVELS_TF_AWS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "infra.yaml"
    shutil.copy(SMALL, config)
    shutil.copytree(SMALL.parent / "scripts", tmp_path / "scripts")
    assert run("render", config=config).exit_code == 0
    return config


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("tunnel", "db", "--env", "nowhere"), "--env nowhere: no such environment in"),
        (("tunnel", "db", "--env", "staging", "--user", "mallory"), "--user 'mallory' is not one"),
        (("ssh-config", "--env", "nowhere"), "--env nowhere: no such environment in"),
        (("ssh-config", "--user", "mallory"), "--user 'mallory' is not one"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(rendered, run, args, says):
    result = run(*args, config=rendered)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert says in line
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("ssh-config", "--identity", 'key"s'),
            "ssh_config cannot hold a path with a double quote",
        ),
        (("ssh-config", "--user", "mallory"), "--user 'mallory' is not one"),
        (("tunnel", "db", "--env", "staging", "--user", "mallory"), "--user 'mallory' is not one"),
    ],
)
def test_the_command_line_is_checked_before_the_tree_and_aws(
    tmp_path, run, monkeypatch, args, says
):
    """Never rendered and no AWS to ask: a bad option is still the one error."""
    for name in ("AWS_ENDPOINT_URL", "LEVELS_TF_AWS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "infra.yaml"
    shutil.copy(SMALL, config)
    shutil.copytree(SMALL.parent / "scripts", tmp_path / "scripts")
    result = run(*args, config=config)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert says in line


def test_a_file_ssh_config_did_not_write_is_refused_before_anything(rendered, run, tmp_path):
    mine = tmp_path / "config"
    mine.write_text("Host work\n  HostName 192.0.2.1\n")
    result = run("ssh-config", "--write", str(mine), config=rendered)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "was not written by levels-tf ssh-config" in line
    assert mine.read_text() == "Host work\n  HostName 192.0.2.1\n"
