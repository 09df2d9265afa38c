"""Where levels-tf keeps what it can always rebuild: its folder in the user's cache."""

from __future__ import annotations

import os
from pathlib import Path

NAME = "levels-tf"


def cache_dir() -> Path:
    """levels-tf's cache folder (not created): `$XDG_CACHE_HOME/levels-tf`,
    else `~/.cache/levels-tf`.

    $XDG_CACHE_HOME counts only when it is an absolute path: the XDG base
    directory specification says to ignore a relative one, which would name a
    different folder in every working directory.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / NAME
