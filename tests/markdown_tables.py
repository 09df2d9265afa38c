"""What makes a GitHub-flavoured markdown table a table, checked line by line.

GFM (https://github.github.com/gfm/#tables-extension-): a table is a header
row, then at once a delimiter row (`| --- | --: |`) with as many cells, then
body rows, up to the first blank line; every line before that blank line is
a row of the table, whatever it holds. So a caption written between the
delimiter row and the body becomes a row, and the body after a blank line is
no table at all but a paragraph of pipes. Fenced code blocks are left alone.
"""

from __future__ import annotations

import re

DELIMITER = re.compile(r"\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*")
FENCE = re.compile(r"\s*(```|~~~)")
# Lines that begin another block (HTML, heading, quote, list): they end a table.
BLOCK_START = re.compile(r"\s{0,3}(<|#{1,6}\s|>|[-*+]\s|\d+[.)]\s)")


def cells(row: str) -> int:
    """How many cells `row` has: its unescaped pipes, less the outer ones."""
    inner = row.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return len(re.split(r"(?<!\\)\|", inner))


def problems(text: str) -> list[str]:
    """Every way the tables of markdown `text` are broken, as `line N: what`.

    A table starts at a line beginning with `|`; its next line must be a
    delimiter row with the header's cell count; each later line up to a
    blank one, or one that begins another block (HTML, heading, quote,
    list), must be a row (`| ... |`) with that count. A row anywhere else is
    a table's body cut from its head."""
    found: list[str] = []
    lines = text.splitlines()
    fenced = False
    columns = 0  # the columns of the table the line before belongs to; 0: none
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1  # `number` is now the line's 1-based number, and the next line's index
        if FENCE.match(line):
            fenced, columns = not fenced, 0
            continue
        if fenced:
            continue
        if not line.strip():
            columns = 0
            continue
        row = line.strip()
        if columns and BLOCK_START.match(line):
            columns = 0
        if columns:
            if not row.startswith("|"):
                found.append(f"line {number}: {line!r} is inside the table above it")
            elif DELIMITER.fullmatch(row):
                found.append(f"line {number}: a second delimiter row in one table")
            elif cells(row) != columns:
                found.append(f"line {number}: {cells(row)} cells in a table of {columns} columns")
            continue
        if not row.startswith("|"):
            continue
        if DELIMITER.fullmatch(row):
            found.append(f"line {number}: a delimiter row without a header row")
            continue
        following = lines[number].strip() if number < len(lines) else ""
        if not DELIMITER.fullmatch(following):
            found.append(f"line {number}: a table row not under a header and delimiter row")
            continue
        if cells(following) != cells(row):
            found.append(
                f"line {number}: header of {cells(row)} cells, delimiter of {cells(following)}"
            )
        columns = cells(row)
        number += 1  # the delimiter row
    return found
