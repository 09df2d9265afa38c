"""Reporting plan summaries: for a terminal, for machines, for a pull request.

Pure functions, no I/O. Renderers take every stack asked for, planned
(`StackSummary`) or not (`NotPlanned`: failed, skipped or waiting), in the
order to show them, and return strings (`text`, `markdown`) or plain data
(`as_json`), each stack with its `Status`; `exit_code` follows
`terraform plan -detailed-exitcode`, with 1 for blocked, failed or skipped,
and 2 also for stacks waiting for another's first apply; `next_step` says
what to run for those.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence

from .markdown import GITHUB_COMMENT_LIMIT, cell, check_limit, code, fit, folded
from .plan_summary import Change, Item, NotPlanned, StackSummary, Status, repeated_failures

__all__ = [
    "GITHUB_COMMENT_LIMIT",
    "as_json",
    "exit_code",
    "markdown",
    "next_step",
    "text",
]

_COLUMNS = ("add", "change", "replace", "destroy")


def _split(items: Iterable[Item]) -> tuple[list[StackSummary], list[NotPlanned]]:
    items = list(items)
    return [i for i in items if isinstance(i, StackSummary)], [
        i for i in items if isinstance(i, NotPlanned)
    ]


def exit_code(items: Iterable[Item]) -> int:
    """As `terraform plan -detailed-exitcode`: 0 no changes, 2 changes; 1 when a
    stack failed, was skipped or is blocked; 2 also for a stack waiting for
    another's first apply (work is left, and nothing went wrong)."""
    summaries, not_planned = _split(items)
    if any(s.blocked for s in summaries) or any(
        n.status is not Status.WAITING for n in not_planned
    ):
        return 1
    return 2 if not_planned or any(s.has_changes for s in summaries) else 0


def next_step(items: Iterable[Item]) -> str:
    """What to run for the stacks waiting for another's first apply; "" when none waits.

    A stack waited for that was planned in this run has its plan saved: it
    is applied; one that was not is planned first."""
    items = list(items)
    waiting = [n for n in _split(items)[1] if n.status is Status.WAITING]
    if not waiting:
        return ""
    planned = {s.stack for s in _split(items)[0] if not s.blocked}
    blocked = {s.stack for s in _split(items)[0] if s.blocked}
    first = list(dict.fromkeys(d for n in waiting for d in n.after))
    steps = [f"`levels-tf apply {' '.join(first)}`"]
    unplanned = [d for d in first if d not in planned and d not in blocked]
    if unplanned:
        steps.insert(0, f"`levels-tf plan {' '.join(unplanned)}`")
    if any(d in blocked for d in first):  # its plan was not kept: review it and keep it on purpose
        steps.insert(
            0, f"`levels-tf plan --allow-destroy {' '.join(d for d in first if d in blocked)}`"
        )
    steps.append(f"`levels-tf plan {' '.join(n.stack for n in waiting)}`")
    return (
        "next: "
        + ", then ".join(steps)
        + "; or `levels-tf apply --all --waves` plans and applies wave by wave"
    )


def _totals(summaries: Sequence[StackSummary]) -> dict[str, int]:
    totals = {name: sum(getattr(s, name) for s in summaries) for name in _COLUMNS}
    totals["drift"] = sum(len(s.drift) for s in summaries)
    return totals


def _verb(action: str) -> str:
    """The word a person reads: Terraform's human output says destroy where its JSON says delete."""
    return "destroy" if action == "delete" else action


def _others(summary: StackSummary) -> str:
    parts = [
        f"{n} {word}"
        for n, word in (
            (summary.moved, "moved"),
            (summary.imported, "imported"),
            (summary.forgotten, "forgotten"),
        )
        if n
    ]
    return ", ".join(parts)


def _blocked_sentence(summaries: Sequence[StackSummary]) -> str:
    blocked = [s for s in summaries if s.blocked]
    count = sum(len(s.flagged) for s in blocked)
    names = ", ".join(s.stack for s in blocked)
    noun = "resource that holds data" if count == 1 else "resources that hold data"
    return (
        f"{names} would replace or destroy {count} {noun}; no plan is kept for apply without "
        f"`levels-tf plan --allow-destroy {' '.join(s.stack for s in blocked)}`"
    )


def _note(item: Item) -> str:
    """A planned stack's status beside its counts, when they do not say it."""
    if isinstance(item, NotPlanned):
        return "FAILED" if item.status is Status.FAILED else item.status.words
    if not item.has_changes:
        return "no drift" if item.refresh_only else "no changes"
    return ""


