"""Security invariants, asserted on the parsed Terraform that levels-tf renders.

Every generated module and stack is parsed with python-hcl2; the checks read
resources and their arguments, never the raw text.
"""

from __future__ import annotations

import copy
import functools
import io
import re
from pathlib import Path

import hcl2
import pytest

from levels_tf import names
from levels_tf.render import render
from levels_tf.stacks import SHARED, stacks
from levels_tf.validation import load_config

from . import secret_scan
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


@functools.cache
def _parsed_text(text: str) -> dict:
    """One file's parse, shared by every configuration rendering the same text
    (modules/ is identical for all): read it, never change it."""
    return _plain(hcl2.load(io.StringIO(text)))


def parse(files: dict[str, str]) -> dict[str, dict]:
    return {path: _parsed_text(text) for path, text in files.items() if path.endswith(".tf")}


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


@functools.cache
def _rendered(name: str):
    """(Config, parsed tree) of configuration `name`, parsed once per session."""
    config = load_config(CONFIGS[name])
    return config, parse(render(config))


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def rendered(request):
    return _rendered(request.param)


def _reference():
    """The reference's config and a parsed tree a test may break (a deep copy)."""
    config, parsed = _rendered("reference")
    return config, copy.deepcopy(parsed)


def _first(parsed, path: str, kind: str) -> dict:
    """The first top-level block `kind` (module, data, terraform...) of file `path`."""
    return parsed[path][kind][0]


def _resource(parsed, path: str, kind: str, name: str) -> dict:
    """The arguments of resource `kind.name` in file `path`, to change in place."""
    (found,) = [
        block[kind][name]
        for block in parsed[path]["resource"]
        if kind in block and name in block[kind]
    ]
    return found


def test_rules_live_only_in_standalone_rule_resources(rendered):
    _, parsed = rendered
    for path, name, group in resources(parsed, "aws_security_group"):
        assert "ingress" not in group and "egress" not in group, f"{path}: {name} has inline rules"
    assert not list(resources(parsed, "aws_security_group_rule"))
    assert list(resources(parsed, "aws_vpc_security_group_ingress_rule"))


def _no_cidr(rule: dict) -> bool:
    return "cidr_ipv4" not in rule and "cidr_ipv6" not in rule and "prefix_list_id" not in rule


def access_problems(config, parsed) -> list[str]:
    """SSH reaches the bastion only from the configured allow list (security
    group and network ACL alike), application servers only from the
    bastion's group, and nothing else; the database admits only the
    application servers' groups."""
    problems = []
    seen = set()
    for path, name, rule in resources(parsed, "aws_vpc_security_group_ingress_rule"):
        module = path.split("/")[1]
        if module == "database":
            from_clients = (
                rule.get("for_each") == "${var.client_security_group_ids}"
                and rule.get("referenced_security_group_id") == "${each.value}"
            )
            if not from_clients or not _no_cidr(rule):
                problems.append(f"{path}: {name} admits more than the application servers")
        if 22 not in _ports(rule):
            continue
        seen.add(module)
        if module == "bastion":
            allowed = (
                rule.get("for_each") == "${toset(var.allowed_cidrs)}"
                and rule.get("cidr_ipv4") == "${each.key}"
                and not set(rule) & {"referenced_security_group_id", "cidr_ipv6", "prefix_list_id"}
            )
        elif module == "app-access":
            allowed = rule.get(
                "referenced_security_group_id"
            ) == "${var.bastion_security_group_id}" and _no_cidr(rule)
        else:
            allowed = False
        if not allowed:
            problems.append(f"{path}: {name} admits SSH from elsewhere")
    if seen != {"bastion", "app-access"}:
        problems.append(f"SSH rules in {sorted(seen)}")
    bastion = config.infra.bastion
    allowed_cidrs = sorted(bastion.allowed_cidrs) if bastion else []
    for group in config.infra.vpc_groups:
        calls = dict(module_calls(parsed, f"{group}-shared"))
        nacl = calls["network"].get("ssh_ingress_cidrs")
        if nacl != allowed_cidrs:
            problems.append(f"{group}: the network ACLs admit SSH from {nacl}")
        source = calls["app_access"].get("bastion_security_group_id")
        if source != ("${module.bastion.security_group_id}" if bastion else None):
            problems.append(f"{group}: application servers admit SSH from {source}")
        if bastion is None and "bastion" in calls:
            problems.append(f"{group}: a bastion nobody configured")
        if bastion is not None:
            cidrs = calls.get("bastion", {}).get("allowed_cidrs")
            if cidrs != allowed_cidrs or "0.0.0.0/0" in cidrs:
                problems.append(f"{group}: the bastion admits {cidrs}")
        clients = calls.get("database", {}).get("client_security_group_ids")
        if "database" in calls and clients != (
            "${{for env, access in module.app_access : env => access.security_group_id}}"
        ):
            problems.append(f"{group}: the database admits {clients}")
    return problems


def test_ssh_and_database_access_follow_the_allow_lists(rendered):
    config, parsed = rendered
    assert access_problems(config, parsed) == []


def _ingress(parsed, module: str, name: str) -> dict:
    return _resource(
        parsed, f"modules/{module}/main.tf", "aws_vpc_security_group_ingress_rule", name
    )


