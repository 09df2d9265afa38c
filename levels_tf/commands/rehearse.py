"""`levels-tf rehearse`: the whole platform's life cycle on an AWS emulator.

Start an emulator on loopback, seed it, render a temporary copy of the
platform for it, bootstrap state, bake, package, apply every stack, check the
result through the AWS API, roll one image, plan again, destroy, stop. The
user's own tree, state and credentials are never used: everything happens in
a temporary folder with fake credentials, and the emulator's gaps are
adapted in that folder only (emulator_profile.py), each listed in the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import console, emulator, image_lock, packer_files, platform_checks, process, scheduler
from ..aws import Aws
from ..emulator_profile import (
    PROFILES,
    Profile,
    Seeded,
    bastion_ami,
    seed_images,
)
from ..endpoint import check_endpoint
from ..errors import LevelsError, UsageError
from ..names import BASTION_AMI_PARAMETER
from ..options import RenderOptions
from ..plan_summary import NotPlanned
from ..rehearsal_report import (
    FAILED,
    INTERRUPTED,
    KEPT,
    PASSED,
    SKIPPED,
    Outcome,
    PlannedChange,
    Report,
)
from ..stacks import Stack
from ..stacks import stacks as all_stacks
from ..terraform import EngineChoice
from ..validation import load_config
from ..workspace import Workspace, open_workspace

STEPS = (
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
)
# Steps that run even after an earlier one failed: what was applied must go, the emulator must stop.
ALWAYS = ("destroy", "stop")
WATCHDOG_SECONDS = 90  # an emulator answering 5xx for this long fails the step
QUIET_SECONDS = 60  # no emulator error for this long (at least): the errors stopped
MIRROR_VARIABLE = "LEVELS_TF_PROVIDER_MIRROR"
# Where a rehearsal's changes may be when one image is baked again: its fleets' launch templates and groups.
ROLLED_TYPES = ("aws_launch_template", "aws_autoscaling_group")


class StepFailed(LevelsError):
    """A step of the rehearsal did not do what it must; the message says what."""

    exit_code = 1


@dataclass
class Rehearsal:
    """One run: where it happens and what it has found so far."""

    config_path: Path
    profile: Profile
    kind: emulator.Kind
    work: Path
    engine: EngineChoice
    parallelism: int
    watchdog_seconds: float
    report: Report
    backend: str | None = None
    keep: bool = False
    emulator: emulator.Emulator | None = None
    seeded: Seeded = field(default_factory=lambda: Seeded(None))

    @property
    def tree(self) -> Path:
        return self.work / "tree"

    @property
    def config(self) -> Path:
        return self.tree / "infra.yaml"

    @property
    def options(self) -> RenderOptions:
        assert self.emulator is not None
        return RenderOptions(self.emulator.url, self.backend)

    def workspace(self, names: tuple[str, ...] = ()) -> Workspace:
        return open_workspace(self.config, names, not names, self.options, self.engine)

    def aws(self) -> Aws:
        assert self.emulator is not None
        infra = load_config(self.config).infra
        return Aws(infra.region, self.emulator.url, emulator.FAKE_CREDENTIALS)


def rehearse(
    config_path: Path,
    *,
    emulator_name: str,
    endpoint: str | None,
    backend: str | None,
    keep: bool,
    as_json: bool,
    engine: EngineChoice,
    parallelism: int,
    watchdog_seconds: float = WATCHDOG_SECONDS,
) -> int:
    """Run the life cycle on `emulator_name` (or the emulator the user runs at
    `endpoint`); print the report (JSON with `as_json`). Exit 0 when every
    step and check passed, 1 otherwise, 130 when interrupted; UsageError
    (exit 2, nothing started) for a bad configuration or option."""
    config = load_config(config_path)  # an invalid infra.yaml stops here, before anything starts
    profile = PROFILES.get(emulator_name)
    if profile is None:
        raise UsageError(f"--emulator {emulator_name!r}: one of {', '.join(PROFILES)}")
    if endpoint is not None:
        endpoint = check_endpoint(endpoint, option="--endpoint", loopback=True)
    work = Path(tempfile.mkdtemp(prefix="levels-tf-rehearsal-"))
    run = Rehearsal(
        config_path=config_path,
        profile=profile,
        kind=emulator.KINDS[emulator_name],
        work=work,
        engine=engine,
        parallelism=parallelism,
        watchdog_seconds=watchdog_seconds,
        report=Report(emulator=emulator_name),
        backend=backend,
        keep=keep,
    )
    for name in STEPS:
        run.report.step(name)
    with _stdout_for(as_json), _environment(run):
        try:
            _copy_platform(config_path, run.tree, config)
            _steps(run, endpoint)
        except KeyboardInterrupt:
            run.report.interrupted = True
            console.err("interrupted: stopping the emulator and removing the rehearsal tree")
            process.interrupt_running(grace=10)
        finally:
            _stop(run)
            if keep:
                run.report.tree = str(run.tree)
            else:
                shutil.rmtree(work, ignore_errors=True)
    console.report(json.dumps(_json(run.report), indent=2) if as_json else _text(run.report))
    if run.report.interrupted:
        return 130
    return 0 if run.report.ok else 1


def _json(report: Report) -> dict:
    from ..rehearsal_report import as_json

    return as_json(report)


def _text(report: Report) -> str:
    from ..rehearsal_report import text

    return text(report)


# --- the steps ------------------------------------------------------------------------


def _steps(run: Rehearsal, endpoint: str | None) -> None:
    failed = False
    plan: list[tuple[str, Callable[[], str]]] = [
        ("emulator", lambda: _start(run, endpoint)),
        ("seed", lambda: _seed(run)),
        ("render", lambda: _render(run)),
        ("bootstrap", lambda: _bootstrap(run)),
        ("bake", lambda: _bake(run)),
        ("package", lambda: _package(run)),
        ("apply", lambda: _apply(run)),
        ("check", lambda: _check(run)),
        ("roll", lambda: _roll(run)),
        ("re-plan", lambda: _replan(run)),
        ("destroy", lambda: _destroy(run)),
    ]
    for name, action in plan:
        if failed and name not in ALWAYS:
            continue
        if name == "destroy" and run.keep:
            run.report.step(name).status = KEPT
            run.report.step(name).detail = "--keep: the platform is left as applied"
            continue
        if name == "destroy" and (run.emulator is None or not _applied_anything(run)):
            continue
        if not _run_step(run, name, action):
            failed = True


def _run_step(run: Rehearsal, name: str, action: Callable[[], str]) -> bool:
    step = run.report.step(name)
    start = time.monotonic()
    console.out(f"== {name}")
    watchdog = _Watchdog(run)
    watchdog.start()
    try:
        step.detail = action() or ""
        step.status = PASSED
    except LevelsError as exc:
        step.status = FAILED
        step.detail = watchdog.reason or str(exc).splitlines()[0]
        console.lines(exc.lines(), to_err=True)
    except KeyboardInterrupt:
        step.status = INTERRUPTED
        raise
    finally:
        watchdog.stop()
        step.seconds = time.monotonic() - start
    console.out(
        f"== {name}: {step.status} in {step.seconds:.0f}s"
        + (f" ({step.detail})" if step.detail else "")
    )
    return step.status == PASSED


def _start(run: Rehearsal, endpoint: str | None) -> str:
    if endpoint is not None:
        run.emulator = emulator.user_run(run.kind, endpoint)
        detail = f"{run.kind.name} the user runs at {run.emulator.url}"
    else:
        infra = load_config(run.config).infra
        seed = emulator.write_seed(run.work / "amis.json", seed_images(infra))
        settings = dict(run.profile.env)
        if run.kind.name == "moto":
            settings["MOTO_AMIS_PATH"] = str(seed)
        run.emulator = emulator.start(run.kind, run.work, dict(os.environ), settings)
        detail = f"{run.kind.name} at {run.emulator.url}"
    # Every SDK and tool started from here on talks to the emulator, whoever runs it.
    os.environ["AWS_ENDPOINT_URL"] = run.emulator.url
    run.report.endpoint = run.emulator.url
    return detail


def _seed(run: Rehearsal) -> str:
    infra = load_config(run.config).infra
    aws = run.aws()
    made = []
    records = seed_images(infra)
    for image in sorted({i.base for i in infra.images.values() if i.base}):
        base = packer_files.BASES[image]
        if not aws.find_images(base.owner, base.name):
            raise StepFailed(
                f"the emulator offers no AMI for {image} ({base.owner} {base.name}), nothing to bake from"
            )
    made.append(f"{len(records)} base AMIs")
    zone_id = None
    if infra.dns is not None:
        zone_id = aws.create_hosted_zone(infra.dns.domain)
        made.append(f"hosted zone {infra.dns.domain} ({zone_id})")
    if run.profile.ami_parameter_reason:
        aws.put_parameter(
            BASTION_AMI_PARAMETER, bastion_ami(records), "The bastion's AMI in a rehearsal"
        )
        made.append(BASTION_AMI_PARAMETER)
    run.seeded = Seeded(zone_id)
    return ", ".join(made)


def _render(run: Rehearsal) -> str:
    from . import render as render_cmd

    with _quiet():
        render_cmd.render(run.config, None, False, run.options)
    _adapt(run)
    return f"{len(run.report.adaptations)} adaptation(s) to {run.profile.name}"


def _adapt(run: Rehearsal) -> None:
    """Write the profile's override files into the rehearsal tree (again after each render)."""
    infra = load_config(run.config).infra
    shared = [s.name for s in all_stacks(infra) if s.environment is None]
    adaptations = run.profile.adaptations(infra, shared, run.seeded, run.tree)
    for adaptation in adaptations:
        target = run.tree / adaptation.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(adaptation.text, encoding="utf-8")
    run.report.adaptations = [(a.path, a.reason) for a in adaptations]
    if (
        not run.profile.state_bucket_tls_statement
        and infra.state.backend == "s3"
        and run.backend != "local"
    ):
        run.report.adaptations.append(("(state buckets)", run.profile.tls_reason))


