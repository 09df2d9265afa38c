from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .. import affected, console, scan_report, scanning
from ..options import RenderOptions
from ..process import ToolError
from ..scanning import CHECKOV, CHECKOV_PLAN, TRIVY, ScannerMissing, ScanResult
from ..terraform import PLAN_FILE, EngineChoice, TerraformError
from ..workspace import Tree, open_tree, stale_plan_reason, with_terraform


def check(
    config_path: Path,
    names: tuple[str, ...],
    all_stacks: bool,
    *,
    options: RenderOptions,
    engine: EngineChoice,
    scanners: tuple[str, ...],
    output_format: str,
    since: str | None = None,
) -> int:
    """Run the security scanners over the rendered tree of the stacks asked
    for and report passed, failed and skipped checks per stack and scanner.

    checkov (once a stack) and trivy (once over stacks/ and modules/) read
    the code; checkov-plan reads `terraform show -json` of each stack's
    saved plan (`levels-tf plan`), and reports "no plan" for a stack without
    one, or whose plan is older than its code. All offline. `scanners`
    limits the run to some of scanning.SCANNERS (empty: all).

    Exit 0 nothing failed, 1 a check failed or a scanner could not run (each
    such scanner named on stderr with what to install), 2 the configuration
    is invalid or the tree is stale. The JSON schema is scan_report.as_json's."""
    tree = open_tree(config_path, names, all_stacks, options, since=since)
    if since is not None:
        console.err(affected.describe(tree.stacks, since))
    chosen = [s for s in scanning.SCANNERS if not scanners or s in scanners]
    stacks = [stack.name for stack in tree.stacks]
    results: list[ScanResult] = []
    checkov = ""
    if CHECKOV in chosen or CHECKOV_PLAN in chosen:
        try:
            checkov = scanning.checkov_path(tree.config.path.parent)
        except ScannerMissing as error:
            results += [
                ScanResult(s, c, error=str(error))
                for c in (CHECKOV, CHECKOV_PLAN)
                if c in chosen
                for s in stacks
            ]
    if checkov and CHECKOV in chosen:
        results += scanning.checkov_code(checkov, tree.out, stacks)
    if TRIVY in chosen:
        try:
            results += scanning.trivy_code(scanning.trivy_path(), tree.out, stacks)
        except ScannerMissing as error:
            results += [ScanResult(s, TRIVY, error=str(error)) for s in stacks]
    if checkov and CHECKOV_PLAN in chosen:
        results += _plans(tree, checkov, engine)
    order = {name: n for n, name in enumerate([*stacks, scanning.MODULES])}
    results.sort(key=lambda r: (order.get(r.stack, len(order)), scanning.SCANNERS.index(r.scanner)))
    if output_format == "json":
        console.out(json.dumps(scan_report.as_json(results), indent=2))
    elif output_format == "markdown":
        console.out(scan_report.markdown(results))
    else:
        console.out(scan_report.text(results), nl=False)
    for message in dict.fromkeys(r.error for r in results if r.error):
        console.err(message)
    return scan_report.exit_code(results)


def _plans(tree: Tree, checkov: str, engine: EngineChoice) -> list[ScanResult]:
    """checkov over the saved plan of each stack that has one; "no plan" for the others.

    Terraform (to read the plans) is looked for only when a plan exists;
    without it, each stack with a plan has the error saying what to install."""
    workspace = None
    results: dict[str, ScanResult] = {}
    with tempfile.TemporaryDirectory(prefix="levels-tf-plans-") as folder:
        plans: dict[str, Path] = {}
        for stack in tree.stacks:
            if not (tree.out / "stacks" / stack.name / PLAN_FILE).exists():
                results[stack.name] = _no_plan(stack.name, "no saved plan")
                continue
            try:
                workspace = workspace or with_terraform(tree, engine)
            except ToolError as error:  # no Terraform to read the plan with
                results[stack.name] = ScanResult(stack.name, CHECKOV_PLAN, error=str(error))
                continue
            reason = stale_plan_reason(workspace, stack)
            if reason:
                results[stack.name] = _no_plan(stack.name, reason)
                continue
            try:
                shown = workspace.terraform.show_plan(workspace.folder(stack))
            except TerraformError as error:
                results[stack.name] = ScanResult(
                    stack.name, CHECKOV_PLAN, error=f"{stack.name}: {str(error).splitlines()[0]}"
                )
                continue
            plans[stack.name] = Path(folder) / f"{stack.name}.json"
            plans[stack.name].write_text(shown, encoding="utf-8")
        for result in scanning.checkov_plans(checkov, tree.out, plans):
            results[result.stack] = result
    return [results[stack.name] for stack in tree.stacks]


def _no_plan(stack: str, reason: str) -> ScanResult:
    """`reason` up to its advice: "no saved plan", "the saved plan is older than <file>"."""
    return ScanResult(stack, CHECKOV_PLAN, no_plan=reason.split(":")[0])
