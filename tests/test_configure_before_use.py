"""What must be configured before something uses it is in Terraform's graph
as a dependency, across module boundaries too.

Terraform creates what does not depend on each other in parallel, so an
order that is not in the graph holds only by luck. For every stack of every
configuration the tests render, `terraform graph` is read and each known
"configure before use" pair must be a path in it:

- a bucket's access logging after the target bucket's policy lets S3 deliver;
- CloudFront's standard logging after the log bucket's ownership controls
  enable ACLs (CloudFront refuses a bucket without them);
- the load balancer's access logs after its log bucket's policy;
- a bucket's Lambda notification after the function's permission for S3
  (S3 refuses a destination it may not invoke);
- a bucket policy after the bucket's public access block, and a lifecycle
  configuration after versioning (both change the same bucket at once
  otherwise, and S3 answers OperationAborted).

The pairs are found from the plans, not listed by name, so a new bucket,
function or module is checked without touching this file.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

import pytest

from .planned import (
    PlannedStack,
    config_address,
    config_module,
    module_path,
    references_of,
    terraform,
    trace,
)

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

_EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)"')


def graph(stack: PlannedStack, env: dict[str, str]) -> dict[str, set[str]]:
    """{resource: what it depends on directly}, from `terraform graph` of the stack."""
    result = terraform(env, stack.folder, "graph")
    assert result.returncode == 0, result.stdout + result.stderr
    edges: dict[str, set[str]] = defaultdict(set)
    for line in result.stdout.splitlines():
        match = _EDGE.match(line)
        if match:
            edges[match.group(1)].add(match.group(2))
    assert edges, f"{stack.label}: terraform graph shows no dependency at all"
    return edges


def depends_on(edges: dict[str, set[str]], node: str, target: str) -> bool:
    """Whether `node` waits for `target`, directly or through others."""
    seen, todo = set(), [node]
    while todo:
        current = todo.pop()
        for nxt in edges.get(current, ()):
            if nxt == target:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def _changes(stack: PlannedStack, kind: str) -> Iterator[dict]:
    for change in stack.plan["resource_changes"]:
        if change["mode"] == "managed" and change["type"] == kind:
            yield change


def _expressions(stack: PlannedStack, node: str) -> dict:
    path, local = _split(node)
    (resource,) = [r for r in config_module(stack.plan, path)["resources"] if r["address"] == local]
    return resource.get("expressions", {})


def _split(node: str) -> tuple[tuple[str, ...], str]:
    """module.a.module.b.aws_x.y -> (("a", "b"), "aws_x.y")."""
    parts = node.split(".")
    path = tuple(parts[i + 1] for i in range(0, len(parts) - 2, 2) if parts[i] == "module")
    return path, ".".join(parts[2 * len(path) :])


def setting_of(stack: PlannedStack, bucket: str, kind: str) -> str:
    """The graph address of the `kind` resource (a policy, ownership controls...)
    that configures the bucket at graph address `bucket`."""
    path, local = _split(bucket)
    found = [
        f"{''.join(f'module.{step}.' for step in path)}{resource['address']}"
        for resource in config_module(stack.plan, path)["resources"]
        if resource["type"] == kind
        and local in references_of(resource.get("expressions", {}), "bucket")
    ]
    assert len(found) == 1, f"{stack.label}: bucket {bucket} has {len(found)} {kind}: {found}"
    return found[0]


def _bucket_named(stack: PlannedStack, name: str) -> str | None:
    for change in _changes(stack, "aws_s3_bucket"):
        if (change["change"]["after"] or {}).get("bucket") == name:
            return config_address(change["address"])
    return None


def _traced_buckets(stack: PlannedStack, node: str, *keys: str) -> set[str]:
    path, _ = _split(node)
    sources = trace(stack.plan, path, references_of(_expressions(stack, node), *keys))
    return {source for source in sources if _split(source)[1].startswith("aws_s3_bucket.")}


def pairs(stack: PlannedStack) -> Iterator[tuple[str, str, str]]:
    """(user, what it must wait for, why) for every known pair in `stack`."""
    for change in _changes(stack, "aws_s3_bucket_logging"):
        node = config_address(change["address"])
        name = (change["change"]["after"] or {}).get("target_bucket")
        # A known name of a bucket made elsewhere (another stack) exists before this one.
        targets = (
            _traced_buckets(stack, node, "target_bucket")
            if name is None
            else {bucket for bucket in [_bucket_named(stack, name)] if bucket is not None}
        )
        for target in targets:
            why = "S3 delivers access logs only once the target's policy allows it"
            yield node, setting_of(stack, target, "aws_s3_bucket_policy"), why
    for change in _changes(stack, "aws_cloudfront_distribution"):
        node = config_address(change["address"])
        if (change["change"]["after"] or {}).get("logging_config"):
            buckets = _traced_buckets(stack, node, "logging_config", "bucket")
            assert buckets, f"{stack.label}: cannot tell which bucket {node} logs to"
            for bucket in buckets:
                why = "CloudFront logs only to a bucket whose ownership controls enable ACLs"
                yield node, setting_of(stack, bucket, "aws_s3_bucket_ownership_controls"), why
    for change in _changes(stack, "aws_lb"):
        node = config_address(change["address"])
        if any(
            block.get("enabled")
            for block in (change["change"]["after"] or {}).get("access_logs", [])
        ):
            buckets = _traced_buckets(stack, node, "access_logs", "bucket")
            assert buckets, f"{stack.label}: cannot tell which bucket {node} logs to"
            for bucket in buckets:
                why = "the load balancer checks at once that it may write its access logs"
                yield node, setting_of(stack, bucket, "aws_s3_bucket_policy"), why
    notified = set()
    for change in _changes(stack, "aws_lambda_permission"):
        after = change["change"]["after"] or {}
        if after.get("principal") != "s3.amazonaws.com":
            continue
        source = _bucket_named(stack, after["source_arn"].rsplit(":", 1)[-1])
        assert source is not None, (
            f"{stack.label}: {change['address']} names a bucket this stack does not create"
        )
        notification = setting_of(stack, source, "aws_s3_bucket_notification")
        notified.add(notification)
        why = "S3 refuses a Lambda destination it may not invoke yet"
        yield notification, config_address(change["address"]), why
    for change in _changes(stack, "aws_s3_bucket_notification"):
        if (change["change"]["after"] or {}).get("lambda_function"):
            node = config_address(change["address"])
            assert node in notified, (
                f"{stack.label}: {change['address']} invokes a function no permission lets S3 call"
            )
    for change in _changes(stack, "aws_s3_bucket"):
        bucket = config_address(change["address"])
        why = "both change the bucket; at the same time S3 answers OperationAborted"
        yield (
            setting_of(stack, bucket, "aws_s3_bucket_policy"),
            setting_of(stack, bucket, "aws_s3_bucket_public_access_block"),
            why,
        )
        path, _local = _split(bucket)
        if any(
            r["type"] == "aws_s3_bucket_lifecycle_configuration"
            for r in config_module(stack.plan, path)["resources"]
        ):
            why = "noncurrent-version rules need versioning configured first"
            yield (
                setting_of(stack, bucket, "aws_s3_bucket_lifecycle_configuration"),
                setting_of(stack, bucket, "aws_s3_bucket_versioning"),
                why,
            )


def test_what_is_used_waits_for_its_configuration(planned_platforms, terraform_env):
    missing: list[str] = []
    checked: defaultdict[str, int] = defaultdict(int)
    for label, stack in sorted(planned_platforms.items()):
        edges = graph(stack, terraform_env)
        for user, prerequisite, why in set(pairs(stack)):
            checked[why] += 1
            if not depends_on(edges, user, prerequisite):
                missing.append(f"{label}: {user} does not wait for {prerequisite}: {why}")
    assert len(checked) == 6, f"some kinds of pair were never met: {dict(checked)}"
    assert not missing, "\n".join(sorted(missing))


def test_a_missing_dependency_is_caught():
    """The graph reading itself: a pair with no path fails, a transitive one passes."""
    edges = {"a": {"b"}, "b": {"c"}}
    assert depends_on(edges, "a", "c")
    assert not depends_on(edges, "c", "a")
    assert _split("module.a.module.b.aws_x.y") == (("a", "b"), "aws_x.y")
    assert _split("aws_x.y") == ((), "aws_x.y")
    assert module_path('module.bucket["web"].module.x[0]') == ("bucket", "x")
