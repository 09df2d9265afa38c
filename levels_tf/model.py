"""The typed model of infra.yaml.

Closed records (unknown keys are errors) checked strictly: a YAML string is
never silently turned into a number or the other way round. Field-level
checks live here; rules that relate several fields live in rules.py.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import re
from dataclasses import field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from .typed import Check, Doc, Length, Pattern, Range, Record, record

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

NAME_RE = r"[a-z][a-z0-9-]{0,22}[a-z0-9]"
NAME_RULE = "use 2 to 24 lowercase letters, digits and hyphens, starting with a letter"


def _cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 CIDR block in canonical form ({exc})") from None
    return str(network)


def _vpc_cidr(value: str) -> str:
    value = _cidr(value)
    prefix = ipaddress.IPv4Network(value).prefixlen
    if not 16 <= prefix <= 24:
        raise ValueError(f"a VPC CIDR must be between /16 and /24, not /{prefix}")
    return value


_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
)


# The comment of a key: words of letters, digits and a few marks, so the key
# stays one inert word wherever it is written (it reaches the bastion's boot
# script, base64-encoded, and authorized_keys).
_KEY_COMMENT_WORD = r"[A-Za-z0-9@._+=:,/-]+"


def _key_blob_problem(key_type: str, body: str) -> str | None:
    """Why `body` is not the base64 of a `key_type` public key, or None.

    The blob is a run of length-prefixed strings (uint32 big-endian length,
    then the bytes; RFC 4253 section 6.6, and OpenSSH's PROTOCOL.key for the
    sk- types), the first naming the key type; an Ed25519 key's second is
    its 32-byte public key (RFC 8709 section 4). A key cut or pasted short
    fails here, where sshd would only ignore it on the bastion."""
    try:
        blob = base64.b64decode(body, validate=True)
    except binascii.Error:
        return (
            f"what follows {key_type} is not whole base64: copy the whole line from the .pub file"
        )
    fields = []
    at = 0
    while at < len(blob):
        size = int.from_bytes(blob[at : at + 4], "big")
        if at + 4 + size > len(blob):
            return "the key is cut short: copy the whole line from the .pub file"
        fields.append(blob[at + 4 : at + 4 + size])
        at += 4 + size
    if not fields or fields[0] != key_type.encode():
        return f"the key inside is not {key_type}: copy the whole line from the .pub file"
    if key_type.endswith("ssh-ed25519") and (len(fields) < 2 or len(fields[1]) != 32):
        return "the Ed25519 key inside is not 32 bytes: copy the whole line from the .pub file"
    return None


def _ssh_key(value: str) -> str:
    """`value` normalised to single spaces; ValueError unless it is
    `<type> <base64 body> [comment words]` (the authorized_keys format,
    sshd(8)) whose body holds a key of that type (_key_blob_problem), with a
    comment of ASCII letters, digits and @ . _ + = : , / -."""
    parts = value.split()
    if (
        len(parts) < 2
        or any(char in value for char in "\r\n")
        or parts[0] not in _KEY_TYPES
        or not re.fullmatch(r"[A-Za-z0-9+/=]+", parts[1], re.ASCII)
    ):
        raise ValueError("not an OpenSSH public key ('ssh-ed25519 AAAA... comment')")
    problem = _key_blob_problem(parts[0], parts[1])
    if problem:
        raise ValueError(f"not an OpenSSH public key: {problem}")
    if not all(re.fullmatch(_KEY_COMMENT_WORD, word, re.ASCII) for word in parts[2:]):
        raise ValueError(
            "the key comment may use only ASCII letters, digits, spaces and @ . _ + = : , / -"
        )
    return " ".join(parts)


Name = Annotated[
    str,
    Pattern(NAME_RE, NAME_RULE),
    Doc("Lowercase letters, digits and hyphens; 2 to 24 characters."),
]
Cidr = Annotated[str, Check(_cidr), Doc("An IPv4 CIDR block, e.g. 203.0.113.0/24.")]
VpcCidr = Annotated[str, Check(_vpc_cidr), Doc("An IPv4 CIDR block from /16 to /24.")]
SshKey = Annotated[
    str,
    Check(_ssh_key),
    Doc("An OpenSSH public key; its comment in ASCII letters, digits, spaces and @._+=:,/-"),
]
InstanceType = Annotated[
    str, Pattern(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "not an EC2 instance type such as t3.micro")
]
# Load balancer paths, a subset of the characters AWS accepts (no quotes, `$`
# or `&`): https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-condition-types.html#path-conditions
RoutePath = Annotated[
    str,
    Pattern(
        r"/[A-Za-z0-9_.~/@:+*?-]{0,127}",
        "a path pattern starting with / of at most 128 letters, digits and _ . ~ / @ : + * ? -",
    ),
    Doc("An ALB path pattern: up to 128 of A-Z a-z 0-9 _ . ~ / @ : + - and the wildcards * ?."),
]
HealthCheckPath = Annotated[
    str,
    Pattern(
        r"/[A-Za-z0-9_.~/@:+=%,?&-]{0,1023}",
        "a path starting with / of at most 1024 letters, digits and _ . ~ / @ : + = % , ? & -",
    ),
    Doc(
        "The target group's health check path (up to 1024 characters): "
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html"
    ),
]
# Linux login names as useradd(8) accepts them everywhere (shadow-utils'
# portable rule, https://man7.org/linux/man-pages/man8/useradd.8.html).
LinuxUser = Annotated[
    str,
    Pattern(r"[a-z_][a-z0-9_-]{0,31}", "not a Linux user name (a-z, 0-9, _ and -, up to 32)"),
]
RetentionDays = Literal[
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
]
# The tag characters every AWS service accepts, `^(?![aA][wW][sS]:)[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`
# (https://docs.aws.amazon.com/efs/latest/ug/API_Tag.html; EC2 alone allows
# more), limited here to ASCII letters, digits and spaces. `aws:` is AWS's own.
_TAG = "(?![aA][wW][sS]:)[A-Za-z0-9 +=.:/@_-]*"
_TAG_RULE = "use ASCII letters, digits, spaces and + = . : / @ _ -, not starting with aws:"
TagKey = Annotated[str, Length(1, 128), Pattern(_TAG, _TAG_RULE)]
TagValue = Annotated[str, Length(0, 256), Pattern(_TAG, _TAG_RULE)]
TagMap = dict[TagKey, TagValue]


def _list() -> Any:
    return field(default_factory=list)


def _dict() -> Any:
    return field(default_factory=dict)


@record
class State(Record):
    """Where Terraform keeps state: one S3 bucket per VPC group, or local files."""

    backend: Annotated[Literal["s3", "local"], Doc("s3 (native S3 locking) or local.")] = "s3"
    bucket_prefix: Annotated[
        str | None,
        Pattern(
            r"[a-z0-9][a-z0-9.-]*",
            "use lowercase letters, digits, '.' and '-' (S3 bucket naming rules)",
        ),
        Doc(
            "State buckets are <bucket_prefix>-<group>; default <project>-tfstate. S3 naming rules: "
            "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html"
        ),
    ] = None


# Where teams run Terraform, by default: Linux CI and developers' Macs
# (both chips) and Windows. HashiCorp publishes the aws provider for each.
PLATFORMS = ("linux_amd64", "darwin_arm64", "darwin_amd64", "windows_amd64")
Platform = Annotated[
    str,
    Pattern(
        r"(darwin|freebsd|linux|openbsd|solaris|windows)_(386|amd64|arm|arm64)",
        "not a Terraform platform <os>_<arch> such as linux_amd64 or darwin_arm64",
    ),
]


@record
class TerraformSettings(Record):
    """How the team runs Terraform on the rendered stacks."""

    platforms: Annotated[
        list[Platform],
        Length(1),
        Doc(
            "Platforms (<os>_<arch>) whose provider checksums `levels-tf lock` records in every stack's "
            ".terraform.lock.hcl, so `terraform init` can verify the providers on each."
        ),
    ] = field(default_factory=lambda: list(PLATFORMS))


HOSTNAME_RE = r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
Hostname = Annotated[str, Pattern(HOSTNAME_RE, "not a lowercase DNS name such as api.example.com")]
CertificateArn = Annotated[
    str,
    Pattern(
        r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}",
        "not an ACM certificate ARN",
    ),
]


@record
class Dns(Record):
    """The platform's domain and its Route 53 public hosted zone."""

    domain: Annotated[Hostname, Doc("Hostnames default to <environment>.<domain>.")]
    zone_id: Annotated[
        str | None,
        Pattern(r"Z[A-Z0-9]{1,32}", "not a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ"),
        Doc("Validates requested certificates and holds the load balancers' alias records."),
    ] = None


