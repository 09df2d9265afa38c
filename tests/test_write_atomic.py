"""writer.write_atomic: the one way levels-tf replaces a file outside a render's transaction."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from levels_tf import writer


class RecordingOs:
    """Stands in for `os` inside levels_tf.writer and records the calls named."""

    def __init__(self, *names: str):
        self.names = names
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, attr: str) -> Any:
        real = getattr(os, attr)
        if attr not in self.names:
            return real

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((attr, args))
            return real(*args, **kwargs)

        return wrapper


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_text_is_written_as_utf8_with_its_newlines_as_given(tmp_path):
    target = tmp_path / "deep" / "file.txt"
    writer.write_atomic(target, "é\r\nline\n")
    assert target.read_bytes() == "é\r\nline\n".encode()


def test_bytes_replace_the_old_file_and_no_temporary_file_is_left(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    writer.write_atomic(target, b"\x00new")
    assert target.read_bytes() == b"\x00new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


def test_the_file_and_then_its_folder_are_fsynced_around_the_rename(tmp_path, monkeypatch):
    fake = RecordingOs("fsync", "replace")
    monkeypatch.setattr(writer, "os", fake)
    writer.write_atomic(tmp_path / "file", "text")
    assert [name for name, _ in fake.calls] == ["fsync", "replace", "fsync"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_a_replaced_file_keeps_its_permissions(tmp_path, mode):
    target = tmp_path / "images.lock"
    target.write_text("old")
    target.chmod(mode)
    writer.write_atomic(target, "new")
    assert mode_of(target) == mode


def test_a_new_file_gets_the_permissions_the_umask_allows(tmp_path):
    # The image lock was written 0o644 whatever the umask; now every file
    # levels-tf creates follows it, as open() does.
    previous = os.umask(0o077)
    try:
        writer.write_atomic(tmp_path / "private", "x")
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / "private") == 0o600


def test_a_failed_replace_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "inside").write_text("kept")  # a folder that is not empty cannot be replaced
    with pytest.raises(OSError):
        writer.write_atomic(target, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]
    assert (target / "inside").read_text() == "kept"


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    target = tmp_path / "file"
    target.write_text("old")

    def full(*args: object) -> int:
        raise OSError(28, "No space left on device")

    class FullOs:
        def __getattr__(self, attr: str) -> Callable[..., Any]:
            return full if attr == "write" else getattr(os, attr)

    monkeypatch.setattr(writer, "os", FullOs())
    with pytest.raises(OSError, match="No space"):
        writer.write_atomic(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_recover_removes_a_journal_write_that_was_cut_short(tmp_path):
    state = tmp_path / writer.STATE_DIR
    state.mkdir()
    leftover = state / ".journal.json.0123abcd.tmp"
    leftover.write_text("{")
    assert writer.recover(tmp_path) is False
    assert not leftover.exists()


def test_artifacts_and_the_render_journal_use_it(tmp_path, monkeypatch):
    written: list[Path] = []
    real = writer.write_atomic

    def record(path: Path, data: str | bytes) -> None:
        written.append(path)
        real(path, data)

    monkeypatch.setattr(writer, "write_atomic", record)
    assert writer.write_artifact(tmp_path / "a.zip", b"zip") is True
    assert writer.write_artifact(tmp_path / "a.zip", b"zip") is False
    writer.write(tmp_path / "tree", {"main.tf": "x\n"})
    assert written[0] == tmp_path / "a.zip"
    assert set(written[1:]) == {tmp_path / "tree" / writer.JOURNAL}
