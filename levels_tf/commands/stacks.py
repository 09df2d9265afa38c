from __future__ import annotations

import json
from pathlib import Path

from .. import console
from ..stacks import stacks as stack_list
from ..validation import load_config


def stacks(config_path: Path, as_json: bool) -> int:
    """The stacks in dependency order, with what each depends on."""
    config = load_config(config_path)
    ordered = stack_list(config.infra)
    if as_json:
        rows = [
            {
                "name": s.name,
                "kind": s.kind,
                "group": s.group,
                "environment": s.environment,
                "depends_on": list(s.depends_on),
                "path": f"stacks/{s.name}",
            }
            for s in ordered
        ]
        console.out(json.dumps(rows, indent=2))
        return 0
    width = max(len(s.name) for s in ordered)
    for s in ordered:
        after = ", ".join(s.depends_on) if s.depends_on else "-"
        console.out(f"{s.name.ljust(width)}  {s.kind:<11}  group {s.group:<12}  after {after}")
    return 0