def _bootstrap(run: Rehearsal) -> str:
    from . import bootstrap as bootstrap_cmd

    bootstrap_cmd.bootstrap(
        run.config, None, run.options, tls_only=run.profile.state_bucket_tls_statement
    )
    infra = load_config(run.config).infra
    made = (
        "local state"
        if (run.backend or infra.state.backend) == "local"
        else "S3 state buckets on the emulator"
    )
    github = infra.ci.github
    if github is not None and github.provider_arn is None:
        made += ", the GitHub OIDC provider the CI roles trust"
    return made


def _bake(run: Rehearsal, names: tuple[str, ...] = (), version: str = "rehearsal.1") -> str:
    from . import bake as bake_cmd

    infra = load_config(run.config).infra
    if not infra.images:
        return "no images"
    code = bake_cmd.bake(run.config, names, not names, run.options, None, version)
    if code != 0:
        raise StepFailed("packer could not bake every image")
    _adapt(run)
    lock = image_lock.load_lock(run.tree / image_lock.LOCK_FILE)
    return ", ".join(
        f"{name} {lock.images[name][infra.region].ami}" for name in (names or sorted(infra.images))
    )


def _package(run: Rehearsal) -> str:
    from . import package as package_cmd

    infra = load_config(run.config).infra
    if not infra.functions:
        return "no functions"
    package_cmd.package(run.config, None, ())
    return ", ".join(infra.functions)


