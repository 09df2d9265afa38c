"""Shared fixtures: the checkout's paths, a CLI runner, and a home that tests may not write."""

from __future__ import annotations

import contextlib
import shlex
import shutil
from pathlib import Path
from typing import NoReturn

import click
import pytest
from click.testing import CliRunner

from levels_tf.cli import cli

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "infra.yaml"


def require_tool(name: str) -> str:
    """The path of tool `name`; skips the test where it is missing, but fails
    under CI, where .ci/run must have installed it."""
    import os

    path = shutil.which(name)
    if path is None:
        message = f"{name} is not on PATH"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must install it)")
        pytest.skip(message + "; .ci/run installs it")
    return path


def require_module(name: str) -> None:
    """Skip where Python package `name` is missing; fail under CI, whose
    test extras install it."""
    import os
    from importlib.util import find_spec

    if find_spec(name) is None:
        message = f"Python package {name} is not installed"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must install it)")
        pytest.skip(message + "; pip install -e '.[test]' installs it")


def checkov_binary() -> str:
    """checkov as `levels-tf check` finds it (levels_tf.scanning.checkov_path:
    $LEVELS_TF_CHECKOV, the checkout's .venv-checkov, or PATH); skips where
    it is missing, but fails under CI, which installs it."""
    from levels_tf.scanning import ScannerMissing, checkov_path

    try:
        return checkov_path(ROOT)
    except ScannerMissing as missing:
        _skip_or_fail(str(missing))


def trivy_binary() -> str:
    """trivy as `levels-tf check` finds it (levels_tf.scanning.trivy_path);
    skips where it is missing, but fails under CI, which installs it."""
    from levels_tf.scanning import ScannerMissing, trivy_path

    try:
        return trivy_path()
    except ScannerMissing as missing:
        _skip_or_fail(str(missing))


@pytest.fixture(autouse=True)
def _no_home_writes(tmp_path_factory, monkeypatch):
    """Point HOME and the cache at a throwaway folder so no test writes the real home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))


@pytest.fixture
def run():
    """Run the CLI in-process: run('validate', config=path) -> click Result.

    Everything a command prints is scanned for secret values (tests/secret_scan.py):
    no plan, output or message may show one."""
    from .secret_scan import assert_clean

    def invoke(*args: str, config: Path | str | None = None):
        argv = (["-c", str(config)] if config is not None else []) + list(args)
        result = CliRunner().invoke(cli, argv, catch_exceptions=False)
        assert_clean(result.output, "levels-tf " + " ".join(args))
        return result

    return invoke


@pytest.fixture
def rehearse(tmp_path, aws_env, terraform_env, monkeypatch, run):
    """rehearse(infra.yaml) -> a copy of it in tmp_path, rendered for the moto
    server with local state, for the real terraform."""
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])

    def copy_and_render(source: Path) -> Path:
        config = tmp_path / "infra.yaml"
        shutil.copy(source, config)
        result = run("render", "--aws-endpoint", aws_env, "--backend", "local", config=config)
        assert result.exit_code == 0, result.output
        return config

    return copy_and_render


def emulated(run, config: Path, endpoint: str, *args: str):
    """A command on a rehearsal: with the options its tree was rendered with."""
    return run(*args, "--aws-endpoint", endpoint, "--backend", "local", config=config)


def next_step(config: Path | str, command: str) -> str:
    """The backquoted next step a message gives a user who ran levels-tf
    with `-c CONFIG`: `` `levels-tf -c CONFIG COMMAND`` (without the closing
    backquote, so a test may match a command's first words)."""
    return f"`levels-tf -c {shlex.quote(str(config))} {command}"


def as_printed(text: str, config: Path | str) -> str:
    """`text`, a message naming next steps (`` `levels-tf render` ``), as
    levels-tf prints it to a user who ran it with `-c CONFIG`."""
    return text.replace("`levels-tf ", next_step(config, ""))


