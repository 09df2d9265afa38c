"""`levels-tf bake`: build images with Packer, record their AMIs, re-render.

For each image: `packer build` of packer/<image>.pkr.hcl, the AMI read from
the manifest of that very run, and an entry in images.lock, written
atomically and only after the build succeeded. The tree is then rendered
again, so the stacks' launch templates take the new AMIs.
"""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from .. import console, image_lock, packer_files, process, progress, typed, writer
from ..aws import Aws, AwsError
from ..errors import LevelsError, UsageError, WriteError
from ..options import RenderOptions, apply, resolve
from ..packer import Packer, PackerError, read_manifest
from ..render import render as render_files
from ..stacks import ENVIRONMENT, stacks
from ..validation import Config, load_config

GIT_TIMEOUT = 30
# What the emulator build signs its requests with (as packer's emulator build
# does), so a bake against an emulator can never act on a real account.
EMULATOR_CREDENTIALS = ("emulator", "emulator")


class StaleTreeError(LevelsError):
    """The generated tree does not match infra.yaml (and images.lock)."""


@dataclasses.dataclass(frozen=True)
class Baked:
    image: str
    entry: image_lock.LockEntry
    previous: str | None  # the AMI images.lock had before


def default_version(now: datetime | None = None) -> str:
    """The version of a bake when none is given: its UTC time, e.g. 20261126.0512."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%d.%H%M")


def bake(
    config_path: Path,
    names: tuple[str, ...],
    all_images: bool,
    options: RenderOptions = RenderOptions(),
    packer_bin: str | None = None,
    version: str | None = None,
    as_json: bool = False,
) -> int:
    """Bake `names` (or every image), record each AMI built, render again; 1 when any failed.

    `options` must agree with those the tree was rendered with, which the
    bake uses: with an endpoint, Packer builds on that emulator. It never
    asks, so --json needs no other option. With `as_json`, ends with
    `report`'s document."""
    base = load_config(config_path)
    folder = config_path.parent
    selected = _selected(base, names, all_images)
    version = version if version is not None else default_version()
    _check_version(version)
    options = resolve(folder, options, base.infra.state.backend)
    config = apply(base, options)
    aws_endpoint = options.aws_endpoint
    packer = Packer.locate(packer_bin)
    _refuse_stale(folder, config)

    config_dir = folder.resolve()
    region = config.infra.region
    revision = git_revision(config_dir)
    build = packer_files.BUILD_EMULATOR if aws_endpoint else packer_files.BUILD_AWS
    variables = {
        "version": version,
        "git_revision": revision,
        "region": region,
        "config_dir": str(config_dir),
    }
    if aws_endpoint:
        variables["custom_endpoint_ec2"] = aws_endpoint
    where = f"the emulator at {aws_endpoint}" if aws_endpoint else f"AWS {region}"
    console.out(
        f"baking {', '.join(selected)} with packer {packer.version_text} on {where}: "
        f"version {version}, git revision {revision or '(none)'}"
    )
    if packer.init(
        Path("packer") / "plugins", cwd=folder, on_line=_progress("packer init", time.monotonic())
    ):
        console.out("packer init: the plugins packer/plugins requires are installed")

    ec2 = Aws(region, aws_endpoint, EMULATOR_CREDENTIALS if aws_endpoint else None)
    with progress.view(list(selected), "baking") as board:
        baked, failed = _bake_all(
            packer, ec2, config, folder, selected, build, variables, board, config_path, options
        )

    if baked:
        _render_again(config_path, options, baked)
    if as_json:
        console.report_json(report(version, region, aws_endpoint, baked, failed))
    if failed:
        console.err(
            f"bake failed for {', '.join(failed)}; {image_lock.LOCK_FILE} is unchanged for "
            f"{'it' if len(failed) == 1 else 'them'}"
            + (f" (recorded: {', '.join(b.image for b in baked)})" if baked else "")
        )
        return 1
    return 0


def report(
    version: str, region: str, endpoint: str | None, baked: list[Baked], failed: list[str]
) -> dict:
    """The JSON document of `bake --json`: `{"version": str, "region": str,
    "endpoint": str | null (the emulator baked on), "images": [{"image": str,
    "ami": str, "previous_ami": str | null (images.lock's before), "version":
    str, "source_ami": str, "git_revision": str, "built_at": str (ISO 8601
    UTC)}], "failed": [image]}`; images.lock holds the entries of `images`."""
    return {
        "version": version,
        "region": region,
        "endpoint": endpoint,
        "images": [
            {
                "image": b.image,
                "ami": b.entry.ami,
                "previous_ami": b.previous,
                "version": b.entry.version,
                "source_ami": b.entry.source_ami,
                "git_revision": b.entry.git_revision,
                "built_at": b.entry.built_at,
            }
            for b in baked
        ],
        "failed": failed,
    }


