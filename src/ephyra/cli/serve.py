"""``ephyra serve``: the management panel, an HTTP API and a web dashboard."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ephyra.errors import UsageError
from ephyra.paths import private_dir, private_file, state_dir

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ephyra.api.auth import Authenticator, KeystoneScope

DESCRIPTION = """\
Serve the management panel: the REST API of every operation of this command line
(/v1/..., described at /openapi.json), Server-Sent Events of run progress, Prometheus
metrics at /metrics, and the web dashboard at /. Runs started through it are driven by
this process; on SIGTERM it asks them to pause and waits for them.

Authentication (--auth):
  static    tokens from a YAML file (--tokens; default: api-tokens.yaml in the state
            directory, made with one admin token the first time, readable by its
            owner only):   TOKEN: {user: NAME, project: NAME, roles: [admin]}
  keystone  Keystone tokens, validated with the credentials of --os-cloud; a valid
            answer is kept --token-cache seconds (a revoked token is refused after
            at most that long). Only tokens of the scopes named carry roles:
            --keystone-project (id, DOMAIN/NAME, or a NAME in the Default domain),
            --keystone-domain (domain-scoped tokens), --keystone-system (system
            scope "all"); at least one is needed. Any other token is known but has
            no role. --keystone-roles maps Keystone roles to Ephyra's
            (admin=ROLE,member=ROLE,reader=ROLE; default: the same names).
Roles: reader reads; member also plans, pauses and resumes; admin does everything.
--policy-file changes any rule (oslo.policy YAML; see docs/api.md for the rules).
Only /healthz and DELETE /v1/session (logging out) answer without a token.

What lives on this machine is the operator's (--config, YAML): callers name it, never
give a path, a URL or a command:
  inventory:   {NAME: SOURCE, ...}   e.g. racks: static:/etc/ephyra/hosts.yaml
  credentials: {NAME: SOURCE, ...}   e.g. dc1: file:/etc/ephyra/bmc.yaml
  limits:      {body_bytes: 1048576, streams_per_caller: 4}
Callers may also name openstack[:CLOUD] (a cloud of clouds.yaml) and the 'source'
credentials, and send a static inventory inline in an upgrade's body.

Workers (--workers N, default 1): N processes answer on the same socket, each with its
own threads driving the runs started, resumed or rolled back through it (a run is driven
by one process: its lock). Pause and abort reach a run through the journal, whichever
process drives it; statuses and lists are read from the journal. Each worker keeps its
own Keystone token cache (each at most --token-cache seconds), its own count of event
streams per caller (so a caller may hold N times the limit) and its own /metrics latency
histogram. SIGTERM is passed to every worker; if one dies, the others are stopped too.

