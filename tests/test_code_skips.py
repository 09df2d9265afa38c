"""levels_tf/code_skips.py: a planned resource's address followed through the
plan's module calls to its block in the rendered tree, and the inline skips
that block and the calls leading to it carry."""

from __future__ import annotations

from pathlib import Path

import pytest

from levels_tf import code_skips, scanning
from levels_tf.scanning import CHECKOV_PLAN, Finding, ScanResult

BUCKET = """resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_144:Not replicated in this module, for a reason.
  # checkov-plan:skip=CKV_AWS_145:The key is known only after apply here.
  bucket = var.name
}

data "aws_iam_policy_document" "this" {
  # checkov:skip=CKV_AWS_1,CKV_AWS_2:Two checks skipped by one comment.
}
"""
LOGS = """resource "aws_s3_bucket" "this" {
  bucket = var.name
}
"""
BALANCER = """module "access_logs" {
  # checkov:skip=CKV_AWS_18:The terminal log bucket logs nowhere, for a reason.
  source = "../logs"
}

resource "aws_lb" "this" {
  name = "x"
}
"""
STACK = """module "bucket" {
  source   = "../../modules/bucket"
  for_each = toset(["a.b", "c"])
}

module "balancer" {
  source = "../../modules/balancer"
}

module "remote" {
  source = "terraform-aws-modules/s3-bucket/aws"
}
"""
CONFIGURATION = {
    "root_module": {
        "module_calls": {
            "bucket": {"source": "../../modules/bucket", "module": {}},
            "balancer": {
                "source": "../../modules/balancer",
                "module": {"module_calls": {"access_logs": {"source": "../logs", "module": {}}}},
            },
            "remote": {"source": "terraform-aws-modules/s3-bucket/aws", "module": {}},
        }
    }
}


@pytest.fixture
def tree(tmp_path: Path) -> code_skips.Tree:
    for path, text in {
        "modules/bucket/main.tf": BUCKET,
        "modules/logs/main.tf": LOGS,
        "modules/balancer/main.tf": BALANCER,
        "stacks/live/main.tf": STACK,
    }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    return code_skips.Tree(tmp_path)


def test_addresses_split_into_calls_and_the_resource():
    split = code_skips.split_address
    assert split('module.a["x.y"].module.b[0].aws_s3_bucket.this["k"]') == (
        ["a", "b"],
        "aws_s3_bucket.this",
    )
    assert split("data.aws_iam_policy_document.x") == ([], "data.aws_iam_policy_document.x")
    assert split("aws_vpc.this") == ([], "aws_vpc.this")


def test_blocks_and_their_skips():
    found = code_skips.blocks(BUCKET, "modules/bucket/main.tf")
    assert found["aws_s3_bucket.this"] == code_skips.Block(
        "modules/bucket/main.tf",
        1,
        (
            ("CKV_AWS_144", "Not replicated in this module, for a reason."),
            ("CKV_AWS_145", "The key is known only after apply here."),
        ),
    )
    assert [c for c, _ in found["data.aws_iam_policy_document.this"].skips] == [
        "CKV_AWS_1",
        "CKV_AWS_2",
    ]


def test_the_resource_is_found_in_its_own_module_not_by_type_and_name(tree):
    """Both modules have an aws_s3_bucket.this: each address finds its own,
    so one module's skips never reach the other's resource."""
    mine = tree.code(CONFIGURATION, "live", 'module.bucket["a.b"].aws_s3_bucket.this')
    other = tree.code(
        CONFIGURATION, "live", "module.balancer.module.access_logs.aws_s3_bucket.this"
    )
    assert mine is not None and other is not None
    assert (mine.resource.file, mine.resource.line) == ("modules/bucket/main.tf", 1)
    assert mine.skip_reason("CKV_AWS_144") == "Not replicated in this module, for a reason."
    assert other.resource.file == "modules/logs/main.tf"
    assert other.skip_reason("CKV_AWS_144") is None
    # A skip on the call covers the module's resources.
    assert other.skip_reason("CKV_AWS_18") == "The terminal log bucket logs nowhere, for a reason."
    assert (
        tree.code(CONFIGURATION, "live", "module.balancer.aws_lb.this").skip_reason("CKV_AWS_18")
        is None
    )


def test_what_the_tree_does_not_hold_has_no_code(tree):
    assert tree.code(CONFIGURATION, "live", "module.remote.aws_s3_bucket.this") is None
    assert tree.code(CONFIGURATION, "live", "module.missing.aws_s3_bucket.this") is None
    assert tree.code(CONFIGURATION, "live", "module.bucket.aws_sqs_queue.this") is None
    assert tree.code(CONFIGURATION, "other", 'module.bucket["c"].aws_s3_bucket.this') is None


def _failure(check_id: str, resource: str) -> Finding:
    plan = "stacks/live/levels-tf.tfplan"
    return Finding(CHECKOV_PLAN, check_id, "live", resource, plan, 0, "A title")


def test_skipped_plan_findings_are_counted_with_their_reason(tree):
    findings = (
        _failure("CKV_AWS_144", 'module.bucket["c"].aws_s3_bucket.this'),
        _failure("CKV_AWS_145", 'module.bucket["c"].aws_s3_bucket.this'),
        _failure("CKV_AWS_144", "module.balancer.module.access_logs.aws_s3_bucket.this"),
        _failure("CKV_AWS_20", "module.remote.aws_s3_bucket.this"),
    )
    result = scanning.with_code_skips(
        ScanResult("live", CHECKOV_PLAN, passed=7, skipped=1, findings=findings),
        CONFIGURATION,
        tree,
    )
    assert (result.passed, result.failed, result.skipped) == (7, 2, 3)
    assert {(s.check_id, s.reason, s.file, s.line) for s in result.skips} == {
        (
            "CKV_AWS_144",
            "Not replicated in this module, for a reason.",
            "modules/bucket/main.tf",
            1,
        ),
        ("CKV_AWS_145", "The key is known only after apply here.", "modules/bucket/main.tf", 1),
    }
    # What stays failed names its code when the tree holds it, else the saved plan.
    assert {(f.check_id, f.file, f.line) for f in result.findings} == {
        ("CKV_AWS_144", "modules/logs/main.tf", 1),
        ("CKV_AWS_20", "stacks/live/levels-tf.tfplan", 0),
    }
