"""The JSON Schema of infra.yaml, for editors and other tools."""

from __future__ import annotations

import json

from . import typed
from .model import OVERRIDABLE, Infra

TITLE = "levels-tf infra.yaml"


def json_schema() -> dict:
    schema = typed.json_schema(Infra, TITLE)
    # Overrides may also be written with dotted keys: services.api.scaling: {...}
    sections = "|".join(OVERRIDABLE)
    schema["$defs"]["Overrides"]["patternProperties"] = {f"^({sections})\\.[^.]+(\\.[^.]+)*$": {}}
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