def _production_shared_call(parsed, name: str) -> dict:
    (call,) = [c for n, c in module_calls(parsed, "production-shared") if n == name]
    return call


def test_access_fails_on_a_broken_tree():
    _each_break_is_noticed(
        access_problems,
        [
            lambda p: _ingress(p, "bastion", "ssh").update(cidr_ipv4="0.0.0.0/0"),
            lambda p: _ingress(p, "app-access", "ssh_from_bastion").update(
                cidr_ipv4="${var.vpc_cidr}"
            ),
            lambda p: _ingress(p, "service", "from_load_balancer").update(from_port=22, to_port=22),
            lambda p: _ingress(p, "database", "from_applications").update(
                cidr_ipv4="${var.vpc_cidr}"
            ),
            lambda p: _production_shared_call(p, "bastion")["allowed_cidrs"].append("0.0.0.0/0"),
            lambda p: _production_shared_call(p, "network")["ssh_ingress_cidrs"].append(
                "198.51.100.0/24"
            ),
            lambda p: _production_shared_call(p, "database").update(
                client_security_group_ids="${{bastion = module.bastion.security_group_id}}"
            ),
        ],
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


def test_no_secret_value_in_any_rendered_file(rendered):
    """Every file of the tree, Terraform, Packer, scripts and READMEs alike."""
    config, _ = rendered
    files = render(config)
    assert secret_scan.scan_files(files) == []


def test_the_secret_scan_finds_what_a_broken_tree_would_leak():
    config, _ = _rendered("reference")
    files = render(config)
    leaks = {
        "modules/database/main.tf": '  master_password = "correct-horse-battery"\n',
        "modules/bastion/user-data.sh.tftpl": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        "packer/api.pkr.hcl": '    access_key = "AKIAQ3VQ2XKJ4R7ZB6TN"\n',
        "stacks/production/outputs.tf": 'output "x" {\n  value = { token: "ghp_0123456789" }\n}\n',
    }
    for path, leak in leaks.items():
        broken = dict(files, **{path: files[path] + leak})
        findings = secret_scan.scan_files(broken)
        assert findings, path
        assert {(f.source, f.line > files[path].count("\n")) for f in findings} == {(path, True)}
    seeded = "s3cr3t-seeded-value"
    broken = dict(files, **{"modules/network/README.md": f"the value is {seeded}\n"})
    assert secret_scan.scan_files(broken) == []
    assert [f.kind for f in secret_scan.scan_files(broken, seeded=[seeded])] == [
        "seeded secret value"
    ]
    # The name RDS gives a secret it manages says where the secret is, not what.
    assert secret_scan.scan('"secret": "rds!cluster-0f1e2d3c-4b5a"', "plan") == []
    assert secret_scan.scan('"secret": "rds-cluster-password"', "plan") != []
    # Nor does an ARN's resource type: a policy names the secrets it allows.
    arn = '"Resource": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:heavy/live/*"'
    assert secret_scan.scan(arn, "plan") == []
    assert secret_scan.scan('"db_secret": "heavy-live-value"', "plan") != []


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


# --- the invariants of the security gate ----------------------------------------
#
# Each family is a function returning the problems it finds, so that a test
# asserts there are none on every configuration, and a negative test breaks a
# copy of the parsed tree and asserts the family notices.


def _folder(path: str) -> str:
    """The module or stack a rendered file belongs to: modules/<name> or stacks/<name>."""
    return "/".join(path.split("/")[:2])


def _blocks(body: dict, name: str) -> list[dict]:
    """The nested blocks `name` of a resource: static ones and dynamic contents."""
    found = list(body.get(name, []))
    for dynamic in body.get("dynamic", []):
        if name in dynamic:
            found.extend(dynamic[name].get("content", []))
    return found


def _strings(value) -> list[str]:
    """The literal strings of a value: the items of a list, or the quoted
    strings inside an expression such as `${cond ? ["a"] : ["b"]}`."""
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return re.findall(r'"((?:[^"\\]|\\.)*)"', value)
        return [value]
    return []


def _jsonencoded(value):
    """The object inside `${jsonencode({...})}`, parsed; None for any other value."""
    if isinstance(value, str) and value.startswith("${jsonencode(") and value.endswith(")}"):
        inner = value[len("${jsonencode(") : -len(")}")]
        return _plain(hcl2.loads(f"x = {inner}\n"))["x"]
    return None


def stacks_of(config, parsed, kind: str | None = None):
    """(Stack, {path: body}) of every stack of `config`, or of one kind."""
    for stack in stacks(config.infra):
        if kind is None or stack.kind == kind:
            prefix = f"stacks/{stack.name}/"
            yield stack, {p: b for p, b in parsed.items() if p.startswith(prefix)}


def _backend(body_by_path: dict) -> dict:
    (backend,) = [
        settings
        for body in body_by_path.values()
        for block in body.get("terraform", [])
        for backend in block.get("backend", [])
        for settings in backend.values()
    ]
    return backend


# -- network isolation between VPC groups

# Resource types that would join two networks, or share one with another account.
JOINING_TYPES = (
    "aws_vpc_peering_connection",
    "aws_ec2_transit_gateway",
    "aws_vpn_",
    "aws_customer_gateway",
    "aws_dx_",
    "aws_ec2_client_vpn",
    "aws_networkmanager_",
    "aws_ram_",
    "aws_vpc_endpoint_service",
    "aws_ec2_local_gateway",
)
# Lookups that could find another group's network at plan time.
NETWORK_LOOKUPS = (
    "aws_vpc",
    "aws_vpcs",
    "aws_subnet",
    "aws_subnets",
    "aws_security_group",
    "aws_security_groups",
    "aws_route_table",
    "aws_route_tables",
    "aws_vpc_endpoint",
)
# Where a route may lead, and the resource type that must be behind it.
ROUTE_TARGETS = {
    "gateway_id": ("aws_internet_gateway", "aws_vpc_endpoint"),
    "nat_gateway_id": ("aws_nat_gateway",),
    "vpc_endpoint_id": ("aws_vpc_endpoint",),
    "egress_only_gateway_id": ("aws_egress_only_internet_gateway",),
}
ROUTE_ELSEWHERE = (
    "vpc_peering_connection_id",
    "transit_gateway_id",
    "carrier_gateway_id",
    "core_network_arn",
    "local_gateway_id",
    "network_interface_id",
)
# The id of a network, subnet, security group, route table, gateway,
# peering, transit gateway or endpoint, written out rather than referenced.
NETWORK_ID = re.compile(r"\b(?:vpc|subnet|sg|rtb|igw|nat|eigw|pcx|tgw|vpce|pl)-[0-9a-f]{8,17}\b")
RESOURCE_REFERENCE = re.compile(r"\b(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)")


def _all_strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in _all_strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _all_strings(item)]
    return [value] if isinstance(value, str) else []


