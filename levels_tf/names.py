"""Every name levels-tf gives a thing in AWS or in the output tree: the one place names are made.

Templates, commands and checks all ask here, so a stack, a bucket, a fleet
or a parameter path is spelt the same way wherever it is created, read,
emptied or looked up. Each function returns a plain string (or a set of
them) and raises nothing: configuration validation (model.py, rules.py)
has already bounded the parts, and `bucket_name_problem` says when a made
bucket name breaks S3's rules.

Limits AWS sets on names, and where AWS documents them:

- S3 bucket names: 3 to 63 characters of lowercase letters, digits, dots
  and hyphens (Amazon S3 User Guide, "General purpose bucket naming rules",
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
- Load balancer and target group names: at most 32 characters (Elastic Load
  Balancing API Reference, CreateLoadBalancer and CreateTargetGroup, `Name`,
  https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html).
- Lambda function names: at most 64 characters (AWS Lambda API Reference,
  CreateFunction, `FunctionName`,
  https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html).
- IAM role names: at most 64 characters (IAM API Reference, CreateRole,
  `RoleName`, https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
- Aurora cluster identifiers: 1 to 63 letters, digits or hyphens, the first
  a letter, no two consecutive hyphens, not ending in a hyphen (Amazon RDS
  API Reference, CreateDBCluster, `DBClusterIdentifier`,
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Infra

# Characters in a load balancer or target group name (see the module docstring).
LOAD_BALANCER_NAME_LIMIT = 32
# Characters in a Lambda function name (see the module docstring).
FUNCTION_NAME_LIMIT = 64
# Characters in an IAM role name (see the module docstring).
ROLE_NAME_LIMIT = 64
# Characters in an S3 bucket name, at least and at most (see the module docstring).
BUCKET_NAME_LENGTH = (3, 63)

SHARED_SUFFIX = "shared"
STATE_FILE = "terraform.tfstate"
# The application security group of each environment (stacks/shared/access.tf).
APP_GROUP = "app"
# The AMI every bastion runs is named by a parameter (a template default,
# templates/modules/bastion); an emulator that cannot hold AWS's public
# parameters gets this one of the rehearsal's own.
BASTION_AMI_PARAMETER = "/levels-tf/rehearsal/bastion-ami"

_DB_CLUSTER_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def short_name(name: str, limit: int = LOAD_BALANCER_NAME_LIMIT) -> str:
    """`name` when it has at most `limit` characters; else its first characters,
    a hyphen and the first 6 hex digits of the SHA-256 of the whole name,
    `limit` characters at most. The same name always gives the same result."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[: limit - 7].rstrip('-')}-{digest}"


# Stacks and their state.


def shared_stack(group: str) -> str:
    """The shared stack of VPC group `group`: <group>-shared."""
    return f"{group}-{SHARED_SUFFIX}"


def state_key(stack: str) -> str:
    """The key of stack `stack`'s state in its group's state bucket."""
    return f"{stack}/{STATE_FILE}"


def state_bucket_prefix(infra: Infra) -> str:
    """state.bucket_prefix, or <project>-tfstate."""
    return infra.state.bucket_prefix or f"{infra.project}-tfstate"


def state_bucket(infra: Infra, group: str) -> str:
    """The S3 bucket that holds the state of VPC group `group`'s stacks."""
    return f"{state_bucket_prefix(infra)}-{group}"


# Buckets.


def asset_bucket(infra: Infra, env: str, asset_class: str) -> str:
    """<bucket_prefix or project>-<environment>-<asset class>."""
    return f"{infra.bucket_prefix or infra.project}-{env}-{asset_class}"


def log_bucket(infra: Infra, group: str) -> str:
    """The bucket of VPC group `group`'s load balancer access logs."""
    return f"{infra.bucket_prefix or infra.project}-{group}-lb-logs"


def log_only_buckets(infra: Infra) -> set[str]:
    """The buckets that hold nothing but logs AWS services write (load balancer
    access logs; S3 server access logs and CloudFront logs in each
    environment's logs bucket): the only ones a confirmed destroy may empty."""
    groups = {log_bucket(infra, group) for group in infra.vpc_groups}
    return groups | {
        asset_bucket(infra, env, "logs")
        for group in infra.vpc_groups.values()
        for env in group.environments
    }


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a valid S3 bucket name, or None (rules cited in the module docstring)."""
    low, high = BUCKET_NAME_LENGTH
    if not low <= len(name) <= high:
        return f"{len(name)} characters; S3 bucket names have {low} to {high}"
    if not _BUCKET_RE.match(name):
        return "S3 bucket names use lowercase letters, digits, dots and hyphens, and start and end with a letter or digit"
    if ".." in name or ".-" in name or "-." in name:
        return "S3 bucket names cannot have adjacent dots or a dot beside a hyphen"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        return "S3 bucket names cannot look like an IP address"
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3", "--x-s3")):
        return "S3 reserves that prefix or suffix"
    return None


# Resources of a VPC group (its shared stack).


def group_resource(infra: Infra, group: str) -> str:
    """<project>-<group>: the VPC, the database cluster."""
    return f"{infra.project}-{group}"


def load_balancer_name(infra: Infra, group: str) -> str:
    """VPC group `group`'s load balancer, shortened to the load balancer limit."""
    return short_name(group_resource(infra, group))


def bastion_name(infra: Infra, group: str) -> str:
    """<project>-<group>-bastion."""
    return f"{group_resource(infra, group)}-bastion"


def endpoint_security_group(infra: Infra, group: str) -> str:
    """<project>-<group>-endpoints: the security group of VPC group `group`'s interface endpoints."""
    return f"{group_resource(infra, group)}-endpoints"