@record
class LoadBalancer(Record):
    """The Application Load Balancer of each VPC group that runs web services."""

    ssl_policy: Annotated[
        Literal[
            "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
            "ELBSecurityPolicy-TLS13-1-3-2021-06",
            "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
        ],
        Doc("TLS policy of the HTTPS listener; all are TLS 1.2+ with forward secrecy."),
    ] = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    certificates: Annotated[
        dict[Name, CertificateArn],
        Doc(
            "ACM certificate per VPC group; a group without one requests a DNS-validated certificate in dns.zone_id."
        ),
    ] = _dict()
    hostnames: Annotated[
        dict[Name, Annotated[list[Hostname], Length(1)]],
        Doc("Hostnames per environment; default [<environment>.<dns.domain>]."),
    ] = _dict()
    idle_timeout: Annotated[
        int,
        Range(1, 4000),
        Doc("Seconds a connection may stay idle before the load balancer closes it."),
    ] = 60
    access_log_days: Annotated[int, Range(1, 3650), Doc("Days the access logs are kept.")] = 90


@record
class SubnetSizes(Record):
    """Subnet size of each tier, as prefix bits added to the VPC's."""

    public: Annotated[int, Range(1, 12), Doc("/16 + 5 = /21 public subnets.")] = 5
    private: Annotated[int, Range(1, 12), Doc("/16 + 4 = /20 application subnets.")] = 4
    database: Annotated[int, Range(1, 12), Doc("/16 + 5 = /21 database subnets.")] = 5