def text(items: Iterable[Item]) -> str:
    """A table for a terminal: one row per stack asked for, its replaces and
    destroys (or why it has no plan) under it, a total, then what blocks and
    what to run next."""
    items = list(items)
    summaries, _ = _split(items)
    with_drift = any(s.drift for s in summaries)
    columns = (*_COLUMNS, "drift") if with_drift else _COLUMNS
    width = max([len("stack"), len("total"), *(len(i.stack) for i in items)])

    def row(name: str, cells: Sequence[object], note: str = "") -> str:
        line = name.ljust(width) + "".join(
            str(cell).rjust(len(column) + 2) for cell, column in zip(cells, columns, strict=False)
        )
        return f"{line}  {note}" if note else line

    lines = [row("stack", columns)]
    repeats = repeated_failures(items)
    for s in items:
        if isinstance(s, NotPlanned):
            lines.append(row(s.stack, ["-"] * len(columns), _note(s)))
            same = repeats.get(s.stack)
            lines.append(f"  the same error as {same}" if same else f"  {s.sentence}")
            continue
        values = [getattr(s, c) for c in _COLUMNS] + ([len(s.drift)] if with_drift else [])
        notes = [
            n
            for n in (
                "BLOCKED" if s.blocked else "",
                "refresh-only" if s.refresh_only else "",
                _others(s),
                _note(s),
            )
            if n
        ]
        lines.append(row(s.stack, values, "  ".join(notes)))
        for c in s.destructive:
            mark = f"  !! {c.stateful}" if c.stateful else ""
            lines.append(f"  {_verb(c.action):<8} {c.address}{mark}")
        for d in s.drift:
            lines.append(f"  drift    {d.action:<7} {d.address}")
        if s.outputs:
            lines.append(f"  outputs  {', '.join(s.outputs)}")
    totals = _totals(summaries)
    lines.append(row("total", [totals[c] for c in columns]))
    if any(s.blocked for s in summaries):
        lines.append("BLOCKED: " + _blocked_sentence(summaries) + ".")
    if next_step(items):
        lines.append(next_step(items))
    return "\n".join(lines) + "\n"


def as_json(items: Iterable[Item]) -> dict:
    """Plain data for machines: every stack asked for with its status; for a
    planned one its counts, changes, drift and outputs, for another its reason
    (and a failure's file and line); the totals, the exit code and what to
    run next (null when nothing waits)."""
    items = list(items)
    summaries, _ = _split(items)

    def change(c: Change) -> dict[str, str | bool]:
        out: dict[str, str | bool] = {"address": c.address, "action": c.action, "type": c.type}
        if c.reason:
            out["reason"] = c.reason
        if c.previous_address:
            out["previous_address"] = c.previous_address
        if c.stateful:
            out["stateful"] = c.stateful
        if c.state_bucket:
            out["state_bucket"] = True
        return out

    def stack(s: Item) -> dict:
        if isinstance(s, NotPlanned):
            return {
                "stack": s.stack,
                "status": s.status.value,
                "reason": s.reason,
                "after": list(s.after),
                "file": s.file or None,
                "line": s.line or None,
            }
        return {
            "stack": s.stack,
            "status": s.status.value,
            "production": s.production,
            "refresh_only": s.refresh_only,
            **{name: getattr(s, name) for name in (*_COLUMNS, "moved", "imported", "forgotten")},
            "has_changes": s.has_changes,
            "blocked": s.blocked,
            "changes": [change(c) for c in s.changes],
            "flagged": [c.address for c in s.flagged],
            "drift": [{"address": d.address, "action": d.action, "type": d.type} for d in s.drift],
            "outputs": list(s.outputs),
        }

    return {
        "stacks": [stack(s) for s in items],
        "total": _totals(summaries),
        "blocked": any(s.blocked for s in summaries),
        "exit_code": exit_code(items),
        "next": next_step(items) or None,
    }


def _item(c: Change, stack: str = "") -> str:
    where = f"{stack}: " if stack else ""
    words = [f"**{_verb(c.action)}**"]
    if c.previous_address:
        words.append(f"from {code(c.previous_address)}")
    if c.reason:
        words.append(f"({c.reason_text})")
    mark = f" — ⚠️ {c.stateful}" if c.stateful else ""
    return f"- {where}{code(c.address)} {' '.join(words)}{mark}\n"


_MARKS: Mapping[Status, str] = {Status.FAILED: "❌", Status.SKIPPED: "⏭️", Status.WAITING: "⏳"}
_REASON_LIMIT = 600
"""Characters of one stack's reason in a comment: a Terraform error's detail can run long."""


