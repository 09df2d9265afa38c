from __future__ import annotations

import hashlib
from pathlib import Path

from .. import console, lambda_package, writer
from ..errors import UsageError
from ..names import function_package
from ..validation import load_config


def package(config_path: Path, out: Path | None, names: tuple[str, ...]) -> int:
    """Build each function's deployment zip (deterministic) under build/functions/."""
    config = load_config(config_path)
    out = out if out is not None else config_path.parent
    functions = config.infra.functions
    unknown = [name for name in names if name not in functions]
    if unknown:
        raise UsageError(
            f"no function {unknown[0]!r} in {config_path}; defined: {', '.join(functions) or 'none'}"
        )
    for name in names or tuple(functions):
        function = functions[name]
        data = lambda_package.build_function(function.code, function.runtime)
        target = out / function_package(name)
        changed = writer.write_artifact(target, data)
        digest = hashlib.sha256(data).hexdigest()[:12]
        console.out(
            f"{target}: {len(data)} bytes, sha256 {digest}{'' if changed else ' (unchanged)'}"
        )
    return 0
