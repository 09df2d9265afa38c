"""infra.yaml -> validated model: schema first, then the cross-field rules.

Every problem is collected and reported at once, each with file:line:column.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path

from . import effective, image_lock, image_scripts, loader, rules, typed
from .errors import ConfigError, Problem, UsageError
from .loader import Document
from .model import Infra
from .options import RenderOptions


@dataclass(frozen=True)
class Config:
    """A validated infra.yaml: the model, each environment's effective model, the source."""

    path: Path
    infra: Infra
    environments: dict[str, Infra]
    document: Document
    amis: dict[str, str] = field(default_factory=dict)
    root_devices: dict[str, str] = field(default_factory=dict)
    options: RenderOptions = RenderOptions()
    # Valid but almost surely not meant (rules.advisories): for the commands to print.
    advisories: tuple[Problem, ...] = ()

    def ami_for(self, image: str) -> str | None:
        """The baked AMI of `image` in the configuration's region, if any."""
        return self.amis.get(image)

    def root_device_for(self, image: str) -> str | None:
        """The root device name of that AMI as its bake recorded it (e.g. /dev/xvda), if any."""
        return self.root_devices.get(image)


def require_environment(config: Config, env: str, option: str = "--env") -> str:
    """`env` when infra.yaml defines that environment; otherwise a UsageError
    (exit 2) in one wording for every command: the option, the file, the
    closest name and the defined ones."""
    known = config.infra.all_environments
    if env in known:
        return env
    close = difflib.get_close_matches(env, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise UsageError(
        f"{option} {env}: no such environment in {config.path}; {hint}defined: {', '.join(known)}"
    )


def load_config(path: str | Path) -> Config:
    """infra.yaml at `path`, validated, with the AMIs its image lock records."""
    path = Path(path)
    document = loader.load(path)
    config = validate_document(document, path)
    lock = image_lock.load_lock(path.parent / image_lock.LOCK_FILE)
    entries = {name: lock.entry(name, config.infra.region) for name in config.infra.images}
    return dataclasses.replace(
        config,
        amis={name: entry.ami for name, entry in entries.items() if entry},
        root_devices={
            name: entry.root_device
            for name, entry in entries.items()
            if entry and entry.root_device
        },
    )


def validate_document(document: Document, path: Path) -> Config:
    document = effective.expand_dotted(document)
    infra = _model(document)
    problems = rules.check(infra, document)
    environments: dict[str, Infra] = {}
    for env in infra.all_environments:
        refused = rules.check_overrides(document, env)
        if refused:  # merged, they would read as other, confusing problems
            problems.extend(refused)
            continue
        merged = effective.merge(document, env)
        try:
            environments[env] = _model(merged)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(rules.check_environment(environments[env], env, merged))
    problems.extend(image_scripts.check_scripts(path.parent, infra, document))
    if problems:
        raise ConfigError(problems)
    return Config(
        path, infra, environments, document, advisories=tuple(rules.advisories(infra, document))
    )


def _model(document: Document) -> Infra:
    try:
        return typed.load(Infra, document.data)
    except typed.Invalid as exc:
        raise ConfigError([loader.issue_problem(document, issue) for issue in exc.issues]) from None
