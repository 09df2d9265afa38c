"""The render plan and the values the stacks receive."""

from __future__ import annotations

import textwrap

import jinja2
import pytest

from levels_tf import loader, render, templating
from levels_tf.errors import TemplateError
from levels_tf.validation import load_config, validate_document

from .conftest import REFERENCE

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
"""


def _render(text: str) -> dict[str, str]:
    from pathlib import Path

    return render.render(
        validate_document(loader.parse(textwrap.dedent(text), "infra.yaml"), Path("infra.yaml"))
    )


def test_files_per_stack_and_module():
    files = _render(MINIMAL)
    stacks = sorted({p.split("/")[1] for p in files if p.startswith("stacks/")})
    assert stacks == ["lab-shared", "live", "live-shared", "one", "two"]
    assert "stacks/live-shared/main.tf" in files and "stacks/live/shared.tf" in files
    assert sorted(p for p in files if p.startswith("modules/network/")) == [
        "modules/network/README.md",
        "modules/network/flow-logs.tf",
        "modules/network/main.tf",
        "modules/network/nacl.tf",
        "modules/network/outputs.tf",
        "modules/network/variables.tf",
        "modules/network/versions.tf",
    ]


def test_nat_defaults_follow_production():
    files = _render(MINIMAL)
    assert 'nat_mode = "per_az"' in files["stacks/live-shared/main.tf"]
    assert 'nat_mode = "single"' in files["stacks/lab-shared/main.tf"]


def test_local_backend_and_remote_state():
    files = _render(MINIMAL)
    assert (
        'backend "local" {\n    path = "terraform.tfstate"\n  }' in files["stacks/one/versions.tf"]
    )
    assert 'path = "../lab-shared/terraform.tfstate"' in files["stacks/one/shared.tf"]


def test_s3_backend_per_group_and_key_per_stack():
    files = render.render(load_config(REFERENCE))
    dev = files["stacks/dev/versions.tf"]
    assert 'bucket       = "levels-tfstate-nonprod"' in dev
    assert 'key          = "dev/terraform.tfstate"' in dev
    assert "use_lockfile = true" in dev
    shared = files["stacks/production-shared/versions.tf"]
    assert 'bucket       = "levels-tfstate-production"' in shared
    assert 'key    = "nonprod-shared/terraform.tfstate"' in files["stacks/qa/shared.tf"]


def test_default_tags_layered():
    files = render.render(load_config(REFERENCE))
    providers = files["stacks/dev/providers.tf"]
    for line in (
        'CostCenter  = "levels"',
        'Project     = "levels"',
        'Stack       = "dev"',
        'Environment = "dev"',
        'ManagedBy   = "levels-tf"',
    ):
        assert line in providers, providers
    assert "Environment" not in files["stacks/nonprod-shared/providers.tf"]


def test_zones_keyed_by_name_with_fixed_slots():
    files = _render(MINIMAL.replace("azs: 3", "azs: 2"))
    grown = _render(MINIMAL)
    two = files["stacks/live-shared/main.tf"]
    three = grown["stacks/live-shared/main.tf"]
    assert "eu-west-1c" not in two and "eu-west-1c = {" in three
    # The zones both have are unchanged: adding a zone moves no subnet.
    block = two.split("zones = {")[1].split("ssh_ingress_cidrs")[0].rstrip().rstrip("}")
    assert block.strip() in three


def test_no_bastion_means_no_ssh_in_acls():
    files = _render(MINIMAL)
    assert "ssh_ingress_cidrs       = []" in files["stacks/live-shared/main.tf"]


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
    providers = files["stacks/dev/providers.tf"]
    for service in ENDPOINT_SERVICES:
        assert '"http://127.0.0.1:4566"' in providers and f"    {service} " in providers
    assert providers.count("skip_credentials_validation = true") == 2  # both providers
    assert 'backend "local"' in files["stacks/dev/versions.tf"]
    assert 'path = "../nonprod-shared/terraform.tfstate"' in files["stacks/dev/shared.tf"]


def test_emulator_endpoint_with_s3_state():
    from levels_tf.options import RenderOptions, apply

    files = render.render(apply(load_config(REFERENCE), RenderOptions("http://127.0.0.1:4566")))
    versions = files["stacks/production-shared/versions.tf"]
    assert 'backend "s3"' in versions and "use_path_style              = true" in versions
    assert 's3  = "http://127.0.0.1:4566"' in versions
    assert 'sts = "http://127.0.0.1:4566"' in files["stacks/qa/shared.tf"]


def test_default_render_has_no_emulator_settings():
    files = render.render(load_config(REFERENCE))
    stacks = {path: text for path, text in files.items() if path.startswith("stacks/")}
    assert not any(
        "skip_credentials_validation" in text or "endpoints" in text for text in stacks.values()
    )


@pytest.mark.parametrize(
    "options", [{"aws_endpoint": "ftp://x"}, {"aws_endpoint": "localhost:4566"}, {"backend": "gcs"}]
)
def test_bad_render_options_are_usage_errors(options):
    from levels_tf.errors import UsageError
    from levels_tf.options import RenderOptions

    with pytest.raises(UsageError):
        RenderOptions(**options)
