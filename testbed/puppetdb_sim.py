"""A simulation of the parts of PuppetDB's v4 query API that Ephyra's ``puppetdb`` source uses.

There is no PuppetDB here; this serves, on 127.0.0.1 and a free port, what PuppetDB's
documentation (``documentation/api/query/v4/`` of puppetlabs/puppetdb) says for:

- ``/pdb/query/v4/nodes``, ``/pdb/query/v4/facts``, ``/pdb/query/v4/resources`` (and
  ``/resources/<TYPE>``), by GET (URL parameters) or POST (a JSON body);
- the AST query language: ``=``, ``~``, ``<``, ``>``, ``<=``, ``>=``, ``null?``, ``and``,
  ``or``, ``not``, ``in`` with an ``array``, ``extract`` (a field or a list of fields,
  with an optional query), ``["fact", NAME]`` on nodes and ``["parameter", NAME]`` on
  resources;
- paging: ``order_by`` (a JSON array of ``{"field", "order"}``), ``limit``, ``offset``,
  ``include_total`` (the ``X-Records`` header);
- deactivated and expired nodes, their facts and resources are left out;
- a bad query is HTTP 400 with a plain-text message, as PuppetDB answers.

Each response row has PuppetDB's documented fields. :attr:`PuppetDBSim.requests` records
every request (path and parameters) for tests to check what a client asked.

``python -m testbed.puppetdb_sim DATA.yaml [PORT]`` serves the nodes, facts and classes of
a file shaped like :meth:`PuppetDBSim.from_hosts`'s arguments.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

LOOPBACK = "127.0.0.1"
PREFIX = "/pdb/query/v4/"
TIMESTAMP = "2026-01-01T00:00:00.000Z"
#: Fields each entity can be queried and ordered on (PuppetDB's documented ones used here).
FIELDS: dict[str, tuple[str, ...]] = {
    "nodes": (
        "certname",
        "deactivated",
        "expired",
        "catalog_timestamp",
        "facts_timestamp",
        "report_timestamp",
        "catalog_environment",
        "facts_environment",
        "report_environment",
        "latest_report_status",
        "latest_report_noop",
        "latest_report_noop_pending",
        "latest_report_hash",
        "cached_catalog_status",
    ),
    "facts": ("certname", "name", "value", "environment"),
    "resources": (
        "certname",
        "resource",
        "type",
        "title",
        "exported",
        "tags",
        "tag",
        "file",
        "line",
        "environment",
        "parameters",
    ),
}


class QueryError(ValueError):
    """A query PuppetDB would refuse with HTTP 400."""


Row = dict[str, Any]
Predicate = Callable[[Row], bool]


class PuppetDBSim:
    """Nodes, facts and resources served as PuppetDB's v4 query API would."""

    def __init__(
        self,
        nodes: Sequence[Row],
        facts: Sequence[Row] = (),
        resources: Sequence[Row] = (),
    ) -> None:
        self.nodes = [dict(n) for n in nodes]
        self.facts = [dict(f) for f in facts]
        self.resources = [dict(r) for r in resources]
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_hosts(
        cls,
        hosts: Mapping[str, Mapping[str, Any]],
        *,
        deactivated: Sequence[str] = (),
        environment: str = "production",
    ) -> PuppetDBSim:
        """One node per host: ``{certname: {"classes": [...], "facts": {...}}}``; the nodes
        named in ``deactivated`` are deactivated (PuppetDB keeps them, hidden)."""
        nodes, facts, resources = [], [], []
        for certname, body in hosts.items():
            gone = TIMESTAMP if certname in deactivated else None
            nodes.append(
                {
                    "certname": certname,
                    "deactivated": gone,
                    "expired": None,
                    "catalog_timestamp": TIMESTAMP,
                    "facts_timestamp": TIMESTAMP,
                    "report_timestamp": TIMESTAMP,
                    "catalog_environment": environment,
                    "facts_environment": environment,
                    "report_environment": environment,
                    "latest_report_status": body.get("status", "unchanged"),
                    "latest_report_noop": False,
                    "latest_report_noop_pending": False,
                    "latest_report_hash": hashlib.sha1(certname.encode()).hexdigest(),
                    "cached_catalog_status": "not_used",
                }
            )
            for name, value in (body.get("facts") or {}).items():
                facts.append(
                    {"certname": certname, "name": name, "value": value, "environment": environment}
                )
            for title in ["Settings", "main", *(body.get("classes") or [])]:
                resources.append(_class(certname, title, environment))
        return cls(nodes, facts, resources)

    # -- serving --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the PuppetDB simulation is not serving")
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def start(self, port: int = 0) -> PuppetDBSim:
        sim = self

        class Handler(_Handler):
            simulation = sim

        self._server = ThreadingHTTPServer((LOOPBACK, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> PuppetDBSim:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- answering ------------------------------------------------------------------------

    def active(self) -> set[str]:
        return {
            n["certname"] for n in self.nodes if n.get("deactivated") is None and not n["expired"]
        }

    def rows(self, entity: str) -> list[Row]:
        active = self.active()
        if entity == "nodes":
            return [n for n in self.nodes if n["certname"] in active]
        table = self.facts if entity == "facts" else self.resources
        return [r for r in table if r["certname"] in active]

    def answer(self, entity: str, params: Mapping[str, Any]) -> tuple[list[Row], int]:
        """The rows of one query, and how many there are before paging."""
        query = params.get("query")
        if isinstance(query, str):
            query = _json(query, "query")
        rows = self.rows(entity)
        extract: list[str] | None = None
        if query:
            if not isinstance(query, list) or not query:
                raise QueryError("The query must be a JSON array")
            if query[0] == "extract":
                extract = _fields(query[1], entity)
                query = query[2] if len(query) > 2 else None
            if query:
                predicate = self.compile(entity, query)
                rows = [r for r in rows if predicate(r)]
        order = params.get("order_by")
        if isinstance(order, str):
            order = _json(order, "order_by")
        for clause in reversed(order or []):
            if not isinstance(clause, Mapping) or clause.get("field") not in FIELDS[entity]:
                raise QueryError(f"Unrecognized column {clause!r} in order_by for {entity}")
            column: str = clause["field"]
            descending = str(clause.get("order", "asc")).lower() == "desc"
            rows.sort(key=lambda r: _sort_key(r.get(column)), reverse=descending)
        total = len(rows)
        offset = _count(params.get("offset"), "offset") or 0
        limit = _count(params.get("limit"), "limit")
        rows = rows[offset:] if limit is None else rows[offset : offset + limit]
        if extract is not None:
            rows = [{f: r.get(f) for f in extract} for r in rows]
        return [_shown(entity, r) for r in rows], total

    def compile(self, entity: str, query: Any) -> Predicate:
        if not isinstance(query, list) or not query or not isinstance(query[0], str):
            raise QueryError(f"{json.dumps(query)} is not well-formed: queries must be arrays")
        op, args = query[0], query[1:]
        if op in ("and", "or"):
            parts = [self.compile(entity, a) for a in args]
            if op == "and":
                return lambda r: all(p(r) for p in parts)
            return lambda r: any(p(r) for p in parts)
        if op == "not":
            if len(args) != 1:
                raise QueryError("'not' takes exactly one argument")
            inner = self.compile(entity, args[0])
            return lambda r: not inner(r)
        if op in ("=", "~", "<", ">", "<=", ">=", "null?"):
            if len(args) != 2:
                raise QueryError(f"{op} requires exactly two arguments")
            get = self.field(entity, args[0])
            return _binary(op, get, args[1])
        if op == "in":
            if len(args) != 2 or not isinstance(args[1], list) or args[1][:1] != ["array"]:
                raise QueryError("'in' here takes a field and an ['array', [...]] of values")
            get = self.field(entity, args[0])
            values = args[1][1]
            if not isinstance(values, list):
                raise QueryError("'array' takes a list of values")
            return lambda r: get(r) in values
        raise QueryError(f"{op} is not a valid expression")

    def field(self, entity: str, name: Any) -> Callable[[Row], Any]:
        if isinstance(name, str):
            if name not in FIELDS[entity]:
                known = ", ".join(FIELDS[entity])
                raise QueryError(
                    f"'{name}' is not a queryable object for {entity}. "
                    f"Known queryable objects are [{known}]"
                )
            if name == "tag":
                return lambda r: [t.lower() for t in r.get("tags", [])]
            return lambda r: r.get(name)
        if isinstance(name, list) and len(name) == 2:
            kind, key = name
            if entity == "nodes" and kind == "fact":
                return lambda r: self._fact(r["certname"], key)
            if entity == "resources" and kind == "parameter":
                return lambda r: (r.get("parameters") or {}).get(key)
        raise QueryError(f"{json.dumps(name)} is not a queryable object for {entity}")

    def _fact(self, certname: str, name: str) -> Any:
        for row in self.facts:
            if row["certname"] == certname and row["name"] == name:
                return row["value"]
        return None


class _Handler(BaseHTTPRequestHandler):
    simulation: PuppetDBSim
    protocol_version = "HTTP/1.1"
    server_version = "ephyra-puppetdb-simulation"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self._serve(split.path, params)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._text(400, "The body is not JSON")
            return
        if not isinstance(body, dict):
            self._text(400, "The body must be a JSON object")
            return
        self._serve(urlsplit(self.path).path, body)

    def _serve(self, path: str, params: dict[str, Any]) -> None:
        sim = self.simulation
        sim.requests.append((path, {k: str(v) for k, v in params.items()}))
        if not path.startswith(PREFIX):
            self._text(404, "Not Found")
            return
        entity, *rest = path[len(PREFIX) :].strip("/").split("/")
        if entity not in FIELDS or (rest and entity != "resources") or len(rest) > 1:
            self._text(404, "Not Found")
            return
        if rest:  # /resources/<TYPE> is /resources with ["=", "type", TYPE] added
            typed = ["=", "type", rest[0]]
            query = params.get("query")
            if isinstance(query, str):
                query = json.loads(query) if query else None
            params = {**params, "query": ["and", typed, query] if query else typed}
        try:
            rows, total = sim.answer(entity, params)
        except QueryError as exc:
            self._text(400, str(exc))
            return
        data = json.dumps(rows).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if str(params.get("include_total", "")).lower() == "true":
            self.send_header("X-Records", str(total))
        self.end_headers()
        self.wfile.write(data)

    def _text(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _class(certname: str, title: str, environment: str) -> Row:
    """A ``Class`` resource as PuppetDB shows it."""
    digest = hashlib.sha1(f"{certname}/Class/{title}".encode()).hexdigest()
    return {
        "certname": certname,
        "resource": digest,
        "type": "Class",
        "title": title,
        "exported": False,
        "tags": ["class", *title.lower().split("::")],
        "file": None,
        "line": None,
        "environment": environment,
        "parameters": {},
    }


def _binary(op: str, get: Callable[[Row], Any], value: Any) -> Predicate:
    if op == "null?":
        if not isinstance(value, bool):
            raise QueryError("null? takes true or false")
        return lambda r: (get(r) is None) == value
    if op == "~":
        if not isinstance(value, str):
            raise QueryError("~ takes a regular expression as a string")
        pattern = re.compile(value)
        return lambda r: _any(get(r), lambda v: isinstance(v, str) and bool(pattern.search(v)))
    if op == "=":
        return lambda r: _any(get(r), lambda v: v == value)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise QueryError(f"{op} takes a number")
    compare: dict[str, Callable[[Any], bool]] = {
        "<": lambda v: v < value,
        ">": lambda v: v > value,
        "<=": lambda v: v <= value,
        ">=": lambda v: v >= value,
    }
    test = compare[op]
    return lambda r: _any(
        get(r), lambda v: isinstance(v, int | float) and not isinstance(v, bool) and test(v)
    )


def _any(value: Any, test: Callable[[Any], bool]) -> bool:
    """Arrays match if any one of their elements does (PuppetDB's ``=`` on arrays)."""
    if isinstance(value, list):
        return any(test(v) for v in value)
    return test(value)


def _fields(value: Any, entity: str) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise QueryError("extract takes a field or a list of fields")
    for name in names:
        if name not in FIELDS[entity]:
            raise QueryError(f"Can't extract unknown '{entity}' field '{name}'")
    return names


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError as exc:
        raise QueryError(f"Malformed JSON for {what}: {text!r}") from exc


def _count(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise QueryError(
            f"Illegal value '{value}' for :{what}; expected a non-negative integer"
        ) from exc
    if number < 0:
        raise QueryError(f"Illegal value '{value}' for :{what}; expected a non-negative integer")
    return number


def _sort_key(value: Any) -> tuple[int, str]:
    return (0, "") if value is None else (1, json.dumps(value, sort_keys=True))


def _shown(entity: str, row: Row) -> Row:
    """A row as PuppetDB returns it (resources show ``tags``, never the ``tag`` field)."""
    return {k: v for k, v in row.items() if k != "tag"}


def main(argv: Sequence[str]) -> int:
    if not argv:
        print("usage: python -m testbed.puppetdb_sim DATA.yaml [PORT]", file=sys.stderr)
        return 2
    with open(argv[0]) as stream:
        data = yaml.safe_load(stream) or {}
    sim = PuppetDBSim.from_hosts(data.get("hosts") or {}, deactivated=data.get("deactivated") or [])
    sim.start(int(argv[1]) if len(argv) > 1 else 0)
    print(sim.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
