"""What destroy reads from a `terraform show -json` state: resources, protections, buckets."""

from __future__ import annotations

import re

from levels_tf import names, teardown
from levels_tf.render import render
from levels_tf.validation import load_config

from .conftest import ROOT
from .test_security_invariants import CONFIGS, parse

STATE = {
    "format_version": "1.0",
    "values": {
        "root_module": {
            "resources": [
                {
                    "address": "data.terraform_remote_state.shared",
                    "mode": "data",
                    "type": "terraform_remote_state",
                    "values": {},
                },
            ],
            "child_modules": [
                {
                    "address": "module.load_balancer",
                    "resources": [
                        {
                            "address": "module.load_balancer.aws_lb.this",
                            "mode": "managed",
                            "type": "aws_lb",
                            "values": {"enable_deletion_protection": True},
                        },
                        {
                            "address": "module.load_balancer.aws_s3_bucket.logs",
                            "mode": "managed",
                            "type": "aws_s3_bucket",
                            "values": {"bucket": "demo-prod-lb-logs"},
                        },
                    ],
                    "child_modules": [
                        {
                            "address": "module.load_balancer.module.inner",
                            "resources": [
                                {
                                    "address": "module.load_balancer.module.inner.aws_rds_cluster.this",
                                    "mode": "managed",
                                    "type": "aws_rds_cluster",
                                    "values": {"deletion_protection": False},
                                }
                            ],
                        }
                    ],
                }
            ],
        }
    },
}


def test_managed_resources_of_every_module_depth_and_no_data_sources():
    found = teardown.resources(STATE)
    assert [r.address for r in found] == [
        "module.load_balancer.aws_lb.this",
        "module.load_balancer.aws_s3_bucket.logs",
        "module.load_balancer.module.inner.aws_rds_cluster.this",
    ]


def test_a_stack_without_state_has_no_resources():
    assert teardown.resources({"format_version": "1.0"}) == [] and teardown.resources({}) == []


def test_only_protection_that_is_on_counts():
    assert teardown.protected(teardown.resources(STATE)) == [
        ("module.load_balancer.aws_lb.this", "enable_deletion_protection")
    ]


def test_a_vault_that_keeps_its_backups_counts_as_protected():
    def vault(force_destroy):
        return teardown.Resource(
            "module.database.aws_backup_vault.this",
            "aws_backup_vault",
            {"force_destroy": force_destroy},
        )

    assert teardown.protected([vault(False)]) == [
        ("module.database.aws_backup_vault.this", "force_destroy")
    ]
    assert teardown.protected([vault(True)]) == []


def test_buckets_by_name():
    assert teardown.buckets(teardown.resources(STATE)) == {
        "demo-prod-lb-logs": "module.load_balancer.aws_s3_bucket.logs"
    }


def test_log_only_buckets_are_the_access_log_and_environment_log_buckets_and_nothing_else():
    infra = load_config(ROOT / "infra.yaml").infra
    logs = names.log_only_buckets(infra)
    for group in infra.vpc_groups:
        assert names.log_bucket(infra, group) in logs
    every_env = [env for group in infra.vpc_groups.values() for env in group.environments]
    assert {names.asset_bucket(infra, env, "logs") for env in every_env} <= logs
    assets = {
        names.asset_bucket(infra, env, asset_class)
        for env in every_env
        for asset_class in [*infra.buckets, "backup"]
    }
    assert not logs & assets and infra.buckets


# Every module that makes S3 buckets, and the argument that names them: log
# modules' buckets hold only what AWS services deliver, the rest user data.
BUCKET_MODULES = {
    "log-bucket": ("logs", "name"),
    "load-balancer": ("logs", "log_bucket_name"),
    "bucket": ("assets", "name"),
}


def test_every_bucket_a_module_makes_is_known_as_logs_or_assets():
    """The next bucket is caught: a module that makes one must say which kind,
    and every log bucket the stacks name must be one destroy may empty."""
    templates = (ROOT / "templates" / "modules").rglob("*.tf.j2")
    makers = {
        path.parent.name
        for path in templates
        if re.search(r'resource "aws_s3_bucket" |source += "\.\./log-bucket"', path.read_text())
    }
    assert makers == set(BUCKET_MODULES)
    for name in ("reference", "heavy-overrides"):  # every module, with and without overrides
        config = load_config(CONFIGS[name])
        logs = names.log_only_buckets(config.infra)
        for file, body in parse(render(config)).items():
            for block in body.get("module", []) if file.startswith("stacks/") else []:
                for call in block.values():
                    module = call["source"].rsplit("/", 1)[-1]
                    if BUCKET_MODULES.get(module, ("", ""))[0] == "logs":
                        bucket = call[BUCKET_MODULES[module][1]]
                        assert bucket in logs, (name, file, bucket)
