from __future__ import annotations

import time
from pathlib import Path

from .. import affected, console, plan_report, progress, scheduler, state_lock
from ..errors import UsageError
from ..options import RenderOptions
from ..plan_summary import NotPlanned, Status
from ..progress import watcher
from ..stacks import Stack
from ..terraform import EngineChoice
from ..workspace import Workspace, ensure_function_packages, open_workspace, stale_plan_reason
from .plan import item_of, plan_stacks, report_not_planned


def apply(
    config_path: Path,
    names: tuple[str, ...],
    all_stacks: bool,
    *,
    options: RenderOptions,
    engine: EngineChoice,
    yes: bool,
    parallelism: int,
    waves: bool = False,
    since: str | None = None,
    as_json: bool = False,
) -> int:
    """Apply the plans `levels-tf plan` saved, and only those.

    Named stacks must each have a fresh saved plan. With --all, the stacks
    that have none (a stack waiting for another's first apply has none) are
    left for the next round, which is said; a plan older than infra.yaml or
    the tree still refuses the whole run; so with `since`, the stacks the
    changes since that commit touch (none: nothing to do). With `waves`,
    plan and apply wave by wave instead (see `walk_waves`).

    With `as_json`, ends with the document `report` describes, and never
    asks: where a question would be asked without `yes`, it refuses
    (UsageError, exit 2) before applying anything it would ask about."""
    workspace = open_workspace(config_path, names, all_stacks, options, engine, since=since)
    if since is not None:
        console.err(affected.describe(workspace.stacks, since))
        if not workspace.stacks:
            if as_json:
                console.report_json(report([]))
            return 0
    if waves:
        return walk_waves(workspace, yes=yes, parallelism=parallelism, as_json=as_json)
    reasons = {stack.name: stale_plan_reason(workspace, stack) for stack in workspace.stacks}
    unplanned = (
        [s.name for s in workspace.stacks if not workspace.plan_file(s).exists()]
        if all_stacks or since is not None
        else []
    )
    refused = {name: reason for name, reason in reasons.items() if reason and name not in unplanned}
    if refused:
        for name, reason in refused.items():
            console.err(f"{name}: {reason}")
        raise UsageError(
            "nothing was applied: every stack needs a fresh saved plan; run `levels-tf plan` "
            "for the stacks above, review, then apply"
        )
    ready = [stack for stack in workspace.stacks if not reasons[stack.name]]
    if not ready:
        raise UsageError(
            "nothing to apply: no stack has a saved plan; run `levels-tf plan --all` first"
        )
    production = [stack.name for stack in ready if workspace.production(stack)]
    if (
        production
        and not yes
        and not _agreed(
            f"apply the saved plans of production stacks {', '.join(production)}?", as_json
        )
    ):
        raise UsageError("not applied: production needs a yes (or --yes)")
    outcomes = apply_stacks(workspace, ready, parallelism)
    if as_json:
        rows = _outcome_rows(outcomes)
        rows += [_row(name, "not planned", error="no saved plan") for name in unplanned]
        console.report_json(report(rows))
    if unplanned:
        console.out(f"not applied, no saved plan: {', '.join(unplanned)}")
        console.out(
            console.with_config(
                "next: `levels-tf plan --all`, then `levels-tf apply --all` (a stack waiting for the ones applied now can plan)"
            )
        )
    return 0 if all(o.status is scheduler.OK for o in outcomes.values()) else 1


def report(stacks: list[dict], waves: list[list[str]] | None = None) -> dict:
    """The JSON document of `apply --json`: `{"stacks": [{"name": str,
    "status": "applied" | "failed" | "skipped" | "not planned" | "waiting" |
    "blocked" | "unchanged", "seconds": float | null (an applied stack's),
    "error": str | null (why it was not applied)}], "waves": [[stack name]]
    | null}`; `waves` (the stacks of each wave, in order) only with --waves."""
    return {"stacks": stacks, "waves": waves}


def _row(name: str, status: str, seconds: float | None = None, error: str | None = None) -> dict:
    return {
        "name": name,
        "status": status,
        "seconds": None if seconds is None else round(seconds, 1),
        "error": error,
    }


def _outcome_rows(outcomes: dict[str, scheduler.Outcome]) -> list[dict]:
    """A report row per outcome of apply_stacks."""
    rows = []
    for name, outcome in outcomes.items():
        if outcome.status is scheduler.OK:
            rows.append(_row(name, "applied", seconds=outcome.value))
        else:
            item = item_of(outcome)
            reason = item.reason if isinstance(item, NotPlanned) else None
            rows.append(_row(name, outcome.status.value, error=reason))
    return rows


def _agreed(question: str, as_json: bool) -> bool:
    """The user's yes to `question`; with --json nothing is read from stdin,
    so the question is refused: UsageError naming --yes."""
    if as_json:
        raise UsageError(
            f"not applied: --json reads no answer to '{question}'; pass --yes to go ahead unasked"
        )
    return console.confirm(question)


