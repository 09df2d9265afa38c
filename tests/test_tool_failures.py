"""Terraform or Packer failing, hanging past its time limit, or levels-tf being
terminated while one runs: the message names the stack or image, the output
is kept in a log, no process of the run is left, and nothing half done is
recorded (no saved plan for apply, images.lock untouched).

A tool that hangs is hard to produce for real, so these runs use small shell
scripts named `terraform` or `packer`, first on PATH, that print a line,
leave a file where the real tool would write its result, start a child and
then wait, some ignoring SIGTERM. The real Terraform's failures are in
test_all_failures.py and test_locking.py."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from levels_tf import image_lock, process, state_lock
from levels_tf.cache_dir import cache_dir, new_log
from levels_tf.errors import UsageError
from levels_tf.terraform import PENDING_PLAN

from .conftest import ROOT, copy_reference, next_step

CONFIG = ROOT / "tests" / "golden" / "two-az-single-env" / "infra.yaml"
STACK = "main-shared"
GRACE = 1.0  # the stop grace the tests give, instead of process.STOP_GRACE's minutes


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (dead, waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _pids(path: Path) -> list[int]:
    """The process ids a stub wrote to `path`, one a line: itself and its child.
    A minute's wait: levels-tf started anew on a loaded machine takes seconds."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists():
            pids = [int(word) for word in path.read_text().split()]
            if len(pids) == 2:
                return pids
        time.sleep(0.05)
    pytest.fail(f"the stub never wrote its process ids to {path}")


def _gone(pids: list[int]) -> None:
    """Fails when one of `pids` is still running (after a second's grace for reaping)."""
    deadline = time.monotonic() + 2
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in pids if _alive(pid)]
    for pid in left:  # never leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the run are still there: {left}"


# A stub that records its pid and its child's, prints, and waits for the child;
# `trap '' TERM` makes both ignore SIGTERM (the child inherits it).
HANGING = """{trap}
echo "working on it"
echo "a warning" >&2
sleep 600 &
echo $$ $! > "{pids}"
wait
"""


# --- process.stream on its own ---------------------------------------------------------------


@pytest.mark.parametrize("ignores_sigterm", [True, False], ids=["ignores-sigterm", "obeys"])
def test_a_hanging_program_is_stopped_at_its_time_limit_with_its_whole_group(
    tmp_path, ignores_sigterm
):
    pids = tmp_path / "pids"
    trap = "trap '' TERM" if ignores_sigterm else "trap 'echo stopping; kill $!; exit 143' TERM"
    stub = _script(tmp_path / "tool", HANGING.format(trap=trap, pids=pids))
    log = tmp_path / "run.log"
    seen: list[str] = []
    started = time.monotonic()
    with pytest.raises(process.Stopped) as caught:
        process.stream(
            [str(stub), "go"], seen.append, timeout=1, stop_grace=GRACE, log=log, check=False
        )
    elapsed = time.monotonic() - started

    assert caught.value.killed is ignores_sigterm
    assert elapsed < 1 + GRACE + 3, f"took {elapsed:.1f}s"
    _gone(_pids(pids))
    expected = (
        "did not finish in 1 s: stopped with SIGTERM, then killed with SIGKILL 1 s later"
        if ignores_sigterm
        else "did not finish in 1 s: stopped with SIGTERM"
    )
    assert str(caught.value) == f"{stub} go {expected}"
    assert seen[0] == "working on it"
    text = log.read_text()
    assert text.startswith(f"# {stub} go\n# in ")
    assert "working on it\n" in text and "a warning\n" in text
    assert ("stopping\n" in text) is not ignores_sigterm
    assert re.search(rf"^# {re.escape(str(stub))} go {expected}: exit -?\d+, at ", text, re.M)


