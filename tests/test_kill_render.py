"""`levels-tf render` killed at random moments never leaves a broken tree.

Two configurations that differ in most generated files take turns: each
render is sent SIGKILL after a random delay. After each kill the writer's
recovery (run on a copy of the folder, so the next render meets the folder
exactly as the kill left it and recovers it itself, or is killed while
doing so) must give back one whole tree, the previous one or, when the kill
came after the commit, the new one; every fifth render runs to its end and
must give exactly the tree expected. 200 kills go to renders started from a
fork server that has the CLI loaded (so a render costs its own work, not
Python's start-up), 20 to real `python -m levels_tf render` processes.

Half the kills come at any moment of a render. The other half aim at the
write itself: they wait until the render's journal appears, then come within
the time a write takes, so however long rendering takes on a loaded machine,
many kills land while files are being replaced, and some after the commit.

LEVELS_TF_KILL_SEED fixes the random delays (the seed used is printed).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
import yaml

from levels_tf import writer
from levels_tf.cli import cli

from .conftest import REFERENCE, copy_reference
from .render_outcome import snapshot

pytestmark = pytest.mark.slow

FORKED_KILLS = 200
PROCESS_KILLS = 20
COMPLETE_EVERY = 5  # every 5th render runs to its end


class Render(Protocol):
    """A render under way."""

    def running(self) -> bool: ...
    def kill(self) -> None: ...  # SIGKILL
    def wait(self) -> int | None: ...  # its exit code, -9 when killed


Start = Callable[[str], Render]  # starts a render of infra.yaml


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _wait_for_new(path: Path, before: tuple[int, int] | None, running: Callable[[], bool]) -> None:
    """Until a file other than `before` (an _identity) is at `path`, or the
    process has ended. A killed render's journal may still be there when the
    next render starts; its own journal is written anew (renamed into place)."""
    while _identity(path) in (None, before) and running():
        time.sleep(0.0005)


def _render_in_child(config: str, out: str) -> None:
    """A render as the CLI runs it, in a process of the fork server; its exit
    code is the CLI's."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    cli.main(["-c", config, "render", "--out", out], prog_name="levels-tf")


