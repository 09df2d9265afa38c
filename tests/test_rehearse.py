"""`levels-tf rehearse` for real, as a user runs it: its own moto server on
loopback, the real packer and terraform with the aws provider, on the
reference configuration and on a second one that takes the rest of the
schema. The report (--json) is what is asserted on; the user's folder must
be left exactly as it was, and nothing may be left running or on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT, _provider_mirror, copy_reference, require_tool

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

SMALL = ROOT / "tests" / "configs" / "rehearsal-small"
STEPS = [
    "emulator",
    "seed",
    "render",
    "bootstrap",
    "bake",
    "package",
    "apply",
    "check",
    "roll",
    "re-plan",
    "destroy",
    "stop",
]


def _environment(tmp_path: Path) -> dict[str, str]:
    """A user's shell: a home and temporary folder of the test's own, and the
    provider mirror of this machine named the way the README says."""
    require_tool("terraform")
    require_tool("packer")
    home, scratch = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env.update(HOME=str(home), TMPDIR=str(scratch), XDG_CACHE_HOME=str(home / ".cache"))
    # Whatever the user's AWS settings say, a rehearsal must not use them.
    env.update(
        AWS_PROFILE="production-admin",
        AWS_ACCESS_KEY_ID="AKIAREALKEYNOTFORTESTS",
        AWS_SECRET_ACCESS_KEY="real",
    )
    mirror = _provider_mirror()
    if mirror:
        env["LEVELS_TF_PROVIDER_MIRROR"] = mirror
    return env


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _leftovers(scratch: Path) -> list[str]:
    """Processes whose command line or working folder is under `scratch`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(scratch) in cmdline or cwd.startswith(str(scratch)):
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def _argv(folder: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "levels_tf", "-c", str(folder / "infra.yaml"), "rehearse", "--json", *args]  # fmt: skip


def _report(result: subprocess.CompletedProcess) -> dict:
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"no JSON report (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        )
    return report


@dataclass
class Running:
    """A rehearsal started in the background, as a user would run it."""

    folder: Path
    scratch: Path
    before: dict[str, bytes]
    child: subprocess.Popen
    out: Path
    err: Path

    def finish(self) -> tuple[subprocess.CompletedProcess, dict]:
        """Wait for it; its result and JSON report.

        The limit only catches a hung rehearsal (its own watchdog stops a step
        the emulator keeps failing). It is not a speed target: under a loaded
        CI machine the reference takes 23-26 minutes, so 45 leaves room."""
        try:
            code = self.child.wait(timeout=2700)
        except subprocess.TimeoutExpired:
            self.child.kill()
            raise
        result = subprocess.CompletedProcess(
            self.child.args, code, self.out.read_text(), self.err.read_text()
        )
        return result, _report(result)


def _start(root: Path, copy, *args: str) -> Running:
    folder = root / "platform"
    copy(folder)
    env = _environment(root)
    before = _snapshot(folder)
    out, err = root / "stdout", root / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        child = subprocess.Popen(
            _argv(folder, *args), cwd=folder, env=env, stdin=subprocess.DEVNULL,
            stdout=stdout, stderr=stderr,
        )  # fmt: skip
    return Running(folder, root / "tmp", before, child, out, err)


@pytest.fixture(scope="module")
def rehearsals(request, tmp_path_factory):
    """The whole-platform rehearsals of the selected tests, started at once:
    most of a rehearsal is spent waiting on AWS-side delays the provider
    imposes, so two side by side take little longer than the longer one.
    Each test waits for its own and asserts on it alone."""
    selected = {item.name for item in request.session.items}
    wanted = {
        "reference": (REFERENCE_TEST, copy_reference, ()),
        "small": (SMALL_TEST, _copy_small, ("--backend", "local")),
    }
    started = {
        name: _start(tmp_path_factory.mktemp(name), copy, *args)
        for name, (test, copy, args) in wanted.items()
        if test in selected
    }
    yield started
    for running in started.values():
        if running.child.poll() is None:
            running.child.kill()
            running.child.wait()