def _apply(run: Rehearsal) -> str:
    """Every stack, wave by wave. moto (whose server runs each request in a
    thread of its own) now and then refuses one of many creates that arrive
    at once as a duplicate; the stacks that did not apply get one more pass,
    one stack at a time. A real error fails that pass too."""
    from .apply import walk_waves

    workspace = run.workspace()
    if walk_waves(workspace, yes=True, parallelism=run.parallelism) == 0:
        return f"{len(workspace.stacks)} stacks"
    console.err(
        "apply: not every stack applied; planning and applying once more, one stack at a time"
    )
    if walk_waves(run.workspace(), yes=True, parallelism=1) != 0:
        raise StepFailed("not every stack was applied, twice")
    return f"{len(workspace.stacks)} stacks, after a second pass (see the errors above)"


def _applied_anything(run: Rehearsal) -> bool:
    return run.report.step("apply").status != SKIPPED


def _lock_amis(run: Rehearsal) -> dict[str, str]:
    infra = load_config(run.config).infra
    lock = image_lock.load_lock(run.tree / image_lock.LOCK_FILE)
    return {
        name: regions[infra.region].ami
        for name, regions in lock.images.items()
        if infra.region in regions
    }


def _check(run: Rehearsal, step: str = "check") -> str:
    config = load_config(run.config)
    found = platform_checks.check_platform(run.aws(), config, _lock_amis(run))
    failed = 0
    for check in found:
        known = None if check.passed else run.profile.unreadable_check(step, check.name)
        run.report.checks.append(
            Outcome(step, check.name, check.passed, check.detail, known.reason if known else "")
        )
        verdict = "pass" if check.passed else ("n/a " if known else "FAIL")
        console.out(
            f"{verdict}  {check.name}"
            + ("" if check.passed else f": {known.reason if known else check.detail}")
        )
        failed += not check.passed and not known
    if failed:
        raise StepFailed(f"{failed} of {len(found)} checks failed")
    passed = sum(c.passed for c in found)
    return f"{passed} checks passed" + (
        f", {len(found) - passed} the emulator cannot answer" if passed < len(found) else ""
    )