def test_the_log_holds_everything_a_program_printed_and_how_it_ended(tmp_path):
    stub = _script(
        tmp_path / "tool",
        'i=1; while [ $i -le 3 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; exit 3\n',
    )
    log = tmp_path / "run.log"
    result = process.stream([str(stub)], lambda line: None, timeout=30, log=log, check=False)
    assert result.returncode == 3
    lines = log.read_text().splitlines()
    assert sorted(line for line in lines if not line.startswith("#")) == sorted(
        [f"out {i}" for i in (1, 2, 3)] + [f"err {i}" for i in (1, 2, 3)]
    )
    assert re.fullmatch(r"# ended: exit 3, at .+", lines[-1])


def test_a_log_that_cannot_be_written_does_not_stop_the_run(tmp_path):
    stub = _script(tmp_path / "tool", "echo fine\n")
    result = process.stream(
        [str(stub)], lambda line: None, timeout=30, log=tmp_path / "no" / "such" / "run.log"
    )
    assert result.stdout == "fine\n"


def test_new_logs_are_in_the_cache_and_old_ones_are_pruned(tmp_path):
    first = new_log("dev", "apply")
    assert first is not None and first.parent == cache_dir() / "logs"
    assert re.fullmatch(rf"dev-apply-\d{{8}}T\d{{6}}\.\d{{3}}Z-{os.getpid()}\.log", first.name)
    old = first.parent / "dev-plan-old.log"
    old.write_text("old")
    week_ago = time.time() - 20 * 86400
    os.utime(old, (week_ago, week_ago))
    kept = first.parent / "dev-plan-recent.log"
    kept.write_text("recent")
    new_log("dev", "plan")
    assert not old.exists() and kept.exists()


def test_the_time_limit_setting(monkeypatch):
    monkeypatch.delenv(process.TIMEOUT_VARIABLE, raising=False)
    assert process.timeout_setting(3600) == 3600
    monkeypatch.setenv(process.TIMEOUT_VARIABLE, " 90 ")
    assert process.timeout_setting(3600) == 90
    for bad in ("0", "-5", "soon", "nan", "inf"):
        monkeypatch.setenv(process.TIMEOUT_VARIABLE, bad)
        with pytest.raises(UsageError, match=r"\$LEVELS_TF_TIMEOUT .*positive number of seconds"):
            process.timeout_setting(3600)


# --- levels-tf plan and apply with a terraform that hangs ------------------------------------


@pytest.fixture
def hanging_terraform(tmp_path, monkeypatch):
    """A `terraform` first on PATH whose init succeeds and whose plan leaves a
    plan file where it was asked to (as Terraform writes one even for a plan
    that errored), then hangs ignoring SIGTERM, as its apply does; the file
    its process ids go to."""
    folder = tmp_path / "bin"
    folder.mkdir()
    pids = tmp_path / "pids"
    _script(
        folder / "terraform",
        'if [ "$1" = init ]; then mkdir -p .terraform; echo initialised; exit 0; fi\n'
        # Where Terraform writes its plan (-out=FILE), even one that errored.
        'for a in "$@"; do case "$a" in -out=*) echo "half a plan" > "${a#-out=}";; esac; done\n'
        + HANGING.format(trap="trap '' TERM", pids=pids),
    )
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    for name in ("LEVELS_TF_TERRAFORM", "LEVELS_TF_ENGINE", "TF_PLUGIN_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(process.TIMEOUT_VARIABLE, "1")
    monkeypatch.setattr(process, "STOP_GRACE", GRACE)
    return pids


def _rendered(tmp_path: Path, run) -> Path:
    config = tmp_path / "platform" / "infra.yaml"
    config.parent.mkdir()
    config.write_text(CONFIG.read_text())
    result = run("render", config=config)
    assert result.exit_code == 0, result.output
    return config


def _log_named(stderr: str, stack_or_image: str, command: str) -> Path:
    """The log a failure line names; it must be in the cache's logs folder, named for what ran."""
    match = re.search(r"its output is in (\S+\.log)", stderr)
    assert match, stderr
    log = Path(match.group(1))
    assert log.parent == cache_dir() / "logs" and log.name.startswith(
        f"{stack_or_image}-{command}-"
    )
    return log


def test_a_hanging_plan_is_stopped_names_its_stack_and_keeps_no_plan(
    tmp_path, run, hanging_terraform
):
    config = _rendered(tmp_path, run)
    plan_file = config.parent / "stacks" / STACK / "levels-tf.tfplan"

    result = run("plan", STACK, "--format", "json", config=config)

    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        f"{STACK}: failed: terraform plan did not finish in 1 s: stopped with SIGTERM, "
        "then killed with SIGKILL 1 s later; its output is in "
    ), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    log = _log_named(result.stderr, STACK, "plan")
    assert "working on it\n" in log.read_text() and "a warning\n" in log.read_text()
    _gone(_pids(hanging_terraform))
    assert not plan_file.exists(), "the plan of a stopped run was left for apply"
    assert not (plan_file.parent / PENDING_PLAN).exists()
    assert '"status": "failed"' in result.stdout and str(log) not in result.stdout


