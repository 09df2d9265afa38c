"""Security invariants, asserted on the parsed Terraform that levels-tf renders.

Every generated module and stack is parsed with python-hcl2; the checks read
resources and their arguments, never the raw text.
"""

from __future__ import annotations

import io
from pathlib import Path

import hcl2
import pytest

from levels_tf.render import render
from levels_tf.validation import load_config

from .conftest import REFERENCE

GOLDEN = Path(__file__).parent / "golden"
CONFIGS = {"reference": REFERENCE} | {
    p.name: p / "infra.yaml" for p in sorted(GOLDEN.iterdir()) if (p / "infra.yaml").is_file()
}


def _plain(value):
    """python-hcl2 keeps the quotes of strings and block labels: drop them."""
    if isinstance(value, dict):
        return {
            _plain(k): _plain(v)
            for k, v in value.items()
            if k not in ("__comments__", "__is_block__")
        }
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse(files: dict[str, str]) -> dict[str, dict]:
    return {
        path: _plain(hcl2.load(io.StringIO(text)))
        for path, text in files.items()
        if path.endswith(".tf")
    }


def resources(parsed: dict[str, dict], kind: str):
    """(file path, resource name, arguments) of every resource of `kind`."""
    for path, body in parsed.items():
        for block in body.get("resource", []):
            for name, arguments in block.get(kind, {}).items():
                yield path, name, arguments


def module_calls(parsed: dict[str, dict], stack: str):
    for path, body in parsed.items():
        if path.startswith(f"stacks/{stack}/"):
            for block in body.get("module", []):
                yield from block.items()


def _ports(rule: dict) -> range:
    if str(rule.get("ip_protocol")) == "-1":
        return range(65536)
    low, high = rule.get("from_port"), rule.get("to_port")
    if isinstance(low, int) and isinstance(high, int):
        return range(low, high + 1)
    return range(-1, -1)  # a port from a variable: checked where the variable is set


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def rendered(request):
    config = load_config(CONFIGS[request.param])
    return config, parse(render(config))


def test_rules_live_only_in_standalone_rule_resources(rendered):
    _, parsed = rendered
    for path, name, group in resources(parsed, "aws_security_group"):
        assert "ingress" not in group and "egress" not in group, f"{path}: {name} has inline rules"
    assert not list(resources(parsed, "aws_security_group_rule"))
    assert list(resources(parsed, "aws_vpc_security_group_ingress_rule"))


def test_ssh_only_on_the_bastion_from_allowed_cidrs_and_on_app_servers_from_the_bastion(rendered):
    _, parsed = rendered
    seen = set()
    for path, name, rule in resources(parsed, "aws_vpc_security_group_ingress_rule"):
        if 22 not in _ports(rule):
            continue
        module = path.split("/")[1]
        seen.add(module)
        if module == "bastion":
            assert rule["for_each"] == "${toset(var.allowed_cidrs)}"
            assert rule["cidr_ipv4"] == "${each.key}"
            assert "referenced_security_group_id" not in rule
        elif module == "app-access":
            assert rule["referenced_security_group_id"] == "${var.bastion_security_group_id}"
            assert "cidr_ipv4" not in rule and "cidr_ipv6" not in rule
        else:
            pytest.fail(f"{path}: {name} admits SSH")
    assert seen == {"bastion", "app-access"}


def test_bastion_allow_list_is_the_configured_one_and_never_the_internet(rendered):
    config, parsed = rendered
    for group in config.infra.vpc_groups:
        calls = dict(module_calls(parsed, f"{group}-shared"))
        if config.infra.bastion is None:
            assert "bastion" not in calls
            assert calls["app_access"]["bastion_security_group_id"] is None
            continue
        allowed = calls["bastion"]["allowed_cidrs"]
        assert allowed == sorted(config.infra.bastion.allowed_cidrs)
        assert "0.0.0.0/0" not in allowed
        assert (
            calls["app_access"]["bastion_security_group_id"]
            == "${module.bastion.security_group_id}"
        )


def test_the_internet_reaches_only_the_load_balancer_on_80_and_443(rendered):
    _, parsed = rendered
    for path, name, rule in resources(parsed, "aws_vpc_security_group_ingress_rule"):
        open_to_all = rule.get("cidr_ipv4") == "0.0.0.0/0" or rule.get("cidr_ipv6") == "::/0"
        if open_to_all:
            assert path.startswith("modules/load-balancer/"), f"{path}: {name}"
            assert (rule["from_port"], rule["to_port"]) in ((80, 80), (443, 443)), f"{path}: {name}"


