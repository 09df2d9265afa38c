"""The render plan and the values the stacks receive."""

from __future__ import annotations

import re
import textwrap
from typing import Any

import jinja2
import pytest

from levels_tf import loader, render, templating
from levels_tf.errors import TemplateError
from levels_tf.validation import load_config, validate_document

from .conftest import REFERENCE
from .test_security_invariants import parse

MINIMAL = """
project: demo
region: eu-west-1
state: {backend: local}
vpc_groups:
  live:
    production: true
    cidr: 10.8.0.0/16
    azs: 3
    environments: [live]
  lab:
    cidr: 10.9.0.0/16
    azs: 2
    environments: [one, two]
ci:
  github:
    repository: acme/demo
    subjects:
      live: {environment: live}
      lab: {branches: [main]}
"""


def _render(text: str) -> dict[str, str]:
    from pathlib import Path

    return render.render(
        validate_document(loader.parse(textwrap.dedent(text), "infra.yaml"), Path("infra.yaml"))
    )


def _parsed(files: dict[str, str], path: str) -> dict[str, Any]:
    """One rendered file, parsed (see test_security_invariants.parse)."""
    return parse({path: files[path]})[path]


def _backend(files: dict[str, str], stack: str) -> tuple[str, dict[str, Any]]:
    """The type and settings of `stack`'s backend block."""
    [(kind, settings)] = _parsed(files, f"stacks/{stack}/versions.tf")["terraform"][0]["backend"][
        0
    ].items()
    return kind, settings


def _remote_state(files: dict[str, str], stack: str) -> dict[str, Any]:
    """The arguments of environment `stack`'s terraform_remote_state data source."""
    data = _parsed(files, f"stacks/{stack}/shared.tf")["data"][0]
    return data["terraform_remote_state"]["shared"]


def _network(files: dict[str, str], group: str) -> dict[str, Any]:
    """The arguments of VPC group `group`'s network module call."""
    return _parsed(files, f"stacks/{group}-shared/main.tf")["module"][0]["network"]


def test_files_per_stack_and_module():
    files = _render(MINIMAL)
    stacks = sorted(
        {p.split("/")[1] for p in files if p.startswith("stacks/") and p.count("/") == 2}
    )
    assert stacks == ["lab-shared", "live", "live-shared", "one", "two"]
    assert "stacks/.gitignore" in files
    assert "stacks/live-shared/main.tf" in files and "stacks/live/shared.tf" in files
    assert sorted(p for p in files if p.startswith("modules/network/")) == [
        "modules/network/README.md",
        "modules/network/endpoints.tf",
        "modules/network/flow-logs.tf",
        "modules/network/main.tf",
        "modules/network/nacl.tf",
        "modules/network/outputs.tf",
        "modules/network/variables.tf",
        "modules/network/versions.tf",
    ]


def test_nat_defaults_follow_production():
    files = _render(MINIMAL)
    assert _network(files, "live")["nat_mode"] == "per_az"
    assert _network(files, "lab")["nat_mode"] == "single"


def test_local_backend_and_remote_state():
    files = _render(MINIMAL)
    assert _backend(files, "one") == ("local", {"path": "terraform.tfstate"})
    assert _remote_state(files, "one") == {
        "backend": "local",
        "config": {"path": "../lab-shared/terraform.tfstate"},
    }


def test_s3_backend_per_group_and_key_per_stack():
    files = render.render(load_config(REFERENCE))
    kind, dev = _backend(files, "dev")
    assert kind == "s3"
    assert dev["bucket"] == "levels-tfstate-nonprod"
    assert dev["key"] == "dev/terraform.tfstate"
    assert dev["use_lockfile"] is True
    assert _backend(files, "production-shared")[1]["bucket"] == "levels-tfstate-production"
    assert _remote_state(files, "qa")["config"]["key"] == "nonprod-shared/terraform.tfstate"


