from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import posixpath
from pathlib import Path

from .. import (
    affected,
    console,
    plan_reading,
    plan_report,
    remedies,
    scheduler,
    state_lock,
)
from ..options import RenderOptions
from ..plan_summary import Item, NotPlanned, Status, repeated_failures
from ..progress import DONE, FAILED, SKIPPED, WAITING, Board, view, watcher
from ..stacks import Stack
from ..terraform import PENDING_PLAN, EngineChoice, TerraformError, output_note
from ..workspace import Workspace, ensure_function_packages, open_workspace

NO_STATE_YET = "Unable to find remote state"
"""The summary of Terraform's error when a `terraform_remote_state` finds no
state at all: the stack it reads was never applied (terraform's
builtin/providers/terraform data source)."""


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
    since: str | None = None,
) -> int:
    """Plan the stacks (saved per stack for apply), and summarize them together.

    Exit 0 no changes, 2 changes or stacks waiting for another's first
    apply, 1 a stack failed or a production plan is blocked."""
    workspace = open_workspace(config_path, names, all_stacks, options, engine, since=since)
    if since is not None:
        console.err(affected.describe(workspace.stacks, since))
    for path in ensure_function_packages(workspace):
        console.err(f"built {path}")  # stdout carries the summary alone (--format json)
    items = plan_stacks(
        workspace,
        workspace.stacks,
        parallelism=parallelism,
        refresh_only=refresh_only,
        progress=output_format == "text",
        allow_destroy=allow_destroy,
    )
    if output_format == "json":
        document = plan_report.as_json(items)
        if document["next"]:
            document["next"] = console.with_config(document["next"])
        console.out(json.dumps(document, indent=2))
    elif output_format == "markdown":
        console.out(console.with_config(plan_report.markdown(items)))
    else:
        console.out(console.with_config(plan_report.text(items)))
    report_not_planned(items)
    if any(isinstance(i, NotPlanned) and i.status is not Status.WAITING for i in items):
        return 1
    code = plan_report.exit_code(items)
    if code == 1 and allow_destroy:
        code = 2
    elif code == 1:
        console.err(
            "a production stack would replace or destroy stateful resources (listed above); its plan was not kept "
            "for apply: plan it again with --allow-destroy if that is meant"
        )
    return code


def plan_stacks(
    workspace: Workspace,
    stacks: list[Stack],
    *,
    parallelism: int,
    refresh_only: bool = False,
    progress: bool = True,
    allow_destroy: bool = False,
) -> list[Item]:
    """Plan `stacks` at once (a plan reads the applied state of the stacks it
    depends on, not their plans) and save each plan for apply; one summary
    item per stack, in the order of `stacks`.

    A stack that fails or waits keeps no saved plan (neither an older one
    nor the errored one Terraform writes), so apply has none to take; nor
    does a BLOCKED one (production losing data) unless `allow_destroy`.
    Terraform writes PENDING_PLAN, which becomes the saved plan only once
    it is kept, so not even a levels-tf killed mid-plan leaves one. A
    stack whose every error is that a stack it reads has no state yet is
    WAITING for it, not FAILED."""
    original = {stack.name: stack for stack in stacks}
    init_errors = workspace.init_all(stacks)

    def action(stack: Stack) -> Item:
        stack = original[stack.name]
        folder = workspace.folder(stack)
        pending = folder / PENDING_PLAN
        workspace.plan_file(stack).unlink(missing_ok=True)
        if stack.name in init_errors:
            raise init_errors[stack.name]
        errors: list[dict] = []
        show = watcher(board, stack.name) if progress else None
        board.start(stack.name)

        def on_event(event: dict) -> None:
            if event.get("type") == "diagnostic" and event.get("@level") == "error":
                errors.append(event)
            if show:
                show(event)

        keep = False
        try:
            with state_lock.watch(workspace, stack):
                _, events = workspace.terraform.plan(
                    folder, refresh_only=refresh_only, on_event=on_event, out=PENDING_PLAN
                )
            summary = plan_reading.from_events(
                stack.name,
                events,
                production=workspace.production(stack),
                refresh_only=refresh_only,
            )
            keep = allow_destroy or not summary.blocked  # a block blocks: no plan for apply
            return summary
        except TerraformError as error:
            return _not_planned(stack, errors, error, _tree_folder(workspace, stack))
        finally:
            # Terraform saves an errored plan too: apply gets nothing unreviewed or blocked.
            if keep and pending.exists():
                os.replace(pending, workspace.plan_file(stack))
            pending.unlink(missing_ok=True)

    independent = [dataclasses.replace(stack, depends_on=()) for stack in stacks]
    names = [stack.name for stack in stacks]
    with view(names, "planning") if progress else _no_view(names) as board:
        outcomes = scheduler.run(independent, action, parallelism)
        items = [item_of(outcome) for outcome in outcomes.values()]
        for item in items:
            board.finish(item.stack, *_row_end(item))
    return items


