"""The moto server the rehearsal starts (levels_tf/moto_launcher.py), run for
real on loopback: the answers it adds to moto's are AWS's answers."""

from __future__ import annotations

import json
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


@pytest.fixture
def ec2(launcher):
    return boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=launcher,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_deleting_a_network_acl_entry_twice_is_not_found_not_a_server_error(ec2):
    """A delete the provider repeats after the first went through must read
    as already deleted (InvalidNetworkAclEntry.NotFound), as EC2 answers it;
    moto alone fails it with a 500, which the provider retries until the
    rehearsal's watchdog stops the destroy."""
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


def test_a_rule_keeps_its_description_whatever_it_points_to(ec2):
    """EC2 reads back the description of every security group rule. moto alone
    keeps it only on a rule to a CIDR range, so a rule to a prefix list (the
    S3 gateway's) or to another group changed again at every plan."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group, other = (
        ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        for name in ("app", "bastion")
    )
    s3 = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": ["com.amazonaws.us-east-1.s3"]}]
    )["PrefixLists"][0]["PrefixListId"]
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443}
    ec2.authorize_security_group_egress(
        GroupId=group,
        IpPermissions=[{**https, "PrefixListIds": [{"PrefixListId": s3, "Description": "to S3"}]}],
    )
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {**https, "UserIdGroupPairs": [{"GroupId": other, "Description": "from the bastion"}]},
            {**https, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "from the VPC"}]},
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "10.1.0.0/16"}],
            },
        ],
    )

    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
    described = {
        rule.get("PrefixListId")
        or rule.get("ReferencedGroupInfo", {}).get("GroupId")
        or rule["CidrIpv4"] + f":{rule['FromPort']}": rule.get("Description")
        for rule in rules["SecurityGroupRules"]
    }
    assert described == {
        s3: "to S3",
        other: "from the bastion",
        "10.0.0.0/8:443": "from the VPC",
        "10.1.0.0/16:22": None,
        "0.0.0.0/0:-1": None,  # the default egress rule, which has no description
    }


def test_the_launcher_serves_one_request_at_a_time():
    """Requests of Terraform runs at once reach moto's unguarded backends one
    after the other, the body of each read out before the next begins."""
    import threading

    from levels_tf.moto_launcher import one_at_a_time

    inside, most = 0, 0
    count = threading.Lock()

    def slow_app(environ, start_response):
        nonlocal inside, most
        with count:
            inside += 1
            most = max(most, inside)
        start_response("200 OK", [])
        time.sleep(0.01)
        yield b"body"
        with count:
            inside -= 1

    app = one_at_a_time(slow_app)
    bodies = []
    threads = [
        threading.Thread(target=lambda: bodies.append(app({}, lambda *a: None))) for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert bodies == [[b"body"]] * 20
    assert most == 1


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_revoking_a_rule_id_twice_is_the_ec2_not_found_the_provider_takes_as_deleted(
    ec2, direction
):
    """A revoke the provider repeats after the first went through must read
    as already deleted: EC2 answers InvalidSecurityGroupRuleId.NotFound, the
    code the aws provider's rule delete ignores. moto alone answers
    InvalidPermission.NotFound, which failed a whole destroy."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    authorize = getattr(ec2, f"authorize_security_group_{direction}")
    revoke = getattr(ec2, f"revoke_security_group_{direction}")
    permission = {
        "IpProtocol": "tcp",
        "FromPort": 443,
        "ToPort": 443,
        "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "HTTPS"}],
    }
    kept, gone = (
        authorize(GroupId=group, IpPermissions=[{**permission, "FromPort": p, "ToPort": p}])[
            "SecurityGroupRules"
        ][0]["SecurityGroupRuleId"]
        for p in (22, 443)
    )

    revoke(GroupId=group, SecurityGroupRuleIds=[gone])
    with pytest.raises(ClientError) as again:
        revoke(GroupId=group, SecurityGroupRuleIds=[gone])
    assert again.value.response["Error"]["Code"] == "InvalidSecurityGroupRuleId.NotFound"
    assert gone in again.value.response["Error"]["Message"]

    # A revoke naming a missing and a present rule removes neither, as EC2 does.
    with pytest.raises(ClientError):
        revoke(GroupId=group, SecurityGroupRuleIds=[kept, gone])
    left = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
    assert kept in {r["SecurityGroupRuleId"] for r in left["SecurityGroupRules"]}

    # A rule named by its permission is still revoked, and a missing one still refused.
    revoke(GroupId=group, IpPermissions=[{**permission, "FromPort": 22, "ToPort": 22}])
    with pytest.raises(ClientError) as by_permission:
        revoke(GroupId=group, IpPermissions=[{**permission, "FromPort": 22, "ToPort": 22}])
    assert by_permission.value.response["Error"]["Code"] == "InvalidPermission.NotFound"


