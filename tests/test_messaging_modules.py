"""The queue and topic modules, straight from their templates, with the real terraform.

levels-tf does not render these modules yet, so the test builds a tree of
its own: the two modules (every template through Jinja, the way the
renderer would) and a small root that creates a KMS key, one topic, one
queue the topic feeds and one queue nothing feeds. The tree must be
fmt-clean as written, valid with zero warnings, and clean for checkov.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jinja2
import pytest

from levels_tf import scanning, skips

from .conftest import ROOT, checkov_binary

TEMPLATES = ROOT / "templates" / "modules"
MODULES = ("queue", "topic")
# What the module templates see of the common values: the versions, and the
# registry's skip comments (the queue's are for plans only, which checkov on
# the code does not read, so the modules still pass it without skips).
VALUES = {
    "terraform_version": ">= 1.10",
    "aws_provider_module": ">= 5.100",
    "skips": skips.comments(),
}

ROOT_MODULE = """\
terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100"
    }
  }
}

provider "aws" {
  region = "us-east-1"
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

resource "aws_kms_key" "messaging" {
  description             = "Encrypts the test topic and queues"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "SnsDeliversToEncryptedQueues"
        Effect    = "Allow"
        Principal = { Service = "sns.amazonaws.com" }
        Action    = ["kms:GenerateDataKey*", "kms:Decrypt"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        }
      },
    ]
  })
}

module "topic" {
  source = "./modules/topic"

  name                = "levels-test-events"
  kms_key_arn         = aws_kms_key.messaging.arn
  queue_subscriptions = { jobs = module.jobs.arn }
  tags                = { Environment = "test" }
}

module "jobs" {
  source = "./modules/queue"

  name                 = "levels-test-jobs"
  kms_key_arn          = aws_kms_key.messaging.arn
  visibility_timeout   = 120
  retention_days       = 4
  dead_letter_after    = 5
  publisher_topic_arns = { events = module.topic.arn }
  tags                 = { Environment = "test" }
}

module "mail" {
  source = "./modules/queue"

  name                 = "levels-test-mail"
  kms_key_arn          = aws_kms_key.messaging.arn
  visibility_timeout   = 30
  retention_days       = 14
  dead_letter_after    = 3
  publisher_topic_arns = {}
}

output "topic" {
  value = module.topic
}

output "queues" {
  value = { jobs = module.jobs, mail = module.mail }
}
"""


def _environment() -> jinja2.Environment:
    # The settings of levels_tf.templating, so the text is what the renderer would write.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES.parent)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("messaging")
    env = _environment()
    for module in MODULES:
        templates = sorted((TEMPLATES / module).glob("*.tf.j2"))
        expected = ["main.tf.j2", "outputs.tf.j2", "variables.tf.j2", "versions.tf.j2"]
        assert [t.name for t in templates] == expected
        folder = root / "modules" / module
        folder.mkdir(parents=True)
        for template in templates:
            source = template.read_text(encoding="utf-8")
            text = env.get_template(f"modules/{module}/{template.name}").render(VALUES)
            if "{%" not in source and template.name != "versions.tf.j2":
                # Plain Terraform: Jinja must leave it exactly as written.
                assert text == source, f"{module}/{template.name} is changed by Jinja"
            (folder / template.name.removesuffix(".j2")).write_text(text, encoding="utf-8")
    (root / "main.tf").write_text(ROOT_MODULE, encoding="utf-8")
    return root


def _tf(env, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.terraform
def test_fmt_clean(tree, terraform_env):
    result = _tf(terraform_env, tree, "fmt", "-check", "-recursive", "-diff", "-no-color")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.terraform
def test_validate(tree, terraform_env):
    init = _tf(terraform_env, tree, "init", "-backend=false", "-input=false", "-no-color")
    assert init.returncode == 0, init.stdout + init.stderr
    result = _tf(terraform_env, tree, "validate", "-json", "-no-color")
    report = json.loads(result.stdout)
    assert report["valid"], result.stdout
    assert report["warning_count"] == 0, result.stdout
    assert result.returncode == 0


def _checkov() -> str:
    return checkov_binary()


@pytest.mark.slow
def test_checkov_passes_without_skips(tree):
    checkov = _checkov()
    env = dict(os.environ, **scanning.CHECKOV_ENV)
    result = subprocess.run(
        [checkov, "-d", str(tree), "--framework", "terraform", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = []
    skipped = []
    passed = set()
    for report in reports:
        results = report.get("results", {})
        passed |= {c["resource"] for c in results.get("passed_checks", [])}
        failed += [(c["check_id"], c["resource"]) for c in results.get("failed_checks", [])]
        skipped += [(c["check_id"], c["resource"]) for c in results.get("skipped_checks", [])]
    assert failed == [], sorted(failed)
    assert skipped == [], sorted(skipped)
    # checkov looked inside the modules, not only at the root.
    assert {"module.jobs.aws_sqs_queue.this", "module.topic.aws_sns_topic.this"} <= passed
