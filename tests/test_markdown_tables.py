"""Every markdown levels-tf writes keeps its tables whole: the pull-request
comments of `plan`, `drift` and `check`, the README table of inline skips,
each module's README, and the project's own documents."""

from __future__ import annotations

import pytest

from levels_tf import plan_report, scan_report, skips
from levels_tf.render import render
from levels_tf.scanning import CHECKOV, Finding, ScanResult
from levels_tf.validation import load_config

from .conftest import REFERENCE, ROOT
from .markdown_tables import problems
from .test_check import RESULTS
from .test_plan_summary import _every_status, _huge, _mixed


def test_a_whole_table_passes():
    assert problems("Title\n\n| a | b |\n| --- | --: |\n| 1 | 2 \\| 3 |\n\nafter\n") == []
    assert problems("```\n| not | a table\n```\n") == []


@pytest.mark.parametrize(
    "text, complaint",
    [
        # a caption between the delimiter row and the body: a row, and a body with no head
        ("| a |\n| --- |\n_caption_\n\n| 1 |\n", "'_caption_' is inside the table"),
        ("| a |\n| --- |\n_caption_\n\n| 1 |\n", "line 5: a table row not under a header"),
        ("| a | b |\n| --- |\n| 1 | 2 |\n", "header of 2 cells, delimiter of 1"),
        ("| a | b |\n| --- | --- |\n| 1 |\n", "1 cells in a table of 2 columns"),
        ("| a |\n| --- |\n| --- |\n", "a second delimiter row"),
        ("text\n\n| --- |\n", "a delimiter row without a header row"),
    ],
)
def test_a_broken_table_is_found(text, complaint):
    assert any(complaint in found for found in problems(text)), problems(text)


def _findings(count: int) -> tuple[Finding, ...]:
    return tuple(
        Finding(CHECKOV, f"CKV_AWS_{n}", "dev", f"aws_s3_bucket.b{n}", "main.tf", n, "a | b")
        for n in range(count)
    )


def _comments() -> dict[str, str]:
    many = [ScanResult("dev", CHECKOV, passed=1, findings=_findings(900))]
    return {
        "check": scan_report.markdown(RESULTS),
        "check, nothing failed": scan_report.markdown([ScanResult("dev", CHECKOV, passed=3)]),
        "check, cut to fit": scan_report.markdown(many, limit=4000),
        "plan": plan_report.markdown(_mixed()),
        "plan, every status": plan_report.markdown(_every_status()),
        "plan, cut to fit": plan_report.markdown(_huge(), limit=4000),
        "README skips": skips.markdown_table(),
    }


@pytest.mark.parametrize("name", list(_comments()))
def test_every_report_in_markdown_keeps_its_tables_whole(name):
    text = _comments()[name]
    assert "| --- |" in text or "|---|" in text, "no table to check"
    assert problems(text) == [], text


def test_every_markdown_file_render_writes_keeps_its_tables_whole():
    files = render(load_config(REFERENCE))
    written = {path: text for path, text in files.items() if path.endswith(".md")}
    assert len(written) >= 10, sorted(written)  # a README per module at least
    for path, text in written.items():
        assert problems(text) == [], (path, text)


@pytest.mark.parametrize("document", ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"])
def test_the_projects_documents_keep_their_tables_whole(document):
    assert problems((ROOT / document).read_text(encoding="utf-8")) == []