def network_isolation_problems(config, parsed) -> list[str]:
    """Nothing joins two VPC groups: no joining resource, no network lookup
    or network id written out, every route and route table inside its own module's one VPC, every
    environment reading only its own group's shared state, each group its
    own state bucket and CI role."""
    problems = []
    declared = {
        (_folder(path), kind, name)
        for path, body in parsed.items()
        for block in body.get("resource", [])
        for kind, named in block.items()
        for name in named
    }
    for path, body in parsed.items():
        for block in body.get("resource", []):
            for kind in block:
                if kind.startswith(JOINING_TYPES):
                    problems.append(f"{path}: {kind} joins networks")
        for block in body.get("data", []):
            for kind in block:
                if kind in NETWORK_LOOKUPS:
                    problems.append(f"{path}: data {kind} could find another group's network")
        for text in _all_strings(body):
            for found in NETWORK_ID.findall(text):
                problems.append(f"{path}: names {found} literally, which may be anyone's")
    vpcs = {folder: name for folder, kind, name in declared if kind == "aws_vpc"}
    own_vpc = "${aws_vpc.%s.id}"
    for kind in (
        "aws_route_table",
        "aws_internet_gateway",
        "aws_vpc_endpoint",
        "aws_egress_only_internet_gateway",
    ):
        for path, name, resource in resources(parsed, kind):
            folder = _folder(path)
            if kind == "aws_vpc_endpoint" and resource.get("vpc_id") == "${var.vpc_id}":
                continue  # a module's input: the stack checks below see what it is given
            if folder not in vpcs or resource.get("vpc_id") != own_vpc % vpcs[folder]:
                problems.append(f"{path}: {kind}.{name} is not in its module's own VPC")
            if kind == "aws_route_table" and resource.get("route"):
                problems.append(f"{path}: {name} has inline routes (use aws_route)")
    for path, name, route in resources(parsed, "aws_route"):
        folder = _folder(path)
        for key in ROUTE_ELSEWHERE:
            if key in route:
                problems.append(f"{path}: route {name} leaves through {key}")
        targets = [key for key in ROUTE_TARGETS if key in route]
        if len(targets) != 1:
            problems.append(f"{path}: route {name} has targets {targets}")
            continue
        for attribute, kinds in (
            ("route_table_id", ("aws_route_table",)),
            (targets[0], ROUTE_TARGETS[targets[0]]),
        ):
            found = RESOURCE_REFERENCE.findall(str(route.get(attribute, "")))
            if not found or any(
                kind not in kinds or (folder, kind, ref) not in declared for kind, ref in found
            ):
                problems.append(f"{path}: route {name} {attribute} is not its own VPC's {kinds}")
    groups: dict[str, set[str]] = {}
    for stack, files in stacks_of(config, parsed):
        backend = _backend(files)
        if "bucket" in backend:  # an S3 backend (a local one keeps each stack in its folder)
            groups.setdefault(stack.group, set()).add(backend["bucket"])
        if (
            backend.get("key", f"{stack.name}/terraform.tfstate")
            != f"{stack.name}/terraform.tfstate"
        ):
            problems.append(f"{stack.name}: state key {backend.get('key')}")
        remote = [
            (name, state)
            for body in files.values()
            for block in body.get("data", [])
            for name, state in block.get("terraform_remote_state", {}).items()
        ]
        expected = [] if stack.kind == SHARED else [names.shared_stack(stack.group)]
        # An S3 key or a local path: <stack>/terraform.tfstate.
        read = [
            Path(state["config"].get("key") or state["config"].get("path", "")).parent.name
            for _, state in remote
        ]
        if read != expected:
            problems.append(f"{stack.name} reads the state of {read}, not {expected}")
        for _, state in remote:
            if "bucket" in state["config"] and state["config"]["bucket"] != backend.get("bucket"):
                problems.append(f"{stack.name} reads state from bucket {state['config']['bucket']}")
    for group, buckets in groups.items():
        if len(buckets) != 1:
            problems.append(f"group {group} keeps state in {sorted(buckets)}")
    all_buckets = [b for buckets in groups.values() for b in buckets]
    if len(set(all_buckets)) != len(all_buckets):
        problems.append(f"groups share a state bucket: {all_buckets}")
    roles = {}
    for stack, files in stacks_of(config, parsed, SHARED):
        calls = {
            n: c for p, body in files.items() for b in body.get("module", []) for n, c in b.items()
        }
        ci = calls.get("ci_role")
        if ci is None:
            problems.append(f"{stack.name} has no CI role of its own")
            continue
        roles[stack.group] = ci["name"]
        if ci["group"] != stack.group:
            problems.append(f"{stack.name}: CI role of group {ci['group']}")
        grants = {key: value for key, value in ci.items() if key != "name"}  # the group's own
        problems.extend(_foreign_names(config, stack.group, grants, f"{stack.name}: CI role"))
    if len(set(roles.values())) != len(roles):
        problems.append(f"groups share a CI role: {roles}")
    return problems