def copy_reference(folder: Path) -> Path:
    """Copy the reference infra.yaml and the scripts it names into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "infra.yaml"
    shutil.copy(REFERENCE, target)
    shutil.copytree(ROOT / "scripts", folder / "scripts", dirs_exist_ok=True)
    return target


@pytest.fixture
def reference_copy(tmp_path) -> Path:
    """A copy of the reference infra.yaml (and its scripts) in an empty folder."""
    return copy_reference(tmp_path)


# Session fixtures that take minutes to build, and the test modules that use
# each. Under `pytest -n N --dist loadfile` every module runs on one worker
# (its module-scoped fixtures are built once), and the modules sharing one of
# these fixtures run on one worker together, so it is built once, not once per
# worker. Collection fails when a module uses one and is not listed here.
SHARED_SESSION_FIXTURES = {
    "planned_platforms": (
        "test_configure_before_use",
        "test_unique_names",
        "test_plan_scan",
        "test_plan_invariants",
    ),
    "zip_provider_mirror": ("test_plugin_cache", "test_provider_locks"),
    "zip_terraform_env": ("test_plugin_cache", "test_provider_locks"),
}
GROUP_OF_MODULE = {
    module: modules[0] for modules in SHARED_SESSION_FIXTURES.values() for module in modules
}

# The longest groups, started first so that the other workers share the rest
# while they run (the two rehearsals alone take about a quarter of the suite).
LONGEST_FIRST = ("test_rehearse", "test_configure_before_use", "test_destroy", "test_redeploy")


def group_of(nodeid: str) -> str:
    """The work unit of a test for pytest-xdist: its module's name, or the
    first module of the group sharing a session fixture with it."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return GROUP_OF_MODULE.get(module, module)


def pytest_collection_modifyitems(config, items):
    """Check that every module using an expensive session fixture is in its
    group, and start the longest groups first."""
    for item in items:
        for fixture, modules in SHARED_SESSION_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()) and item.path.stem not in modules:
                raise pytest.UsageError(
                    f"{item.nodeid} uses the session fixture {fixture}: add {item.path.stem}"
                    " to its modules in SHARED_SESSION_FIXTURES (tests/conftest.py)"
                )

    def rank(item: pytest.Item) -> int:
        group = group_of(item.nodeid)
        return LONGEST_FIRST.index(group) if group in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With `--dist loadfile`, schedule by group_of rather than by file alone,
    and hand the groups out in collection order (longest first) rather than
    by their number of tests, xdist's default."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False

    class LoadGroupOfModules(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return LoadGroupOfModules(config, log)


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite the expected trees under tests/golden/ from the current templates.",
    )


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def _provider_mirror() -> str | None:
    """The aws provider mirror: $LEVELS_TF_PROVIDER_MIRROR, else ../shared/tools/provider-mirror."""
    import os
    import subprocess

    explicit = os.environ.get("LEVELS_TF_PROVIDER_MIRROR")
    if explicit:
        return explicit
    tool = ROOT.parent / "shared" / "tools" / "provider-mirror"
    if tool.is_file():
        found = subprocess.run(["sh", str(tool)], capture_output=True, text=True, timeout=300)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    return None