def apply_stacks(
    workspace: Workspace, stacks: list[Stack], parallelism: int
) -> dict[str, scheduler.Outcome]:
    """Apply the saved plans of `stacks` in dependency order, a line per stack
    applied and one per stack that failed or was skipped; outcomes by name
    (an applied stack's value is its seconds)."""

    def action(stack: Stack) -> float:
        start = time.monotonic()
        board.start(stack.name)
        with state_lock.watch(workspace, stack):
            workspace.terraform.apply(
                workspace.folder(stack), on_event=watcher(board, stack.name, start)
            )
        workspace.plan_file(stack).unlink(missing_ok=True)
        return time.monotonic() - start

    with progress.view([stack.name for stack in stacks], "applying") as board:
        outcomes = scheduler.run(stacks, action, parallelism)
        for name, outcome in outcomes.items():
            state = {scheduler.OK: progress.DONE, scheduler.FAILED: progress.FAILED}
            board.finish(name, state.get(outcome.status, progress.SKIPPED))
    for name, outcome in outcomes.items():
        if outcome.status is scheduler.OK:
            console.out(f"{name}: applied in {outcome.value:.0f}s")
    report_not_planned([item_of(o) for o in outcomes.values() if o.status is not scheduler.OK])
    return outcomes


def walk_waves(workspace: Workspace, *, yes: bool, parallelism: int, as_json: bool = False) -> int:
    """A first bring-up (or any run) in one go, keeping the reviewed-plan rule:
    for each wave of `scheduler.waves`, plan its stacks, show the summary, ask
    (unless `yes`), apply the plans with changes, then go on to the next wave,
    whose plans read what this one applied.

    A stack that fails, is skipped, waits, or whose plan is blocked (it would
    replace or destroy what holds data in production) is not applied, and the
    stacks depending on it are skipped. A no to the question stops the walk
    (UsageError): the plans of that wave stay saved for `levels-tf apply`.
    Exit 0 when every stack was applied or had nothing to change, else 1.
    With `as_json`, ends with `report`'s document, with the waves."""
    for path in ensure_function_packages(workspace):
        console.err(f"built {path}")
    all_waves = scheduler.waves(workspace.stacks)
    not_done: dict[str, str] = {}  # stack -> why it was not applied
    rows: dict[str, dict] = {}  # stack -> its row of the report
    for number, wave in enumerate(all_waves, 1):
        console.out(
            f"wave {number} of {len(all_waves)}: planning {', '.join(s.name for s in wave)}"
        )
        skipped = {}
        for stack in wave:
            blockers = [d for d in stack.depends_on if d in not_done]
            if blockers:
                skipped[stack.name] = NotPlanned(
                    stack.name,
                    Status.SKIPPED,
                    f"{blockers[0]} was not applied",
                    after=tuple(blockers),
                )
        planned = iter(
            plan_stacks(
                workspace, [s for s in wave if s.name not in skipped], parallelism=parallelism
            )
        )
        items = [skipped.get(stack.name) or next(planned) for stack in wave]
        console.out(console.with_config(plan_report.text(items)))
        report_not_planned(items)
        ready = []
        for stack, item in zip(wave, items, strict=False):
            if isinstance(item, NotPlanned):
                not_done[stack.name] = item.status.value
                rows[stack.name] = _row(stack.name, item.status.value, error=item.reason)
            elif item.blocked:
                not_done[stack.name] = "blocked"
                rows[stack.name] = _row(
                    stack.name, "blocked", error="it would replace or destroy what holds data"
                )
                console.err(
                    f"{stack.name}: not applied: it would replace or destroy what holds data; review it with "
                    f"`levels-tf plan --allow-destroy {stack.name}`, then `levels-tf apply {stack.name}`"
                )
            elif item.has_changes:
                ready.append(stack)
            else:
                rows[stack.name] = _row(stack.name, "unchanged")
        if not ready:
            continue
        named = ", ".join(
            f"{s.name} (production)" if workspace.production(s) else s.name for s in ready
        )
        if not yes and not _agreed(f"apply wave {number} of {len(all_waves)}: {named}?", as_json):
            raise UsageError(
                f"stopped before applying wave {number}: its plans are saved for `levels-tf apply`"
            )
        outcomes = apply_stacks(workspace, ready, parallelism)
        rows.update((row["name"], row) for row in _outcome_rows(outcomes))
        for name, outcome in outcomes.items():
            if outcome.status is not scheduler.OK:
                not_done[name] = outcome.status.value
    if as_json:
        ordered = [rows[stack.name] for wave in all_waves for stack in wave if stack.name in rows]
        console.report_json(report(ordered, [[s.name for s in wave] for wave in all_waves]))
    if not_done:
        console.err(
            "not applied: " + ", ".join(f"{name} ({why})" for name, why in not_done.items())
        )
        return 1
    console.out(f"every stack is applied ({len(workspace.stacks)} in {len(all_waves)} waves)")
    return 0
