from __future__ import annotations

from pathlib import Path

from .. import console
from ..stacks import stacks
from ..validation import load_config


def validate(config_path: Path, as_json: bool = False) -> int:
    """Exit 0 when infra.yaml is valid; problems raise ConfigError (exit 2).

    With `as_json`, ends with `{"config": str, "valid": true, "vpc_groups":
    [str], "environments": [str], "stacks": [str] (dependency order),
    "images": [str], "functions": [str], "warnings": [str]}` (an invalid
    file is the error document of errors.document instead). Warnings
    (validation.Config.advisories: valid, but almost surely not meant) go
    to stderr as `file:line:col: warning: path: message`."""
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
    warnings = [problem.format("warning") for problem in config.advisories]
    console.lines(warnings, to_err=True)
    console.out(f"{config_path}: valid ({counts})")
    if as_json:
        console.report_json(
            {
                "config": str(config_path),
                "valid": True,
                "vpc_groups": list(infra.vpc_groups),
                "environments": list(infra.all_environments),
                "stacks": [stack.name for stack in stacks(infra)],
                "images": list(infra.images),
                "functions": list(infra.functions),
                "warnings": warnings,
            }
        )
    return 0


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
