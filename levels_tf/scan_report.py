"""Reporting the results of `levels-tf check`: for a terminal, for machines,
for a pull request.

Pure functions, no I/O. They take every ScanResult of a run (one per stack
and scanner, see scanning.py) in the order to show them, and return strings
(`text`, `markdown`) or plain data (`as_json`); `exit_code` is 0 when
nothing failed, 1 when a check failed or a scanner could not run.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from .markdown import cell, check_limit, code, fit, folded
from .scanning import SCANNERS, Finding, ScanResult

__all__ = ["as_json", "exit_code", "markdown", "text"]

SCHEMA_VERSION = 1


def exit_code(results: Iterable[ScanResult]) -> int:
    """0 when no check failed and every scanner ran; else 1. A stack without a plan is no failure."""
    return 1 if any(r.failed or r.error for r in results) else 0


def _stacks(results: Sequence[ScanResult]) -> list[str]:
    return list(dict.fromkeys(r.stack for r in results))


def _scanners(results: Sequence[ScanResult]) -> list[str]:
    present = {r.scanner for r in results}
    return [s for s in SCANNERS if s in present]


def _by_stack(results: Sequence[ScanResult]) -> dict[str, dict[str, ScanResult]]:
    table: dict[str, dict[str, ScanResult]] = {}
    for r in results:
        table.setdefault(r.stack, {})[r.scanner] = r
    return table


def _counts(r: ScanResult) -> str:
    if r.error:
        return "ERROR"
    if r.no_plan:
        return "no plan"
    return f"{r.passed} passed, {r.failed} failed, {r.skipped} skipped"


def _totals(results: Sequence[ScanResult]) -> dict[str, dict[str, int]]:
    return {
        scanner: {
            "passed": sum(r.passed for r in results if r.scanner == scanner),
            "failed": sum(r.failed for r in results if r.scanner == scanner),
            "skipped": sum(r.skipped for r in results if r.scanner == scanner),
            "errors": sum(1 for r in results if r.scanner == scanner and r.error),
        }
        for scanner in _scanners(results)
    }


def _errors(results: Sequence[ScanResult]) -> list[str]:
    """Each scanner's error once (a scanner that cannot start fails every stack alike)."""
    return list(dict.fromkeys(r.error for r in results if r.error))


def text(results: Iterable[ScanResult]) -> str:
    """For a terminal: one line per stack with each scanner's counts, then
    each stack's failures as `file:line CHECK_ID resource title`, each scanner's
    error, and a totals line."""
    results = list(results)
    table = _by_stack(results)
    width = max([len("total"), *(len(s) for s in table)])
    lines = []
    for stack, row in table.items():
        cells = [f"{s} {_counts(row[s])}" for s in _scanners(results) if s in row]
        lines.append(f"{stack.ljust(width)}  " + " | ".join(cells))
    for stack, row in table.items():
        failures = [f for r in row.values() for f in r.findings]
        if failures:
            lines.append("")
            lines.append(f"{stack}: {len(failures)} failed")
            lines += [
                f"  {f.location} {f.check_id} {f.resource} {f.title}".rstrip() for f in failures
            ]
    errors = _errors(results)
    if errors:
        lines.append("")
        lines += [f"error: {e}" for e in errors]
    totals = _totals(results)
    lines.append("")
    lines.append(
        f"{'total'.ljust(width)}  "
        + " | ".join(
            f"{s} {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped"
            for s, t in totals.items()
        )
    )
    return "\n".join(lines) + "\n"


def as_json(results: Iterable[ScanResult]) -> dict:
    """Plain data for machines, schema version 1:

    {"version": 1, "exit_code": 0|1,
     "stacks": [{"stack": str, "scanners": {scanner: {"passed", "failed",
        "skipped": int, "error": str|null, "no_plan": str|null,
        "findings": [{"check_id", "resource", "file", "line", "title"}],
        "skips": [{"check_id", "resource", "file", "line", "title", "reason"}]}}}],
     "totals": {scanner: {"passed", "failed", "skipped", "errors": int}}}

    scanner is one of checkov, trivy, checkov-plan; a stack lists the
    scanners that ran. `skips` lists checkov's skipped checks with the
    reason of their inline skip (trivy's are only counted)."""
    results = list(results)

    def finding(f: Finding) -> dict:
        return {
            "check_id": f.check_id,
            "resource": f.resource,
            "file": f.file,
            "line": f.line or None,
            "title": f.title,
        }

    def scan(r: ScanResult) -> dict:
        return {
            "passed": r.passed,
            "failed": r.failed,
            "skipped": r.skipped,
            "error": r.error or None,
            "no_plan": r.no_plan or None,
            "findings": [finding(f) for f in r.findings],
            "skips": [dict(finding(f), reason=f.reason) for f in r.skips],
        }

    return {
        "version": SCHEMA_VERSION,
        "exit_code": exit_code(results),
        "stacks": [
            {"stack": stack, "scanners": {s: scan(r) for s, r in row.items()}}
            for stack, row in _by_stack(results).items()
        ],
        "totals": _totals(results),
    }


def _cell_counts(r: ScanResult | None) -> str:
    if r is None:
        return "–"
    if r.error:
        return "⚠️ error"
    if r.no_plan:
        return "no plan"
    mark = "❌ " if r.failed else ""
    return f"{mark}{r.passed} / {r.failed} / {r.skipped}"


def markdown(results: Iterable[ScanResult], limit: int = 60000) -> str:
    """A pull-request comment: a table (passed / failed / skipped per stack
    and scanner, and the totals), the scanners' errors, then each stack's
    failures (folded in <details> past 10). Never longer than `limit`
    characters (at most GitHub's 65536); what does not fit is counted in a
    '… N more not shown' line."""
    check_limit(limit)
    results = list(results)
    scanners = _scanners(results)
    table = _by_stack(results)
    failed = sum(r.failed for r in results)
    errors = _errors(results)
    head = ["### Security checks\n\n"]
    if not failed and not errors:
        head.append("No failed checks.\n\n")
    else:
        parts = [f"{failed} failed" if failed else "", f"{len(errors)} errors" if errors else ""]
        head.append(f"❌ **{', '.join(p for p in parts if p)}** (see below).\n\n")
    head.append("_passed / failed / skipped_\n\n")  # a caption before the table, not inside it
    head.append("| stack | " + " | ".join(scanners) + " |\n")
    head.append("| --- | " + " | ".join("--:" for _ in scanners) + " |\n")
    rows = [
        f"| {cell(stack)} | " + " | ".join(_cell_counts(row.get(s)) for s in scanners) + " |\n"
        for stack, row in table.items()
    ]
    totals = _totals(results)
    rows.append(
        "| **total** | "
        + " | ".join(
            f"**{totals[s]['passed']} / {totals[s]['failed']} / {totals[s]['skipped']}**"
            for s in scanners
        )
        + " |\n"
    )
    lists = []
    if errors:
        lists.append(
            ("\n**Errors:**\n\n", [f"- {html.escape(e, quote=False)}\n" for e in errors], "")
        )
    for stack, row in table.items():
        findings = [f for s in scanners if s in row for f in row[s].findings]
        if findings:
            items = [
                f"- {f.scanner} {code(f.check_id)} {code(f.resource)} at {code(f.location)}: "
                f"{html.escape(f.title, quote=False)}\n"
                for f in findings
            ]
            lists.append(folded(f"{stack}: {len(findings)} failed", items, fold=len(findings) > 10))
    return fit(limit, "".join(head), rows, lists)
