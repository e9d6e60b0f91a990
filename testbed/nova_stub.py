"""The image and network endpoint of the Nova testbed: a minimal stand-in, not a service.

Nova asks an image service about the image of every server it builds and a network service
about ports, even with the fake driver and ``networks: none``. Ephyra itself never calls
either. This stand-in answers just enough, on one loopback port:

- Glance v2: any image id is an active public raw image; its schema; an empty image list.
- Neutron v2.0: every collection is empty (``GET /v2.0/ports`` -> ``{"ports": []}``).
- Keystone v3: a version document only, because the ``openstack`` CLI insists on one.

Everything else is 404. ``python -m testbed.nova_stub PORT`` serves it.
"""

from __future__ import annotations

import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"
STARTED = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
IMAGE = re.compile(r"^/v2/images/([^/]+)$")
NETWORK_COLLECTION = re.compile(r"^/v2\.0/([a-z0-9_-]+?)(\.json)?$")


def image(image_id: str) -> dict[str, Any]:
    """Glance's view of image ``image_id``: any id exists."""
    return {
        "id": image_id,
        "name": f"image-{image_id[:8]}",
        "status": "active",
        "visibility": "public",
        "protected": False,
        "os_hidden": False,
        "owner": "admin",
        "min_ram": 0,
        "min_disk": 0,
        "size": 1024,
        "virtual_size": None,
        "disk_format": "raw",
        "container_format": "bare",
        "checksum": None,
        "os_hash_algo": None,
        "os_hash_value": None,
        "created_at": STARTED,
        "updated_at": STARTED,
        "tags": [],
        "self": f"/v2/images/{image_id}",
        "file": f"/v2/images/{image_id}/file",
        "schema": "/v2/schemas/image",
    }


def image_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {key: {} for key in image("x")}
    properties["id"] = {"type": "string"}
    properties["name"] = {"type": ["null", "string"]}
    return {
        "name": "image",
        "additionalProperties": {"type": "string"},
        "links": [],
        "properties": properties,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ephyra-testbed-stub"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.command} {self.path}\n")

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _base(self) -> str:
        address = self.server.server_address
        port = address[1] if isinstance(address, tuple) else 0
        return f"http://{LOOPBACK}:{port}"

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path in ("", "/"):
            link = {"rel": "self", "href": f"{self._base()}/v2/"}
            self._send(200, {"versions": [{"id": "v2.17", "status": "CURRENT", "links": [link]}]})
        elif path.rstrip("/") == "/v3":
            self._send(200, {"version": self._identity_version()})
        elif path == "/v2/schemas/image":
            self._send(200, image_schema())
        elif path == "/v2/images":
            self._send(200, {"images": [], "schema": "/v2/schemas/images"})
        elif match := IMAGE.match(path):
            self._send(200, image(match.group(1)))
        elif match := NETWORK_COLLECTION.match(path):
            self._send(200, {match.group(1).replace("-", "_"): []})
        else:
            self._not_found()

    def _identity_version(self) -> dict[str, Any]:
        return {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
            ],
            "links": [{"rel": "self", "href": f"{self._base()}/v3/"}],
        }

    def _not_found(self) -> None:
        error = {"type": "NotFound", "message": "not served by the testbed stand-in", "detail": ""}
        self._send(404, {"NeutronError": error})

    def _drain_and_refuse(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._not_found()

    do_POST = do_PUT = do_DELETE = do_PATCH = _drain_and_refuse


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} PORT", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer((LOOPBACK, int(argv[1])), Handler)
    server.daemon_threads = True
    print(f"image/network stand-in on {LOOPBACK}:{argv[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
