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
