"""The one place that builds the Jinja environment.

StrictUndefined everywhere: a missing value is an error naming the template
and line, never an empty string in generated code.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import jinja2

from . import hcl, resources
from .errors import TemplateError


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.templates_dir())),
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
