"""Where the bundled templates and the reference configuration live.

Installed, they are the packages levels_tf.templates and levels_tf.reference
(mapped from the top-level templates/ folder and infra.yaml in setup.cfg); in a
checkout that is not installed, the same files beside the package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _package_dir(package: str, fallback: Path) -> Path:
    spec = importlib.util.find_spec(package) if importlib.util.find_spec("levels_tf") else None
    if spec and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return fallback


def templates_dir() -> Path:
    return _package_dir("levels_tf.templates", _CHECKOUT / "templates")


def reference_dir() -> Path:
    return _package_dir("levels_tf.reference", _CHECKOUT)


def starter_config() -> Path:
    return reference_dir() / "infra.yaml"


def schema_file() -> Path:
    return reference_dir() / "infra.schema.json"


def starter_scripts() -> list[Path]:
    """The reference application's provisioning scripts that infra.yaml names."""
    return sorted((reference_dir() / "scripts").glob("*.sh"))
