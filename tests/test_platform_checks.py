"""The platform checks against a real moto server: small platforms built with
boto3, some parts right and some wrong, and what each check says of them.

The configuration below has two VPC groups of one environment each: the
tests build `prod`/`live` right and `lab`/`trial` wrong, then assert that the
first's checks pass and the second's fail with a detail that names what was
found instead. The whole platform passing is the rehearsal's test."""

from __future__ import annotations

import io
import json
import zipfile

import boto3
import pytest

from levels_tf import context
from levels_tf.aws import Aws, AwsError
from levels_tf.platform_checks import Check, check_platform
from levels_tf.validation import load_config

# Each test builds a small platform in the moto server: about 20 seconds in all,
# a third of the quick unit run, so they run with the slow tier.
pytestmark = pytest.mark.slow

CONFIG = """\
project: chk
region: us-east-1
vpc_groups:
  prod:
    production: true
    cidr: 10.20.0.0/20
    azs: 2
    nat: none
    environments: [live]
  lab:
    cidr: 10.21.0.0/20
    azs: 2
    nat: none
    environments: [trial]
ci:
  github:
    repository: acme/chk
    subjects:
      prod: {environment: live}
      lab: {branches: [main]}
dns:
  domain: chk.example
  zone_id: Z0CHKEXAMPLE00
bastion:
  allowed_cidrs: [203.0.113.0/24]
  users:
    ops: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxldmVscy1hbGljZS1leGFtcGxlLWtleS0tLS0tLS0t ops@laptop
images:
  web: {base: amazon-linux-2023}
services:
  web:
    image: web
    port: 8080
    routes: ["/app/*"]
    scaling: {min: 1, max: 3, desired: 2}
database:
  replicas: 0
buckets:
  assets: {cdn: true}
  scratch: {versioning: false}
queues:
  jobs: {dead_letter_after: 3}
topics:
  events: {subscribers: [queue.jobs]}
functions:
  thumbs: {on_upload_to: assets, sizes: [64]}
secrets:
  store: STORE
  prefixes:
    app: {read: [web], parameters: [token]}
environments:
  live:
    database.replicas: 1
    services.web.scaling: {min: 2, max: 4, desired: 2}
"""


@pytest.fixture
def config(tmp_path):
    def load(store: str = "ssm"):
        path = tmp_path / "infra.yaml"
        path.write_text(CONFIG.replace("STORE", store), encoding="utf-8")
        return load_config(path)

    return load


@pytest.fixture
def aws(aws_env) -> Aws:
    return Aws("us-east-1", aws_env, credentials=("testing", "testing"))


@pytest.fixture
def client(aws_env):
    return lambda service: boto3.client(service, endpoint_url=aws_env, region_name="us-east-1")


@pytest.fixture
def amis() -> dict[str, str]:
    """What images.lock records for image web; "other" is an AMI no bake recorded."""
    return {"web": "ami-0b0b0b0b0b0b0b0b1", "other": "ami-0c0c0c0c0c0c0c0c2"}


def checks_of(checks: list[Check], *words: str) -> list[Check]:
    return [check for check in checks if all(word in check.name for word in words)]


def one(checks: list[Check], *words: str) -> Check:
    found = checks_of(checks, *words)
    assert len(found) == 1, [c.name for c in checks]
    return found[0]


def tags(name: str, **more: str) -> list[dict[str, str]]:
    return [{"Key": "Name", "Value": name}] + [{"Key": k, "Value": v} for k, v in more.items()]


def vpc(ec2, name: str, cidr: str) -> str:
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc_id], Tags=tags(name))
    return vpc_id


def subnet(ec2, vpc_id: str, zone: str, cidr: str, tier: str) -> str:
    answer = ec2.create_subnet(VpcId=vpc_id, AvailabilityZone=zone, CidrBlock=cidr)
    subnet_id = answer["Subnet"]["SubnetId"]
    ec2.create_tags(Resources=[subnet_id], Tags=tags(f"{tier}-{zone}", Tier=tier))
    return subnet_id


