"""The shared Terraform plugin cache: where it is, and who may use it when.

Every stack links its providers from one cache folder (a registry copy of
the aws provider is ~700 MB), so the folder is shared by every Terraform
that levels-tf runs, in this process and in others. Terraform itself does
not coordinate them: `terraform init` in a folder whose lock file does not
yet vouch for the cached package installs that package again, extracting
the registry's zip over the cached files in place, and a plan or apply
reading the provider at that moment fails with "the cached package ... does
not match any of the checksums". So an init holds the cache alone
(an exclusive lock) and every other Terraform run in a stack shares it.

The lock is an advisory `flock` on a file beside the cache folder: it is
released when its holder exits, even on a crash, and it is per open file,
so threads of one process exclude each other as two processes do.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not coordinated
    fcntl = None  # type: ignore[assignment]

from .cache_dir import cache_dir

FOLDER = "terraform-plugins"


def folder() -> Path:
    """The cache folder: `$XDG_CACHE_HOME/levels-tf/terraform-plugins` (default `~/.cache`)."""
    return cache_dir() / FOLDER


def lock_path(cache: Path) -> Path:
    """The lock file of `cache`: beside it, so Terraform never scans it as a provider."""
    return cache.with_name(cache.name + ".lock")


@contextlib.contextmanager
def held(
    cache: Path, *, exclusive: bool, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the cache's lock for the block: alone (`exclusive`, for init) or shared.

    Waits as long as another holder needs (a plan may take minutes);
    `on_wait` is told once, when the lock is not free at first.
    """
    if fcntl is None:
        yield
        return
    path = lock_path(cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                use = "install a provider into" if exclusive else "use"
                on_wait(
                    f"waiting to {use} the plugin cache {cache}: another Terraform run holds it"
                )
            fcntl.flock(handle, mode)
        yield
    finally:
        os.close(handle)  # closing the only descriptor releases the lock
