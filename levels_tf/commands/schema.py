from __future__ import annotations

from .. import console
from ..schema import json_schema_text


def schema() -> int:
    """Print the JSON Schema of infra.yaml."""
    console.out(json_schema_text(), nl=False)
    return 0