@record
class FlowLogs(Record):
    """The VPC's flow logs, in CloudWatch Logs under the group's KMS key."""

    retention_days: Annotated[
        RetentionDays, Doc("CloudWatch Logs retention of the VPC flow logs.")
    ] = 365
    traffic: Annotated[
        Literal["ALL", "ACCEPT", "REJECT"],
        Doc("Which connections are logged: all, accepted or rejected."),
    ] = "ALL"


# The AWS services whose interface endpoints a VPC group may have, by the
# last part of their endpoint service name (com.amazonaws.<region>.<name>);
# what each is for and who calls it: vpc_endpoints.py.
EndpointService = Literal["ec2", "kms", "logs", "secretsmanager", "sns", "sqs", "ssm", "sts"]
# Who keeps HTTPS to the internet (0.0.0.0/0): the application servers, the bastion.
InternetClient = Literal["servers", "bastion"]


@record
class Endpoints(Record):
    """Private paths to AWS APIs: the S3 gateway endpoint is always there (it is
    free); interface endpoints are billed per zone and hour, so they are chosen."""

    interface: Annotated[
        list[EndpointService] | None,
        Doc(
            "Interface endpoints (private DNS, in the private subnets). Default: in production "
            "every service the platform calls from the VPC, elsewhere none."
        ),
    ] = None
    zones: Annotated[
        int | None,
        Range(1, 6),
        Doc(
            "Put the interface endpoints in the first N zones only (fewer zones cost less); "
            "default every zone of the group."
        ),
    ] = None


@record
class VpcGroup(Record):
    """One VPC shared by the environments listed; no route to any other group."""

    production: Annotated[
        bool, Doc("Production defaults: NAT per zone, confirmations before changes.")
    ] = False
    deletion_protection: Annotated[
        bool, Doc("Protect the load balancer and database from deletion.")
    ] = True
    cidr: VpcCidr
    azs: Annotated[int, Doc("Availability zones to span (2 to 6).")] = 4
    nat: Annotated[
        Literal["per_az", "single", "none"] | None,
        Doc("NAT gateways: per_az (default in production), single (default elsewhere) or none."),
    ] = None
    subnets: SubnetSizes = SubnetSizes()
    flow_logs: FlowLogs = FlowLogs()
    endpoints: Endpoints = Endpoints()
    internet_https: Annotated[
        list[InternetClient],
        Doc(
            "Who may open HTTPS connections to the internet: servers (package mirrors, "
            "third-party APIs) and the bastion. AWS APIs without an interface endpoint go "
            "this way too. [] closes it."
        ),
    ] = field(default_factory=lambda: ["servers", "bastion"])
    environments: Annotated[
        list[Name], Length(1), Doc("The environments that share this VPC, each in one group only.")
    ]

    @property
    def nat_mode(self) -> str:
        return self.nat or ("per_az" if self.production else "single")


