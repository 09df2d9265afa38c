"""Dependency order, parallelism, and failures that stop dependents only."""

from __future__ import annotations

import threading
import time

import pytest

from levels_tf import scheduler
from levels_tf.stacks import Stack

STACKS = [
    Stack("prod-shared", "shared", "prod"),
    Stack("prod", "environment", "prod", "prod", ("prod-shared",)),
    Stack("lab-shared", "shared", "lab"),
    Stack("dev", "environment", "lab", "dev", ("lab-shared",)),
    Stack("qa", "environment", "lab", "qa", ("lab-shared",)),
]


def test_dependencies_run_first_and_siblings_in_parallel():
    finished: list[str] = []
    active = []
    peak = []
    lock = threading.Lock()

    def action(stack):
        with lock:
            active.append(stack.name)
            peak.append(len(active))
            for dependency in stack.depends_on:
                assert dependency in finished, f"{stack.name} started before {dependency} finished"
        time.sleep(0.05)
        with lock:
            active.remove(stack.name)
            finished.append(stack.name)
        return stack.name.upper()

    outcomes = scheduler.run(STACKS, action, parallelism=4)
    assert [o.status for o in outcomes.values()] == ["ok"] * 5
    assert outcomes["dev"].value == "DEV"
    assert max(peak) >= 2


def test_a_failure_skips_its_dependents_not_its_siblings():
    def action(stack):
        if stack.name == "lab-shared":
            raise RuntimeError("boom")
        return None

    outcomes = scheduler.run(STACKS, action, parallelism=2)
    assert outcomes["lab-shared"].status == "failed" and "boom" in str(outcomes["lab-shared"].error)
    assert outcomes["dev"].status == outcomes["qa"].status == "skipped"
    assert outcomes["dev"].value == "lab-shared did not succeed"
    assert outcomes["prod-shared"].status == outcomes["prod"].status == "ok"


def test_parallelism_one_is_sequential_in_order():
    order: list[str] = []
    scheduler.run(STACKS, lambda stack: order.append(stack.name), parallelism=1)
    assert order == [s.name for s in STACKS]


def test_unselected_dependencies_do_not_block():
    outcomes = scheduler.run([STACKS[3]], lambda stack: "ran", parallelism=1)
    assert outcomes["dev"].status == "ok"


def test_waves_put_each_stack_after_everything_it_depends_on():
    chain = [
        *STACKS,
        Stack("edge", "environment", "lab", "edge", ("dev", "prod")),
    ]
    assert [[s.name for s in wave] for wave in scheduler.waves(chain)] == [
        ["prod-shared", "lab-shared"],
        ["prod", "dev", "qa"],
        ["edge"],
    ]
    # a dependency outside the stacks given is taken as met
    assert [[s.name for s in wave] for wave in scheduler.waves(STACKS[3:])] == [["dev", "qa"]]


def test_waves_refuse_a_cycle():
    loop = [Stack("a", "shared", "g", None, ("b",)), Stack("b", "shared", "g", None, ("a",))]
    with pytest.raises(ValueError, match="cycle: a, b"):
        scheduler.waves(loop)


def test_statuses_are_typed_and_compare_as_their_names():
    assert scheduler.Status("skipped") is scheduler.SKIPPED
    assert scheduler.FAILED == "failed"
