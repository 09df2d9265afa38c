"""What every Terraform-driving command starts from: a validated configuration,
a rendered tree that is up to date, the stacks asked for, and terraform."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from . import console, lambda_package, plugin_cache, writer
from .affected import affected
from .errors import UsageError
from .git_changes import SELECT_INSTEAD, changed_paths
from .names import function_package
from .options import RenderOptions, apply, resolve
from .render import render
from .stacks import Stack, stacks
from .terraform import PLAN_FILE, EngineChoice, Terraform, TerraformError
from .validation import Config, load_config


@dataclass
class Workspace:
    config: Config
    out: Path
    stacks: list[Stack]
    terraform: Terraform

    def folder(self, stack: Stack) -> Path:
        return self.out / "stacks" / stack.name

    def production(self, stack: Stack) -> bool:
        return self.config.infra.vpc_groups[stack.group].production

    def plan_file(self, stack: Stack) -> Path:
        return self.folder(stack) / PLAN_FILE

    def init(self, stack: Stack) -> bool:
        """`terraform init` of the stack, unless nothing it reads changed since the last one."""
        return self.terraform.init(self.folder(stack), self._init_inputs(stack))

    def init_all(self, stacks: list[Stack] | None = None) -> dict[str, TerraformError]:
        """Init `stacks` (default: every selected stack), one after another;
        the errors by stack name.

        Commands that run Terraform in several stacks at once init them all
        first: an init holds the plugin cache alone (plugin_cache.py), so an
        init between the plans would wait for every running plan to end.
        """
        errors: dict[str, TerraformError] = {}
        for stack in self.stacks if stacks is None else stacks:
            try:
                self.init(stack)
            except TerraformError as error:
                errors[stack.name] = error
        return errors

    def _init_inputs(self, stack: Stack) -> str:
        """A digest of what init reads: the stack's files and the modules they call."""
        digest = hashlib.sha256()
        files = sorted(self.folder(stack).glob("*.tf")) + sorted(
            (self.out / "modules").rglob("*.tf")
        )
        for path in files:
            digest.update(
                str(path.relative_to(self.out)).encode() + b"\0" + path.read_bytes() + b"\0"
            )
        return digest.hexdigest()


@dataclass(frozen=True)
class Tree:
    """A validated configuration, its rendered tree `out` (up to date) and the stacks asked for."""

    config: Config
    out: Path
    stacks: list[Stack]


def open_tree(
    config_path: Path,
    names: tuple[str, ...],
    all_stacks: bool,
    options: RenderOptions,
    out: Path | None = None,
    *,
    since: str | None = None,
    instead: str = SELECT_INSTEAD,
) -> Tree:
    """The configuration at `config_path`, its rendered tree (default: beside
    it) and the stacks named, or every stack with `all_stacks`, or with
    `since` (a git commit) the stacks the changes since it touch
    (affected.py; possibly none), in dependency order. `instead` is what the
    command can do when the tree is not in git (git_changes.changed_paths).

    UsageError when the tree is stale against the configuration, when not
    exactly one of `names`, `all_stacks` and `since` is given, or a name is
    no stack; the configuration's own errors (exit 2) from load_config."""
    base = load_config(config_path)
    out = out if out is not None else config_path.parent
    options = resolve(out, options, base.infra.state.backend)
    config = apply(base, options)
    files = render(config)
    if writer.plan_changes(out, files):
        raise UsageError(
            f"the rendered tree in {out} is stale against {config_path}: run `levels-tf render{options.flags}` first"
        )
    ordered = stacks(config.infra)
    known = [stack.name for stack in ordered]
    if since is not None:
        if names or all_stacks:
            raise UsageError("--affected selects the stacks: name none and leave out --all")
        return Tree(config, out, affected(changed_paths(out, since, instead), files, ordered))
    if all_stacks and names:
        raise UsageError("name stacks or give --all, not both")
    if not all_stacks and not names:
        raise UsageError(f"name the stacks ({', '.join(known)}), give --all or --affected")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UsageError(f"no stack {unknown[0]!r}; the stacks are {', '.join(known)}")
    selected = [stack for stack in ordered if all_stacks or stack.name in names]
    return Tree(config, out, selected)


def open_workspace(
    config_path: Path,
    names: tuple[str, ...],
    all_stacks: bool,
    options: RenderOptions,
    engine: EngineChoice,
    out: Path | None = None,
    *,
    since: str | None = None,
) -> Workspace:
    tree = open_tree(config_path, names, all_stacks, options, out, since=since)
    return with_terraform(tree, engine)


def with_terraform(tree: Tree, engine: EngineChoice) -> Workspace:
    """A workspace on `tree` with the Terraform `engine` found (ToolError when it is not)."""
    terraform = Terraform.locate(engine, plugin_cache.folder())
    terraform.on_wait = console.err
    return Workspace(tree.config, tree.out, tree.stacks, terraform)


def ensure_function_packages(workspace: Workspace) -> list[Path]:
    """Build the zips of functions whose zip is missing; plan reads them."""
    built = []
    for name, function in workspace.config.infra.functions.items():
        target = workspace.out / function_package(name)
        if target.exists():
            continue
        writer.write_artifact(
            target, lambda_package.build_function(function.code, function.runtime)
        )
        built.append(target)
    return built


def stale_plan_reason(workspace: Workspace, stack: Stack) -> str | None:
    """Why the saved plan of `stack` may not be applied, or None."""
    plan = workspace.plan_file(stack)
    if not plan.exists():
        return "no saved plan: run `levels-tf plan` first"
    planned = plan.stat().st_mtime
    newer = [workspace.config.path] + list(workspace.folder(stack).glob("*.tf"))
    newer += [workspace.out / writer.MANIFEST]
    for path in newer:
        if path.exists() and path.stat().st_mtime > planned:
            return f"the saved plan is older than {path}: run `levels-tf plan` again"
    return None


def elapsed(start: float) -> str:
    return f"{time.monotonic() - start:.0f}s"