def _no_view(names: list[str]) -> contextlib.AbstractContextManager[Board]:
    """A board nobody draws (--format json: stdout carries the report alone)."""
    return contextlib.nullcontext(Board(names, "planning"))


def _row_end(item: Item) -> tuple[str, str]:
    """How a planned stack's row ends in the live view: state, note."""
    if isinstance(item, NotPlanned):
        state = {Status.FAILED: FAILED, Status.WAITING: WAITING}.get(item.status, SKIPPED)
        return state, item.reason if item.status is Status.WAITING else ""
    return DONE, ""


def item_of(outcome: scheduler.Outcome) -> Item:
    """A scheduler's outcome as a summary item: its value when OK, else why not."""
    if outcome.status is scheduler.OK:
        return outcome.value
    if outcome.status is scheduler.FAILED:
        log = getattr(outcome.error, "log", None)
        # A TerraformError's own words: report_not_planned adds the next step after the log.
        reason = getattr(outcome.error, "message", None) or str(outcome.error)
        return NotPlanned(outcome.stack, Status.FAILED, reason, log=log)
    return NotPlanned(outcome.stack, Status.SKIPPED, str(outcome.value))


def _tree_folder(workspace: Workspace, stack: Stack) -> str:
    """The folder of `stack` relative to the rendered tree, e.g. stacks/dev."""
    return workspace.folder(stack).relative_to(workspace.out).as_posix()


def _not_planned(
    stack: Stack, errors: list[dict], error: TerraformError, folder: str
) -> NotPlanned:
    """Why `stack` has no plan: WAITING when every error is a stack it reads
    having no state yet, else FAILED with the first error and where it is
    (`file` relative to the tree, in which the stack's `folder` is e.g. stacks/dev)."""
    diagnostics = [event.get("diagnostic") or {} for event in errors]
    if (
        diagnostics
        and stack.depends_on
        and all(d.get("summary") == NO_STATE_YET for d in diagnostics)
    ):
        after = stack.depends_on
        return NotPlanned(
            stack.name,
            Status.WAITING,
            f"waits for the first apply of {', '.join(after)}",
            after=after,
        )
    if not diagnostics:
        return NotPlanned(stack.name, Status.FAILED, str(error), log=error.log)
    first = diagnostics[0]
    summary = first.get("summary") or errors[0].get("@message", "error")
    detail = " ".join(str(first.get("detail", "")).split())
    where = first.get("range") or {}
    file = ""
    if where.get("filename"):
        # Terraform names files relative to the stack's folder; say them relative to the tree.
        file = posixpath.normpath(posixpath.join(folder, where["filename"]))
    line = int((where.get("start") or {}).get("line") or 0)
    return NotPlanned(
        stack.name,
        Status.FAILED,
        f"{summary}: {detail}" if detail else summary,
        file=file,
        line=line,
        log=error.log,
    )


def report_not_planned(items: list[Item]) -> None:
    """What failed (with where, and the log of the failed run) and what was
    skipped, one line each, on stderr. A failure an earlier stack already
    had is named, not repeated (plan_summary.repeated_failures)."""
    repeats = repeated_failures(items)
    for item in items:
        if isinstance(item, NotPlanned) and item.stack in repeats:
            console.err(
                f"{item.stack}: failed: the same error as {repeats[item.stack]}"
                f"{output_note(item.log)}"
            )
        elif isinstance(item, NotPlanned) and item.status is Status.FAILED:
            console.err(f"{item.stack}: failed: {item.sentence}{output_note(item.log)}")
            remedy = remedies.find(item.reason)
            if remedy and remedy.line() not in item.reason:
                console.err(f"  {remedy.line()}")
        elif isinstance(item, NotPlanned) and item.status is not Status.WAITING:
            console.err(f"{item.stack}: {item.status.value}: {item.reason}")
