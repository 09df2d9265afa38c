"""Inline scanner skips: each from the registry (levels_tf/skips.py), with a
reason in words, where the scanner reads it; none in the registry unused; the
README's table in step with the registry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from levels_tf import skips
from levels_tf.context import group_infra
from levels_tf.render import render
from levels_tf.stacks import stacks
from levels_tf.validation import Config, load_config

from .conftest import REFERENCE, ROOT

GOLDEN = Path(__file__).parent / "golden"
CONFIGS = {"reference": REFERENCE} | {
    p.name: p / "infra.yaml" for p in sorted(GOLDEN.iterdir()) if (p / "infra.yaml").is_file()
}

OPENER = re.compile(r'^(?:(resource|data) "([^"]+)" "([^"]+)"|module "([^"]+)") \{$')
CHECKOV = re.compile(r"^\s*# (checkov|checkov-plan):skip=([A-Z0-9_]+):(.*)$")
TRIVY = re.compile(r"^# trivy:ignore:([A-Za-z0-9-]+)(?:\[([^\]]*)\])? (.*)$")
MARKER = re.compile(r"checkov:skip|checkov-plan:skip|trivy:ignore|tfsec:ignore")


def _address(line: str) -> str | None:
    found = OPENER.match(line)
    if found is None:
        return None
    kind, kind_type, name, module = found.groups()
    if module:
        return f"module.{module}"
    return f"{kind_type}.{name}" if kind == "resource" else f"data.{kind_type}.{name}"


def _place(path: str, kinds: dict[str, str]) -> str:
    top, folder = path.split("/")[:2]
    return f"modules/{folder}" if top == "modules" else f"stacks/{kinds[folder]}"


def found_skips(path: str, text: str, kinds: dict[str, str]) -> list[tuple]:
    """(scanner, check id, params, place, block, reason, line number) of every
    skip in the file at `path`; fails where one is not where its scanner reads it."""
    lines = text.splitlines()
    result = []
    block = None
    for number, line in enumerate(lines, 1):
        if _address(line):
            block = _address(line)
        elif line.startswith("}"):
            block = None
        if not MARKER.search(line):
            continue
        where = f"{path}:{number}"
        if checkov := CHECKOV.match(line):
            assert block, f"{where}: a checkov skip outside any block"
            scanner, check_id, reason = checkov.groups()
            result.append((scanner, check_id, "", block, reason.strip(), number))
        elif trivy := TRIVY.match(line):
            following = number
            while TRIVY.match(lines[following]):
                following += 1
            target = _address(lines[following])
            assert target, (
                f"{where}: a trivy ignore must be followed by a resource, data or module line "
                f"or another ignore line, not {lines[following]!r}"
            )
            check_id, params, reason = trivy.groups()
            result.append(("trivy", check_id, params or "", target, reason.strip(), number))
        else:
            pytest.fail(f"{where}: a skip in a form this test does not know: {line.strip()}")
    place = _place(path, kinds)
    return [(s, c, p, place, b, r, n) for s, c, p, b, r, n in result]


def _expected(config: Config) -> set[tuple]:
    """(scanner, check id, params, place, block, reason) of every skip the
    registry says holds somewhere in `config`'s tree."""
    wheres = []
    for stack in stacks(config.infra):
        infra = (
            config.environments[stack.environment]
            if stack.environment
            else group_infra(config, stack.group)
        )
        wheres.append((f"stacks/{stack.kind}", skips.Where(infra, stack.group, stack.environment)))
    result = set()
    for skip in skips.SKIPS:
        holds: list[skips.Where | None] = [None] if skip.place.startswith("modules/") else []
        holds += [
            where
            for place, where in wheres
            if place == skip.place and (skip.when is None or skip.when(where))
        ]
        for where in holds:
            key = (skip.scanner, skip.check_id, skip.params, skip.place, skip.block)
            result.add((*key, skip.reason_at(where)))
    return result


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def rendered(request):
    config = load_config(CONFIGS[request.param])
    kinds = {stack.name: stack.kind for stack in stacks(config.infra)}
    found: list[tuple] = []
    for path, text in sorted(render(config).items()):
        if path.startswith(("modules/", "stacks/")) and path.endswith(".tf"):
            found.extend((path, *skip) for skip in found_skips(path, text, kinds))
    return request.param, config, found