TLS (--tls-cert FILE --tls-key FILE, PEM): the server answers https only. Clients send a
token found on their machine only over https or to this machine (127.0.0.0/8, ::1,
localhost); the dashboard's cookie is then Secure.
"""


def tokens_path(args: argparse.Namespace) -> Path:
    return Path(args.tokens) if args.tokens else state_dir() / "api-tokens.yaml"


def keystone_scope(args: argparse.Namespace) -> KeystoneScope:
    """The scopes whose tokens carry roles (UsageError if none is named)."""
    from ephyra.api.auth import KeystoneScope, default_roles, parse_roles

    return KeystoneScope(
        tuple(args.keystone_project or ()),
        tuple(args.keystone_domain or ()),
        args.keystone_system,
        parse_roles(args.keystone_roles) if args.keystone_roles else default_roles(),
    )


def tls_files(args: argparse.Namespace) -> tuple[str, str] | None:
    """The certificate and key files of --tls-cert/--tls-key: both or neither, readable."""
    cert, key = args.tls_cert, args.tls_key
    if not cert and not key:
        return None
    if not (cert and key):
        raise UsageError("--tls-cert and --tls-key go together")
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise UsageError(f"{option}: no file {path}")
    return str(cert), str(key)


def make_app(args: argparse.Namespace) -> tuple[FastAPI, threading.Event]:
    """The app ``ephyra serve`` answers with, as its options say; and the event that tells
    its event streams the server is stopping."""
    from ephyra.api.app import create_app
    from ephyra.api.config import Named, ServeConfig
    from ephyra.api.policy import Policy
    from ephyra.operations.local import Local

    keystone_options = args.keystone_project or args.keystone_domain or args.keystone_system
    if args.auth != "keystone" and (keystone_options or args.keystone_roles):
        raise UsageError("--keystone-* options go with --auth keystone")
    config = ServeConfig.load(args.config)
    local = Local(args.journal, args.locks, args.store, args.prefix or "", Named(config))
    policy = Policy(args.policy_file)
    authenticator = _authenticator(args)
    stopping = threading.Event()
    app = create_app(
        local,
        authenticator,
        policy,
        config=config,
        stop_timeout=args.stop_timeout,
        stopping=stopping.is_set,
    )
    return app, stopping


def _authenticator(args: argparse.Namespace) -> Authenticator:
    from ephyra.api.auth import KeystoneTokens, StaticTokens, make_tokens_file

    if args.openapi:
        return StaticTokens.empty()
    if args.auth == "keystone":
        if not args.os_cloud:
            raise UsageError("--auth keystone needs --os-cloud (the server's own credentials)")
        return KeystoneTokens(args.os_cloud, keystone_scope(args), args.token_cache)
    path = tokens_path(args)
    if not path.exists():
        if args.tokens:
            raise UsageError(f"no tokens file {path}")
        private_dir(path.parent)
        make_tokens_file(path)
        print(f"ephyra serve: an admin token is in {path}", file=sys.stderr)
    if not args.tokens:
        private_file(path)  # the default file, made 0600, or tightened if an older one
    return StaticTokens(path)


#: Imported before serving, and frozen with the rest: what the first status or list of
#: each kind of run imports (about 1,000 modules, 64,000 objects for a forklift's).
WARM = ("ephyra.engine.service", "ephyra.engine.driver", "ephyra.upgrade.plan")
#: A full pass of the garbage collector that leaves this many objects or more to walk
#: again next time freezes them (they outlived a full pass: code and caches loaded late).
FREEZE_AT = 20_000


def settle_memory() -> None:
    """Keep the collector's full passes short while serving: a full pass walks every
    object the process holds, and pauses every request meanwhile (60-300 ms with the
    code of Ephyra and its libraries loaded, on a busy 2-CPU machine). The code the
    routes of runs import is loaded first; all that is loaded before serving is then
    frozen (never walked again, see :func:`gc.freeze`); and what outlives a full pass
    in numbers later (code a rarer request imports, lasting caches) is frozen after
    that pass (with what the requests under way hold then: of that, what becomes
    garbage in a cycle is never freed, a few objects each such time)."""
    from ephyra.engine.kinds import registered

    for module in WARM:
        importlib.import_module(module)
    for kind in registered():  # their request models
        kind.body_type()
    gc.collect()
    gc.freeze()

    def after_pass(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2 and len(gc.get_objects(2)) >= FREEZE_AT:
            gc.freeze()

    gc.callbacks.append(after_pass)


def run_app(
    app: FastAPI,
    stopping: threading.Event,
    args: argparse.Namespace,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Serve ``app`` as ``ephyra serve`` does (uvicorn, its options), until a signal; on
    ``sockets`` if given (a worker's), else on a socket of its own."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            stopping.set()  # event streams end, then the server waits for the rest
            super().handle_exit(sig, frame)

    tls = tls_files(args)
    scheme = "https" if tls else "http"
    if sockets is None:
        print(
            f"ephyra serve: {scheme}://{args.host}:{args.port}/ ({args.auth} tokens)",
            file=sys.stderr,
        )
    served = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=args.stop_timeout,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    settle_memory()
    Server(served).run(sockets=sockets)


def listening(host: str, port: int) -> socket.socket:
    """The socket every worker accepts on, bound (refused at once if the port is taken);
    the first worker ready listens on it (until then a client is refused, as by a
    server starting)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.set_inheritable(True)
    return sock


#: What makes a worker's app from the options (:func:`make_app`, or a benchmark's floor).
AppMaker = Callable[[argparse.Namespace], tuple["FastAPI", threading.Event]]


