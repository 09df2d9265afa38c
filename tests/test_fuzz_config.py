"""Generated infra.yaml documents end cleanly: a whole tree or file:line errors.

Hypothesis draws documents (tests/strategies.py), half valid, half broken in
one way. Each is rendered with `levels-tf render --out DIR` over the tree of
a previous render: a valid one must give exactly a fresh render with no
journal or staged file left; a broken one must exit 2 with every stderr
line `infra.yaml:LINE:COL: ...` and leave the folder byte for byte as it
was. Never a traceback or a crash report. A few distinct trees then pass
`terraform validate`.

Profiles (LEVELS_TF_FUZZ_PROFILE): `ci` (default) is derandomized and sized
for CI; `thorough` draws many more documents with a fresh seed each run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings

from levels_tf import writer
from levels_tf.render import render
from levels_tf.validation import load_config

from .conftest import REFERENCE
from .planned import terraform
from .render_outcome import render_cli, snapshot, tree_hash
from .strategies import MUTATIONS, documents

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=int(os.environ.get("LEVELS_TF_FUZZ_EXAMPLES", "200")),
    # no shrinking: a failing document is printed as drawn, in seconds, not minutes
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    database=None,
    deadline=None,
    max_examples=1500,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("LEVELS_TF_FUZZ_PROFILE", "ci")
MAX_VALIDATED_TREES = 5
MAX_VALIDATED_STACKS = 8

pytestmark = pytest.mark.slow


@dataclass
class Fuzzed:
    counts: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    trees: dict[str, Path] = field(default_factory=dict)  # tree hash -> a kept copy


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> Fuzzed:
    """Every generated document rendered; counts, and up to 5 distinct trees kept."""
    result = Fuzzed()
    kept = tmp_path_factory.mktemp("fuzzed-trees")
    previous = tmp_path_factory.mktemp("previous")
    writer.write(previous, render(load_config(REFERENCE)))
    home = tmp_path_factory.mktemp("home")  # where a crash report would land

    def check(kind: str, doc: dict) -> None:  # one document
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / "infra.yaml"
            config.write_text(
                yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8"
            )
            out = Path(folder) / "out"
            shutil.copytree(previous, out)
            outcome = render_cli(config, out)
            result.counts["documents"] += 1
            result.kinds[kind] += 1
            if kind == "valid":
                assert outcome.exit_code == 0, outcome.stderr
                result.counts["valid"] += 1
                digest = tree_hash(outcome.files)
                if digest not in result.trees and len(result.trees) < MAX_VALIDATED_TREES:
                    result.trees[digest] = shutil.copytree(out, kept / digest[:12])
            else:
                assert outcome.exit_code == 2, f"{kind}: rendered\n{yaml.safe_dump(doc)}"
                result.counts["broken"] += 1
        assert not list(home.rglob("crash-*.log"))

    # Half the documents valid, the other half shared evenly by the mutations.
    profile = settings.get_profile(PROFILE)
    shares = {"valid": profile.max_examples // 2}
    shares |= {kind: max(1, profile.max_examples // (2 * len(MUTATIONS))) for kind in MUTATIONS}

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
        for kind, examples in shares.items():
            run = given(documents(kind))(_bound(check, kind))
            settings(profile, max_examples=examples)(run)()
    return result


def _bound(check, kind: str):
    def check_document(doc: dict) -> None:
        check(kind, doc)

    return check_document


def test_every_document_renders_or_fails_with_file_and_line(fuzzed, record_property):
    counts = fuzzed.counts
    for name in ("documents", "valid", "broken"):
        record_property(f"count:fuzz {name}", counts[name])
    for kind, n in sorted(fuzzed.kinds.items()):
        if kind != "valid":
            record_property(f"count:fuzz broken by {kind}", n)
    # Both endings were exercised, each kind of break at least once.
    assert counts["valid"] >= counts["documents"] // 4
    assert counts["broken"] >= counts["documents"] // 4
    assert set(fuzzed.kinds) == {"valid", *MUTATIONS}, fuzzed.kinds


@pytest.mark.terraform
def test_distinct_rendered_trees_pass_terraform_validate(fuzzed, terraform_env, record_property):
    """Stacks of the kept trees, in turn (the first of each tree, then the
    second...), skipping stacks identical to one already validated, up to
    MAX_VALIDATED_STACKS: `terraform validate` costs seconds per stack."""
    assert len(fuzzed.trees) >= 2, "too few distinct trees to validate"
    per_tree = [
        sorted(p for p in (tree / "stacks").iterdir() if p.is_dir())
        for tree in fuzzed.trees.values()
    ]
    turns = [
        stacks[i] for i in range(max(map(len, per_tree))) for stacks in per_tree if i < len(stacks)
    ]
    validated: dict[str, Path] = {}
    for stack in turns:
        digest = tree_hash(snapshot(stack))
        if digest in validated or len(validated) == MAX_VALIDATED_STACKS:
            continue
        init = terraform(terraform_env, stack, "init", "-backend=false", "-input=false")
        assert init.returncode == 0, init.stdout + init.stderr
        check = terraform(terraform_env, stack, "validate", "-json")
        report = json.loads(check.stdout)
        assert report["valid"] and report["warning_count"] == 0, check.stdout
        validated[digest] = stack
    trees = {stack.parent.parent for stack in validated.values()}
    assert len(trees) >= 2
    record_property("count:fuzz trees validated", len(trees))
    record_property("count:fuzz stacks validated", len(validated))
