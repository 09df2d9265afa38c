from __future__ import annotations

from pathlib import Path

from .. import console
from ..stacks import stacks
from ..validation import load_config


def validate(config_path: Path) -> int:
    """Exit 0 when infra.yaml is valid; problems raise ConfigError (exit 2)."""
    config = load_config(config_path)
    infra = config.infra
    console.out(
        f"{config_path}: valid ({len(infra.vpc_groups)} VPC groups, "
        f"{len(infra.all_environments)} environments, {len(stacks(infra))} stacks)"
    )
    return 0
