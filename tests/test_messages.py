"""Every message names only options that exist, on the command that prints it.

Reads every string literal of the package (f-strings included, docstrings not): whatever
reads as prose (has a space) and names an `--option` must name one of a
levels-tf command. In a command's own module, the option must be one of that
command (or a global one), unless the same text names the command that has
it (`levels-tf plan --allow-destroy`). Argument vectors of other programs
(pip's `--platform`) are single words and are not messages."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import click
import pytest

from levels_tf.cli import cli

from .conftest import ROOT

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
NAMED_COMMAND = re.compile(r"levels-tf\s+(?:-c\s+\S+\s+)?([a-z-]+)((?:\s+[^`'\"]*)?)")


def _options(command: click.Command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(o for o in [*param.opts, *param.secondary_opts] if o.startswith("--"))
    return names


def _subcommands(command: click.Command) -> list[click.Command]:
    return list(command.commands.values()) if isinstance(command, click.Group) else []


GLOBAL = _options(cli)
# A group's (`ci`) options are those of its subcommands too.
BY_COMMAND = {
    name: _options(command).union(*(_options(sub) for sub in _subcommands(command)))
    for name, command in cli.commands.items()
}
EVERY = GLOBAL.union(*BY_COMMAND.values())


def _module_commands() -> dict[str, set[str]]:
    """Which CLI commands each `levels_tf/commands/<module>.py` serves (plan serves drift too)."""
    served: dict[str, set[str]] = {}
    for name, command in cli.commands.items():
        for leaf in _subcommands(command) or [command]:
            assert leaf.callback is not None
            source = inspect.getsource(inspect.unwrap(leaf.callback))
            for module in re.findall(r"from \.commands import (\w+)", source):
                served.setdefault(module, set()).add(name)
    return served


def _prose(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal with a space in it, docstrings aside
    (they speak of other programs' options too); an f-string as its literal parts."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in docstrings:
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{}"
                for v in node.values
            )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if " " in text.strip():
            found.append((node.lineno, text))
    return found


SOURCES = sorted((ROOT / "levels_tf").rglob("*.py"))


def misnamed(text: str, allowed: set[str]) -> list[str]:
    """The options `text` names that are neither in `allowed` nor on a command the text names."""
    named_here: set[str] = set()
    for command, _ in NAMED_COMMAND.findall(text):
        named_here |= BY_COMMAND.get(command, set())
    return [option for option in OPTION.findall(text) if option not in allowed | named_here]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_option_a_message_names_exists(path):
    wrong = [
        f"{line}: {option} in {text!r}"
        for line, text in _prose(path)
        for option in misnamed(text, EVERY)
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(_module_commands()))
def test_a_command_names_only_its_own_options(module):
    served = _module_commands()[module]
    allowed = GLOBAL.union(*(BY_COMMAND[name] for name in served))
    path = ROOT / "levels_tf" / "commands" / f"{module}.py"
    wrong = [
        f"{line}: {option} in {text!r}"
        for line, text in _prose(path)
        for option in misnamed(text, allowed)
    ]
    assert not wrong, f"{module} serves {sorted(served)}:\n" + "\n".join(wrong)


def test_every_command_is_served_by_a_module():
    """A command whose body does not import its module would drop that module's
    messages from the per-command check above without a word."""
    served = set().union(*_module_commands().values())
    assert served == set(cli.commands), sorted(set(cli.commands) - served)


def test_the_scan_would_catch_an_option_that_does_not_exist():
    assert misnamed("plan refuses without --allow-destroy", BY_COMMAND["destroy"] | GLOBAL) == [
        "--allow-destroy"
    ]
    assert misnamed("run `levels-tf plan --allow-destroy`", BY_COMMAND["destroy"] | GLOBAL) == []
    assert misnamed("give --no-such-option", EVERY) == ["--no-such-option"]
    assert _module_commands()["plan"] == {"plan", "drift"}


# A refusal says what to do next: it names an option or a command, lists the
# choices, or gives the step after a semicolon. Module-level string constants
# a message interpolates count with their text.
NEXT_STEP = re.compile(
    r"--[a-z]|`|defined:|one of|known:|the stacks are|levels-tf |"
    r"[;:] (use|give|add|run|pass|set|choose|remove|name|answer|install|check|delete|fix|"
    r"rename|put|keep|drop|move|wait|try|make|start|apply|plan|render|bake|build)\b",
    re.I,
)
REFUSING_MODULES = sorted((ROOT / "levels_tf" / "commands").glob("*.py")) + [
    ROOT / "levels_tf" / name
    for name in ("cli.py", "workspace.py", "options.py", "terraform.py", "writer.py", "subnets.py")
]


def _refusals(path: Path) -> list[tuple[int, str]]:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args):
            continue
        func = node.exc.func
        name = getattr(func, "id", getattr(func, "attr", ""))
        if name not in ("UsageError", "WriteError", "PlanError") or path.name == "plan_reading.py":
            continue
        text = ast.get_source_segment(source, node.exc.args[0]) or ""
        for constant, value in constants.items():
            text = text.replace("{" + constant + "}", value)
        found.append((node.lineno, " ".join(text.split())))
    return found


@pytest.mark.parametrize("path", REFUSING_MODULES, ids=lambda p: p.name)
def test_every_refusal_says_what_to_do_next(path):
    silent = [
        f"{path.name}:{line}: {text}"
        for line, text in _refusals(path)
        # What the system refused (cannot read or write: the reason is the OS's own), or
        # a guard against a path a template could never produce, needs no step.
        if not NEXT_STEP.search(text)
        and not any(
            os_said in text
            for os_said in ("cannot read", "cannot write", "cannot remove", "is not a folder")
        )
        and "refusing a path outside" not in text
    ]
    assert not silent, "\n".join(silent)


def test_the_next_step_scan_would_catch_a_bare_refusal(tmp_path):
    bare = tmp_path / "bare.py"
    bare.write_text('raise UsageError(f"stack {name} is broken")\n', encoding="utf-8")
    told = tmp_path / "told.py"
    told.write_text('HINT = "run `levels-tf render`"\nraise UsageError(f"x; {HINT}")\n', "utf-8")
    assert [t for _, t in _refusals(bare) if not NEXT_STEP.search(t)]
    assert not [t for _, t in _refusals(told) if not NEXT_STEP.search(t)]
