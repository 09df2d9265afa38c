"""Why a stack has no plan, read from Terraform's error diagnostics: the mixes
a real run rarely produces (the real runs are in test_all_failures.py and
test_bring_up.py)."""

from __future__ import annotations

import json
from pathlib import Path

from levels_tf.commands.plan import NO_STATE_YET, _not_planned, plan_stacks
from levels_tf.plan_summary import StackSummary, Status
from levels_tf.stacks import Stack, stacks
from levels_tf.terraform import PLAN_FILE, Event, Terraform, TerraformError
from levels_tf.validation import load_config
from levels_tf.workspace import Workspace

from .conftest import REFERENCE

LIVE = Stack("live", "environment", "prod", "live", ("prod-shared",))
FOLDER = "stacks/live"  # LIVE's folder in the rendered tree


def _error(summary: str, filename: str = "", line: int = 0, detail: str = "") -> dict:
    diagnostic: dict[str, object] = {"severity": "error", "summary": summary, "detail": detail}
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
    item = _not_planned(LIVE, errors, TerraformError("x"), FOLDER)
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
    item = _not_planned(LIVE, errors, TerraformError("x"), FOLDER)
    assert (item.status, item.location) == (Status.FAILED, "stacks/live/shared.tf:5")
    errors.reverse()
    item = _not_planned(LIVE, errors, TerraformError("x"), FOLDER)
    assert (item.location, item.reason) == (
        "modules/network/main.tf:7",
        "Unsupported argument: An argument named x",
    )


def test_no_state_yet_of_a_stack_that_reads_none_is_a_failure():
    shared = Stack("prod-shared", "shared", "prod")
    item = _not_planned(
        shared, [_error(NO_STATE_YET, "extra.tf", 1)], TerraformError("x"), "stacks/prod-shared"
    )
    assert item.status is Status.FAILED


def test_an_error_without_a_diagnostic_keeps_terraforms_words():
    item = _not_planned(
        LIVE, [], TerraformError("terraform plan failed: the state file is corrupt"), FOLDER
    )
    assert (item.status, item.reason, item.location) == (
        Status.FAILED,
        "terraform plan failed: the state file is corrupt",
        "",
    )
    item = _not_planned(
        LIVE, [_error("Invalid provider configuration")], TerraformError("x"), FOLDER
    )
    assert (item.reason, item.location) == ("Invalid provider configuration", "")


class _SavedPlan(Terraform):
    """Terraform whose plan deletes a KMS key (what holds data): it saves the
    plan file and returns the events of that plan, and runs nothing. Producing
    a real blocked plan needs a production platform applied first; the
    summary's reading of real plans is proven in test_plan_summary.py."""

    def __init__(self) -> None:
        from .test_plan_summary import entry, show, stream

        super().__init__(command=("terraform",))
        self.events = [
            json.loads(line) for line in stream(show(entry("aws_kms_key.data", ["delete"])))
        ]

    def init(self, folder: Path, inputs: str | None = None) -> bool:
        return False

    def plan(
        self, folder: Path, *, out: str = PLAN_FILE, **options: object
    ) -> tuple[bool, list[Event]]:
        (folder / out).write_text("saved")  # where it was asked to, as Terraform does
        return True, self.events


def test_a_blocked_plan_is_kept_for_apply_only_when_destroying_is_allowed(tmp_path):
    config = load_config(REFERENCE)
    (stack,) = [s for s in stacks(config.infra) if s.name == "production-shared"]
    tree = Workspace(config, tmp_path, [stack], _SavedPlan())
    assert tree.production(stack)
    tree.folder(stack).mkdir(parents=True)
    (item,) = plan_stacks(tree, tree.stacks, parallelism=1, progress=False)
    assert isinstance(item, StackSummary) and item.blocked
    assert not tree.plan_file(stack).exists()
    (item,) = plan_stacks(tree, tree.stacks, parallelism=1, progress=False, allow_destroy=True)
    assert isinstance(item, StackSummary) and item.blocked
    assert tree.plan_file(stack).exists()
