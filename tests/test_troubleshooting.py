"""The README's troubleshooting section quotes what the tool prints: each
message is provoked here (or, where a slower test provokes it for real, read
from the one place that prints it), and each recognised cause has its entry."""

from __future__ import annotations

import re

import pytest

from levels_tf import remedies

from .conftest import ROOT, next_step

README = (ROOT / "README.md").read_text(encoding="utf-8")
MARKER = "<!-- troubleshooting:"


def _section() -> str:
    start = README.index(MARKER)
    end = README.index("\n## ", start)
    return README[start:end]


def _quoted(section: str) -> set[str]:
    """Every `code span` of the section, its line breaks undone."""
    return {" ".join(span.split()) for span in re.findall(r"`([^`]+)`", section, re.S)}


def test_every_recognised_cause_has_an_entry():
    quoted = _quoted(_section())
    for remedy in remedies.REMEDIES:
        assert f"next: {remedy.cause}" in quoted, f"README: no entry for {remedy.key}"


def test_the_stale_tree_message_is_quoted_as_printed(run, tmp_path):
    from .conftest import copy_reference

    config = copy_reference(tmp_path)
    assert run("render", config=config).exit_code == 0
    text = config.read_text(encoding="utf-8")
    assert "  instance_type: t3.micro\n" in text
    config.write_text(text.replace("  instance_type: t3.micro\n", "  instance_type: t3.nano\n", 1))
    result = run("plan", "--all", config=config)
    assert result.exit_code == 2, result.output
    assert "is stale against" in result.stderr and "is stale against" in _quoted(_section())
    assert f"run {next_step(config, 'render')}" in result.stderr


def test_the_bootstrap_credentials_message_is_quoted_as_printed(run, tmp_path, no_aws_credentials):
    from .conftest import copy_reference

    config = copy_reference(tmp_path)
    result = run("bootstrap", config=config)
    assert result.exit_code == 1
    assert result.stderr.startswith("no AWS credentials found")
    assert "no AWS credentials found" in _quoted(_section())


def test_the_unbaked_image_message_is_the_rendered_precondition():
    # tests/test_unbaked_image.py plans an unbaked fleet for real and meets it.
    rendered = (ROOT / "modules" / "service" / "main.tf").read_text(encoding="utf-8")
    assert "has no AMI yet: run levels-tf bake" in rendered
    assert "has no AMI yet: run levels-tf bake" in _quoted(_section())


def test_the_held_lock_message_is_the_one_state_lock_prints():
    # tests/test_locking.py kills an apply for real and meets it.
    source = (ROOT / "levels_tf" / "state_lock.py").read_text(encoding="utf-8")
    assert "the state lock is still held" in source
    assert "the state lock is still held" in _quoted(_section())


@pytest.mark.parametrize("anchor", re.findall(r"\]\(#([^)]+)\)", _section()))
def test_links_lead_to_headings(anchor):
    headings = re.findall(r"^#+ (.+)$", README, re.M)
    slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    assert anchor in slugs
