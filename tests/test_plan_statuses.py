"""Why a stack has no plan, read from Terraform's error diagnostics: the mixes
a real run rarely produces (the real runs are in test_all_failures.py and
test_bring_up.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from levels_tf.commands.plan import NO_STATE_YET, _not_planned
from levels_tf.plan_summary import Status
from levels_tf.stacks import Stack
from levels_tf.terraform import TerraformError

LIVE = Stack("live", "environment", "prod", "live", ("prod-shared",))
TREE = SimpleNamespace(out=Path("/tree"), folder=lambda stack: Path("/tree/stacks") / stack.name)


def _error(summary: str, filename: str = "", line: int = 0, detail: str = "") -> dict:
    diagnostic = {"severity": "error", "summary": summary, "detail": detail}
    if filename:
        diagnostic["range"] = {"filename": filename, "start": {"line": line, "column": 3}}
    return {"@level": "error", "@message": f"Error: {summary}", "type": "diagnostic", "diagnostic": diagnostic}


def test_no_state_yet_in_every_error_is_waiting():
    errors = [_error(NO_STATE_YET, "shared.tf", 5), _error(NO_STATE_YET, "shared.tf", 12)]
    item = _not_planned(TREE, LIVE, errors, TerraformError("x"))
    assert (item.status, item.after, item.reason) == (Status.WAITING, ("prod-shared",), "waits for the first apply of prod-shared")


def test_another_error_beside_no_state_yet_is_a_failure_at_the_first_error():
    errors = [_error(NO_STATE_YET, "shared.tf", 5), _error("Unsupported argument", "../../modules/network/main.tf", 7, "An  argument\nnamed x")]
    item = _not_planned(TREE, LIVE, errors, TerraformError("x"))
    assert (item.status, item.location) == (Status.FAILED, "stacks/live/shared.tf:5")
    errors.reverse()
    item = _not_planned(TREE, LIVE, errors, TerraformError("x"))
    assert (item.location, item.reason) == ("modules/network/main.tf:7", "Unsupported argument: An argument named x")


def test_no_state_yet_of_a_stack_that_reads_none_is_a_failure():
    shared = Stack("prod-shared", "shared", "prod")
    item = _not_planned(TREE, shared, [_error(NO_STATE_YET, "extra.tf", 1)], TerraformError("x"))
    assert item.status is Status.FAILED


def test_an_error_without_a_diagnostic_keeps_terraforms_words():
    item = _not_planned(TREE, LIVE, [], TerraformError("terraform plan failed: the state file is corrupt"))
    assert (item.status, item.reason, item.location) == (Status.FAILED, "terraform plan failed: the state file is corrupt", "")
    item = _not_planned(TREE, LIVE, [_error("Invalid provider configuration")], TerraformError("x"))
    assert (item.reason, item.location) == ("Invalid provider configuration", "")