def _roll(run: Rehearsal) -> str:
    """Bake one image again, plan: only its fleets' launch templates and
    groups change; apply; each group runs the new template version, which
    runs the new AMI."""
    from .apply import apply_stacks
    from .plan import plan_stacks

    config = load_config(run.config)
    infra = config.infra
    used = sorted({s.image for s in infra.services.values()})
    if not used:
        return "no fleets to roll"
    image = used[0]
    refreshes = run.profile.refreshes_instances
    before = platform_checks.fleet_versions(run.aws(), config, image, refreshes=refreshes)
    _bake(run, (image,), "rehearsal.2")
    new_ami = _lock_amis(run)[image]
    workspace = run.workspace()
    items = plan_stacks(workspace, workspace.stacks, parallelism=run.parallelism)
    outcomes = []
    unexpected = []
    rolled = set()
    for item in items:
        if isinstance(item, NotPlanned):
            raise StepFailed(f"{item.stack}: {item.sentence}")
        for change in item.changes:
            if change.type in ROLLED_TYPES and _names_fleet_of(change.address, infra, image):
                rolled.add(item.stack)
                continue
            if run.profile.difference(item.stack, change.address):
                continue
            unexpected.append(f"{item.stack}: {change.address} ({change.action})")
    if unexpected:
        raise StepFailed(
            f"baking {image} again changes more than its fleets: {'; '.join(unexpected[:5])}"
        )
    ready = [s for s in workspace.stacks if s.name in rolled]
    results = apply_stacks(workspace, ready, run.parallelism)
    if any(o.status is not scheduler.OK for o in results.values()):
        raise StepFailed("the roll's apply failed")
    after = platform_checks.fleet_versions(run.aws(), config, image, refreshes=refreshes)
    for fleet, version in sorted(after.items()):
        previous = before.get(fleet)
        outcomes.append(
            Outcome(
                "roll",
                f"{fleet[0]}: {fleet[1]}'s group runs a new launch template version with {image}'s new AMI",
                version.number != (previous.number if previous else None)
                and version.image_id == new_ami,
                f"version {previous.number if previous else '?'} -> {version.number}, AMI {version.image_id} (baked {new_ami})",
            )
        )
        if run.profile.refreshes_instances:
            outcomes.append(
                Outcome(
                    "roll",
                    f"{fleet[0]}: {fleet[1]}'s instance refresh started",
                    version.refreshing,
                    "",
                )
            )
    run.report.checks.extend(outcomes)
    failed = [o for o in outcomes if not o.passed]
    for o in outcomes:
        console.out(f"{'pass' if o.passed else 'FAIL'}  {o.name}: {o.detail}")
    if failed:
        raise StepFailed(f"{len(failed)} of {len(outcomes)} roll checks failed")
    return f"{image} -> {new_ami}, {len(after)} fleets rolled"


