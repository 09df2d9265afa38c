"""The moto server the rehearsal starts (levels_tf/moto_launcher.py), run for
real on loopback: the answers it adds to moto's are AWS's answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from .conftest import _free_local_port, _local_http

pytestmark = pytest.mark.slow


def _answers(url: str) -> bool:
    try:
        return _local_http("GET", url) == 200
    except OSError:  # not listening yet
        return False


@pytest.fixture
def launcher(tmp_path):
    port = _free_local_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    with open(tmp_path / "moto.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "levels_tf.moto_launcher", "127.0.0.1", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{url}/moto-api/"):
            assert process.poll() is None, (tmp_path / "moto.log").read_text()
            assert time.monotonic() < deadline, "the launcher did not answer in 60 s"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_deleting_a_network_acl_entry_twice_is_not_found_not_a_server_error(launcher):
    """A delete the provider repeats after the first went through must read
    as already deleted (InvalidNetworkAclEntry.NotFound), as EC2 answers it;
    moto alone fails it with a 500, which the provider retries until the
    rehearsal's watchdog stops the destroy."""
    ec2 = boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=launcher,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    entry = {"NetworkAclId": acl, "RuleNumber": 100, "Egress": False}
    ec2.create_network_acl_entry(
        **entry, Protocol="6", RuleAction="allow", CidrBlock="10.0.0.0/16",
        PortRange={"From": 443, "To": 443},
    )  # fmt: skip

    ec2.delete_network_acl_entry(**entry)
    with pytest.raises(ClientError) as again:
        ec2.delete_network_acl_entry(**entry)
    assert again.value.response["Error"]["Code"] == "InvalidNetworkAclEntry.NotFound"
    assert again.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    # Entries that are there are still deleted, and only those.
    ec2.create_network_acl_entry(
        **entry, Protocol="6", RuleAction="allow", CidrBlock="10.0.0.0/16",
        PortRange={"From": 443, "To": 443},
    )  # fmt: skip
    ec2.delete_network_acl_entry(**entry)
    (found,) = ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"]
    assert not [e for e in found["Entries"] if e["RuleNumber"] == 100 and not e["Egress"]]
