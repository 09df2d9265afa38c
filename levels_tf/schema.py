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
    # The model gives `ci` a default (an empty block, so that rules._ci_trust
    # can point at the VPC groups with the fix), yet no configuration is valid
    # without it: the CI roles would trust no one. Editors and the reference
    # (config_reference, from this schema) say it is required.
    schema["properties"]["ci"].pop("default", None)
    schema["required"].append("ci")
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