def test_services_admit_their_port_only_from_the_load_balancer(rendered):
    _, parsed = rendered
    rules = [
        (p, n, r)
        for p, n, r in resources(parsed, "aws_vpc_security_group_ingress_rule")
        if p.startswith("modules/service/")
    ]
    assert len(rules) == 1
    _, _, rule = rules[0]
    assert rule["referenced_security_group_id"] == "${var.load_balancer.security_group_id}"
    assert rule["from_port"] == rule["to_port"] == "${var.port}"
    assert "cidr_ipv4" not in rule


def test_every_launch_template_requires_imdsv2_and_encrypts_every_volume(rendered):
    _, parsed = rendered
    templates = list(resources(parsed, "aws_launch_template"))
    assert {path.split("/")[1] for path, _, _ in templates} == {"bastion", "service"}
    for path, _name, template in templates:
        (metadata,) = template["metadata_options"]
        assert metadata["http_tokens"] == "required", path
        assert metadata["http_put_response_hop_limit"] == 1, path
        devices = template["block_device_mappings"]
        assert devices, path
        for device in devices:
            for ebs in device["ebs"]:
                assert ebs["encrypted"] is True, path


def test_fleets_track_the_exact_launch_template_version(rendered):
    _, parsed = rendered
    for path, _name, group in resources(parsed, "aws_autoscaling_group"):
        (template,) = group["launch_template"]
        assert template["version"] == "${aws_launch_template.this.latest_version}", path
        assert group["instance_refresh"][0]["strategy"] == "Rolling", path


def test_load_balancer_drops_invalid_headers_and_redirects_http(rendered):
    config, parsed = rendered
    balancers = list(resources(parsed, "aws_lb"))
    assert len(balancers) == 1
    _, _, lb = balancers[0]
    assert lb["drop_invalid_header_fields"] is True
    assert lb["access_logs"][0]["enabled"] is True
    listeners = {name: listener for _, name, listener in resources(parsed, "aws_lb_listener")}
    assert listeners["http"]["default_action"][0]["type"] == "redirect"
    assert listeners["http"]["default_action"][0]["redirect"][0]["protocol"] == "HTTPS"
    assert listeners["https"]["protocol"] == "HTTPS"
    for group_name, group in config.infra.vpc_groups.items():
        calls = dict(module_calls(parsed, f"{group_name}-shared"))
        if config.infra.web_services():
            # Protection follows the stack's variable, whose default is the group's setting
            # (`destroy --lift-protection` turns it off in a reviewed apply).
            assert calls["load_balancer"]["deletion_protection"] == "${var.deletion_protection}"
            (variables,) = [
                block["deletion_protection"]
                for path, body in parsed.items()
                if path.startswith(f"stacks/{group_name}-shared/")
                for block in body.get("variable", [])
                if "deletion_protection" in block
            ]
            assert variables["default"] is group.deletion_protection
            assert calls["load_balancer"]["ssl_policy"].startswith("ELBSecurityPolicy-TLS13-")


# --- data (buckets, database, messaging, secrets) -----------------------------------


def _policy_statements(parsed, path_prefix: str) -> list[dict]:
    statements = []
    for path, body in parsed.items():
        if path.startswith(path_prefix):
            for block in body.get("data", []):
                for _, documents in block.get("aws_iam_policy_document", {}).items():
                    statements.extend(documents.get("statement", []))
    return statements


def test_load_balancer_logs_to_a_log_bucket_module(rendered):
    """The load balancer's access log bucket is the log-bucket module, for it alone."""
    _, parsed = rendered
    calls = [
        call
        for path, body in parsed.items()
        if path.startswith("modules/load-balancer/")
        for block in body.get("module", [])
        for call in block.values()
        if call["source"] == "../log-bucket"
    ]
    assert [call["log_sources"] for call in calls] == [["load-balancer"]]
    assert not [r for r in resources(parsed, "aws_s3_bucket") if "load-balancer/" in r[0]]


@pytest.mark.parametrize("module", ["bucket", "log-bucket"])
def test_every_bucket_is_private_encrypted_and_tls_only(rendered, module):
    _, parsed = rendered
    prefix = f"modules/{module}/"
    buckets = [r for r in resources(parsed, "aws_s3_bucket") if r[0].startswith(prefix)]
    assert len(buckets) == 1
    ((_, _, block),) = [
        r for r in resources(parsed, "aws_s3_bucket_public_access_block") if r[0].startswith(prefix)
    ]
    for flag in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert block[flag] is True, (module, flag)
    ((_, _, sse),) = [
        r
        for r in resources(parsed, "aws_s3_bucket_server_side_encryption_configuration")
        if r[0].startswith(prefix)
    ]
    algorithm = sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"]
    assert algorithm == ("aws:kms" if module == "bucket" else "AES256"), module
    denies = [s for s in _policy_statements(parsed, prefix) if s.get("effect") == "Deny"]
    assert any(
        c["variable"] == "aws:SecureTransport" and c["values"] == ["false"]
        for s in denies
        for c in s.get("condition", [])
    ), module
    for path, _, _acl in resources(parsed, "aws_s3_bucket_acl"):
        pytest.fail(f"{path}: bucket ACLs are never granted")