@pytest.fixture(scope="session")
def terraform_env(tmp_path_factory) -> dict[str, str]:
    """Environment for running the real terraform: a CLI config of the tests' own
    (provider mirror when this machine has one, else the registry) and a shared
    plugin cache, so the provider is stored once for every stack."""
    import json
    import os

    require_tool("terraform")
    folder = tmp_path_factory.mktemp("terraform")
    cache = folder / "plugin-cache"
    cache.mkdir()
    mirror = _provider_mirror()
    rc = _cli_config(folder, mirror) if mirror else folder / "terraformrc"
    text = rc.read_text(encoding="utf-8") if mirror else ""
    rc.write_text(f"plugin_cache_dir = {json.dumps(str(cache))}\n" + text, encoding="utf-8")
    env = dict(os.environ)
    env.update({"TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})
    env.pop("TF_PLUGIN_CACHE_DIR", None)
    return env


def _cli_config(folder: Path, mirror: str) -> Path:
    """A Terraform CLI configuration that takes hashicorp providers from the filesystem mirror `mirror`."""
    import json

    rc = folder / "terraformrc"
    rc.write_text(
        "\n".join(
            [
                "provider_installation {",
                "  filesystem_mirror {",
                f"    path    = {json.dumps(mirror)}",
                '    include = ["registry.terraform.io/hashicorp/*"]',
                "  }",
                "  direct {",
                '    exclude = ["registry.terraform.io/hashicorp/*"]',
                "  }",
                "}",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return rc


@pytest.fixture(scope="session")
def zip_provider_mirror(tmp_path_factory) -> Path:
    """A filesystem mirror of the aws provider in the packed layout the
    registry delivers (`<host>/<namespace>/<type>/terraform-provider-<type>_<version>_<os>_<arch>.zip`),
    the layout `terraform providers mirror` writes. Built once per session.

    From this machine's unpacked mirror when it has one: `terraform providers
    mirror` itself always downloads from the registry, whatever the CLI
    configuration says. Without a mirror, from the registry."""
    import os
    import subprocess
    import zipfile

    require_tool("terraform")
    root = tmp_path_factory.mktemp("zip-mirror")
    unpacked = _provider_mirror()
    if unpacked is None:
        stack = tmp_path_factory.mktemp("mirror-stack")
        (stack / "main.tf").write_text(
            'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws" }\n  }\n}\n',
            encoding="utf-8",
        )
        done = subprocess.run(
            ["terraform", "providers", "mirror", str(root)],
            cwd=stack,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert done.returncode == 0, done.stderr
        return root
    for platform_dir in sorted(Path(unpacked).glob("registry.terraform.io/hashicorp/aws/*/*_*")):
        version, platform = platform_dir.parent.name, platform_dir.name
        target = (
            root
            / "registry.terraform.io"
            / "hashicorp"
            / "aws"
            / f"terraform-provider-aws_{version}_{platform}.zip"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        # Level 1: as large as the registry's own zips, and fast to build.
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for path in sorted(platform_dir.iterdir()):
                archive.write(os.path.realpath(path), path.name)
    assert any(root.rglob("*.zip")), f"no aws provider package in {unpacked}"
    return root


@pytest.fixture(scope="session")
def zip_terraform_env(terraform_env, zip_provider_mirror, tmp_path_factory) -> dict[str, str]:
    """`terraform_env`, with the aws provider served from zip packages (`zip_provider_mirror`)."""
    folder = tmp_path_factory.mktemp("terraform-zip")
    return dict(
        terraform_env, TF_CLI_CONFIG_FILE=str(_cli_config(folder, str(zip_provider_mirror)))
    )


# -- a local AWS emulator (moto's server) for the Lambda functions' tests --------


def _skip_or_fail(message: str) -> NoReturn:
    """Skip with `message`; under CI, where everything must be installed, fail instead."""
    import os

    if os.environ.get("CI"):
        pytest.fail(message + " (CI must install it)")
    pytest.skip(message)


def _moto_installed() -> bool:
    """Whether this interpreter has moto's server (pip install 'moto[server]')."""
    import importlib.util

    modules = ("moto", "flask", "flask_cors", "moto.server")
    return all(importlib.util.find_spec(name) is not None for name in modules)


def _moto_server_command(host: str, port: int) -> list[str]:
    """How to start moto's server on `host`:`port`: the launcher the rehearsal
    runs (levels_tf/moto_launcher.py, moto's server with the answers it adds),
    so every test meets the same emulator."""
    import sys

    return [sys.executable, "-m", "levels_tf.moto_launcher", host, str(port)]


def _free_local_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _local_http(method: str, url: str, timeout: float = 2.0) -> int:
    """One request to a loopback URL, never through a proxy; returns the HTTP status."""
    import urllib.error
    import urllib.request

    assert url.startswith("http://127.0.0.1:"), url
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """The URL of a moto server (an emulated AWS) listening on 127.0.0.1 only, for the session."""
    import os
    import subprocess
    import time

    if not _moto_installed():
        _skip_or_fail("moto's server is not installed (pip install 'moto[server]')")
    folder = tmp_path_factory.mktemp("moto")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(folder), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    # AWS managed policies (ReadOnlyAccess, PowerUserAccess), which bootstrap
    # attaches to the CI's Terraform roles; moto loads them only when asked.
    env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    failure = ""
    for attempt in range(3):  # the free port may be taken between probe and bind
        port = _free_local_port()
        url = f"http://127.0.0.1:{port}"
        log_path = folder / f"server-{attempt}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                _moto_server_command("127.0.0.1", port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=folder,
            )
        answered = False
        deadline = time.monotonic() + 30
        while not answered and time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(OSError):
                answered = _local_http("GET", f"{url}/moto-api/", timeout=1) == 200
            if not answered:
                time.sleep(0.1)
        if not answered:
            if process.poll() is None:
                process.kill()
            process.wait()
            failure = log_path.read_text(errors="replace")[-2000:]
            continue
        try:
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return
    pytest.fail(f"moto server did not start on 127.0.0.1:\n{failure}")


@pytest.fixture
def aws_env(moto_server, monkeypatch) -> str:
    """AWS SDK settings that reach only the local moto server, which starts each test empty.

    Anything that ignores AWS_ENDPOINT_URL meets a dead proxy on 127.0.0.1
    instead of the internet."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):  # AWS_PROFILE above all
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    # Resetting what the last test built takes a while on a loaded machine.
    status = _local_http("POST", f"{moto_server}/moto-api/reset", timeout=120)
    assert status == 200, f"moto reset answered {status}"
    return moto_server


@pytest.fixture
def no_aws_credentials(monkeypatch) -> None:
    """No AWS credentials anywhere an SDK looks (no AWS_* variable, empty config
    and credentials files), and no instance metadata service."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


def emulator_provider(endpoint: str, services: tuple[str, ...]) -> str:
    """An aws provider block whose `services` all go to the emulator at `endpoint`, with test credentials."""
    endpoints = "\n".join(f'    {name} = "{endpoint}"' for name in services)
    return f"""provider "aws" {{
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
"""


@pytest.fixture(scope="session")
def planned_platforms(moto_server, terraform_env, tmp_path_factory):
    """Every stack of every configuration the tests render, initialised and planned
    against moto: {"config:stack": PlannedStack}. Minutes of work, done once."""
    from .planned import PLATFORM_CONFIGS, plan_all

    return plan_all(
        PLATFORM_CONFIGS, tmp_path_factory.mktemp("planned"), moto_server, terraform_env
    )


# Figures a test records with record_property("count:<what>", n): the fuzzing
# and kill tests' numbers of documents and kills, printed at the end of the
# run (also under xdist, whose workers send their reports here).
_COUNTS: dict[str, object] = {}


def pytest_runtest_logreport(report):
    if report.when == "call":
        for name, value in report.user_properties:
            if name.startswith("count:"):
                _COUNTS[name.removeprefix("count:")] = value


def pytest_terminal_summary(terminalreporter):
    if _COUNTS:
        terminalreporter.write_sep("-", "counts recorded by the tests")
        for name, value in sorted(_COUNTS.items()):
            terminalreporter.write_line(f"{name}: {value}")


def leaf_commands(group: click.Group | None = None, prefix: str = "") -> dict[str, click.Command]:
    """Every command a user runs, by its words ("plan", "ci github"): a
    group's subcommands, never the group itself."""
    from levels_tf.cli import cli

    found: dict[str, click.Command] = {}
    for name, command in (group or cli).commands.items():
        if isinstance(command, click.Group):
            found.update(leaf_commands(command, f"{prefix}{name} "))
        else:
            found[f"{prefix}{name}"] = command
    return found
