"""The cdn module on its own: rendered from its templates beside a root module
that calls it twice (with aliases and a certificate, and without), then
checked by `terraform fmt`, `terraform validate` (its input validations
included), checkov, and node running the CloudFront Function it ships."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import jinja2
import pytest

from levels_tf.skips import SKIPS

from .conftest import ROOT, checkov_binary

pytestmark = pytest.mark.terraform

MODULE = ROOT / "templates" / "modules" / "cdn"
# The cdn module's firewall is the waf module, rendered beside it.
WAF = MODULE.parent / "waf"
VERSIONS = {"terraform_version": ">= 1.10", "aws_provider_module": ">= 5.100"}
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"

PROLOGUE = """\
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
  region = "eu-west-1"
}

provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
}

resource "aws_s3_bucket" "assets" {
  for_each = toset(["web", "uploads", "content"])

  bucket = "levels-production-${each.key}"
}

resource "aws_s3_bucket" "logs" {
  bucket = "levels-production-logs"
}
"""

# What a stack of the platform writes: the module twice (production with its
# hostnames, dev on the cloudfront.net name sharing production's firewall)
# and the bucket policies that admit the distribution alone.
PLATFORM = (
    PROLOGUE
    + f"""
locals {{
  origins = {{
    web = {{
      bucket_name                 = aws_s3_bucket.assets["web"].id
      bucket_regional_domain_name = aws_s3_bucket.assets["web"].bucket_regional_domain_name
    }}
    uploads = {{
      bucket_name                 = aws_s3_bucket.assets["uploads"].id
      bucket_regional_domain_name = aws_s3_bucket.assets["uploads"].bucket_regional_domain_name
      path_pattern                = "/uploads/*"
    }}
    content = {{
      bucket_name                 = aws_s3_bucket.assets["content"].id
      bucket_regional_domain_name = aws_s3_bucket.assets["content"].bucket_regional_domain_name
      cache                       = {{ default_ttl = 300, max_ttl = 3600 }}
    }}
  }}
}}

module "cdn_with_aliases" {{
  source = "./modules/cdn"

  providers = {{
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }}

  name                   = "levels-production-cdn"
  origins                = local.origins
  price_class            = "PriceClass_100"
  aliases                = ["cdn.example.com", "static.example.com"]
  certificate_arn        = "{CERTIFICATE}"
  dns_zone_id            = "Z0123456789ABCDEFGHIJ"
  log_bucket_domain_name = aws_s3_bucket.logs.bucket_domain_name
  tags                   = {{ Environment = "production" }}
}}

module "cdn_without_aliases" {{
  source = "./modules/cdn"

  providers = {{
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }}

  name                   = "levels-dev-cdn"
  origins                = local.origins
  price_class            = "PriceClass_200"
  log_bucket_domain_name = aws_s3_bucket.logs.bucket_domain_name
  web_acl_arn            = module.cdn_with_aliases.web_acl_arn
  geo_allow_list         = ["AT", "CH", "DE"]
  tags                   = {{ Environment = "dev" }}
}}

data "aws_iam_policy_document" "assets" {{
  for_each = aws_s3_bucket.assets

  statement {{
    sid       = "CloudFrontReads"
    actions   = ["s3:GetObject"]
    resources = ["${{each.value.arn}}/*"]

    principals {{
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }}

    condition {{
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [module.cdn_with_aliases.distribution_arn]
    }}
  }}
}}

resource "aws_s3_bucket_policy" "assets" {{
  for_each = aws_s3_bucket.assets

  bucket = each.value.id
  policy = data.aws_iam_policy_document.assets[each.key].json
}}

output "distribution" {{
  value = {{
    arn            = module.cdn_with_aliases.distribution_arn
    id             = module.cdn_with_aliases.distribution_id
    domain_name    = module.cdn_with_aliases.domain_name
    hosted_zone_id = module.cdn_with_aliases.hosted_zone_id
  }}
}}
"""
)

# The module's behaviour, planned against mock providers (no credentials, no
# API): what it builds from given inputs, and which inputs it refuses.
TFTEST_HEAD = """\
mock_provider "aws" {}

