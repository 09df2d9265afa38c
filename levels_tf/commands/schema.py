from __future__ import annotations

from .. import console
from ..config_reference import markdown_table
from ..schema import json_schema, json_schema_text


def schema(output_format: str = "json") -> int:
    """Print the JSON Schema of infra.yaml (`json`), or the configuration
    reference drawn from it (`markdown`, the README's table)."""
    if output_format == "markdown":
        console.out(markdown_table(json_schema()), nl=False)
    else:
        console.out(json_schema_text(), nl=False)
    return 0