def _owner(config, name: str) -> str | None:
    """The environment whose prefix a bucket, resource or parameter name
    carries (the longest match, so `prod` never claims `prod-eu`'s names)."""
    infra = config.infra
    prefixes = {}
    for group in infra.vpc_groups.values():
        for env in group.environments:
            prefixes[names.asset_bucket(infra, env, "")] = env
            prefixes[names.environment_resource(infra, env) + "-"] = env
            prefixes[names.parameter_path(infra, env) + "/"] = env
            prefixes[names.environment_resource(infra, env)] = env
            prefixes[names.parameter_path(infra, env)] = env
    matches = [
        prefix
        for prefix in prefixes
        if name.startswith(prefix)
        if prefix.endswith(("-", "/")) or name == prefix
    ]
    return prefixes[max(matches, key=len)] if matches else None


# Arguments that name an environment's bucket, queue, topic, function or parameters.
NAME_ARGUMENTS = re.compile(
    r"(name|short_name|path|parameter|\w*_?bucket|\w*_buckets|\w*_queues|\w*_topics"
    r"|\w*parameter_paths|\w*parameter_prefixes)"
)


def _foreign_names(config, group: str, arguments: dict, where: str, env: str | None = None):
    """Problems for each bucket, queue, topic or parameter name in `arguments`
    (nested) that belongs to no environment of `group` (or not to `env`)."""
    allowed = {env} if env else set(config.infra.vpc_groups[group].environments)
    for key, value in arguments.items():
        if isinstance(value, dict):
            yield from _foreign_names(config, group, value, f"{where}.{key}", env)
        elif NAME_ARGUMENTS.fullmatch(key):
            for name in value if isinstance(value, list) else [value]:
                literal = isinstance(name, str) and not name.startswith("${")
                if literal and _owner(config, name) not in allowed:
                    yield f"{where}.{key}: {name} is not of {sorted(allowed)}"


def test_vpc_groups_share_no_network_state_or_ci_role(rendered):
    config, parsed = rendered
    assert network_isolation_problems(config, parsed) == []


def test_network_isolation_fails_on_a_broken_tree():
    breaks = [
        lambda p: p["modules/network/main.tf"]["resource"].append(
            {"aws_vpc_peering_connection": {"other": {"vpc_id": "${aws_vpc.this.id}"}}}
        ),
        lambda p: _resource(p, "modules/network/main.tf", "aws_route", "public_internet").update(
            gateway_id="${var.other_gateway_id}"
        ),
        lambda p: _resource(p, "modules/network/main.tf", "aws_route", "public_internet").update(
            transit_gateway_id="tgw-0123456789abcdef0"
        ),
        lambda p: _first(p, "stacks/dev/services.tf", "module")["service"].update(
            security_group_ids=["sg-0123456789abcdef0"]
        ),
        lambda p: _first(p, "stacks/dev/shared.tf", "data")["terraform_remote_state"]["shared"][
            "config"
        ].update(key="production-shared/terraform.tfstate"),
        lambda p: _first(p, "stacks/nonprod-shared/versions.tf", "terraform")["backend"][0][
            "s3"
        ].update(bucket="levels-tfstate-production"),
        lambda p: _first(p, "stacks/nonprod-shared/ci.tf", "module")["ci_role"][
            "upload_buckets"
        ].append("levels-production-deployments"),
    ]
    _each_break_is_noticed(network_isolation_problems, breaks)


def _each_break_is_noticed(check, breaks) -> None:
    """Apply each of `breaks` to its own copy of the reference's parsed tree;
    `check(config, parsed)` must find no problem before, and one after each."""
    config, parsed = _reference()
    assert check(config, parsed) == []
    for number, breaking in enumerate(breaks):
        broken = copy.deepcopy(parsed)
        breaking(broken)
        assert check(config, broken), f"break {number} went unnoticed"