@record
class Bastion(Record):
    """The only SSH door into a VPC group."""

    instance_type: Annotated[InstanceType, Doc("EC2 instance type of the bastion.")] = "t3.micro"
    allowed_cidrs: Annotated[list[Cidr], Length(1), Doc("Only these may reach port 22.")]
    users: Annotated[
        dict[LinuxUser, SshKey],
        Length(1),
        Doc("Login name: public key."),
    ]


@record
class Image(Record):
    """A server class baked into an AMI by Packer."""

    base: Annotated[
        Literal["ubuntu-22.04", "ubuntu-24.04", "debian-12", "amazon-linux-2023"] | None,
        Doc("The distribution to start from, its publisher's latest AMI; or give source_ami."),
    ] = None
    source_ami: Annotated[
        Annotated[
            str, Pattern(r"ami-[0-9a-f]{8,17}", "not an AMI id such as ami-0123456789abcdef0")
        ]
        | None,
        Doc("An AMI of your own to start from, instead of base."),
    ] = None
    instance_type: Annotated[InstanceType, Doc("EC2 instance type Packer builds on.")] = "t3.small"
    ssh_user: Annotated[
        LinuxUser | None, Doc("Login Packer uses; default the base image's usual one.")
    ] = None
    scripts: Annotated[
        list[str], Doc("Shell scripts, relative to infra.yaml, run in order on the build instance.")
    ] = _list()

    def problems(self) -> list[tuple[tuple, str]]:
        if (self.base is None) == (self.source_ami is None):
            return [((), "give exactly one of base or source_ami")]
        return []


@record
class Scaling(Record):
    """The fleet's Auto Scaling group size and its target tracking policies."""

    min: Annotated[int, Range(0, 1000), Doc("Fewest instances.")] = 1
    max: Annotated[int, Range(1, 1000), Doc("Most instances.")] = 2
    desired: Annotated[int | None, Range(0, 1000), Doc("Defaults to min.")] = None
    cpu_target: Annotated[int | None, Range(1, 100), Doc("Target average CPU percent.")] = None
    requests_per_target: Annotated[
        int | None, Range(1), Doc("Target load balancer requests per instance (web services).")
    ] = None
    queue_backlog_per_instance: Annotated[
        int | None, Range(1), Doc("Target visible messages per instance of the consumed queues.")
    ] = None


@record
class Rollout(Record):
    """How a new image reaches the fleet: an instance refresh of the Auto Scaling group."""

    min_healthy_percentage: Annotated[
        int, Range(0, 100), Doc("Share of the fleet kept in service while instances are replaced.")
    ] = 90
    checkpoints: Annotated[
        list[Annotated[int, Range(1, 100)]],
        Doc("Percentages of the fleet replaced after which the refresh pauses."),
    ] = _list()
    checkpoint_delay_seconds: Annotated[
        int, Range(0), Doc("Seconds the refresh pauses at each checkpoint.")
    ] = 300


@record
class BucketAccess(Record):
    """The asset classes whose buckets a service's instances may use."""

    read: Annotated[list[Name], Doc("Asset classes it may read.")] = _list()
    write: Annotated[list[Name], Doc("Asset classes it may read and write.")] = _list()


@record
class Service(Record):
    """A fleet of instances from one image: a web service (port) or a worker."""

    image: Annotated[Name, Doc("The image (images.<name>) its instances boot.")]
    instance_type: Annotated[InstanceType, Doc("EC2 instance type of its instances.")] = "t3.small"
    port: Annotated[
        int | None, Range(1, 65535), Doc("Set for web services behind the load balancer.")
    ] = None
    health_check: HealthCheckPath = "/health"
    routes: Annotated[
        list[RoutePath],
        Doc("Path patterns the load balancer sends to it; none: the default route."),
    ] = _list()
    consumes: Annotated[list[Name], Doc("Queues it receives from.")] = _list()
    publishes: Annotated[list[Name], Doc("Topics it publishes to.")] = _list()
    buckets: BucketAccess = BucketAccess()
    scaling: Scaling = Scaling()
    rollout: Rollout = Rollout()

    @property
    def web(self) -> bool:
        return self.port is not None


@record
class Serverless(Record):
    """Aurora Serverless v2 instead of provisioned instances, in Aurora capacity units."""

    min_capacity: Annotated[float, Range(0, 256), Doc("Fewest capacity units (0 pauses it).")] = 0.5
    max_capacity: Annotated[float, Range(1, 256), Doc("Most capacity units.")] = 4.0


