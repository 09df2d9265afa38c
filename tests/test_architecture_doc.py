"""docs/ARCHITECTURE.md says what the model and the rendered code say.

On the reference and every golden and test configuration: the Mermaid
nodes and edges equal those derived here from the model alone; each stack's
outputs table equals its rendered outputs.tf as python-hcl2 reads it; each
security rule's port is the one the rendered module creates; and the file is
part of the tree `render --check` guards."""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest

from levels_tf import overview
from levels_tf.render import render
from levels_tf.stacks import stacks
from levels_tf.validation import Config, load_config

from .conftest import ROOT

DOC = "docs/ARCHITECTURE.md"
CONFIGS = [ROOT / "infra.yaml"] + sorted(
    [
        *(ROOT / "tests" / "golden").glob("*/infra.yaml"),
        *(ROOT / "tests" / "configs").glob("*/infra.yaml"),
    ]
)
IDS = [str(path.parent.relative_to(ROOT)) for path in CONFIGS]

_NODE = re.compile(r"^\s+(\w+)(?:\[\(|\[/|\(\(|\(\[|\[)\"")
_EDGE = re.compile(r"^\s+(\w+) (-->|-\.->)\|\"[^\"]*\"\| (\w+)$")


@pytest.fixture(scope="module", params=CONFIGS, ids=IDS)
def case(request) -> tuple[Config, dict[str, str]]:
    config = load_config(request.param)
    return config, render(config)


def _id(*parts: str) -> str:
    return "_".join(parts).replace("-", "_")


def _mermaid(doc: str) -> tuple[set[str], set[tuple[str, str, bool]]]:
    body = doc.split("```mermaid\n", 1)[1].split("```", 1)[0]
    nodes, edges = set(), set()
    for line in body.splitlines():
        edge = _EDGE.match(line)
        if edge:
            edges.add((edge.group(1), edge.group(3), edge.group(2) == "-.->"))
            continue
        node = _NODE.match(line)
        if node and not line.strip().startswith("subgraph"):
            nodes.add(node.group(1))
    return nodes, edges


def _expected(config: Config) -> tuple[set[str], set[tuple[str, str, bool]]]:
    """The flowchart's nodes and edges, from the model: what each group's
    shared stack and each environment's stack hold, and who talks to whom."""
    nodes = {"users"}
    edges: set[tuple[str, str, bool]] = set()
    for group, vpc_group in config.infra.vpc_groups.items():
        envs = vpc_group.environments
        shared = config.environments[envs[0]] if len(envs) == 1 else config.infra
        lb = bool(shared.web_services())
        if lb:
            nodes.add(_id(group, "lb"))
            edges.add(("users", _id(group, "lb"), False))
        if shared.bastion:
            nodes |= {"operators", _id(group, "bastion")}
            edges.add(("operators", _id(group, "bastion"), True))
        if shared.database:
            nodes.add(_id(group, "db"))
        for env in envs:
            infra = config.environments[env]
            for name, service in infra.services.items():
                fleet = _id(env, "fleet", name)
                nodes.add(fleet)
                if service.port is not None and lb:
                    edges.add((_id(group, "lb"), fleet, False))
                if shared.bastion:
                    edges.add((_id(group, "bastion"), fleet, True))
                if shared.database:
                    edges.add((fleet, _id(group, "db"), False))
                edges |= {(_id(env, "queue", q), fleet, False) for q in service.consumes}
                edges |= {(fleet, _id(env, "topic", t), False) for t in service.publishes}
            classes = list(infra.buckets)
            if infra.functions or any(b.backup for b in infra.buckets.values()):
                classes.append("backup")
            nodes |= {_id(env, "bucket", c) for c in classes}
            served = [c for c, b in infra.buckets.items() if b.cdn]
            if served:
                nodes.add(_id(env, "cdn"))
                edges.add(("users", _id(env, "cdn"), False))
                edges |= {(_id(env, "cdn"), _id(env, "bucket", c), False) for c in served}
            nodes |= {_id(env, "queue", q) for q in infra.queues}
            nodes |= {_id(env, "topic", t) for t in infra.topics}
            for topic_name, topic in infra.topics.items():
                for subscriber in topic.subscribers:
                    queue = subscriber.split(".", 1)[1]
                    edges.add((_id(env, "topic", topic_name), _id(env, "queue", queue), False))
            for name, function in infra.functions.items():
                node = _id(env, "function", name)
                nodes.add(node)
                edges.add((_id(env, "bucket", function.on_upload_to), node, False))
                variants = function.variants_bucket or function.on_upload_to
                if variants != function.on_upload_to:
                    edges.add((node, _id(env, "bucket", variants), False))
                edges.add((node, _id(env, "bucket", "backup"), False))
    return nodes, edges


