"""infra.yaml -> validated model: schema first, then the cross-field rules.

Every problem is collected and reported at once, each with file:line:column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import effective, loader, rules, typed
from .errors import ConfigError, Problem
from .loader import Document
from .model import Infra


@dataclass(frozen=True)
class Config:
    """A validated infra.yaml: the model, each environment's effective model, the source."""

    path: Path
    infra: Infra
    environments: dict[str, Infra]
    document: Document
    amis: dict[str, str] = field(default_factory=dict)

    def ami_for(self, image: str) -> str | None:
        """The baked AMI of `image` in the configuration's region, if any."""
        return self.amis.get(image)


def load_config(path: str | Path) -> Config:
    document = loader.load(path)
    return validate_document(document, Path(path))


def validate_document(document: Document, path: Path) -> Config:
    document = effective.expand_dotted(document)
    infra = _model(document)
    problems = rules.check(infra, document)
    environments: dict[str, Infra] = {}
    for env in infra.all_environments:
        merged = effective.merge(document, env)
        try:
            environments[env] = _model(merged)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(rules.check_environment(environments[env], env, merged))
    if problems:
        raise ConfigError(problems)
    return Config(path, infra, environments, document)


def _model(document: Document) -> Infra:
    try:
        return typed.load(Infra, document.data)
    except typed.Invalid as exc:
        raise ConfigError([_problem(document, issue) for issue in exc.issues]) from None


def _problem(document: Document, issue: typed.Issue) -> Problem:
    if issue.kind == "key":
        return document.problem(issue.path, "invalid key: " + issue.message, key=True)
    return document.problem(issue.path, issue.message, key=issue.kind in ("unknown", "missing"))
