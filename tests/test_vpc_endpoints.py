"""VPC endpoints and the narrowed egress: the options in infra.yaml, their
rules, the values the network and access modules get, and the network module
applied for real against moto, then read back by the platform checks."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import boto3
import pytest

from levels_tf import context, vpc_endpoints
from levels_tf.aws import Aws
from levels_tf.platform_checks import endpoint_checks
from levels_tf.render import render
from levels_tf.validation import load_config

from .conftest import REFERENCE, emulator_provider, require_tool
from .test_model_rules import line_of, make, only, validate

USED = ["kms", "ssm"]  # what MINIMAL's one web service calls; it has no bastion, queue or topic


def _infra(changes: dict):
    return validate(make(changes)).infra


# -- defaults and choices ----------------------------------------------------------------


def test_production_gets_every_used_service_and_other_groups_none_by_default():
    infra = _infra({"vpc_groups.prod.production": True})
    assert vpc_endpoints.services_used(infra) == USED
    assert vpc_endpoints.interface_services(infra, "prod") == USED
    assert vpc_endpoints.interface_services(infra, "nonprod") == []
    prod = context.network(infra, "prod")
    assert prod["interface_endpoints"] == USED
    assert prod["endpoint_zones"] == ["us-east-1a", "us-east-1b"]
    assert prod["endpoints_name"] == "shop-prod-endpoints"
    nonprod = context.network(infra, "nonprod")
    assert nonprod["interface_endpoints"] == [] and nonprod["endpoint_zones"] == []
    assert context.access(infra, "prod")["aws_endpoints"] is True
    assert context.access(infra, "nonprod")["aws_endpoints"] is False


def test_the_reference_production_group_reaches_every_service_it_calls_privately():
    infra = load_config(REFERENCE).infra
    # Services consume a queue and publish to a topic; the bastion claims its address.
    assert vpc_endpoints.services_used(infra) == ["ec2", "kms", "sns", "sqs", "ssm"]
    assert context.network(infra, "production")["interface_endpoints"] == [
        "ec2",
        "kms",
        "sns",
        "sqs",
        "ssm",
    ]


def test_a_group_chooses_its_services_and_its_first_zones():
    infra = _infra(
        {
            "vpc_groups.nonprod.azs": 3,
            "vpc_groups.nonprod.endpoints": {"interface": ["ssm", "kms", "logs"], "zones": 2},
        }
    )
    network = context.network(infra, "nonprod")
    assert network["interface_endpoints"] == ["kms", "logs", "ssm"]
    assert network["endpoint_zones"] == list(network["zones"])[:2]


def test_secrets_manager_is_used_only_with_that_store():
    assert "secretsmanager" not in vpc_endpoints.services_used(_infra({}))
    infra = _infra(
        {
            "secrets": {
                "store": "secretsmanager",
                "prefixes": {"app": {"read": ["api"], "parameters": ["token"]}},
            }
        }
    )
    assert "secretsmanager" in vpc_endpoints.services_used(infra)


def test_the_policy_scope_names_only_the_groups_own_environments():
    infra = _infra({"bucket_prefix": "shopassets"})
    scope = context.endpoint_scope(infra, "nonprod")
    assert scope["buckets"] == ["shopassets-dev-*", "shopassets-test-*"]
    assert scope["names"] == ["shop-dev-*", "shop-test-*"]
    assert scope["parameter_paths"] == ["/shop/dev/*", "/shop/test/*"]
    assert scope["secret_names"] == ["shop/dev/*", "shop/test/*"]
    assert scope["package_buckets"] == []  # Ubuntu only: no Amazon Linux repository
    with_bastion = _infra({"bastion": {"allowed_cidrs": ["203.0.113.0/24"], "users": {"ops": KEY}}})
    assert context.endpoint_scope(with_bastion, "prod")["package_buckets"] == [
        "al2023-repos-us-east-1-de612dc2"
    ]


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxldmVscy1hbGljZS1leGFtcGxlLWtleS0tLS0tLS0t ops@laptop"


def test_internet_https_is_on_by_default_and_closes_per_client():
    infra = _infra({"vpc_groups.prod.production": True, "vpc_groups.prod.internet_https": []})
    access = context.access(infra, "prod")
    assert access["servers_internet_https"] is False
    assert context.access(infra, "nonprod")["servers_internet_https"] is True


# -- rules -------------------------------------------------------------------------------


def test_a_service_listed_twice_is_an_error_at_its_line():
    text = make({"vpc_groups.nonprod.endpoints": {"interface": ["ssm", "kms", "ssm"]}})
    problem = only(text)
    assert problem.path == "vpc_groups.nonprod.endpoints.interface[2]"
    assert problem.message == "'ssm' is already item 0"
    assert problem.line == line_of(text, "- ssm", 2)


def test_an_unknown_service_is_an_error_at_its_line():
    text = make({"vpc_groups.nonprod.endpoints": {"interface": ["ssm", "s3"]}})
    problem = only(text)
    assert problem.path == "vpc_groups.nonprod.endpoints.interface[1]"
    assert "'s3'" in problem.message and "ssm" in problem.message
    assert problem.line == line_of(text, "- s3")


def test_more_endpoint_zones_than_the_group_spans_is_an_error():
    text = make({"vpc_groups.nonprod.endpoints": {"interface": ["ssm"], "zones": 3}})
    problem = only(text)
    assert problem.path == "vpc_groups.nonprod.endpoints.zones"
    assert problem.message == "3 zones, but group 'nonprod' spans 2 (azs)"
    assert problem.line == line_of(text, "zones: 3")


def test_closing_the_internet_needs_an_endpoint_for_every_service_called():
    text = make(
        {
            "vpc_groups.nonprod.internet_https": [],
            "vpc_groups.nonprod.endpoints": {"interface": ["ssm"]},
        }
    )
    problem = only(text)
    assert problem.path == "vpc_groups.nonprod.internet_https"
    assert problem.message.startswith(
        "the servers call kms, which group 'nonprod' has no interface endpoint for"
    )
    assert problem.line == line_of(text, "internet_https")
    # With every service covered, closing it is fine.
    validate(
        make(
            {
                "vpc_groups.nonprod.internet_https": [],
                "vpc_groups.nonprod.endpoints": {"interface": USED},
            }
        )
    )


def test_a_service_an_override_adds_needs_its_endpoint_too():
    """The file alone is fine; production's override makes the api publish to a
    topic, which its closed group has no endpoint for. Said once, at the option."""
    changes = {
        "vpc_groups.prod.internet_https": [],
        "vpc_groups.prod.endpoints": {"interface": USED},
        "topics": {"events": {}},
        "environments": {"production": {"services.api.publishes": ["events"]}},
    }
    text = make(changes)
    problem = only(text)
    assert problem.path == "vpc_groups.prod.internet_https"
    assert problem.message.startswith("the servers call sns, which group 'prod'")


def test_internet_https_names_each_client_once():
    problem = only(make({"vpc_groups.nonprod.internet_https": ["servers", "servers"]}))
    assert problem.path == "vpc_groups.nonprod.internet_https[1]"
    assert problem.message == "'servers' is already item 0"


# -- rendered egress ---------------------------------------------------------------------


def test_the_internet_rule_is_rendered_only_where_the_option_is_on(tmp_path):
    path = tmp_path / "infra.yaml"
    path.write_text(
        make(
            {"vpc_groups.prod.internet_https": [], "vpc_groups.prod.endpoints": {"interface": USED}}
        ),
        encoding="utf-8",
    )
    files = render(load_config(path))
    prod = files["stacks/prod-shared/access.tf"]
    nonprod = files["stacks/nonprod-shared/access.tf"]
    assert re.search(r"internet_https\s+= false", prod) and re.search(
        r"aws_endpoints\s+= true", prod
    )
    assert re.search(r"internet_https\s+= true", nonprod)
    assert re.search(r"aws_endpoints\s+= false", nonprod)


# -- applied against moto ----------------------------------------------------------------

APPLY_CONFIG = """\
project: vpce
region: us-east-1
vpc_groups:
  edge:
    production: true
    cidr: 10.30.0.0/20
    azs: 3
    nat: none
    endpoints: {zones: 2}
    internet_https: []
    environments: [live]
