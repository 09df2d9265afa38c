"""The typed model of infra.yaml.

Closed models (unknown keys are errors) in strict mode: a YAML string is never
silently turned into a number or the other way round. Field-level checks live
here; rules that relate several fields live in rules.py.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

NAME_RE = r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$"
KEY_NAME_RE = r"^[a-z][a-z0-9_-]{0,30}[a-z0-9]$"


def _cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"not an IPv4 CIDR block in canonical form ({exc})") from None
    return str(network)


def _vpc_cidr(value: str) -> str:
    value = _cidr(value)
    prefix = ipaddress.IPv4Network(value).prefixlen
    if not 16 <= prefix <= 24:
        raise ValueError(f"a VPC CIDR must be between /16 and /24, not /{prefix}")
    return value


def _ssh_key(value: str) -> str:
    parts = value.split()
    allowed = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
               "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com")
    if len(parts) < 2 or parts[0] not in allowed or not re.fullmatch(r"[A-Za-z0-9+/=]+", parts[1]):
        raise ValueError("not an OpenSSH public key ('ssh-ed25519 AAAA... comment')")
    return " ".join(parts)


Name = Annotated[str, Field(pattern=NAME_RE, description="Lowercase letters, digits and hyphens; 2 to 24 characters.")]
Cidr = Annotated[str, AfterValidator(_cidr)]
VpcCidr = Annotated[str, AfterValidator(_vpc_cidr)]
SshKey = Annotated[str, AfterValidator(_ssh_key)]
InstanceType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", description="An EC2 instance type, e.g. t3.micro.")]
TagMap = dict[Annotated[str, Field(min_length=1, max_length=128)], Annotated[str, Field(max_length=256)]]


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class State(Closed):
    """Where Terraform keeps state: one S3 bucket per VPC group, or local files."""

    backend: Literal["s3", "local"] = Field("s3", description="s3 (native S3 locking) or local.")
    bucket_prefix: str | None = Field(
        None, description="State buckets are <bucket_prefix>-<group>; default <project>-tfstate."
    )


class SubnetSizes(Closed):
    """Subnet size of each tier as extra prefix bits over the VPC CIDR."""

    public: int = Field(5, ge=1, le=12, description="/16 + 5 = /21 public subnets.")
    private: int = Field(4, ge=1, le=12, description="/16 + 4 = /20 application subnets.")
    database: int = Field(5, ge=1, le=12, description="/16 + 5 = /21 database subnets.")


class FlowLogs(Closed):
    retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] = Field(
        365, description="CloudWatch Logs retention of the VPC flow logs."
    )
    traffic: Literal["ALL", "ACCEPT", "REJECT"] = "ALL"


class VpcGroup(Closed):
    """One VPC shared by the environments listed; no route to any other group."""

    production: bool = Field(False, description="Production defaults: NAT per zone, deletion protection, confirmations.")
    cidr: VpcCidr
    azs: int = Field(4, description="Availability zones to span (2 to 6).")
    nat: Literal["per_az", "single", "none"] | None = Field(
        None, description="NAT gateways: per_az (default in production), single (default elsewhere) or none."
    )
    subnets: SubnetSizes = SubnetSizes()
    flow_logs: FlowLogs = FlowLogs()
    environments: list[Name] = Field(min_length=1)

    @property
    def nat_mode(self) -> str:
        return self.nat or ("per_az" if self.production else "single")


class Bastion(Closed):
    instance_type: InstanceType = "t3.micro"
    allowed_cidrs: list[Cidr] = Field(min_length=1, description="Only these may reach port 22.")
    users: dict[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")], SshKey] = Field(min_length=1)


class Image(Closed):
    """A server class baked into an AMI by Packer."""

    base: Literal["ubuntu-22.04", "ubuntu-24.04", "debian-12", "amazon-linux-2023"] | None = None
    source_ami: Annotated[str, Field(pattern=r"^ami-[0-9a-f]{8,17}$")] | None = None
    instance_type: InstanceType = "t3.small"
    ssh_user: str | None = None
    scripts: list[str] = []

    @model_validator(mode="after")
    def _one_source(self) -> "Image":
        if (self.base is None) == (self.source_ami is None):
            raise ValueError("give exactly one of base or source_ami")
        return self


class Scaling(Closed):
    min: int = Field(1, ge=0, le=1000)
    max: int = Field(2, ge=1, le=1000)
    desired: int | None = Field(None, ge=0, le=1000, description="Defaults to min.")
    cpu_target: int | None = Field(None, ge=1, le=100, description="Target average CPU percent.")
    requests_per_target: int | None = Field(None, ge=1)
    queue_backlog_per_instance: int | None = Field(None, ge=1)


class Rollout(Closed):
    min_healthy_percentage: int = Field(90, ge=0, le=100)
    checkpoints: list[Annotated[int, Field(ge=1, le=100)]] = []
    checkpoint_delay_seconds: int = Field(300, ge=0)


class BucketAccess(Closed):
    read: list[Name] = []
    write: list[Name] = []


class Service(Closed):
    """A fleet of instances from one image: a web service (port) or a worker."""

    image: Name
    instance_type: InstanceType = "t3.small"
    port: int | None = Field(None, ge=1, le=65535, description="Set for web services behind the load balancer.")
    health_check: str = Field("/health", pattern=r"^/")
    routes: list[Annotated[str, Field(pattern=r"^/")]] = []
    consumes: list[Name] = []
    publishes: list[Name] = []
    buckets: BucketAccess = BucketAccess()
    scaling: Scaling = Scaling()
    rollout: Rollout = Rollout()

    @property
    def web(self) -> bool:
        return self.port is not None


class Serverless(Closed):
    min_capacity: float = Field(0.5, ge=0, le=256)
    max_capacity: float = Field(4, ge=1, le=256)


class Database(Closed):
    engine: Literal["aurora-mysql"] = "aurora-mysql"
    engine_version: str = "8.0.mysql_aurora.3.08.0"
    instance_class: str = Field("db.r6g.large", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    replicas: int = Field(1, ge=0, le=15)
    backup_retention_days: int = Field(7, ge=1, le=35)
    serverless: Serverless | None = None


class BucketClass(Closed):
    cdn: bool = Field(False, description="Serve through CloudFront.")
    backup: bool = Field(False, description="Copy every original to the backup bucket.")
    versioning: bool = True
    noncurrent_days: int = Field(90, ge=1)


class Cdn(Closed):
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = "PriceClass_100"
    certificate_arn: str | None = None
    aliases: dict[Name, list[str]] = Field({}, description="Hostnames per environment.")


class Queue(Closed):
    dead_letter_after: int = Field(5, ge=1, le=1000)
    visibility_timeout: int = Field(30, ge=0, le=43200)
    retention_days: int = Field(4, ge=1, le=14)


class Topic(Closed):
    subscribers: list[Annotated[str, Field(pattern=r"^queue\.[a-z][a-z0-9-]*[a-z0-9]$")]] = []


class Function(Closed):
    runtime: Literal["python3.11", "python3.12", "python3.13"] = "python3.12"
    on_upload_to: Name
    sizes: list[Annotated[int, Field(ge=16, le=8192)]] = Field(min_length=1)
    memory: int = Field(512, ge=128, le=10240)
    timeout: int = Field(60, ge=1, le=900)
    concurrency: int = Field(10, ge=1, le=1000)


class Prefix(Closed):
    read: list[Name] = []
    write: list[Name] = []


class Secrets(Closed):
    store: Literal["ssm", "secretsmanager"] = "ssm"
    prefixes: dict[Name, Prefix] = {}


class Overrides(Closed):
    """Per-environment values deep-merged over the top-level defaults."""

    tags: dict[str, Any] | None = None
    services: dict[str, Any] | None = None
    database: dict[str, Any] | None = None
    buckets: dict[str, Any] | None = None
    cdn: dict[str, Any] | None = None
    queues: dict[str, Any] | None = None
    topics: dict[str, Any] | None = None
    functions: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None


class Infra(Closed):
    """The whole platform."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, title="levels-tf infra.yaml")

    project: Name
    region: str = Field(description="AWS region, e.g. us-east-1.")
    tags: TagMap = {}
    bucket_prefix: Name | None = Field(None, description="Asset buckets are <bucket_prefix>-<env>-<class>; default the project name.")
    state: State = State()
    vpc_groups: dict[Name, VpcGroup] = Field(min_length=1)
    bastion: Bastion | None = None
    images: dict[Name, Image] = {}
    services: dict[Name, Service] = {}
    database: Database | None = None
    buckets: dict[Name, BucketClass] = {}
    cdn: Cdn = Cdn()
    queues: dict[Name, Queue] = {}
    topics: dict[Name, Topic] = {}
    functions: dict[Name, Function] = {}
    secrets: Secrets = Secrets()
    environments: dict[Name, Overrides] = {}

    def group_of(self, environment: str) -> str:
        for name, group in self.vpc_groups.items():
            if environment in group.environments:
                return name
        raise KeyError(environment)

    @property
    def all_environments(self) -> list[str]:
        return [env for group in self.vpc_groups.values() for env in group.environments]

    @property
    def state_bucket_prefix(self) -> str:
        return self.state.bucket_prefix or f"{self.project}-tfstate"

    def state_bucket(self, group: str) -> str:
        return f"{self.state_bucket_prefix}-{group}"

    def asset_bucket(self, environment: str, asset_class: str) -> str:
        return f"{self.bucket_prefix or self.project}-{environment}-{asset_class}"


OVERRIDABLE = tuple(Overrides.model_fields)
