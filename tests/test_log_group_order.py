"""Log groups AWS services write to must be created before, and destroyed
after, the resources that make them write: a Lambda function, an Aurora
cluster exporting logs, a VPC flow log or a WAF logging configuration whose
group is missing creates it again on its own (where its role allows, as
AWS's Lambda VPC policy does), and the next apply then fails with "already
exists". terraform's own graph of every rendered module shows the order.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from .conftest import copy_reference

pytestmark = pytest.mark.terraform

# Resources that make an AWS service write to a CloudWatch log group.
WRITERS = (
    "aws_lambda_function",
    "aws_rds_cluster",
    "aws_flow_log",
    "aws_wafv2_web_acl_logging_configuration",
)
EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)"', re.MULTILINE)
NODE = re.compile(r'^\s*"([^"]+)" \[label=', re.MULTILINE)


def _graph(folder, env) -> tuple[set[str], dict[str, set[str]]]:
    """The nodes and edges of terraform's graph of the stack in `folder`."""

    def terraform(*args: str) -> str:
        result = subprocess.run(
            ["terraform", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    terraform("init", "-input=false", "-no-color")
    dot = terraform("graph")
    edges: dict[str, set[str]] = {}
    for source, target in EDGE.findall(dot):
        edges.setdefault(source, set()).add(target)
    return set(NODE.findall(dot)), edges


def _reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return False


def _split(address: str) -> tuple[str, str]:
    """module.cdn.aws_cloudwatch_log_group.waf -> ("module.cdn", "aws_cloudwatch_log_group")."""
    parts = address.split(".")
    return ".".join(parts[:-2]), parts[-2]


def test_every_log_group_comes_before_its_writers(run, tmp_path, terraform_env):
    config = copy_reference(tmp_path)
    assert run("render", "--backend", "local", config=config).exit_code == 0
    checked = []
    for stack in ("production-shared", "production"):
        nodes, edges = _graph(tmp_path / "stacks" / stack, terraform_env)
        groups = sorted(n for n in nodes if _split(n)[1] == "aws_cloudwatch_log_group")
        for group in groups:
            module = _split(group)[0]
            writers = sorted(n for n in nodes if _split(n) in {(module, w) for w in WRITERS})
            ordered = [w for w in writers if _reaches(edges, w, group)]
            assert ordered, f"{stack}: nothing that writes to {group} waits for it"
            early = sorted(set(writers) - set(ordered))
            assert not early, f"{stack}: {early} may write to {group} before it exists"
            checked.append(group)
    # The function's, the database's, the flow logs' and both WAFs' groups.
    assert len(checked) == 5, checked
