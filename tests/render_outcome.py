"""What `levels-tf render --out DIR` did with one infra.yaml, checked for the
two endings it may have: a whole fresh tree, or exit 2 with file:line errors
and the folder untouched. Shared by the injection and fuzzing tests."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from levels_tf import writer
from levels_tf.cli import cli
from levels_tf.render import render
from levels_tf.validation import load_config


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes); {} when it does not exist."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() or path.is_symlink()
    }


def tree_hash(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for path, data in sorted(files.items()):
        digest.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stderr: str
    files: dict[str, bytes]  # the out folder afterwards


def render_cli(config: Path, out: Path) -> Outcome:
    """Run `levels-tf -c config render --out out` in-process and check its ending.

    Exit 0: the folder holds exactly a fresh render of `config` plus the
    manifest and no journal or staged file. Exit 2: every stderr line is
    `<config>:LINE:COL: ...` and the folder is byte for byte as before.
    Anything else (another exit code, a crash report) fails the assertion."""
    before = snapshot(out)
    result = CliRunner().invoke(cli, ["-c", str(config), "render", "--out", str(out)])
    after = snapshot(out)
    detail = f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.exception is None or isinstance(result.exception, SystemExit), detail
    assert "internal error" not in result.output + result.stderr, detail
    assert "Traceback" not in result.output + result.stderr, detail
    if result.exit_code == 0:
        expected = render(load_config(config))
        records = sorted(p for p in after if p.startswith(writer.STATE_DIR) and p not in expected)
        generated = {path: data for path, data in after.items() if path not in records}
        assert generated == {p: t.encode() for p, t in expected.items()}, detail
        state = records
        assert state == [writer.MANIFEST], (state, detail)
        assert not any(p.endswith((writer.STAGED_SUFFIX, writer.BACKUP_SUFFIX)) for p in after), (
            detail
        )
    else:
        assert result.exit_code == 2, detail
        lines = result.stderr.splitlines()
        assert lines, detail
        pattern = re.compile(re.escape(str(config)) + r":\d+:\d+: \S")
        assert all(pattern.match(line) for line in lines), detail
        assert after == before, detail
    return Outcome(result.exit_code, result.stderr, after)


def error_lines(outcome: Outcome) -> set[int]:
    """The infra.yaml line numbers the errors of a refused render point at."""
    return {int(m.group(1)) for m in re.finditer(r"\.yaml:(\d+):\d+: ", outcome.stderr)}