def network(ec2, config, group: str) -> tuple[str, dict[str, dict[str, str]]]:
    """The group's VPC with every subnet as the network module lays them out."""
    plan = context.network(context.group_infra(config, group), group)
    vpc_id = vpc(ec2, plan["name"], plan["cidr"])
    ids = {
        zone: {
            tier: subnet(ec2, vpc_id, zone, spec[tier], tier)
            for tier in ("public", "private", "database")
        }
        for zone, spec in plan["zones"].items()
    }
    return vpc_id, ids


def security_group(ec2, vpc_id: str, name: str, *rules: dict) -> str:
    group_id = ec2.create_security_group(GroupName=name + "-x", Description=name, VpcId=vpc_id)[
        "GroupId"
    ]
    ec2.create_tags(Resources=[group_id], Tags=tags(name))
    if rules:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=list(rules))
    return group_id


def tcp(port: int, cidr: str | None = None, group: str | None = None) -> dict:
    rule: dict = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    if cidr:
        rule["IpRanges"] = [{"CidrIp": cidr}]
    if group:
        rule["UserIdGroupPairs"] = [{"GroupId": group}]
    return rule


# -- 1. networks ------------------------------------------------------------------------------


def test_vpcs_subnets_and_isolation(aws, config, client, amis):
    cfg = config()
    ec2 = client("ec2")
    prod, _ = network(ec2, cfg, "prod")
    lab = vpc(ec2, "chk-lab", "10.99.0.0/20")  # not the configured CIDR
    subnet(ec2, lab, "us-east-1a", "10.99.0.0/24", "public")
    subnet(ec2, lab, "us-east-1a", "10.99.1.0/24", "private")
    subnet(ec2, lab, "us-east-1a", "10.99.2.0/24", "private")

    checks = check_platform(aws, cfg, amis)
    assert one(checks, "prod: VPC chk-prod has CIDR 10.20.0.0/20").passed
    assert one(checks, "prod: public, private and database subnets").passed
    assert one(checks, "isolated").passed
    vpc_check = one(checks, "lab: VPC chk-lab")
    assert not vpc_check.passed and "10.99.0.0/20" in vpc_check.detail
    subnets = one(checks, "lab: public, private and database subnets")
    assert not subnets.passed
    assert "1 public subnets, expected 2" in subnets.detail
    assert "private subnets share zones us-east-1a" in subnets.detail
    assert "0 database subnets, expected 2" in subnets.detail

    # Joined: a peering connection, and a route through it.
    peering = ec2.create_vpc_peering_connection(VpcId=prod, PeerVpcId=lab)["VpcPeeringConnection"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=peering["VpcPeeringConnectionId"])
    table = ec2.create_route_table(VpcId=prod)["RouteTable"]["RouteTableId"]
    ec2.create_route(
        RouteTableId=table,
        DestinationCidrBlock="10.99.0.0/20",
        VpcPeeringConnectionId=peering["VpcPeeringConnectionId"],
    )
    isolation = one(check_platform(aws, cfg, amis), "isolated")
    assert not isolation.passed
    assert f"peering {peering['VpcPeeringConnectionId']}" in isolation.detail
    assert (
        f"route table {table} routes 10.99.0.0/20 to lab via {peering['VpcPeeringConnectionId']}"
        in isolation.detail
    )


def test_a_missing_vpc_fails_its_checks_and_raises_nothing(aws, config, amis):
    checks = check_platform(aws, config(), amis)
    assert checks and not any(check.passed for check in checks)
    assert one(checks, "prod: VPC chk-prod").detail == "no VPC named chk-prod"
    assert (
        one(checks, "live: fleet chk-live-web").detail == "no Auto Scaling group named chk-live-web"
    )
    assert one(checks, "trial: bucket chk-trial-assets").detail == "no bucket chk-trial-assets"


