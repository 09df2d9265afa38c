"""The context layer on its own: the typed values each template is given, for
the reference infra.yaml and small edge configurations, without rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from levels_tf import context, names
from levels_tf.hcl import Expression
from levels_tf.options import ENDPOINT_SERVICES
from levels_tf.stacks import ENVIRONMENT, SHARED, Stack, stacks
from levels_tf.validation import Config, load_config

TESTS = Path(__file__).resolve().parent
REFERENCE = TESTS.parent / "infra.yaml"
CONFIGS = TESTS / "configs"
ENDPOINT = "http://127.0.0.1:5000"


@pytest.fixture(scope="module")
def reference() -> Config:
    return load_config(REFERENCE)


def _stack(config: Config, name: str) -> Stack:
    return next(stack for stack in stacks(config.infra) if stack.name == name)


def test_common_values_name_the_emulator_only_when_there_is_one(reference):
    plain = context.common(reference.infra)
    assert plain["emulator"] is None
    assert (plain["project"], plain["region"]) == ("levels", "us-east-1")
    emulated = context.common(reference.infra, ENDPOINT)
    assert emulated["emulator"] == context.Emulator(ENDPOINT, ENDPOINT_SERVICES)


def test_s3_backend_and_remote_state_point_at_the_group_state_bucket(reference):
    dev = _stack(reference, "dev")
    backend = context.backend(reference.infra, dev)
    assert backend == context.Backend(
        "s3",
        {
            "bucket": "levels-tfstate-nonprod",
            "key": "dev/terraform.tfstate",
            "region": "us-east-1",
            "encrypt": True,
            "use_lockfile": True,
        },
    )
    remote = context.remote_state(reference.infra, dev)
    assert remote == {
        "backend": "s3",
        "config": {
            "bucket": "levels-tfstate-nonprod",
            "key": "nonprod-shared/terraform.tfstate",
            "region": "us-east-1",
        },
    }


def test_an_emulator_endpoint_is_added_to_backend_and_remote_state(reference):
    dev = _stack(reference, "dev")
    settings = context.backend(reference.infra, dev, ENDPOINT).settings
    config = context.remote_state(reference.infra, dev, ENDPOINT)["config"]
    for values in (settings, config):
        assert values["endpoints"] == {"s3": ENDPOINT, "sts": ENDPOINT}
        assert values["use_path_style"] is True
    assert list(settings)[:5] == ["bucket", "key", "region", "encrypt", "use_lockfile"]


def test_local_state_is_a_file_beside_each_stack():
    config = load_config(CONFIGS / "long-names" / "infra.yaml")
    env = next(s for s in stacks(config.infra) if s.kind == ENVIRONMENT)
    assert context.backend(config.infra, env) == context.Backend(
        "local", {"path": "terraform.tfstate"}
    )
    assert context.remote_state(config.infra, env) == {
        "backend": "local",
        "config": {"path": f"../{names.shared_stack(env.group)}/terraform.tfstate"},
    }


def test_default_tags_put_the_file_tags_first_and_the_environment_last(reference):
    tags = context.default_tags(reference.infra, _stack(reference, "qa"))
    assert list(tags) == [
        "CostCenter",
        "Owner",
        "Project",
        "VpcGroup",
        "Stack",
        "ManagedBy",
        "Environment",
    ]
    assert tags["Environment"] == "qa" and tags["VpcGroup"] == "nonprod"
    shared = context.default_tags(reference.infra, _stack(reference, "nonprod-shared"))
    assert "Environment" not in shared


def test_network_has_a_slot_and_three_subnets_per_zone(reference):
    network = context.network(reference.infra, "production")
    assert network["name"] == "levels-production"
    assert network["cidr"] == "10.0.0.0/16"
    assert network["nat_mode"] == "per_az"
    assert network["database_port"] == 3306
    assert network["ssh_ingress_cidrs"] == ["203.0.113.0/24"]
    zones = network["zones"]
    assert list(zones) == ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]
    assert [zone["slot"] for zone in zones.values()] == [0, 1, 2, 3]
    cidrs = [zone[tier] for zone in zones.values() for tier in ("public", "private", "database")]
    assert len(set(cidrs)) == len(cidrs)
    assert context.network(reference.infra, "nonprod")["nat_mode"] == "single"


def test_access_has_the_bastion_and_the_group_load_balancer(reference):
    access = context.access(reference.infra, "nonprod")
    assert access["environments"] == ["dev", "test", "qa"]
    bastion = access["bastion"]
    assert bastion is not None
    assert bastion["name"] == "levels-nonprod-bastion"
    assert list(bastion["users"]) == ["alice"]
    lb = access["load_balancer"]
    assert lb is not None
    assert lb["name"] == "levels-nonprod"
    assert lb["hostnames"] == ["dev.levels.example", "test.levels.example", "qa.levels.example"]
    assert lb["log_bucket_name"] == "levels-nonprod-lb-logs"
    assert lb["deletion_protection"] == context.LIFTABLE_PROTECTION
    assert lb["dns_zone_id"] == "Z04LEVELSEXAMPLE00"


def test_services_wire_names_routes_and_access(reference):
    production = reference.environments["production"]
    amis = {"api": "ami-0123", "worker": None}
    services = context.services(production, "production", amis.get)
    assert list(services) == ["api", "worker"]
    api, worker = services["api"], services["worker"]
    assert api["short_name"] == "levels-production-api"
    assert (api["ami_id"], worker["ami_id"]) == ("ami-0123", None)
    assert api["root_device_name"] is None
    assert api["routes"] == {
        "/api/*": {"priority": 1000, "paths": ["/api/*"], "hosts": ["api.levels.example"]}
    }
    assert worker["routes"] == {} and worker["port"] is None
    assert api["scaling"]["desired"] == 4 and api["scaling"]["max"] == 20  # override
    assert worker["scaling"]["desired"] == 1  # defaults to min
    assert api["access"]["read_buckets"] == [
        "levels-production-config",
        "levels-production-content",
        "levels-production-deployments",
    ]
    assert api["access"]["publish_topics"] == ["levels-production-events"]
    assert worker["access"]["consume_queues"] == ["levels-production-jobs"]
    assert api["access"]["parameter_prefixes"] == [
        "/levels/production/api",
        "/levels/production/app",
    ]
    assert api["access"]["kms_keys"] == [context.DATA_KEY]
    assert api["bundle"] == {
        "bucket": "levels-production-deployments",
        "parameter": "/levels/production/api/bundle-version",
    }


def test_web_routes_of_later_environments_take_later_priorities(reference):
    routes = {
        env: context.services(reference.environments[env], env, lambda image: None)["api"]["routes"]
        for env in ("dev", "test", "qa")
    }
    assert [r["/api/*"]["priority"] for r in routes.values()] == [1000, 2000, 3000]


def test_data_buckets_access_and_the_backup_bucket(reference):
    data = context.data(reference.environments["dev"], "dev")
    assert data["name"] == "levels-dev"
    assert data["log_bucket"] == "levels-dev-logs"
    buckets = data["buckets"]
    assert list(buckets) == ["uploads", "content", "web", "config", "deployments", "backup"]
    assert buckets["backup"] == {
        "name": "levels-dev-backup",
        "versioning": True,
        "noncurrent_days": 365,
        "archive_after_days": 30,
        "cdn": False,
    }
    uploads = data["bucket_access"]["uploads"]
    assert uploads["readers"] == {
        "image-variants": Expression('module.function["image-variants"].role_arn'),
        "worker": Expression('module.service["worker"].role_arn'),
    }
    assert uploads["lambda_triggers"] == {
        "image-variants": {"function_arn": Expression('module.function["image-variants"].arn')}
    }
    assert data["bucket_access"]["web"]["writers"] == {"ci": context.CI_ROLE}
    deployments = data["bucket_access"]["deployments"]["readers"]
    assert sorted(deployments) == ["api", "worker"]


def test_data_queues_topics_and_functions(reference):
    data = context.data(reference.environments["dev"], "dev")
    assert data["queues"]["jobs"]["name"] == "levels-dev-jobs"
    assert data["queues"]["jobs"]["visibility_timeout"] == 60
    assert data["topics"] == {"events": {"name": "levels-dev-events"}}
    assert data["queue_publishers"] == {
        "jobs": {"events": Expression('module.topic["events"].arn')}
    }
    assert data["topic_subscriptions"] == {
        "events": {"jobs": Expression('module.queue["jobs"].arn')}
    }
    function = data["functions"]["image-variants"]
    assert function["name"] == "levels-dev-image-variants"
    assert function["package_path"] == Expression(
        '"${path.root}/../../build/functions/image-variants.zip"'
    )
    assert (function["source_bucket"], function["variants_bucket"]) == (
        "levels-dev-uploads",
        "levels-dev-uploads",
    )
    assert function["backup_bucket"] == "levels-dev-backup"


def test_data_cdn_and_parameters(reference):
    dev = context.data(reference.environments["dev"], "dev")
    cdn = dev["cdn"]
    assert cdn is not None
    assert cdn["origins"] == ["uploads", "content", "web"]
    assert cdn["settings"]["default_origin"] == "web"
    assert cdn["settings"]["aliases"] == [] and cdn["settings"]["certificate_arn"] is None
    parameters = dev["parameters"]
    assert parameters["path"] == "/levels/dev"
    assert parameters["recovery_window_days"] == 0
    assert parameters["prefixes"]["ci"] == {
        "parameters": ["deploy_token"],
        "developers_read": False,
        "developers_write": True,
    }
    production = context.data(reference.environments["production"], "production")
    assert production["parameters"]["recovery_window_days"] == context.SECRET_RECOVERY_DAYS


def test_ci_role_uploads_and_parameter_paths(reference):
    ci = context.ci(reference.infra, "nonprod")
    assert ci["name"] == "levels-nonprod-ci"
    assert ci["upload_buckets"][:2] == ["levels-dev-deployments", "levels-dev-web"]
    assert len(ci["upload_buckets"]) == 6
    assert ci["read_parameter_paths"][:3] == [
        "/levels/dev/app/*",
        "/levels/dev/ci/*",
        "/levels/dev/*/bundle-version",
    ]
    assert ci["write_parameter_paths"][:2] == ["/levels/dev/app/*", "/levels/dev/*/bundle-version"]


def test_database_follows_the_group_and_production(reference):
    production = context.database(
        context.group_infra(reference, "production"), "production"
    )  # a group of one: the environment's overrides apply
    assert production is not None
    assert production["name"] == "levels-production"
    assert production["replicas"] == 2 and production["backup_retention_days"] == 30
    assert production["serverless"] is None
    assert production["backtrack_seconds"] == context.BACKTRACK_SECONDS
    assert production["delete_backups_with_stack"] is False
    nonprod = context.database(context.group_infra(reference, "nonprod"), "nonprod")
    assert nonprod is not None
    assert nonprod["replicas"] == 1 and nonprod["delete_backups_with_stack"] is True


def test_no_database_and_no_web_service_give_none():
    config = load_config(CONFIGS / "teardown" / "infra.yaml")
    assert config.infra.database is None and not config.infra.web_services()
    for group in config.infra.vpc_groups:
        infra = context.group_infra(config, group)
        assert context.database(infra, group) is None
        assert context.access(infra, group)["load_balancer"] is None


def test_long_names_are_shortened_to_aws_limits():
    config = load_config(CONFIGS / "long-names" / "infra.yaml")
    for env in config.infra.all_environments:
        infra = config.environments[env]
        for service in context.services(infra, env, lambda image: None).values():
            assert len(service["short_name"]) <= names.LOAD_BALANCER_NAME_LIMIT
        for function in context.data(infra, env)["functions"].values():
            assert len(function["name"]) <= names.FUNCTION_NAME_LIMIT
    for group in config.infra.vpc_groups:
        lb = context.access(context.group_infra(config, group), group)["load_balancer"]
        assert lb is not None and len(lb["name"]) <= names.LOAD_BALANCER_NAME_LIMIT


def test_stack_context_gives_each_kind_its_own_values(reference):
    for stack in stacks(reference.infra):
        values = context.stack_context(reference, stack)
        assert values["stack"].name == stack.name
        assert values["stack"].production == (stack.group == "production")
        if stack.kind == SHARED:
            assert {"network", "access", "database", "ci", "deletion_protection"} <= set(values)
            assert "services" not in values
        else:
            assert {"remote_state", "services", "data", "web"} <= set(values)
            assert "network" not in values


def test_an_environment_stack_without_an_environment_is_refused(reference):
    with pytest.raises(ValueError, match="names no environment"):
        context.stack_context(reference, Stack("dev", ENVIRONMENT, "nonprod"))