def _assert_complete(result, report, folder: Path, before: dict[str, bytes], scratch: Path) -> None:
    failed = [s for s in report["steps"] if s["status"] != "passed"]
    bad_checks = [c for c in report["checks"] if not c["passed"]]
    if result.returncode != 0 or not report["ok"]:
        # pytest.fail, not assert: an assertion's message is cut to a line,
        # and the step's detail is what says which resource failed and why.
        pytest.fail(
            f"exit {result.returncode}\nfailed steps: {json.dumps(failed, indent=1)}\n"
            f"failed checks: {json.dumps(bad_checks, indent=1)}\n{result.stderr[-6000:]}",
            pytrace=False,
        )
    assert [s["name"] for s in report["steps"]] == STEPS
    assert report["checks_failed"] == 0
    drift = [c for c in report["replan"] if not c["emulator_difference"]]
    assert not drift, drift
    assert all(a["reason"] for a in report["adaptations"])
    assert report["tree"] is None
    assert _snapshot(folder) == before, "the user's folder must be left as it was"
    assert not list(scratch.iterdir()), "the rehearsal tree must be removed"
    assert not _leftovers(scratch), "nothing of the rehearsal may be left running"


REFERENCE_TEST = "test_the_reference_platform_rehearses_end_to_end"
SMALL_TEST = "test_a_single_group_with_serverless_and_secrets_manager_rehearses"


def test_the_reference_platform_rehearses_end_to_end(rehearsals):
    running = rehearsals["reference"]
    result, report = running.finish()
    _assert_complete(result, report, running.folder, running.before, running.scratch)

    names = [c["name"] for c in report["checks"] if c["step"] == "check"]
    for env_name in ("production", "dev", "test", "qa"):
        assert any(name.startswith(f"{env_name}:") for name in names), (env_name, names)
    assert len(names) >= 30, names
    rolled = [c for c in report["checks"] if c["step"] == "roll"]
    assert sorted(c["name"].split(":")[0] for c in rolled) == ["dev", "production", "qa", "test"]
    assert {a["path"] for a in report["adaptations"]} >= {
        "modules/cdn/rehearsal_override.tf",
        "modules/database/rehearsal_override.tf",
    }
    print(json.dumps([(s["name"], s["seconds"]) for s in report["steps"]]))


def test_a_single_group_with_serverless_and_secrets_manager_rehearses(rehearsals):
    running = rehearsals["small"]
    result, report = running.finish()
    _assert_complete(result, report, running.folder, running.before, running.scratch)
    names = [c["name"] for c in report["checks"]]
    assert any(name.startswith("staging:") for name in names) and any(
        name.startswith("preview:") for name in names
    )
    detail = {s["name"]: s["detail"] for s in report["steps"]}
    assert detail["bootstrap"] == "local state, the GitHub OIDC provider the CI roles trust"
    assert "web" in detail["bake"] and "jobs" in detail["bake"]


def _copy_small(folder: Path) -> None:
    folder.mkdir()
    (folder / "infra.yaml").write_bytes((SMALL / "infra.yaml").read_bytes())
    (folder / "scripts").mkdir()
    (folder / "scripts" / "web.sh").write_bytes((SMALL / "scripts" / "web.sh").read_bytes())


