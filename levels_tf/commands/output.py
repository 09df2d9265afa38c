from __future__ import annotations

import json
from pathlib import Path

from .. import console
from ..options import RenderOptions
from ..terraform import EngineChoice
from ..workspace import open_workspace


def output(
    config_path: Path,
    stack_name: str,
    name: str | None,
    *,
    options: RenderOptions,
    engine: EngineChoice,
) -> int:
    """A stack's outputs as JSON (values of outputs marked sensitive stay hidden by Terraform)."""
    workspace = open_workspace(config_path, (stack_name,), False, options, engine)
    (stack,) = workspace.stacks
    folder = workspace.folder(stack)
    workspace.init(stack)
    console.out(json.dumps(workspace.terraform.output(folder, name), indent=2, sort_keys=True))
    return 0
