"""checkov over the plans Terraform itself resolved: zero failed checks on
the reference and every golden configuration, as on their code.

The plans come from the `planned_platforms` fixture (every stack planned for
real against moto); this runs what `levels-tf check` runs on saved plans:
checkov over each plan's JSON, then the inline skips of the rendered code
applied to its findings through the plan's module calls
(levels_tf/code_skips.py). A check skipped there keeps its reason.
"""

from __future__ import annotations

import json

import pytest

from levels_tf import scanning

from .conftest import checkov_binary

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

# The reference and the golden configurations: the ones whose code the scanners hold to zero too.
SCANNED = ("reference", "heavy-overrides", "six-az", "two-az-single-env")


@pytest.mark.parametrize("config", SCANNED)
def test_checkov_finds_nothing_in_the_plans(config, planned_platforms, tmp_path):
    stacks = {s.name: s for s in planned_platforms.values() if s.config == config}
    assert stacks, f"nothing planned for {config}"
    (tree,) = {s.folder.parent.parent for s in stacks.values()}
    plans = {}
    for name, stack in sorted(stacks.items()):
        plans[name] = tmp_path / f"{name}.json"
        plans[name].write_text(json.dumps(stack.plan), encoding="utf-8")

    results = scanning.checkov_plans(checkov_binary(), tree, plans)

    errors = [f"{r.stack}: {r.error}" for r in results if r.error]
    assert not errors, errors
    failures = [
        f"{r.stack}: {f.check_id} {f.resource} ({f.location}) {f.title}"
        for r in results
        for f in r.findings
    ]
    assert not failures, "\n".join(failures)
    assert all(r.passed > 0 for r in results), [(r.stack, r.passed) for r in results]
    # Every skip is one of the code's, found in the tree, with its reason.
    skips = [s for r in results for s in r.skips]
    assert skips and all(r.skipped == len(r.skips) for r in results)
    for skip in skips:
        assert len(skip.reason.split()) >= 4, skip
        assert skip.line and (tree / skip.file).is_file(), skip
