"""The one place that builds the Jinja environment.

StrictUndefined everywhere: a missing value is an error naming the template
and line, never an empty string in generated code.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import jinja2

from . import __version__, hcl, resources
from .cache_dir import cache_dir
from .errors import TemplateError


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.templates_dir())),
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["hcl"] = hcl.value
    env.filters["hcl_string"] = hcl.string
    env.filters["hcl_attributes"] = hcl.attributes
    return env


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept in the user's cache folder, keyed by their source.

    Compiling every template costs more than rendering them all; the cache is
    skipped where the folder cannot be written.
    """
    folder = cache_dir() / f"templates-{__version__}"
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


def render(template: str, context: Mapping[str, Any]) -> str:
    try:
        return environment().get_template(template).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(exc.name or template, exc.lineno, exc.message or str(exc)) from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(template, None, f"template not found: {exc.name}") from None
    except (jinja2.UndefinedError, TypeError, ValueError, KeyError) as exc:
        raise TemplateError(template, _template_line(exc, template), str(exc)) from None


def _template_line(exc: BaseException, template: str) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(template):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
