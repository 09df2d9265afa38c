"""What a rehearsal found, and its two forms: a table for people, JSON for machines.

Pure: builds strings and dicts, prints nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASSED, FAILED, SKIPPED, INTERRUPTED, KEPT = "passed", "failed", "skipped", "interrupted", "kept"


@dataclass
class Step:
    """One step of the life cycle: its status, seconds taken and what it says."""

    name: str
    status: str = SKIPPED
    seconds: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class Outcome:
    """One check through the AWS API, in the step that made it."""

    step: str
    name: str
    passed: bool
    detail: str = ""
    # Why the emulator cannot answer this check: then a failure is not the platform's.
    unreadable: str = ""


@dataclass(frozen=True)
class PlannedChange:
    """A change a plan still showed after apply: `reason` says why it is the emulator's, "" when it is not."""

    stack: str
    address: str
    action: str
    reason: str = ""


@dataclass
class Report:
    emulator: str
    endpoint: str = ""
    tree: str | None = None
    steps: list[Step] = field(default_factory=list)
    checks: list[Outcome] = field(default_factory=list)
    adaptations: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    replanned: list[PlannedChange] = field(default_factory=list)
    interrupted: bool = False

    def step(self, name: str) -> Step:
        found = next((s for s in self.steps if s.name == name), None)
        if found is None:
            found = Step(name)
            self.steps.append(found)
        return found

    @property
    def unexpected(self) -> list[PlannedChange]:
        return [c for c in self.replanned if not c.reason]

    @property
    def ok(self) -> bool:
        return (
            not self.interrupted
            and all(s.status in (PASSED, KEPT) for s in self.steps)
            and all(c.passed or c.unreadable for c in self.checks)
            and not self.unexpected
        )

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


def as_json(report: Report) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "emulator": report.emulator,
        "endpoint": report.endpoint,
        "tree": report.tree,
        "interrupted": report.interrupted,
        "seconds": round(report.seconds, 1),
        "steps": [
            {"name": s.name, "status": s.status, "seconds": round(s.seconds, 1), "detail": s.detail}
            for s in report.steps
        ],
        "checks": [
            {
                "step": c.step,
                "name": c.name,
                "passed": c.passed,
                "detail": c.detail,
                "emulator_difference": c.unreadable or None,
            }
            for c in report.checks
        ],
        "checks_passed": sum(c.passed for c in report.checks),
        "checks_failed": sum(not c.passed and not c.unreadable for c in report.checks),
        "checks_unreadable": sum(not c.passed and bool(c.unreadable) for c in report.checks),
        "adaptations": [{"path": path, "reason": reason} for path, reason in report.adaptations],
        "replan": [
            {
                "stack": c.stack,
                "address": c.address,
                "action": c.action,
                "emulator_difference": c.reason or None,
            }
            for c in report.replanned
        ],
    }


def text(report: Report) -> str:
    """The summary table: steps with times and statuses, then the checks that
    failed, the emulator's adaptations and differences, and one verdict line."""
    width = max([len(s.name) for s in report.steps] + [4])
    lines = [f"{'step'.ljust(width)}  {'time':>7}  status"]
    for s in report.steps:
        status = s.status + (f": {s.detail}" if s.detail and s.status != PASSED else "")
        lines.append(f"{s.name.ljust(width)}  {_duration(s.seconds):>7}  {status}")
    lines.append(f"{'total'.ljust(width)}  {_duration(report.seconds):>7}")
    passed = sum(c.passed for c in report.checks)
    failed = [c for c in report.checks if not c.passed and not c.unreadable]
    unreadable = [c for c in report.checks if not c.passed and c.unreadable]
    lines.append(
        f"checks: {passed} passed, {len(failed)} failed"
        + (f", {len(unreadable)} the emulator cannot answer" if unreadable else "")
    )
    for c in failed:
        lines.append(f"  FAILED [{c.step}] {c.name}" + (f": {c.detail}" if c.detail else ""))
    for c in unreadable:
        lines.append(f"  not answered [{c.step}] {c.name}: {c.unreadable}")
    if report.adaptations:
        lines.append(f"adapted to {report.emulator} (in the rehearsal tree only):")
        lines.extend(f"  {path}: {reason}" for path, reason in report.adaptations)
    known = [c for c in report.replanned if c.reason]
    if known:
        lines.append(f"re-plan: {len(known)} change(s) the emulator causes, not levels-tf:")
        lines.extend(f"  {c.stack}: {c.address} ({c.action}): {c.reason}" for c in known)
    for change in report.unexpected:
        lines.append(f"  DRIFT {change.stack}: {change.address} ({change.action}) after apply")
    if report.tree:
        lines.append(f"the rehearsal tree is kept in {report.tree}")
    verdict = (
        "interrupted"
        if report.interrupted
        else ("every step and check passed" if report.ok else "FAILED")
    )
    lines.append(f"rehearsal on {report.emulator}: {verdict}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"
