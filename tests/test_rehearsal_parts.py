"""The parts of `levels-tf rehearse` that need no emulator run of their own:
its refusals, the images it seeds, its adaptations and its report."""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

import pytest

from levels_tf import packer_files
from levels_tf.commands.rehearse import ErrorSpell
from levels_tf.emulator_profile import (
    MOTO,
    PROFILES,
    Difference,
    Seeded,
    bastion_ami,
    seed_images,
    seed_name,
)
from levels_tf.endpoint import check_endpoint
from levels_tf.errors import UsageError
from levels_tf.rehearsal_report import FAILED, PASSED, Outcome, PlannedChange, Report, as_json, text
from levels_tf.validation import load_config

from .conftest import REFERENCE, ROOT, copy_reference

SMALL = ROOT / "tests" / "configs" / "rehearsal-small" / "infra.yaml"


@pytest.mark.parametrize("base", sorted(packer_files.BASES))
def test_a_seeded_image_is_found_by_its_base_filter(base):
    spec = packer_files.BASES[base]
    assert fnmatch.fnmatchcase(seed_name(spec.name), spec.name)


@pytest.mark.parametrize("path", [REFERENCE, SMALL])
def test_every_base_and_the_bastion_get_a_seeded_image(path):
    infra = load_config(path).infra
    records = seed_images(infra)
    names = {r["name"] for r in records}
    for base in {image.base for image in infra.images.values() if image.base}:
        assert seed_name(packer_files.BASES[base].name) in names
    assert len({r["ami_id"] for r in records}) == len(records)
    assert bastion_ami(records) in {r["ami_id"] for r in records}
    for record in records:
        owner = packer_files.BASES[
            next(
                b
                for b in packer_files.BASES
                if seed_name(packer_files.BASES[b].name) == record["name"]
            )
        ].owner
        assert record["owner_id"] == owner or (owner == "amazon" and record["owner_id"].isdigit())


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:4566",
        "http://example.com:5000",
        "ftp://127.0.0.1:21",
        "http://0.0.0.0:4566",
        "127.0.0.1:4566",
    ],
)
def test_only_a_loopback_endpoint_is_accepted(url):
    with pytest.raises(UsageError, match="loopback"):
        check_endpoint(url, option="--endpoint", loopback=True)
    assert check_endpoint("http://127.0.0.1:4566/", loopback=True) == "http://127.0.0.1:4566"


def test_a_non_loopback_endpoint_is_refused_before_anything_starts(run, reference_copy):
    result = run("rehearse", "--endpoint", "http://192.0.2.10:4566", config=reference_copy)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "loopback" in result.stderr
    assert sorted(p.name for p in reference_copy.parent.iterdir()) == ["infra.yaml", "scripts"]


def test_an_invalid_configuration_is_one_line_per_problem_and_nothing_starts(run, tmp_path):
    config = tmp_path / "infra.yaml"
    config.write_text("project: x\nregion: nowhere\n", encoding="utf-8")
    result = run("rehearse", config=config)
    assert result.exit_code == 2
    assert all(line.startswith(f"{config}:") for line in result.stderr.splitlines()), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["infra.yaml"]


@pytest.mark.parametrize("path", [REFERENCE, SMALL])
def test_every_adaptation_says_why_and_stays_in_override_files(path, tmp_path, run):
    shutil.copy(path, tmp_path / "infra.yaml")
    if (path.parent / "scripts").is_dir():
        shutil.copytree(path.parent / "scripts", tmp_path / "scripts")
    assert run("render", config=tmp_path / "infra.yaml").exit_code == 0
    infra = load_config(path).infra
    shared = [f"{group}-shared" for group in infra.vpc_groups]
    for profile in PROFILES.values():
        adaptations = profile.adaptations(infra, shared, Seeded("ZSEEDED"), tmp_path)
        assert adaptations, profile.name
        for adaptation in adaptations:
            assert adaptation.reason.strip()
            assert adaptation.path.endswith("_override.tf"), (
                "Terraform merges only *_override.tf files over the rendered ones"
            )
            assert adaptation.text.startswith("# levels-tf rehearse:")
        zone = [a for a in adaptations if "ZSEEDED" in a.text]
        assert len(zone) == len(shared)