def test_the_flowchart_shows_what_the_model_holds(case):
    config, files = case
    nodes, edges = _mermaid(files[DOC])
    expected_nodes, expected_edges = _expected(config)
    assert nodes == expected_nodes
    assert edges == expected_edges


def _section(doc: str, stack: str) -> str:
    return doc.split(f"\n### `{stack}`\n", 1)[1].split("\n### ", 1)[0]


def _table(section: str, title: str) -> list[list[str]]:
    """The rows of the table under `title:` in a stack's section, cells stripped."""
    block = section.split(f"\n{title}:\n\n", 1)[1].split("\n\n", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[2:]]


def _unquote(text: str) -> str:
    return text[1:-1] if text.startswith('"') and text.endswith('"') else text


def test_each_outputs_table_is_the_stacks_outputs_tf(case):
    config, files = case
    doc = files[DOC]
    for stack in stacks(config.infra):
        parsed = hcl2.loads(files[f"stacks/{stack.name}/outputs.tf"]).get("output", [])
        expected = [
            [f"`{_unquote(name)}`", _unquote(body["description"]).replace("|", "\\|")]
            for block in parsed
            for name, body in block.items()
        ]
        assert expected, stack.name
        assert _table(_section(doc, stack.name), "Outputs") == expected, stack.name


def _module_resources(files: dict[str, str], module: str) -> dict[tuple[str, str], dict]:
    found = {}
    for path, text in files.items():
        if path.startswith(f"modules/{module}/") and path.endswith(".tf"):
            for block in hcl2.loads(text).get("resource", []):
                for kind, named in block.items():
                    for name, body in named.items():
                        found[(_unquote(kind), _unquote(name))] = body
    return found


def _variable_default(files: dict[str, str], module: str, name: str):
    parsed = hcl2.loads(files[f"modules/{module}/variables.tf"])
    for block in parsed["variable"]:
        if f'"{name}"' in block:
            return block[f'"{name}"'].get("default")
    return None


def _port(files, config: Config, rule: overview.Rule, body: dict) -> str:
    """The port range the module's resource opens, as the overview writes it."""
    module = rule.resource[0]
    ports = []
    for key in ("from_port", "to_port"):
        value = body[key]
        if isinstance(value, str) and value.startswith("${var."):
            variable = value[len("${var.") : -1]
            default = _variable_default(files, module, variable)
            if default is None:  # the service port: each fleet's, from infra.yaml
                service = rule.target.split()[1]
                env = rule.target.split()[0]
                default = config.environments[env].services[service].port
            value = default
        elif value == "${aws_rds_cluster.this.port}":
            value = _module_resources(files, module)[("aws_rds_cluster", "this")]["port"]
        ports.append(int(value))
    return str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}-{ports[1]}"


def test_every_rule_is_a_rendered_rule_with_its_port(case):
    config, files = case
    view = overview.describe(config)
    checked = 0
    for stack in view.stacks:
        section = _section(files[DOC], stack.name)
        rows = _table(section, "Security group rules") if stack.rules else []
        assert len(rows) == len(stack.rules)
        for rule, row in zip(stack.rules, rows, strict=True):
            module, address = rule.resource
            kind, name = address.split(".")
            body = _module_resources(files, module)[(kind, name)]
            assert _unquote(body["ip_protocol"]) == rule.protocol
            assert _port(files, config, rule, body) == rule.port, (stack.name, rule)
            assert row[2] == f"{rule.protocol} {rule.port}"
            checked += 1
    assert checked > 0


def test_six_zones_are_listed():
    config = load_config(ROOT / "tests" / "golden" / "six-az" / "infra.yaml")
    doc = render(config)[DOC]
    for vpc in overview.describe(config).vpcs:
        assert len(vpc.zones) == 6
        section = doc.split(f"### VPC `{vpc.name}`", 1)[1].split("\n### ", 1)[0]
        rows = [line for line in section.splitlines() if line.startswith("| us-")]
        assert [row.split("|")[1].strip() for row in rows] == [f"us-east-1{z}" for z in "abcdef"]
    assert doc.count(", 6 zones") == 3 * len(config.infra.vpc_groups)


def test_a_hand_edit_is_stale_for_render_check(run, reference_copy: Path):
    assert run("render", config=reference_copy).exit_code == 0
    assert run("render", "--check", config=reference_copy).exit_code == 0
    doc = reference_copy.parent / DOC
    doc.write_text(doc.read_text(encoding="utf-8").replace("Users", "Visitors"), encoding="utf-8")
    result = run("render", "--check", config=reference_copy)
    assert result.exit_code == 1
    assert f"a/{DOC}" in result.output
    assert run("render", config=reference_copy).exit_code == 0
    assert "Visitors" not in doc.read_text(encoding="utf-8")
