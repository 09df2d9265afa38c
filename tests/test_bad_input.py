"""Broken infra.yaml files through the real command line, in a subprocess.

Every case must end with exit code 2, one `FILE:LINE:COL: ...` line per problem
on stderr (at the expected lines), no traceback, and nothing written.

The committed cases live in tests/bad_input/; each starts with
`# expect: LINE[, LINE...]`, the lines that must be reported. Cases that cannot
hold a comment, or are too large to commit, are generated below.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import copy_reference

CORPUS = Path(__file__).resolve().parent / "bad_input"
EXPECT = re.compile(r"# expect: (\d+(?:, *\d+)*)\n")
SEED = 20240229


def _garbage(size: int) -> bytes:
    return random.Random(SEED).randbytes(size)


def _first_bad_utf8_line(raw: bytes) -> int:
    """Line of the first byte that is not UTF-8, by Python's own decoder."""
    with pytest.raises(UnicodeDecodeError) as info:
        raw.decode("utf-8")
    return raw[: info.value.start].count(b"\n") + 1


def _empty(path: Path) -> set[int]:
    path.write_bytes(b"")
    return {1}


def _directory(path: Path) -> set[int]:
    path.mkdir()
    (path / "infra.yaml").write_text("project: shop\n")
    return {1}


def _missing(path: Path) -> set[int]:
    return {1}


def _ten_megabytes(path: Path) -> set[int]:
    with path.open("wb") as stream:
        stream.write(b"project: shop\nregion: us-east-1\ntags:\n")
        line = b"  k%07d: value\n"
        stream.write(b"".join(line % i for i in range(10 * 1024 * 1024 // len(line % 0))))
    assert path.stat().st_size >= 10 * 1024 * 1024 - 64
    return {1}


def _binary_garbage(path: Path) -> set[int]:
    raw = _garbage(64 * 1024)
    path.write_bytes(raw)
    return {_first_bad_utf8_line(raw)}


def _garbage_after_text(path: Path) -> set[int]:
    raw = b"project: shop\nregion: us-east-1\nvpc_groups:\n  prod:\n" + _garbage(4096)
    path.write_bytes(raw)
    line = _first_bad_utf8_line(raw)
    assert line >= 5
    return {line}


def _nul_byte(path: Path) -> set[int]:
    path.write_bytes(b"project: shop\nregion: us-\x00east-1\n")
    return {2}


def _c1_control_character(path: Path) -> set[int]:
    path.write_bytes("project: shop\nregion: us-east-1\ntags: {Owner: \u0090}\n".encode("utf-8"))
    return {3}


def _utf16(path: Path) -> set[int]:
    path.write_bytes("project: shop\n".encode("utf-16"))
    return {1}


GENERATED = {
    "empty_file": _empty,
    "directory_instead_of_file": _directory,
    "missing_file": _missing,
    "ten_megabytes": _ten_megabytes,
    "binary_garbage": _binary_garbage,
    "garbage_after_text": _garbage_after_text,
    "nul_byte": _nul_byte,
    "c1_control_character": _c1_control_character,
    "utf16": _utf16,
}


def _committed() -> list[str]:
    return sorted(path.name for path in CORPUS.glob("*.yaml"))


def _expected(path: Path) -> set[int]:
    head = path.read_bytes().split(b"\n", 1)[0].decode("utf-8") + "\n"
    match = EXPECT.fullmatch(head)
    assert match, f"{path.name}: the first line must be '# expect: LINE'"
    return {int(n) for n in match.group(1).split(",")}


def _start(config: Path, args: list[str], cwd: Path) -> subprocess.Popen:
    home = cwd.parent / "home"
    env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    return subprocess.Popen(
        [sys.executable, "-m", "levels_tf", "-c", str(config), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _run_both(config: Path, tmp_path: Path) -> dict[str, tuple[int, str, str]]:
    """`validate` and `render --out` on `config`, side by side."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    out = tmp_path / "out"
    commands = {"validate": ["validate"], "render": ["render", "--out", str(out)]}
    running = {name: _start(config, args, cwd) for name, args in commands.items()}
    results = {}
    for name, process in running.items():
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            pytest.fail(f"{name} did not finish in 60 s")
        results[name] = (
            process.returncode,
            stdout.decode("utf-8", "replace"),
            stderr.decode("utf-8", "replace"),
        )
    return results


def _check_refused(config: Path, expected: set[int], tmp_path: Path) -> None:
    results = _run_both(config, tmp_path)
    pattern = re.compile(re.escape(str(config)) + r":(\d+):(\d+): \S")
    for command, (code, stdout, stderr) in results.items():
        context = f"{command}: exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        assert "Traceback" not in stdout + stderr, context
        assert "internal error" not in stderr, context
        assert code == 2, context
        assert stdout == "", context
        lines = stderr.splitlines()
        assert lines, context
        reported = set()
        for line in lines:
            match = pattern.match(line)
            assert match, f"not FILE:LINE:COL: {line!r}\n{context}"
            reported.add(int(match.group(1)))
            assert int(match.group(2)) >= 1
        assert reported == expected, context
    assert not (tmp_path / "out").exists(), "render wrote its output folder"
    assert list((tmp_path / "cwd").iterdir()) == [], "something was written in the working folder"


@pytest.mark.parametrize("name", _committed())
def test_committed_bad_input(name, tmp_path):
    config = CORPUS / name
    _check_refused(config, _expected(config), tmp_path)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_bad_input(name, tmp_path):
    folder = tmp_path / "input"
    folder.mkdir()
    config = folder / "infra.yaml"
    expected = GENERATED[name](config)
    _check_refused(config, expected, tmp_path)


def test_corpus_covers_the_required_cases():
    required = {
        "syntax_bad_indentation.yaml",
        "syntax_unclosed_bracket.yaml",
        "syntax_tab_indentation.yaml",
        "wrong_type_quoted_number.yaml",
        "unknown_key.yaml",
        "overlapping_cidrs.yaml",
        "dangling_references.yaml",
        "yaml_bomb.yaml",
        "duplicate_keys.yaml",
        "several_documents.yaml",
        "top_level_list.yaml",
    }
    assert required <= set(_committed())
    for name in _committed():
        assert (CORPUS / name).stat().st_size < 8 * 1024, f"{name}: keep corpus files small"
        _expected(CORPUS / name)


def test_the_harness_sees_a_valid_file_succeed(tmp_path):
    """Control: the same harness on the reference file exits 0 and writes the tree."""
    config = copy_reference(tmp_path / "input")
    results = _run_both(config, tmp_path)
    for command, (code, _stdout, stderr) in results.items():
        assert code == 0, f"{command}: {stderr}"
        assert "Traceback" not in stderr
    assert results["validate"][1].startswith(f"{config}: valid")
    assert any((tmp_path / "out").rglob("*.tf"))