# RDS instance classes are db.<family>.<size>, in lowercase: "DB instance classes",
# https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Concepts.DBInstanceClass.html
DB_INSTANCE_CLASS = Pattern(
    r"db\.[a-z0-9]+\.[a-z0-9]+", "not an RDS instance class such as db.r6g.large"
)


@record
class Database(Record):
    """The Aurora MySQL cluster of each VPC group: a writer and its readers."""

    engine: Annotated[Literal["aurora-mysql"], Doc("The database engine.")] = "aurora-mysql"
    engine_version: Annotated[
        str,
        Pattern(
            r"[0-9]+\.[0-9]+\.mysql_aurora\.[0-9]+\.[0-9]+\.[0-9]+",
            "not an Aurora MySQL version such as 8.0.mysql_aurora.3.08.0",
        ),
        Doc(
            "Aurora MySQL version, <MySQL major.minor>.mysql_aurora.<Aurora version>: "
            "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Updates.Versions.html"
        ),
    ] = "8.0.mysql_aurora.3.08.0"
    instance_class: Annotated[
        str,
        DB_INSTANCE_CLASS,
        Doc("Instance class of the writer and every reader."),
    ] = "db.r6g.large"
    replicas: Annotated[
        int, Range(0, 15), Doc("Read replicas beside the writer (Aurora allows 15).")
    ] = 1
    backup_retention_days: Annotated[
        int, Range(1, 35), Doc("Days of automated backups, the window of point-in-time restore.")
    ] = 7
    serverless: Serverless | None = None


@record
class BucketClass(Record):
    """An asset class: one S3 bucket per environment, <bucket_prefix>-<environment>-<class>;
    backup and logs are reserved names."""

    cdn: Annotated[bool, Doc("Serve through CloudFront.")] = False
    backup: Annotated[bool, Doc("Copy every original to the backup bucket.")] = False
    versioning: Annotated[bool, Doc("Keep earlier versions of every object.")] = True
    noncurrent_days: Annotated[
        int, Range(1), Doc("Days an earlier version is kept before it expires.")
    ] = 90


# Codes ISO 3166-1 reserves without assigning them to a country, that people
# write for one: its exceptional reservations
# (https://en.wikipedia.org/wiki/ISO_3166-1_alpha-2#Exceptional_reservations).
_RESERVED = {
    "UK": "did you mean GB?",  # reserved at the United Kingdom's request; GB is its code
    "EU": "the European Union is no country: list its member states",
    "EZ": "the eurozone is no country: list its member states",
    "UN": "the United Nations is no country: list the countries",
    "FX": "did you mean FR?",  # metropolitan France
    "EA": "did you mean ES?",  # Ceuta and Melilla
    "IC": "did you mean ES?",  # the Canary Islands
    "AC": "did you mean SH?",  # Ascension Island
    "TA": "did you mean SH?",  # Tristan da Cunha
    "DG": "did you mean IO?",  # Diego Garcia
    "CP": "did you mean FR?",  # Clipperton Island
}


def _country(code: str) -> str:
    """`code` when ISO 3166-1 assigns it as the alpha-2 code of a country,
    which is what CloudFront's geo restriction takes
    (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/georestrictions.html);
    ValueError otherwise, with the assigned code for a reserved one such as
    UK. The list of assigned codes is pycountry's copy of the standard
    (https://pypi.org/project/pycountry/, from Debian's iso-codes)."""
    import pycountry  # loaded by the one check that needs it, not by every import of the model

    if pycountry.countries.get(alpha_2=code) is not None:
        return code
    hint = _RESERVED.get(code, "the codes are listed at https://www.iso.org/obp/ui/#search")
    raise ValueError(f"{code!r} is not the ISO 3166-1 alpha-2 code of a country; {hint}")


@record
class Cdn(Record):
    """The CloudFront distribution of each environment, in front of its cdn asset classes."""

    price_class: Annotated[
        Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"],
        Doc("Which edge locations serve: the cheapest regions (100), most (200) or all."),
    ] = "PriceClass_100"
    certificate_arn: Annotated[
        CertificateArn | None, Doc("ACM certificate in us-east-1 covering every alias.")
    ] = None
    aliases: Annotated[dict[Name, list[Hostname]], Doc("Hostnames per environment.")] = _dict()
    geo_allow_list: Annotated[
        list[
            Annotated[
                str,
                Pattern(r"[A-Z]{2}", "not an ISO 3166-1 alpha-2 country code such as DE"),
                Check(_country),
            ]
        ],
        Doc(
            "Countries (ISO 3166-1 alpha-2 codes, e.g. GB, not UK) allowed to reach CloudFront, "
            "each once; empty allows every country."
        ),
    ] = _list()
    hsts_preload: Annotated[
        bool,
        Doc(
            "Send HSTS with preload, consenting to the browsers' HTTPS-only list for the "
            "whole domain (hard to undo)."
        ),
    ] = False