# --- before the builds -------------------------------------------------------


def _selected(config: Config, names: tuple[str, ...], all_images: bool) -> list[str]:
    defined = list(config.infra.images)
    if all_images and names:
        raise UsageError("name images or give --all, not both")
    if all_images:
        if not defined:
            raise UsageError(
                f"{config.path} defines no images to bake; add one under `images:` "
                "(see `levels-tf schema --format markdown`)"
            )
        return sorted(defined)
    if not names:
        raise UsageError(
            f"name the images to bake, or give --all; defined: {', '.join(sorted(defined)) or 'none'}"
        )
    unknown = [name for name in names if name not in config.infra.images]
    if unknown:
        raise UsageError(
            f"no image {unknown[0]!r} in {config.path}; defined: {', '.join(sorted(defined)) or 'none'}"
        )
    return list(dict.fromkeys(names))


def _check_version(version: str) -> None:
    # Checked before any build, as images.lock will check it after.
    probe = {
        "ami": "ami-00000000",
        "version": version,
        "source_ami": "ami-00000000",
        "built_at": "2000-01-01T00:00:00Z",
    }
    try:
        typed.load(image_lock.LockEntry, probe)
    except typed.Invalid as exc:
        raise UsageError(f"--version: {exc.issues[0].message}") from None


def _refuse_stale(folder: Path, config: Config) -> None:
    changes = writer.plan_changes(folder, render_files(config))
    if changes:
        shown = ", ".join(c.path for c in changes[:3]) + (", ..." if len(changes) > 3 else "")
        raise StaleTreeError(
            f"{folder}: the rendered tree is stale against infra.yaml ({len(changes)} "
            f"{'file differs' if len(changes) == 1 else 'files differ'}: {shown}); "
            f"run `levels-tf render{config.options.flags}` first, then bake"
        )


def git_revision(folder: Path) -> str:
    """HEAD of the git checkout holding `folder`; empty when it is not one (or git is missing)."""
    try:
        result = process.run(
            ["git", "rev-parse", "HEAD"], timeout=GIT_TIMEOUT, cwd=folder, check=False
        )
    except process.ToolError:
        return ""
    revision = result.stdout.strip()
    return revision if result.returncode == 0 and re.fullmatch(r"[0-9a-f]{7,64}", revision) else ""


def _bake_all(
    packer: Packer,
    ec2: Aws,
    config: Config,
    folder: Path,
    selected: list[str],
    build: str,
    variables: dict,
    board: progress.Board,
    config_path: Path,
    options: RenderOptions,
) -> tuple[list[Baked], list[str]]:
    """Bake `selected` one after the other, recording each AMI as it is made;
    (what was baked, the images whose bake failed). On Ctrl-C the images
    baked before still get their launch templates, then it goes on up."""
    baked: list[Baked] = []
    failed: list[str] = []
    region = variables["region"]
    for image in selected:
        board.start(image)
        try:
            entry = _bake_one(packer, ec2, config, folder, image, build, variables, board)
        except PackerError as exc:
            board.finish(image, progress.FAILED)
            console.lines(exc.lines(), to_err=True)
            failed.append(image)
            continue
        except KeyboardInterrupt:
            board.finish(image, progress.FAILED, "interrupted")
            # Packer was stopped (it deletes what the build made); the images
            # recorded before still get their launch templates.
            console.err(
                f"{image}: bake interrupted; {image_lock.LOCK_FILE} is unchanged for it"
                + (f" (recorded: {', '.join(b.image for b in baked)})" if baked else "")
            )
            if baked:
                _render_again(config_path, options, baked)
            raise
        previous = _record(folder / image_lock.LOCK_FILE, image, region, entry)
        baked.append(Baked(image, entry, previous))
        board.finish(image, progress.DONE, entry.ami)
        console.out(
            f"{image}: {entry.ami} in {region}, version {entry.version}; recorded in {image_lock.LOCK_FILE}"
        )
    return baked, failed


# --- one image ------------------------------------------------------------------


def _progress(label: str, started: float, board: progress.Board | None = None):
    """An on_line for Packer: its lines, each with `label` and the seconds
    since `started`; on `board`'s row instead while a live view shows it."""

    def show(line: str) -> None:
        if not line.strip():
            return
        if board is not None and board.shown:
            board.say(label, line)
        else:
            console.out(f"[{label} {time.monotonic() - started:.0f}s] {line.rstrip()}")

    return show