def test_known_differences_match_only_what_they_name():
    difference = Difference("*:module.service*.aws_autoscaling_policy.*", "a reason")
    assert difference.matches("dev", 'module.service["api"].aws_autoscaling_policy.cpu[0]')
    assert not difference.matches("dev", 'module.service["api"].aws_autoscaling_group.this')


def test_every_read_back_adaptation_names_a_rendered_resource_and_keeps_its_own_ignores(
    tmp_path, run
):
    """An ignore_changes override replaces the resource's own list: it must
    repeat it, and name a resource (and module) levels-tf renders."""
    import re

    config = copy_reference(tmp_path)
    assert run("render", config=config).exit_code == 0
    for entry in MOTO.read_back:
        kind, name = entry.resource.split(".")
        text = "".join(
            p.read_text(encoding="utf-8")
            for p in (tmp_path / "modules" / entry.module).glob("*.tf")
        )
        block = re.search(rf'resource "{kind}" "{name}" {{\n(.*?)\n}}\n', text, re.S)
        assert block, f"modules/{entry.module} renders no {entry.resource}"
        own = re.search(r"ignore_changes\s*=\s*\[([^\]]*)\]", block.group(1))
        assert set(entry.keep) == (
            {x.strip() for x in own.group(1).split(",") if x.strip()} if own else set()
        ), entry


def test_only_the_checks_the_emulator_cannot_answer_are_excused():
    name = (
        "dev: CloudFront distribution levels-dev reads each bucket through an origin access control"
    )
    assert MOTO.unreadable_check("check", name) is not None
    assert (
        MOTO.unreadable_check(
            "check", "dev: CloudFront distribution levels-dev serves levels-dev-web"
        )
        is None
    )
    assert MOTO.unreadable_check("roll", name) is None
    report = Report(emulator="moto")
    report.step("check").status = PASSED
    report.checks = [Outcome("check", name, False, "no origin access control", "moto keeps none")]
    assert report.ok
    assert as_json(report)["checks_failed"] == 0 and as_json(report)["checks_unreadable"] == 1
    assert f"not answered [check] {name}: moto keeps none" in text(report)
    report.checks.append(Outcome("check", "dev: bucket private", False, "public"))
    assert not report.ok


def _report() -> Report:
    report = Report(emulator="moto", endpoint="http://127.0.0.1:1")
    for name, status, seconds in (
        ("apply", PASSED, 312.4),
        ("check", FAILED, 3.0),
        ("destroy", PASSED, 61),
    ):
        step = report.step(name)
        step.status, step.seconds = status, seconds
    report.step("check").detail = "1 of 2 checks failed"
    report.checks = [
        Outcome("check", "dev: the queue has a dead-letter queue", True),
        Outcome("check", "qa: bucket private", False, "public"),
    ]
    report.adaptations = [("stacks/x/rehearsal_override.tf", "a reason")]
    report.replanned = [
        PlannedChange(
            "dev",
            "module.log_bucket.aws_s3_bucket_notification.this",
            "update",
            "moto does not read it back",
        )
    ]
    return report


def test_the_report_fails_on_a_failed_check_and_says_which():
    report = _report()
    assert not report.ok
    shown = text(report)
    assert "apply      5m12s  passed" in shown
    assert "check         3s  failed: 1 of 2 checks failed" in shown
    assert (
        "checks: 1 passed, 1 failed" in shown
        and "FAILED [check] qa: bucket private: public" in shown
    )
    assert "stacks/x/rehearsal_override.tf: a reason" in shown
    assert shown.endswith("rehearsal on moto: FAILED")
    data = as_json(report)
    assert json.loads(json.dumps(data)) == data
    assert data["ok"] is False and data["checks_failed"] == 1 and data["checks_passed"] == 1
    assert data["replan"][0]["emulator_difference"] == "moto does not read it back"