ALREADY_GONE = """
resource "aws_vpc" "this" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_security_group" "app" {
  name_prefix = "app-"
  description = "app"
  vpc_id      = aws_vpc.this.id
}

resource "aws_vpc_security_group_ingress_rule" "https" {
  security_group_id = aws_security_group.app.id
  description       = "HTTPS from the VPC"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = aws_vpc.this.cidr_block
}

resource "aws_vpc_security_group_egress_rule" "ssh" {
  security_group_id = aws_security_group.app.id
  description       = "SSH to the VPC"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = aws_vpc.this.cidr_block
}

resource "aws_network_acl" "this" {
  vpc_id = aws_vpc.this.id
}

resource "aws_network_acl_rule" "https" {
  network_acl_id = aws_network_acl.this.id
  rule_number    = 100
  egress         = false
  protocol       = "tcp"
  rule_action    = "allow"
  cidr_block     = aws_vpc.this.cidr_block
  from_port      = 443
  to_port        = 443
}
"""


@pytest.mark.terraform
def test_a_destroy_whose_deletes_already_went_through_still_succeeds(
    tmp_path, aws_env, terraform_env
):
    """The real aws provider deletes, from a saved destroy plan, security
    group rules and a network ACL entry that are already gone (as after a
    delete it repeated): on EC2 that is "already deleted", and on the
    launcher it must be too, or a rehearsal's destroy fails."""
    from .conftest import emulator_provider
    from .test_vpc_endpoints import _terraform

    folder = tmp_path / "root"
    folder.mkdir()
    provider = emulator_provider(aws_env, ("ec2", "sts"))
    (folder / "main.tf").write_text(provider + ALREADY_GONE, encoding="utf-8")
    env = dict(terraform_env)
    _terraform(folder, env, "init", "-input=false", "-no-color")
    _terraform(folder, env, "apply", "-input=false", "-no-color", "-auto-approve")
    _terraform(folder, env, "plan", "-destroy", "-input=false", "-no-color", "-out=destroy.tfplan")

    state = json.loads(_terraform(folder, env, "show", "-json", "-no-color").stdout)
    values = {r["address"]: r["values"] for r in state["values"]["root_module"]["resources"]}
    ec2 = boto3.client("ec2", endpoint_url=aws_env, region_name="us-east-1")
    group = values["aws_security_group.app"]["id"]
    ec2.revoke_security_group_ingress(
        GroupId=group,
        SecurityGroupRuleIds=[values["aws_vpc_security_group_ingress_rule.https"]["id"]],
    )
    ec2.revoke_security_group_egress(
        GroupId=group, SecurityGroupRuleIds=[values["aws_vpc_security_group_egress_rule.ssh"]["id"]]
    )
    ec2.delete_network_acl_entry(
        NetworkAclId=values["aws_network_acl.this"]["id"], RuleNumber=100, Egress=False
    )

    _terraform(folder, env, "apply", "-input=false", "-no-color", "destroy.tfplan")
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [group]}])[
        "SecurityGroups"
    ]