@dataclass
class Configs:
    paths: dict[str, Path]  # "a" | "b" -> infra.yaml
    trees: dict[str, dict[str, bytes]]  # "a" | "b" -> the whole folder after a render


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> Configs:
    """The reference (a) and a variant (b): another project name, tags and
    nonprod environments, so most files are created, changed or removed."""
    paths = {"a": copy_reference(tmp_path_factory.mktemp("a"))}
    variant = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    variant["project"] = "other"
    variant["tags"] = {"Owner": "someone", "Extra": "tag"}
    # other nonprod environments: whole stacks created and removed
    variant["vpc_groups"]["nonprod"]["environments"] = ["alpha", "beta"]
    variant["environments"]["alpha"] = variant["environments"].pop("dev")
    paths["b"] = copy_reference(tmp_path_factory.mktemp("b"))
    paths["b"].write_text(yaml.safe_dump(variant, sort_keys=False), encoding="utf-8")
    trees = {}
    for name, config in paths.items():
        out = tmp_path_factory.mktemp(f"tree-{name}")
        result = subprocess.run(
            [sys.executable, "-m", "levels_tf", "-c", str(config), "render", "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        trees[name] = snapshot(out)
    changed = [p for p in trees["a"].keys() | trees["b"] if trees["a"].get(p) != trees["b"].get(p)]
    assert len(changed) > 40, "the two configurations must differ in many files"
    return Configs(paths, trees)


@pytest.fixture(scope="module")
def seed() -> int:
    value = int(os.environ.get("LEVELS_TF_KILL_SEED") or random.SystemRandom().randrange(2**32))
    print(f"LEVELS_TF_KILL_SEED={value}")
    return value


class KillLoop:
    """Renders `a` and `b` in turn into one folder, killing most of them."""

    def __init__(self, configs: Configs, out: Path, scratch: Path, rng: random.Random):
        self.configs, self.out, self.scratch, self.rng = configs, out, scratch, rng
        self.counts: Counter = Counter()
        self.current = "a"  # the whole tree the folder holds (after recovery)
        shutil.copytree(self._fresh("a"), out)

    def _fresh(self, name: str) -> Path:
        folder = self.scratch / f"fresh-{name}"
        if not folder.exists():
            folder.mkdir(parents=True)
            for path, data in self.configs.trees[name].items():
                (folder / path).parent.mkdir(parents=True, exist_ok=True)
                (folder / path).write_bytes(data)
        return folder

    def run(self, start: Start, kills: int, typical: float, write: float) -> None:
        """Render until `kills` renders were killed: every other one after a
        random delay of up to 1.1 times `typical` (seconds, an unkilled
        render's time), the others up to 1.1 times `write` (seconds from the
        journal's appearance to the end of an unkilled render) after the
        journal appeared."""
        renders = 0
        while self.counts["killed"] < kills:
            renders += 1
            target = "b" if self.current == "a" else "a"
            journal = _identity(self.out / writer.JOURNAL)
            render = start(str(self.configs.paths[target]))
            if renders % COMPLETE_EVERY == 0:
                assert render.wait() == 0
                assert snapshot(self.out) == self.configs.trees[target]
                self.current = target
                self.counts["completed"] += 1
                continue
            if renders % 2:
                code = self._kill(render, self.rng.uniform(0, 1.1 * typical))
            else:
                _wait_for_new(self.out / writer.JOURNAL, journal, render.running)
                code = self._kill(render, self.rng.uniform(0, 1.1 * write))
                self.counts["aimed at the write"] += 1
            if code != -signal.SIGKILL:
                assert code == 0  # it finished before the signal
                assert snapshot(self.out) == self.configs.trees[target]
                self.current = target
                self.counts["finished before the kill"] += 1
                continue
            self.counts["killed"] += 1
            self.counts["left a journal"] += (self.out / writer.JOURNAL).exists()
            self.current = self._recovered_copy(previous=self.current, new=target)

    @staticmethod
    def _kill(render: Render, delay: float) -> int | None:
        time.sleep(delay)
        render.kill()
        return render.wait()

    def _recovered_copy(self, previous: str, new: str) -> str:
        """Which whole tree the writer's recovery makes of the folder: on a copy."""
        copy = self.scratch / "recovered"
        shutil.rmtree(copy, ignore_errors=True)
        # Hard links: recovery only renames and unlinks, never writes into a file.
        shutil.copytree(self.out, copy, symlinks=True, copy_function=os.link)
        writer.recover(copy)
        tree = snapshot(copy)
        if tree == self.configs.trees[previous]:
            self.counts["rolled back"] += 1
            return previous
        assert tree == self.configs.trees[new], (
            "recovery gave neither the previous nor the new tree"
        )
        self.counts["rolled forward"] += 1
        return new


def _timings(start: Start, configs: Configs, out: Path, order: str) -> tuple[float, float]:
    """The fastest render's time and the longest write's time (from the
    journal's appearance to the render's end), in seconds, over unkilled
    renders of the configurations named in `order`, in that order."""
    renders, writes = [], []
    for name in order:
        journal = _identity(out / writer.JOURNAL)
        began = time.monotonic()
        render = start(str(configs.paths[name]))
        _wait_for_new(out / writer.JOURNAL, journal, render.running)
        journal_seen = time.monotonic()
        assert render.wait() == 0
        ended = time.monotonic()
        renders.append(ended - began)
        writes.append(ended - journal_seen)
    return min(renders), max(writes)


def test_renders_killed_at_random_moments_leave_a_whole_tree(
    configs, seed, tmp_path, record_property
):
    rng = random.Random(seed)
    record_property("count:kill seed", seed)
    context = multiprocessing.get_context("forkserver")
    # The children import this module for _render_in_child: it, and the CLI
    # it runs, are loaded once in the fork server.
    context.set_forkserver_preload([__name__, "levels_tf.commands.render", "levels_tf.render"])
    out = tmp_path / "out"

    class Forked:
        def __init__(self, config: str):
            self.process = context.Process(target=_render_in_child, args=(config, str(out)))
            self.process.start()

        def running(self) -> bool:
            return self.process.is_alive()

        def kill(self) -> None:
            self.process.kill()

        def wait(self) -> int | None:
            self.process.join(60)
            return self.process.exitcode

    loop = KillLoop(configs, out, tmp_path / "scratch", rng)
    typical, write = _timings(Forked, configs, out, "baba")
    loop.current = "a"
    loop.run(Forked, FORKED_KILLS, typical, write)
    forked_counts = loop.counts
    for name, n in sorted(forked_counts.items()):
        record_property(f"count:kill forked {name}", n)

    class Real:
        def __init__(self, config: str):
            argv = [sys.executable, "-m", "levels_tf", "-c", config, "render", "--out", str(out)]
            self.process = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

        def running(self) -> bool:
            return self.process.poll() is None

        def kill(self) -> None:
            self.process.send_signal(signal.SIGKILL)

        def wait(self) -> int | None:
            return self.process.wait(60)

    other = "b" if loop.current == "a" else "a"
    typical, write = _timings(Real, configs, out, other + loop.current)
    loop.counts = Counter()
    loop.run(Real, PROCESS_KILLS, typical, write)
    for name, n in sorted(loop.counts.items()):
        record_property(f"count:kill process {name}", n)

    # The kills aimed at the write mostly landed in it, whatever the load.
    assert forked_counts["left a journal"] >= forked_counts["aimed at the write"] // 2, (
        forked_counts
    )
    assert forked_counts["rolled back"] and forked_counts["rolled forward"], forked_counts
