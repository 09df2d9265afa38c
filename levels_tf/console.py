"""The only place that writes to the terminal."""

from __future__ import annotations

import click


def out(text: str = "", nl: bool = True) -> None:
    click.echo(text, nl=nl)


def err(text: str) -> None:
    click.echo(text, err=True)


def lines(rows: list[str], *, to_err: bool = False) -> None:
    for row in rows:
        click.echo(row, err=to_err)


def confirm(question: str) -> bool:
    """Ask a yes/no question; no answer (no terminal) means no."""
    try:
        return click.confirm(question, default=False)
    except click.Abort:
        return False
