from __future__ import annotations

from pathlib import Path

from .. import console, overview, writer
from .. import diagram as drawing
from ..errors import UsageError
from ..validation import load_config, require_environment

FORMATS = ("png", "svg")


def default_path(config_path: Path, env: str | None, output_format: str) -> Path:
    """docs/architecture[-ENV].<format> beside infra.yaml."""
    name = f"architecture-{env}" if env else "architecture"
    return config_path.parent / "docs" / f"{name}.{output_format}"


def image_format(output_format: str | None, out: Path | None) -> str:
    """The format to draw: `output_format` when given, else the suffix of
    `out` (.png or .svg), else png. A suffix that is neither, or one that
    contradicts `output_format`, is a UsageError (exit 2), raised before
    anything is drawn or written."""
    if out is None:
        return output_format or "png"
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        wanted = output_format or "png"
        raise UsageError(
            f"--out {out}: diagram writes .png or .svg images; "
            f"name the file {out.with_suffix('.' + wanted).name} or pick another --out"
        )
    if output_format is not None and suffix != output_format:
        raise UsageError(
            f"--out {out} does not match --format {output_format}; "
            f"name the file {out.with_suffix('.' + output_format).name} or leave out --format"
        )
    return suffix


def diagram(
    config_path: Path,
    env: str | None,
    output_format: str | None,
    out: Path | None,
    as_json: bool = False,
) -> int:
    """Draw the architecture infra.yaml describes (all of it, or environment
    `env` in its VPC) as a PNG or SVG with Graphviz's dot; write it to `out`.
    The format is `output_format`, or the suffix of `out` (image_format).

    An unknown `env`, or an `out` whose suffix is not the format, is a
    UsageError (exit 2); a missing dot a ToolError (exit 1) saying to
    install Graphviz."""
    output_format = image_format(output_format, out)
    config = load_config(config_path)
    if env is not None:
        require_environment(config, env)
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
