"""The rendered tree of each configuration equals its expected tree.

A golden case (tests/golden/<case>/) keeps only what it adds to or changes
in the reference rendering, the committed modules/, stacks/ and packer/ of
infra.yaml at the top of the checkout:

- expected/: the files it renders differently from the reference tree, or
  that the tree does not have;
- inherited.txt: every other file it renders, one path a line, expected
  exactly as in the reference tree.

The full expected tree is the two combined, so a shared module file that
renders differently from the reference tree fails every case (and
test_committed_tree_matches_reference).

To update the golden cases after a deliberate change, render the reference
tree first (`levels-tf render`), then rewrite them and review the diff:

    levels-tf render
    python -m pytest tests/test_golden.py --update-golden
    git diff tests/golden
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from levels_tf import writer
from levels_tf.render import render
from levels_tf.validation import load_config

from .conftest import REFERENCE, ROOT

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "infra.yaml").is_file())
INHERITED = "inherited.txt"
_INHERITED_HEADER = (
    "# Files this case renders exactly as the reference tree has them (tests/test_golden.py).\n"
)


def _tree(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def reference_tree() -> dict[str, str]:
    """The committed reference rendering: every file the checkout's manifest lists."""
    return {
        path: (ROOT / path).read_text(encoding="utf-8")
        for path in writer.read_manifest(ROOT)
        if (ROOT / path).is_file()
    }


def expected_tree(case: Path, reference: dict[str, str]) -> dict[str, str]:
    """The case's full expected tree: the reference files it inherits, then its own."""
    lines = (case / INHERITED).read_text(encoding="utf-8").splitlines()
    inherited = {path: reference[path] for path in lines if path and not path.startswith("#")}
    return inherited | _tree(case / "expected")


def differences(rendered: dict[str, str], expected: dict[str, str]) -> list[str]:
    """Each path whose rendered text is not the expected one, or that only one side has."""
    return sorted(
        path
        for path in rendered.keys() | expected.keys()
        if rendered.get(path) != expected.get(path)
    )


def _update(case: Path, files: dict[str, str], reference: dict[str, str]) -> None:
    assert not writer.plan_changes(ROOT, render(load_config(REFERENCE))), (
        "the reference tree is stale: run `levels-tf render` before --update-golden"
    )
    shutil.rmtree(case / "expected", ignore_errors=True)
    inherited = []
    for path, text in files.items():
        if reference.get(path) == text:
            inherited.append(path)
            continue
        (case / "expected" / path).parent.mkdir(parents=True, exist_ok=True)
        (case / "expected" / path).write_text(text, encoding="utf-8")
    (case / INHERITED).write_text(
        _INHERITED_HEADER + "".join(f"{path}\n" for path in sorted(inherited)), encoding="utf-8"
    )


def test_there_are_golden_cases():
    assert len(CASES) >= 3


@pytest.mark.parametrize("case", CASES)
def test_golden_tree(case, update_golden):
    files = render(load_config(GOLDEN / case / "infra.yaml"))
    reference = reference_tree()
    if update_golden:
        _update(GOLDEN / case, files, reference)
    expected = expected_tree(GOLDEN / case, reference)
    assert sorted(files) == sorted(expected), "the set of rendered files changed"
    assert differences(files, expected) == [], (
        f"{case}: these files differ; rerun with --update-golden and review"
    )


@pytest.mark.parametrize("case", CASES)
def test_golden_case_keeps_only_what_it_changes(case):
    """No file in expected/ is a copy of the reference tree's."""
    reference = reference_tree()
    copies = [
        path
        for path, text in _tree(GOLDEN / case / "expected").items()
        if reference.get(path) == text
    ]
    assert copies == [], "rerun with --update-golden to drop them"


def test_a_difference_in_a_shared_module_file_fails():
    """A case inherits modules/ from the reference tree: a module file that
    renders otherwise is a difference, though the case stores no copy of it."""
    case = GOLDEN / CASES[0]
    expected = expected_tree(case, reference_tree())
    assert "modules/queue/main.tf" in expected
    assert not (case / "expected" / "modules" / "queue" / "main.tf").exists()
    rendered = dict(expected)
    rendered["modules/queue/main.tf"] += "# a change\n"
    assert differences(rendered, expected) == ["modules/queue/main.tf"]
    del rendered["modules/queue/main.tf"]
    assert differences(rendered, expected) == ["modules/queue/main.tf"]


def test_committed_tree_matches_reference():
    """modules/ and stacks/ in the checkout are exactly what infra.yaml renders."""
    files = render(load_config(REFERENCE))
    changes = writer.plan_changes(ROOT, files)
    assert [c.path for c in changes] == [], "run `levels-tf render` and commit the result"


def test_render_is_deterministic():
    config = load_config(REFERENCE)
    assert render(config) == render(load_config(REFERENCE))


def test_every_file_has_the_generated_header():
    for path, text in render(load_config(REFERENCE)).items():
        lines = text.splitlines()
        if path.endswith(".md"):  # a Markdown comment: "# " would be its title
            assert lines[0].startswith("<!-- Generated by levels-tf"), path
            continue
        header = lines[1] if lines[0].startswith("#!") else lines[0]
        assert header.startswith("# Generated by levels-tf from infra.yaml."), path