def test_every_skip_comes_from_the_registry_with_a_reason(rendered):
    _, config, found = rendered
    expected = _expected(config)
    assert found, "no skip rendered at all"
    for path, *skip, number in found:
        assert tuple(skip) in expected, f"{path}:{number}: not in levels_tf/skips.py: {skip}"
        assert len(skip[5].split()) >= 4, f"{path}:{number}: a reason needs words: {skip[5]!r}"


def test_every_skip_that_holds_is_rendered(rendered):
    _, config, found = rendered
    missing = _expected(config) - {tuple(skip) for _, *skip, _ in found}
    assert not missing, sorted(missing)


def test_no_registry_entry_is_dead():
    used: set[tuple] = set()
    for path in CONFIGS.values():
        config = load_config(path)
        kinds = {stack.name: stack.kind for stack in stacks(config.infra)}
        for file, text in render(config).items():
            if file.startswith(("modules/", "stacks/")) and file.endswith(".tf"):
                used.update(skip[:5] for skip in found_skips(file, text, kinds))
    registry = {(s.scanner, s.check_id, s.params, s.place, s.block) for s in skips.SKIPS}
    assert registry - used == set(), "never rendered by any configuration"


def test_module_skips_hold_for_every_configuration():
    """Module templates see only common values: a skip in one holds everywhere,
    so it can have no condition, and its reason names no group or environment."""
    for skip in skips.SKIPS:
        assert skip.place.startswith("modules/") or skip.place in skips.STACK_PLACES, skip
        if skip.place.startswith("modules/"):
            assert skip.when is None, skip
            assert "{" not in skip.reason, skip
        assert len(skip.reason.split()) >= 4, skip


def test_a_conditional_skip_follows_its_condition():
    """CKV_AWS_338 (flow logs under a year) is on the network call of exactly
    the groups that keep flow logs for less, and its reason names the key."""
    config = load_config(GOLDEN / "two-az-single-env" / "infra.yaml")
    files = render(config)
    seen = set()
    for stack in stacks(config.infra):
        if stack.environment is not None:
            continue
        spec = config.infra.vpc_groups[stack.group]
        text = files[f"stacks/{stack.name}/main.tf"]
        has_skip = "checkov:skip=CKV_AWS_338:" in text
        assert has_skip == (spec.flow_logs.retention_days < 365), stack.group
        if has_skip:
            assert f"vpc_groups.{stack.group}.flow_logs.retention_days" in text
        seen.add(has_skip)
    assert True in seen, "the golden configuration no longer keeps flow logs under a year"


def test_readme_lists_every_skip():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- skips:start -->\n(.*?)<!-- skips:end -->", readme, re.S)
    assert found, "README.md has no <!-- skips:start --> ... <!-- skips:end --> section"
    assert found.group(1) == skips.markdown_table(), (
        "README.md's table of inline skips is stale: replace it with the output of "
        'python -c "from levels_tf import skips; print(skips.markdown_table(), end=str())"'
    )


def test_every_test_a_reason_names_exists():
    """A reason that leaves the proof to one of our tests names it as
    `tests/<file>.py::<test>`; a renamed or removed test would leave the skip
    resting on nothing."""
    named = [
        (skip.check_id, path, name)
        for skip in skips.SKIPS
        for path, name in re.findall(r"(tests/[\w/]+\.py)::(\w+)", skip.reason)
    ]
    assert named, "no reason names a test"
    for check_id, path, name in named:
        source = ROOT / path
        assert source.is_file(), f"{check_id}: {path} does not exist"
        assert re.search(rf"^def {name}\(", source.read_text(encoding="utf-8"), re.M), (
            f"{check_id}: {path} defines no test {name}"
        )