mock_provider "aws" {
  alias = "us_east_1"
}

variables {
  name = "levels-qa-cdn"
  origins = {
    web     = { bucket_name = "b-web", bucket_regional_domain_name = "b-web.s3.eu-west-1.amazonaws.com" }
    uploads = { bucket_name = "b-up", bucket_regional_domain_name = "b-up.s3.eu-west-1.amazonaws.com" }
    content = {
      bucket_name                 = "b-co"
      bucket_regional_domain_name = "b-co.s3.eu-west-1.amazonaws.com"
      path_pattern                = "/static/*"
      cache                       = { default_ttl = 300, max_ttl = 3600 }
    }
  }
  log_bucket_domain_name = "b-logs.s3.amazonaws.com"
}
"""

# run name -> (variables, assertions: condition -> what it means)
PLANS = {
    "with_aliases": (
        {
            "aliases": '["cdn.example.com", "www.example.com"]',
            "certificate_arn": f'"{CERTIFICATE}"',
            "dns_zone_id": '"Z0123456789ABCDEFGHIJ"',
        },
        {
            "aws_cloudfront_distribution.this.viewer_certificate[0].cloudfront_default_certificate == false": "own certificate",
            f'aws_cloudfront_distribution.this.viewer_certificate[0].acm_certificate_arn == "{CERTIFICATE}"': "the ACM certificate",
            'aws_cloudfront_distribution.this.viewer_certificate[0].ssl_support_method == "sni-only"': "SNI only",
            'aws_cloudfront_distribution.this.viewer_certificate[0].minimum_protocol_version == "TLSv1.2_2021"': "TLS 1.2",
            'toset(aws_cloudfront_distribution.this.aliases) == toset(["cdn.example.com", "www.example.com"])': "aliases",
            'aws_cloudfront_distribution.this.http_version == "http2and3"': "HTTP/3",
            "aws_cloudfront_distribution.this.is_ipv6_enabled": "IPv6",
            'aws_cloudfront_distribution.this.default_root_object == "index.html"': "root object",
            'aws_cloudfront_distribution.this.price_class == "PriceClass_100"': "price class",
            'aws_cloudfront_distribution.this.logging_config[0].bucket == "b-logs.s3.amazonaws.com"': "logs bucket",
            'aws_cloudfront_distribution.this.logging_config[0].prefix == "cloudfront/"': "logs prefix",
            'aws_cloudfront_distribution.this.restrictions[0].geo_restriction[0].restriction_type == "none"': "no geo restriction",
            'aws_cloudfront_distribution.this.default_cache_behavior[0].target_origin_id == "web"': "default origin",
            'aws_cloudfront_distribution.this.default_cache_behavior[0].viewer_protocol_policy == "redirect-to-https"': "HTTPS",
            "aws_cloudfront_distribution.this.default_cache_behavior[0].compress": "compression",
            'toset(aws_cloudfront_distribution.this.default_cache_behavior[0].allowed_methods) == toset(["GET", "HEAD", "OPTIONS"])': "read-only methods",
            "length(aws_cloudfront_distribution.this.default_cache_behavior[0].function_association) == 0": "web keeps its paths",
            'join(",", [for b in aws_cloudfront_distribution.this.ordered_cache_behavior : "${b.path_pattern}=${b.target_origin_id}"]) == "/static/*=content,/uploads/*=uploads"': "a behaviour per other origin",
            'alltrue([for b in aws_cloudfront_distribution.this.ordered_cache_behavior : b.viewer_protocol_policy == "redirect-to-https" && b.compress && toset(b.allowed_methods) == toset(["GET", "HEAD", "OPTIONS"])])': "ordered behaviours like the default",
            'alltrue([for b in aws_cloudfront_distribution.this.ordered_cache_behavior : [for f in b.function_association : f.event_type] == ["viewer-request"]])': "prefix stripped on viewer request",
            'join(",", sort(keys(aws_cloudfront_origin_access_control.this))) == "content,uploads,web"': "an OAC per origin",
            'alltrue([for oac in aws_cloudfront_origin_access_control.this : oac.signing_behavior == "always" && oac.signing_protocol == "sigv4" && oac.origin_access_control_origin_type == "s3"])': "OAC signs always",
            'join(",", keys(aws_cloudfront_cache_policy.custom)) == "content"': "own cache policy only where asked",
            'aws_cloudfront_cache_policy.custom["content"].default_ttl == 300 && aws_cloudfront_cache_policy.custom["content"].max_ttl == 3600 && aws_cloudfront_cache_policy.custom["content"].min_ttl == 0': "TTLs",
            'aws_cloudfront_function.strip_prefix.runtime == "cloudfront-js-2.0" && aws_cloudfront_function.strip_prefix.publish': "function published",
            "aws_cloudfront_response_headers_policy.security.security_headers_config[0].strict_transport_security[0].access_control_max_age_sec == 31536000": "HSTS a year",
            "aws_cloudfront_response_headers_policy.security.security_headers_config[0].strict_transport_security[0].include_subdomains": "HSTS subdomains",
            "!aws_cloudfront_response_headers_policy.security.security_headers_config[0].strict_transport_security[0].preload": "no preload by default",
            "aws_cloudfront_response_headers_policy.security.security_headers_config[0].content_type_options[0].override": "nosniff",
            'aws_cloudfront_response_headers_policy.security.security_headers_config[0].frame_options[0].frame_option == "DENY"': "frames denied",
            'aws_cloudfront_response_headers_policy.security.security_headers_config[0].referrer_policy[0].referrer_policy == "strict-origin-when-cross-origin"': "referrer",
            "aws_cloudfront_response_headers_policy.security.security_headers_config[0].xss_protection[0].mode_block": "XSS protection",
            "length(module.waf) == 1": "own firewall",
            'module.waf[0].log_group_name == "aws-waf-logs-levels-qa-cdn-cdn"': "firewall logs",
            'join(",", sort(keys(aws_route53_record.ipv4))) == "cdn.example.com,www.example.com" && join(",", sort(keys(aws_route53_record.ipv6))) == "cdn.example.com,www.example.com"': "A and AAAA per alias",
            'aws_route53_record.ipv6["cdn.example.com"].type == "AAAA"': "IPv6 record",
            'aws_cloudfront_distribution.this.tags["Name"] == "levels-qa-cdn"': "Name tag",
        },
    ),
    "without_aliases": (
        {
            "dns_zone_id": '"Z0123456789ABCDEFGHIJ"',
            "web_acl_arn": '"arn:aws:wafv2:us-east-1:123456789012:global/webacl/shared/0a1b2c3d"',
            "geo_allow_list": '["AT", "DE"]',
            "default_origin": '"content"',
            "origins": """{
      content = { bucket_name = "b-co", bucket_regional_domain_name = "b-co.s3.eu-west-1.amazonaws.com" }
      web     = { bucket_name = "b-web", bucket_regional_domain_name = "b-web.s3.eu-west-1.amazonaws.com" }
    }""",
        },
        {
            "aws_cloudfront_distribution.this.viewer_certificate[0].cloudfront_default_certificate": "CloudFront's certificate",
            'aws_cloudfront_distribution.this.viewer_certificate[0].minimum_protocol_version == "TLSv1"': "the only policy it allows",
            "length(aws_cloudfront_distribution.this.aliases) == 0": "no aliases",
            "length(aws_route53_record.ipv4) + length(aws_route53_record.ipv6) == 0": "no records without aliases",
            'aws_cloudfront_distribution.this.web_acl_id == "arn:aws:wafv2:us-east-1:123456789012:global/webacl/shared/0a1b2c3d"': "the given firewall",
            "length(module.waf) == 0": "no firewall of its own",
            'aws_cloudfront_distribution.this.restrictions[0].geo_restriction[0].restriction_type == "whitelist"': "allow list",
            'toset(aws_cloudfront_distribution.this.restrictions[0].geo_restriction[0].locations) == toset(["AT", "DE"])': "allowed countries",
            'aws_cloudfront_distribution.this.default_cache_behavior[0].target_origin_id == "content"': "default origin chosen",
            'join(",", [for b in aws_cloudfront_distribution.this.ordered_cache_behavior : "${b.path_pattern}=${b.target_origin_id}"]) == "/web/*=web"': "path defaults to the key",
            "length(aws_cloudfront_cache_policy.custom) == 0": "managed cache policy",
        },
    ),
    "firewall_without_logs": (
        {"waf_logging": "false", "hsts_preload": "true"},
        {
            "length(module.waf) == 1": "own firewall",
            "module.waf[0].log_group_name == null": "no logs",
            "aws_cloudfront_response_headers_policy.security.security_headers_config[0].strict_transport_security[0].preload": "preload on request",
        },
    ),
    # infra.yaml allows a name and a key that together pass the 64 characters
    # of an origin access control's name: the long one is shortened, stably.
    "long_origin_key": (
        {
            "origins": '{ web = { bucket_name = "b", bucket_regional_domain_name = "b.s3.eu-west-1.amazonaws.com" }, %s = { bucket_name = "c", bucket_regional_domain_name = "c.s3.eu-west-1.amazonaws.com" } }'
            % ("x" * 60)
        },
        {
            "alltrue([for oac in aws_cloudfront_origin_access_control.this : length(oac.name) <= 64])": "names fit",
            'aws_cloudfront_origin_access_control.this["web"].name == "${var.name}-web"': "a short name is kept",
            "length(distinct([for oac in aws_cloudfront_origin_access_control.this : oac.name])) == 2": "names stay apart",
        },
    ),
}

# The waf module on its own, as the cdn (CLOUDFRONT) and the load balancer
# (REGIONAL, body size only counted) call it.
MANAGED_RULES = "AWSManagedRulesAmazonIpReputationList,AWSManagedRulesAnonymousIpList,AWSManagedRulesCommonRuleSet,AWSManagedRulesKnownBadInputsRuleSet"
COMMON_OVERRIDES = 'flatten([for rule in aws_wafv2_web_acl.this.rule : [for o in rule.statement[0].managed_rule_group_statement[0].rule_action_override : o.name] if rule.name == "AWSManagedRulesCommonRuleSet"])'
WAF_PLANS = {
    "waf_cloudfront": (
        {"scope": '"CLOUDFRONT"', "log_group_name": '"aws-waf-logs-levels-qa-cdn"'},
        {
            'aws_wafv2_web_acl.this.scope == "CLOUDFRONT"': "CloudFront scope",
            f'join(",", sort([for rule in aws_wafv2_web_acl.this.rule : rule.name])) == "{MANAGED_RULES}"': "managed rules",
            f"length({COMMON_OVERRIDES}) == 0": "every common rule blocks",
            "length(aws_wafv2_web_acl_logging_configuration.this) == 1 && aws_cloudwatch_log_group.this[0].retention_in_days == 365": "firewall logs",
            'aws_cloudwatch_log_group.this[0].name == "aws-waf-logs-levels-qa-cdn"': "log group name",
        },
    ),
    "waf_regional_without_logs": (
        {
            "scope": '"REGIONAL"',
            "log_group_name": '"aws-waf-logs-levels-qa-load-balancer"',
            "common_rules_counted": '["SizeRestrictions_BODY"]',
            "logging": "false",
        },
        {
            'aws_wafv2_web_acl.this.scope == "REGIONAL"': "regional scope",
            f'{COMMON_OVERRIDES} == ["SizeRestrictions_BODY"]': "body size only counted",
            "length(aws_wafv2_web_acl_logging_configuration.this) + length(aws_cloudwatch_log_group.this) + length(aws_kms_key.logs) == 0": "no logs",
        },
    ),
}


def _origins(uploads_extra: str) -> str:
    """web and uploads, with `uploads_extra` added to the uploads origin."""
    return (
        '{ web = { bucket_name = "b-web", bucket_regional_domain_name = "b-web.s3.eu-west-1.amazonaws.com" }, '
        f'uploads = {{ bucket_name = "b-up", bucket_regional_domain_name = "b-up.s3.eu-west-1.amazonaws.com"{uploads_extra} }} }}'
    )


# run name -> (variables, the variable whose validation refuses them)
REFUSED = {
    "aliases_without_certificate": ({"aliases": '["cdn.example.com"]'}, "certificate_arn"),
    "certificate_without_aliases": ({"certificate_arn": f'"{CERTIFICATE}"'}, "certificate_arn"),
    "certificate_outside_us_east_1": (
        {
            "aliases": '["cdn.example.com"]',
            "certificate_arn": f'"{CERTIFICATE.replace("us-east-1", "eu-west-1")}"',
        },
        "certificate_arn",
    ),
    "unknown_default_origin": ({"default_origin": '"site"'}, "default_origin"),
    "default_origin_with_path": (
        {
            "origins": '{ web = { bucket_name = "b-web", bucket_regional_domain_name = "b-web.s3.eu-west-1.amazonaws.com", path_pattern = "/web/*" } }'
        },
        "default_origin",
    ),
    "two_segment_path": ({"origins": _origins(', path_pattern = "/a/b/*"')}, "origins"),
    "same_path_twice": ({"origins": _origins(', path_pattern = "/web/*"')}, "origins"),
    "ttls_out_of_order": (
        {"origins": _origins(", cache = { default_ttl = 10, max_ttl = 5 }")},
        "origins",
    ),
    "website_endpoint_origin": (
        {
            "origins": '{ web = { bucket_name = "b-web", bucket_regional_domain_name = "b-web.s3-website-eu-west-1.amazonaws.com" } }'
        },
        "origins",
    ),
    "regional_log_bucket": (
        {"log_bucket_domain_name": '"b-logs.s3.eu-west-1.amazonaws.com"'},
        "log_bucket_domain_name",
    ),
    "lowercase_country": ({"geo_allow_list": '["de"]'}, "geo_allow_list"),
    "name_too_long": ({"name": '"' + "a" * 51 + '"'}, "name"),
    "odd_log_retention": ({"waf_log_retention_days": "100"}, "waf_log_retention_days"),
}


def _tftest() -> str:
    runs = []
    for name, (variables, asserts) in PLANS.items():
        runs.append(_run(name, variables, _asserts(asserts)))
    for name, (variables, refusing) in REFUSED.items():
        runs.append(_run(name, variables, f"\n  expect_failures = [var.{refusing}]\n"))
    for name, (variables, asserts) in WAF_PLANS.items():
        runs.append(_run(name, variables, _asserts(asserts), module="waf"))
    return TFTEST_HEAD + "".join(runs)


def _asserts(asserts: dict[str, str]) -> str:
    return "".join(
        f"\n  assert {{\n    condition     = {condition}\n    error_message = {json.dumps(meaning)}\n  }}\n"
        for condition, meaning in asserts.items()
    )


def _run(name: str, variables: dict[str, str], body: str, module: str = "cdn") -> str:
    lines = "".join(f"    {key} = {value}\n" for key, value in variables.items())
    providers = (
        "aws           = aws\n    aws.us_east_1 = aws.us_east_1"
        if module == "cdn"
        else "aws = aws.us_east_1"
    )
    return (
        f'\nrun "{name}" {{\n  command = plan\n\n  module {{\n    source = "./modules/{module}"\n  }}\n\n'
        f"  providers = {{\n    {providers}\n  }}\n\n"
        f"  variables {{\n{lines}  }}\n{body}}}\n"
    )


# What checkov may skip in the module: the registry's cdn entries, which the
# templates (plain Terraform) carry as written there.
REGISTERED = {
    skip.check_id for skip in SKIPS if skip.scanner == "checkov" and skip.place == "modules/cdn"
}


def _tf(env, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def _render_module(target: Path, module: Path = MODULE) -> None:
    """The module's files as levels-tf renders them: every template through
    Jinja with the project's settings, `.j2` stripped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(module)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    target.mkdir(parents=True)
    for template in sorted(module.glob("*.j2")):
        text = env.get_template(template.name).render(VERSIONS)
        (target / template.name.removesuffix(".j2")).write_text(text, encoding="utf-8")