@record
class Queue(Record):
    """An SQS queue per environment, with its dead-letter queue."""

    dead_letter_after: Annotated[
        int, Range(1, 1000), Doc("Receives before a message moves to the dead-letter queue.")
    ] = 5
    visibility_timeout: Annotated[
        int, Range(0, 43200), Doc("Seconds a received message stays hidden from other consumers.")
    ] = 30
    retention_days: Annotated[int, Range(1, 14), Doc("Days a message is kept.")] = 4


@record
class Topic(Record):
    """An SNS topic per environment."""

    subscribers: Annotated[
        list[
            Annotated[
                str,
                Pattern(r"queue\.[a-z][a-z0-9-]*[a-z0-9]", "write subscribers as queue.<name>"),
            ]
        ],
        Doc("Queues that receive every message, as queue.<name>."),
    ] = _list()


@record
class Function(Record):
    """The image function: variants of every upload, and a copy of the original in the backup bucket."""

    code: Annotated[Literal["image-variants"], Doc("Which of levels-tf's functions runs.")] = (
        "image-variants"
    )
    runtime: Annotated[
        Literal["python3.11", "python3.12", "python3.13"], Doc("The Lambda runtime.")
    ] = "python3.12"
    on_upload_to: Annotated[Name, Doc("The asset class whose uploads start it.")]
    sizes: Annotated[
        list[Annotated[int, Range(16, 8192)]], Length(1), Doc("Widths in pixels of the variants.")
    ]
    variants_prefix: Annotated[
        str,
        Pattern(r"[a-z0-9][a-z0-9/_-]*/", "a key prefix ending in '/', e.g. variants/"),
        Doc("Key prefix the variants are written under."),
    ] = "variants/"
    variants_bucket: Annotated[
        Name | None,
        Doc(
            "Asset class receiving the variants; default the uploads bucket itself, under variants_prefix."
        ),
    ] = None
    memory: Annotated[int, Range(128, 10240), Doc("Memory in MB (Lambda: 128 to 10240).")] = 512
    timeout: Annotated[
        int, Range(1, 900), Doc("Seconds one run may take (Lambda: at most 900).")
    ] = 60
    concurrency: Annotated[int, Range(1, 1000), Doc("Runs at once, reserved for it.")] = 10


ParameterName = Annotated[
    str, Pattern(r"[a-zA-Z0-9_.-]{1,100}", "use letters, digits, '_', '.' and '-'")
]


@record
class Prefix(Record):
    """A parameter prefix, /<project>/<environment>/<name>/, and who may use it."""

    read: Annotated[list[Name], Doc("Services, developers or ci that may read the prefix.")] = (
        _list()
    )
    write: Annotated[list[Name], Doc("Services, developers or ci that may write the prefix.")] = (
        _list()
    )
    parameters: Annotated[
        list[ParameterName],
        Doc("Parameters declared with a placeholder; their real values are set out of band."),
    ] = _list()


@record
class Secrets(Record):
    """Secrets and parameters under per-environment prefixes, with access by prefix."""

    store: Annotated[
        Literal["ssm", "secretsmanager"],
        Doc("SSM Parameter Store (SecureString) or Secrets Manager."),
    ] = "ssm"
    prefixes: dict[Name, Prefix] = _dict()


def _role_arn(value: str) -> str:
    if re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:root", value):
        raise ValueError(
            f"{value!r} is an account root: it would let every principal of that account "
            "that its IAM policies allow assume the CI role; name IAM roles, or use ci.github"
        )
    if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", value):
        raise ValueError(
            f"{value!r} is not an IAM role ARN such as arn:aws:iam::123456789012:role/ci"
        )
    return value


# What a GitHub ref or environment may be called here: letters, digits and
# `_ . - /`, plus StringLike's wildcards `*` and `?` (refused in production
# groups by rules._ci_trust). Quotes, spaces, `:` and `$` never reach a policy.
GITHUB_NAME_RE = r"[A-Za-z0-9_.*?-]+(/[A-Za-z0-9_.*?-]+)*"
GithubName = Annotated[
    str,
    Length(1, 255),
    Pattern(
        r"(?!refs/)" + GITHUB_NAME_RE,
        "use letters, digits, '_', '.', '-', '/' and the wildcards '*' and '?' "
        "(a branch or tag without its refs/heads/ or refs/tags/ prefix)",
    ),
]


