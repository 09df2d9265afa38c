"""The security gate as CI runs it: `levels-tf check --all` on the reference
and on every golden configuration, checkov and trivy both at zero.

checkov runs once per stack there (one run over the whole tree reports a
module's resource once for all the stacks calling it, and misses failures
of the others), trivy once over the tree with each record given to the stack
that calls the module. A check the platform fails by design, or one a
scanner cannot see is met, is skipped inline with its reason from the
registry in levels_tf/skips.py (tests/test_skips.py checks those lines); so
a user's own run of either scanner over the tree is clean too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from levels_tf.skips import SKIPS

from .conftest import REFERENCE, checkov_binary, trivy_binary

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "golden"
CONFIGS = {"reference": REFERENCE} | {
    p.name: p / "infra.yaml" for p in sorted(GOLDEN.iterdir()) if (p / "infra.yaml").is_file()
}


def _copy(source: Path, folder: Path) -> Path:
    """infra.yaml and the image scripts it names, in `folder`."""
    config = folder / "infra.yaml"
    shutil.copy(source, config)
    if (source.parent / "scripts").is_dir():
        shutil.copytree(source.parent / "scripts", folder / "scripts")
    return config


def _levels_tf(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "levels_tf", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=config.parent,
    )


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_check_finds_nothing_in_either_scanner(name, tmp_path, monkeypatch):
    monkeypatch.setenv("LEVELS_TF_CHECKOV", checkov_binary())
    monkeypatch.setenv("LEVELS_TF_TRIVY", trivy_binary())
    config = _copy(CONFIGS[name], tmp_path)
    rendered = _levels_tf(config, "render")
    assert rendered.returncode == 0, rendered.stderr

    result = _levels_tf(
        config, "check", "--all", "--scanner", "checkov", "--scanner", "trivy", "--json"
    )
    data = json.loads(result.stdout)
    stacks = {s["stack"]: s["scanners"] for s in data["stacks"]}
    assert set(stacks) >= {p.name for p in (tmp_path / "stacks").iterdir() if p.is_dir()}

    problems = [
        f"{stack} {scanner}: {finding['check_id']} {finding['resource']} "
        f"({finding['file']}:{finding['line']}) {finding['title']}"
        for stack, scanners in stacks.items()
        for scanner, report in scanners.items()
        for finding in report["findings"]
    ]
    errors = [
        f"{stack} {scanner}: {report['error']}"
        for stack, scanners in stacks.items()
        for scanner, report in scanners.items()
        if report["error"]
    ]
    assert not errors, errors
    assert not problems, "\n".join(problems)
    assert result.returncode == 0, result.stderr

    # Both judged the tree, and both read the inline skips.
    for scanner in ("checkov", "trivy"):
        assert data["totals"][scanner]["failed"] == 0
        assert data["totals"][scanner]["passed"] > 0, f"{scanner} judged nothing"
    assert data["totals"]["checkov"]["skipped"] > 0, "checkov read no inline skip"
    if any(skip.scanner == "trivy" for skip in SKIPS):
        assert data["totals"]["trivy"]["skipped"] > 0, "trivy read no inline ignore"
