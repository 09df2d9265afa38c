"""The JSON Schema of infra.yaml, for editors and other tools."""

from __future__ import annotations

import json

from .model import Infra

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict:
    schema = Infra.model_json_schema(mode="validation")
    return {"$schema": SCHEMA_DIALECT, **schema}


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
