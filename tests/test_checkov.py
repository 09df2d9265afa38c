"""checkov, the external judge of the rendered code's security.

Zero failed checks on the reference and every golden configuration. A check
the platform fails by design, or one checkov cannot see is met, is skipped
inline with its reason in words, and every skip comes from the registry in
levels_tf/skips.py; a skip from anywhere else fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from levels_tf import writer
from levels_tf.render import render
from levels_tf.skips import SKIPS
from levels_tf.validation import load_config

from .conftest import REFERENCE, checkov_binary

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "golden"
CONFIGS = {"reference": REFERENCE} | {
    p.name: p / "infra.yaml" for p in sorted(GOLDEN.iterdir()) if (p / "infra.yaml").is_file()
}

REGISTERED = {skip.check_id: skip for skip in SKIPS if skip.scanner == "checkov"}


def _checkov() -> str:
    return checkov_binary()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_checkov_finds_nothing(name, tmp_path):
    checkov = _checkov()
    writer.write(tmp_path, render(load_config(CONFIGS[name])))
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    result = subprocess.run(
        [
            checkov,
            "-d",
            str(tmp_path),
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
    failed = []
    skipped = {}
    for report in reports:
        results = report.get("results", {})
        for check in results.get("failed_checks", []):
            failed.append(f"{check['check_id']} {check['resource']} ({check['file_path']})")
        for check in results.get("skipped_checks", []):
            skipped[check["check_id"]] = check["check_result"].get("suppress_comment") or ""
    assert not failed, failed
    # Without --quiet, which would drop the skipped records along with the passed.
    assert skipped, "checkov reported no skipped check: the registry's skips were not read"
    assert set(skipped) <= set(REGISTERED), sorted(set(skipped) - set(REGISTERED))
    for check_id, reason in skipped.items():
        assert len(reason.split()) >= 4, f"{check_id} is skipped without a reason in words"