# -- encryption at rest and in transit

SSE_ALGORITHMS = ("aws:kms", "aws:kms:dsse", "AES256")


def _encrypted_ebs(device_blocks: list[dict]) -> bool:
    return bool(device_blocks) and all(
        ebs.get("encrypted") is True
        for device in device_blocks
        for ebs in device.get("ebs", [device])
    )


# What "encrypted at rest" means for each resource type that stores data.
AT_REST = {
    "aws_sqs_queue": lambda r: (
        bool(r.get("kms_master_key_id")) or r.get("sqs_managed_sse_enabled") is True
    ),
    "aws_sns_topic": lambda r: bool(r.get("kms_master_key_id")),
    "aws_cloudwatch_log_group": lambda r: bool(r.get("kms_key_id")),
    "aws_rds_cluster": lambda r: r.get("storage_encrypted") is True and bool(r.get("kms_key_id")),
    "aws_db_instance": lambda r: r.get("storage_encrypted") is True,
    "aws_launch_template": lambda r: _encrypted_ebs(r.get("block_device_mappings", [])),
    "aws_instance": lambda r: (
        _encrypted_ebs(r.get("root_block_device", []))
        and all(d.get("encrypted") is True for d in r.get("ebs_block_device", []))
    ),
    "aws_ebs_volume": lambda r: r.get("encrypted") is True,
    "aws_ssm_parameter": lambda r: r.get("type") == "SecureString" and bool(r.get("key_id")),
    "aws_secretsmanager_secret": lambda r: bool(r.get("kms_key_id")),
    "aws_backup_vault": lambda r: bool(r.get("kms_key_arn")),
    "aws_lambda_function": lambda r: bool(r.get("kms_key_arn")) or not r.get("environment"),
    "aws_kms_key": lambda r: r.get("enable_key_rotation") is True,
    "aws_rds_cluster_instance": lambda r: (
        not r.get("performance_insights_enabled") or bool(r.get("performance_insights_kms_key_id"))
    ),
}
# Types that store data and would need a line in AT_REST before levels-tf may render them.
STORES_DATA = (
    "aws_dynamodb_table",
    "aws_efs_file_system",
    "aws_elasticache_",
    "aws_kinesis_",
    "aws_ecr_repository",
    "aws_opensearch_domain",
    "aws_redshift_",
    "aws_docdb_",
    "aws_neptune_",
    "aws_memorydb_",
    "aws_sfn_state_machine",
    "aws_cloudtrail",
    "aws_ebs_snapshot",
    "aws_glacier_vault",
    "aws_fsx_",
    "aws_msk_",
    "aws_mq_broker",
)


def encryption_at_rest_problems(config, parsed) -> list[str]:
    """Every store of data is encrypted: buckets by their SSE configuration,
    the rest by their own arguments (AT_REST), and every stack's state."""
    problems = []
    for path, body in parsed.items():
        for block in body.get("resource", []):
            for kind, named in block.items():
                for name, arguments in named.items():
                    check = AT_REST.get(kind)
                    if check is not None and not check(arguments):
                        problems.append(f"{path}: {kind}.{name} is not encrypted at rest")
                    if check is None and kind.startswith(STORES_DATA):
                        problems.append(
                            f"{path}: {kind}.{name} stores data: add its check to AT_REST"
                        )
    encrypted = {
        (_folder(path), sse["bucket"])
        for path, _, sse in resources(parsed, "aws_s3_bucket_server_side_encryption_configuration")
        if all(
            default.get("sse_algorithm") in SSE_ALGORITHMS
            for rule in sse.get("rule", [])
            for default in rule.get("apply_server_side_encryption_by_default", [])
        )
        and sse.get("rule")
    }
    for path, name, _ in resources(parsed, "aws_s3_bucket"):
        if (_folder(path), f"${{aws_s3_bucket.{name}.id}}") not in encrypted:
            problems.append(f"{path}: bucket {name} has no server-side encryption")
    for stack, files in stacks_of(config, parsed):
        backend = _backend(files)
        if "bucket" in backend and backend.get("encrypt") is not True:
            problems.append(f"{stack.name}: state is not encrypted")
    return problems


def _documents(parsed, folder: str) -> dict[str, list[dict]]:
    """{"${data.aws_iam_policy_document.<name>.json}": statements} of one module."""
    return {
        f"${{data.aws_iam_policy_document.{name}.json}}": _blocks(document, "statement")
        for path, body in parsed.items()
        if _folder(path) == folder
        for block in body.get("data", [])
        for name, document in block.get("aws_iam_policy_document", {}).items()
    }


def _tls_only(statements: list[dict], bucket: str) -> bool:
    """A Deny of every request without TLS to the bucket and its objects."""
    arn = f"${{aws_s3_bucket.{bucket}.arn}}"
    return any(
        s.get("effect") == "Deny"
        and {arn, f"{arn}/*"} <= set(s.get("resources", []))
        and any(a in ("s3:*", "*") for a in s.get("actions", []))
        and any(
            c.get("test") == "Bool"
            and c.get("variable") == "aws:SecureTransport"
            and c.get("values") == ["false"]
            for c in s.get("condition", [])
        )
        for s in statements
    )


