from __future__ import annotations

from pathlib import Path

from .. import console
from ..stacks import stacks
from ..validation import load_config


def validate(config_path: Path) -> int:
    """Exit 0 when infra.yaml is valid; problems raise ConfigError (exit 2)."""
    config = load_config(config_path)
    infra = config.infra
    counts = ", ".join(
        _count(n, word)
        for n, word in (
            (len(infra.vpc_groups), "VPC group"),
            (len(infra.all_environments), "environment"),
            (len(stacks(infra)), "stack"),
        )
    )
    console.out(f"{config_path}: valid ({counts})")
    return 0


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