def test_a_hanging_apply_is_stopped_and_names_its_stack(tmp_path, run, hanging_terraform):
    config = _rendered(tmp_path, run)
    plan_file = config.parent / "stacks" / STACK / "levels-tf.tfplan"
    plan_file.write_text("a reviewed plan")  # newer than the tree: apply takes it

    result = run("apply", STACK, "--yes", config=config)

    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"{STACK}: failed: terraform apply did not finish in 1 s: stopped with SIGTERM, "
        "then killed with SIGKILL 1 s later; its output is in "
    ), result.stderr
    assert "working on it" in _log_named(line, STACK, "apply").read_text()
    _gone(_pids(hanging_terraform))
    # Local state: the lock was the process's own, gone with it; nothing to release.
    assert "state lock" not in result.stderr
    assert "applied in" not in result.stdout


@contextlib.contextmanager
def _planning(config: Path) -> Iterator[subprocess.Popen]:
    """`levels-tf plan STACK` running in a process of its own; killed if the block leaves it running."""
    child = subprocess.Popen(
        [sys.executable, "-m", "levels_tf", "-c", str(config), "plan", STACK],
        env=dict(os.environ, PYTHONPATH=str(ROOT), LEVELS_TF_TIMEOUT="600"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


def test_sigterm_to_levels_tf_stops_terraform_and_keeps_no_plan(tmp_path, run, hanging_terraform):
    """A CI job cancelled, or `timeout`: levels-tf hands the stop on to
    Terraform's process group, drops the plan, and exits 143."""
    config = _rendered(tmp_path, run)
    plan_file = config.parent / "stacks" / STACK / "levels-tf.tfplan"
    with _planning(config) as child:
        pids = _pids(hanging_terraform)
        child.send_signal(signal.SIGTERM)
        # The stub ignores SIGTERM but not the SIGINT levels-tf passes on.
        out, err = child.communicate(timeout=60)
    assert child.returncode == 143, out + err
    assert err.endswith("terminated\n") and "Traceback" not in err, err
    _gone(pids)
    assert not plan_file.exists()


def test_a_plan_written_while_levels_tf_was_killed_is_never_applied(
    tmp_path, run, hanging_terraform
):
    """levels-tf killed outright (SIGKILL: no cleanup at all) while Terraform
    plans: what Terraform wrote is not the plan `apply` takes."""
    config = _rendered(tmp_path, run)
    folder = config.parent / "stacks" / STACK
    with _planning(config) as child:
        pids = _pids(hanging_terraform)  # written after the plan file
        child.kill()
        child.wait(timeout=30)
    # Terraform, in a process group of its own, outlived levels-tf: end it here.
    os.killpg(pids[0], signal.SIGKILL)
    _gone(pids)
    assert (folder / PENDING_PLAN).read_text() == "half a plan\n"
    assert not (folder / "levels-tf.tfplan").exists()

    result = run("apply", STACK, "--yes", config=config)
    assert result.exit_code == 2, result.output
    assert f"{STACK}: no saved plan: run {next_step(config, 'plan')}` first" in result.stderr


# --- bake with a packer that hangs -----------------------------------------------------------


def test_a_hanging_bake_is_stopped_names_its_image_and_records_nothing(tmp_path, run, monkeypatch):
    pids = tmp_path / "pids"
    manifest = "packer/manifests/api.json"
    fake = _script(
        tmp_path / "packer",
        'if [ "$1" = version ]; then echo "Packer v1.6.6"; exit 0; fi\n'
        # What a build would leave if it got that far: a manifest with an AMI.
        f'mkdir -p packer/manifests; echo \'{{"builds": [{{"packer_run_uuid": "r", "artifact_id": "us-east-1:ami-0123456789abcdef0", "custom_data": {{}}}}], "last_run_uuid": "r"}}\' > {manifest}\n'
        + HANGING.format(trap="trap '' TERM", pids=pids),
    )
    monkeypatch.setenv(process.TIMEOUT_VARIABLE, "1")
    monkeypatch.setattr(process, "STOP_GRACE", GRACE)
    config = copy_reference(tmp_path / "platform")
    assert run("render", config=config).exit_code == 0

    result = run("bake", "api", "--packer-bin", str(fake), config=config)

    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "packer build of packer/api.pkr.hcl (amazon-ebs.aws) did not finish in 1 s: "
        "stopped with SIGTERM, then killed with SIGKILL 1 s later"
    )
    assert "working on it" in _log_named(lines[1], "api", "build").read_text()
    assert lines[2:] == ["bake failed for api; images.lock is unchanged for it"]
    _gone(_pids(pids))
    assert not (config.parent / image_lock.LOCK_FILE).exists()
    assert run("render", "--check", config=config).exit_code == 0  # nothing re-rendered


# --- whose state lock is it ------------------------------------------------------------------


def test_only_a_lock_this_run_took_is_named_for_release():
    """The lock object Terraform's S3 backend leaves (`<key>.tflock`, its LockInfo
    JSON) counts as this run's only when this user@host took it since the run
    began: another operator's lock, or one older than the run, is not ours to
    release."""
    since = time.time()
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since + 1)) + ".123456789Z"
    before = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since - 60)) + ".5Z"

    def info(**changes) -> str:
        lock = {
            "ID": "0f4c3d0e-7c1a-4b6e-9a55-2f3f6b1e8c11",
            "Operation": "OperationTypeApply",
            "Info": "",
            "Who": state_lock.who(),
            "Version": "1.11.4",
            "Created": now,
            "Path": "bucket/dev/terraform.tfstate",
        }
        lock.update(changes)
        return json.dumps(lock)

    held = state_lock._ours(info(), since)
    assert held == state_lock.HeldLock(
        "0f4c3d0e-7c1a-4b6e-9a55-2f3f6b1e8c11", "OperationTypeApply", state_lock.who(), now
    )
    assert state_lock._ours(None, since) is None  # released
    assert state_lock._ours(info(Created=before), since) is None
    assert state_lock._ours(info(Who="someone@elsewhere"), since) is None
    assert state_lock._ours("not json", since) is None
    assert state_lock._ours(info(ID=None), since) is None
    assert re.fullmatch(r"[^@\s]+@[^@\s]+", state_lock.who())


def test_an_interrupt_while_a_program_starts_in_a_thread_still_reaches_it(tmp_path, monkeypatch):
    """A SIGTERM or Ctrl-C that the main thread handles just after another
    thread forked a program, before it was registered, must still stop it:
    otherwise the program runs on and levels-tf waits for it. The thread is
    held right after the fork, where a loaded machine may deschedule it."""
    import threading

    forked = threading.Event()
    start = process._start

    def held_after_the_fork(*args, **kwargs):
        child = start(*args, **kwargs)
        forked.set()
        time.sleep(1)
        return child

    monkeypatch.setattr(process, "_start", held_after_the_fork)
    ended: list[object] = []

    def plan() -> None:
        try:
            ended.append(
                process.stream(["sleep", "60"], lambda line: None, timeout=120, check=False)
            )
        except BaseException as error:  # the interruption, as the caller gets it
            ended.append(error)

    thread = threading.Thread(target=plan)
    began = time.monotonic()
    thread.start()
    assert forked.wait(30)
    process.interrupt_running(grace=10)
    thread.join(30)
    assert not thread.is_alive() and ended, "the program was never stopped"
    assert time.monotonic() - began < 30