def test_the_database_admits_only_application_groups(rendered):
    config, parsed = rendered
    rules = [
        r
        for r in resources(parsed, "aws_vpc_security_group_ingress_rule")
        if r[0].startswith("modules/database/")
    ]
    assert len(rules) == 1
    _, _, rule = rules[0]
    assert rule["for_each"] == "${var.client_security_group_ids}"
    assert rule["referenced_security_group_id"] == "${each.value}"
    assert "cidr_ipv4" not in rule and "cidr_ipv6" not in rule
    if config.infra.database is None:
        return
    for group in config.infra.vpc_groups:
        calls = dict(module_calls(parsed, f"{group}-shared"))
        clients = calls["database"]["client_security_group_ids"]
        assert (
            clients == "${{for env, access in module.app_access : env => access.security_group_id}}"
        )
        assert "bastion" not in str(calls["database"])


def test_cluster_queues_topics_and_parameters_are_encrypted(rendered):
    _, parsed = rendered
    ((_, _, cluster),) = resources(parsed, "aws_rds_cluster")
    assert cluster["storage_encrypted"] is True
    assert cluster["kms_key_id"] == "${aws_kms_key.this.arn}"
    assert cluster["iam_database_authentication_enabled"] is True
    for kind in ("aws_sqs_queue",):
        for path, name, queue in resources(parsed, kind):
            assert queue.get("kms_master_key_id"), f"{path}: {name}"
    for path, name, topic in resources(parsed, "aws_sns_topic"):
        assert topic.get("kms_master_key_id"), f"{path}: {name}"
    for path, name, parameter in resources(parsed, "aws_ssm_parameter"):
        assert parameter["type"] == "SecureString", f"{path}: {name}"
        assert parameter["key_id"] == "${var.kms_key_arn}", f"{path}: {name}"
    for path, name, secret in resources(parsed, "aws_secretsmanager_secret"):
        assert secret["kms_key_id"] == "${var.kms_key_arn}", f"{path}: {name}"


def test_no_secret_value_is_ever_written(rendered):
    _config, parsed = rendered
    ((_, _, cluster),) = resources(parsed, "aws_rds_cluster")
    assert cluster["manage_master_user_password"] is True
    assert "master_password" not in cluster
    for path, _, parameter in resources(parsed, "aws_ssm_parameter"):
        assert parameter["value"] == "${local.placeholder}", path
        assert parameter["lifecycle"][0]["ignore_changes"] == ["${value}"] or parameter[
            "lifecycle"
        ][0]["ignore_changes"] == ["value"]
    for path, _, version in resources(parsed, "aws_secretsmanager_secret_version"):
        assert version["secret_string"] == "${local.placeholder}", path
    for path, body in parsed.items():
        for block in body.get("output", []):
            for name, output in block.items():
                assert "sensitive" not in output, (
                    f"{path}: output {name} would hide a secret; none may be output"
                )
                assert "password" not in str(output["value"]).lower() or "secret_arn" in str(
                    output["value"]
                ), path


def test_no_literal_credentials_in_any_rendered_file(rendered):
    import re

    config, _ = rendered
    from levels_tf.render import render as render_files

    patterns = [
        re.compile(r"AKIA[0-9A-Z]{16}"),
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
        re.compile(r"(?i)(password|secret)\s*=\s*\"(?!set-me-out-of-band)[^\"$]{6,}\""),
    ]
    for path, text in render_files(config).items():
        for pattern in patterns:
            assert not pattern.search(text), f"{path}: {pattern.pattern}"


