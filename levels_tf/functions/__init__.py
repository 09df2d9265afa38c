"""The sources of the platform's Lambda functions, and what each needs to run.

Each function lives in a folder of its own whose contents become the root of
its deployment zip (so `handler.py` there is the Lambda handler
`handler.handler`). Those folders are deliberately not Python packages of
levels-tf: a function runs alone in the Lambda runtime, with only the
packages named here beside it, and must never import levels_tf.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class FunctionSource:
    """One function's code folder, handler and pinned third-party packages."""

    name: str
    source_dir: Path
    handler: str
    requirements: tuple[str, ...]


# Pillow 12.2.0 is the newest release with manylinux2014_x86_64 wheels for
# CPython 3.11, 3.12 and 3.13 (12.3.0 and 13.0.0 ship manylinux_2_28 only).
FUNCTIONS: dict[str, FunctionSource] = {
    "image-variants": FunctionSource(
        name="image-variants",
        source_dir=HERE / "image_variants",
        handler="handler.handler",
        requirements=("Pillow==12.2.0",),
    ),
}
