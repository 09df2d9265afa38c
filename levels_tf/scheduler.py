"""Run an action on stacks in dependency order, independent ones in parallel.

A stack starts once everything it depends on succeeded; when a stack fails,
the stacks that depend on it (directly or not) are skipped, and its
siblings carry on.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from typing import Any, Callable

from . import process
from .stacks import Stack

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


@dataclass(frozen=True)
class Outcome:
    stack: str
    status: str
    value: Any = None
    error: BaseException | None = None


def run(stacks: list[Stack], action: Callable[[Stack], Any], parallelism: int = 4) -> dict[str, Outcome]:
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
                    outcomes[stack.name] = Outcome(stack.name, SKIPPED, f"{blocker} did not succeed")
                elif all(d in outcomes for d in deps) and len(running) < max(1, parallelism):
                    pending.remove(stack)
                    running[pool.submit(action, stack)] = stack
            if not running:
                continue
            try:
                done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
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


def _stop(running: dict[concurrent.futures.Future, Stack]) -> None:
    """Ctrl-C reaches the main thread only, and the programs the workers run are
    in process groups of their own (process.stream): pass it on, and wait until
    every worker is done (one may start its next program meanwhile)."""
    for future in running:
        future.cancel()
    while not all(future.done() for future in running):
        process.interrupt_running()
        concurrent.futures.wait(running, timeout=0.5)
