"""moto's server, as `python -m moto.server` runs it, but answering each
request on a connection of its own (HTTP/1.0, no keep-alive).

Under the concurrent requests of several Terraform runs, moto's threaded
server on kept-alive connections now and then answered a create that the
client then sent again, and the second answer was "already exists"; one
connection per request leaves nothing to resend. Loopback only: the
rehearsal passes 127.0.0.1.

    python -m levels_tf.moto_launcher HOST PORT
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, run_simple

    host, port = argv[0], int(argv[1])

    class OneRequestPerConnection(WSGIRequestHandler):
        protocol_version = "HTTP/1.0"

    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=True, request_handler=OneRequestPerConnection)


if __name__ == "__main__":
    main(sys.argv[1:])
