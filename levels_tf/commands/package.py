from __future__ import annotations

import hashlib
from pathlib import Path

from .. import console, lambda_package, writer
from ..errors import UsageError
from ..names import function_package
from ..validation import load_config


def package(
    config_path: Path, out: Path | None, names: tuple[str, ...], as_json: bool = False
) -> int:
    """Build each function's deployment zip (deterministic) under build/functions/.

    With `as_json`, ends with `{"functions": [{"name": str, "path": str,
    "bytes": int, "sha256": str (64 hex digits), "changed": bool}]}`."""
    config = load_config(config_path)
    out = out if out is not None else config_path.parent
    functions = config.infra.functions
    unknown = [name for name in names if name not in functions]
    if unknown:
        raise UsageError(
            f"no function {unknown[0]!r} in {config_path}; defined: {', '.join(functions) or 'none'}"
        )
    built = []
    for name in names or tuple(functions):
        function = functions[name]
        data = lambda_package.build_function(function.code, function.runtime)
        target = out / function_package(name)
        changed = writer.write_artifact(target, data)
        digest = hashlib.sha256(data).hexdigest()
        built.append(
            {
                "name": name,
                "path": str(target),
                "bytes": len(data),
                "sha256": digest,
                "changed": changed,
            }
        )
        console.out(
            f"{target}: {len(data)} bytes, sha256 {digest[:12]}{'' if changed else ' (unchanged)'}"
        )
    if as_json:
        console.report_json({"functions": built})
    return 0
