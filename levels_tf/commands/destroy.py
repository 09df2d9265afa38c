from __future__ import annotations

import json
import time
from pathlib import Path

from .. import console, plan_summary
from ..errors import UsageError
from ..options import RenderOptions
from ..terraform import EngineChoice
from ..progress import printer
from ..stacks import stacks as all_stacks
from ..workspace import open_workspace


def destroy(
    config_path: Path,
    stack_name: str,
    *,
    confirm: str | None,
    allow_production: bool,
    options: RenderOptions,
    engine: EngineChoice,
) -> int:
    """Destroy one stack, after its dependents, with guard rails."""
    if confirm != stack_name:
        raise UsageError(f"destroying {stack_name} needs --confirm {stack_name}")
    workspace = open_workspace(config_path, (stack_name,), False, options, engine)
    (stack,) = workspace.stacks
    if workspace.production(stack) and not allow_production:
        raise UsageError(f"{stack_name} is a production stack: destroying it also needs --allow-production")
    dependents = [s.name for s in all_stacks(workspace.config.infra) if stack_name in s.depends_on]
    live = [name for name in dependents if (workspace.out / "stacks" / name / ".terraform").exists()]
    if live:
        console.err(f"note: {', '.join(live)} read this stack's outputs; destroy them first")
    folder = workspace.folder(stack)
    workspace.init(stack)
    _, events = workspace.terraform.plan(folder, destroy=True)
    lines = [json.dumps(event) for event in events]
    summary = plan_summary.from_json_lines(stack_name, lines, production=workspace.production(stack))
    console.out(plan_summary.text([summary]))
    start = time.monotonic()
    workspace.terraform.apply(folder, on_event=printer(stack_name, start))
    workspace.plan_file(stack).unlink(missing_ok=True)
    console.out(f"{stack_name}: destroyed in {time.monotonic() - start:.0f}s")
    return 0
