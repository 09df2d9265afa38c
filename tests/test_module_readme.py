"""Each generated module's README.md: inputs, outputs and resources, read from
the module's own blocks, and kept current by `render` (`render --check` finds
a stale one)."""

from __future__ import annotations

import json
import re

import pytest

from levels_tf import module_readme
from levels_tf.render import module_files, render
from levels_tf.validation import load_config

from .conftest import REFERENCE
from .test_security_invariants import parse

MODULES = sorted(module_files())


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return render(load_config(REFERENCE))


@pytest.fixture(scope="module")
def parsed(files) -> dict[str, dict]:
    return parse({path: text for path, text in files.items() if path.startswith("modules/")})


def _rows(readme: str, section: str) -> dict[str, list[str]]:
    """The table under `## section`: first column (unquoted) -> the other cells."""
    text = readme.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in text.splitlines():
        if not line.startswith("| `"):  # the blank line, the heading row, its rule
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def _text(value: str) -> str:
    """The text of a description as python-hcl2 gives it: a heredoc, or escaped."""
    if value.startswith("<<"):
        return "\n".join(line.strip() for line in value.splitlines()[1:-1])
    return json.loads(f'"{value}"')


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


@pytest.mark.parametrize("module", MODULES)
def test_readme_lists_every_variable_with_type_and_description(files, parsed, module):
    readme = files[f"modules/{module}/README.md"]
    variables = parsed[f"modules/{module}/variables.tf"].get("variable", [])
    inputs = _rows(readme, "Inputs")
    declared = {name: body for block in variables for name, body in block.items()}
    assert sorted(inputs) == sorted(declared)
    for name, body in declared.items():
        kind, default, description = inputs[name]
        assert description == _cell(_text(body["description"])), name
        # python-hcl2 writes types as ${...}; the README as written in the module
        expected_type = re.sub(r"\s+", "", body["type"].removeprefix("${").removesuffix("}"))
        assert re.sub(r"[\s,`]", "", kind) == expected_type.replace(",", ""), name
        assert (default == "required") == ("default" not in body), name


@pytest.mark.parametrize("module", MODULES)
def test_readme_lists_every_output_and_resource_type(files, parsed, module):
    readme = files[f"modules/{module}/README.md"]
    bodies = [body for path, body in parsed.items() if path.startswith(f"modules/{module}/")]
    outputs = {name for body in bodies for block in body.get("output", []) for name in block}
    assert sorted(_rows(readme, "Outputs")) == sorted(outputs)
    types = {kind for body in bodies for block in body.get("resource", []) for kind in block}
    assert sorted(_rows(readme, "Resources")) == sorted(types)


def test_readme_names_the_modules_a_module_calls(files):
    assert _rows(files["modules/cdn/README.md"], "Modules") == {"waf": ["`../waf`"]}
    assert _rows(files["modules/load-balancer/README.md"], "Modules") == {
        "access_logs": ["`../log-bucket`"],
        "waf": ["`../waf`"],
    }


def test_readme_changes_with_a_variable_description(files):
    module = {
        name.removeprefix("modules/waf/"): text
        for name, text in files.items()
        if name.startswith("modules/waf/") and name.endswith(".tf")
    }
    before = module_readme.readme("waf", module)
    assert before == files["modules/waf/README.md"]
    old = 'description = "Whether the firewall logs its requests to CloudWatch Logs."'
    assert old in module["variables.tf"]
    module["variables.tf"] = module["variables.tf"].replace(
        old, 'description = "Whether requests | are logged."'
    )
    after = module_readme.readme("waf", module)
    assert after != before
    assert "| `logging` | `bool` | `true` | Whether requests \\| are logged. |" in after


def test_render_check_reports_a_stale_readme(run, reference_copy):
    assert run("render", config=reference_copy).exit_code == 0
    readme = reference_copy.parent / "modules" / "queue" / "README.md"
    readme.write_text(readme.read_text().replace("dead-letter", "dead letter"))
    result = run("render", "--check", config=reference_copy)
    assert result.exit_code == 1
    assert "modules/queue/README.md" in result.stdout + result.stderr
    assert run("render", config=reference_copy).exit_code == 0
    assert run("render", "--check", config=reference_copy).exit_code == 0