def test_an_unreachable_endpoint_raises(config, amis, aws_env):
    unreachable = Aws("us-east-1", "http://127.0.0.1:9", credentials=("testing", "testing"))
    with pytest.raises(AwsError, match="cannot reach"):
        check_platform(unreachable, config(), amis)


# -- 2. security groups ------------------------------------------------------------------------


def test_ssh_and_database_doors(aws, config, client, amis):
    cfg = config()
    ec2 = client("ec2")
    prod, _ = network(ec2, cfg, "prod")
    bastion = security_group(ec2, prod, "chk-prod-bastion", tcp(22, cidr="203.0.113.0/24"))
    app = security_group(ec2, prod, "chk-live-app", tcp(22, group=bastion))
    security_group(ec2, prod, "chk-live-web", tcp(8080, group=app))
    security_group(ec2, prod, "chk-prod-db", tcp(3306, group=app))
    lab, _ = network(ec2, cfg, "lab")
    lab_bastion = security_group(
        ec2, lab, "chk-lab-bastion", tcp(22, cidr="203.0.113.0/24"), tcp(22, cidr="0.0.0.0/0")
    )
    lab_app = security_group(ec2, lab, "chk-trial-app", tcp(22, group=lab_bastion))
    security_group(
        ec2,
        lab,
        "chk-trial-web",
        {
            "IpProtocol": "tcp",
            "FromPort": 0,
            "ToPort": 65535,
            "IpRanges": [{"CidrIp": "10.21.0.0/20"}],
        },
    )
    security_group(ec2, lab, "chk-lab-db", tcp(3306, cidr="10.21.0.0/20"))

    checks = check_platform(aws, cfg, amis)
    assert one(checks, "prod: SSH reaches the bastion only from 203.0.113.0/24").passed
    assert one(checks, "live: SSH reaches its application servers").passed
    assert one(checks, "prod: the database admits port 3306 only from").passed

    door = one(checks, "lab: SSH reaches the bastion")
    assert not door.passed and door.detail == "also admits tcp 22 from 0.0.0.0/0"
    apps = one(checks, "trial: SSH reaches its application servers")
    assert (
        not apps.passed
        and "chk-trial-web's group" in apps.detail
        and "admits tcp 0-65535 from 10.21.0.0/20" in apps.detail
    )
    database = one(checks, "lab: the database admits")
    assert not database.passed
    assert "also admits tcp 3306 from 10.21.0.0/20" in database.detail
    assert f"does not admit tcp 3306 from trial's application group ({lab_app})" in database.detail


# -- 3. fleets -----------------------------------------------------------------------------


def fleet(
    client,
    name: str,
    ami: str,
    health: str,
    size: tuple[int, int, int],
    target_groups=(),
    versions=1,
) -> str:
    ec2, scaling = client("ec2"), client("autoscaling")
    template = ec2.create_launch_template(
        LaunchTemplateName=name + "-lt",
        LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"},
    )["LaunchTemplate"]
    for _ in range(versions - 1):
        ec2.create_launch_template_version(
            LaunchTemplateId=template["LaunchTemplateId"],
            LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.small"},
        )
    scaling.create_auto_scaling_group(
        AutoScalingGroupName=name + "-20260101",
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": str(versions)},
        MinSize=size[0],
        MaxSize=size[1],
        DesiredCapacity=size[2],
        AvailabilityZones=["us-east-1a"],
        HealthCheckType=health,
        TargetGroupARNs=list(target_groups),
        Tags=[{"Key": "Name", "Value": name, "PropagateAtLaunch": True}],
    )
    return template["LaunchTemplateId"]


