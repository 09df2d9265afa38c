"""The typed model and the cross-field rules, through validate_document and load_config.

Each test builds a small infra.yaml from MINIMAL (a valid configuration),
changes a few values, and checks the exact problems: line, dotted path, message.
"""

from __future__ import annotations

import base64
import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from levels_tf import loader
from levels_tf.errors import ConfigError, Problem
from levels_tf.model import Scaling
from levels_tf.validation import load_config, validate_document

from .strategies import KEY

REFERENCE = Path(__file__).resolve().parent.parent / "infra.yaml"

MINIMAL: dict[str, Any] = {  # a YAML document: any nesting of mappings, lists and scalars
    "project": "shop",
    "region": "us-east-1",
    "vpc_groups": {
        "prod": {"cidr": "10.0.0.0/16", "azs": 2, "environments": ["production"]},
        "nonprod": {"cidr": "10.1.0.0/16", "azs": 2, "environments": ["dev", "test"]},
    },
    "images": {"app": {"base": "ubuntu-24.04"}},
    "services": {
        "api": {"image": "app", "port": 8080, "scaling": {"min": 1, "max": 4}},
    },
    "dns": {"domain": "shop.example", "zone_id": "Z0SHOPEXAMPLE"},
    "ci": {
        "github": {
            "repository": "acme/shop",
            "subjects": {"prod": {"environment": "production"}, "nonprod": {"branches": ["main"]}},
        }
    },
}

DELETE = object()


def make(changes: dict | None = None, *, extra: str = "") -> str:
    """MINIMAL as YAML text, with `changes` ({"dotted.path": value}) applied and `extra` appended."""
    data = copy.deepcopy(MINIMAL)
    for dotted_path, value in (changes or {}).items():
        *parents, last = dotted_path.split(".")
        node: dict[str, Any] = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False) + extra


def validate(text: str):
    return validate_document(loader.parse(text, "infra.yaml"), Path("infra.yaml"))