def _not_planned_item(n: NotPlanned) -> str:
    reason = " ".join(n.reason.split())
    if len(reason) > _REASON_LIMIT:
        reason = reason[: _REASON_LIMIT - 1] + "…"
    reason = html.escape(reason, quote=False)
    if n.status is Status.FAILED:
        where = f" at {code(n.location)}" if n.location else ""
        return f"- {_MARKS[n.status]} **{n.stack}** failed{where}: {reason}\n"
    if n.status is Status.SKIPPED:
        return f"- {_MARKS[n.status]} **{n.stack}** skipped because {reason}\n"
    return f"- {_MARKS[n.status]} **{n.stack}** {reason}\n"


def markdown(items: Iterable[Item], limit: int = 60000) -> str:
    """A pull-request comment: the table with every stack asked for, the stacks
    without a plan and why, what loses data, then each stack's other replaces
    and destroys, drift and outputs (long lists folded in <details>). Never
    longer than `limit` characters (at most GitHub's 65536).

    Each thing appears in one list only (a change that loses data is listed
    with what loses data, not again under its stack), so what does not fit is
    counted once: in its list's '… N more not shown' line, or, for a whole
    list or table row left out, in the closing '… N more not shown' line."""
    check_limit(limit)
    items = list(items)
    summaries, not_planned = _split(items)
    with_drift = any(s.drift for s in summaries)
    columns = (*_COLUMNS, "drift") if with_drift else _COLUMNS
    drift_report = bool(summaries) and all(s.refresh_only for s in summaries)

    head = [
        "### Terraform drift (refresh-only plan)\n\n" if drift_report else "### Terraform plan\n\n"
    ]
    for status, words in ((Status.FAILED, "Failed"), (Status.SKIPPED, "Skipped")):
        names = [n.stack for n in not_planned if n.status is status]
        if names:
            head.append(
                f"{_MARKS[status]} **{words}**: {', '.join(names)} (not planned; see below).\n\n"
            )
    if any(s.blocked for s in summaries):
        head.append(f"⛔ **Blocked**: {_blocked_sentence(summaries)}.\n\n")
    elif not not_planned and not any(s.has_changes for s in summaries):
        head.append("No changes.\n\n" if not drift_report else "No drift.\n\n")
    step = next_step(items)
    if step:
        head.append(f"{_MARKS[Status.WAITING]} **Next**: {step.removeprefix('next: ')}.\n\n")
    head.append("| stack | " + " | ".join(columns) + " | |\n")
    head.append("| --- | " + " | ".join("--:" for _ in columns) + " | --- |\n")
    rows = []
    for s in items:
        if isinstance(s, NotPlanned):
            rows.append(
                f"| {cell(s.stack)} | "
                + " | ".join("–" for _ in columns)
                + f" | {_MARKS[s.status]} {s.status.words} |\n"
            )
            continue
        values = [getattr(s, c) for c in _COLUMNS] + ([len(s.drift)] if with_drift else [])
        notes = [
            n
            for n in (
                "⛔ blocked" if s.blocked else "",
                f"⚠️ {len(s.flagged)} holding data" if s.flagged else "",
                _others(s),
                _note(s),
            )
            if n
        ]
        rows.append(
            f"| {cell(s.stack)} | " + " | ".join(map(str, values)) + f" | {', '.join(notes)} |\n"
        )
    totals = _totals(summaries)
    total_row = "| **total** | " + " | ".join(f"**{totals[c]}**" for c in columns) + " | |\n"

    lists = []  # (opening, items, closing), in the order they are shown
    if not_planned:
        lists.append(("\n**Not planned:**\n\n", [_not_planned_item(n) for n in not_planned], ""))
    # what holds data comes first, that of blocked stacks before the others
    flagged = [
        _item(c, s.stack) for s in sorted(summaries, key=lambda s: not s.blocked) for c in s.flagged
    ]
    if flagged:
        lists.append(("\n**Replaced or destroyed, and holding data:**\n\n", flagged, ""))
    for s in summaries:
        others = [c for c in s.destructive if not c.stateful]
        if others:
            replace = sum(1 for c in others if c.action == "replace")
            title = f"{s.stack}: {replace} to replace, {len(others) - replace} to destroy"
            if s.flagged:
                title += " (besides those holding data)"
            lists.append(folded(title, [_item(c) for c in others], fold=len(others) > 10))
        drift = [f"- {code(d.address)} **{d.action}**\n" for d in s.drift]
        if drift:
            title = f"{s.stack}: {len(drift)} changed outside Terraform"
            lists.append(folded(title, drift, fold=not s.refresh_only or len(drift) > 10))
        if s.outputs:
            lists.append(
                folded(
                    f"{s.stack}: outputs that change",
                    [f"- {code(n)}\n" for n in s.outputs],
                    fold=len(s.outputs) > 10,
                )
            )

    return fit(limit, "".join(head), [*rows, total_row], lists)
