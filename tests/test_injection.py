"""Free text in infra.yaml cannot steer what levels-tf generates.

Each payload goes into each free-text field of the reference configuration
(values and names alike). `levels-tf render` must either refuse it, with an
error at the payload's own line and nothing written, or render it inert: the
parsed HCL of the tree is the baseline's, block for block and attribute for
attribute, with the payload as a literal value where the baseline has its
plain value; the bastion's boot script, as Terraform renders it, passes
`bash -n` and shellcheck and holds the payload only base64-encoded.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from .conftest import REFERENCE, ROOT, require_tool
from .render_outcome import error_lines, render_cli

PAYLOADS = [
    "../x",
    "a/b",
    "{{ 7*7 }}",
    "{% raw %}",
    "${",
    "%{",
    '"',
    "'",
    "line\nbreak",
    "é",
    "\u202e",
    "$(id)",
]
PAYLOAD_IDS = [
    "dotdot",
    "slash",
    "jinja-expr",
    "jinja-stmt",
    "hcl-interp",
    "hcl-directive",
    "dquote",
    "squote",
    "newline",
    "e-acute",
    "rtl-override",
    "cmd-subst",
]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxldmVscy1hbGljZS1leGFtcGxlLWtleS0tLS0tLS0t"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/01234567-89ab-cdef-0123-456789abcdef"


@dataclass(frozen=True)
class Field:
    """Where a payload goes: the value at `path`, or with `key` the name of the
    mapping entry at `path`; `form` embeds the payload in an otherwise valid value."""

    id: str
    path: tuple
    form: str = "{}"
    key: bool = False

    def located(self, payload: str) -> tuple:
        """The path of the payload in the document: a new key replaces the old one."""
        if self.key:
            return (*self.path[:-1], self.form.format(payload))
        return self.path


FIELDS = [
    Field("project", ("project",)),
    Field("region", ("region",)),
    Field("tag-key", ("tags", "Owner"), key=True),
    Field("tag-value", ("tags", "Owner")),
    Field("bucket-prefix", ("bucket_prefix",)),
    Field("state-bucket-prefix", ("state", "bucket_prefix")),
    Field("vpc-group", ("vpc_groups", "nonprod"), key=True),
    Field("environment", ("vpc_groups", "nonprod", "environments", 2)),
    Field("dns-domain", ("dns", "domain")),
    Field("zone-id", ("dns", "zone_id"), "Z{}"),
    Field("lb-hostname", ("load_balancer", "hostnames", "production", 0), "{}.levels.example"),
    Field("bastion-user", ("bastion", "users", "alice"), key=True),
    Field("ssh-key-comment", ("bastion", "users", "alice"), KEY + " {}"),
    Field("allowed-cidr", ("bastion", "allowed_cidrs", 0), "203.0.113.0/24{}"),
    Field("image", ("images", "worker"), key=True),
    Field("ssh-user", ("images", "api", "ssh_user")),
    Field("image-script", ("images", "api", "scripts", 1), "scripts/{}"),
    Field("instance-type", ("services", "api", "instance_type"), "t3.{}"),
    Field("service", ("services", "worker"), key=True),
    Field("health-check", ("services", "api", "health_check"), "/{}"),
    Field("route", ("services", "api", "routes", 0), "/api/{}"),
    Field("engine-version", ("database", "engine_version"), "8.0.mysql_aurora.3.08.{}"),
    Field("instance-class", ("database", "instance_class"), "db.r6g.{}"),
    Field("bucket-class", ("buckets", "deployments"), key=True),
    Field("cdn-alias", ("cdn", "aliases", "production", 0), "{}.levels.example"),
    Field("queue", ("queues", "jobs"), key=True),
    Field("subscriber", ("topics", "events", "subscribers", 0), "queue.{}"),
    Field("function", ("functions", "image-variants"), key=True),
    Field("variants-prefix", ("functions", "image-variants", "variants_prefix"), "{}/"),
    Field("secret-prefix", ("secrets", "prefixes", "ci"), key=True),
    Field("parameter", ("secrets", "prefixes", "app", "parameters", 0)),
    Field("ci-principal", ("ci", "assumed_by", 0), "arn:aws:iam::123456789012:role/{}"),
    Field("override", ("environments", "dev", "services.api.scaling"), key=True),
    Field("platform", ("terraform", "platforms", 0), "linux_{}"),
]

# The reference, with the optional values the fields above need.
BASE: dict[str, Any] = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
BASE["bucket_prefix"] = "levels"
BASE["images"]["api"]["ssh_user"] = "builder"
BASE["database"]["engine_version"] = "8.0.mysql_aurora.3.08.0"
BASE["cdn"].update(certificate_arn=CERT, aliases={"production": ["cdn.levels.example"]})
BASE["functions"]["image-variants"]["variants_prefix"] = "variants/"
BASE["ci"]["assumed_by"] = ["arn:aws:iam::123456789012:role/deployer"]
# A plain word in place of a payload: what an accepted payload is compared with.
MARKER = "marker"


def with_value(field: Field, payload: str) -> dict[str, Any]:
    doc = json.loads(json.dumps(BASE))
    *parents, last = field.path
    node = doc
    for part in parents:
        node = node[part]
    value = field.form.format(payload)
    if field.key:
        node[value] = node.pop(last)
    else:
        node[last] = value
    return doc


def write_config(folder: Path, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "scripts", folder / "scripts", dirs_exist_ok=True)
    config = folder / "infra.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return config


def yaml_line(text: str, path: tuple, key: bool) -> int:
    """1-based line of the value (or the key) at `path`, read by PyYAML alone."""
    node: Any = yaml.compose(text)
    for i, part in enumerate(path):
        if isinstance(part, int):
            node = node.value[part]
            continue
        for k, v in node.value:
            if k.value == part:
                if key and i == len(path) - 1:
                    return k.start_mark.line + 1
                node = v
                break
        else:
            raise KeyError(part)
    return node.start_mark.line + 1


def decoded(raw: Any) -> Any:
    """python-hcl2 output with every quoted string decoded to the text it stands for."""
    if isinstance(raw, dict):
        return {decoded(k): decoded(v) for k, v in raw.items() if k != "__is_block__"}
    if isinstance(raw, list):
        return [decoded(v) for v in raw]
    if isinstance(raw, str) and len(raw) >= 2 and raw[0] == raw[-1] == '"':
        inner = raw[1:-1].replace("$${", "${").replace("%%{", "%{")
        try:
            return json.loads(f'"{inner}"')
        except ValueError:  # a heredoc or a template with nested quotes: as written
            return raw
    return raw


def replaced(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {replaced(k, old, new): replaced(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [replaced(v, old, new) for v in value]
    if isinstance(value, str):
        return value.replace(old, new)
    return value


def holds(value: Any, text: str) -> bool:
    if isinstance(value, dict):
        return any(holds(k, text) or holds(v, text) for k, v in value.items())
    if isinstance(value, list):
        return any(holds(v, text) for v in value)
    return isinstance(value, str) and text in value


def parsed_hcl(files: dict[str, bytes]) -> dict[str, Any]:
    return {
        path: decoded(hcl2.load(io.StringIO(data.decode("utf-8"))))
        for path, data in files.items()
        if path.endswith((".tf", ".hcl")) and not path.endswith(".lock.hcl")
    }


def plain(payload: str) -> str:
    """A plain word standing for `payload` as a map key (tags) too: it sorts
    where the payload does (same first mark) and, like it, is not an HCL
    identifier when the payload holds a '/' (so both are quoted)."""
    first = "" if payload[0].isalnum() else payload[0]
    return first + MARKER + ("/" if "/" in payload else "")


_baselines: dict[tuple[str, str], dict[str, bytes]] = {}


def baseline(field: Field, word: str, tmp_path_factory) -> dict[str, bytes]:
    if (field.id, word) not in _baselines:
        folder = tmp_path_factory.mktemp(f"baseline-{field.id}")
        outcome = render_cli(write_config(folder, with_value(field, word)), folder / "out")
        assert outcome.exit_code == 0, outcome.stderr
        _baselines[field.id, word] = outcome.files
    return _baselines[field.id, word]


# The quick tier tries every payload on the fields that reach a shell script
# and every stack; the slow tier on every field.
QUICK_FIELDS = ("ssh-key-comment", "tag-value")


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
@pytest.mark.parametrize(
    "field",
    [
        pytest.param(f, id=f.id, marks=() if f.id in QUICK_FIELDS else pytest.mark.slow)
        for f in FIELDS
    ],
)
def test_payload_is_refused_at_its_line_or_rendered_inert(
    field, payload, tmp_path, tmp_path_factory
):
    config = write_config(tmp_path, with_value(field, payload))
    outcome = render_cli(config, tmp_path / "out")
    if outcome.exit_code == 2:
        line = yaml_line(config.read_text(encoding="utf-8"), field.located(payload), field.key)
        assert line in error_lines(outcome), (line, outcome.stderr)
        return
    # Accepted: the same tree as with a plain word, the payload taking its place.
    plain_word = plain(payload)
    value, plain_value = field.form.format(payload), field.form.format(plain_word)
    base = baseline(field, plain_word, tmp_path_factory)
    assert sorted(outcome.files) == sorted(base)
    changed = {p: data for p, data in outcome.files.items() if data != base[p]}
    ours, theirs = parsed_hcl(changed), parsed_hcl({p: base[p] for p in changed})
    assert set(ours) == set(changed), "only HCL files may change"
    assert holds(ours, value), f"{value!r} is nowhere in the generated HCL"
    assert replaced(ours, value, plain_value) == theirs


# --- the bastion's boot script, as Terraform renders it ----------------------------

BOOT_SCRIPTS = {
    # Which boot script, the file and the module call passing it `users`, and its other variables.
    "bastion": (
        "modules/bastion/user-data.sh.tftpl",
        ' region = "us-east-1", allocation_id = "eipalloc-0123456789abcdef0"',
    ),
    "service": (
        "modules/service/user-data.sh.tftpl",
        ' service = "api", region = "us-east-1", bucket = "levels-production-deployments",'
        ' parameter = "/levels/production/api/bundle-version"',
    ),
}


def _users(files: dict[str, bytes], which: str) -> object:
    """The `users` map the production stacks pass to the bastion or the fleets."""
    if which == "bastion":
        stack = decoded(
            hcl2.load(io.StringIO(files["stacks/production-shared/access.tf"].decode()))
        )
        (call,) = [m["bastion"] for m in stack["module"] if "bastion" in m]
        return call["users"]
    stack = decoded(hcl2.load(io.StringIO(files["stacks/production/services.tf"].decode())))
    (call,) = [m["service"] for m in stack["module"] if "service" in m]
    assert call["users"] == "${local.logins}"
    (logins,) = [block["logins"] for block in stack["locals"] if "logins" in block]
    return logins


def boot_script(files: dict[str, bytes], folder: Path, which: str = "bastion") -> str:
    """The user data Terraform's templatefile makes of the rendered tree's
    boot script `which` (bastion or service): the production stacks' `users`
    map, passed as the stack passes it."""
    path, variables = BOOT_SCRIPTS[which]
    folder.mkdir()
    (folder / "user-data.sh.tftpl").write_bytes(files[path])
    (folder / "users.json").write_text(json.dumps(_users(files, which)), encoding="utf-8")
    (folder / "cli.tfrc").write_text("", encoding="utf-8")
    expression = (
        'base64encode(templatefile("user-data.sh.tftpl", {users = jsondecode(file("users.json")),'
        f"{variables}}}))"
    )
    result = subprocess.run(
        [require_tool("terraform"), "console"],
        input=expression,
        cwd=folder,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "TF_CLI_CONFIG_FILE": str(folder / "cli.tfrc")},
        timeout=120,
        check=True,
    )
    return base64.b64decode(json.loads(result.stdout.strip())).decode("utf-8")


@pytest.mark.terraform
@pytest.mark.parametrize("which", sorted(BOOT_SCRIPTS))
@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
def test_a_key_comment_reaches_the_boot_script_only_base64_encoded(payload, which, tmp_path):
    field = next(f for f in FIELDS if f.id == "ssh-key-comment")
    key = field.form.format(payload)
    outcome = render_cli(write_config(tmp_path, with_value(field, payload)), tmp_path / "out")
    if outcome.exit_code == 2:
        return  # refused: test_payload_is_refused_at_its_line_or_rendered_inert checks where
    script = boot_script(outcome.files, tmp_path / "console", which)
    assert key not in script and payload not in script.split("base64 -d")[0].split("# ")[-1]
    assert base64.b64encode(key.encode()).decode() in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    subprocess.run(
        [require_tool("shellcheck"), "-s", "bash", "-"], input=script, text=True, check=True
    )


def test_some_key_comments_are_accepted():
    """The boot script test above has something to check."""
    field = next(f for f in FIELDS if f.id == "ssh-key-comment")
    from levels_tf.model import _ssh_key

    accepted = []
    for payload in PAYLOADS:
        try:
            _ssh_key(field.form.format(payload))
            accepted.append(payload)
        except ValueError:
            pass
    assert accepted == ["../x", "a/b"]
