"""names.py: how every name is made, and the AWS limits it keeps to."""

from __future__ import annotations

from pathlib import Path

import pytest

from levels_tf import names
from levels_tf.validation import load_config

REFERENCE = Path(__file__).resolve().parent.parent / "infra.yaml"


@pytest.fixture(scope="module")
def infra():
    return load_config(REFERENCE).infra


def test_short_names_are_kept_and_long_ones_hashed_to_the_limit():
    assert names.short_name("levels-dev-api") == "levels-dev-api"
    exact = "x" * names.LOAD_BALANCER_NAME_LIMIT
    assert names.short_name(exact) == exact
    long = "platform-with-long-names-production-environment-1-web"
    short = names.short_name(long)
    assert len(short) <= names.LOAD_BALANCER_NAME_LIMIT
    assert short.startswith(long[:20]) and short == names.short_name(long)
    assert names.short_name(long + "x") != short
    assert len(names.short_name(long * 2, names.FUNCTION_NAME_LIMIT)) <= names.FUNCTION_NAME_LIMIT


def test_a_shortened_name_never_ends_its_prefix_with_a_hyphen():
    name = "a" * 24 + "-" + "b" * 20
    assert "--" not in names.short_name(name)


def test_stack_and_state_names():
    assert names.shared_stack("nonprod") == "nonprod-shared"
    assert names.state_key("dev") == "dev/terraform.tfstate"


def test_bucket_names(infra):
    assert names.state_bucket(infra, "nonprod") == "levels-tfstate-nonprod"
    assert names.asset_bucket(infra, "dev", "uploads") == "levels-dev-uploads"
    assert names.log_bucket(infra, "production") == "levels-production-lb-logs"
    assert "levels-qa-logs" in names.log_only_buckets(infra)
    assert "levels-qa-uploads" not in names.log_only_buckets(infra)


def test_resource_names_and_parameter_paths(infra):
    assert names.resource_name(infra, "dev", "jobs") == "levels-dev-jobs"
    assert names.app_security_group(infra, "dev") == "levels-dev-app"
    assert names.bastion_name(infra, "nonprod") == "levels-nonprod-bastion"
    assert names.ci_role_name(infra, "nonprod") == "levels-nonprod-ci"
    assert names.parameter_prefix(infra, "dev", "app") == "/levels/dev/app"
    assert names.bundle_parameter(infra, "dev", "api") == "/levels/dev/api/bundle-version"
    assert names.bundle_parameter(infra, "dev", "*") == "/levels/dev/*/bundle-version"
    assert names.function_package("image-variants") == "build/functions/image-variants.zip"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ab", "2 characters"),
        ("a" * 64, "64 characters"),
        ("Upper-case", "lowercase"),
        ("a..b", "adjacent dots"),
        ("192.168.1.1", "IP address"),
        ("xn--bucket", "reserves"),
        ("bucket-s3alias", "reserves"),
    ],
)
def test_bucket_name_problems(name, problem):
    message = names.bucket_name_problem(name)
    assert message is not None and problem in message


def test_a_valid_bucket_name_has_no_problem():
    assert names.bucket_name_problem("levels-dev-uploads") is None
    assert names.bucket_name_problem("a" * 63) is None


@pytest.mark.parametrize(
    "name, problem",
    [
        ("a", None),
        ("levels-dev-0501", None),
        ("L" + "x" * 62, None),
        ("", "0 characters"),
        ("x" * 64, "64 characters"),
        ("1levels", "starts with a letter"),
        ("-levels", "starts with a letter"),
        ("levels_dev", "letters, digits and hyphens only"),
        ("levels.dev", "letters, digits and hyphens only"),
        ("levels--dev", "two consecutive hyphens"),
        ("levels-", "cannot end with a hyphen"),
    ],
)
def test_db_cluster_identifiers_follow_rds_rules(name, problem):
    found = names.db_cluster_id_problem(name)
    assert found is None if problem is None else problem in (found or "")


def test_a_restored_clusters_writer_keeps_to_the_instance_limit():
    assert names.restored_db_instance("levels-dev-0501") == "levels-dev-0501-instance-1"
    long = names.restored_db_instance("c" * 63)
    assert len(long) == names.DB_INSTANCE_ID_LIMIT and long.startswith("c" * 50)


def test_the_clusters_terraform_manages_are_one_per_group(infra):
    assert names.database_clusters(infra) == {"levels-nonprod", "levels-production"}