def test_fleets_bounds_health_checks_and_baked_ami(aws, config, client, amis):
    cfg = config()
    ec2 = client("ec2")
    prod, _ = network(ec2, cfg, "prod")
    target_group = client("elbv2").create_target_group(
        Name="chk-live-web", Protocol="HTTP", Port=8080, VpcId=prod
    )
    arn = target_group["TargetGroups"][0]["TargetGroupArn"]
    fleet(client, "chk-live-web", amis["web"], "ELB", (2, 4, 2), [arn], versions=2)
    fleet(client, "chk-trial-web", amis["other"], "EC2", (1, 3, 1))

    checks = check_platform(aws, cfg, amis)
    live = one(
        checks, "live: fleet chk-live-web keeps 2 to 4 instances (desired 2), ELB health checks"
    )
    assert live.passed, live.detail
    assert f"version 2, {amis['web']}" in live.detail  # the exact version, reported when passed too
    trial = one(checks, "trial: fleet chk-trial-web keeps 1 to 3 instances (desired 2)")
    assert not trial.passed
    assert "DesiredCapacity is 1, expected 2" in trial.detail
    assert "health check type EC2, expected ELB" in trial.detail
    assert "no target group named chk-trial-web" in trial.detail
    assert f"version 1 of chk-trial-web-lt runs {amis['other']}, not {amis['web']}" in trial.detail

    unbaked = check_platform(aws, cfg, {})
    assert "images.lock records no AMI for image web" in one(unbaked, "live: fleet").detail


# -- 4. load balancers and routing -------------------------------------------------------------


def load_balancer(client, name: str, subnets: list[str], ssl_policy: str, http_action: dict) -> str:
    elbv2 = client("elbv2")
    certificate = client("acm").request_certificate(DomainName="*.chk.example")["CertificateArn"]
    lb = elbv2.create_load_balancer(Name=name, Subnets=subnets, Type="application")[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    https = elbv2.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTPS",
        Port=443,
        SslPolicy=ssl_policy,
        Certificates=[{"CertificateArn": certificate}],
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    elbv2.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[http_action]
    )
    return https


def route(
    client, listener: str, priority: int, paths: list[str], hosts: list[str], target_group: str
) -> None:
    conditions = [{"Field": "path-pattern", "PathPatternConfig": {"Values": paths}}]
    if hosts:
        conditions.append({"Field": "host-header", "HostHeaderConfig": {"Values": hosts}})
    client("elbv2").create_rule(
        ListenerArn=listener,
        Priority=priority,
        Conditions=conditions,
        Actions=[{"Type": "forward", "TargetGroupArn": target_group}],
    )


def test_listeners_and_routing_rules(aws, config, client, amis):
    cfg = config()
    ec2, elbv2 = client("ec2"), client("elbv2")
    redirect = {
        "Type": "redirect",
        "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
    }
    prod, prod_subnets = network(ec2, cfg, "prod")
    https = load_balancer(
        client,
        "chk-prod",
        [z["public"] for z in prod_subnets.values()],
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        redirect,
    )
    web = elbv2.create_target_group(Name="chk-live-web", Protocol="HTTP", Port=8080, VpcId=prod)[
        "TargetGroups"
    ][0]
    route(client, https, 1000, ["/app/*"], ["live.chk.example"], web["TargetGroupArn"])

    lab, lab_subnets = network(ec2, cfg, "lab")
    forward = elbv2.create_target_group(Name="stray", Protocol="HTTP", Port=80, VpcId=lab)[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    lab_https = load_balancer(
        client,
        "chk-lab",
        [z["public"] for z in lab_subnets.values()],
        "ELBSecurityPolicy-2016-08",
        {"Type": "forward", "TargetGroupArn": forward},
    )
    elbv2.create_target_group(Name="chk-trial-web", Protocol="HTTP", Port=8080, VpcId=lab)
    route(client, lab_https, 1000, ["/app/*"], ["trial.chk.example"], forward)

    checks = check_platform(aws, cfg, amis)
    listeners = one(
        checks,
        "prod: load balancer chk-prod listens on HTTPS 443 with ELBSecurityPolicy-TLS13-1-2-2021-06",
    )
    assert listeners.passed, listeners.detail
    assert one(
        checks, "live: /app/* on live.chk.example forward to web's target group chk-live-web"
    ).passed
    lab_listeners = one(checks, "lab: load balancer chk-lab")
    assert not lab_listeners.passed
    assert "port 443 has TLS policy ELBSecurityPolicy-2016-08" in lab_listeners.detail
    assert "port 80 does forward, not a redirect" in lab_listeners.detail
    routing = one(checks, "trial: /app/* on trial.chk.example forward")
    assert (
        not routing.passed
        and routing.detail == "the rule for /app/* on trial.chk.example forwards to stray"
    )


# -- 5. database -------------------------------------------------------------------------------


def cluster(client, name: str, instances: int, encrypted: bool) -> None:
    rds = client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-mysql",
        MasterUsername="admin",
        MasterUserPassword="password1234",
        StorageEncrypted=encrypted,
    )
    for n in range(1, instances + 1):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{name}-instance-{n}",
            DBClusterIdentifier=name,
            Engine="aurora-mysql",
            DBInstanceClass="db.r6g.large",
        )


