"""The provisioning scripts of images: each is a file inside the folder of infra.yaml.

Checked with the rest of infra.yaml (validation.py), before Packer ever sees
a path: a missing script would otherwise fail a bake minutes in.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path, PurePosixPath

from .errors import Problem
from .loader import Document
from .model import Infra


def check_scripts(config_dir: Path, infra: Infra, document: Document) -> list[Problem]:
    """Every image script is a file inside `config_dir`, the folder of infra.yaml.

    One Problem (file:line:col of the script in `document`) for each path that
    is empty, uses '\\' or a character outside the POSIX portable file name set
    ("Portable Filename Character Set", https://pubs.opengroup.org/onlinepubs/9699919799/basedefs/V1_chap03.html),
    is absolute, leads outside the folder, is missing,
    unreadable or not a regular file; [] when every script is fine."""
    problems: list[Problem] = []
    root = Path(config_dir).resolve()
    for name, image in infra.images.items():
        for i, script in enumerate(image.scripts):
            path = ("images", name, "scripts", i)
            message = _script_problem(root, script)
            if message:
                problems.append(document.problem(path, message))
    return problems


def _script_problem(root: Path, script: str) -> str | None:
    if not script.strip():
        return "empty script path"
    if "\\" in script:
        return f"{script!r}: write paths with '/'"
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", script, re.ASCII):
        return (
            f"{script!r}: use ASCII letters, digits and . _ - / (the POSIX portable file name "
            "characters) in script paths"
        )
    if PurePosixPath(script).is_absolute():
        return f"{script!r}: give the path relative to the folder of infra.yaml"
    target = (root / script).resolve()
    if target != root and root not in target.parents:
        return f"{script!r} is outside the folder of infra.yaml"
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return f"{script!r}: no such file (relative to the folder of infra.yaml)"
    except OSError as exc:
        return f"{script!r}: cannot read: {exc.strerror}"
    if not stat.S_ISREG(mode):
        return f"{script!r} is not a file"
    return None