VIEWER_HTTPS = ("redirect-to-https", "https-only")


def encryption_in_transit_problems(config, parsed) -> list[str]:
    """TLS only: every bucket's policy denies plain HTTP; the CDN serves
    viewers HTTPS only and reaches custom origins over HTTPS; every load
    balancer listener is HTTPS with a TLS 1.3 policy, or redirects HTTP to HTTPS."""
    problems = []
    policies = {
        (_folder(path), policy["bucket"]): policy["policy"]
        for path, _, policy in resources(parsed, "aws_s3_bucket_policy")
    }
    for path, name, _ in resources(parsed, "aws_s3_bucket"):
        folder = _folder(path)
        policy = policies.get((folder, f"${{aws_s3_bucket.{name}.id}}"))
        statements = _documents(parsed, folder).get(policy or "", [])
        if not _tls_only(statements, name):
            problems.append(f"{path}: bucket {name} accepts requests without TLS")
    for path, name, distribution in resources(parsed, "aws_cloudfront_distribution"):
        behaviours = _blocks(distribution, "default_cache_behavior") + _blocks(
            distribution, "ordered_cache_behavior"
        )
        for behaviour in behaviours:
            if behaviour.get("viewer_protocol_policy") not in VIEWER_HTTPS:
                problems.append(f"{path}: {name} serves viewers over HTTP")
        for origin in _blocks(distribution, "origin"):
            for custom in origin.get("custom_origin_config", []):
                if custom.get("origin_protocol_policy") != "https-only":
                    problems.append(f"{path}: {name} reaches an origin over HTTP")
    variables = {
        (_folder(path), name): variable
        for path, body in parsed.items()
        for block in body.get("variable", [])
        for name, variable in block.items()
    }
    for path, name, listener in resources(parsed, "aws_lb_listener"):
        if listener.get("protocol") in ("HTTPS", "TLS"):
            policy = listener.get("ssl_policy", "")
            if policy.startswith("${var."):
                policy = variables[(_folder(path), policy[6:-1])].get("default") or ""
            if not policy.startswith(("ELBSecurityPolicy-TLS13-", "ELBSecurityPolicy-FS-1-2")):
                problems.append(f"{path}: listener {name} has TLS policy {policy!r}")
            continue
        actions = _blocks(listener, "default_action")
        redirects = [
            r for a in actions if a.get("type") == "redirect" for r in a.get("redirect", [])
        ]
        if not redirects or any(
            r.get("protocol") != "HTTPS" or r.get("status_code") != "HTTP_301" for r in redirects
        ):
            problems.append(f"{path}: listener {name} serves plain HTTP")
    for stack, files in stacks_of(config, parsed, SHARED):
        for body in files.values():
            for block in body.get("module", []):
                for call_name, call in block.items():
                    policy = call.get("ssl_policy")
                    if policy is not None and not policy.startswith("ELBSecurityPolicy-TLS13-"):
                        problems.append(f"{stack.name}: {call_name} has TLS policy {policy}")
    return problems


def test_every_store_of_data_is_encrypted_at_rest(rendered):
    config, parsed = rendered
    assert encryption_at_rest_problems(config, parsed) == []


def test_encryption_at_rest_fails_on_a_broken_tree():
    _each_break_is_noticed(
        encryption_at_rest_problems,
        [
            lambda p: _resource(p, "modules/topic/main.tf", "aws_sns_topic", "this").pop(
                "kms_master_key_id"
            ),
            lambda p: _resource(
                p, "modules/function/main.tf", "aws_cloudwatch_log_group", "this"
            ).pop("kms_key_id"),
            lambda p: _resource(
                p,
                "modules/bucket/main.tf",
                "aws_s3_bucket_server_side_encryption_configuration",
                "this",
            ).update(bucket="${aws_s3_bucket.other.id}"),
            lambda p: _resource(p, "modules/service/main.tf", "aws_launch_template", "this")[
                "block_device_mappings"
            ][0]["ebs"][0].update(encrypted=False),
            lambda p: p["modules/bucket/main.tf"]["resource"].append(
                {"aws_dynamodb_table": {"t": {"name": "t"}}}
            ),
            lambda p: _first(p, "stacks/production/versions.tf", "terraform")["backend"][0][
                "s3"
            ].pop("encrypt"),
        ],
    )


def test_every_connection_to_data_is_tls_only(rendered):
    config, parsed = rendered
    assert encryption_in_transit_problems(config, parsed) == []


def _accept_plain_http_to_the_log_bucket(parsed) -> None:
    for block in parsed["modules/log-bucket/main.tf"]["data"]:
        for document in block.get("aws_iam_policy_document", {}).values():
            for statement in document.get("statement", []):
                if statement.get("effect") == "Deny":
                    statement["condition"][0]["values"] = ["true"]


