"""The one check of an endpoint URL: `--aws-endpoint`, a stored render option,
or the emulator a rehearsal is pointed at with `--endpoint`."""

from __future__ import annotations

from urllib.parse import urlparse

from .errors import UsageError

# The hosts a rehearsal may talk to: this machine's loopback, by address or name.
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def check_endpoint(url: str, *, option: str = "--aws-endpoint", loopback: bool = False) -> str:
    """`url` without its trailing slash when it is an http:// or https:// URL
    with a host (and a port, if any, that is a number); with `loopback`, the
    host must also be 127.0.0.1, ::1 or localhost.

    Otherwise UsageError, naming `option` and the URL as given. A URL Python
    cannot parse (`http://[::1`, a port `:x`) is refused the same way, not
    left to fail later.
    """
    wanted = "an http(s) URL" + (
        f" on this machine's loopback ({', '.join(LOOPBACK_HOSTS)})" if loopback else " with a host"
    )
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise UsageError(f"{option} {url!r} is not {wanted}") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"{option} {url!r} is not {wanted}")
    if loopback and parsed.hostname not in LOOPBACK_HOSTS:
        raise UsageError(f"{option} {url!r} is not {wanted}: a rehearsal talks to no other machine")
    return url.rstrip("/")