def ci_role_name(infra: Infra, group: str) -> str:
    """<project>-<group>-ci: VPC group `group`'s CI/CD role."""
    return f"{group_resource(infra, group)}-ci"


def tf_plan_role_name(infra: Infra, group: str) -> str:
    """<project>-<group>-tf-plan, shortened to IAM's role name limit: the role
    `levels-tf bootstrap` creates for CI jobs that plan VPC group `group`'s stacks."""
    return short_name(f"{group_resource(infra, group)}-tf-plan", ROLE_NAME_LIMIT)


def tf_apply_role_name(infra: Infra, group: str) -> str:
    """<project>-<group>-tf-apply, shortened to IAM's role name limit: the role
    `levels-tf bootstrap` creates for CI jobs that apply VPC group `group`'s stacks."""
    return short_name(f"{group_resource(infra, group)}-tf-apply", ROLE_NAME_LIMIT)


def tf_role_names(infra: Infra) -> list[str]:
    """The plan and apply roles of every VPC group, in infra.yaml's order."""
    return [
        name
        for group in infra.vpc_groups
        for name in (tf_plan_role_name(infra, group), tf_apply_role_name(infra, group))
    ]


# Resources of an environment.


def environment_resource(infra: Infra, env: str) -> str:
    """<project>-<environment>: the data key, the CDN, the parameters module."""
    return f"{infra.project}-{env}"


def resource_name(infra: Infra, env: str, name: str) -> str:
    """Queues, topics, fleets and security groups: <project>-<environment>-<name>."""
    return f"{environment_resource(infra, env)}-{name}"


def app_security_group(infra: Infra, env: str) -> str:
    """Environment `env`'s application security group."""
    return resource_name(infra, env, APP_GROUP)


def fleet_short_name(infra: Infra, env: str, service: str) -> str:
    """A fleet's name where the load balancer limit applies (its target group)."""
    return short_name(resource_name(infra, env, service))


def function_name(infra: Infra, env: str, function: str) -> str:
    """A Lambda function's name, shortened to Lambda's limit."""
    return short_name(resource_name(infra, env, function), FUNCTION_NAME_LIMIT)


def function_package(name: str) -> str:
    """Where `levels-tf package` writes a function's zip, relative to the output root."""
    return f"build/functions/{name}.zip"


# SSM parameter paths.


def parameter_path(infra: Infra, env: str) -> str:
    """/<project>/<environment>: the root of an environment's parameters."""
    return f"/{infra.project}/{env}"


def parameter_prefix(infra: Infra, env: str, name: str) -> str:
    """/<project>/<environment>/<name>: a service's or a secrets prefix's parameters."""
    return f"{parameter_path(infra, env)}/{name}"


def bundle_parameter(infra: Infra, env: str, service: str) -> str:
    """The parameter that records the bundle version deployed to `service`.

    `service` "*" gives the pattern that matches every service's."""
    return parameter_prefix(infra, env, service) + "/bundle-version"


# The database of a VPC group (modules/database).

# Characters in an RDS DB instance identifier (Amazon RDS API Reference,
# CreateDBInstance, `DBInstanceIdentifier`: 1 to 63 letters, digits or hyphens).
DB_INSTANCE_ID_LIMIT = 63


def database_cluster(infra: Infra, group: str) -> str:
    """VPC group `group`'s Aurora cluster identifier: <project>-<group>."""
    return group_resource(infra, group)


def database_instances(cluster: str, replicas: int) -> list[str]:
    """The instance identifiers Terraform gives a cluster with `replicas` readers:
    <cluster>-instance-1 (promotion tier 0, the intended writer) to -<replicas+1>."""
    return [f"{cluster}-instance-{n}" for n in range(1, replicas + 2)]


def temporary_db_instance(cluster: str, stamp: str) -> str:
    """The reader `db resize` adds to `cluster` for a while: <cluster>-resize-<stamp>,
    `stamp` being the UTC time the resize was planned (YYYYMMDDhhmmss), which
    keeps it unique in the account and region; shortened to RDS's limit."""
    return short_name(f"{cluster}-resize-{stamp}", DB_INSTANCE_ID_LIMIT)


def database_clusters(infra: Infra) -> set[str]:
    """The identifiers of every cluster Terraform manages: one per VPC group."""
    return {database_cluster(infra, group) for group in infra.vpc_groups}


def restored_db_instance(cluster: str) -> str:
    """The writer `db restore` gives restored cluster `cluster`: <cluster>-instance-1,
    shortened to RDS's limit."""
    return short_name(f"{cluster}-instance-1", DB_INSTANCE_ID_LIMIT)


def db_cluster_id_problem(name: str) -> str | None:
    """Why `name` is not a valid Aurora cluster identifier, or None (RDS's rules,
    CreateDBCluster `DBClusterIdentifier`, cited in the module docstring: 1 to
    63 letters, digits or hyphens; the first a letter; no two consecutive
    hyphens; not ending in a hyphen)."""
    if not 1 <= len(name) <= DB_INSTANCE_ID_LIMIT:
        return f"{len(name)} characters; a cluster identifier has 1 to {DB_INSTANCE_ID_LIMIT}"
    if not _DB_CLUSTER_ID_RE.match(name):
        return "a cluster identifier has letters, digits and hyphens only, and starts with a letter"
    if "--" in name:
        return "a cluster identifier cannot have two consecutive hyphens"
    if name.endswith("-"):
        return "a cluster identifier cannot end with a hyphen"
    return None
