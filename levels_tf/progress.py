"""Turn Terraform's machine-readable events into progress lines for people."""

from __future__ import annotations

import time
from collections.abc import Callable

from . import console

# Event types with a resource and an action worth a line of their own.
_SHOWN = {
    "apply_start": "{verb}...",
    "apply_progress": "still {verbing} ({elapsed}s)",
    "apply_complete": "{done} after {elapsed}s",
    "apply_errored": "failed after {elapsed}s",
    "refresh_start": "reading...",
}
_VERBS = {
    "create": ("creating", "created"),
    "update": ("updating", "updated"),
    "delete": ("destroying", "destroyed"),
    "replace": ("replacing", "replaced"),
    "read": ("reading", "read"),
    "noop": ("checking", "checked"),
}


def printer(stack: str, started: float | None = None) -> Callable[[dict], None]:
    """A callback that prints one line per interesting event, with the stack's name."""
    start = started if started is not None else time.monotonic()

    def on_event(event: dict) -> None:
        kind = event.get("type")
        if kind in _SHOWN:
            hook = event.get("hook") or {}
            address = (hook.get("resource") or {}).get("addr", "?")
            verbing, done = _VERBS.get(hook.get("action", ""), ("working", "done"))
            elapsed = int(hook.get("elapsed_seconds", 0))
            text = _SHOWN[kind].format(
                verb=verbing.capitalize(), verbing=verbing, done=done.capitalize(), elapsed=elapsed
            )
            console.out(f"[{stack} {time.monotonic() - start:4.0f}s] {address}: {text}")
        elif kind == "diagnostic" and event.get("@level") in ("error", "warning"):
            console.err(f"[{stack}] {event['@level']}: {event.get('@message', '')}")

    return on_event