def test_drift_the_emulator_does_not_explain_fails_the_report():
    report = _report()
    report.checks = report.checks[:1]
    report.step("check").status = PASSED
    assert report.ok
    report.replanned.append(PlannedChange("dev", "module.queue.aws_sqs_queue.this", "update"))
    assert not report.ok
    assert "DRIFT dev: module.queue.aws_sqs_queue.this (update) after apply" in text(report)


def test_the_first_set_up_command_ends_in_a_rehearsal_of_the_reference():
    """The README's first command installs what a rehearsal needs and runs it
    on the bundled infra.yaml, with no option: what test_rehearse.py runs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- first-command")[1].split("```sh\n")[1].split("\n```")[0]
    assert "\n" not in block.strip()
    assert block.strip().endswith("&& .venv/bin/levels-tf rehearse")
    assert "'.[rehearse]'" in block and "packer" in block
    extras = (
        (ROOT / "setup.cfg")
        .read_text(encoding="utf-8")
        .split("rehearse =")[1]
        .split("\n")[1]
        .strip()
    )
    from levels_tf.emulator import KINDS

    assert extras == KINDS["moto"].requirement


def _rehearsal(work: Path, backend: str | None = None):
    """A rehearsal of the reference on moto in `work`, before any step ran."""
    from levels_tf import emulator
    from levels_tf.commands import rehearse
    from levels_tf.terraform import EngineChoice

    return rehearse.Rehearsal(
        config_path=REFERENCE,
        profile=MOTO,
        kind=emulator.KINDS["moto"],
        work=work,
        engine=EngineChoice(),
        parallelism=1,
        watchdog_seconds=1,
        report=Report(emulator="moto"),
        backend=backend,
    )


def test_the_programs_of_a_rehearsal_have_a_temporary_folder_removed_with_it(tmp_path, monkeypatch):
    """What a provider killed mid-run leaves in TMPDIR (its plugin socket's
    folder) goes when the rehearsal ends, and the user's TMPDIR is back."""
    import os
    import shutil
    import tempfile

    from levels_tf.commands import rehearse

    # A TMPDIR short enough to be kept (the test's own folder may not be).
    user_tmp = Path(tempfile.mkdtemp(prefix="t", dir="/tmp"))
    try:
        monkeypatch.setenv("TMPDIR", str(user_tmp))
        monkeypatch.setattr(tempfile, "tempdir", None)
        (tmp_path / "work").mkdir()
        with rehearse._environment(_rehearsal(tmp_path / "work")):
            inner = Path(os.environ["TMPDIR"])
            assert inner.parent == user_tmp and inner.is_dir()
            # A Unix socket's path holds 107 bytes: the folder adds "/ltf-" and 8 characters.
            assert len(str(inner)) - len(str(user_tmp)) == len("/ltf-") + 8
            (inner / "plugin1234567890").mkdir()
            (inner / "plugin1234567890" / "plugin").write_text("")
        assert os.environ["TMPDIR"] == str(user_tmp)
        assert list(user_tmp.iterdir()) == []
    finally:
        shutil.rmtree(user_tmp, ignore_errors=True)


