from __future__ import annotations

from pathlib import Path

from .. import console, loader, resources, writer
from ..github_oidc import REPOSITORY_PLACEHOLDER


def starter_text() -> str:
    """The starter infra.yaml: the reference configuration, whose CI roles
    trust no real repository: its ci.github.repository is
    github_oidc.REPOSITORY_PLACEHOLDER, which validation refuses until the user
    writes theirs (a starter applied unedited would otherwise let the
    workflows of a stranger's repository deploy)."""
    text = resources.starter_config().read_text(encoding="utf-8")
    document = loader.parse(text, "infra.yaml")
    path = ("ci", "github", "repository")
    value = document.data["ci"]["github"]["repository"]
    line, column = document.where(path)
    lines = text.splitlines(keepends=True)
    row = lines[line - 1]
    start = column - 1
    if row[start : start + len(value)] != value:  # the reference writes it unquoted
        raise ValueError(f"infra.yaml:{line}:{column}: {value!r} is not written plainly")
    end = start + len(value)
    padding = len(row[end:]) - len(row[end:].lstrip(" "))
    written = f'"{REPOSITORY_PLACEHOLDER}"'
    spaces = " " * max(1, len(value) + padding - len(written)) if row[end:].strip() else ""
    lines[line - 1] = row[:start] + written + spaces + row[end + padding :]
    return "".join(lines)


def init(directory: Path, as_json: bool = False) -> int:
    """Write the commented starter infra.yaml (starter_text), its JSON Schema
    and the example provisioning scripts it names to `directory`.

    With `as_json`, ends with `{"directory": str, "written": [str, ...]}`:
    the paths written, each under `directory`."""
    files = {
        "infra.yaml": starter_text(),
        "infra.schema.json": resources.schema_file().read_text(encoding="utf-8"),
    }
    for script in resources.starter_scripts():
        files[f"scripts/{script.name}"] = script.read_text(encoding="utf-8")
    created = writer.create_new(directory, files)
    for path in created:
        console.out(f"wrote {path}")
    config = directory / "infra.yaml"
    here = directory.resolve() == Path.cwd().resolve()
    console.name_config(None if here else str(config))
    console.out(
        console.with_config(
            f"next: edit {config} (ci.github.repository first: write your repository), "
            "then run `levels-tf validate` and `levels-tf render`"
        )
    )
    if as_json:
        console.report_json({"directory": str(directory), "written": [str(p) for p in created]})
    return 0