bastion:
  allowed_cidrs: [203.0.113.0/24]
  users:
    ops: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxldmVscy1hbGljZS1leGFtcGxlLWtleS0tLS0tLS0t ops@laptop
images:
  app: {base: ubuntu-24.04}
services:
  worker: {image: app, consumes: [jobs]}
queues:
  jobs: {}
ci: {assumed_by: ["arn:aws:iam::123456789012:role/deployer"]}
"""


def _terraform(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [require_tool("terraform"), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done


@pytest.mark.terraform
@pytest.mark.slow
def test_the_network_module_applies_its_endpoints_on_moto(tmp_path, aws_env, terraform_env):
    """The shared stack's network module, as rendered, planned and applied on
    moto: the S3 gateway on the public and private route tables only, the
    interface endpoints with private DNS in the first two zones' private
    subnets, policies with the account's principals on the platform's
    resources, and the platform checks agreeing."""
    config_path = tmp_path / "infra.yaml"
    config_path.write_text(APPLY_CONFIG, encoding="utf-8")
    config = load_config(config_path)
    files = render(config)
    folder = tmp_path / "root"
    for path, text in files.items():
        if path.startswith("modules/network/") and path.endswith(".tf"):
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    module = files["stacks/edge-shared/main.tf"].replace(
        "../../modules/network", "./modules/network"
    )
    services = ("ec2", "iam", "kms", "logs", "rds", "sts")
    outputs = """
