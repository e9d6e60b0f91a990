"""A simulator of Hadoop's documented admin interfaces, for tests and demonstrations.

No Hadoop can run where Ephyra is tested, so the ``hadoop`` workload is tested against this
simulator of the documented interfaces it uses, and nothing else:

* NameNode JMX servlet ``GET /jmx?qry=BEAN`` with the beans
  ``Hadoop:service=NameNode,name=NameNodeInfo`` (``LiveNodes``, ``DeadNodes``, ``DecomNodes``,
  ``EnteringMaintenanceNodes``: JSON strings keyed ``"host:xferPort"``, ``adminState`` as
  ``DatanodeInfo.AdminStates`` displays it) and ``Hadoop:service=NameNode,name=FSNamesystem``
  (``UnderReplicatedBlocks``, ``MissingBlocks``, ``NumLiveDataNodes``, ``NumDeadDataNodes``...);
* ResourceManager REST ``GET /ws/v1/cluster/nodes`` and ``GET /ws/v1/cluster/metrics``.

Both services answer on one address. State lives in memory. ``POST /_sim/refresh?service=hdfs``
stands for ``hdfs dfsadmin -refreshNodes`` (re-read the combined JSON hosts file) and
``?service=yarn[&graceful=SECONDS]`` for ``yarn rmadmin -refreshNodes [-g SECONDS]`` (re-read
the plain-text exclude file). Hosts then pass through the real intermediate states
("Entering Maintenance", "Decommission In Progress", ``DECOMMISSIONING``) for ``delay``
seconds. Test knobs: ``POST /_sim/state`` (JSON, see :meth:`SimCluster.apply`) and
``GET /_sim/state``. It is a simulator: no blocks move, nothing is replicated.

    python -m testbed.hadoop_sim serve --hosts h1,h2 --hosts-file F --exclude-file F
    python -m testbed.hadoop_sim refresh --url URL --service hdfs
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shlex
import signal
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from testbed.hadoop_sim_cluster import SimCluster, SimError

#: The repository, which holds the ``testbed`` package.
REPO = Path(__file__).resolve().parents[1]


def argv(*args: str) -> list[str]:
    """The command line of this simulator (``serve``, ``refresh``...)."""
    return [sys.executable, "-m", "testbed.hadoop_sim", *args]


def environment() -> dict[str, str]:
    """The environment it runs in from anywhere: ``testbed`` importable."""
    return {**os.environ, "PYTHONPATH": str(REPO)}


def refresh_command(url: str) -> str:
    """``refresh --url URL`` as a shell command, for the workload's ``*_refresh_command``
    options (``--service`` and ``-g`` follow)."""
    command = " ".join(shlex.quote(arg) for arg in argv("refresh", "--url", url))
    return f"PYTHONPATH={shlex.quote(str(REPO))} {command}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], cluster: SimCluster) -> None:
        self.cluster = cluster
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _cluster(self) -> SimCluster:
        assert isinstance(self.server, _Server)
        return self.server.cluster

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        cluster = self._cluster()
        if url.path == "/jmx":
            pattern = query.get("qry", ["*:*"])[0]
            beans = [b for b in cluster.beans() if fnmatch.fnmatchcase(b["name"], pattern)]
            self._json(200, {"beans": beans})
        elif url.path == "/ws/v1/cluster/nodes":
            self._json(200, cluster.rm_nodes())
        elif url.path == "/ws/v1/cluster/metrics":
            self._json(200, cluster.rm_metrics())
        elif url.path == "/_sim/state":
            self._json(200, cluster.snapshot())
        else:
            self._json(404, {"error": f"no resource {url.path}"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        cluster = self._cluster()
        try:
            if url.path == "/_sim/refresh":
                service = query.get("service", ["all"])[0]
                if service in ("hdfs", "all"):
                    cluster.refresh_hdfs()
                if service in ("yarn", "all"):
                    cluster.refresh_yarn(graceful="graceful" in query)
                self._json(200, {"refreshed": service})
            elif url.path == "/_sim/state":
                cluster.apply(json.loads(raw or b"{}"))
                self._json(200, cluster.snapshot())
            else:
                self._json(404, {"error": f"no resource {url.path}"})
        except SimError as exc:
            self._json(500, {"error": str(exc)})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._json(400, {"error": f"bad request: {type(exc).__name__}: {exc}"})


class HadoopSimulator:
    """The simulated NameNode and ResourceManager, on one loopback port."""

    def __init__(
        self,
        hosts: list[str],
        hosts_file: str | Path,
        exclude_file: str | Path,
        delay: float = 0.2,
        bind: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.cluster = SimCluster(list(hosts), Path(hosts_file), Path(exclude_file), delay)
        self._bind = bind
        self._server = _Server((bind, port), self.cluster)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self._bind}:{self._server.server_port}"

    def start(self) -> str:
        """Serve in a background thread; the base URL of both services."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> HadoopSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(args: argparse.Namespace) -> int:
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    sim = HadoopSimulator(
        hosts, args.hosts_file, args.exclude_file, args.delay, args.bind, args.port
    )
    sim.cluster.write_initial_files()
    print(sim.url, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        sim.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim.close()
    return 0


def _refresh(args: argparse.Namespace) -> int:
    query = f"service={args.service}"
    if args.graceful is not None:
        query += f"&graceful={args.graceful}"
    request = urllib.request.Request(f"{args.url.rstrip('/')}/_sim/refresh?{query}", method="POST")
    try:
        with urllib.request.urlopen(request, data=b"", timeout=30):
            pass
    except urllib.error.HTTPError as exc:
        print(f"refreshNodes: {exc.read().decode('utf-8', 'replace')}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"refreshNodes: cannot reach {args.url}: {exc.reason}", file=sys.stderr)
        return 1
    print("Refresh nodes successful")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m testbed.hadoop_sim",
        description="Simulator of the NameNode JMX and ResourceManager REST admin endpoints.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a simulated cluster; prints its URL")
    serve.add_argument("--hosts", required=True, help="host names, comma-separated")
    serve.add_argument("--hosts-file", required=True, type=Path, help="combined JSON hosts file")
    serve.add_argument("--exclude-file", required=True, type=Path, help="YARN exclude file")
    serve.add_argument("--delay", type=float, default=0.2, help="seconds in each transition")
    serve.add_argument("--bind", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0: any free port")
    refresh = sub.add_parser("refresh", help="what refreshNodes does, on a running simulator")
    refresh.add_argument("--url", required=True)
    refresh.add_argument("--service", choices=("hdfs", "yarn", "all"), default="all")
    refresh.add_argument("-g", "--graceful", type=int, metavar="TIMEOUT", help="YARN: graceful")
    args = parser.parse_args(argv)
    return _serve(args) if args.command == "serve" else _refresh(args)


if __name__ == "__main__":
    sys.exit(main())
