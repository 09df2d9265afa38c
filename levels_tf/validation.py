"""infra.yaml -> validated model: schema first, then the cross-field rules.

Every problem is collected and reported at once, each with file:line:column.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from . import effective, loader, rules
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
        return Infra.model_validate(document.data)
    except ValidationError as exc:
        raise ConfigError([_problem(document, error) for error in exc.errors()]) from None


def _problem(document: Document, error: dict) -> Problem:
    loc = tuple(error["loc"])
    kind = error["type"]
    if loc and loc[-1] == "[key]":
        path = loc[:-1]
        return document.problem(path, "invalid key: " + _clean(error["msg"]), key=True)
    if kind == "extra_forbidden":
        key = loc[-1]
        allowed = _fields_at(Infra, loc[:-1])
        message = "unknown key"
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean '{close[0]}'?"
        elif allowed:
            message += "; expected one of: " + ", ".join(sorted(allowed))
        return document.problem(loc, message, key=True)
    if kind == "missing":
        return document.problem(loc, "required key is missing", key=True)
    return document.problem(loc, _clean(error["msg"]))


def _clean(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def _fields_at(model: Any, loc: tuple) -> list[str]:
    """Field names of the model found by following `loc` from `model`."""
    current = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        for member in members:
            member = _unwrap(member)
            if isinstance(member, type) and issubclass(member, BaseModel):
                return member
        return members[0] if members else annotation
    return annotation


def _step(annotation: Any, part: Any) -> Any:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return field.annotation if field else None
    origin = typing.get_origin(annotation)
    if origin is dict:
        return typing.get_args(annotation)[1]
    if origin is list:
        return typing.get_args(annotation)[0]
    return None
