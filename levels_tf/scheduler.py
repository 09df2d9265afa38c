"""Run an action on stacks in dependency order, independent ones in parallel.

A stack starts once everything it depends on succeeded; when a stack fails,
the stacks that depend on it (directly or not) are skipped, and its
siblings carry on.
"""

from __future__ import annotations

import concurrent.futures
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import process
from .stacks import Stack


class Status(str, enum.Enum):
    """What became of a stack's action. A str, so it compares equal to its value."""

    OK = "ok"
    FAILED = "failed"  # the action raised; `error` says why
    SKIPPED = "skipped"  # a stack it depends on did not succeed; `value` names it


OK, FAILED, SKIPPED = Status.OK, Status.FAILED, Status.SKIPPED


@dataclass(frozen=True)
class Outcome:
    stack: str
    status: Status
    value: Any = None
    error: BaseException | None = None


def run(
    stacks: list[Stack], action: Callable[[Stack], Any], parallelism: int = 4
) -> dict[str, Outcome]:
    """Outcomes by stack name, in the order of `stacks`."""
    selected = {stack.name for stack in stacks}
    pending = list(stacks)
    outcomes: dict[str, Outcome] = {}
    running: dict[concurrent.futures.Future, Stack] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        while pending or running:
            for stack in list(pending):
                deps = [d for d in stack.depends_on if d in selected]
                if any(outcomes.get(d) and outcomes[d].status != OK for d in deps):
                    pending.remove(stack)
                    blocker = next(d for d in deps if outcomes.get(d) and outcomes[d].status != OK)
                    outcomes[stack.name] = Outcome(
                        stack.name, SKIPPED, f"{blocker} did not succeed"
                    )
                elif all(d in outcomes for d in deps) and len(running) < max(1, parallelism):
                    pending.remove(stack)
                    running[pool.submit(action, stack)] = stack
            if not running:
                continue
            try:
                done, _ = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED
                )
            except KeyboardInterrupt:
                _stop(running)
                raise
            for future in done:
                stack = running.pop(future)
                error = future.exception()
                if error is None:
                    outcomes[stack.name] = Outcome(stack.name, OK, future.result())
                elif isinstance(error, KeyboardInterrupt):
                    raise error
                else:
                    outcomes[stack.name] = Outcome(stack.name, FAILED, error=error)
    return {stack.name: outcomes[stack.name] for stack in stacks}


def waves(stacks: list[Stack]) -> list[list[Stack]]:
    """`stacks` in waves: the first holds those depending on none of `stacks`,
    each next one those whose dependencies among `stacks` are all in earlier
    waves. Order within a wave is that of `stacks`; dependencies outside
    `stacks` are taken as met. Raises ValueError on a dependency cycle."""
    placed: dict[str, int] = {}
    names = {stack.name for stack in stacks}
    pending = list(stacks)
    result: list[list[Stack]] = []
    while pending:
        wave = [s for s in pending if all(d in placed for d in s.depends_on if d in names)]
        if not wave:
            raise ValueError(
                "stacks depend on each other in a cycle: " + ", ".join(s.name for s in pending)
            )
        for stack in wave:
            placed[stack.name] = len(result)
            pending.remove(stack)
        result.append(wave)
    return result


def _stop(running: dict[concurrent.futures.Future, Stack]) -> None:
    """Ctrl-C reaches the main thread only, and the programs the workers run are
    in process groups of their own (process.stream): pass it on, and wait until
    every worker is done (one may start its next program meanwhile)."""
    for future in running:
        future.cancel()
    while not all(future.done() for future in running):
        process.interrupt_running()
        concurrent.futures.wait(running, timeout=0.5)