def test_default_tags_layered():
    files = render.render(load_config(REFERENCE))
    [provider, us_east_1] = _parsed(files, "stacks/dev/providers.tf")["provider"]
    tags = provider["aws"]["default_tags"][0]["tags"]
    assert (tags["CostCenter"], tags["Project"], tags["Stack"]) == ("levels", "levels", "dev")
    assert (tags["Environment"], tags["ManagedBy"]) == ("dev", "levels-tf")
    assert us_east_1["aws"]["default_tags"][0]["tags"] == tags
    assert "Environment" not in files["stacks/nonprod-shared/providers.tf"]


def test_zones_keyed_by_name_with_fixed_slots():
    files = _render(MINIMAL.replace("azs: 3", "azs: 2"))
    grown = _render(MINIMAL)
    two = _network(files, "live")["zones"]
    three = _network(grown, "live")["zones"]
    assert list(two) == ["eu-west-1a", "eu-west-1b"]
    assert list(three) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    # The zones both have are unchanged: adding a zone moves no subnet.
    assert {zone: three[zone] for zone in two} == two


def test_no_bastion_means_no_ssh_in_acls():
    files = _render(MINIMAL)
    assert _network(files, "live")["ssh_ingress_cidrs"] == []


def test_template_errors_name_template_and_line(tmp_path, monkeypatch):
    (tmp_path / "broken.tf.j2").write_text("ok\n{{ missing_value }}\n")
    (tmp_path / "syntax.tf.j2").write_text("a\nb\n{% if %}\n")
    monkeypatch.setattr(templating.resources, "templates_dir", lambda: tmp_path)
    templating.environment.cache_clear()
    try:
        with pytest.raises(TemplateError) as undefined:
            templating.render("broken.tf.j2", {})
        assert "broken.tf.j2:2" in str(undefined.value)
        assert "missing_value" in str(undefined.value)
        with pytest.raises(TemplateError) as syntax:
            templating.render("syntax.tf.j2", {})
        assert "syntax.tf.j2:3" in str(syntax.value)
    finally:
        templating.environment.cache_clear()


def test_environment_is_strict():
    assert templating.environment().undefined is jinja2.StrictUndefined


def test_emulator_endpoint_and_local_backend_render_for_rehearsals():
    from levels_tf.options import ENDPOINT_SERVICES, RenderOptions, apply

    config = apply(load_config(REFERENCE), RenderOptions("http://127.0.0.1:4566", "local"))
    files = render.render(config)
    providers = _parsed(files, "stacks/dev/providers.tf")["provider"]
    assert len(providers) == 2
    for provider in providers:
        settings = provider["aws"]
        assert settings["endpoints"] == [dict.fromkeys(ENDPOINT_SERVICES, "http://127.0.0.1:4566")]
        assert settings["skip_credentials_validation"] is True
    assert _backend(files, "dev")[0] == "local"
    assert _remote_state(files, "dev")["config"] == {"path": "../nonprod-shared/terraform.tfstate"}


def test_emulator_endpoint_with_s3_state():
    from levels_tf.options import RenderOptions, apply

    files = render.render(apply(load_config(REFERENCE), RenderOptions("http://127.0.0.1:4566")))
    kind, settings = _backend(files, "production-shared")
    assert kind == "s3" and settings["use_path_style"] is True
    assert settings["endpoints"]["s3"] == "http://127.0.0.1:4566"
    assert _remote_state(files, "qa")["config"]["endpoints"]["sts"] == "http://127.0.0.1:4566"


def test_default_render_has_no_emulator_settings():
    files = render.render(load_config(REFERENCE))
    stacks = {path: text for path, text in files.items() if path.startswith("stacks/")}
    # The provider's endpoints block, not the network's VPC endpoint arguments.
    assert not any(
        "skip_credentials_validation" in text or re.search(r"^\s*endpoints\s*\{", text, re.M)
        for text in stacks.values()
    )


@pytest.mark.parametrize(
    "options", [{"aws_endpoint": "ftp://x"}, {"aws_endpoint": "localhost:4566"}, {"backend": "gcs"}]
)
def test_bad_render_options_are_usage_errors(options):
    from levels_tf.errors import UsageError
    from levels_tf.options import RenderOptions

    with pytest.raises(UsageError):
        RenderOptions(**options)
