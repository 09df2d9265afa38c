#!/usr/bin/env python
"""Where the time of `levels-tf rehearse` goes, step by step.

Runs `python -m levels_tf rehearse --json` on a copy of a configuration
(default: the reference infra.yaml and its scripts) in a temporary folder,
and prints each step's seconds, its share of the whole and the whole
against the 10-minute target. To tell a slow machine from a slow rehearsal,
it first measures a baseline in the same run: one `terraform init` and
`terraform plan` of a stack holding a single aws provider data source (the
floor of any stack's plan here: Terraform and the provider starting), and
prints every step as a multiple of it.

Standard library plus the project; terraform and packer on PATH and moto's
server installed (`pip install 'levels-tf[rehearse]'`). The provider comes
from $LEVELS_TF_PROVIDER_MIRROR (else what ../shared/tools/provider-mirror
prints; the registry where neither is found). It reports, it does not
assert: exit 0 whatever the figures, 1 only when the rehearsal itself
fails (its report is printed then).

    python benchmarks/rehearse_bench.py
    python benchmarks/rehearse_bench.py --config tests/configs/rehearsal-small/infra.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 600


def _mirror() -> str | None:
    if os.environ.get("LEVELS_TF_PROVIDER_MIRROR"):
        return os.environ["LEVELS_TF_PROVIDER_MIRROR"]
    script = ROOT.parent / "shared" / "tools" / "provider-mirror"
    if script.is_file():
        found = subprocess.run(["sh", str(script)], capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    return None


def _environment(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env.update(
        HOME=str(work / "home"),
        XDG_CACHE_HOME=str(work / "home" / ".cache"),
        TMPDIR=str(work / "tmp"),
    )
    (work / "home").mkdir()
    (work / "tmp").mkdir()
    mirror = _mirror()
    if mirror:
        env["LEVELS_TF_PROVIDER_MIRROR"] = mirror
    return env


def _cli_config(work: Path, mirror: str | None) -> Path:
    rc = work / "terraformrc"
    text = f'plugin_cache_dir = "{work / "plugins"}"\n'
    (work / "plugins").mkdir()
    if mirror:
        text += (
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/hashicorp/*"]\n  }}\n'
            '  direct {\n    exclude = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n'
        )
    rc.write_text(text, encoding="utf-8")
    return rc


def baseline(work: Path, env: dict[str, str]) -> float:
    """Seconds of `terraform init` + `terraform plan` of a one-data-source aws stack."""
    stack = work / "baseline"
    stack.mkdir()
    (stack / "main.tf").write_text(
        'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws" }\n  }\n}\n'
        'provider "aws" {\n  region = "us-east-1"\n  access_key = "bench"\n  secret_key = "bench"\n'
        "  skip_credentials_validation = true\n  skip_requesting_account_id = true\n  skip_metadata_api_check = true\n}\n"
        'data "aws_partition" "current" {}\n',
        encoding="utf-8",
    )
    run_env = dict(
        env,
        TF_CLI_CONFIG_FILE=str(_cli_config(work, env.get("LEVELS_TF_PROVIDER_MIRROR"))),
        TF_IN_AUTOMATION="1",
    )
    start = time.monotonic()
    for args in (["init", "-input=false"], ["plan", "-input=false", "-refresh=false"]):
        subprocess.run(
            ["terraform", *args], cwd=stack, env=run_env, check=True, capture_output=True
        )
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, default=ROOT / "infra.yaml", help="the infra.yaml to rehearse"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rehearse-bench-"))
    try:
        env = _environment(work)
        platform = work / "platform"
        platform.mkdir()
        shutil.copy(args.config, platform / "infra.yaml")
        if (args.config.parent / "scripts").is_dir():
            shutil.copytree(args.config.parent / "scripts", platform / "scripts")
        load = os.getloadavg()[0]
        print(
            f"configuration {args.config}; {os.cpu_count()} cores, load {load:.1f}", file=sys.stderr
        )
        floor = baseline(work, env)
        start = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "levels_tf", "-c", str(platform / "infra.yaml"), "rehearse", "--json"],
            cwd=platform, env=env, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.monotonic() - start
        try:
            report = json.loads(result.stdout)
        except json.JSONDecodeError:
            print(result.stderr[-4000:], file=sys.stderr)
            return 1
        print(f"baseline (terraform init + plan of one data source): {floor:.1f} s")
        print(f"{'step':<10} {'seconds':>8} {'share':>6} {'x baseline':>10}")
        for step in report["steps"]:
            share = step["seconds"] / wall if wall else 0
            print(
                f"{step['name']:<10} {step['seconds']:>8.1f} {share:>6.0%} {step['seconds'] / floor:>10.1f}  {step['status']}"
            )
        print(f"{'total':<10} {wall:>8.1f} {'':>6} {wall / floor:>10.1f}")
        verdict = "MET" if wall < TARGET_SECONDS else "NOT MET"
        print(
            f"target: the whole rehearsal under {TARGET_SECONDS} s: {wall:.0f} s = {wall / TARGET_SECONDS:.2f} of it, {verdict}"
        )
        print(
            f"checks: {report['checks_passed']} passed, {report['checks_failed']} failed; load at the end {os.getloadavg()[0]:.1f}"
        )
        return 0 if report["ok"] else 1
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