def _names_fleet_of(address: str, infra, image: str) -> bool:
    services = [name for name, s in infra.services.items() if s.image == image]
    return any(f'["{name}"]' in address for name in services)


def _replan(run: Rehearsal) -> str:
    from .plan import plan_stacks

    workspace = run.workspace()
    items = plan_stacks(workspace, workspace.stacks, parallelism=run.parallelism)
    failed = []
    for item in items:
        if isinstance(item, NotPlanned):
            failed.append(f"{item.stack}: {item.sentence}")
            continue
        for change in item.changes:
            known = run.profile.difference(item.stack, change.address)
            run.report.replanned.append(
                PlannedChange(
                    item.stack, change.address, change.action, known.reason if known else ""
                )
            )
    for stack in workspace.stacks:
        workspace.plan_file(stack).unlink(missing_ok=True)
    if failed:
        raise StepFailed("; ".join(failed))
    drift = run.report.unexpected
    if drift:
        raise StepFailed(f"{len(drift)} change(s) after apply that the emulator does not explain")
    explained = len(run.report.replanned)
    return f"empty but for {explained} known emulator difference(s)" if explained else "empty"


def _destroy(run: Rehearsal) -> str:
    """Every stack, each after the stacks that read it (environments before
    their shared stack), independent ones at once."""
    from .destroy import Consent, destroy

    infra = load_config(run.config).infra
    consent = Consent(
        allow_production=True,
        ignore_dependents=False,
        lift_protection=True,
        empty_asset_buckets=True,
    )
    ordered = all_stacks(infra)
    readers = {s.name: tuple(r.name for r in ordered if s.name in r.depends_on) for s in ordered}
    reverse = [dataclasses.replace(s, depends_on=readers[s.name]) for s in reversed(ordered)]

    def action(stack: Stack) -> None:
        destroy(
            run.config,
            stack.name,
            confirm=stack.name,
            consent=consent,
            options=run.options,
            engine=run.engine,
        )

    outcomes = scheduler.run(reverse, action, run.parallelism)
    failed = []
    for name, outcome in outcomes.items():
        if outcome.status is scheduler.FAILED:
            message = str(outcome.error).splitlines()[0]
            failed.append(message if message.startswith(f"{name}:") else f"{name}: {message}")
        elif outcome.status is scheduler.SKIPPED:
            failed.append(f"{name}: not destroyed, {outcome.value}")
    if failed:
        raise StepFailed("; ".join(failed))
    return f"{len(ordered)} stacks destroyed"


def _stop(run: Rehearsal) -> None:
    step = run.report.step("stop")
    start = time.monotonic()
    if run.emulator is not None:
        run.emulator.stop()
        step.status = PASSED
        step.detail = "" if run.emulator.server else "left running: the user's"
    step.seconds = time.monotonic() - start


# --- the surroundings -----------------------------------------------------------------


def _copy_platform(config_path: Path, tree: Path, config) -> None:
    """infra.yaml and the image scripts it names, into the rehearsal tree (nothing else of the user's)."""
    tree.mkdir(parents=True)
    shutil.copy2(config_path, tree / "infra.yaml")
    source = config_path.parent
    for image in config.infra.images.values():
        for script in image.scripts:
            target = tree / script
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / script, target)


