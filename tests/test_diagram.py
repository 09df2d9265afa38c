"""`levels-tf diagram` draws the platform with the real Graphviz dot.

What each image must show is derived here from the model (names.py's names,
the subnet plan), not read back from the overview the diagram draws."""

from __future__ import annotations

import base64
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from levels_tf import names, regions, subnets
from levels_tf.model import as_dict
from levels_tf.validation import load_config

from .conftest import ROOT, copy_reference, require_tool

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}href"
SIX_ZONES = ROOT / "tests" / "golden" / "six-az" / "infra.yaml"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    return copy_reference(tmp_path_factory.mktemp("reference"))


def _texts(svg: bytes) -> list[str]:
    """Every line of text the SVG shows, whitespace collapsed."""
    root = ET.fromstring(svg)
    return [" ".join("".join(t.itertext()).split()) for t in root.iter(f"{SVG}text")]


def _expected_lines(config_path: Path, env: str | None = None) -> set[str]:
    """Lines the drawing must show: every shown VPC's subnets by zone, its
    load balancer, bastion and database names, each shown fleet's name."""
    config = load_config(config_path)
    infra = config.infra
    lines = set()
    for group, vpc_group in infra.vpc_groups.items():
        if env is not None and env not in vpc_group.environments:
            continue
        zones = regions.zones(infra.region, vpc_group.azs)
        for zone in subnets.plan(vpc_group.cidr, zones, as_dict(vpc_group.subnets)):
            lines |= {f"{zone.zone} {cidr}" for cidr in (zone.public, zone.private, zone.database)}
        shared = (
            config.environments[vpc_group.environments[0]]
            if len(vpc_group.environments) == 1
            else infra
        )
        if shared.web_services():
            lines.add(names.load_balancer_name(shared, group))
        if shared.bastion:
            lines.add(names.bastion_name(shared, group))
        if shared.database:
            lines.add(names.group_resource(shared, group))
        for name in vpc_group.environments:
            if env is None or name == env:
                lines |= {
                    names.fleet_short_name(infra, name, service) for service in infra.services
                }
    return lines


def test_a_png_of_the_reference(run, reference, tmp_path):
    require_tool("dot")
    out = tmp_path / "architecture.png"
    result = run("diagram", "--out", str(out), config=reference)
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width > 1500 and height > 1500  # room for four zones per tier, legibly


def test_an_svg_stands_alone_and_shows_every_part(run, reference, tmp_path):
    require_tool("dot")
    out = tmp_path / "architecture.svg"
    result = run("diagram", "--format", "svg", "--out", str(out), config=reference)
    assert result.exit_code == 0, result.output
    svg = out.read_bytes()
    root = ET.fromstring(svg)
    links = [link for element in root.iter() if (link := element.get(XLINK) or element.get("href"))]
    images = list(root.iter(f"{SVG}image"))
    assert len(images) > 20  # an icon for each part
    for link in links:
        assert link.startswith("data:image/png;base64,"), link[:80]
    for image in images:
        data = base64.b64decode((image.get(XLINK) or "").split(",", 1)[1])
        with Image.open(io.BytesIO(data)) as icon:
            assert icon.format == "PNG"
    shown = set(_texts(svg))
    missing = _expected_lines(reference) - shown
    assert not missing
    assert {"SSH 22", "HTTPS 443", "MySQL 3306", "HTTP 8080"} <= shown
    assert re.search(rb'stroke-dasharray="5,2"', svg)  # the SSH path, dashed


def test_one_environment_in_its_vpc(run, reference, tmp_path):
    require_tool("dot")
    out = tmp_path / "dev.svg"
    result = run("diagram", "--env", "dev", "--format", "svg", "--out", str(out), config=reference)
    assert result.exit_code == 0, result.output
    shown = set(_texts(out.read_bytes()))
    assert not _expected_lines(reference, "dev") - shown
    config = load_config(reference)
    others = {
        names.fleet_short_name(config.infra, env, service)
        for env in ("production", "test", "qa")
        for service in config.infra.services
    }
    assert not others & shown
    assert "levels-production" not in shown


def test_six_zones_each_tier_lists_them(run, tmp_path):
    require_tool("dot")
    out = tmp_path / "six.svg"
    result = run("diagram", "--format", "svg", "--out", str(out), config=SIX_ZONES)
    assert result.exit_code == 0, result.output
    shown = _texts(out.read_bytes())
    expected = _expected_lines(SIX_ZONES)
    assert not expected - set(shown)
    for letter in "abcdef":
        assert (
            sum(line.startswith(f"us-east-1{letter} ") for line in shown) == 6
        )  # 3 tiers x 2 VPCs
    png = tmp_path / "six.png"
    assert run("diagram", "--out", str(png), config=SIX_ZONES).exit_code == 0
    with Image.open(png) as image:
        assert image.format == "PNG"


def test_json_says_what_was_drawn(run, reference, tmp_path):
    require_tool("dot")
    out = tmp_path / "architecture.png"
    result = run("diagram", "--env", "production", "--out", str(out), "--json", config=reference)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["path"] == str(out) and out.is_file()
    assert report["format"] == "png" and report["environment"] == "production"
    assert report["bytes"] == out.stat().st_size
    assert "production/fleet/api" in report["nodes"]
    ssh = {(e["from"], e["to"]) for e in report["edges"] if e["ssh"]}
    assert ("operators", "production/bastion") in ssh
    assert ("production/bastion", "production/fleet/worker") in ssh
    labels = {(e["from"], e["to"]): e["label"] for e in report["edges"]}
    assert labels[("production/lb", "production/fleet/api")] == "HTTP 8080"


def test_an_unknown_environment_is_one_line_and_exit_2(run, reference, tmp_path):
    out = tmp_path / "x.png"
    result = run("diagram", "--env", "staging", "--out", str(out), config=reference)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "staging" in lines[0] and "production, dev, test, qa" in lines[0]
    assert not out.exists()


def test_without_dot_it_says_to_install_graphviz(run, reference, tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "x.png"
    result = run("diagram", "--out", str(out), config=reference)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "dot" in lines[0] and "Graphviz" in lines[0]
    assert not out.exists()


def test_the_format_follows_the_suffix_of_out(run, reference, tmp_path):
    require_tool("dot")
    out = tmp_path / "architecture.svg"
    result = run("diagram", "--out", str(out), "--json", config=reference)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["format"] == "svg"
    assert ET.fromstring(out.read_bytes()).tag == f"{SVG}svg"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--format", "svg", "--out", "x.png"], "does not match --format svg; name the file x.svg"),
        (["--format", "png", "--out", "x.svg"], "does not match --format png; name the file x.png"),
        (["--out", "x.jpg"], "writes .png or .svg images; name the file x.png"),
        (["--format", "svg", "--out", "x.jpg"], "name the file x.svg"),
        (["--out", "x"], "writes .png or .svg images"),
    ],
)
def test_a_suffix_that_is_not_the_format_is_refused_before_writing(
    run, reference, tmp_path, monkeypatch, args, said
):
    monkeypatch.chdir(tmp_path)
    result = run("diagram", *args, config=reference)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
    assert not (reference.parent / "docs" / "architecture.png").exists()


def test_a_write_error_names_the_path_given_not_a_temporary_file(run, reference):
    require_tool("dot")
    out = Path("/proc/levels-tf-diagram.png")  # no file can be made there, even by root
    result = run("diagram", "--out", str(out), config=reference)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{out}: cannot write"), result.output
    assert ".tmp" not in lines[0]