def test_encryption_in_transit_fails_on_a_broken_tree():
    _each_break_is_noticed(
        encryption_in_transit_problems,
        [
            _accept_plain_http_to_the_log_bucket,
            lambda p: _resource(p, "modules/cdn/main.tf", "aws_cloudfront_distribution", "this")[
                "default_cache_behavior"
            ][0].update(viewer_protocol_policy="allow-all"),
            lambda p: _resource(p, "modules/load-balancer/main.tf", "aws_lb_listener", "http")[
                "default_action"
            ][0].update(type="forward"),
            lambda p: _resource(
                p, "modules/load-balancer/main.tf", "aws_lb_listener", "https"
            ).update(ssl_policy="ELBSecurityPolicy-2016-08"),
        ],
    )


# -- IMDSv2, policies and roles


def imds_problems(config, parsed) -> list[str]:
    """Every launch template and instance requires IMDSv2 tokens, with a hop
    limit of 1 (no container on the host reaches the instance's credentials)."""
    problems = []
    for kind in ("aws_launch_template", "aws_instance"):
        for path, name, machine in resources(parsed, kind):
            options = machine.get("metadata_options", [])
            if len(options) != 1 or options[0].get("http_tokens") != "required":
                problems.append(f"{path}: {kind}.{name} does not require IMDSv2")
            elif options[0].get("http_put_response_hop_limit") != 1:
                problems.append(f"{path}: {kind}.{name} lets IMDS answers travel past the host")
    return problems


def test_every_machine_requires_imdsv2(rendered):
    config, parsed = rendered
    assert imds_problems(config, parsed) == []
    assert list(resources(parsed, "aws_launch_template"))


def test_imdsv2_fails_on_a_broken_tree():
    _each_break_is_noticed(
        imds_problems,
        [
            lambda p: _resource(p, "modules/bastion/main.tf", "aws_launch_template", "this")[
                "metadata_options"
            ][0].update(http_tokens="optional"),
            lambda p: _resource(p, "modules/service/main.tf", "aws_launch_template", "this").pop(
                "metadata_options"
            ),
            lambda p: p["modules/bastion/main.tf"]["resource"].append(
                {"aws_instance": {"extra": {"ami": "ami-0123456789abcdef0"}}}
            ),
        ],
    )


ACTION_KEYS = ("actions", "Action", "not_actions", "NotAction")
RESOURCE_KEYS = ("resources", "Resource", "not_resources", "NotResource")


def policy_statements(parsed):
    """(where, in_key_policy, statement) of every policy statement levels-tf
    writes: in policy documents (static and dynamic), in local values that
    hold statements (actions and resources, as the roles' grants do), and in
    `jsonencode` policies. Endpoint, bucket, queue and topic policies alike."""

    def walk(value, where: str, key_policy: bool):
        encoded = _jsonencoded(value)
        if encoded is not None:
            yield from walk(encoded, where, key_policy)
        elif isinstance(value, dict):
            if any(key in value for key in ACTION_KEYS):
                yield where, key_policy, value
            for item in value.values():
                yield from walk(item, where, key_policy)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item, where, key_policy)

    for path, body in parsed.items():
        for block_kind in ("resource", "data", "locals"):
            for block in body.get(block_kind, []):
                for kind, named in block.items():
                    key_policy = kind == "aws_kms_key"
                    yield from walk(named, f"{path}: {block_kind} {kind}", key_policy)


def _wildcard_action(action: str) -> bool:
    return action in ("*", "*:*") or re.fullmatch(r"[a-z0-9-]+:\*", action) is not None


def wildcard_problems(config, parsed) -> list[str]:
    """No statement allows a whole service's actions (`*`, `s3:*`, NotAction)
    on every resource (`*`, NotResource). In a key policy `Resource = "*"`
    means that one key (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html),
    so there the actions must merely be KMS's own. Deny statements narrow,
    so they are not counted."""
    problems = []
    for where, key_policy, statement in policy_statements(parsed):
        if str(statement.get("effect", statement.get("Effect", "Allow"))) == "Deny":
            continue
        actions = [a for key in ("actions", "Action") for a in _strings(statement.get(key))]
        wide_action = any(map(_wildcard_action, actions)) or any(
            key in statement for key in ("not_actions", "NotAction")
        )
        resources_ = [r for key in ("resources", "Resource") for r in _strings(statement.get(key))]
        wide_resource = "*" in resources_ or any(
            key in statement for key in ("not_resources", "NotResource")
        )
        if key_policy:
            if not all(a.startswith("kms:") for a in actions) or not actions:
                problems.append(f"{where}: a key policy grants {actions}")
        elif wide_action and wide_resource:
            problems.append(f"{where}: {actions} on {resources_}")
    return problems


# The AWS managed policies levels-tf attaches, each the narrowest AWS offers
# for its job. Each one's document, by its name without the path:
# https://docs.aws.amazon.com/aws-managed-policy/latest/reference/<name>.html
MANAGED_POLICIES = {
    # Enhanced Monitoring's agent writes the cluster's OS metrics to CloudWatch Logs.
    "service-role/AmazonRDSEnhancedMonitoringRole",
    # AWS Backup's default role for backing up (not restoring) the cluster.
    "service-role/AWSBackupServiceRolePolicyForBackup",
    # A function in a VPC: its network interfaces and its logs.
    "service-role/AWSLambdaVPCAccessExecutionRole",
    # Trace segments to X-Ray (tracing_config Active).
    "AWSXRayDaemonWriteAccess",
}
ATTACHMENTS = (
    "aws_iam_role_policy_attachment",
    "aws_iam_policy_attachment",
    "aws_iam_group_policy_attachment",
    "aws_iam_user_policy_attachment",
)


