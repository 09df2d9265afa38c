"""Every stack of a configuration, initialised and planned for real against moto.

The name and ordering tests read what Terraform itself resolved: the plan
JSON (`terraform show -json` of a saved plan) of every stack, and
`terraform graph` of the same initialised folders.

An environment stack reads its shared stack's outputs, which exist only
after an apply. Applying every shared stack of every configuration would
cost minutes, so each shared stack is planned, and the values its plan
knows are written as its local state, with placeholders where a value is
known only after apply (IDs, ARNs). The environment stacks then plan
against that state; none of the names they create comes from a placeholder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from levels_tf import writer
from levels_tf.functions import FUNCTIONS
from levels_tf.lambda_package import build_zip
from levels_tf.names import function_package
from levels_tf.options import RenderOptions, apply
from levels_tf.render import render
from levels_tf.stacks import SHARED, stacks
from levels_tf.validation import load_config

TESTS = Path(__file__).resolve().parent
# Every configuration the tests render: the reference, the golden cases and
# the small configurations of tests/configs.
PLATFORM_CONFIGS = (
    {"reference": TESTS.parent / "infra.yaml"}
    | {p.parent.name: p for p in sorted(TESTS.glob("golden/*/infra.yaml"))}
    | {p.parent.name: p for p in sorted(TESTS.glob("configs/*/infra.yaml"))}
)

PLACEHOLDER_AMI = "ami-0123456789abcdef0"
PLACEHOLDER_ROOT_DEVICE = "/dev/xvda"
PLACEHOLDER_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class PlannedStack:
    """One stack: its folder (initialised, with `plan.tfplan`) and its plan JSON."""

    config: str
    name: str
    folder: Path
    plan: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.config}:{self.name}"


def terraform(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the real terraform in `cwd`; the caller checks the result."""
    return subprocess.run(
        ["terraform", *args, "-no-color"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _checked(env: dict[str, str], cwd: Path, *args: str) -> str:
    result = terraform(env, cwd, *args)
    if result.returncode != 0:
        raise AssertionError(
            f"terraform {' '.join(args)} in {cwd} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def render_for_emulator(config_path: Path, out: Path, endpoint: str) -> list:
    """Render `config_path` into `out` for the emulator at `endpoint`, with local
    state, a placeholder AMI for every image and every function's zip; returns
    the stacks in dependency order."""
    config = load_config(config_path)
    # A bake records each AMI's root device with it; without one the fleets
    # would look the placeholder AMI up at plan time.
    config = dataclasses.replace(
        config,
        amis=dict.fromkeys(config.infra.images, PLACEHOLDER_AMI),
        root_devices=dict.fromkeys(config.infra.images, PLACEHOLDER_ROOT_DEVICE),
    )
    config = apply(config, RenderOptions(aws_endpoint=endpoint, backend="local"))
    writer.write(out, render(config))
    for name, function in config.infra.functions.items():
        package = out / function_package(name)
        package.parent.mkdir(parents=True, exist_ok=True)
        package.write_bytes(build_zip(FUNCTIONS[function.code].source_dir, None))
    return stacks(config.infra)


def _filled(after: Any, unknown: Any, path: tuple[str, ...]) -> Any:
    """The planned value `after` with each part known only after apply replaced
    by a placeholder of the right shape (an ARN where the key says so)."""
    if unknown is True:
        leaf = "-".join(path)
        if path[-1].endswith("arn"):
            return f"arn:aws:iam::{PLACEHOLDER_ACCOUNT}:placeholder/{leaf}"
        return f"placeholder-{leaf}"
    if isinstance(after, dict) or isinstance(unknown, dict):
        after, unknown = after or {}, unknown if isinstance(unknown, dict) else {}
        return {
            key: _filled(after.get(key), unknown.get(key), (*path, key))
            for key in after.keys() | unknown.keys()
        }
    if isinstance(after, list):
        unknown = unknown if isinstance(unknown, list) else [None] * len(after)
        return [
            _filled(item, hidden, (*path, str(i)))
            for i, (item, hidden) in enumerate(zip(after, unknown, strict=False))
        ]
    return after


def _cty_type(value: Any) -> Any:
    """The type of a JSON value as Terraform's state file spells it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "dynamic"
    if isinstance(value, list):
        return ["tuple", [_cty_type(item) for item in value]]
    return ["object", {key: _cty_type(item) for key, item in value.items()}]


def write_planned_outputs(plan: dict[str, Any], state_file: Path) -> None:
    """Write the outputs `plan` will produce as a local state file (version 4)."""
    outputs = {}
    for name, change in plan.get("output_changes", {}).items():
        value = _filled(change.get("after"), change.get("after_unknown"), (name,))
        outputs[name] = {"value": value, "type": _cty_type(value)}
    state = {
        "version": 4,
        "terraform_version": plan["terraform_version"],
        "serial": 1,
        "lineage": "planned-outputs",
        "outputs": outputs,
        "resources": [],
        "check_results": None,
    }
    state_file.write_text(json.dumps(state, indent=2), encoding="utf-8")


def _plan(env: dict[str, str], config: str, name: str, folder: Path) -> PlannedStack:
    _checked(env, folder, "plan", "-input=false", "-lock=false", "-out=plan.tfplan")
    plan = json.loads(_checked(env, folder, "show", "-json", "plan.tfplan"))
    return PlannedStack(config, name, folder, plan)


def plan_all(
    configs: dict[str, Path], root: Path, endpoint: str, env: dict[str, str]
) -> dict[str, PlannedStack]:
    """Plan every stack of every configuration; {"config:stack": PlannedStack}.

    Shared stacks first, then the environment stacks against the shared
    stacks' planned outputs; four at a time, as the tests run on four
    workers and this fixture is their longest piece: more plans at once
    give it a larger share of the machine while the other tests run."""
    env = dict(env)
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        # Anything not pointed at the emulator meets a dead proxy, not AWS.
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    env.pop("AWS_PROFILE", None)
    shared: list[tuple[str, str, Path]] = []
    environments: list[tuple[str, str, Path]] = []
    for config, path in configs.items():
        out = root / config
        for stack in render_for_emulator(path, out, endpoint):
            (shared if stack.kind == SHARED else environments).append(
                (config, stack.name, out / "stacks" / stack.name)
            )
    for _, _, folder in shared + environments:  # one at a time: they share the plugin cache
        _checked(env, folder, "init", "-input=false")
    planned: dict[str, PlannedStack] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for result in pool.map(lambda job: _plan(env, *job), shared):
            planned[result.label] = result
            write_planned_outputs(result.plan, result.folder / "terraform.tfstate")
        for result in pool.map(lambda job: _plan(env, *job), environments):
            planned[result.label] = result
    return planned


# -- reading a plan's configuration ---------------------------------------------

_MODULE_STEP = re.compile(r'module\.([A-Za-z0-9_-]+)(?:\[(?:"[^"]*"|[0-9]+)\])?')
_INSTANCE_KEY = re.compile(r'\[(?:"[^"]*"|[0-9]+)\]')


def config_address(address: str) -> str:
    """A resource instance's address without instance keys, as `terraform graph`
    names it: module.bucket["web"].aws_s3_bucket.this -> module.bucket.aws_s3_bucket.this."""
    return _INSTANCE_KEY.sub("", address)


def module_path(module_address: str | None) -> tuple[str, ...]:
    """The module call names of an instance address: module.a["x"].module.b -> ("a", "b")."""
    return tuple(_MODULE_STEP.findall(module_address or ""))


def config_module(plan: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """The configuration of the module at `path` in `plan` (the root for ())."""
    module = plan["configuration"]["root_module"]
    for step in path:
        module = module["module_calls"][step]["module"]
    return module


def config_resource(plan: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """The configuration block of the resource a `resource_changes` entry plans."""
    path = module_path(change.get("module_address"))
    local = (
        f"{change['type']}.{change['name']}"
        if change["mode"] == "managed"
        else f"data.{change['type']}.{change['name']}"
    )
    (found,) = [r for r in config_module(plan, path).get("resources", []) if r["address"] == local]
    return found


class Untraceable(Exception):
    """A reference whose source the configuration alone does not show (a local value)."""


def _prefix(path: tuple[str, ...]) -> str:
    return "".join(f"module.{step}." for step in path)


def trace(plan: dict[str, Any], path: tuple[str, ...], references: list[str]) -> set[str]:
    """The resources (graph addresses) a value with `references`, in the module at
    `path`, is computed from: through module inputs (var.*) and outputs
    (module.*.*) up and down the tree. Raises Untraceable for a local value."""
    found: set[str] = set()
    specific = [
        ref for ref in references if not any(other.startswith(ref + ".") for other in references)
    ]
    for ref in specific:
        parts = ref.split(".")
        if parts[0] in ("each", "count", "path", "terraform", "self"):
            continue
        if parts[0] == "local":
            raise Untraceable(f"{_prefix(path)}{ref} is a local value")
        if parts[0] == "var":
            if not path:
                continue  # a root variable: no resource behind it
            call = config_module(plan, path[:-1])["module_calls"][path[-1]]
            expression = call.get("expressions", {}).get(parts[1], {})
            found |= trace(plan, path[:-1], expression.get("references", []))
        elif parts[0] == "module":
            if len(parts) < 3:
                continue
            call = parts[1].split("[")[0]  # module.waf[0].arn: the call, without its instance key
            output = config_module(plan, (*path, call))["outputs"][parts[2]]
            found |= trace(plan, (*path, call), output.get("expression", {}).get("references", []))
        elif parts[0] == "data":
            found.add(_prefix(path) + ".".join(parts[:3]))
        else:
            found.add(_prefix(path) + ".".join(parts[:2]))
    return found


def references_of(expressions: Any, *keys: str) -> list[str]:
    """The references of the argument at `keys` (block names and argument names;
    a nested block is its first element) in a resource's `expressions`."""
    node = expressions
    for key in keys:
        if isinstance(node, list):
            node = node[0] if node else {}
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node.get("references", []) if isinstance(node, dict) else []