@record
class GithubSubject(Record):
    """Which workflow runs of the repository may assume one VPC group's CI role:
    the jobs of one GitHub environment, or the runs on some branches, or on some tags."""

    environment: Annotated[
        GithubName | None,
        Doc(
            "A GitHub environment (protect it with required reviewers or deployment "
            "branches): sub repo:OWNER/REPO:environment:NAME."
        ),
    ] = None
    branches: Annotated[
        list[GithubName],
        Doc("Branches, e.g. [main]: sub repo:OWNER/REPO:ref:refs/heads/BRANCH."),
    ] = _list()
    tags: Annotated[
        list[GithubName],
        Doc("Tags, e.g. [v1.2.0]: sub repo:OWNER/REPO:ref:refs/tags/TAG."),
    ] = _list()

    def problems(self) -> list[tuple[tuple, str]]:
        given = [name for name in ("environment", "branches", "tags") if getattr(self, name)]
        if len(given) != 1:
            return [((), "give exactly one of environment, branches or tags")]
        return []

    @property
    def names(self) -> list[str]:
        """The environment, branches or tags named, as written."""
        return [self.environment] if self.environment else [*self.branches, *self.tags]


# The words the documentation uses for a repository not yet named.
_PLACEHOLDER_WORDS = {"owner/repo", "owner/repository"}


def _not_placeholder(value: str) -> str:
    """`value` unless it is a placeholder: anything with `<` or `>` (such as
    github_oidc.REPOSITORY_PLACEHOLDER), or OWNER/REPO as the documentation writes it;
    ValueError telling the user to write their repository."""
    if "<" in value or ">" in value or value.lower() in _PLACEHOLDER_WORDS:
        raise ValueError(
            f"{value!r} is a placeholder: write the GitHub repository whose workflows deploy, "
            "as OWNER/REPO (its CI runs may then assume the CI roles)"
        )
    return value


def _some_subject(subjects: dict) -> dict:
    """`subjects` unless empty: a trust needs a `sub` condition naming the
    repository and the environment, branches or tags, so a ci.github that
    names no subject would trust nothing, and is refused rather than dropped."""
    if not subjects:
        raise ValueError(
            "no subject: name, per VPC group, the GitHub environment, branches or tags whose "
            "workflow runs may assume its CI role, e.g. {production: {environment: production}}"
        )
    return subjects


@record
class Github(Record):
    """GitHub Actions OIDC: the workflow runs that may assume each VPC group's CI role."""

    repository: Annotated[
        str,
        Check(_not_placeholder),
        Pattern(
            r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9_.-]{1,100}",
            "not a GitHub repository in the form OWNER/REPO",
        ),
        Doc("OWNER/REPO whose workflows deploy (the starter's <owner>/<repository> is refused)."),
    ]
    subjects: Annotated[
        dict[Name, GithubSubject],
        Check(_some_subject),
        Length(1),
        Doc(
            "Per VPC group: the environment, branches or tags whose runs may assume its role; "
            "required, with at least one group."
        ),
    ]
    provider_arn: Annotated[
        str | None,
        Pattern(
            r"arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com",
            "not the ARN of a GitHub Actions OIDC provider "
            "(arn:aws:iam::ACCOUNT:oidc-provider/token.actions.githubusercontent.com)",
        ),
        Doc(
            "The account's GitHub OIDC identity provider, when something else manages it; "
            "default the one `levels-tf bootstrap` creates."
        ),
    ] = None
    levels_tf: Annotated[
        str | None,
        Pattern(
            r"git\+https://[A-Za-z0-9.-]+(?:/[A-Za-z0-9._~-]+)+@[0-9a-f]{40}"
            r"|https://[A-Za-z0-9.-]+(?:/[A-Za-z0-9._~%+-]+)*/levels_tf-[A-Za-z0-9._+-]+\.whl"
            r"#sha256=[0-9a-f]{64}",
            "not a pinned levels-tf source: git+https://HOST/OWNER/REPO@FULL_COMMIT_SHA, "
            "or https://HOST/PATH/levels_tf-VERSION-py3-none-any.whl#sha256=HASH",
        ),
        Doc(
            "Where the workflows install levels-tf from, pinned like their actions: a git "
            "repository at a full commit (git+https://github.com/OWNER/levels-tf@SHA) or a wheel "
            "with its sha256 (https://.../levels_tf-VERSION-py3-none-any.whl#sha256=HASH); "
            "default levels-tf==VERSION from PyPI."
        ),
    ] = None