def managed_policy_problems(config, parsed) -> list[str]:
    """Only the AWS managed policies of MANAGED_POLICIES are attached; a
    policy of our own is attached by reference to its resource."""
    problems = []
    arns: list[tuple[str, str, str]] = []
    for kind in ATTACHMENTS:
        for path, name, attachment in resources(parsed, kind):
            arn = attachment.get("policy_arn", "")
            keys = _strings(attachment.get("for_each", "")) if "${each.key}" in arn else [""]
            arns.extend((path, name, arn.replace("${each.key}", key)) for key in keys)
    for path, name, role in resources(parsed, "aws_iam_role"):
        arns.extend((path, name, arn) for arn in _strings(role.get("managed_policy_arns", [])))
    for path, name, arn in arns:
        managed = re.fullmatch(
            r"arn:[^:]+:iam::aws:policy/(.+)", re.sub(r"\$\{[^}]*partition[^}]*\}", "aws", arn)
        )
        if managed:
            if managed[1] not in MANAGED_POLICIES:
                problems.append(f"{path}: {name} attaches AWS managed {managed[1]}")
        elif not re.fullmatch(r"\$\{aws_iam_policy\.[\w-]+\.arn\}", arn):
            problems.append(f"{path}: {name} attaches {arn}, which the code does not show")
    return problems


def test_no_policy_allows_every_action_on_every_resource(rendered):
    config, parsed = rendered
    assert wildcard_problems(config, parsed) == []
    assert managed_policy_problems(config, parsed) == []
    assert sum(1 for _ in policy_statements(parsed)) > 20  # the walk reaches the policies


def test_wildcard_policies_fail_on_a_broken_tree():
    def both(config, parsed):
        return wildcard_problems(config, parsed) + managed_policy_problems(config, parsed)

    _each_break_is_noticed(
        both,
        [
            lambda p: _documents(p, "modules/function")[
                "${data.aws_iam_policy_document.this.json}"
            ][0].update(actions=["s3:*"], resources=["*"]),
            lambda p: _first(p, "modules/service/iam.tf", "locals")["statements"][  # a local grant
                "ReadBuckets"
            ].update(actions=["*"], resources='${var.ok ? ["*"] : []}'),
            _grant_everything_in_a_key_policy,
            lambda p: _resource(
                p, "modules/database/main.tf", "aws_iam_role_policy_attachment", "monitoring"
            ).update(
                policy_arn="arn:${data.aws_partition.current.partition}:iam::aws:policy/AdministratorAccess"
            ),
            lambda p: _resource(
                p, "modules/function/main.tf", "aws_iam_role_policy_attachment", "managed"
            ).update(for_each='${toset(["AmazonS3FullAccess"])}'),
        ],
    )


def _grant_everything_in_a_key_policy(parsed) -> None:
    key = _resource(parsed, "modules/data-key/main.tf", "aws_kms_key", "this")
    key["policy"] = key["policy"].replace('Action = "kms:*"', 'Action = "*"')
    assert 'Action = "*"' in key["policy"]


def role_scope_problems(config, parsed) -> list[str]:
    """Each environment's roles (fleets, functions, parameters, buckets'
    readers and writers) name only that environment's buckets, queues,
    topics and parameter paths, and use only its own data key; each group's
    CI role only its group's (see network_isolation_problems)."""
    problems = []
    for stack, files in stacks_of(config, parsed):
        if stack.environment is None:
            continue
        for path, body in files.items():
            for block in body.get("locals", []) + body.get("module", []):
                problems.extend(_foreign_names(config, stack.group, block, path, stack.environment))
            for block in body.get("locals", []):
                for service, spec in block.get("services", {}).items():
                    keys = spec.get("access", {}).get("kms_keys")
                    if keys != ["${module.data_key.arn}"]:
                        problems.append(f"{path}: {service} uses the keys {keys}")
    return problems


def test_every_role_names_only_its_own_environments_resources(rendered):
    config, parsed = rendered
    assert role_scope_problems(config, parsed) == []


def _qa_services(parsed) -> dict:
    return _first(parsed, "stacks/qa/services.tf", "locals")["services"]


def _qa_function_backs_up_to_test(parsed) -> None:
    for block in parsed["stacks/qa/data.tf"]["locals"]:
        if "functions" in block:
            block["functions"]["image-variants"]["backup_bucket"] = "levels-test-backup"


def test_role_scope_fails_on_a_broken_tree():
    _each_break_is_noticed(
        role_scope_problems,
        [
            lambda p: _qa_services(p)["api"]["access"]["read_buckets"].append("levels-dev-config"),
            lambda p: _qa_services(p)["api"]["access"]["parameter_prefixes"].append(
                "/levels/production/app"
            ),
            lambda p: _qa_services(p)["api"]["access"].update(kms_keys=["${var.any_key}"]),
            _qa_function_backs_up_to_test,
        ],
    )