def test_aurora_writer_readers_and_encryption(aws, config, client, amis):
    cluster(client, "chk-prod", 2, encrypted=True)  # live overrides replicas: 1
    cluster(client, "chk-lab", 2, encrypted=False)  # replicas: 0
    checks = check_platform(aws, config(), amis)
    assert one(
        checks, "prod: Aurora cluster chk-prod has a writer and 1 reader, storage encrypted"
    ).passed
    lab = one(checks, "lab: Aurora cluster chk-lab has a writer and 0 readers")
    assert not lab.passed and lab.detail == "1 readers (chk-lab-instance-2); storage not encrypted"


# -- 6. buckets --------------------------------------------------------------------------------


def bucket(
    s3,
    name: str,
    *,
    private=True,
    encryption: str | None = "aws:kms",
    versioning: str | None = "Enabled",
) -> None:
    s3.create_bucket(Bucket=name)
    if private:
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration=dict.fromkeys(
                (
                    "BlockPublicAcls",
                    "IgnorePublicAcls",
                    "BlockPublicPolicy",
                    "RestrictPublicBuckets",
                ),
                True,
            ),
        )
    if encryption:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": encryption}}]
            },
        )
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})


def test_buckets_private_encrypted_versioned_as_configured(aws, config, client, amis):
    s3 = client("s3")
    bucket(s3, "chk-live-assets")
    bucket(s3, "chk-live-scratch", versioning="Suspended")  # versioning: false
    bucket(s3, "chk-live-logs", encryption="AES256")
    bucket(s3, "chk-prod-lb-logs", encryption="AES256")
    bucket(s3, "chk-trial-assets", private=False, encryption=None, versioning=None)
    bucket(s3, "chk-trial-scratch")  # versioned, though infra.yaml says not

    checks = check_platform(aws, config(), amis)
    for name in ("chk-live-assets", "chk-live-logs", "chk-prod-lb-logs"):
        assert one(checks, f"bucket {name} is private, encrypted and versioned").passed, name
    assert one(checks, "bucket chk-live-scratch is private, encrypted and not versioned").passed
    assert one(checks, "bucket chk-live-backup").detail == "no bucket chk-live-backup"
    trial = one(checks, "bucket chk-trial-assets")
    assert not trial.passed
    assert trial.detail == (
        "public access not blocked: BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets off; "
        "default encryption none; versioning never enabled"
    )
    scratch = one(checks, "bucket chk-trial-scratch")
    assert (
        not scratch.passed
        and scratch.detail == "versioning Enabled, but infra.yaml says versioning: false"
    )


# -- 7. CloudFront -----------------------------------------------------------------------------