@record
class Ci(Record):
    """The CI/CD role of each VPC group, and who may assume it: GitHub Actions
    workflow runs (github), IAM roles (assumed_by), or both; at least one."""

    github: Github | None = None
    assumed_by: Annotated[
        list[Annotated[str, Check(_role_arn)]],
        Doc("IAM roles (ARNs) that may assume the CI role, e.g. the role of a CI runner."),
    ] = _list()


@record
class Overrides(Record):
    """Per-environment values deep-merged over the top-level defaults."""

    tags: Annotated[dict[str, Any] | None, Doc("Merged over the top-level tags.")] = None
    services: Annotated[
        dict[str, Any] | None,
        Doc("Merged over the top-level services; changes only the services defined there."),
    ] = None
    database: Annotated[
        dict[str, Any] | None,
        Doc(
            "Merged over the top-level database, which must exist; only in a group of one environment."
        ),
    ] = None
    buckets: Annotated[
        dict[str, Any] | None,
        Doc("Merged over the top-level buckets; changes only the bucket classes defined there."),
    ] = None
    cdn: Annotated[dict[str, Any] | None, Doc("Merged over the top-level cdn.")] = None
    queues: Annotated[
        dict[str, Any] | None,
        Doc("Merged over the top-level queues; changes only the queues defined there."),
    ] = None
    topics: Annotated[
        dict[str, Any] | None,
        Doc("Merged over the top-level topics; changes only the topics defined there."),
    ] = None
    functions: Annotated[
        dict[str, Any] | None,
        Doc("Merged over the top-level functions; changes only the functions defined there."),
    ] = None
    secrets: Annotated[dict[str, Any] | None, Doc("Merged over the top-level secrets.")] = None


@record
class Infra(Record):
    """A whole AWS platform: VPC groups, their environments and what runs in them."""

    project: Name
    region: Annotated[
        str,
        Pattern(r"[a-z]{2}(-[a-z]+)+-[0-9]", "not an AWS region name such as us-east-1"),
        Doc("AWS region, e.g. us-east-1."),
    ]
    tags: Annotated[
        TagMap,
        Doc(
            "Tags on every resource (the provider's default_tags); Project, VpcGroup, Stack, "
            "Environment and ManagedBy are added."
        ),
    ] = _dict()
    bucket_prefix: Annotated[
        Name | None,
        Doc("Asset buckets are <bucket_prefix>-<env>-<class>; default the project name."),
    ] = None
    state: State = State()
    terraform: TerraformSettings = TerraformSettings()
    vpc_groups: Annotated[dict[Name, VpcGroup], Length(1)]
    dns: Dns | None = None
    load_balancer: LoadBalancer = LoadBalancer()
    bastion: Bastion | None = None
    images: dict[Name, Image] = _dict()
    services: dict[Name, Service] = _dict()
    database: Database | None = None
    buckets: dict[Name, BucketClass] = _dict()
    cdn: Cdn = Cdn()
    queues: dict[Name, Queue] = _dict()
    topics: dict[Name, Topic] = _dict()
    functions: dict[Name, Function] = _dict()
    secrets: Secrets = Secrets()
    ci: Ci = Ci()
    environments: dict[Name, Overrides] = _dict()

    def group_of(self, environment: str) -> str:
        for name, group in self.vpc_groups.items():
            if environment in group.environments:
                return name
        raise KeyError(environment)

    @property
    def all_environments(self) -> list[str]:
        return [env for group in self.vpc_groups.values() for env in group.environments]

    def hostnames(self, environment: str) -> list[str]:
        if environment in self.load_balancer.hostnames:
            return list(self.load_balancer.hostnames[environment])
        if self.dns:
            return [f"{environment}.{self.dns.domain}"]
        return []

    def web_services(self) -> list[str]:
        return [name for name, service in self.services.items() if service.web]


OVERRIDABLE = tuple(f.name for f in dataclasses.fields(Overrides))


def as_dict(value: DataclassInstance) -> dict[str, Any]:
    """A record's fields, and those of the records it holds, as plain dicts and lists."""
    return dataclasses.asdict(value)