def worker(
    args: argparse.Namespace, sock: socket.socket, mask: set[int | signal.Signals], make: AppMaker
) -> None:
    """One worker (a forked process): its own app, journal connections and threads; a
    SIGTERM before or after uvicorn handles it ends it cleanly."""

    def leave(_sig: int, _frame: Any) -> None:
        raise SystemExit(0)

    code = 1
    try:
        signal.signal(signal.SIGTERM, leave)
        signal.signal(signal.SIGINT, leave)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        app, stopping = make(args)
        run_app(app, stopping, args, sockets=[sock])
        code = 0
    except SystemExit as exc:
        code = 0 if exc.code in (0, None) else 1
    except BaseException:  # the parent sees the exit code; the trace goes to stderr
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def serve_workers(args: argparse.Namespace, make: AppMaker = make_app) -> int:
    """``--workers N``: N forked processes serving one socket, until a signal (passed to
    each) or until one of them ends (the others are then stopped): 0 if all ended well."""
    sock = listening(args.host, args.port)
    scheme = "https" if tls_files(args) else "http"
    print(
        f"ephyra serve: {scheme}://{args.host}:{args.port}/ ({args.auth} tokens, "
        f"{args.workers} workers)",
        file=sys.stderr,
    )
    sys.stderr.flush()
    pids: list[int] = []
    stopping = [False]

    def stop(_sig: int = signal.SIGTERM, _frame: Any = None) -> None:
        stopping[0] = True
        for pid in pids:  # SIGTERM: a worker given SIGINT twice would not wait for its runs
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:  # a signal waits until each side has its own handlers
        for _ in range(args.workers):
            pid = os.fork()
            if pid == 0:
                worker(args, sock, held, make)
            pids.append(pid)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    sock.close()
    failed = False
    while pids:
        pid, status = os.wait()
        if pid not in pids:
            continue
        pids.remove(pid)
        failed = failed or os.waitstatus_to_exitcode(status) != 0
        if not stopping[0]:  # a worker ended by itself: stop the rest
            failed = True
            stop()
    return 1 if failed else 0


def do_serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise UsageError("--workers: 1 or more")
    app, stopping = make_app(args)  # also the check of every option, before any worker
    if args.openapi:
        print(json.dumps(app.openapi(), indent=2, sort_keys=True))
        return 0
    _open_journal(args.journal)
    if args.workers > 1:
        del app
        return serve_workers(args)
    run_app(app, stopping, args)
    return 0


def _open_journal(url: str | None) -> None:
    """Open the journal once and close it, before serving: one that cannot be opened ends
    ``ephyra serve`` with its one line (exit 4), not in the server's start-up traceback.
    Each worker opens its own afterwards (nothing opened here crosses a fork)."""
    from ephyra.engine.journal import Journal

    Journal(url).close()


def register(sub: Any, exit_codes: str) -> None:
    parser = sub.add_parser(
        "serve",
        help="the management panel: REST API, event stream, metrics, dashboard",
        description=DESCRIPTION,
        epilog=exit_codes,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    add("--port", type=int, default=8780, help="port to listen on (8780)")
    add("--auth", choices=["static", "keystone"], default="static", help="token checks (static)")
    add("--tokens", metavar="FILE", help="static tokens file (default: in the state directory)")
    add(
        "--os-cloud",
        default=os.environ.get("OS_CLOUD"),
        metavar="NAME",
        help="with --auth keystone: the cloud whose Keystone validates tokens (OS_CLOUD)",
    )
    add(
        "--token-cache",
        type=float,
        default=60.0,
        metavar="S",
        help="with --auth keystone: keep a validated token this long at most (60; 0: never)",
    )
    add(
        "--keystone-project",
        action="append",
        metavar="NAME_OR_ID",
        help="with --auth keystone: tokens of this project carry roles (repeatable; "
        "an id, DOMAIN/NAME, or a name in the Default domain)",
    )
    add(
        "--keystone-domain",
        action="append",
        metavar="NAME_OR_ID",
        help="with --auth keystone: domain-scoped tokens of this domain carry roles",
    )
    add(
        "--keystone-system",
        action="store_true",
        help="with --auth keystone: system-scoped tokens (system all) carry roles",
    )
    add(
        "--keystone-roles",
        metavar="MAP",
        help="with --auth keystone: admin=ROLE,member=ROLE,reader=ROLE, the Keystone role "
        "giving each Ephyra role (default: the role of the same name)",
    )
    add(
        "--policy-file",
        metavar="FILE",
        help="policy overrides (oslo.policy YAML), read again when it changes; no other file "
        "is looked for (not in ~, ~/.ephyra, /etc or /etc/ephyra)",
    )
    add(
        "--tls-cert", metavar="FILE", help="serve https with this certificate (PEM; with --tls-key)"
    )
    add("--tls-key", metavar="FILE", help="the private key of --tls-cert (PEM)")
    add(
        "--config",
        metavar="FILE",
        help="the inventory and credential sources callers may name, and the limits (YAML)",
    )
    add(
        "--stop-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="on SIGTERM, wait this long for the runs it drives to pause (60)",
    )
    add(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="answer with N processes on the same socket (1); see Workers above",
    )
    add("--openapi", action="store_true", help="print the OpenAPI document and exit")
    parser.set_defaults(handler=do_serve)
