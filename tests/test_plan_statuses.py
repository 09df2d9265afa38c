"""Why a stack has no plan, read from Terraform's error diagnostics: the mixes
a real run rarely produces (the real runs are in test_all_failures.py and
test_bring_up.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from levels_tf.commands.plan import NO_STATE_YET, _not_planned, plan_stacks
from levels_tf.plan_summary import Status
from levels_tf.stacks import Stack
from levels_tf.terraform import TerraformError

LIVE = Stack("live", "environment", "prod", "live", ("prod-shared",))
TREE = SimpleNamespace(out=Path("/tree"), folder=lambda stack: Path("/tree/stacks") / stack.name)


def _error(summary: str, filename: str = "", line: int = 0, detail: str = "") -> dict:
    diagnostic = {"severity": "error", "summary": summary, "detail": detail}
    if filename:
        diagnostic["range"] = {"filename": filename, "start": {"line": line, "column": 3}}
    return {
        "@level": "error",
        "@message": f"Error: {summary}",
        "type": "diagnostic",
        "diagnostic": diagnostic,
    }


def test_no_state_yet_in_every_error_is_waiting():
    errors = [_error(NO_STATE_YET, "shared.tf", 5), _error(NO_STATE_YET, "shared.tf", 12)]
    item = _not_planned(TREE, LIVE, errors, TerraformError("x"))
    assert (item.status, item.after, item.reason) == (
        Status.WAITING,
        ("prod-shared",),
        "waits for the first apply of prod-shared",
    )


def test_another_error_beside_no_state_yet_is_a_failure_at_the_first_error():
    errors = [
        _error(NO_STATE_YET, "shared.tf", 5),
        _error("Unsupported argument", "../../modules/network/main.tf", 7, "An  argument\nnamed x"),
    ]
    item = _not_planned(TREE, LIVE, errors, TerraformError("x"))
    assert (item.status, item.location) == (Status.FAILED, "stacks/live/shared.tf:5")
    errors.reverse()
    item = _not_planned(TREE, LIVE, errors, TerraformError("x"))
    assert (item.location, item.reason) == (
        "modules/network/main.tf:7",
        "Unsupported argument: An argument named x",
    )


def test_no_state_yet_of_a_stack_that_reads_none_is_a_failure():
    shared = Stack("prod-shared", "shared", "prod")
    item = _not_planned(TREE, shared, [_error(NO_STATE_YET, "extra.tf", 1)], TerraformError("x"))
    assert item.status is Status.FAILED


def test_an_error_without_a_diagnostic_keeps_terraforms_words():
    item = _not_planned(
        TREE, LIVE, [], TerraformError("terraform plan failed: the state file is corrupt")
    )
    assert (item.status, item.reason, item.location) == (
        Status.FAILED,
        "terraform plan failed: the state file is corrupt",
        "",
    )
    item = _not_planned(TREE, LIVE, [_error("Invalid provider configuration")], TerraformError("x"))
    assert (item.reason, item.location) == ("Invalid provider configuration", "")


class _BlockingTree:
    """A production stack whose plan deletes a KMS key (what holds data): the
    plan file Terraform saves, and nothing else. Producing a real blocked
    plan needs a production platform applied first; the summary's reading of
    real plans is proven in test_plan_summary.py."""

    def __init__(self, folder: Path):
        from .test_plan_summary import entry, show, stream

        self.stack = Stack("prod-shared", "shared", "prod")
        self.stacks = [self.stack]
        self._folder = folder
        self._events = [
            json.loads(line) for line in stream(show(entry("aws_kms_key.data", ["delete"])))
        ]
        self.terraform = SimpleNamespace(plan=self._plan)

    def _plan(self, folder, *, refresh_only=False, on_event=None):
        (folder / "levels-tf.tfplan").write_text("saved")
        return True, self._events

    def init_all(self, stacks):
        return {}

    def folder(self, stack):
        return self._folder

    def plan_file(self, stack):
        return self._folder / "levels-tf.tfplan"

    def production(self, stack):
        return True


def test_a_blocked_plan_is_kept_for_apply_only_when_destroying_is_allowed(tmp_path):
    tree = _BlockingTree(tmp_path)
    (item,) = plan_stacks(tree, tree.stacks, parallelism=1, progress=False)
    assert item.blocked and not tree.plan_file(tree.stack).exists()
    (item,) = plan_stacks(tree, tree.stacks, parallelism=1, progress=False, allow_destroy=True)
    assert item.blocked and tree.plan_file(tree.stack).exists()