def _root(folder: Path, main_tf: str) -> Path:
    _render_module(folder / "modules" / "cdn")
    _render_module(folder / "modules" / "waf", WAF)
    (folder / "main.tf").write_text(main_tf, encoding="utf-8")
    return folder


def _init(env, folder: Path) -> None:
    init = _tf(env, folder, "init", "-backend=false", "-input=false", "-no-color")
    assert init.returncode == 0, init.stdout + init.stderr


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Path:
    return _root(tmp_path_factory.mktemp("cdn-platform"), PLATFORM)


@pytest.fixture(scope="module")
def rendered_module(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cdn-module") / "cdn"
    _render_module(folder)
    return folder


# --- the templates -----------------------------------------------------------


def test_only_versions_uses_jinja():
    """Module templates are plain Terraform; only versions.tf takes values."""
    for template in sorted([*MODULE.glob("*.j2"), *WAF.glob("*.j2")]):
        text = template.read_text(encoding="utf-8")
        uses_jinja = bool(re.search(r"\{\{|\{%|\{#", text))
        assert uses_jinja == (template.name == "versions.tf.j2"), template.name


def test_caller_must_pass_the_us_east_1_provider(rendered_module):
    versions = (rendered_module / "versions.tf").read_text(encoding="utf-8")
    assert 'required_version = ">= 1.10"' in versions
    assert 'version = ">= 5.100"' in versions
    assert re.search(r"configuration_aliases\s*=\s*\[aws\.us_east_1\]", versions)


def test_every_variable_and_output_is_described(rendered_module):
    variables = (rendered_module / "variables.tf").read_text(encoding="utf-8")
    outputs = (rendered_module / "outputs.tf").read_text(encoding="utf-8")
    for kind, text in (("variable", variables), ("output", outputs)):
        blocks = re.split(rf'^{kind} "', text, flags=re.M)[1:]
        assert blocks, kind
        for block in blocks:
            name = block.split('"', 1)[0]
            assert "description =" in block, f"{kind} {name} has no description"
            if kind == "variable":
                assert re.search(r"^  type\s+=", block, re.M), f"variable {name} has no type"
    for name in ("distribution_arn", "distribution_id", "domain_name", "hosted_zone_id"):
        assert f'output "{name}"' in outputs


# --- terraform ---------------------------------------------------------------


def test_fmt_clean(platform, terraform_env):
    result = _tf(terraform_env, platform, "fmt", "-check", "-recursive", "-diff", "-no-color")
    assert result.returncode == 0, result.stdout + result.stderr


def test_validate(platform, terraform_env):
    _init(terraform_env, platform)
    result = _tf(terraform_env, platform, "validate", "-json", "-no-color")
    report = json.loads(result.stdout)
    assert report["valid"], result.stdout
    assert report["warning_count"] == 0, result.stdout
    assert result.returncode == 0


def test_plans_and_refusals(tmp_path, terraform_env):
    """`terraform test` plans the module against mock providers: what it builds
    for each set of inputs, and that every bad input is refused by its own
    validation (checks between variables run at plan, not at validate)."""
    folder = _root(tmp_path, PROLOGUE)
    (folder / "cdn.tftest.hcl").write_text(_tftest(), encoding="utf-8")
    _init(terraform_env, folder)
    result = _tf(terraform_env, folder, "test", "-no-color")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in [*PLANS, *REFUSED]:
        assert f'run "{name}"... pass' in result.stdout, result.stdout


# --- checkov -----------------------------------------------------------------


def _checkov() -> str:
    return checkov_binary()


@pytest.mark.slow
def test_checkov_finds_nothing_new(platform):
    checkov = _checkov()
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    scanned = platform.parent / (platform.name + "-checkov")
    shutil.copytree(platform, scanned, ignore=shutil.ignore_patterns(".terraform*"))
    result = subprocess.run(
        [
            checkov,
            "-d",
            str(scanned),
            "--framework",
            "terraform",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed, skipped = [], set()
    for report in reports:
        results = report.get("results", {})
        for check in results.get("failed_checks", []):
            if check["resource"].startswith("module."):
                failed.append((check["check_id"], check["resource"]))
        for check in results.get("skipped_checks", []):
            if check["resource"].startswith("module."):
                skipped.add(check["check_id"])
    assert not failed, failed
    # Without --quiet, which would drop the skipped records along with the passed.
    assert skipped == REGISTERED, sorted(skipped ^ REGISTERED)


# --- the CloudFront Function -------------------------------------------------

# Runs the function's code as CloudFront does: a script defining handler,
# called with each event; prints the returned requests.
NODE_HARNESS = """
const fs = require("fs");
const vm = require("vm");
const handler = vm.runInNewContext(fs.readFileSync(process.argv[1], "utf8") + "\\nhandler;", {});
const events = JSON.parse(fs.readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(events.map((event) => handler(event))));
"""


def _function_code(rendered_module: Path) -> str:
    text = (rendered_module / "policies.tf").read_text(encoding="utf-8")
    found = re.search(r"^\s*code\s*=\s*<<-EOT\n(.*?)^\s*EOT$", text, re.S | re.M)
    assert found, "no code = <<-EOT heredoc in policies.tf"
    code = textwrap.dedent(found.group(1))
    # Terraform would interpolate these inside the heredoc.
    assert "${" not in code and "%{" not in code
    return code


def _event(uri: str, querystring: dict | None = None) -> dict:
    return {
        "version": "1.0",
        "context": {"eventType": "viewer-request", "distributionId": "E123"},
        "viewer": {"ip": "192.0.2.1"},
        "request": {
            "method": "GET",
            "uri": uri,
            "querystring": querystring or {},
            "headers": {"host": {"value": "cdn.example.com"}},
            "cookies": {},
        },
    }


@pytest.mark.parametrize(
    "uri,expected",
    [
        ("/uploads/a.jpg", "/a.jpg"),
        ("/uploads/2024/05/a.jpg", "/2024/05/a.jpg"),
        ("/content/a%20b.txt", "/a%20b.txt"),
        ("/uploads/", "/"),
        ("/uploads", "/"),
        ("/", "/"),
    ],
)
def test_function_strips_the_first_segment(uri, expected, rendered_module, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH; it runs the CloudFront Function's code")
    code = tmp_path / "function.js"
    code.write_text(_function_code(rendered_module), encoding="utf-8")
    query = {
        "w": {"value": "200"},
        "tag": {"value": "a", "multiValue": [{"value": "a"}, {"value": "b"}]},
    }
    event = _event(uri, query)
    result = subprocess.run(
        [node, "-e", NODE_HARNESS, str(code)],
        input=json.dumps([event]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (request,) = json.loads(result.stdout)
    assert request["uri"] == expected
    # Everything else of the request passes as it came, the query string included.
    assert {k: v for k, v in request.items() if k != "uri"} == {
        k: v for k, v in event["request"].items() if k != "uri"
    }