def test_ctrl_c_stops_the_emulator_and_removes_the_tree(tmp_path):
    folder = tmp_path / "platform"
    _copy_small(folder)
    env = _environment(tmp_path)
    # A TMPDIR as deep as a CI workspace's: no plugin socket fits under it,
    # so the rehearsal must give Packer and the provider a shorter one.
    scratch = tmp_path / "tmp" / ("deep-" * 20)
    scratch.mkdir()
    env["TMPDIR"] = str(scratch)
    rehearsal = subprocess.Popen(
        [sys.executable, "-m", "levels_tf", "-c", str(folder / "infra.yaml"), "rehearse"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    seen = []
    assert rehearsal.stdout is not None  # a pipe: asked for above
    for line in rehearsal.stdout:
        seen.append(line)
        if line.startswith("== apply"):
            time.sleep(5)  # terraform is running
            break
    rehearsal.send_signal(signal.SIGINT)
    rest, _ = rehearsal.communicate(timeout=300)
    output = "".join(seen) + rest
    if rehearsal.returncode != 130:
        # The step that failed, not only the report's tail of adaptations.
        failing = [line for line in output.splitlines() if "failed" in line.lower()]
        pytest.fail(
            f"exit {rehearsal.returncode}, not 130\n"
            + "\n".join(failing[:40])
            + "\n"
            + output[-3000:],
            pytrace=False,
        )
    assert "rehearsal on moto: interrupted" in output
    assert not list(scratch.iterdir()), "the rehearsal tree must be removed"
    assert not _leftovers(scratch), output[-3000:]


BACKUP_SELECTION = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "rehearsal"
  secret_key                  = "rehearsal"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {
    backup = "%(url)s"
    iam    = "%(url)s"
    sts    = "%(url)s"
  }
}

resource "aws_backup_vault" "this" {
  name = "watchdog"
}

resource "aws_backup_plan" "this" {
  name = "watchdog"
  rule {
    rule_name         = "daily"
    target_vault_name = aws_backup_vault.this.name
    schedule          = "cron(0 5 * * ? *)"
  }
}

resource "aws_backup_selection" "this" {
  name         = "watchdog"
  plan_id      = aws_backup_plan.this.id
  iam_role_arn = "arn:aws:iam::123456789012:role/backup"
  resources    = ["arn:aws:rds:us-east-1:123456789012:cluster:x"]
}
"""


def test_the_watchdog_fails_a_step_the_emulator_keeps_failing(tmp_path, terraform_env, monkeypatch):
    """moto answers 500 to CreateBackupSelection, and the provider retries it
    for minutes; the watchdog ends the step within its limit, with moto's
    error, and leaves no terraform running."""
    from levels_tf import emulator, process
    from levels_tf.commands import rehearse
    from levels_tf.emulator_profile import MOTO
    from levels_tf.rehearsal_report import Report
    from levels_tf.terraform import EngineChoice

    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    work = tmp_path / "work"
    work.mkdir()
    running = emulator.start(emulator.KINDS["moto"], work, dict(os.environ), {})
    try:
        stack = tmp_path / "stack"
        stack.mkdir()
        (stack / "main.tf").write_text(BACKUP_SELECTION % {"url": running.url}, encoding="utf-8")
        env = dict(terraform_env, AWS_EC2_METADATA_DISABLED="true")
        process.run(["terraform", "init", "-input=false"], cwd=stack, env=env, timeout=300)
        run = rehearse.Rehearsal(
            config_path=tmp_path / "infra.yaml", profile=MOTO, kind=running.kind, work=work,
            engine=EngineChoice("binary", None), parallelism=1, watchdog_seconds=10, report=Report("moto"),
            emulator=running,
        )  # fmt: skip

        def apply() -> str:
            process.stream(
                ["terraform", "apply", "-auto-approve", "-input=false"],
                lambda line: None,
                cwd=stack,
                env=env,
                timeout=900,
            )
            return "applied"

        started = time.monotonic()
        assert not rehearse._run_step(run, "apply", apply)
        took = time.monotonic() - started
        step = run.report.step("apply")
        assert step.status == "failed"
        assert "kept failing" in step.detail and "create_backup_selection" in step.detail, (
            step.detail
        )
        assert took < 120, f"the watchdog took {took:.0f}s"
        assert not _leftovers(stack), "terraform must be stopped"
    finally:
        running.stop()
    assert running.server is not None  # started here, not one the user runs
    assert not running.server.running()
