#!/usr/bin/env python
"""What `plan --affected` costs after a change to one environment, against
planning every stack and against planning that one stack by name.

In a temporary folder, against a moto server this script starts on
127.0.0.1, with the Terraform CLI configuration of plan_bench.py (the aws
provider from the local mirror, one shared plugin cache):

1. generate a configuration of N environments (render_bench.generate_config:
   10 environments per VPC group, so 50 make 5 groups and 55 stacks), render
   it for moto with local state, and commit it to a new git repository;
2. ``levels-tf plan --all`` once to initialise every stack (not counted;
   the lock files it writes are committed, as a real repository keeps
   them), then again, timed: the baseline, every stack planned;
3. change one environment's override in infra.yaml (its tags), render, and
   time ``levels-tf stacks --affected --json`` (the selection alone) and
   ``levels-tf plan --affected`` (selection and plan); the selection must be
   exactly that environment's stack, or the benchmark fails;
4. time ``levels-tf plan STACK`` for that stack alone: one stack's plan.

Nothing is applied, so the environment stacks find no state of their shared
stack and end WAITING: each still runs init and a plan up to the remote
state it reads, which is what every environment stack costs; the shared
stacks plan in full. The ratios compare like with like.

Prints wall seconds and the ratios; the target is that the affected plan
costs about one stack's plan (ratio to it <= 1.5) and a small share of
planning everything. Reports; exits non-zero only when it cannot measure.

    python benchmarks/affected_bench.py                 # 50 environments
    python benchmarks/affected_bench.py --environments 10
    python benchmarks/affected_bench.py --keep          # keep the temporary folder
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plan_bench import (
    OUTPUTS,
    BenchError,
    Moto,
    adapt_for_moto,
    environment,
    first_error,
    levels_tf,
    measured,
    progress,
    provider_mirror,
    stand_in_image_lock,
    stand_in_packages,
)
from render_bench import generate_config

TARGET_TO_ONE = 1.5  # the affected plan within 1.5x of planning that stack by name
SERVICES = 2  # per environment: one web service, one more (render_bench makes every third a worker)


def git(work: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", *args],
        cwd=work,
        check=True,
        capture_output=True,
    )


def change_override(config: Path, environment: str) -> None:
    """Give `environment` a tag override of its own in `config` (through PyYAML:
    the benchmark measures levels-tf, not the edit)."""
    import yaml

    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    overrides = doc.setdefault("environments", {}) or {}
    doc["environments"] = overrides
    entry = overrides.setdefault(environment, {}) or {}
    overrides[environment] = entry
    entry["tags"] = {**(entry.get("tags") or {}), "Changed": "bench"}
    config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=50)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="levels-tf-affected-bench-"))
    OUTPUTS.append(work / "outputs")
    OUTPUTS[0].mkdir()
    load = os.getloadavg()[0]
    print(
        f"affected_bench: {args.environments} environments, load average {load:.1f}, "
        f"{os.cpu_count()} cores, parallelism {args.parallelism}"
    )
    moto = Moto(work / "moto")
    try:
        env = environment(work, moto.url, provider_mirror())
        project = work / "platform"
        project.mkdir()
        config = project / "infra.yaml"
        config.write_text(generate_config(args.environments, SERVICES), encoding="utf-8")
        shutil.copytree(Path(__file__).resolve().parent.parent / "scripts", project / "scripts")
        flags = ["--aws-endpoint", moto.url, "--backend", "local"]

        def run(*words: str, ok: tuple[int, ...] = (0, 2)):
            result = measured(levels_tf("-c", str(config), *words), project, env)
            if result.returncode not in ok:
                raise BenchError(
                    f"levels-tf {' '.join(words)} exited {result.returncode}: {first_error(result)}"
                )
            return result

        adapted = adapt_for_moto(config, moto) + stand_in_image_lock(config, moto)
        for line in adapted:
            print(f"  for moto: {line}")
        progress("render")
        run("render", *flags)
        stand_in_packages(config)
        git(project, "init", "-q")
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", "generated")

        stacks = json.loads(run("stacks", "--json").stdout)
        names = (
            [s["name"] for s in stacks["stacks"]]
            if isinstance(stacks, dict)
            else [s["name"] for s in stacks]
        )
        target_env = f"env-{args.environments // 2:03d}"
        plan_all = [
            "plan",
            "--all",
            "--parallelism",
            str(args.parallelism),
            "--no-progress",
            *flags,
        ]
        progress(f"plan --all, first run (inits {len(names)} stacks; not counted)")
        run(*plan_all)
        # The lock files init wrote are committed, as in a real repository
        # (an uncommitted one is a change of its stack's providers).
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", "provider lock files")
        progress("plan --all, timed")
        everything = run(*plan_all)

        change_override(config, target_env)
        run("render", *flags)
        progress("stacks --affected")
        selection = run("stacks", "--affected", "--json")
        chosen = json.loads(selection.stdout)
        chosen_names = (
            [s["name"] for s in chosen["stacks"]]
            if isinstance(chosen, dict)
            else [s["name"] for s in chosen]
        )
        if chosen_names != [target_env]:
            raise BenchError(f"--affected chose {chosen_names}, not exactly [{target_env}]")
        progress("plan --affected")
        affected = run("plan", "--affected", "--no-progress", *flags)
        progress(f"plan {target_env}")
        one = run("plan", target_env, "--no-progress", *flags)
        listing = run("stacks", "--json")
    finally:
        moto.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")

    rows = [
        (f"plan --all ({len(names)} stacks)", everything.wall),
        ("stacks --affected --json (selection only)", selection.wall),
        ("stacks --json (listing, for scale)", listing.wall),
        (f"plan --affected (selected: {target_env})", affected.wall),
        (f"plan {target_env} (one stack by name)", one.wall),
    ]
    width = max(len(label) for label, _ in rows)
    for label, seconds in rows:
        print(f"  {label:<{width}}  {seconds:8.1f} s")
    to_one = affected.wall / one.wall
    to_all = affected.wall / everything.wall
    print(
        f"  affected / one stack       {to_one:6.2f}x  (target <= {TARGET_TO_ONE}x: "
        f"{'MET' if to_one <= TARGET_TO_ONE else 'NOT MET'})"
    )
    print(
        f"  affected / every stack     {to_all:6.3f}x  (planning everything is {1 / to_all:.0f}x the cost)"
    )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    try:
        code = main()
    except BenchError as error:
        print(f"affected_bench: {error}", file=sys.stderr)
        code = 1
    print(f"({time.monotonic() - started:.0f} s in all)", file=sys.stderr)
    sys.exit(code)