def test_a_rehearsal_under_a_long_tmpdir_puts_its_folder_where_sockets_fit(tmp_path, monkeypatch):
    """Under a TMPDIR so deep that a plugin socket would not fit (Packer and
    the aws provider then cannot start), the rehearsal's folder goes to a
    short standard one, and is removed from there."""
    import os
    import tempfile

    from levels_tf import process
    from levels_tf.commands import rehearse

    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr(tempfile, "tempdir", None)
    (tmp_path / "work").mkdir()
    with rehearse._environment(_rehearsal(tmp_path / "work")):
        inner = Path(os.environ["TMPDIR"])
        assert str(inner.parent) in process.SHORT_TEMP_FOLDERS and inner.is_dir()
        socket = inner / "packer-plugin1234567890"
        assert len(os.fsencode(str(socket))) <= process.SOCKET_PATH_MAX
    assert not inner.exists()
    assert os.environ["TMPDIR"] == str(deep)
    assert list(deep.iterdir()) == []


def test_an_emulator_the_user_runs_is_the_one_every_later_step_and_the_report_use(
    moto_server, tmp_path, monkeypatch
):
    from levels_tf.commands import rehearse

    # Set through monkeypatch, so what _start writes is undone after the test.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    run = _rehearsal(tmp_path)
    detail = rehearse._start(run, moto_server + "/")
    assert detail == f"moto the user runs at {moto_server}"
    assert run.report.endpoint == moto_server
    assert rehearse.os.environ["AWS_ENDPOINT_URL"] == moto_server
    assert run.emulator is not None and run.emulator.server is None


def test_the_bootstrap_step_gives_the_emulator_the_github_oidc_provider(
    aws_env, tmp_path, monkeypatch
):
    """The CI roles' trust names the account's GitHub OIDC provider, which only
    bootstrap creates: the rehearsal's bootstrap step makes it, with local state too."""
    import boto3

    from levels_tf.commands import rehearse

    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)  # _start sets it; undone after the test
    run = _rehearsal(tmp_path, backend="local")
    copy_reference(run.tree)
    rehearse._start(run, aws_env)
    assert rehearse._bootstrap(run) == "local state, the GitHub OIDC provider the CI roles trust"
    iam = boto3.client("iam", endpoint_url=aws_env, region_name="us-east-1")
    (provider,) = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert provider["Arn"].endswith(":oidc-provider/token.actions.githubusercontent.com")


def _spell_over(script: dict[float, list[str]], limit: float = 90, quiet: float = 60):
    """Feed an ErrorSpell a look every 2 s for the script's span; `script` maps
    a look's time to the error lines logged since the look before. Returns
    (the time it called for a stop, its reason), or (None, None)."""
    spell = ErrorSpell(limit=limit, quiet=quiet)
    now = 0.0
    while now <= max(script) + 2:
        reason = spell.observe(now, script.get(now, []))
        if reason:
            return now, reason
        now += 2
    return None, None


BARE = "127.0.0.1 - - POST / HTTP/1.1 500 -"
MISSING = "NotImplementedError: The CreateBackupSelection action has not been implemented"


def test_the_watchdog_stops_errors_that_come_between_long_backoffs():
    # The provider's retryer backing off 20 s and more between failing attempts.
    stopped, reason = _spell_over({float(t): [BARE] for t in range(0, 200, 24)})
    assert stopped == 96
    assert reason == f"the emulator kept failing for 96s: {BARE}"


def test_a_silence_longer_than_the_quiet_period_ends_a_spell():
    # Errors for 60 s, a 70 s silence (the provider went on), then errors for 60 s.
    first = {float(t): [BARE] for t in range(0, 61, 10)}
    second = {float(t): [BARE] for t in range(130, 191, 10)}
    assert _spell_over(first | second) == (None, None)
    # The same silence within the quiet period: one spell, stopped at 90 s.
    closer = {float(t): [BARE] for t in range(110, 171, 10)}
    assert _spell_over(first | closer)[0] == 110


def test_a_not_implemented_error_is_the_reason_over_a_bare_status():
    script = {0.0: [MISSING, BARE], 40.0: [BARE], 92.0: [BARE]}
    stopped, reason = _spell_over(script)
    assert stopped == 92
    assert reason is not None and reason.endswith(MISSING)


def test_no_errors_no_stop():
    assert _spell_over({300.0: []}) == (None, None)