def _bake_one(
    packer: Packer,
    ec2: Aws,
    config: Config,
    folder: Path,
    image: str,
    build: str,
    variables: dict,
    board: progress.Board | None = None,
) -> image_lock.LockEntry:
    """Build `image`; its lock entry, from the manifest of this very run and
    the root device name EC2 gives for the source AMI."""
    manifest = folder / packer_files.MANIFESTS_DIR / f"{image}.json"
    before = {b.run_uuid for b in read_manifest(manifest)}
    started = time.monotonic()
    result = packer.build(
        f"packer/{image}.pkr.hcl",
        only=build,
        variables=variables,
        cwd=folder,
        on_line=_progress(image, started, board),
    )
    region = variables["region"]
    runs = [b for b in read_manifest(manifest) if b.run_uuid not in before]
    if not runs:
        raise PackerError(f"{image}: packer build succeeded but wrote no new build to {manifest}")
    latest = runs[-1]
    amis = latest.amis()
    if region not in amis:
        raise PackerError(f"{image}: the build made {latest.artifact_id}, no AMI in {region}")
    custom = latest.custom_data
    if custom.get("version") != variables["version"] or custom.get("image", image) != image:
        raise PackerError(
            f"{image}: {manifest} records {custom}, not this bake (version {variables['version']})"
        )
    source = config.infra.images[image].source_ami or result.source_ami()
    if not source:
        raise PackerError(
            f"{image}: packer did not say which source AMI it used (no 'Found Image ID' line)"
        )
    entry = image_lock.LockEntry(
        ami=amis[region],
        version=variables["version"],
        source_ami=source,
        git_revision=variables["git_revision"],
        built_at=custom.get("built_at", ""),
        root_device=_root_device(ec2, image, source),
    )
    try:
        image_lock.ImageLock().with_bake(image, region, entry)
    except ValueError as exc:
        raise PackerError(
            f"{image}: the build made {amis[region]}, but its record is not valid: {exc}"
        ) from None
    console.out(f"[{image} {time.monotonic() - started:.0f}s] built {amis[region]} from {source}")
    return entry


def _root_device(ec2: Aws, image: str, source: str) -> str:
    """The root device name of the baked AMI: its source AMI's, since CreateImage
    keeps the instance's device names. "" (and a warning) when EC2 does not say:
    the service module then asks EC2 for the baked AMI's at plan time."""
    try:
        name = ec2.root_device_name(source)
    except AwsError as exc:
        console.err(
            f"warning: {image}: root device of {source} unknown ({exc}); plan will read it from the AMI"
        )
        return ""
    if not re.fullmatch(image_lock.ROOT_DEVICE_RE, name):
        console.err(
            f"warning: {image}: {source} names its root device {name!r}; plan will read it from the AMI"
        )
        return ""
    return name


# --- after a build --------------------------------------------------------------


def _record(lock_path: Path, image: str, region: str, entry: image_lock.LockEntry) -> str | None:
    """Put `entry` into images.lock (read afresh, replaced atomically); the AMI it had before."""
    lock = image_lock.load_lock(lock_path)
    previous = lock.ami(image, region)
    text = image_lock.format_lock(lock.with_bake(image, region, entry))
    try:
        writer.write_atomic(lock_path, text)
    except OSError as exc:
        raise WriteError(
            f"{lock_path}: cannot write: {exc.strerror or exc}; {image} was baked as {entry.ami} "
            f"but is not recorded: make the file writable and run `levels-tf bake {image}` again "
            f"(deregister {entry.ami} if you do not keep it)"
        ) from None
    return previous


def _render_again(config_path: Path, options: RenderOptions, baked: list[Baked]) -> None:
    config = apply(load_config(config_path), options)
    folder = config_path.parent
    changes = writer.write(folder, render_files(config))
    changed = {change.path for change in changes}
    console.out(f"{folder}: rendered again, {len(changes)} files updated")
    new_ami = {b.image: b.entry.ami for b in baked if b.entry.ami != b.previous}
    previous = {b.image: b.previous for b in baked}
    rows = []
    for stack in stacks(config.infra):
        if stack.kind != ENVIRONMENT:
            continue
        services = config.environments[stack.environment].services
        path = f"stacks/{stack.name}/services.tf"
        for service, spec in services.items():
            if spec.image in new_ami and path in changed:
                rows.append(
                    f"  {stack.name}: {service} ({spec.image}: {previous[spec.image] or 'no AMI'} -> {new_ami[spec.image]})"
                )
    if rows:
        console.out(
            console.with_config(
                "launch templates that change (plan and apply these stacks; `levels-tf stacks` gives the order):"
            )
        )
        console.lines(rows)
    else:
        console.out("no launch template changes: no service uses a newly baked AMI")
