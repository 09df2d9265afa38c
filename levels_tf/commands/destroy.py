from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from .. import console, plan_reading, plan_report, progress, state_lock, teardown
from ..aws import Aws
from ..errors import UsageError
from ..names import log_only_buckets
from ..options import RenderOptions
from ..plan_summary import StackSummary
from ..progress import printer, watcher
from ..stacks import Stack
from ..stacks import stacks as all_stacks
from ..terraform import DESTROY_PLAN, EngineChoice, Event, TerraformError
from ..workspace import Workspace, open_workspace

# Logs keep arriving until the services writing them are gone (access logs are
# delivered minutes late): a destroy that meets a log bucket filled again
# empties it and goes on, this many times.
LOG_REFILLS = 3


@dataclasses.dataclass(frozen=True)
class Consent:
    """What the user allowed beyond destroying the stack itself."""

    allow_production: bool = False
    ignore_dependents: bool = False
    lift_protection: bool = False
    empty_asset_buckets: bool = False


def destroy(
    config_path: Path,
    stack_name: str,
    *,
    confirm: str | None,
    consent: Consent,
    options: RenderOptions,
    engine: EngineChoice,
    as_json: bool = False,
) -> int:
    """Destroy one stack, with guard rails; 0 when it is gone.

    Refuses (UsageError, exit 2, nothing changed) without `--confirm STACK`;
    in production without --allow-production; while a stack reading this
    one's outputs still has resources in its state (read through its
    backend), unless --ignore-dependents; while a resource refuses deletion,
    unless --lift-protection (then a reviewed apply turns protection off
    first); while an asset bucket holds objects, unless
    --empty-asset-buckets. Log-only buckets are emptied as part of it.
    It never asks: `--confirm STACK` is the consent, so --json needs nothing more.

    With `as_json`, ends with `{"stack": str, "destroyed": true,
    "production": bool, "seconds": float, "resources": int (in the state
    before), "protection_lifted": [resource address], "emptied": {bucket:
    object versions and delete markers deleted}}`."""
    if confirm != stack_name:
        raise UsageError(f"destroying {stack_name} needs --confirm {stack_name}")
    workspace = open_workspace(config_path, (stack_name,), False, options, engine)
    options = workspace.config.options  # what the tree was rendered with, not only what was given
    (stack,) = workspace.stacks
    production = workspace.production(stack)
    if production and not consent.allow_production:
        raise UsageError(
            f"{stack_name} is a production stack: destroying it also needs --allow-production"
        )
    _check_dependents(workspace, stack, consent)
    folder = workspace.folder(stack)
    workspace.init(stack)
    found = teardown.resources(workspace.terraform.state(folder))
    protected = _check_protection(workspace, stack, found, consent, options)
    aws = Aws(workspace.config.infra.region, options.aws_endpoint)
    to_empty = _buckets_to_empty(workspace, stack_name, found, aws, consent, options)
    start = time.monotonic()
    emptied: dict[str, int] = {}
    try:
        with state_lock.watch(workspace, stack), progress.view([stack_name], "destroying") as board:
            board.start(stack_name)
            try:
                _run_destroy(workspace, stack, protected, to_empty, aws, start, board, emptied)
            except BaseException:
                board.finish(stack_name, progress.FAILED)
                raise
            board.finish(stack_name, progress.DONE)
    except TerraformError as error:
        raise TerraformError(
            f"{stack_name}: {error}", log=error.log, abnormal=error.abnormal
        ) from None
    finally:
        # A destroy (or protection-lifting) plan is saved as DESTROY_PLAN, which
        # `levels-tf apply` never takes; it never outlives this run either. A
        # plan saved for apply is stale once the stack is destroyed.
        (folder / DESTROY_PLAN).unlink(missing_ok=True)
        workspace.plan_file(stack).unlink(missing_ok=True)
    seconds = time.monotonic() - start
    console.out(f"{stack_name}: destroyed in {seconds:.0f}s")
    if as_json:
        console.report_json(
            {
                "stack": stack_name,
                "destroyed": True,
                "production": production,
                "seconds": round(seconds, 1),
                "resources": len(found),
                "protection_lifted": [address for address, _ in protected],
                "emptied": emptied,
            }
        )
    return 0


