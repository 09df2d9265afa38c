"""levels_tf.writer: the transactional writer of the output tree.

Trees are built from small dicts; a few tests use the real render through the CLI.
Atomicity is tested twice: with an OSError raised in the middle of a write (in
process), and with a hard kill (os._exit in a subprocess) at many points.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from levels_tf import writer
from levels_tf.errors import WriteError

from .conftest import next_step

OLD_TIME_NS = 1_000_000_000 * 10**9  # 2001: anything rewritten gets a newer mtime

OLD_TREE = {
    "modules/network/main.tf": 'resource "aws_vpc" "this" {}\n',
    "modules/network/outputs.tf": 'output "id" {\n  value = aws_vpc.this.id\n}\n',
    "stacks/dev/main.tf": 'module "network" {\n  source = "../../modules/network"\n}\n',
    "stacks/dev/versions.tf": 'terraform {\n  required_version = ">= 1.10"\n}\n',
    "stacks/prod/main.tf": "# prod\n",
    "stacks/prod/versions.tf": "# prod versions\n",
    "stacks/old/main.tf": "# a stack that goes away\n",
    "stacks/old/versions.tf": "# its versions\n",
    "gone/alone.tf": "# alone in its folder\n",
}

# Against OLD_TREE: updates, unchanged files, creates in new folders, deletes
# (a whole folder, and a folder that keeps a file levels-tf did not write).
NEW_TREE = {
    "modules/network/main.tf": 'resource "aws_vpc" "this" {\n  cidr_block = "10.0.0.0/16"\n}\n',
    "modules/network/outputs.tf": 'output "id" {\n  value = aws_vpc.this.id\n}\n',
    "modules/network/variables.tf": 'variable "cidr" {}\n',
    "stacks/dev/main.tf": "# dev, changed\n",
    "stacks/dev/versions.tf": 'terraform {\n  required_version = ">= 1.10"\n}\n',
    "stacks/prod/main.tf": "# prod, changed\n",
    "stacks/prod/versions.tf": "# prod versions, changed\n",
    "stacks/qa/main.tf": "# qa\n",
    "stacks/qa/versions.tf": "# qa versions\n",
    "stacks/test/main.tf": "# test\n",
    "stacks/test/versions.tf": "# test versions\n",
    "packer/api.pkr.hcl": "# api image\n",
}

# Files levels-tf never wrote; every write must leave them alone.
UNMANAGED = {
    "stacks/old/terraform.tfstate": '{"version": 4}\n',
    "stacks/dev/.terraform/providers/lock": "provider bytes\n",
    "notes.txt": "my notes\n",
}


# --- helpers -------------------------------------------------------------------------


def snapshot(root: Path, *, times: bool = False) -> dict[str, object]:
    """Everything under `root`: folders, and files with their bytes (and mtimes)."""
    result: dict[str, object] = {}
    for folder, dirs, names in os.walk(root):
        base = Path(folder)
        for name in dirs:
            path = base / name
            rel = path.relative_to(root).as_posix() + "/"
            result[rel] = path.stat().st_mtime_ns if times else "dir"
        for name in names:
            path = base / name
            rel = path.relative_to(root).as_posix()
            data = path.read_bytes()
            result[rel] = (data, path.stat().st_mtime_ns) if times else data
    return result


def file_times(root: Path) -> dict[str, tuple[int, int]]:
    """mtime and inode of every file: what a rewrite would change."""
    result = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            stat = path.stat()
            result[path.relative_to(root).as_posix()] = (stat.st_mtime_ns, stat.st_ino)
    return result


def age(root: Path) -> None:
    """Set every mtime under (and of) `root` far in the past."""
    for folder, dirs, names in os.walk(root):
        for name in names + dirs:
            os.utime(Path(folder) / name, ns=(OLD_TIME_NS, OLD_TIME_NS))
    os.utime(root, ns=(OLD_TIME_NS, OLD_TIME_NS))


def put(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


def leftovers(root: Path) -> list[str]:
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.name.endswith((writer.STAGED_SUFFIX, writer.BACKUP_SUFFIX, ".tmp"))
        or path.name == Path(writer.JOURNAL).name
    )


def expected_tree(
    files: dict[str, str], unmanaged: dict[str, str] | None = None
) -> dict[str, object]:
    """The snapshot of a fresh folder holding exactly `files` (generated) and `unmanaged`."""
    with tempfile.TemporaryDirectory() as scratch:
        put(Path(scratch), unmanaged or {})
        writer.write(Path(scratch), files)
        return snapshot(Path(scratch))


@pytest.fixture
def out(tmp_path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def old_tree(out) -> Path:
    """OUT holding OLD_TREE (written by levels-tf) and UNMANAGED files."""
    out.mkdir()
    put(out, UNMANAGED)
    writer.write(out, OLD_TREE)
    age(out)
    return out


class FailingOs:
    """Stands in for `os` inside levels_tf.writer; one function misbehaves on its Nth call."""

    def __init__(self, name: str, nth: int, action):
        self.name, self.nth, self.action, self.calls = name, nth, action, 0

    def __getattr__(self, attr):
        real = getattr(os, attr)
        if attr != self.name:
            return real

        def wrapper(*args, **kwargs):
            self.calls += 1
            if self.calls == self.nth:
                self.action()
            return real(*args, **kwargs)

        return wrapper


def replace_calls(out: Path, files: dict[str, str]) -> int:
    """How many os.replace calls writing `files` over `out` makes: the journal, then each create/update."""
    return 1 + sum(1 for change in writer.plan_changes(out, files) if change.new is not None)


# --- write: creating, no-op, minimal rewrites ----------------------------------------------


def test_first_write_creates_every_file_and_the_manifest(out):
    changes = writer.write(out, OLD_TREE)

    assert sorted((c.path, c.action) for c in changes) == sorted(
        [(path, "create") for path in OLD_TREE] + [(writer.MANIFEST, "create")]
    )
    for rel, text in OLD_TREE.items():
        assert (out / rel).read_bytes() == text.encode()
    manifest = (out / writer.MANIFEST).read_text()
    assert manifest.startswith("#")
    assert [line for line in manifest.splitlines() if not line.startswith("#")] == sorted(OLD_TREE)
    assert writer.read_manifest(out) == sorted(OLD_TREE)
    assert set(snapshot(out)) == {*OLD_TREE, writer.MANIFEST} | {
        "modules/",
        "modules/network/",
        "stacks/",
        "stacks/dev/",
        "stacks/prod/",
        "stacks/old/",
        "gone/",
        ".levels-tf/",
    }


def test_write_creates_a_missing_output_folder(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    writer.write(out, {"x.tf": "x\n"})
    assert (out / "x.tf").read_text() == "x\n"


def test_second_identical_write_changes_nothing(old_tree):
    before = snapshot(old_tree, times=True)
    before_files = file_times(old_tree)

    assert writer.write(old_tree, OLD_TREE) == []
    assert writer.plan_changes(old_tree, OLD_TREE) == []

    assert snapshot(old_tree, times=True) == before
    assert file_times(old_tree) == before_files
    assert os.stat(old_tree).st_mtime_ns == OLD_TIME_NS


def test_only_changed_files_are_rewritten(old_tree):
    before = file_times(old_tree)
    files = dict(OLD_TREE)
    files["stacks/dev/main.tf"] = "# dev, edited\n"

    changes = writer.write(old_tree, files)

    assert [(c.path, c.action) for c in changes] == [("stacks/dev/main.tf", "update")]
    after = file_times(old_tree)
    assert (old_tree / "stacks/dev/main.tf").read_text() == "# dev, edited\n"
    assert after["stacks/dev/main.tf"] != before["stacks/dev/main.tf"]
    del after["stacks/dev/main.tf"], before["stacks/dev/main.tf"]
    # Every other file, the manifest included, keeps its inode and mtime.
    assert after == before


def test_a_new_file_rewrites_only_it_and_the_manifest(old_tree):
    before = file_times(old_tree)
    changes = writer.write(old_tree, {**OLD_TREE, "stacks/dev/extra.tf": "# extra\n"})
    assert sorted((c.path, c.action) for c in changes) == [
        (writer.MANIFEST, "update"),
        ("stacks/dev/extra.tf", "create"),
    ]
    after = file_times(old_tree)
    assert {k: v for k, v in after.items() if k in before and k != writer.MANIFEST} == {
        k: v for k, v in before.items() if k != writer.MANIFEST
    }
    assert "stacks/dev/extra.tf" in writer.read_manifest(old_tree)


def test_a_generated_file_deleted_by_hand_is_created_again(old_tree):
    (old_tree / "stacks/prod/main.tf").unlink()
    changes = writer.write(old_tree, OLD_TREE)
    assert [(c.path, c.action) for c in changes] == [("stacks/prod/main.tf", "create")]
    assert (old_tree / "stacks/prod/main.tf").read_text() == OLD_TREE["stacks/prod/main.tf"]


def test_crlf_on_disk_is_not_the_rendered_lf_text(old_tree):
    """The tree must be exactly the rendered bytes; newline translation must not hide a difference."""
    path = old_tree / "stacks/prod/main.tf"
    path.write_bytes(b"# prod\r\n")
    changes = writer.plan_changes(old_tree, OLD_TREE)
    assert [(c.path, c.action) for c in changes] == [("stacks/prod/main.tf", "update")]
    writer.write(old_tree, OLD_TREE)
    assert path.read_bytes() == b"# prod\n"


# --- write: removing what is no longer generated ------------------------------------


def test_no_longer_generated_files_and_their_empty_folders_are_removed(old_tree):
    files = {k: v for k, v in OLD_TREE.items() if not k.startswith("gone/")}
    changes = writer.write(old_tree, files)
    assert [(c.path, c.action) for c in changes] == [
        (writer.MANIFEST, "update"),
        ("gone/alone.tf", "delete"),
    ]
    assert not (old_tree / "gone").exists()
    assert "gone/alone.tf" not in writer.read_manifest(old_tree)
    assert snapshot(old_tree) == expected_tree(files, UNMANAGED)


def test_nested_folders_emptied_by_removal_go_too(out):
    writer.write(out, {"a/b/c/deep.tf": "x\n", "keep.tf": "k\n"})
    writer.write(out, {"keep.tf": "k\n"})
    assert not (out / "a").exists()
    assert (out / "keep.tf").exists()


def test_a_folder_holding_files_levels_tf_did_not_write_stays(old_tree):
    state = old_tree / "stacks/old/terraform.tfstate"
    dot_terraform = old_tree / "stacks/old/.terraform"
    dot_terraform.mkdir()
    (dot_terraform / "terraform.tfstate").write_text("{}\n")
    age(old_tree)
    kept = {
        rel: value
        for rel, value in snapshot(old_tree, times=True).items()
        if rel.startswith("stacks/old/") and not rel.endswith(".tf") and rel != "stacks/old/"
    }

    files = {k: v for k, v in OLD_TREE.items() if not k.startswith("stacks/old/")}
    changes = writer.write(old_tree, files)

    assert {c.path for c in changes if c.action == "delete"} == {
        "stacks/old/main.tf",
        "stacks/old/versions.tf",
    }
    assert not (old_tree / "stacks/old/main.tf").exists()
    assert not (old_tree / "stacks/old/versions.tf").exists()
    assert state.read_text() == UNMANAGED["stacks/old/terraform.tfstate"]
    after = snapshot(old_tree, times=True)
    assert {rel: after.get(rel) for rel in kept} == kept  # untouched: bytes and mtimes


def test_removing_a_generated_file_already_gone_only_updates_the_manifest(old_tree):
    (old_tree / "gone/alone.tf").unlink()
    files = {k: v for k, v in OLD_TREE.items() if not k.startswith("gone/")}
    changes = writer.write(old_tree, files)
    assert [(c.path, c.action) for c in changes] == [(writer.MANIFEST, "update")]


# --- write: files levels-tf did not generate -------------------------------------------


def test_an_unmanaged_file_in_the_way_is_refused_and_nothing_is_written(old_tree):
    (old_tree / "stacks/qa").mkdir()
    (old_tree / "stacks/qa/main.tf").write_text("# written by hand\n")
    age(old_tree)
    before = snapshot(old_tree, times=True)

    with pytest.raises(
        WriteError, match=r"stacks/qa/main\.tf: exists and was not generated by levels-tf"
    ):
        writer.write(old_tree, NEW_TREE)
    with pytest.raises(WriteError, match="not generated"):
        writer.plan_changes(old_tree, NEW_TREE)

    assert snapshot(old_tree, times=True) == before


def test_an_unmanaged_file_in_a_fresh_folder_is_refused(out):
    put(out, {"stacks/dev/main.tf": "# mine\n"})
    before = snapshot(out, times=True)
    with pytest.raises(WriteError, match="not generated"):
        writer.write(out, {"stacks/dev/main.tf": "# generated\n", "stacks/dev/other.tf": "x\n"})
    assert snapshot(out, times=True) == before
    assert not (out / writer.STATE_DIR).exists()


def test_every_unmanaged_file_in_the_way_is_named_at_once(out):
    put(out, {"stacks/dev/main.tf": "# mine\n", "modules/vpc/main.tf": "# mine too\n"})
    files = {
        "stacks/dev/main.tf": "# generated\n",
        "modules/vpc/main.tf": "# generated\n",
        "x.tf": "x\n",
    }
    with pytest.raises(WriteError) as refused:
        writer.write(out, files)
    assert str(refused.value).splitlines() == [
        f"{out / name}: exists and was not generated by levels-tf; move it away or delete it"
        for name in ("modules/vpc/main.tf", "stacks/dev/main.tf")
    ]
    assert not (out / "x.tf").exists()


def test_a_first_write_that_fails_says_nothing_was_written():
    with pytest.raises(WriteError, match=r"cannot write: .*; nothing was written$"):
        writer.write(Path("/proc/levels-tf-no-such-folder"), {"x.tf": "x\n"})


def test_an_unmanaged_file_with_the_rendered_content_is_adopted(out):
    put(out, {"a.tf": "same\n"})
    changes = writer.write(out, {"a.tf": "same\n"})
    assert [(c.path, c.action) for c in changes] == [(writer.MANIFEST, "create")]
    assert writer.read_manifest(out) == ["a.tf"]


# --- plan_changes and diff (render --check) ---------------------------------------------


def test_plan_changes_lists_create_update_delete_and_writes_nothing(old_tree):
    before = snapshot(old_tree, times=True)
    changes = writer.plan_changes(old_tree, NEW_TREE)
    assert snapshot(old_tree, times=True) == before

    actions = {c.path: c.action for c in changes}
    assert actions == {
        writer.MANIFEST: "update",
        "modules/network/main.tf": "update",
        "modules/network/variables.tf": "create",
        "stacks/dev/main.tf": "update",
        "stacks/prod/main.tf": "update",
        "stacks/prod/versions.tf": "update",
        "stacks/qa/main.tf": "create",
        "stacks/qa/versions.tf": "create",
        "stacks/test/main.tf": "create",
        "stacks/test/versions.tf": "create",
        "packer/api.pkr.hcl": "create",
        "stacks/old/main.tf": "delete",
        "stacks/old/versions.tf": "delete",
        "gone/alone.tf": "delete",
    }
    for change in changes:
        assert change.old == (
            None if change.action == "create" else (old_tree / change.path).read_text()
        )
        assert change.new == (
            None
            if change.action == "delete"
            else ({**NEW_TREE, writer.MANIFEST: writer.manifest_text(list(NEW_TREE))}[change.path])
        )


def test_diff_is_a_unified_diff_with_a_and_b_paths(out):
    writer.write(out, {"keep.tf": "same\n", "edit.tf": "one\ntwo\n", "drop.tf": "bye\n"})
    changes = writer.plan_changes(
        out, {"keep.tf": "same\n", "edit.tf": "one\n2\n", "add.tf": "hi\n"}
    )
    text = writer.diff(changes)
    manifest_old = writer.manifest_text(["drop.tf", "edit.tf", "keep.tf"])
    assert manifest_old.splitlines()[1:] == ["drop.tf", "edit.tf", "keep.tf"]
    assert text == (
        "--- a/.levels-tf/manifest\n"
        "+++ b/.levels-tf/manifest\n"
        "@@ -1,4 +1,4 @@\n"
        f" {manifest_old.splitlines()[0]}\n"
        "-drop.tf\n"
        "+add.tf\n"
        " edit.tf\n"
        " keep.tf\n"
        "--- /dev/null\n"
        "+++ b/add.tf\n"
        "@@ -0,0 +1 @@\n"
        "+hi\n"
        "--- a/edit.tf\n"
        "+++ b/edit.tf\n"
        "@@ -1,2 +1,2 @@\n"
        " one\n"
        "-two\n"
        "+2\n"
        "--- a/drop.tf\n"
        "+++ /dev/null\n"
        "@@ -1 +0,0 @@\n"
        "-bye\n"
    )


def test_diff_marks_a_missing_final_newline(out):
    writer.write(out, {"a.tf": "x = 1\n"})
    (out / "a.tf").write_text("x = 1")
    text = writer.diff(writer.plan_changes(out, {"a.tf": "x = 1\n"}))
    assert text == (
        "--- a/a.tf\n+++ b/a.tf\n@@ -1 +1 @@\n-x = 1\n\\ No newline at end of file\n+x = 1\n"
    )


@pytest.mark.skipif(shutil.which("patch") is None, reason="patch is not on PATH")
def test_the_diff_applies_with_patch(old_tree, tmp_path):
    """The --check diff is a real patch: applied to the tree on disk it gives the rendered tree."""
    (old_tree / "stacks/prod/main.tf").write_text("# prod, no final newline")
    text = writer.diff(writer.plan_changes(old_tree, NEW_TREE))
    result = subprocess.run(
        ["patch", "-p1", "-s", "-E", "--no-backup-if-mismatch"],
        input=text,
        text=True,
        cwd=old_tree,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for rel, content in NEW_TREE.items():
        assert (old_tree / rel).read_text() == content
    for rel in ("stacks/old/main.tf", "stacks/old/versions.tf", "gone/alone.tf"):
        assert not (old_tree / rel).exists()


def test_diff_of_no_changes_is_empty():
    assert writer.diff([]) == ""


def test_plan_changes_refuses_while_a_journal_is_left(old_tree):
    (old_tree / writer.JOURNAL).write_text("[]")
    with pytest.raises(WriteError, match="interrupted render"):
        writer.plan_changes(old_tree, OLD_TREE)


# --- render --check through the CLI -----------------------------------------------------


def test_render_check_on_a_fresh_tree_exits_0_and_writes_nothing(run, reference_copy, tmp_path):
    out = tmp_path / "out"
    assert run("render", "--out", str(out), config=reference_copy).exit_code == 0
    age(tmp_path)
    before = snapshot(tmp_path, times=True)

    result = run("render", "--check", "--out", str(out), config=reference_copy)

    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout
    assert snapshot(tmp_path, times=True) == before


def test_render_check_on_a_stale_tree_exits_1_prints_the_diff_and_writes_nothing(
    run, reference_copy, tmp_path
):
    out = tmp_path / "out"
    assert run("render", "--out", str(out), config=reference_copy).exit_code == 0
    edited = out / "stacks/dev/providers.tf"
    edited.write_text(edited.read_text() + "# a hand edit\n")
    (out / "modules/network/outputs.tf").unlink()
    (out / "stacks/retired").mkdir()
    (out / "stacks/retired/main.tf").write_text("# generated once\n")
    with open(out / writer.MANIFEST, "a") as manifest:
        manifest.write("stacks/retired/main.tf\n")
    age(tmp_path)
    before = snapshot(tmp_path, times=True)

    result = run("render", "--check", "--out", str(out), config=reference_copy)

    assert result.exit_code == 1
    assert "--- a/stacks/dev/providers.tf\n+++ b/stacks/dev/providers.tf\n" in result.stdout
    assert "-# a hand edit\n" in result.stdout
    assert "--- /dev/null\n+++ b/modules/network/outputs.tf\n" in result.stdout
    assert "--- a/stacks/retired/main.tf\n+++ /dev/null\n" in result.stdout
    assert f"run {next_step(reference_copy, 'render')}" in result.stderr
    assert snapshot(tmp_path, times=True) == before

    # render brings it back; then --check is clean again.
    assert run("render", "--out", str(out), config=reference_copy).exit_code == 0
    assert not (out / "stacks/retired").exists()
    assert run("render", "--check", "--out", str(out), config=reference_copy).exit_code == 0


def test_rendering_the_reference_twice_touches_nothing(run, reference_copy, tmp_path):
    out = tmp_path / "out"
    first = run("render", "--out", str(out), config=reference_copy)
    assert first.exit_code == 0
    count = len(writer.read_manifest(out))
    assert count > 10
    assert f"{count + 1} created, 0 updated, 0 removed, 0 unchanged" in first.stdout
    age(tmp_path)
    before = snapshot(tmp_path, times=True)

    second = run("render", "--out", str(out), config=reference_copy)

    assert second.exit_code == 0
    assert f"0 created, 0 updated, 0 removed, {count + 1} unchanged" in second.stdout
    assert snapshot(tmp_path, times=True) == before


# --- atomicity: an error in the middle ---------------------------------------------------


@pytest.mark.parametrize("nth", [1, 2, 3, 7, "last"])
def test_an_oserror_while_applying_leaves_the_previous_tree(old_tree, monkeypatch, nth):
    if nth == "last":
        nth = replace_calls(old_tree, NEW_TREE)
    before = snapshot(old_tree, times=True)

    def fail():
        raise OSError(28, "No space left on device", "injected")

    fake = FailingOs("replace", nth, fail)
    with monkeypatch.context() as patch, pytest.raises(WriteError, match="cannot write"):
        patch.setattr(writer, "os", fake)
        writer.write(old_tree, NEW_TREE)
    assert fake.calls >= nth

    after = snapshot(old_tree, times=True)
    # Files: the same bytes and mtimes; folders: the same set (their mtimes may move).
    assert {k: v for k, v in after.items() if not k.endswith("/")} == {
        k: v for k, v in before.items() if not k.endswith("/")
    }
    assert sorted(after) == sorted(before)
    assert leftovers(old_tree) == []

    # And the next write goes through.
    writer.write(old_tree, NEW_TREE)
    assert snapshot(old_tree) == expected_tree(NEW_TREE, UNMANAGED)


def test_an_oserror_while_staging_leaves_the_previous_tree(old_tree, monkeypatch):
    before = snapshot(old_tree)

    def fail():
        raise OSError(5, "Input/output error", "injected")

    with monkeypatch.context() as patch, pytest.raises(WriteError, match="cannot write"):
        stage = writer._stage
        calls = []

        def failing_stage(target, text):
            calls.append(target)
            if len(calls) == 3:
                fail()
            stage(target, text)

        patch.setattr(writer, "_stage", failing_stage)
        writer.write(old_tree, NEW_TREE)
    assert snapshot(old_tree) == before


def test_an_oserror_while_deleting_leaves_the_previous_tree(old_tree, monkeypatch):
    before = snapshot(old_tree)

    def fail():
        raise OSError(13, "Permission denied", "injected")

    # os.link keeps each existing target as a backup; fail on a late one.
    with (
        monkeypatch.context() as patch,
        pytest.raises(WriteError, match="the previous tree is back"),
    ):
        patch.setattr(writer, "os", FailingOs("link", 5, fail))
        writer.write(old_tree, NEW_TREE)
    assert snapshot(old_tree) == before


# --- atomicity: a hard kill ----------------------------------------------------------

KILLER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from levels_tf import writer

    out, mode, nth, files = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), json.loads(Path(sys.argv[4]).read_text())

    class Os:
        calls = 0
        def __getattr__(self, name):
            real = getattr(os, name)
            if name != mode:
                return real
            def wrapper(*args, **kwargs):
                Os.calls += 1
                if Os.calls == nth:
                    os._exit(9)
                return real(*args, **kwargs)
            return wrapper

    if mode == "stage":
        stage = writer._stage
        def _stage(target, text):
            Os.calls += 1
            if Os.calls == nth:
                os._exit(9)
            stage(target, text)
        writer._stage = _stage
    elif mode in ("commit", "after-commit"):
        journal = writer._journal
        def _journal(out_dir, phase, entries):
            if mode == "commit" and phase == writer.COMMITTED:
                os._exit(9)
            journal(out_dir, phase, entries)
            if mode == "after-commit" and phase == writer.COMMITTED:
                os._exit(9)
        writer._journal = _journal
    else:
        writer.os = Os()
    writer.write(out, files)
    sys.exit(0)
    """
)


