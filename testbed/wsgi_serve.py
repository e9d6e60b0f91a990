"""Serve a WSGI application on loopback with a small threaded server (standard library).

``python -m testbed.wsgi_serve MODULE:ATTRIBUTE PORT [ARGS...]`` serves, for example,
``nova.wsgi.osapi_compute:application`` or ``placement.wsgi.api:application``. They read
``sys.argv`` as their own command line when imported, so it is replaced by ``ARGS`` first
(e.g. ``--log-file FILE`` for Nova); the configuration files come from the environment
(``OS_NOVA_CONFIG_DIR``, ``OS_NOVA_CONFIG_FILES``, ``OS_PLACEMENT_CONFIG_DIR``).
"""

from __future__ import annotations

import importlib
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

LOOPBACK = "127.0.0.1"


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64


class QuietHandler(WSGIRequestHandler):
    """No access log: the services log their requests themselves."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(f"usage: {argv[0]} MODULE:ATTRIBUTE PORT [ARGS...]", file=sys.stderr)
        return 2
    target, port = argv[1], int(argv[2])
    module, _sep, attribute = target.partition(":")
    sys.argv = [argv[0], *argv[3:]]
    app = getattr(importlib.import_module(module), attribute)
    server = make_server(
        LOOPBACK, port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    print(f"serving {target} on {LOOPBACK}:{port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