def problems(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        validate(text)
    return info.value.problems


def only(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, "\n".join(p.format() for p in found)
    return found[0]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line containing `needle` (a trailing '$' anchors it at the end)."""
    if needle.endswith("$"):
        hits = [n for n, line in enumerate(text.splitlines(), 1) if line.endswith(needle[:-1])]
    else:
        hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} not in the text"
    return hits[nth - 1]


def column_of(text: str, needle: str) -> int:
    return text.splitlines()[line_of(text, needle) - 1].index(needle) + 1


# --- valid input ---------------------------------------------------------------


def test_minimal_config_is_valid():
    config = validate(make())
    assert config.infra.project == "shop"
    assert config.infra.all_environments == ["production", "dev", "test"]
    assert set(config.environments) == {"production", "dev", "test"}
    assert config.environments["dev"].services["api"].scaling.max == 4


def test_reference_config_and_its_overrides():
    config = load_config(REFERENCE)
    production = config.environments["production"]
    assert production.database is not None and config.environments["qa"].database is not None
    assert production.services["api"].scaling.min == 4
    assert production.services["api"].scaling.max == 20
    assert production.database is not None
    assert production.database.replicas == 2
    assert production.database.backup_retention_days == 30
    assert config.environments["dev"].services["api"].scaling.max == 2
    # untouched environments keep the defaults
    assert config.environments["qa"].services["api"].scaling.max == 8
    qa_database = config.environments["qa"].database
    assert qa_database is not None and qa_database.replicas == 1
    assert config.infra.services["api"].scaling.max == 8


# --- unknown keys --------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, extra, needle, path, hint",
    [
        ({"services.api.prot": 9000}, "", "prot:", "services.api.prot", "did you mean 'port'?"),
        ({}, "servics: {}\n", "servics:", "servics", "did you mean 'services'?"),
        (
            {"vpc_groups.prod.envirnoments": ["x"]},
            "",
            "envirnoments:",
            "vpc_groups.prod.envirnoments",
            "did you mean 'environments'?",
        ),
        (
            {"services.api.scaling.maxx": 3},
            "",
            "maxx:",
            "services.api.scaling.maxx",
            "did you mean 'max'?",
        ),
        (
            {},
            "state: {backend: s3, bucket_prefx: x}\n",
            "state:",
            "state.bucket_prefx",
            "did you mean 'bucket_prefix'?",
        ),
    ],
)
def test_unknown_key_did_you_mean(changes, extra, needle, path, hint):
    text = make(changes, extra=extra)
    problem = only(text)
    assert problem.path == path
    assert problem.line == line_of(text, needle)
    assert problem.message == f"unknown key; {hint}"


def test_unknown_key_key_column():
    text = make({"services.api.prot": 9000})
    problem = only(text)
    assert problem.column == column_of(text, "prot:")


def test_unknown_key_without_close_match_lists_the_allowed():
    text = make(extra="zzzzz: 1\n")
    problem = only(text)
    assert (problem.line, problem.path) == (line_of(text, "zzzzz"), "zzzzz")
    assert problem.message.startswith(
        "unknown key; expected one of: bastion, bucket_prefix, buckets"
    )


def test_unknown_section_in_a_dotted_override():
    text = make(extra="environments:\n  dev:\n    servics.api.port: 1\n")
    problem = only(text)
    assert problem.path == "environments.dev.servics"
    assert problem.line == line_of(text, "servics.api.port")
    assert problem.message == "unknown key; did you mean 'services'?"


def test_missing_required_key():
    text = make({"services.api.image": DELETE})
    problem = only(text)
    assert problem.path == "services.api.image"
    # points at the key of the service that lacks it
    assert problem.line == line_of(text, "  api:")
    assert problem.message == "required key is missing"


# --- strict types --------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, needle, path, message",
    [
        (
            {"services.api.port": "8080"},
            "port:",
            "services.api.port",
            "expected a whole number, found the string '8080'",
        ),
        (
            {"vpc_groups.prod.azs": "2"},
            "azs: '2'",
            "vpc_groups.prod.azs",
            "expected a whole number, found the string '2'",
        ),
        (
            {"services.api.port": True},
            "port:",
            "services.api.port",
            "expected a whole number, found the boolean true",
        ),
        (
            {"services.api.port": 80.0},
            "port:",
            "services.api.port",
            "expected a whole number, found the number 80.0",
        ),
        (
            {"vpc_groups.prod.production": "true"},
            "production: 'true'",
            "vpc_groups.prod.production",
            "expected true or false, found the string 'true'",
        ),
        (
            {"project": 12},
            "project:",
            "project",
            "expected a string, found the number 12; quote it",
        ),
        (
            {"vpc_groups.prod.environments": "production"},
            "environments: production",
            "vpc_groups.prod.environments",
            "expected a list, found the string 'production'",
        ),
        ({"images": ["app"]}, "- app", "images", "expected a mapping, found a list"),
    ],
)
def test_strict_types(changes, needle, path, message):
    text = make(changes)
    problem = only(text)
    assert problem.path == path
    assert problem.line == line_of(text, needle)
    assert problem.message == message


def test_quoted_number_points_at_the_value():
    text = make({"services.api.port": "8080"})
    problem = only(text)
    assert "'8080'" in text
    assert problem.column == column_of(text, "'8080'")


def test_invalid_name_key():
    text = make({"images.App": {"base": "debian-12"}})
    problem = only(text)
    assert problem.path == "images.App"
    assert problem.line == line_of(text, "App:")
    assert problem.message.startswith("invalid key: 'App': use 2 to 24 lowercase letters")


def test_image_needs_exactly_one_source():
    text = make({"images.app.source_ami": "ami-0123456789abcdef0"})
    problem = only(text)
    assert problem.path == "images.app"
    assert problem.line == line_of(text, "base: ubuntu-24.04")
    assert problem.message == "give exactly one of base or source_ami"


# --- CIDRs and subnets ---------------------------------------------------------


@pytest.mark.parametrize(
    "cidr, fragment",
    [
        ("10.1.0.1/16", "has host bits set"),
        ("10.1.0.0/33", "not a valid netmask"),
        ("banana", "not an IPv4 CIDR block"),
        ("10.0.0.0/8", "a VPC CIDR must be between /16 and /24, not /8"),
        ("10.1.0.0/25", "not /25"),
    ],
)
def test_invalid_vpc_cidr(cidr, fragment):
    text = make({"vpc_groups.nonprod.cidr": cidr})
    problem = only(text)
    assert problem.path == "vpc_groups.nonprod.cidr"
    assert problem.line == line_of(text, f"cidr: {cidr}")
    assert fragment in problem.message


def _key(*fields: bytes) -> str:
    """The base64 blob of length-prefixed `fields`, as in a .pub file."""
    return base64.b64encode(b"".join(len(f).to_bytes(4, "big") + f for f in fields)).decode()


@pytest.mark.parametrize(
    "key, words",
    [
        ("ssh-ed25519 garbage", "what follows ssh-ed25519 is not whole base64"),
        (KEY[:-7], "what follows ssh-ed25519 is not whole base64"),  # cut inside the base64
        (KEY[:-8], "the key is cut short"),  # cut at a base64 boundary
        ("ssh-ed25519 " + _key(b"ssh-ed25519", b"k" * 32)[:-8], "the key is cut short"),
        (
            "ssh-ed25519 " + _key(b"ssh-ed25519", b"k" * 24),
            "the Ed25519 key inside is not 32 bytes",
        ),
        ("ssh-rsa " + _key(b"ssh-ed25519", b"k" * 32), "the key inside is not ssh-rsa"),
        ("ssh-ed25519 " + _key(b"ssh-ed25519", b"k" * 30)[:-4], "the key is cut short"),
    ],
)
def test_a_key_that_is_not_a_whole_public_key_is_refused_at_its_line(key, words):
    """sshd would skip such a line of authorized_keys, and nobody could log in."""
    text = make({"bastion": {"allowed_cidrs": ["203.0.113.0/24"], "users": {"alice": key}}})
    problem = only(text)
    assert problem.path == "bastion.users.alice"
    assert problem.line == line_of(text, "alice:")
    assert problem.message.startswith("not an OpenSSH public key: " + words), problem.message


def test_keys_ssh_keygen_makes_are_accepted(tmp_path):
    users = {}
    for kind in ("ed25519", "rsa", "ecdsa"):
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                kind,
                "-N",
                "",
                "-C",
                f"{kind}@laptop",
                "-f",
                str(tmp_path / kind),
            ],
            check=True,
        )
        users[kind] = (tmp_path / f"{kind}.pub").read_text().strip()
    config = validate(make({"bastion": {"allowed_cidrs": ["203.0.113.0/24"], "users": users}}))
    assert config.infra.bastion.users == users


def test_invalid_bastion_cidr_in_a_list():
    text = make(
        {
            "bastion": {
                "allowed_cidrs": ["203.0.113.0/24", "203.0.113.7/24"],
                "users": {"alice": KEY},
            }
        }
    )
    problem = only(text)
    assert problem.path == "bastion.allowed_cidrs[1]"
    assert problem.line == line_of(text, "203.0.113.7/24")


def test_overlapping_vpc_cidrs():
    text = make({"vpc_groups.nonprod.cidr": "10.0.128.0/17"})
    problem = only(text)
    assert problem.path == "vpc_groups.nonprod.cidr"
    assert problem.line == line_of(text, "10.0.128.0/17")
    assert problem.message == "10.0.128.0/17 overlaps 10.0.0.0/16 of group 'prod'"


def test_same_cidr_twice():
    text = make({"vpc_groups.nonprod.cidr": "10.0.0.0/16"})
    problem = only(text)
    assert problem.line == line_of(text, "cidr: 10.0.0.0/16", nth=2)


def test_adjacent_cidrs_do_not_overlap():
    validate(
        make({"vpc_groups.prod.cidr": "10.0.0.0/17", "vpc_groups.nonprod.cidr": "10.0.128.0/17"})
    )


def test_default_subnet_sizes_do_not_fit_a_slash_24():
    text = make({"vpc_groups.nonprod.cidr": "10.1.0.0/24"})
    problem = only(text)
    assert problem.path == "vpc_groups.nonprod.subnets"
    # no `subnets:` is written: the group itself is blamed (its first line)
    assert problem.line == line_of(text, "cidr: 10.1.0.0/24")
    assert (
        problem.message
        == "subnet plan does not fit: public subnets would be /29, smaller than AWS's /28; "
        "give the VPC group a larger `cidr` (a /16 fits every tier)"
    )


def test_default_subnet_sizes_fit_a_slash_23():
    validate(make({"vpc_groups.nonprod.cidr": "10.1.0.0/23"}))


def test_explicit_subnet_sizes_too_large():
    text = make({"vpc_groups.nonprod.subnets": {"private": 1}})
    problem = only(text)
    assert problem.path == "vpc_groups.nonprod.subnets"
    assert problem.line == line_of(text, "private: 1")
    assert "use a larger CIDR or more newbits" in problem.message


# --- region and zones ------------------------------------------------------------


@pytest.mark.parametrize(
    "region, azs, message",
    [
        ("us-east-1", 1, "1 zones: must be between 2 and 6 (us-east-1 has 6)"),
        ("us-east-1", 7, "7 zones: must be between 2 and 6 (us-east-1 has 6)"),
        ("us-west-1", 3, "3 zones: must be between 2 and 2 (us-west-1 has 2)"),
        ("eu-west-1", 4, "4 zones: must be between 2 and 3 (eu-west-1 has 3)"),
    ],
)
def test_az_count(region, azs, message):
    text = make({"region": region, "vpc_groups.nonprod.azs": azs})
    problem = only(text)
    assert problem.path == "vpc_groups.nonprod.azs"
    assert problem.line == line_of(text, f"azs: {azs}")
    assert problem.message == message


def test_az_count_at_the_limits_is_fine():
    validate(make({"region": "us-east-1", "vpc_groups.nonprod.azs": 6}))
    validate(make({"region": "us-west-1", "vpc_groups.nonprod.azs": 2}))


def test_unknown_region():
    text = make({"region": "us-east-9", "vpc_groups.nonprod.azs": 99})
    problem = only(text)  # zones are not checked against an unknown region
    assert (problem.path, problem.line) == ("region", line_of(text, "region:"))
    assert problem.message.startswith("unknown region 'us-east-9'; known: ap-northeast-1,")


# --- environments -------------------------------------------------------------------


def test_environment_listed_twice_in_its_group():
    text = make({"vpc_groups.nonprod.environments": ["dev", "test", "dev"]})
    problem = only(text)
    assert problem.path == "vpc_groups.nonprod.environments[2]"
    assert problem.line == line_of(text, "- dev", nth=2)
    assert problem.message == "'dev' is already item 0"


def test_environment_in_two_groups():
    text = make({"vpc_groups.nonprod.environments": ["dev", "production"]})
    problem = only(text)
    assert problem.path == "vpc_groups.nonprod.environments[1]"
    assert problem.line == line_of(text, "- production", nth=2)
    assert problem.message == "environment 'production' is already in group 'prod'"


def test_environment_named_like_a_shared_stack():
    text = make({"vpc_groups.nonprod.environments": ["dev", "prod-shared"]})
    problem = only(text)
    assert problem.path == "vpc_groups.nonprod.environments[1]"
    assert problem.message == "'prod-shared' clashes with the shared stack of that name"


def test_override_for_an_unknown_environment():
    text = make(extra="environments:\n  prodution:\n    services.api.port: 80\n")
    problem = only(text)
    assert problem.path == "environments.prodution"
    assert (problem.line, problem.column) == (line_of(text, "prodution:"), 3)
    assert problem.message == "unknown environment 'prodution'; did you mean 'production'?"


# --- references -----------------------------------------------------------------------

REFERENCES = """\
buckets:
  uploads: {}
queues:
  jobs: {}
topics:
  events:
    subscribers: [queue.jobs, queue.jbos]
functions:
  thumbs: {on_upload_to: uplods, sizes: [100]}
secrets:
  prefixes:
    app: {read: [api, apii, ci], write: [robot]}
cdn:
  aliases: {prod: [www.example.com]}
  certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
"""


def test_dangling_references_are_all_reported():
    text = make(
        {
            "services.api.image": "ap",
            "services.api.consumes": ["jobs", "job"],
            "services.api.publishes": ["event"],
            "services.api.buckets": {"read": ["uploads", "uploadz"], "write": ["nowhere"]},
        },
        extra=REFERENCES,
    )
    found = {p.path: p for p in problems(text)}
    expected = {
        "services.api.image": ("image: ap", "unknown image 'ap'; did you mean 'app'?"),
        "services.api.consumes[1]": ("- job$", "unknown queue 'job'; did you mean 'jobs'?"),
        "services.api.publishes[0]": ("- event", "unknown topic 'event'; did you mean 'events'?"),
        "services.api.buckets.read[1]": (
            "- uploadz",
            "unknown bucket 'uploadz'; did you mean 'uploads'?",
        ),
        "services.api.buckets.write[0]": (
            "- nowhere",
            "unknown bucket 'nowhere'; defined: uploads",
        ),
        "topics.events.subscribers[1]": (
            "queue.jbos",
            "unknown queue 'jbos'; did you mean 'jobs'?",
        ),
        "functions.thumbs.on_upload_to": (
            "uplods",
            "unknown bucket 'uplods'; did you mean 'uploads'?",
        ),
        "secrets.prefixes.app.read[1]": (
            "apii",
            "unknown service or principal 'apii'; did you mean 'api'?",
        ),
        "secrets.prefixes.app.write[0]": (
            "robot",
            "unknown service or principal 'robot'; defined: api, ci, developers",
        ),
        "cdn.aliases.prod": (
            "aliases: {prod:",
            "unknown environment 'prod'; defined: dev, production, test",
        ),
    }
    assert set(found) == set(expected)
    for path, (needle, message) in expected.items():
        assert (found[path].line, found[path].message) == (line_of(text, needle), message), path
    # references on one line get their own columns
    assert found["secrets.prefixes.app.read[1]"].column == column_of(text, "apii")
    assert found["topics.events.subscribers[1]"].column == column_of(text, "queue.jbos")


def test_reference_with_nothing_defined():
    text = make({"services.api.consumes": ["jobs"]})
    problem = only(text)
    assert problem.message == "unknown queue 'jobs'; none is defined"


def test_service_reference_errors_that_need_a_port():
    text = make(
        {
            "services.api.port": DELETE,
            "services.api.routes": ["/x"],
            "services.api.scaling.requests_per_target": 10,
        }
    )
    found = {p.path: p for p in problems(text)}
    assert set(found) == {"services.api.routes", "services.api.scaling.requests_per_target"}
    # a block list: its value starts on the line after the key
    assert found["services.api.routes"].line == line_of(text, "- /x")
    assert found["services.api.scaling.requests_per_target"].line == line_of(
        text, "requests_per_target"
    )


def test_reference_introduced_by_an_override_points_at_the_override():
    text = make(extra="environments:\n  dev:\n    services.api.image: nope\n")
    problem = only(text)
    assert problem.path == "services.api.image"
    assert problem.line == line_of(text, "services.api.image: nope")


# --- scaling ----------------------------------------------------------------------------


def test_scaling_min_above_max():
    text = make({"services.api.scaling": {"min": 5, "max": 4}})
    problem = only(text)
    assert (problem.path, problem.line) == ("services.api.scaling.min", line_of(text, "min: 5"))
    assert problem.message == "min 5 is above max 4"


def test_scaling_desired_outside():
    text = make({"services.api.scaling": {"min": 1, "max": 4, "desired": 5}})
    problem = only(text)
    assert (problem.path, problem.line) == (
        "services.api.scaling.desired",
        line_of(text, "desired: 5"),
    )
    assert problem.message == "desired 5 is outside min 1 .. max 4"


def test_scaling_min_equal_desired_equal_max_is_fine():
    validate(make({"services.api.scaling": {"min": 3, "max": 3, "desired": 3}}))


OVERRIDE_FORMS = {
    "dotted": "environments:\n  production:\n    services.api.scaling: {min: 2, max: 9, desired: 10}\n",
    "nested": "environments:\n  production:\n    services:\n      api:\n        scaling: {min: 2, max: 9, desired: 10}\n",
    "half": "environments:\n  production:\n    services.api:\n      scaling: {min: 2, max: 9, desired: 10}\n",
}


@pytest.mark.parametrize("form", sorted(OVERRIDE_FORMS))
def test_scaling_error_in_an_override_points_at_the_override(form):
    text = make(extra=OVERRIDE_FORMS[form])
    problem = only(text)
    assert problem.path == "services.api.scaling.desired"
    assert problem.line == line_of(text, "desired: 10")
    assert problem.column == column_of(text, "10}")
    assert problem.message == "desired 10 is outside min 2 .. max 9"


def test_override_lowering_max_below_the_default_min_points_at_the_override():
    text = make(
        {"services.api.scaling": {"min": 3, "max": 8}},
        extra="environments:\n  dev:\n    services.api.scaling: {max: 2}\n",
    )
    problem = only(text)
    assert problem.path == "services.api.scaling.max"
    assert problem.line == line_of(text, "{max: 2}")
    assert problem.message == "min 3 is above max 2"


def test_override_raising_min_above_the_default_desired_points_at_the_override():
    text = make(
        {"services.api.scaling": {"min": 1, "max": 8, "desired": 2}},
        extra="environments:\n  test:\n    services.api.scaling.min: 3\n",
    )
    problem = only(text)
    assert problem.path == "services.api.scaling.min"
    assert problem.line == line_of(text, "scaling.min: 3")
    assert problem.message == "desired 2 is outside min 3 .. max 8"


def test_schema_error_in_an_override_points_at_the_override():
    text = make(extra="environments:\n  dev:\n    services.api.scaling: {min: '2'}\n")
    problem = only(text)
    assert problem.path == "services.api.scaling.min"
    assert problem.line == line_of(text, "{min: '2'}")
    assert problem.message == "expected a whole number, found the string '2'"


def test_dotted_and_nested_overrides_give_the_same_result():
    configs = {
        form: validate(make(extra=text.replace("desired: 10", "desired: 3")))
        for form, text in OVERRIDE_FORMS.items()
    }
    production = {form: config.environments["production"] for form, config in configs.items()}
    assert production["dotted"] == production["nested"] == production["half"]
    assert production["dotted"].services["api"].scaling == Scaling(min=2, max=9, desired=3)
    # other environments are untouched
    assert configs["dotted"].environments["dev"].services["api"].scaling.max == 4


def test_override_merges_key_by_key_and_lists_replace():
    text = make(
        {
            "services.api.routes": ["/a", "/b"],
            "services.api.scaling": {"min": 1, "max": 4, "cpu_target": 50},
        },
        extra="environments:\n  dev:\n    services.api.scaling.max: 6\n    services.api.routes: [/c]\n",
    )
    api = validate(text).environments["dev"].services["api"]
    assert (api.scaling.min, api.scaling.max, api.scaling.cpu_target) == (1, 6, 50)
    assert api.routes == ["/c"]


def test_mixed_override_forms_merge_and_validate_twice():
    text = make(
        {"database": {}},
        extra="environments:\n  production:\n    database: {replicas: 2}\n"
        "    database.backup_retention_days: 30\n",
    )
    document = loader.parse(text, "infra.yaml")
    for _ in range(2):  # validating must not change the document
        database = (
            validate_document(document, Path("infra.yaml")).environments["production"].database
        )
        assert database is not None
        assert (database.replicas, database.backup_retention_days) == (2, 30)


@pytest.mark.parametrize(
    "override",
    [
        "    database.replicas: 2\n    database: {replicas: 3}\n",
        "    database: {replicas: 3}\n    database.replicas: 2\n",
        "    database: 5\n    database.replicas: 2\n",
    ],
)
def test_override_writing_the_same_value_twice(override):
    text = make({"database": {}}, extra="environments:\n  production:\n" + override)
    problem = only(text)
    assert problem.path.startswith("environments.production.database")
    assert problem.line == line_of(text, "database", nth=3)
    assert problem.message == "overrides the same value twice"


# --- the shared database -------------------------------------------------------


@pytest.mark.parametrize(
    "override",
    ["    database.replicas: 0\n", "    database:\n      replicas: 0\n"],
)
def test_database_override_refused_in_a_shared_group(override):
    text = make({"database": {}}, extra="environments:\n  dev:\n" + override)
    problem = only(text)
    assert problem.path == "environments.dev.database"
    assert (problem.line, problem.column) == (line_of(text, "    database"), 5)
    assert (
        problem.message == "the database is shared by dev, test; it cannot differ per environment"
    )


def test_database_override_allowed_in_a_group_of_one():
    text = make({"database": {}}, extra="environments:\n  production:\n    database.replicas: 0\n")
    config = validate(text)
    assert config.environments["production"].database.replicas == 0
    assert config.environments["dev"].database.replicas == 1


# --- bucket names -------------------------------------------------------------------


@pytest.mark.parametrize("prefix_key", ["project", "bucket_prefix"])
def test_asset_bucket_name_over_63_characters(prefix_key):
    prefix = "p" * 24  # the project is the default bucket prefix
    env = "e" * 20
    text = make(
        {prefix_key: prefix, "vpc_groups.prod.environments": [env], "buckets": {"b" * 18: {}}}
    )
    problem = only(text)
    assert problem.path == "buckets." + "b" * 18
    assert problem.line == line_of(text, "b" * 18)
    name = f"{prefix}-{env}-{'b' * 18}"
    assert len(name) == 64
    assert (
        problem.message
        == f"bucket '{name}' for environment '{env}': 64 characters; S3 bucket names have 3 to 63"
    )


def test_asset_bucket_name_of_63_characters_is_fine():
    text = make(
        {
            "bucket_prefix": "p" * 24,
            "vpc_groups.prod.environments": ["e" * 20],
            "buckets": {"b" * 17: {}},
        }
    )
    validate(text)


def test_state_bucket_names_over_63_characters():
    prefix = "s" * 56  # 56 + "-prod" = 61 fits, 56 + "-nonprod" = 64 does not
    text = make({"state": {"bucket_prefix": prefix}})
    problem = only(text)
    assert (problem.path, problem.line) == ("state.bucket_prefix", line_of(text, prefix))
    assert (
        problem.message
        == "state bucket for group 'nonprod': 64 characters; S3 bucket names have 3 to 63"
    )


def test_state_bucket_names_are_not_checked_for_local_state():
    validate(make({"state": {"backend": "local", "bucket_prefix": "s" * 70}}))


def test_reserved_bucket_prefix_blames_the_project_when_no_bucket_prefix_is_set():
    text = make({"project": "xn--shop"})
    found = problems(text)
    assert found
    assert {p.path for p in found} == {"project"}
    assert {p.line for p in found} == {line_of(text, "project: xn--shop")}
    assert (
        "bucket 'xn--shop-dev-logs' for environment 'dev': S3 reserves that prefix or suffix"
        in {p.message for p in found}
    )


def test_reserved_bucket_prefix_blames_bucket_prefix_when_set():
    text = make({"bucket_prefix": "xn--assets"})
    found = problems(text)
    assert {p.path for p in found} == {"bucket_prefix"}
    assert {p.line for p in found} == {line_of(text, "bucket_prefix: xn--assets")}


@pytest.mark.parametrize("name", ["backup", "logs"])
def test_reserved_bucket_class_names(name):
    text = make({"buckets": {"uploads": {}, name: {}}})
    problem = only(text)
    assert problem.path == f"buckets.{name}"
    assert (problem.line, problem.column) == (line_of(text, f"{name}:"), 3)
    assert problem.message == f"'{name}' is the name of a bucket levels-tf creates itself"


def test_reserved_tag_key():
    text = make({"tags": {"Owner": "me", "aws:thing": "x"}})
    problem = only(text)
    assert (problem.path, problem.line) == ("tags.aws:thing", line_of(text, "aws:thing"))


# --- all problems together ----------------------------------------------------------


def test_rule_problems_are_reported_together_sorted_by_line():
    text = make(
        {
            "region": "eu-west-1",
            "vpc_groups.prod.azs": 5,
            "vpc_groups.nonprod.cidr": "10.0.0.0/20",
            "services.api.image": "nope",
            "services.api.scaling": {"min": 9, "max": 4},
            "buckets": {"logs": {}},
        },
        extra="environments:\n  staging: {}\n",
    )
    with pytest.raises(ConfigError) as info:
        validate(text)
    found = info.value.problems
    assert [(p.line, p.path) for p in found] == [
        (line_of(text, "azs: 5"), "vpc_groups.prod.azs"),
        (line_of(text, "10.0.0.0/20"), "vpc_groups.nonprod.cidr"),
        (line_of(text, "image: nope"), "services.api.image"),
        (line_of(text, "min: 9"), "services.api.scaling.min"),
        (line_of(text, "logs:"), "buckets.logs"),
        (line_of(text, "staging:"), "environments.staging"),
    ]
    assert [p.line for p in found] == sorted(p.line for p in found)
    # one line of output per problem, in the same order
    lines = str(info.value).splitlines()
    assert lines == [p.format() for p in found]
    assert lines[0].startswith(
        f"infra.yaml:{found[0].line}:{found[0].column}: vpc_groups.prod.azs: "
    )


def test_schema_problems_are_reported_together():
    text = make({"services.api.port": "80", "vpc_groups.prod.azs": "2", "project": "Shop"})
    found = problems(text)
    assert [p.path for p in found] == ["project", "vpc_groups.prod.azs", "services.api.port"]
    assert [p.line for p in found] == sorted(p.line for p in found)


def test_problems_of_several_environments_are_reported_together():
    text = make(
        extra="environments:\n  dev:\n    services.api.scaling.max: 0\n"
        "  test:\n    services.api.image: other\n",
    )
    found = problems(text)
    assert [(p.line, p.path) for p in found] == [
        (line_of(text, "scaling.max: 0"), "services.api.scaling.max"),
        (line_of(text, "image: other"), "services.api.image"),
    ]


def test_load_config_reports_the_file_name(tmp_path):
    path = tmp_path / "infra.yaml"
    text = make({"vpc_groups.nonprod.cidr": "10.0.0.0/16"})
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.file == str(path)
    assert problem.format().startswith(f"{path}:{line_of(text, 'cidr: 10.0.0.0/16', nth=2)}:")


def test_cdn_aliases_need_a_certificate():
    text = make(extra="cdn:\n  aliases: {production: [www.shop.example]}\n")
    problem = only(text)
    assert problem.path == "cdn.aliases"
    assert problem.message.startswith("aliases need cdn.certificate_arn")


# --- a hostname names one thing ----------------------------------------------------

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12


def test_a_hostname_in_two_vpc_groups_is_refused_at_its_second_use():
    """Production's name given to dev too: both groups' shared stacks would
    write the record into the one hosted zone."""
    text = make(
        {
            "load_balancer.hostnames": {
                "production": ["api.shop.example"],
                "dev": ["api.shop.example"],
            }
        }
    )
    problem = only(text)
    assert problem.path == "load_balancer.hostnames.dev[0]"
    assert problem.line == line_of(text, "- api.shop.example", 2)
    assert (
        problem.message
        == "api.shop.example is already a hostname of the load balancer of 'production'"
    )


def test_a_given_hostname_that_is_another_environments_default_is_refused():
    text = make({"load_balancer.hostnames": {"production": ["dev.shop.example"]}})
    problem = only(text)
    assert (
        problem.message
        == "dev.shop.example is already a hostname of the load balancer of 'production'"
    )
    assert problem.path == "vpc_groups.nonprod.environments[0]"  # dev's default name
    assert problem.line == line_of(text, "- dev")


def test_a_hostname_twice_in_one_vpc_group_is_refused():
    text = make(
        {"load_balancer.hostnames": {"dev": ["a.shop.example"], "test": ["a.shop.example"]}}
    )
    assert only(text).path == "load_balancer.hostnames.test[0]"


def test_a_cdn_alias_is_one_distributions_and_not_a_load_balancers():
    text = make(
        {
            "cdn.certificate_arn": CERT,
            "cdn.aliases": {
                "production": ["www.shop.example", "production.shop.example"],
                "dev": ["www.shop.example"],
            },
        }
    )
    found = sorted((p.path, p.message) for p in problems(text))
    assert found == [
        (
            "cdn.aliases.dev[0]",
            "www.shop.example is already a hostname of the CDN of 'production'",
        ),
        (
            "cdn.aliases.production[1]",
            "production.shop.example is already a hostname of the load balancer of 'production'",
        ),
    ]


def test_distinct_hostnames_everywhere_are_valid():
    validate(
        make(
            {
                "load_balancer.hostnames": {"production": ["api.shop.example"]},
                "cdn.certificate_arn": CERT,
                "cdn.aliases": {
                    "production": ["www.shop.example"],
                    "dev": ["www-dev.shop.example"],
                },
            }
        )
    )


# --- the CDN's own controls ------------------------------------------------------


def test_geo_allow_list_takes_country_codes_only():
    text = make({"cdn.geo_allow_list": ["DE", "at"]})
    problem = only(text)
    assert problem.path == "cdn.geo_allow_list[1]"
    assert problem.line == line_of(text, "- at")
    assert "not an ISO 3166-1 alpha-2 country code such as DE" in problem.message


@pytest.mark.parametrize(
    "code, hint",
    [
        ("UK", "did you mean GB?"),
        ("EU", "the European Union is no country"),
        ("XX", "the codes are listed at https://www.iso.org/obp/ui/#search"),
        ("ZZ", "the codes are listed at"),
    ],
)
def test_geo_allow_list_takes_assigned_country_codes_only(code, hint):
    """Two capitals are not a country: CloudFront takes the codes ISO 3166-1
    assigns, so a reserved or unassigned one is refused at its line."""
    text = make({"cdn.geo_allow_list": ["DE", code]})
    problem = only(text)
    assert (problem.path, problem.line) == ("cdn.geo_allow_list[1]", line_of(text, f"- {code}"))
    assert problem.message.startswith(
        f"'{code}' is not the ISO 3166-1 alpha-2 code of a country; {hint}"
    )


def test_every_assigned_country_code_is_taken_and_every_reserved_one_refused():
    import pycountry

    from levels_tf.model import _RESERVED

    assigned = sorted(country.alpha_2 for country in pycountry.countries)
    assert len(assigned) >= 249 and {"GB", "DE", "US", "FR", "ES", "SH", "IO"} <= set(assigned)
    assert validate(make({"cdn.geo_allow_list": assigned})).infra.cdn.geo_allow_list == assigned
    for code, hint in _RESERVED.items():
        assert code not in assigned
        suggested = hint.removeprefix("did you mean ").removesuffix("?")
        assert suggested == hint or suggested in assigned, (code, hint)


def test_geo_allow_list_names_each_country_once():
    text = make({"cdn.geo_allow_list": ["DE", "GB", "DE", "FR", "GB"]})
    found = [(p.path, p.line, p.message) for p in problems(text)]
    assert found == [
        ("cdn.geo_allow_list[2]", line_of(text, "- DE", nth=2), "'DE' is already item 0"),
        ("cdn.geo_allow_list[4]", line_of(text, "- GB", nth=2), "'GB' is already item 1"),
    ]


def test_cdn_controls_default_to_every_country_and_no_preload():
    config = validate(make())
    assert config.infra.cdn.geo_allow_list == []
    assert config.infra.cdn.hsts_preload is False


# --- warnings: valid, but almost surely not meant --------------------------------


def _bastion(*cidrs: str) -> str:
    return make({"bastion": {"allowed_cidrs": list(cidrs), "users": {"alice": KEY}}})


@pytest.mark.parametrize("cidr", ["192.0.2.0/24", "198.51.100.7/32", "203.0.113.0/25"])
def test_a_documentation_range_for_ssh_is_a_warning_at_its_line(cidr):
    text = _bastion("198.18.0.0/15", cidr)
    (warning,) = validate(text).advisories
    assert (warning.line, warning.path) == (line_of(text, f"- {cidr}"), "bastion.allowed_cidrs[1]")
    assert f"{cidr} is a documentation range (RFC 5737)" in warning.message
    assert warning.format("warning").startswith(f"infra.yaml:{warning.line}:")
    assert ": warning: bastion.allowed_cidrs[1]: " in warning.format("warning")


def test_ssh_from_the_whole_internet_is_a_warning():
    (warning,) = validate(_bastion("0.0.0.0/0")).advisories
    assert "opens the bastion's SSH to the whole internet" in warning.message


@pytest.mark.parametrize("cidr", ["198.18.0.0/15", "192.0.0.0/16", "203.0.112.0/24", "10.0.0.0/8"])
def test_a_real_range_is_no_warning(cidr):
    assert validate(_bastion(cidr)).advisories == ()


def test_validate_and_render_print_the_warnings_and_succeed(tmp_path):
    import json

    from click.testing import CliRunner

    from levels_tf.cli import cli

    config = tmp_path / "infra.yaml"
    config.write_text(_bastion("203.0.113.0/24"), encoding="utf-8")
    expected = f"{config}:{line_of(config.read_text(), '- 203.0.113.0/24')}:"
    for args in (["validate", "--json"], ["render"]):
        result = CliRunner().invoke(cli, ["-c", str(config), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        (warning,) = [line for line in result.stderr.splitlines() if ": warning: " in line]
        assert warning.startswith(expected)
    document = json.loads(CliRunner().invoke(cli, ["-c", str(config), "validate", "--json"]).stdout)
    assert document["warnings"] == [warning]
