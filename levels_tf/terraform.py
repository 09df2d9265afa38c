"""A typed adapter for the terraform (or tofu) binary.

Written on subprocess through process.py rather than the python-terraform
package: that package is unmaintained since 2019 and builds command lines
Terraform >= 0.15 rejects. Every verb returns parsed results; machine
output (-json) is read line by line as Terraform writes it, so callers can
show progress and build the plan summary without a separate `show -json`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import process
from .errors import LevelsError

PLAN_FILE = "levels-tf.tfplan"
ADVICE = "install Terraform >= 1.10 (or OpenTofu) or pass --terraform-bin"
TIMEOUT = 3 * 3600

Event = dict
OnEvent = Callable[[Event], None]


class TerraformError(LevelsError):
    """Terraform reported an error for a stack."""


@dataclass
class Terraform:
    binary: str
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def locate(cls, explicit: str | None = None, plugin_cache: Path | None = None) -> "Terraform":
        """terraform from --terraform-bin, $LEVELS_TF_TERRAFORM, PATH, or tofu on PATH."""
        candidates = [explicit] if explicit else [os.environ.get("LEVELS_TF_TERRAFORM") or "terraform", "tofu"]
        for candidate in candidates:
            if candidate and shutil.which(candidate):
                env = dict(os.environ)
                env.update({"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})
                if plugin_cache is not None:
                    plugin_cache.mkdir(parents=True, exist_ok=True)
                    env["TF_PLUGIN_CACHE_DIR"] = str(plugin_cache)
                return cls(shutil.which(candidate), env)
        raise process.ToolError(f"{candidates[0]} is not installed or not on PATH; {ADVICE}")

    def version(self) -> str:
        result = process.run([self.binary, "version", "-json"], timeout=60, env=self.env)
        return json.loads(result.stdout)["terraform_version"]

    def init(self, folder: Path) -> None:
        result = process.run(
            [self.binary, "init", "-input=false", "-no-color"], timeout=TIMEOUT, cwd=folder, env=self.env, check=False
        )
        if result.returncode != 0:
            raise TerraformError(f"{folder.name}: terraform init failed:\n" + _tail(result.stderr or result.stdout))

    def plan(self, folder: Path, *, refresh_only: bool = False, destroy: bool = False, on_event: OnEvent | None = None) -> tuple[bool, list[Event]]:
        """Write the saved plan; (changes present, the -json events)."""
        argv = [self.binary, "plan", "-input=false", "-no-color", "-json", "-detailed-exitcode", f"-out={PLAN_FILE}"]
        if refresh_only:
            argv.append("-refresh-only")
        if destroy:
            argv.append("-destroy")
        code, events = self._json_stream(argv, folder, on_event)
        if code == 1:
            raise TerraformError(f"{folder.name}: terraform plan failed: {_diagnostics(events)}")
        return code == 2, events

    def apply(self, folder: Path, *, on_event: OnEvent | None = None) -> list[Event]:
        """Apply the saved plan, and only it."""
        argv = [self.binary, "apply", "-input=false", "-no-color", "-json", PLAN_FILE]
        code, events = self._json_stream(argv, folder, on_event)
        if code != 0:
            raise TerraformError(f"{folder.name}: terraform apply failed: {_diagnostics(events)}")
        return events

    def output(self, folder: Path, name: str | None = None) -> object:
        argv = [self.binary, "output", "-no-color", "-json"] + ([name] if name else [])
        result = process.run(argv, timeout=600, cwd=folder, env=self.env, check=False)
        if result.returncode != 0:
            raise TerraformError(f"{folder.name}: terraform output failed:\n" + _tail(result.stderr))
        return json.loads(result.stdout or "null")

    def _json_stream(self, argv: list[str], folder: Path, on_event: OnEvent | None) -> tuple[int, list[Event]]:
        events: list[Event] = []

        def line(text: str) -> None:
            try:
                event = json.loads(text)
            except ValueError:
                return
            events.append(event)
            if on_event:
                on_event(event)

        result = process.stream(argv, line, timeout=TIMEOUT, cwd=folder, env=self.env, check=False)
        if result.returncode not in (0, 1, 2):
            raise TerraformError(f"{folder.name}: {Path(argv[0]).name} {argv[1]} exited {result.returncode}:\n" + _tail(result.stderr))
        if result.returncode == 1 and not any(e.get("@level") == "error" for e in events) and result.stderr.strip():
            events.append({"@level": "error", "@message": result.stderr.strip(), "type": "diagnostic"})
        return result.returncode, events


def _diagnostics(events: list[Event]) -> str:
    messages = []
    for event in events:
        if event.get("@level") == "error":
            diagnostic = event.get("diagnostic") or {}
            summary = diagnostic.get("summary") or event.get("@message", "")
            detail = diagnostic.get("detail", "")
            messages.append(f"{summary}{': ' + detail if detail else ''}")
    return "; ".join(" ".join(m.split()) for m in messages) or "see the output above"


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join("  " + line for line in text.strip().splitlines()[-lines:])
