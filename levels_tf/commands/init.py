from __future__ import annotations

from pathlib import Path

from .. import console, resources, writer


def init(directory: Path) -> int:
    """Write the commented starter infra.yaml, its JSON Schema and the example
    provisioning scripts it names to `directory`."""
    files = {
        "infra.yaml": resources.starter_config().read_text(encoding="utf-8"),
        "infra.schema.json": resources.schema_file().read_text(encoding="utf-8"),
    }
    for script in resources.starter_scripts():
        files[f"scripts/{script.name}"] = script.read_text(encoding="utf-8")
    created = writer.create_new(directory, files)
    for path in created:
        console.out(f"wrote {path}")
    console.out("next: edit infra.yaml, then run `levels-tf validate` and `levels-tf render`")
    return 0
