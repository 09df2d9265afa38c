"""moto's server, as `python -m moto.server` runs it, but answering each
request on a connection of its own (HTTP/1.0, no keep-alive).

Under the concurrent requests of several Terraform runs, moto's threaded
server on kept-alive connections now and then answered a create that the
client then sent again, and the second answer was "already exists"; one
connection per request leaves nothing to resend. Loopback only: the
rehearsal passes 127.0.0.1.

It also answers the one read moto lacks that a destroy needs:
ListRecoveryPointsByBackupVault, which the aws provider calls before it
deletes a vault with force_destroy. moto runs no backup jobs, so a vault on
it holds no recovery points, and an empty list is the true answer.

    python -m levels_tf.moto_launcher HOST PORT
"""

from __future__ import annotations

import json
import re
import sys

RECOVERY_POINTS = re.compile(r"^/backup-vaults/[^/]+/recovery-points/?$")


def with_recovery_points(app):
    """`app`, answering GET /backup-vaults/NAME/recovery-points/ with no recovery points."""

    def wrapped(environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET" and RECOVERY_POINTS.match(
            environ.get("PATH_INFO", "")
        ):
            body = json.dumps({"RecoveryPoints": []}).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return app(environ, start_response)

    return wrapped


def main(argv: list[str]) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, run_simple

    host, port = argv[0], int(argv[1])

    class OneRequestPerConnection(WSGIRequestHandler):
        protocol_version = "HTTP/1.0"

    app = with_recovery_points(DomainDispatcherApplication(create_backend_app))
    run_simple(host, port, app, threaded=True, request_handler=OneRequestPerConnection)


if __name__ == "__main__":
    main(sys.argv[1:])
