"""Shell completion of the names infra.yaml defines: stacks, images,
functions and VPC groups, for click's completion (bash, zsh, fish).

A completion runs on every Tab press, before the command, with whatever the
user has typed so far: it must never fail, print or take long. A
configuration that does not load completes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem


def _infra(ctx: click.Context) -> Any | None:
    """The model of the infra.yaml named by -c (or the default), or None when it does not load."""
    from .errors import LevelsError
    from .validation import load_config

    config = ctx.find_root().params.get("config") or "infra.yaml"
    try:
        return load_config(Path(config)).infra
    except (LevelsError, OSError, ValueError):
        return None


def _names(pick: Callable[[Any], list[tuple[str, str]]]):
    """A click `shell_complete` callback offering the (name, help) pairs
    `pick` takes from the model, those starting with what was typed."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
        infra = _infra(ctx)
        if infra is None:
            return []
        taken = set(ctx.params.get(param.name or "") or ())
        return [
            CompletionItem(name, help=help_text)
            for name, help_text in pick(infra)
            if name.startswith(incomplete) and name not in taken
        ]

    return complete


def _stacks(infra: Any) -> list[tuple[str, str]]:
    from .stacks import stacks

    return [(s.name, f"{s.kind} stack of group {s.group}") for s in stacks(infra)]


stack_names = _names(_stacks)
image_names = _names(lambda infra: [(name, "image") for name in infra.images])
function_names = _names(lambda infra: [(name, "function") for name in infra.functions])
group_names = _names(lambda infra: [(name, "VPC group") for name in infra.vpc_groups])
environment_names = _names(lambda infra: [(name, "environment") for name in infra.all_environments])
