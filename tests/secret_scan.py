"""A small scanner for secret values in text levels-tf writes or prints.

It looks for what must never leave AWS or a developer's machine: AWS access
key ids, private keys, a literal value assigned to a password, secret or
token, and the exact values of secrets a test has seeded. The tests run it
over rendered trees, plan JSON, stack outputs and captured command output.

Key id prefixes: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Values that stand in for a secret and are safe to show: the placeholder the
# parameters module declares (real values are set out of band), and the fake
# credentials an AWS emulator accepts (moto's documented "testing", and the
# Packer emulator source's "emulator").
PLACEHOLDERS = frozenset({"set-me-out-of-band", "testing", "emulator"})

# Expressions, references and shell variables; ARNs, paths and the names RDS
# gives the secrets it manages (rds!cluster-<id>, rds!db-<id>) say where a
# secret lives, not what it is.
NOT_A_VALUE = (
    "$", "%{", "{{", "<", "var.", "local.", "module.", "each.", "data.", "arn:", "/", "rds!",
)  # fmt: skip

# The key id AWS's documentation uses as its example, which moto also reports
# as the caller's user id (a real GetCallerIdentity answers a unique id, AIDA...).
EXAMPLE_KEY_IDS = frozenset({"AKIAIOSFODNN7EXAMPLE"})
ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
# `password = "x"`, `"db_secret": "x"`, `token: x`, `secret_key = "x"`, ...: a
# name that ends in a word saying secret, then a literal value (not an
# interpolation or a shell variable). Names such as `http_tokens` or
# `secretsmanager:` (an IAM action) do not end in such a word, and a word
# after a colon is a part of an ARN (`...:secret:prefix/*`), not a name.
ASSIGNED = re.compile(
    r"""(?ix)
    (?<![\w.:-])
    (?P<name>[\w.-]*?(?:password|passwd|secret|token|api[_-]?key|private[_-]?key
                      |secret[_-]?(?:access[_-]?)?key|access[_-]?key))
    (?![\w])["']?\s*(?:=|:)\s*
    (?P<quote>["']?)(?P<value>[^"'\s,}\]]{6,})(?P=quote)
    """
)


@dataclass(frozen=True)
class Finding:
    """One suspected secret: where it is (`source`, 1-based `line`), what kind, and a redacted excerpt."""

    source: str
    line: int
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.kind}: {self.excerpt}"


def _redacted(value: str) -> str:
    return value[:4] + "…" if len(value) > 4 else "…"


def _is_placeholder(value: str) -> bool:
    return value.lower() in PLACEHOLDERS or value.startswith(NOT_A_VALUE)


def scan(text: str, source: str, seeded: Iterable[str] = ()) -> list[Finding]:
    """Every suspected secret in `text`, named after `source` (a path or a
    command) and 1-based line numbers. `seeded`: exact secret values a test
    put somewhere (e.g. a parameter's value in the emulator); each occurrence
    is a finding. Never raises on any text."""
    seeded = [value for value in seeded if value]
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in ACCESS_KEY_ID.finditer(line):
            if match[0] not in EXAMPLE_KEY_IDS:
                findings.append(Finding(source, number, "AWS access key id", _redacted(match[0])))
        if PRIVATE_KEY.search(line):
            findings.append(Finding(source, number, "private key", "-----BEGIN … PRIVATE KEY"))
        for match in ASSIGNED.finditer(line):
            name, value = match["name"], match["value"]
            if _is_placeholder(value):
                continue
            findings.append(Finding(source, number, f"literal {name}", _redacted(value)))
        for value in seeded:
            if value in line:
                findings.append(Finding(source, number, "seeded secret value", _redacted(value)))
    return findings


def scan_files(files: dict[str, str], seeded: Iterable[str] = ()) -> list[Finding]:
    """`scan` over {path: text}, such as `render()` returns."""
    seeded = list(seeded)
    return [finding for path, text in files.items() for finding in scan(text, path, seeded)]


def assert_clean(text: str, source: str, seeded: Iterable[str] = ()) -> None:
    """Fail (AssertionError) naming every finding of `scan`."""
    findings = scan(text, source, seeded)
    assert not findings, "secret values in output:\n" + "\n".join(map(str, findings))
