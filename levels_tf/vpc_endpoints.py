"""Which AWS APIs the platform calls from inside a VPC, and the endpoints that keep those calls private.

Who calls what (read from the code levels-tf renders and ships):

- Application servers: their boot script reads the deployed version from SSM
  Parameter Store and copies the bundle from S3
  (templates/modules/service/user-data.sh.tftpl.j2); their role lets the
  application read its parameters (SSM, or Secrets Manager with
  `secrets.store: secretsmanager`), use the environment's data key (KMS),
  consume its queues (SQS) and publish to its topics (SNS)
  (templates/modules/service/iam.tf.j2).
- The bastion: its boot script claims its Elastic IP (EC2
  AssociateAddress, templates/modules/bastion/user-data.sh.tftpl.j2); it runs
  Amazon Linux 2023, whose package repositories are S3 buckets.
- The image function: S3 only (levels_tf/functions/image_variants). Its logs,
  traces, dead letters and environment decryption are done by the Lambda
  service, outside the VPC.

Nothing inside a VPC writes to CloudWatch Logs or calls STS today (flow logs
and Lambda logs are written by AWS services; instance credentials come from
the instance metadata service), so `logs` and `sts` are on offer but in no
default set.

Every service listed supports endpoint policies (each links its documentation):

- S3 gateway: https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html
- EC2: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/interface-vpc-endpoints.html
- KMS: https://docs.aws.amazon.com/kms/latest/developerguide/kms-vpc-endpoint.html
- CloudWatch Logs: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch-logs-and-interface-VPC.html
- Secrets Manager: https://docs.aws.amazon.com/secretsmanager/latest/userguide/vpc-endpoint-overview.html
- SNS: https://docs.aws.amazon.com/sns/latest/dg/sns-vpc-endpoint-policy.html
- SQS: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-internetwork-traffic-privacy.html
- SSM: https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-create-vpc.html
- STS: https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_sts_vpce.html

Not every AWS service supports endpoint policies ("Control access to VPC
endpoints using endpoint policies", Considerations,
https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html);
Session Manager's ssmmessages and ec2messages are not offered: the platform
does not use Session Manager.

Cost: an interface endpoint is billed per zone and hour, plus per GB
(https://aws.amazon.com/privatelink/pricing/); a gateway endpoint is free
(https://docs.aws.amazon.com/vpc/latest/privatelink/gateway-endpoints.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from .model import EndpointService, Infra, InternetClient

SERVICES: tuple[str, ...] = get_args(EndpointService)
CLIENTS: tuple[str, ...] = get_args(InternetClient)

# Amazon Linux 2023's package repositories: one S3 bucket per region, reached
# through the S3 gateway endpoint (dnf resolves
# al2023-repos-<region>-de612dc2.s3.dualstack.<region>.amazonaws.com).
AL2023_REPOSITORY_SUFFIX = "de612dc2"


@dataclass(frozen=True)
class Use:
    """One interface service a client calls, and why."""

    service: str
    client: str
    reason: str


def uses(infra: Infra) -> list[Use]:
    """The interface services the platform of `infra` calls from its VPCs, by
    client ("servers" or "bastion"), in a stable order."""
    result: list[Use] = []
    if infra.services:
        result.append(Use("ssm", "servers", "boot scripts read the deployed bundle version"))
        result.append(Use("kms", "servers", "applications use their environment's data key"))
        if infra.secrets.store == "secretsmanager" and infra.secrets.prefixes:
            result.append(Use("secretsmanager", "servers", "applications read their secrets"))
        if any(service.consumes for service in infra.services.values()):
            result.append(Use("sqs", "servers", "workers consume their queues"))
        if any(service.publishes for service in infra.services.values()):
            result.append(Use("sns", "servers", "services publish to their topics"))
    if infra.bastion:
        result.append(Use("ec2", "bastion", "the bastion claims its Elastic IP on boot"))
    return result


def services_used(infra: Infra) -> list[str]:
    """Every interface service the platform calls from a VPC, sorted."""
    return sorted({use.service for use in uses(infra)})


def interface_services(infra: Infra, group: str) -> list[str]:
    """The interface endpoints of VPC group `group`, sorted: the configured
    list, or by default every service used in production and none elsewhere."""
    vpc_group = infra.vpc_groups[group]
    chosen = vpc_group.endpoints.interface
    if chosen is None:
        return services_used(infra) if vpc_group.production else []
    return sorted(set(chosen))


def uncovered(infra: Infra, group: str, client: str) -> list[str]:
    """Services `client` calls that group `group` has no interface endpoint for, sorted."""
    present = set(interface_services(infra, group))
    return sorted({u.service for u in uses(infra) if u.client == client} - present)


def package_buckets(infra: Infra) -> list[str]:
    """S3 buckets outside the account that instances read packages from
    through the S3 gateway: Amazon Linux 2023's repositories, when the bastion
    (Amazon Linux 2023) or an image runs it."""
    al2023 = infra.bastion is not None or any(
        image.base == "amazon-linux-2023" for image in infra.images.values()
    )
    return [f"al2023-repos-{infra.region}-{AL2023_REPOSITORY_SUFFIX}"] if al2023 else []