@contextlib.contextmanager
def _environment(run: Rehearsal) -> Iterator[None]:
    """The process environment of a rehearsal, restored afterwards: fake
    credentials, no AWS profile or config, no instance metadata, no proxy to
    loopback, Terraform in automation, the provider mirror when one is named,
    and a TMPDIR of its own, removed afterwards with whatever was left in it."""
    saved = dict(os.environ)
    # Terraform's providers make their plugin sockets in TMPDIR, and one
    # killed on a loaded machine leaves its folder there: the programs of the
    # rehearsal get a temporary folder of its own, removed with it. A short
    # name in a short folder, since a plugin socket's path must fit in 107
    # bytes (process.socket_safe_temp_folder).
    prefix = "ltf-"
    base = process.socket_safe_temp_folder(os.environ.get("TMPDIR"), extra=len(prefix) + 9)
    scratch = tempfile.mkdtemp(prefix=prefix, dir=base)
    try:
        os.environ["TMPDIR"] = scratch
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            del os.environ[name]
        infra = load_config(run.config_path).infra
        os.environ.update(
            AWS_ACCESS_KEY_ID=emulator.FAKE_CREDENTIALS[0],
            AWS_SECRET_ACCESS_KEY=emulator.FAKE_CREDENTIALS[1],
            AWS_DEFAULT_REGION=infra.region,
            AWS_REGION=infra.region,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            TF_IN_AUTOMATION="1",
            CHECKPOINT_DISABLE="1",
        )
        loopback = "127.0.0.1,localhost"
        for name in ("NO_PROXY", "no_proxy"):
            os.environ[name] = ",".join(filter(None, [os.environ.get(name), loopback]))
        mirror = os.environ.get(MIRROR_VARIABLE)
        if mirror:
            os.environ["TF_CLI_CONFIG_FILE"] = str(_cli_config(run.work, mirror))
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(scratch, ignore_errors=True)


def _cli_config(work: Path, mirror: str) -> Path:
    """A Terraform CLI configuration taking hashicorp providers from the filesystem mirror `mirror`."""
    rc = work / "terraformrc"
    rc.write_text(
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(mirror)}\n"
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n",
        encoding="utf-8",
    )
    return rc


@contextlib.contextmanager
def _stdout_for(as_json: bool) -> Iterator[None]:
    """With --json, stdout carries the report alone: progress goes to stderr."""
    if not as_json:
        yield
        return
    with console.progress_to_stderr():
        yield


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with console.muted():
        yield


class _Watchdog:
    """Fails a step whose emulator keeps answering 5xx (or "not implemented")
    for `watchdog_seconds`: the provider would otherwise retry until its own
    timeout. Stops the programs the step runs and keeps the emulator's error."""

    def __init__(self, run: Rehearsal):
        self.run = run
        self.reason = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        if self.run.emulator is not None:
            self.run.emulator.server_errors()  # what was logged before this step is not its business
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        # A retrying provider backs off between attempts (the AWS SDK for Go's
        # standard retryer waits up to 20 s, more on a loaded machine), so
        # only a longer silence means the errors stopped.
        spell = ErrorSpell(
            limit=self.run.watchdog_seconds, quiet=max(self.run.watchdog_seconds, QUIET_SECONDS)
        )
        while not self._stop.wait(2):
            found = self.run.emulator.server_errors() if self.run.emulator is not None else []
            reason = spell.observe(time.monotonic(), found)
            if reason:
                self.reason = reason
                console.err(f"watchdog: {self.reason}; stopping the step")
                process.stop_running()
                return


@dataclass
class ErrorSpell:
    """How long an emulator has kept failing, from what its log showed at each look.

    Errors seen with silences of at most `quiet` seconds between them are one
    spell; once a spell has lasted `limit` seconds, `observe` returns the reason
    to stop the step. Times are `time.monotonic()` seconds."""

    limit: float
    quiet: float
    first_seen: float | None = None
    last_seen: float = 0.0
    last_error: str = ""

    def observe(self, now: float, found: list[str]) -> str | None:
        """Take the error lines logged since the last look, at `now`; the reason
        to stop (how long, the most telling error) once the spell reaches `limit`."""
        if self.first_seen is not None and now - self.last_seen > self.quiet:
            self.first_seen = None  # the errors stopped for a while: the provider went on
            self.last_error = ""
        if not found:
            return None
        self.last_seen = now
        text = _error_text(found)
        if _telling(text) or not _telling(self.last_error):
            self.last_error = text
        if self.first_seen is None:
            self.first_seen = now
        if now - self.first_seen < self.limit:
            return None
        return f"the emulator kept failing for {now - self.first_seen:.0f}s: {self.last_error}"


def _telling(line: str) -> bool:
    """Whether an emulator's error line says what is missing, not only a 5xx status."""
    return "implemented" in line.lower()


def _error_text(lines: list[str]) -> str:
    """The most telling of an emulator's error lines: a "not implemented" message before a bare 5xx."""
    for line in reversed(lines):
        if _telling(line):
            return line.strip()[-200:]
    return lines[-1].strip()[-200:]