def distribution(client, comment: str, bucket: str, access_control: str | None) -> None:
    origin: dict = {
        "Id": "assets",
        "DomainName": f"{bucket}.s3.us-east-1.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    if access_control:
        origin["OriginAccessControlId"] = access_control
    client("cloudfront").create_distribution(
        DistributionConfig={
            "CallerReference": comment,
            "Comment": comment,
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {
                "TargetOriginId": "assets",
                "ViewerProtocolPolicy": "redirect-to-https",
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "MinTTL": 0,
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )


def test_distributions_need_origin_access_control(aws, config, client, amis):
    distribution(client, "chk-trial", "chk-trial-assets", None)
    checks = check_platform(aws, config(), amis)
    live = one(checks, "live: CloudFront distribution chk-live serves chk-live-assets")
    assert not live.passed and live.detail == "no distribution with comment chk-live"
    served = one(checks, "trial: CloudFront distribution chk-trial serves chk-trial-assets")
    assert served.passed, served.detail
    trial = one(
        checks,
        "trial: CloudFront distribution chk-trial reads each bucket through an origin access control",
    )
    assert not trial.passed and trial.detail == "chk-trial-assets has no origin access control"
    # moto 5.2 keeps no OriginAccessControlId on an origin, so the passing
    # case is the rehearsal's to show, on an emulator that keeps it.


# -- 8. queues and topics ----------------------------------------------------------------------


def test_queues_dead_letters_and_topic_subscriptions(aws, config, client, amis):
    sqs, sns = client("sqs"), client("sns")
    dead = sqs.create_queue(QueueName="chk-live-jobs-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    live = sqs.create_queue(
        QueueName="chk-live-jobs",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 3})
        },
    )["QueueUrl"]
    live_arn = sqs.get_queue_attributes(QueueUrl=live, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic = sns.create_topic(Name="chk-live-events")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=live_arn)
    sqs.create_queue(QueueName="chk-trial-jobs")  # no dead-letter queue
    trial_topic = sns.create_topic(Name="chk-trial-events")["TopicArn"]
    sns.subscribe(
        TopicArn=trial_topic, Protocol="sqs", Endpoint=live_arn
    )  # the wrong environment's queue

    checks = check_platform(aws, config(), amis)
    queue = one(
        checks,
        "live: queue chk-live-jobs moves a message to its dead-letter queue after 3 receives",
    )
    assert queue.passed and queue.detail == "dead-letter queue chk-live-jobs-dlq"
    assert one(
        checks, "live: topic chk-live-events delivers to queues chk-live-jobs over sqs"
    ).passed
    assert (
        one(checks, "trial: queue chk-trial-jobs").detail == "chk-trial-jobs has no redrive policy"
    )
    subscriptions = one(checks, "trial: topic chk-trial-events")
    assert not subscriptions.passed
    assert subscriptions.detail == f"no sqs subscription of chk-trial-jobs; found sqs {live_arn}"


# -- 9. functions ------------------------------------------------------------------------------


def function(client, name: str, runtime: str) -> str:
    role = client("iam").create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return client("lambda").create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": package.getvalue()},
    )["FunctionArn"]