def _run_destroy(
    workspace: Workspace,
    stack: Stack,
    protected: list[tuple[str, str]],
    to_empty: list[str],
    aws: Aws,
    start: float,
    board: progress.Board,
    emptied: dict[str, int],
) -> None:
    """Lift protection when asked, then plan and apply the destroy, emptying
    `to_empty` before each apply (again when logs filled a bucket meanwhile);
    `board` counts the resources destroyed, `emptied` (bucket -> object
    versions and delete markers deleted) is added to as buckets are emptied."""
    folder = workspace.folder(stack)
    if protected:
        _lift_protection(workspace, stack, protected, start)
        board.start(stack.name)
    for attempt in range(LOG_REFILLS + 1):
        _destroy_plan(workspace, stack, show=attempt == 0)
        for bucket in to_empty:
            count = aws.empty_bucket(bucket)
            emptied[bucket] = emptied.get(bucket, 0) + count
            if count:
                console.out(
                    f"{stack.name}: emptied {bucket} ({count} object versions and delete markers)"
                )
        try:
            workspace.terraform.apply(
                folder, on_event=watcher(board, stack.name, start), plan=DESTROY_PLAN
            )
            return
        except TerraformError as error:
            if "BucketNotEmpty" not in str(error) or not to_empty or attempt == LOG_REFILLS:
                raise
            console.err(
                f"{stack.name}: a bucket filled again while the destroy ran; emptying it and going on"
            )


def _check_dependents(workspace: Workspace, stack: Stack, consent: Consent) -> None:
    """Refuse while a stack that reads `stack`'s outputs has resources in its state."""
    dependents = [s for s in all_stacks(workspace.config.infra) if stack.name in s.depends_on]
    live: dict[str, int] = {}
    for dependent in dependents:
        workspace.init(dependent)
        count = len(teardown.resources(workspace.terraform.state(workspace.folder(dependent))))
        if count:
            live[dependent.name] = count
    if not live:
        return
    listed = ", ".join(f"{name} ({count} resources)" for name, count in live.items())
    if consent.ignore_dependents:
        console.err(
            f"warning: {listed} still read {stack.name}'s outputs; destroying it anyway (--ignore-dependents)"
        )
        return
    raise UsageError(
        f"{stack.name}: {listed} read its outputs and still have resources; nothing was destroyed. "
        "Destroy them first, or give --ignore-dependents to leave them reading a stack that is gone"
    )


def _check_protection(
    workspace: Workspace,
    stack: Stack,
    found: list[teardown.Resource],
    consent: Consent,
    options: RenderOptions,
) -> list[tuple[str, str]]:
    """The protected resources, (address, argument); refuses at once unless
    --lift-protection was given and the stack's variable can turn them off."""
    protected = teardown.protected(found)
    if not protected:
        return protected
    declared = f'variable "{teardown.LIFT_VARIABLE}"'
    if not any(
        declared in path.read_text(encoding="utf-8")
        for path in workspace.folder(stack).glob("*.tf")
    ):
        raise UsageError(
            f"{stack.name}: {', '.join(address for address, _ in protected)} refuse deletion, and nothing "
            "levels-tf renders here turns their protection off: turn it off where they are configured, "
            "apply, then destroy"
        )
    if not consent.lift_protection:
        listed = ", ".join(f"{address} ({argument})" for address, argument in protected)
        raise UsageError(
            f"{stack.name}: {listed} refuse deletion while protected; nothing was destroyed. "
            f"Run `{_command(workspace, stack.name, consent, options, '--lift-protection')}` to turn protection off "
            "in a reviewed apply, then destroy"
        )
    return protected