def test_buckets_are_versioned_as_infra_yaml_says(rendered):
    """trivy cannot follow var.versioning through the stacks' for_each
    (AWS-0090, skipped in levels_tf/skips.py): each bucket is versioned unless
    its class says `versioning: false`, and the log buckets always are."""
    config, parsed = rendered
    statuses = {
        path: block["versioning_configuration"][0]["status"]
        for path, _, block in resources(parsed, "aws_s3_bucket_versioning")
    }
    assert statuses == {
        "modules/bucket/main.tf": '${var.versioning ? "Enabled" : "Suspended"}',
        "modules/log-bucket/main.tf": "Enabled",
    }
    for env in config.infra.all_environments:
        calls = dict(module_calls(parsed, env))
        assert calls["bucket"]["for_each"] == "${local.buckets}", env
        assert calls["bucket"]["versioning"] == "${each.value.versioning}", env
        (buckets,) = [
            body["locals"][0]["buckets"]
            for path, body in parsed.items()
            if path == f"stacks/{env}/data.tf"
        ]
        infra = config.environments[env]
        expected = {name: spec.versioning for name, spec in infra.buckets.items()}
        # The backup bucket, when a class is backed up, is always versioned.
        expected |= {"backup": True} if "backup" in buckets else {}
        assert {name: spec["versioning"] for name, spec in buckets.items()} == expected, env


# --- egress and VPC endpoints ---------------------------------------------------------


def test_the_internet_is_reached_only_by_the_optional_https_rule(rendered):
    """Every egress rule to 0.0.0.0/0 (or ::/0) is the HTTPS rule named
    internet_https, counted by its module's internet_https variable, and each
    shared stack turns it on exactly for the clients its group lists."""
    config, parsed = rendered
    for path, name, rule in resources(parsed, "aws_vpc_security_group_egress_rule"):
        if rule.get("cidr_ipv4") == "0.0.0.0/0" or rule.get("cidr_ipv6") == "::/0":
            module = path.split("/")[1]
            assert module in ("app-access", "bastion"), f"{path}: {name}"
            assert name == "internet_https", f"{path}: {name}"
            assert rule["count"] == "${var.internet_https ? 1 : 0}", f"{path}: {name}"
            assert (rule["from_port"], rule["to_port"], rule["ip_protocol"]) == (443, 443, "tcp")
    for group_name, group in config.infra.vpc_groups.items():
        calls = dict(module_calls(parsed, f"{group_name}-shared"))
        assert calls["app_access"]["internet_https"] is ("servers" in group.internet_https)
        if "bastion" in calls:
            assert calls["bastion"]["internet_https"] is ("bastion" in group.internet_https)


def test_the_function_reaches_s3_through_its_prefix_list_only(rendered):
    _, parsed = rendered
    rules = [
        (name, rule)
        for path, name, rule in resources(parsed, "aws_vpc_security_group_egress_rule")
        if path.startswith("modules/function/")
    ]
    assert [name for name, _ in rules] == ["s3"]
    (_, rule) = rules[0]
    assert rule["prefix_list_id"] == "${var.s3_prefix_list_id}"
    assert "cidr_ipv4" not in rule and "cidr_ipv6" not in rule and "count" not in rule


def test_production_groups_reach_every_service_they_call_through_an_endpoint(rendered):
    from levels_tf import context, vpc_endpoints

    config, parsed = rendered
    production = [g for g, spec in config.infra.vpc_groups.items() if spec.production]
    for group in production:
        if config.infra.vpc_groups[group].endpoints.interface is not None:
            continue  # the file chose its endpoints
        network = dict(module_calls(parsed, f"{group}-shared"))["network"]
        used = vpc_endpoints.services_used(context.group_infra(config, group))
        assert set(used) <= set(network["interface_endpoints"]), group
        assert bool(network["endpoint_zones"]) is bool(used), group


def _wildcard(action: str) -> bool:
    return action == "*" or action.endswith(":*")


def test_endpoint_policies_never_grant_every_action(rendered):
    """No endpoint policy statement has a "*" action (or service:*), so none
    grants every action on "*"; every statement on "*" names its actions."""
    _, parsed = rendered
    body = parsed["modules/network/endpoints.tf"]
    (statements,) = [
        block["endpoint_statements"] for block in body["locals"] if "endpoint_statements" in block
    ]
    assert statements
    for service, by_sid in statements.items():
        for sid, statement in by_sid.items():
            assert statement["actions"] and not any(map(_wildcard, statement["actions"])), (
                service,
                sid,
            )
    documents = [
        documents
        for block in body["data"]
        for name, documents in block.get("aws_iam_policy_document", {}).items()
    ]
    assert len(documents) == 2
    for document in documents:
        plain = document.get("statement", [])
        dynamic = [
            d["statement"]["content"][0] for d in document.get("dynamic", []) if "statement" in d
        ]
        for statement in plain + dynamic:
            actions = statement["actions"]
            if isinstance(actions, list):
                assert not any(map(_wildcard, actions)), statement
            else:  # taken from endpoint_statements, checked above
                assert actions == "${statement.value.actions}"