def test_the_function_and_its_upload_trigger(aws, config, client, amis):
    s3, lam = client("s3"), client("lambda")
    arn = function(client, "chk-live-thumbs", "python3.12")
    s3.create_bucket(Bucket="chk-live-assets")
    lam.add_permission(
        FunctionName="chk-live-thumbs",
        StatementId="InvokedByUploads",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn="arn:aws:s3:::chk-live-assets",
    )
    s3.put_bucket_notification_configuration(
        Bucket="chk-live-assets",
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {"Id": "thumbs", "LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    function(client, "chk-trial-thumbs", "python3.11")
    s3.create_bucket(Bucket="chk-trial-assets")

    checks = check_platform(aws, config(), amis)
    live = one(
        checks,
        "live: function chk-live-thumbs runs python3.12 and every new object in chk-live-assets invokes it",
    )
    assert live.passed, live.detail
    trial = one(checks, "trial: function chk-trial-thumbs")
    assert not trial.passed
    assert trial.detail == (
        "runtime python3.11; chk-trial-assets notifies no function chk-trial-thumbs; "
        "its policy lets no s3.amazonaws.com invoke from chk-trial-assets"
    )


# -- 10. parameters and secrets ------------------------------------------------------------------


def test_parameters_are_secure_strings_under_their_prefix(aws, config, client, amis):
    ssm = client("ssm")
    ssm.put_parameter(Name="/chk/live/app/token", Value="set-me", Type="SecureString")
    ssm.put_parameter(Name="/chk/trial/app/token", Value="set-me", Type="String")
    checks = check_platform(aws, config(), amis)
    assert one(checks, "live: SecureString parameters token under /chk/live/app/").passed
    trial = one(checks, "trial: SecureString parameters token under /chk/trial/app/")
    assert not trial.passed and trial.detail == "/chk/trial/app/token is a String"


def test_secrets_manager_secrets_under_their_prefix(aws, config, client, amis):
    client("secretsmanager").create_secret(Name="chk/live/app/token", SecretString="set-me")
    checks = check_platform(aws, config("secretsmanager"), amis)
    assert one(checks, "live: Secrets Manager secrets token under chk/live/app/").passed
    trial = one(checks, "trial: Secrets Manager secrets token")
    assert not trial.passed and trial.detail == "no secret chk/trial/app/token"


def test_vpc_endpoints_on_their_route_tables_and_subnets(aws, config, client, amis):
    cfg = config()
    ec2 = client("ec2")
    vpc_id, subnets = network(ec2, cfg, "prod")
    tables = {}
    for tier in ("public", "private", "database"):
        table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
        ec2.create_tags(Resources=[table], Tags=tags(f"chk-prod-{tier}", Tier=tier))
        tables[tier] = table
    # Wrong: S3 reaches the database tier and not the public one; ssm without
    # private DNS in a public subnet; kms missing; sts, which nobody chose.
    ec2.create_vpc_endpoint(
        VpcId=vpc_id,
        ServiceName="com.amazonaws.us-east-1.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[tables["private"], tables["database"]],
    )
    zones = sorted(subnets)
    for service, subnet_ids, private_dns in (
        ("ssm", [subnets[zones[0]]["public"]], False),
        ("ec2", [subnets[zone]["private"] for zone in zones], True),
        ("sts", [subnets[zones[0]]["private"]], True),
    ):
        ec2.create_vpc_endpoint(
            VpcId=vpc_id,
            ServiceName=f"com.amazonaws.us-east-1.{service}",
            VpcEndpointType="Interface",
            SubnetIds=subnet_ids,
            PrivateDnsEnabled=private_dns,
        )
    checks = check_platform(aws, cfg, amis)
    gateway = one(checks, "prod: S3 is reached through a gateway endpoint")
    assert not gateway.passed
    assert f"not on route table {tables['public']}" in gateway.detail
    assert f"on the database route table {tables['database']}" in gateway.detail
    interface = one(checks, "prod: interface endpoints for ec2, kms, ssm, with private DNS")
    assert not interface.passed
    assert "no interface endpoint for kms" in interface.detail
    assert "an interface endpoint for sts nobody chose" in interface.detail
    assert "ssm (vpce-" in interface.detail and "has no private DNS" in interface.detail
    assert f"ssm is in subnets {subnets[zones[0]]['public']}, expected" in interface.detail
    assert "ec2 is in" not in interface.detail
    # The group without interface endpoints says so, and passes once its gateway is right.
    lab_vpc, _ = network(ec2, cfg, "lab")
    lab_tables = []
    for tier in ("public", "private"):
        table = ec2.create_route_table(VpcId=lab_vpc)["RouteTable"]["RouteTableId"]
        ec2.create_tags(Resources=[table], Tags=tags(f"chk-lab-{tier}", Tier=tier))
        lab_tables.append(table)
    ec2.create_vpc_endpoint(
        VpcId=lab_vpc,
        ServiceName="com.amazonaws.us-east-1.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=lab_tables,
    )
    checks = check_platform(aws, cfg, amis)
    assert one(checks, "lab: S3 is reached through a gateway endpoint").passed
    assert one(checks, "lab: no interface endpoint (none is chosen)").passed