def _buckets_to_empty(
    workspace: Workspace,
    stack_name: str,
    found: list[teardown.Resource],
    aws: Aws,
    consent: Consent,
    options: RenderOptions,
) -> list[str]:
    """The buckets this destroy must empty: log-only ones, and asset buckets holding
    objects only with --empty-asset-buckets (else refuse, listing them)."""
    names = teardown.buckets(found)
    logs = log_only_buckets(workspace.config.infra)
    assets = sorted(name for name in names if name not in logs and not aws.is_empty(name))
    if assets and not consent.empty_asset_buckets:
        raise UsageError(
            f"{stack_name}: asset buckets {', '.join(assets)} hold objects; nothing was destroyed. "
            "Copy what must be kept, then run "
            f"`{_command(workspace, stack_name, consent, options, '--empty-asset-buckets')}` to delete them with every object"
        )
    return sorted(name for name in names if name in logs) + assets


def _lift_protection(
    workspace: Workspace, stack: Stack, protected: list[tuple[str, str]], start: float
) -> None:
    """Apply a plan that turns deletion protection off, after showing it.

    It may update resources in place (drift the apply restores), never
    create, replace or destroy one: that stack is not up to date, and is
    refused before anything changes."""
    folder = workspace.folder(stack)
    _, events = workspace.terraform.plan(
        folder, variables={teardown.LIFT_VARIABLE: "false"}, out=DESTROY_PLAN
    )
    summary = _summary(stack, events, workspace.production(stack))
    console.out(f"{stack.name}: turning deletion protection off first:")
    console.out(console.with_config(plan_report.text([summary])))
    updated = {c.address for c in summary.changes if c.action == "update"}
    other = sorted(
        c.address for c in summary.changes if c.action not in ("update", "no-op", "read")
    )
    missing = sorted(address for address, _ in protected if address not in updated)
    if other or missing:
        (folder / DESTROY_PLAN).unlink(missing_ok=True)
        why = (
            f"would also change {', '.join(other)}"
            if other
            else f"would not change {', '.join(missing)}"
        )
        raise UsageError(
            f"{stack.name}: turning protection off {why}; nothing was changed. Bring the stack up to date "
            f"first: `levels-tf plan {stack.name}`, then `levels-tf apply {stack.name}`"
        )
    workspace.terraform.apply(folder, on_event=printer(stack.name, start), plan=DESTROY_PLAN)


def _destroy_plan(workspace: Workspace, stack: Stack, *, show: bool) -> None:
    """Save the destroy plan and show what it deletes; a blocked plan is refused."""
    folder = workspace.folder(stack)
    _, events = workspace.terraform.plan(folder, destroy=True, out=DESTROY_PLAN)
    # --allow-production (checked before) is what lets a production destroy
    # lose data; only a block that option does not lift stops it here.
    summary = dataclasses.replace(
        _summary(stack, events, workspace.production(stack)), production=False
    )
    if summary.blocked:
        (folder / DESTROY_PLAN).unlink(missing_ok=True)
        flagged = ", ".join(c.address for c in summary.flagged if c.state_bucket)
        raise UsageError(
            f"{stack.name}: the destroy would delete {flagged}; levels-tf never destroys a state bucket"
        )
    if show:
        console.out(console.with_config(plan_report.text([summary])))
        if workspace.production(stack) and summary.flagged:
            console.out(
                f"{stack.name} is production: {len(summary.flagged)} of these hold data (allowed by --allow-production)"
            )


def _summary(stack: Stack, events: list[Event], production: bool) -> StackSummary:
    """The summary of `stack`'s plan from the events terraform.plan returned."""
    return plan_reading.from_events(stack.name, events, production=production)


def _command(
    workspace: Workspace, stack_name: str, consent: Consent, options: RenderOptions, extra: str
) -> str:
    """The destroy command line that goes on from here, with `extra` and the options given."""
    config = str(workspace.config.path)
    words = [
        "levels-tf",
        *(["-c", config] if config != "infra.yaml" else []),
        "destroy",
        stack_name,
        "--confirm",
        stack_name,
    ]
    flags = {
        "--allow-production": consent.allow_production,
        "--ignore-dependents": consent.ignore_dependents,
        "--lift-protection": consent.lift_protection,
        "--empty-asset-buckets": consent.empty_asset_buckets,
    }
    words += [flag for flag, given in flags.items() if given or flag == extra]
    if options.aws_endpoint:
        words += ["--aws-endpoint", options.aws_endpoint]
    if options.backend:
        words += ["--backend", options.backend]
    return " ".join(words)
