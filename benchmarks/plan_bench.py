#!/usr/bin/env python
"""Timing of `levels-tf plan --all` against the same plans run by hand.

Everything runs against a moto server this script starts on 127.0.0.1, with
a Terraform CLI configuration of its own (the aws provider from the local
mirror, one shared plugin cache), in a temporary folder:

1. copy the configuration (default: the reference infra.yaml and scripts/);
   where it asks for a certificate validated in Route 53, import
   self-signed ones into moto instead (adapt_for_moto); render it with
   ``--aws-endpoint URL --backend local``;
2. apply the shared stacks with plain terraform (init, plan, apply, leaving
   out resource types moto has no API for), because the environment stacks
   read their state. If the reference configuration cannot be applied on
   moto, fall back to tests/golden/two-az-single-env and say so;
3. plain terraform, one stack at a time: ``terraform init`` per stack
   (timed, not counted), then ``terraform plan -out p -input=false`` per
   stack, sequentially: wall and CPU seconds of each (getrusage children);
4. ``python -m levels_tf plan --all --aws-endpoint URL --backend local
   --format json`` twice (a first run and a repeat run, which skips init),
   with ``--terraform-bin`` a wrapper that runs the real terraform and
   records each invocation (start, end, verb, folder, CPU) in a file of its
   own: wall, CPU, terraform invocations per stack, and levels-tf's
   overhead (its wall minus the time any terraform ran).

Then the targets with MET / NOT MET. It reports; it does not assert: the
exit status is 0 unless the benchmark itself cannot run (moto does not
start, render fails, levels-tf plan errors, ...).

Standard library plus the project; terraform on PATH (or
$LEVELS_TF_TERRAFORM) and moto's server installed. Contacts only 127.0.0.1
when a provider mirror is found ($LEVELS_TF_PROVIDER_MIRROR or the team's
../shared/tools/provider-mirror); otherwise terraform uses the registry.

    python benchmarks/plan_bench.py                   # reference infra.yaml, every stack
    python benchmarks/plan_bench.py --quick           # first shared stack and one environment
    python benchmarks/plan_bench.py --config tests/golden/heavy-overrides/infra.yaml
    python benchmarks/plan_bench.py --keep            # keep the temporary folder
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "infra.yaml"
FALLBACK = ROOT / "tests" / "golden" / "two-az-single-env" / "infra.yaml"

# Targets.
LIMIT_MAX_RATIO = 1.2  # levels-tf wall within 1.2x of max(CPU / cores, critical path)
OVERHEAD_MAX_SECONDS = 1.0  # levels-tf's own time, outside terraform
# Terraform verbs per stack: the first run inits every stack (plain terraform's
# init leaves no record of what it saw); a repeat run, with nothing changed,
# only plans.
EXPECTED_VERBS = (["init", "plan"], ["plan"])

TIMEOUT = 3600  # any one terraform or levels-tf run

# Resource types moto has no API for: the set-up applies of the shared stacks
# leave them out (-target everything else), or they would wait forever.
MOTO_MISSING_TYPES = {"aws_backup_selection"}

WRAPPER = """#!/bin/sh
# Written by benchmarks/plan_bench.py: runs the real terraform, then records
# this invocation (times, exit code, verb, folder, CPU) in a file of its own.
start=$(date +%s.%N)
"$PLAN_BENCH_TERRAFORM" "$@"
code=$?
end=$(date +%s.%N)
{
  echo "start $start"
  echo "end $end"
  echo "code $code"
  echo "verb ${1:-}"
  printf 'cwd '; pwd -P
  times
} > "$PLAN_BENCH_LOG_DIR/$$-$start"
exit $code
"""


class BenchError(RuntimeError):
    """The benchmark cannot go on."""


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Measuring one child process
# --------------------------------------------------------------------------


@dataclass
class Run:
    argv: list[str]
    cwd: Path
    returncode: int
    wall: float
    cpu: float  # user + system of the child and everything it waited for
    start: float  # time.time() at start and end, to line up with the wrapper's log
    end: float
    stdout: str
    stderr: str

    def tail(self, lines: int = 25) -> str:
        text = (self.stderr.strip() + "\n" + self.stdout.strip()).strip()
        return "\n".join("    " + line for line in text.splitlines()[-lines:])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


OUTPUTS: list[Path] = []  # the folder for the children's output, set by main()
LOAD_AT_START = [os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0]


def measured(argv: list[str], cwd: Path, env: dict[str, str], log: Path | None = None) -> Run:
    """Run `argv` to completion; wall and CPU (RUSAGE_CHILDREN delta) of it alone.

    Output goes to files rather than pipes, so nothing in this process reads
    while the child runs."""
    out_path = log or Path(tempfile.mktemp(prefix="out-", dir=OUTPUTS[0]))
    err_path = out_path.with_name(out_path.name + ".stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        cpu0 = children_cpu()
        start = time.time()
        t0 = time.perf_counter()
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            timeout=TIMEOUT,
        )
        wall = time.perf_counter() - t0
        end = time.time()
        cpu = children_cpu() - cpu0
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    if log is None:
        out_path.unlink()
        err_path.unlink()
    return Run(argv, cwd, proc.returncode, wall, cpu, start, end, stdout, stderr)


# --------------------------------------------------------------------------
# moto and Terraform's environment
# --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local_http(method: str, url: str, timeout: float = 2.0) -> int:
    """One request to a loopback URL, never through a proxy."""
    if not url.startswith("http://127.0.0.1:"):
        raise BenchError(f"refusing to contact {url}: only 127.0.0.1")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def moto_command() -> list[str]:
    beside = Path(sys.executable).parent / "moto_server"
    if beside.is_file():
        return [str(beside)]
    if (
        importlib.util.find_spec("moto") is not None
        and importlib.util.find_spec("moto.server") is not None
    ):
        return [sys.executable, "-m", "moto.server"]
    raise BenchError(
        "moto's server is not installed beside this Python (pip install 'moto[server]')"
    )


class Moto:
    """A moto server on a free 127.0.0.1 port, for the whole benchmark."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(HOME=str(folder), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        # The AWS managed policies the stacks attach (backup, RDS monitoring) exist only then.
        env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        command = moto_command()
        failure = ""
        for attempt in range(3):  # the port may be taken between probe and bind
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            log = folder / f"server-{attempt}.log"
            with open(log, "wb") as out:
                self.process = subprocess.Popen(
                    [*command, "-H", "127.0.0.1", "-p", str(port)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=folder,
                )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    if local_http("GET", f"{self.url}/moto-api/", timeout=1) == 200:
                        return
                except OSError:
                    pass
                time.sleep(0.1)
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            failure = log.read_text(errors="replace")[-2000:]
        raise BenchError(f"moto server did not start on 127.0.0.1:\n{failure}")

    def reset(self) -> None:
        status = local_http("POST", f"{self.url}/moto-api/reset")
        if status != 200:
            raise BenchError(f"moto reset answered {status}")

    def cpu(self) -> float:
        """The server's user + system seconds so far (all its threads), from /proc."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def provider_mirror() -> str | None:
    """$LEVELS_TF_PROVIDER_MIRROR, else what ../shared/tools/provider-mirror prints."""
    explicit = os.environ.get("LEVELS_TF_PROVIDER_MIRROR")
    if explicit:
        return explicit
    tool = ROOT.parent / "shared" / "tools" / "provider-mirror"
    if tool.is_file():
        found = subprocess.run(["sh", str(tool)], capture_output=True, text=True, timeout=300)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    return None


def real_terraform() -> str:
    candidate = os.environ.get("LEVELS_TF_TERRAFORM") or "terraform"
    found = shutil.which(candidate)
    if not found:
        raise BenchError(
            f"{candidate} is not on PATH (install Terraform >= 1.10, or set $LEVELS_TF_TERRAFORM)"
        )
    return found


def environment(work: Path, moto_url: str, mirror: str | None) -> dict[str, str]:
    """What every terraform and levels-tf child runs with: the CLI configuration
    of this benchmark, a home and cache in the temporary folder, AWS pointed
    at moto only (anything that ignores the endpoint meets a dead proxy)."""
    home, cache = work / "home", work / "cache"
    # levels-tf sets TF_PLUGIN_CACHE_DIR to $XDG_CACHE_HOME/levels-tf/terraform-plugins;
    # the CLI configuration names the same folder, so plain terraform and
    # levels-tf share one copy of the provider.
    plugins = cache / "levels-tf" / "terraform-plugins"
    for folder in (home, plugins):
        folder.mkdir(parents=True, exist_ok=True)
    lines = [f"plugin_cache_dir = {json.dumps(str(plugins))}"]
    if mirror:
        lines += [
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
    rc = work / "terraformrc"
    rc.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_", "LEVELS_TF_"))}
    for name in ("PYTHONSTARTUP", "PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(cache),
        TF_CLI_CONFIG_FILE=str(rc),
        TF_IN_AUTOMATION="1",
        CHECKPOINT_DISABLE="1",
        AWS_ENDPOINT_URL=moto_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[name] = "http://127.0.0.1:9"
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = "127.0.0.1,localhost"
    return env


# --------------------------------------------------------------------------
# The configuration under test
# --------------------------------------------------------------------------


@dataclass
class StackInfo:
    name: str
    kind: str
    depends_on: list[str]


@dataclass
class Prepared:
    source: Path
    config: Path
    stacks: list[StackInfo]  # the selected ones, in dependency order
    render_wall: float
    applies: dict[str, float] = field(default_factory=dict)
    stand_ins: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)  # changes to the copy of infra.yaml for moto
    left_out: set[str] = field(default_factory=set)  # resources the set-up did not apply


def levels_tf(*args: str) -> list[str]:
    return [sys.executable, "-m", "levels_tf", *args]


def copy_config(source: Path, folder: Path) -> Path:
    """infra.yaml, and what it may name beside it (scripts/, images.lock)."""
    folder.mkdir(parents=True)
    target = folder / "infra.yaml"
    shutil.copy(source, target)
    if (source.parent / "scripts").is_dir():
        shutil.copytree(source.parent / "scripts", folder / "scripts")
    if (source.parent / "images.lock").is_file():
        shutil.copy(source.parent / "images.lock", folder / "images.lock")
    return target


def stand_in_packages(config: Path) -> list[str]:
    """The functions' zips that plan needs, from their sources alone.

    `levels-tf plan` builds a missing zip with pip (Pillow from the package
    index); the benchmark contacts nothing but 127.0.0.1, so it writes the
    zip without the dependencies instead. Terraform only hashes the file."""
    from levels_tf.functions import FUNCTIONS
    from levels_tf.lambda_package import build_zip
    from levels_tf.names import function_package
    from levels_tf.validation import load_config

    written = []
    for name, function in load_config(config).infra.functions.items():
        target = config.parent / function_package(name)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(build_zip(FUNCTIONS[function.code].source_dir, None))
        written.append(name)
    return written


def select(all_stacks: list[StackInfo], quick: bool) -> list[StackInfo]:
    if not quick:
        return all_stacks
    shared = next((s for s in all_stacks if s.kind == "shared"), None)
    if shared is None:
        raise BenchError("the configuration has no shared stack")
    env = next((s for s in all_stacks if shared.name in s.depends_on), None)
    return [shared] + ([env] if env else [])


def first_error(run: Run) -> str:
    """The first `Error:` of Terraform's output and the lines that explain it."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", run.stdout + "\n" + run.stderr).splitlines()
    for i, line in enumerate(lines):
        if line.strip().lstrip("│ ").startswith("Error:"):
            block = [text.strip().lstrip("│").strip() for text in lines[i : i + 10]]
            return " / ".join(text for text in block if text and not text.startswith("╵"))
    return lines[-1].strip() if lines else f"exit {run.returncode}"


def prepare(
    source: Path, folder: Path, moto: Moto, env: dict[str, str], terraform: str, quick: bool
) -> Prepared:
    """Copy, render, list the stacks, apply the shared ones. BenchError(ApplyFailed) when an apply fails."""
    config = copy_config(source, folder)
    adapted = adapt_for_moto(config, moto) + stand_in_image_lock(config, moto)
    progress(f"rendering {source} for {moto.url}")
    render = measured(
        levels_tf("-c", str(config), "render", "--aws-endpoint", moto.url, "--backend", "local"),
        folder,
        env,
    )
    if render.returncode != 0:
        raise BenchError(f"levels-tf render exited {render.returncode}:\n{render.tail()}")
    listing = measured(levels_tf("-c", str(config), "stacks", "--json"), folder, env)
    if listing.returncode != 0:
        raise BenchError(f"levels-tf stacks exited {listing.returncode}:\n{listing.tail()}")
    stacks = [
        StackInfo(s["name"], s["kind"], list(s["depends_on"])) for s in json.loads(listing.stdout)
    ]
    prepared = Prepared(
        source,
        config,
        select(stacks, quick),
        render.wall,
        stand_ins=stand_in_packages(config),
        adapted=adapted,
    )
    logs = folder / "logs"
    logs.mkdir()
    shared = [stack for stack in prepared.stacks if stack.kind == "shared"]
    for stack in shared:
        where = folder / "stacks" / stack.name
        for verb, argv in (
            ("init", [terraform, "init", "-input=false", "-no-color"]),
            ("plan", [terraform, "plan", "-out", "setup.tfplan", "-input=false", "-no-color"]),
        ):
            progress(f"terraform {verb} {stack.name} (set-up)")
            run = measured(argv, where, env, log=logs / f"{verb}-{stack.name}.log")
            if run.returncode != 0:
                raise ApplyFailed(
                    stack.name, verb, first_error(run), logs / f"{verb}-{stack.name}.log"
                )
    # The shared stacks apply at once: the set-up is not measured, and against
    # moto each takes minutes of the provider waiting on resources.
    started = {}
    for stack in shared:
        where = folder / "stacks" / stack.name
        argv = [terraform, "apply", "-auto-approve", "-input=false", "-no-color"]
        targets, left_out = moto_targets(terraform, where, env)
        argv += [f"-target={address}" for address in targets] if left_out else ["setup.tfplan"]
        prepared.left_out.update({f"{stack.name}: {address}" for address in left_out})
        progress(f"terraform apply {stack.name} (set-up, in the background)")
        log = logs / f"apply-{stack.name}.log"
        with open(log, "wb") as out:  # the child keeps its own copy of the handle
            child = subprocess.Popen(
                argv,
                cwd=where,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started[stack.name] = (time.perf_counter(), log, child)
    for name, (start, log, child) in started.items():
        code = child.wait(timeout=TIMEOUT)
        prepared.applies[name] = time.perf_counter() - start
        if code != 0:
            text = log.read_text(errors="replace")
            raise ApplyFailed(
                name, "apply", first_error(Run([], folder, code, 0, 0, 0, 0, text, "")), log
            )
    return prepared


def moto_targets(terraform: str, where: Path, env: dict[str, str]) -> tuple[list[str], list[str]]:
    """The saved set-up plan's resources, split into those to apply and those
    of types moto cannot create (left out with -target)."""
    shown = subprocess.run(
        [terraform, "show", "-json", "setup.tfplan"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if shown.returncode != 0:
        raise BenchError(
            f"terraform show of {where.name}'s set-up plan failed:\n{shown.stderr[-2000:]}"
        )
    changes = [
        c
        for c in json.loads(shown.stdout).get("resource_changes", [])
        if c.get("mode") == "managed"
    ]
    keep = [c["address"] for c in changes if c["type"] not in MOTO_MISSING_TYPES]
    left_out = [c["address"] for c in changes if c["type"] in MOTO_MISSING_TYPES]
    return keep, left_out


def adapt_for_moto(config: Path, moto: Moto) -> list[str]:
    """Change the copy of infra.yaml where moto cannot play AWS; say what changed.

    A certificate requested through Route 53 (dns.zone_id) waits for DNS
    validation in a zone moto does not have, and moto's zone ids do not look
    like Route 53's (the schema checks them): each group without a
    certificate gets a self-signed one imported into moto's ACM instead, and
    zone_id goes. Everything else is rendered as written."""
    import yaml

    doc = yaml.safe_load(config.read_text())
    dns = doc.get("dns") or {}
    balancer = doc.get("load_balancer")
    if balancer is None or not dns.get("zone_id"):
        return []
    certificates = dict(balancer.get("certificates") or {})
    missing = [group for group in doc["vpc_groups"] if group not in certificates]
    for group in missing:
        certificates[group] = import_self_signed(
            moto, doc["region"], dns.get("domain") or "example.com"
        )
    balancer["certificates"] = certificates
    del dns["zone_id"]
    config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return [
        f"dns.zone_id removed; self-signed certificates imported into moto's ACM for {', '.join(missing)}"
    ]


def stand_in_image_lock(config: Path, moto: Moto) -> list[str]:
    """An images.lock naming one of moto's AMIs for every image not baked yet.

    An image without an AMI stops plan by design ("run levels-tf bake");
    the benchmark measures plans, not bakes, so it records an AMI moto
    already has instead of running Packer."""
    import boto3

    from levels_tf.image_lock import LOCK_FILE, LockEntry, format_lock, load_lock
    from levels_tf.validation import load_config

    infra = load_config(config).infra
    lock_path = config.parent / LOCK_FILE
    lock = load_lock(lock_path)
    missing = [name for name in infra.images if lock.ami(name, infra.region) is None]
    if not missing:
        return []
    ec2 = boto3.client(
        "ec2",
        endpoint_url=moto.url,
        region_name=infra.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    ami = sorted(image["ImageId"] for image in ec2.describe_images(Owners=["amazon"])["Images"])[0]
    built_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for name in missing:
        lock = lock.with_bake(
            name,
            infra.region,
            LockEntry(ami=ami, version="plan-bench", source_ami=ami, built_at=built_at),
        )
    lock_path.write_text(format_lock(lock), encoding="utf-8")
    return [f"images.lock: moto's {ami} stands in for the unbaked {', '.join(missing)}"]


def import_self_signed(moto: Moto, region: str, domain: str) -> str:
    import datetime

    import boto3
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=7))
        .sign(key, hashes.SHA256())
    )
    acm = boto3.client(
        "acm",
        endpoint_url=moto.url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return acm.import_certificate(
        Certificate=certificate.public_bytes(serialization.Encoding.PEM),
        PrivateKey=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )["CertificateArn"]


class ApplyFailed(BenchError):
    def __init__(self, stack: str, verb: str, error: str, log: Path):
        super().__init__(f"terraform {verb} of {stack} failed on moto: {error}")
        self.stack, self.verb, self.error, self.log = stack, verb, error, log


# --------------------------------------------------------------------------
# The two measurements
# --------------------------------------------------------------------------


@dataclass
class PlainStack:
    init_wall: float
    plan_wall: float
    plan_cpu: float


def plain(prepared: Prepared, env: dict[str, str], terraform: str) -> dict[str, PlainStack]:
    """init every stack (timed, not counted), then plan each in turn."""
    stacks = prepared.config.parent / "stacks"
    inits = {}
    for stack in prepared.stacks:
        progress(f"terraform init {stack.name} (plain, not counted)")
        run = measured([terraform, "init", "-input=false", "-no-color"], stacks / stack.name, env)
        if run.returncode != 0:
            raise BenchError(f"terraform init of {stack.name} failed:\n{run.tail()}")
        inits[stack.name] = run.wall
    results = {}
    for stack in prepared.stacks:
        progress(f"terraform plan {stack.name} (plain)")
        run = measured([terraform, "plan", "-out", "p", "-input=false"], stacks / stack.name, env)
        if run.returncode != 0:
            raise BenchError(f"terraform plan of {stack.name} failed: {first_error(run)}")
        results[stack.name] = PlainStack(inits[stack.name], run.wall, run.cpu)
    return results


@dataclass
class Invocation:
    start: float
    end: float
    code: int
    verb: str
    cwd: str
    cpu: float  # terraform and its provider processes, from the wrapper's `times`

    @property
    def wall(self) -> float:
        return self.end - self.start


def _times_seconds(text: str) -> float:
    """`times` prints '0m1.230000s 0m0.120000s': user and system."""
    total = 0.0
    for minutes, seconds in re.findall(r"(\d+)m([\d.]+)s", text):
        total += int(minutes) * 60 + float(seconds)
    return total


def read_invocations(folder: Path) -> list[Invocation]:
    found = []
    for path in sorted(folder.iterdir()):
        lines = path.read_text().splitlines()
        record = dict(line.split(" ", 1) for line in lines[:5] if " " in line)
        children = lines[6] if len(lines) > 6 else ""  # line 6: the shell, line 7: its children
        found.append(
            Invocation(
                float(record["start"]),
                float(record["end"]),
                int(record["code"]),
                record.get("verb", ""),
                record.get("cwd", ""),
                _times_seconds(children),
            )
        )
    return sorted(found, key=lambda i: i.start)


def busy_time(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of the intervals: time during which any one ran."""
    total, current = 0.0, None
    for start, end in sorted(intervals):
        if current is None or start > current[1]:
            if current is not None:
                total += current[1] - current[0]
            current = [start, end]
        else:
            current[1] = max(current[1], end)
    if current is not None:
        total += current[1] - current[0]
    return total


@dataclass
class LevelsRun:
    run: Run
    invocations: list[Invocation]
    by_stack: dict[str, list[Invocation]]
    summary: dict
    moto_cpu: float

    @property
    def terraform_busy(self) -> float:
        return busy_time([(i.start, i.end) for i in self.invocations])

    @property
    def overhead(self) -> float:
        return self.run.wall - self.terraform_busy

    @property
    def terraform_cpu(self) -> float:
        return sum(i.cpu for i in self.invocations)

    @property
    def before_first(self) -> float:
        return (self.invocations[0].start - self.run.start) if self.invocations else self.run.wall

    @property
    def after_last(self) -> float:
        return (self.run.end - max(i.end for i in self.invocations)) if self.invocations else 0.0


def levels(
    prepared: Prepared,
    env: dict[str, str],
    terraform: str,
    moto: Moto,
    quick: bool,
    parallelism: int | None,
    run_name: str,
) -> LevelsRun:
    folder = prepared.config.parent
    log_dir = folder.parent / f"terraform-invocations-{run_name}"
    log_dir.mkdir()
    wrapper = folder.parent / "terraform-wrapper"
    if not wrapper.exists():  # written once: a changed binary would make levels-tf init again
        wrapper.write_text(WRAPPER, encoding="utf-8")
        wrapper.chmod(0o755)
    run_env = dict(env, PLAN_BENCH_TERRAFORM=terraform, PLAN_BENCH_LOG_DIR=str(log_dir))
    names = [s.name for s in prepared.stacks]
    argv = levels_tf(
        "-c",
        str(prepared.config),
        "plan",
        *(names if quick else ["--all"]),
        "--aws-endpoint",
        moto.url,
        "--backend",
        "local",
        "--format",
        "json",
        "--terraform-bin",
        str(wrapper),
    )
    if parallelism is not None:
        argv += ["--parallelism", str(parallelism)]
    progress(f"levels-tf plan {' '.join(names) if quick else '--all'} ({run_name} run)")
    moto_before = moto.cpu()
    run = measured(argv, folder, run_env)
    moto_cpu = moto.cpu() - moto_before
    if run.returncode not in (0, 2):
        raise BenchError(f"levels-tf plan exited {run.returncode}:\n{run.tail()}")
    try:
        summary = json.loads(run.stdout)
    except ValueError:
        raise BenchError(f"levels-tf plan printed no JSON summary:\n{run.tail()}") from None
    invocations = read_invocations(log_dir)
    stacks_dir = (folder / "stacks").resolve()
    by_stack: dict[str, list[Invocation]] = {name: [] for name in names}
    for invocation in invocations:
        cwd = Path(invocation.cwd)
        key = cwd.name if cwd.parent == stacks_dir else f"(other: {invocation.cwd})"
        by_stack.setdefault(key, []).append(invocation)
    return LevelsRun(run, invocations, by_stack, summary, moto_cpu)


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def critical_path(stacks: list[StackInfo], wall: dict[str, float]) -> tuple[float, list[str]]:
    """The longest chain of dependencies, by the sum of its stacks' wall times."""
    names = {s.name for s in stacks}
    finish: dict[str, tuple[float, list[str]]] = {}
    for stack in stacks:  # dependency order
        before = max(
            (finish[d] for d in stack.depends_on if d in names),
            default=(0.0, []),
            key=lambda f: f[0],
        )
        finish[stack.name] = (before[0] + wall[stack.name], before[1] + [stack.name])
    return max(finish.values(), key=lambda f: f[0])


def versions(env: dict[str, str], terraform: str, folder: Path) -> tuple[str, str]:
    found = subprocess.run(
        [terraform, "version", "-json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        data = json.loads(found.stdout)
    except ValueError:
        return "unknown", "unknown"
    providers = ", ".join(
        f"{k.split('/', 1)[-1]} {v}" for k, v in sorted(data.get("provider_selections", {}).items())
    )
    return data.get("terraform_version", "unknown"), providers or "unknown"


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def report_run(title: str, lt: LevelsRun, names: list[str], width: int, quick: bool) -> None:
    command = "plan " + (" ".join(names) if quick else "--all")
    print(f"levels-tf {command} --format json, {title} (wrapper as --terraform-bin)")
    stacks = lt.summary.get("stacks", [])
    not_planned = {s["stack"]: f"{s['status']}: {s['reason']}" for s in stacks if "reason" in s}
    print(
        f"  exit code {lt.run.returncode}; stacks planned: "
        f"{', '.join(s['stack'] for s in stacks if 'reason' not in s) or 'none'}"
        + (f"; not planned: {not_planned}" if not_planned else "")
    )
    print(
        f"  {'stack':<{width}} {'calls':>5}  {'verbs':<16} {'init':>8} {'plan':>8} {'other':>8} {'TF CPU':>8}"
        f" {'from':>8} {'to':>8}"
    )
    for name, calls in lt.by_stack.items():
        init = sum(i.wall for i in calls if i.verb == "init")
        plan = sum(i.wall for i in calls if i.verb == "plan")
        other = sum(i.wall for i in calls if i.verb not in ("init", "plan"))
        verbs = ", ".join(i.verb for i in calls)
        span = (
            f"{min(i.start for i in calls) - lt.run.start:7.2f}s {max(i.end for i in calls) - lt.run.start:7.2f}s"
            if calls
            else f"{'-':>8} {'-':>8}"
        )
        print(
            f"  {name:<{width}} {len(calls):>5}  {verbs:<16} {init:7.2f}s {plan:7.2f}s {other:7.2f}s "
            f"{sum(i.cpu for i in calls):7.2f}s {span}"
        )
    print(
        "  (from / to: first terraform start and last end of the stack, seconds after levels-tf started)"
    )
    inits = sum(i.wall for i in lt.invocations if i.verb == "init")
    print(f"  wall                                    {lt.run.wall:7.2f} s")
    print(f"  CPU, levels-tf and every child          {lt.run.cpu:7.2f} s")
    print(f"    terraform and providers (wrapper)     {lt.terraform_cpu:7.2f} s")
    print(f"    levels-tf's Python (the difference)   {lt.run.cpu - lt.terraform_cpu:7.2f} s")
    print(
        f"  terraform running (union of intervals)  {lt.terraform_busy:7.2f} s   (of which init: {inits:.2f} s summed)"
    )
    print(f"  overhead = wall - terraform running     {lt.overhead:7.2f} s")
    gaps = lt.overhead - lt.before_first - lt.after_last
    print(
        f"    before the first terraform            {lt.before_first:7.2f} s   (start-up, validate, stale check, locate)"
    )
    print(f"    between terraform runs                {gaps:7.2f} s")
    print(f"    after the last terraform              {lt.after_last:7.2f} s   (summary, exit)")
    print(f"  moto server CPU during this run         {lt.moto_cpu:7.2f} s")
    print()


def report(
    prepared: Prepared,
    fallback: ApplyFailed | None,
    plain_results: dict[str, PlainStack],
    runs: list[tuple[str, LevelsRun]],
    env: dict[str, str],
    terraform: str,
    mirror: str | None,
    moto: Moto,
    moto_plain_cpu: float,
    quick: bool,
    work: Path,
) -> None:
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    first = prepared.config.parent / "stacks" / prepared.stacks[0].name
    tf_version, providers = versions(env, terraform, first)
    names = [s.name for s in prepared.stacks]
    width = max(12, *(len(n) for n in names)) + 2

    print()
    print("levels-tf plan benchmark")
    print(
        f"  python      {platform.python_version()} ({platform.python_implementation()}) {sys.executable}"
    )
    print(f"  levels-tf   {package_version('levels-tf')} ({ROOT})")
    print(f"  terraform   {tf_version} ({terraform})")
    print(
        f"  provider    {providers}"
        + (f" (filesystem mirror {mirror})" if mirror else " (registry: no mirror found)")
    )
    print(f"  moto        {package_version('moto')} at {moto.url}")
    print(f"  machine     {platform.platform()}; {os.cpu_count()} cores, {cores} usable")
    if hasattr(os, "getloadavg"):
        print(
            f"  load        {LOAD_AT_START[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (1-minute averages;"
            " the end includes this benchmark's own terraform)"
            + (
                "\n              the machine was busy before the benchmark began: figures are inflated and noisy,"
                " rerun when idle"
                if LOAD_AT_START[0] > 0.5 * cores
                else ""
            )
        )
    try:
        shown = prepared.source.relative_to(ROOT)
    except ValueError:
        shown = prepared.source
    print(f"  config      {shown}" + ("  ** FALLBACK, see below **" if fallback else ""))
    if fallback:
        print(
            f"              the reference infra.yaml could not be used: terraform {fallback.verb} of its shared stack"
        )
        print(f"              {fallback.stack} failed on moto:")
        print(f"                {fallback.error}")
        print(
            "              so every figure below is for the two-zone, one-environment golden configuration"
        )
    order = "  ".join(
        f"{s.name}{' <- ' + ','.join(s.depends_on) if s.depends_on else ''}"
        for s in prepared.stacks
    )
    print(f"  stacks      {order}{'  (--quick)' if quick else ''}")
    if prepared.stand_ins:
        print(
            f"  functions   stand-in zips (sources only, no pip) for {', '.join(prepared.stand_ins)}"
        )
    for note in prepared.adapted:
        print(f"  for moto    {note}")
    if prepared.left_out:
        print(
            f"  set-up      applied without (moto has no API for them): {', '.join(sorted(prepared.left_out))}"
        )
    print(f"  folder      {work}")
    print()

    print("Set-up (not timed against the targets)")
    print(f"  {'levels-tf render':<{width + 16}} {prepared.render_wall:7.2f} s")
    for name, wall in prepared.applies.items():
        print(f"  {'terraform apply ' + name:<{width + 16}} {wall:7.2f} s")
    print()

    print("Plain terraform, one stack after another")
    print(f"  {'stack':<{width}} {'init*':>8} {'plan wall':>10} {'plan CPU':>10}")
    for name in names:
        p = plain_results[name]
        print(f"  {name:<{width}} {p.init_wall:7.2f}s {p.plan_wall:9.2f}s {p.plan_cpu:9.2f}s")
    plain_wall = sum(p.plan_wall for p in plain_results.values())
    plain_cpu = sum(p.plan_cpu for p in plain_results.values())
    print(
        f"  {'total':<{width}} {sum(p.init_wall for p in plain_results.values()):7.2f}s {plain_wall:9.2f}s {plain_cpu:9.2f}s"
    )
    print("  * `terraform init` beforehand, once per stack: shown, not counted in the limit")
    print(f"  moto server CPU during the plain plans and inits: {moto_plain_cpu:.2f} s")
    print()

    for title, run in runs:
        report_run(title, run, names, width, quick)

    cpu_bound = plain_cpu / cores
    path_wall, path = critical_path(
        prepared.stacks, {n: p.plan_wall for n, p in plain_results.items()}
    )
    limit = max(cpu_bound, path_wall)
    print("The limit (from the plain plans)")
    print(f"  CPU bound: {plain_cpu:.2f} s CPU / {cores} cores           {cpu_bound:7.2f} s")
    print(f"  critical path: {' -> '.join(path):<24} {path_wall:7.2f} s")
    print(f"  limit = the larger                            {limit:7.2f} s")
    print(f"  serial sum of the plain plans                 {plain_wall:7.2f} s")
    print()

    print("Targets")
    for (title, lt), expected in zip(runs, EXPECTED_VERBS, strict=False):
        path_inits = sum(i.wall for n in path for i in lt.by_stack.get(n, []) if i.verb == "init")
        ratio = lt.run.wall / limit if limit else float("inf")
        counts = {name: len(calls) for name, calls in lt.by_stack.items()}
        counts_ok = set(counts) == set(names) and all(
            sorted(i.verb for i in lt.by_stack.get(n, [])) == expected for n in names
        )
        print(f"  {title}:")
        print(
            f"    levels-tf wall within {LIMIT_MAX_RATIO:g}x of the limit: {ratio:.2f}x "
            f"({lt.run.wall:.2f} s vs {limit:.2f} s; {lt.run.wall / plain_wall:.2f}x the serial sum; "
            f"inits on the critical path, not in the limit: {path_inits:.2f} s)  {verdict(ratio <= LIMIT_MAX_RATIO)}"
        )
        print(
            f"    levels-tf overhead under {OVERHEAD_MAX_SECONDS:g} s: {lt.overhead:.2f} s  "
            f"{verdict(lt.overhead < OVERHEAD_MAX_SECONDS)}"
        )
        print(
            f"    terraform invocations per stack = {len(expected)} ({' + '.join(expected)}): "
            f"{', '.join(f'{n} {c}' for n, c in counts.items())}  {verdict(counts_ok)}"
        )
        print(
            f"    (CPU: levels-tf and children {lt.run.cpu:.2f} s vs plain plans {plain_cpu:.2f} s, "
            f"{lt.run.cpu / plain_cpu:.2f}x; not a target)"
        )


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="infra.yaml to plan (its scripts/ and images.lock are copied too); default: the reference",
    )
    parser.add_argument(
        "--quick", action="store_true", help="only the first shared stack and one environment"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder and print where it is"
    )
    parser.add_argument(
        "--parallelism", type=int, default=None, help="passed to levels-tf plan (default: its own)"
    )
    args = parser.parse_args(argv)
    source = (args.config or REFERENCE).resolve()
    if not source.is_file():
        parser.error(f"{source} is not a file")

    terraform = real_terraform()
    mirror = provider_mirror()
    work = Path(tempfile.mkdtemp(prefix="levels-tf-plan-bench-"))
    moto = None
    try:
        progress(f"working in {work}")
        OUTPUTS.append(work / "outputs")
        OUTPUTS[0].mkdir()
        moto = Moto(work / "moto")
        env = environment(work, moto.url, mirror)
        fallback = None
        try:
            prepared = prepare(source, work / "config", moto, env, terraform, args.quick)
        except ApplyFailed as failed:
            if args.config is not None:
                raise
            fallback = failed
            progress(f"{failed}")
            progress(f"falling back to {FALLBACK.relative_to(ROOT)} (log: {failed.log})")
            moto.reset()
            prepared = prepare(FALLBACK, work / "fallback", moto, env, terraform, args.quick)
        moto_before = moto.cpu()
        plain_results = plain(prepared, env, terraform)
        moto_plain_cpu = moto.cpu() - moto_before
        runs = [
            (
                "first run",
                levels(prepared, env, terraform, moto, args.quick, args.parallelism, "first"),
            ),
            (
                "repeat run",
                levels(prepared, env, terraform, moto, args.quick, args.parallelism, "repeat"),
            ),
        ]
        report(
            prepared,
            fallback,
            plain_results,
            runs,
            env,
            terraform,
            mirror,
            moto,
            moto_plain_cpu,
            args.quick,
            work,
        )
    finally:
        if moto is not None:
            moto.stop()
        if args.keep:
            print(f"\nkept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchError, subprocess.TimeoutExpired) as exc:  # the benchmark cannot report
        print(f"plan_bench: {exc}", file=sys.stderr)
        sys.exit(1)