output "s3_prefix_list_id" {
  value = module.network.s3_prefix_list_id
}

output "endpoint_security_group_id" {
  value = module.network.endpoint_security_group_id
}
"""
    (folder / "main.tf").write_text(
        emulator_provider(aws_env, services) + module + outputs, encoding="utf-8"
    )
    env = dict(terraform_env)
    _terraform(folder, env, "init", "-input=false", "-no-color")
    _terraform(folder, env, "apply", "-input=false", "-no-color", "-auto-approve")
    shown = json.loads(_terraform(folder, env, "output", "-json", "-no-color").stdout)
    assert shown["s3_prefix_list_id"]["value"].startswith("pl-")
    assert shown["endpoint_security_group_id"]["value"].startswith("sg-")

    infra = config.infra
    checks = endpoint_checks(
        Aws("us-east-1", aws_env, credentials=("testing", "testing")), infra, "edge"
    )
    assert [c.name for c in checks] == [
        "edge: S3 is reached through a gateway endpoint on the public and private route tables, not the database's",
        "edge: interface endpoints for ec2, kms, sqs, ssm, with private DNS, in the private subnets of us-east-1a, us-east-1b",
    ]
    assert all(check.passed for check in checks), [c.detail for c in checks]

    ec2 = boto3.client("ec2", endpoint_url=aws_env, region_name="us-east-1")
    endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    by_service = {e["ServiceName"].rsplit(".", 1)[1]: e for e in endpoints}
    assert sorted(by_service) == sorted(["s3", *vpc_endpoints.services_used(infra)])
    for service, endpoint in by_service.items():
        policy = json.loads(endpoint["PolicyDocument"])
        for statement in policy["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), (
                service,
                statement,
            )
            if statement.get("Sid") != "PackageRepositories":
                assert (
                    statement["Condition"]["StringEquals"]["aws:PrincipalAccount"] == "123456789012"
                )
        if service != "s3":
            assert endpoint["Groups"][0]["GroupId"] == shown["endpoint_security_group_id"]["value"]
    # The plan after the apply is empty (-detailed-exitcode 0): moto keeps what it was given.
    _terraform(folder, env, "plan", "-input=false", "-no-color", "-detailed-exitcode")