def kill_write(out: Path, mode: str, nth: int, files: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "files.json"
    spec.write_text(json.dumps(files))
    result = subprocess.run(
        [sys.executable, "-c", KILLER, str(out), mode, str(nth), str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 9, f"the write was not killed: {result.returncode}\n{result.stderr}"


@pytest.mark.parametrize("nth", [1, 2, 3, 10, "last"])
def test_killed_while_replacing_rolls_back_to_the_previous_tree(old_tree, tmp_path, nth):
    total = replace_calls(old_tree, NEW_TREE)
    assert total > 10
    nth = total if nth == "last" else nth
    before = snapshot(old_tree)

    kill_write(old_tree, "replace", nth, NEW_TREE, tmp_path)

    # The journal exists from the 2nd call on (the 1st call is the journal's own rename).
    assert (old_tree / writer.JOURNAL).exists() == (nth > 1)
    assert writer.recover(old_tree) == (nth > 1)
    assert snapshot(old_tree) == before
    assert leftovers(old_tree) == []
    assert writer.recover(old_tree) is False  # recovering twice is harmless

    writer.write(old_tree, NEW_TREE)
    assert snapshot(old_tree) == expected_tree(NEW_TREE, UNMANAGED)


@pytest.mark.parametrize("nth", [2, 6])
def test_killed_while_replacing_then_rendered_again_gives_the_new_tree(old_tree, tmp_path, nth):
    kill_write(old_tree, "replace", nth, NEW_TREE, tmp_path)
    with pytest.raises(WriteError, match="interrupted render"):
        writer.plan_changes(old_tree, NEW_TREE)
    writer.write(old_tree, NEW_TREE)
    assert snapshot(old_tree) == expected_tree(NEW_TREE, UNMANAGED)
    assert leftovers(old_tree) == []


@pytest.mark.parametrize("nth", [1, 3])
def test_killed_while_backing_up_rolls_back(old_tree, tmp_path, nth):
    before = snapshot(old_tree)
    kill_write(old_tree, "link", nth, NEW_TREE, tmp_path)
    assert writer.recover(old_tree) is True
    assert snapshot(old_tree) == before


def test_killed_just_before_the_commit_rolls_back(old_tree, tmp_path):
    before = snapshot(old_tree)
    kill_write(old_tree, "commit", 0, NEW_TREE, tmp_path)
    # Every file was already replaced; the journal still says "roll back".
    assert (old_tree / writer.JOURNAL).exists()
    assert writer.recover(old_tree) is True
    assert snapshot(old_tree) == before


def test_killed_just_after_the_commit_keeps_the_new_tree(old_tree, tmp_path):
    kill_write(old_tree, "after-commit", 0, NEW_TREE, tmp_path)
    assert json.loads((old_tree / writer.JOURNAL).read_text())["phase"] == writer.COMMITTED
    assert leftovers(old_tree)  # the backups are still there
    assert writer.recover(old_tree) is True
    assert writer.recover(old_tree) is False
    assert snapshot(old_tree) == expected_tree(NEW_TREE, UNMANAGED)


@pytest.mark.parametrize("nth", [2, 5])
def test_killed_while_staging_leaves_the_previous_tree_and_the_next_write_cleans_up(
    old_tree, tmp_path, nth
):
    before = snapshot(old_tree)
    kill_write(old_tree, "stage", nth, NEW_TREE, tmp_path)

    assert json.loads((old_tree / writer.JOURNAL).read_text())["phase"] == writer.STAGING
    staged = [name for name in leftovers(old_tree) if name != writer.JOURNAL]
    assert staged and all(name.endswith(writer.STAGED_SUFFIX) for name in staged)
    # Without the staged files and the journal, the tree on disk is the previous one.
    on_disk = {
        k: v
        for k, v in snapshot(old_tree).items()
        if not k.endswith(writer.STAGED_SUFFIX) and k != writer.JOURNAL
    }
    assert {k: v for k, v in on_disk.items() if not k.endswith("/")} == {
        k: v for k, v in before.items() if not k.endswith("/")
    }

    writer.write(old_tree, NEW_TREE)
    assert snapshot(old_tree) == expected_tree(NEW_TREE, UNMANAGED)
    assert leftovers(old_tree) == []


def test_killed_while_staging_then_recovered_is_exactly_the_previous_tree(old_tree, tmp_path):
    before = snapshot(old_tree)
    kill_write(old_tree, "stage", 5, NEW_TREE, tmp_path)
    assert writer.recover(old_tree) is True
    # Folders created only for staged files are gone too.
    assert snapshot(old_tree) == before


def test_killed_during_the_first_write_leaves_nothing(out, tmp_path):
    out.mkdir()
    put(out, UNMANAGED)
    before = snapshot(out)
    kill_write(out, "replace", 4, OLD_TREE, tmp_path)
    assert writer.recover(out) is True
    assert snapshot(out) == before


def test_a_render_after_a_kill_recovers_through_the_cli(run, reference_copy, tmp_path):
    out = tmp_path / "out"
    assert run("render", "--out", str(out), config=reference_copy).exit_code == 0
    rendered = snapshot(out)
    files = {
        rel: text + "# changed\n"
        for rel, text in ((p, (out / p).read_text()) for p in writer.read_manifest(out))
    }
    kill_write(out, "replace", 5, files, tmp_path)

    check = run("render", "--check", "--out", str(out), config=reference_copy)
    assert check.exit_code == 1
    assert "interrupted render" in check.output

    assert run("render", "--out", str(out), config=reference_copy).exit_code == 0
    assert snapshot(out) == rendered


def test_an_unreadable_journal_is_reported(old_tree):
    (old_tree / writer.JOURNAL).write_text("{not json")
    with pytest.raises(WriteError, match="unreadable journal"):
        writer.recover(old_tree)
    with pytest.raises(WriteError, match="unreadable journal"):
        writer.write(old_tree, OLD_TREE)


# --- paths outside the output folder ------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["../escape.tf", "a/../../escape.tf", "/tmp/levels-tf-abs.tf", "", "a/../b.tf"]
)
def test_paths_escaping_the_output_folder_are_refused(old_tree, bad):
    before = snapshot(old_tree.parent)
    with pytest.raises(WriteError, match="refusing a path outside the output folder"):
        writer.write(old_tree, {**OLD_TREE, bad: "evil\n"})
    with pytest.raises(WriteError, match="outside"):
        writer.plan_changes(old_tree, {bad: "evil\n"})
    assert snapshot(old_tree.parent) == before
    assert not Path("/tmp/levels-tf-abs.tf").exists()


def test_a_manifest_entry_outside_the_output_folder_is_never_deleted(old_tree):
    victim = old_tree.parent / "victim.tf"
    victim.write_text("precious\n")
    with open(old_tree / writer.MANIFEST, "a") as manifest:
        manifest.write("../victim.tf\n")
    with pytest.raises(WriteError, match="outside"):
        writer.write(old_tree, OLD_TREE)
    assert victim.read_text() == "precious\n"


# --- create_new (init) ---------------------------------------------------------------


def test_create_new_creates_each_file(tmp_path):
    folder = tmp_path / "new" / "project"
    created = writer.create_new(folder, {"infra.yaml": "a: 1\n", "infra.schema.json": "{}\n"})
    assert created == [folder / "infra.yaml", folder / "infra.schema.json"]
    assert (folder / "infra.yaml").read_text() == "a: 1\n"
    assert (folder / "infra.schema.json").read_text() == "{}\n"


def test_create_new_refuses_to_overwrite_and_writes_nothing(tmp_path):
    (tmp_path / "infra.schema.json").write_text("mine\n")
    age(tmp_path)
    before = snapshot(tmp_path, times=True)
    with pytest.raises(WriteError, match=r"infra\.schema\.json: already exists"):
        writer.create_new(tmp_path, {"infra.yaml": "a: 1\n", "infra.schema.json": "{}\n"})
    assert snapshot(tmp_path, times=True) == before


def test_create_new_counts_a_dangling_symlink_as_existing(tmp_path):
    (tmp_path / "infra.yaml").symlink_to(tmp_path / "nowhere")
    with pytest.raises(WriteError, match="already exists"):
        writer.create_new(tmp_path, {"infra.yaml": "a: 1\n"})
    assert not (tmp_path / "nowhere").exists()


def test_create_new_refuses_a_file_as_the_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match="is not a folder"):
        writer.create_new(tmp_path / "file", {"infra.yaml": "a: 1\n"})
    assert (tmp_path / "file").read_text() == "x"


def test_create_new_removes_what_it_created_when_a_later_file_fails(tmp_path, monkeypatch):
    calls = []
    real_open = open

    def failing_open(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(path))
        return real_open(path, *args, **kwargs)

    folder = tmp_path / "project"
    with monkeypatch.context() as patch, pytest.raises(WriteError, match="cannot write"):
        patch.setattr(writer, "open", failing_open, raising=False)
        writer.create_new(folder, {"one.yaml": "1\n", "two.yaml": "2\n"})
    assert len(calls) == 2
    assert os.listdir(folder) == []


def test_a_retired_marked_file_is_removed_when_ours_and_kept_when_not(tmp_path):
    """Files outside the tree (the CI workflows): one levels-tf no longer
    generates goes when it carries the header, stays when it does not."""
    header = "# Generated by levels-tf"
    (tmp_path / "old.yml").write_text(f"{header}\nold\n")
    (tmp_path / "mine.yml").write_text("name: mine\n")
    files = {"new.yml": f"{header}\nnew\n"}
    retired = ["old.yml", "mine.yml", "gone.yml"]
    changes = writer.plan_marked(tmp_path, files, header, retired)
    assert [(c.path, c.action) for c in changes] == [("new.yml", "create"), ("old.yml", "delete")]
    assert (tmp_path / "old.yml").exists()  # planning reads only
    writer.write_marked(tmp_path, files, header, retired)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yml", "new.yml"]
    assert writer.plan_marked(tmp_path, files, header, retired) == []
