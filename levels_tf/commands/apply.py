from __future__ import annotations

import time
from pathlib import Path

from .. import console, scheduler
from ..errors import UsageError
from ..options import RenderOptions
from ..terraform import EngineChoice
from ..progress import printer
from ..workspace import open_workspace, stale_plan_reason
from .plan import report_outcomes


def apply(
    config_path: Path,
    names: tuple[str, ...],
    all_stacks: bool,
    *,
    options: RenderOptions,
    engine: EngineChoice,
    yes: bool,
    parallelism: int,
) -> int:
    """Apply the plans `levels-tf plan` saved, and only those."""
    workspace = open_workspace(config_path, names, all_stacks, options, engine)
    reasons = {stack.name: stale_plan_reason(workspace, stack) for stack in workspace.stacks}
    refused = {name: reason for name, reason in reasons.items() if reason}
    if refused:
        for name, reason in refused.items():
            console.err(f"{name}: {reason}")
        raise UsageError("nothing was applied: every stack needs a fresh saved plan")
    production = [stack.name for stack in workspace.stacks if workspace.production(stack)]
    if production and not yes:
        if not console.confirm(f"apply the saved plans of production stacks {', '.join(production)}?"):
            raise UsageError("not applied: production needs a yes (or --yes)")

    def action(stack):
        start = time.monotonic()
        workspace.terraform.apply(workspace.folder(stack), on_event=printer(stack.name, start))
        workspace.plan_file(stack).unlink(missing_ok=True)
        return time.monotonic() - start

    outcomes = scheduler.run(workspace.stacks, action, parallelism)
    for name, outcome in outcomes.items():
        if outcome.status == scheduler.OK:
            console.out(f"{name}: applied in {outcome.value:.0f}s")
    report_outcomes(outcomes)
    return 0 if all(o.status == scheduler.OK for o in outcomes.values()) else 1
