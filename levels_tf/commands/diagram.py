from __future__ import annotations

from pathlib import Path

from .. import console, overview, writer
from .. import diagram as drawing
from ..errors import UsageError
from ..validation import load_config


def default_path(config_path: Path, env: str | None, output_format: str) -> Path:
    """docs/architecture[-ENV].<format> beside infra.yaml."""
    name = f"architecture-{env}" if env else "architecture"
    return config_path.parent / "docs" / f"{name}.{output_format}"


def diagram(
    config_path: Path,
    env: str | None,
    output_format: str,
    out: Path | None,
    as_json: bool = False,
) -> int:
    """Draw the architecture infra.yaml describes (all of it, or environment
    `env` in its VPC) as a PNG or SVG with Graphviz's dot; write it to `out`.

    An unknown `env` is a UsageError (exit 2) naming the environments; a
    missing dot a ToolError (exit 1) saying to install Graphviz."""
    config = load_config(config_path)
    environments = config.infra.all_environments
    if env is not None and env not in environments:
        raise UsageError(
            f"--env {env}: no such environment in {config_path}; "
            f"choose one of {', '.join(environments)}"
        )
    view = overview.describe(config)
    drawn = drawing.dot_source(view, env)
    data = drawing.draw(drawn.source, output_format)
    target = out if out is not None else default_path(config_path, env, output_format)
    changed = writer.write_artifact(target, data)
    if as_json:
        console.report_json(
            {
                "path": str(target),
                "format": output_format,
                "environment": env,
                "bytes": len(data),
                "changed": changed,
                "nodes": drawn.nodes,
                "edges": [
                    {"from": a, "to": b, "label": label, "ssh": ssh}
                    for a, b, label, ssh in drawn.edges
                ],
            }
        )
    else:
        console.out(
            f"{target}: {len(drawn.nodes)} parts, {len(drawn.edges)} paths, {len(data)} bytes"
            + ("" if changed else " (unchanged)")
        )
    return 0
