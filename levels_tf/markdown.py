"""Markdown for a pull-request comment that keeps within GitHub's size limit.

Pure functions, no I/O, shared by the reports that write comments
(plan_report.py, scan_report.py). A comment is a head, table rows and
lists; `fit` puts in what fits of each, in that order, and counts what it
left out in a closing '… N more not shown' line.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

GITHUB_COMMENT_LIMIT = 65536
"""The most characters GitHub accepts in a pull-request comment."""

Section = tuple[str, list[str], str]
"""A list in a comment: (opening, items, closing)."""


def check_limit(limit: int) -> None:
    """ValueError unless 0 < `limit` <= GITHUB_COMMENT_LIMIT (characters)."""
    if not 0 < limit <= GITHUB_COMMENT_LIMIT:
        raise ValueError(f"limit must be within 1..{GITHUB_COMMENT_LIMIT}, not {limit}")


class Budget:
    """Text that never grows past `limit` characters."""

    def __init__(self, limit: int):
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def room(self) -> int:
        return self.limit - self.size

    def add(self, piece: str) -> bool:
        if len(piece) > self.room():
            return False
        self.parts.append(piece)
        self.size += len(piece)
        return True


def code(value: str) -> str:
    """`value` as inline code, whatever backticks it holds."""
    fence = "``" if "`" in value else "`"
    pad = " " if "`" in value else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def cell(value: str) -> str:
    """`value` safe inside a table cell."""
    return value.replace("|", "\\|")


def folded(title: str, items: list[str], *, fold: bool) -> Section:
    """A list under a bold title, or folded in <details> when `fold`."""
    if fold:
        return f"\n<details><summary>{html.escape(title)}</summary>\n\n", items, "\n</details>\n"
    return f"\n**{title}:**\n\n", items, ""


def _more(count: int) -> str:
    return f"- … {count} more not shown\n"


def list_section(budget: Budget, opening: str, items: Sequence[str], closing: str) -> int:
    """Adds `opening`, as many `items` as fit with a '… N more' line, and `closing`.
    Returns how many items were left out because not even the opening fitted."""
    reserve = len(closing) + len(_more(len(items)))
    if not items or len(opening) + len(items[0]) + reserve > budget.room():
        return len(items)  # not even one item: no section at all
    budget.add(opening)
    shown = 0
    for item in items:
        if len(item) + reserve > budget.room():
            break
        budget.add(item)
        shown += 1
    if shown < len(items):
        budget.add(_more(len(items) - shown))
    budget.add(closing)
    return 0


def fit(limit: int, head: str, rows: Sequence[str], lists: Sequence[Section]) -> str:
    """`head`, then the table `rows` in order until one does not fit, then
    each of `lists` (see list_section); at most `limit` characters.

    What is left out whole (rows, lists) is counted in a closing '… N more
    not shown' line, for which room is kept from the start; a `limit` too
    small for `head` gives the start of `head` and '…'."""

    everything = len(rows) + sum(len(entries) for _, entries, _ in lists)

    def trailer(count: int) -> str:
        return f"\n… {count} more not shown (this comment keeps within {limit} characters).\n"

    budget = Budget(limit - len(trailer(everything)))
    if not budget.add(head):
        cut = "\n…\n"  # a limit too small for the table's heading: cut the heading
        return (head[: max(0, limit - len(cut))] + cut)[:limit]
    left_out = 0
    for number, piece in enumerate(rows):
        if not budget.add(piece):
            left_out += len(rows) - number
            break
    for opening, entries, closing in lists:
        left_out += list_section(budget, opening, entries, closing)
    out = "".join(budget.parts)
    if left_out:
        out += trailer(left_out)
    return out


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table, one line each: the header, the
    separator, then one line per row. Cells are made safe with `cell`;
    newlines inside a cell become spaces."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell(" ".join(c.split())) for c in cells) + " |"

    return [line(header), "| " + " | ".join("---" for _ in header) + " |"] + [
        line(row) for row in rows
    ]
