from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

from .. import console, plan_summary, scheduler
from ..options import RenderOptions
from ..progress import printer
from ..terraform import EngineChoice, TerraformError
from ..workspace import ensure_function_packages, open_workspace


def plan(
    config_path: Path,
    names: tuple[str, ...],
    all_stacks: bool,
    *,
    options: RenderOptions,
    engine: EngineChoice,
    output_format: str,
    allow_destroy: bool,
    parallelism: int,
    refresh_only: bool = False,
) -> int:
    """Plan the stacks (saved per stack for apply), and summarize them together."""
    workspace = open_workspace(config_path, names, all_stacks, options, engine)
    for path in ensure_function_packages(workspace):
        console.out(f"built {path}")
    quiet = output_format != "text"

    original = {stack.name: stack for stack in workspace.stacks}
    # Terraform's plugin cache is not safe for concurrent inits.
    init_lock = threading.Lock()

    def action(stack):
        stack = original[stack.name]
        folder = workspace.folder(stack)
        with init_lock:
            workspace.init(stack)
        try:
            _, events = workspace.terraform.plan(
                folder, refresh_only=refresh_only, on_event=None if quiet else printer(stack.name)
            )
        except TerraformError as error:
            if "Unable to find remote state" in str(error) and stack.depends_on:
                raise TerraformError(
                    f"{stack.name} reads the outputs of {', '.join(stack.depends_on)}, which has no state yet: "
                    "apply it first"
                ) from None
            raise
        lines = [json.dumps(event) for event in events]
        return plan_summary.from_json_lines(
            stack.name, lines, production=workspace.production(stack), refresh_only=refresh_only
        )

    # A plan reads the applied state of the stacks it depends on, not their
    # plans: every stack can be planned at once.
    independent = [dataclasses.replace(stack, depends_on=()) for stack in workspace.stacks]
    outcomes = scheduler.run(independent, action, parallelism)
    summaries = [o.value for o in outcomes.values() if o.status == scheduler.OK]
    if output_format == "json":
        document = plan_summary.as_json(summaries)
        document["stacks_not_planned"] = {
            name: ("failed: " + str(o.error)) if o.status == scheduler.FAILED else ("skipped: " + str(o.value))
            for name, o in outcomes.items()
            if o.status != scheduler.OK
        }
        console.out(json.dumps(document, indent=2))
    elif output_format == "markdown":
        console.out(plan_summary.markdown(summaries))
    else:
        console.out(plan_summary.text(summaries))
    report_outcomes(outcomes)
    if any(o.status != scheduler.OK for o in outcomes.values()):
        return 1
    code = plan_summary.exit_code(summaries)
    if code == 1 and allow_destroy:
        code = 2
    elif code == 1:
        # A block blocks: apply finds no saved plan to apply for these stacks.
        for summary in summaries:
            if summary.blocked:
                workspace.plan_file(original[summary.stack]).unlink(missing_ok=True)
        console.err(
            "a production stack would replace or destroy stateful resources (listed above); its plan was not kept "
            "for apply: plan it again with --allow-destroy if that is meant"
        )
    return code


def report_outcomes(outcomes) -> None:
    """What failed and what was skipped, one line each, on stderr."""
    for name, outcome in outcomes.items():
        if outcome.status == scheduler.FAILED:
            console.err(f"{name}: failed: {outcome.error}")
        elif outcome.status == scheduler.SKIPPED:
            console.err(f"{name}: skipped: {outcome.value}")

