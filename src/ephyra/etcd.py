"""From an etcd URL to an etcd3gw client: TLS, client certificates and an etcd user.

The versions store, the run locks and the jobboard all reach etcd through here::

    etcd3+https://[USER@]HOST:PORT[/PATH]?ca_cert=FILE&cert_cert=FILE&cert_key=FILE

``etcd3+https`` always speaks TLS: ``ca_cert`` is the CA that signed etcd's certificate
(without it, the CAs of certifi), ``cert_cert`` and ``cert_key`` the client certificate
etcd's ``--client-cert-auth`` asks for (both or neither). ``USER`` logs in to etcd's
authentication (``POST /v3/auth/authenticate``) and every call carries its token; a token
etcd no longer accepts (it expired, etcd restarted) is replaced by a new login, once per
call. The password comes from ``EPHYRA_ETCD_PASSWORD`` or ``?password_file=FILE``;
``USER:PASSWORD@`` in the URL works but is warned about (a command line is visible to
every user of the machine).

``etcd3+http`` is plain HTTP: certificate options are refused with it (they would be
ignored), and so is a user unless the host is loopback (a password in clear on a network).
Every message names the URL through :func:`ephyra.urls.redact`.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import stat
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import etcd3gw
import requests
from etcd3gw.exceptions import Etcd3Exception

from ephyra.errors import EtcdAuthError, UsageError
from ephyra.gateway import GatewaySession
from ephyra.names import check_name
from ephyra.net import why
from ephyra.urls import redact, redact_text

LOG = logging.getLogger(__name__)

#: The environment variable holding the password of the URL's etcd user.
ENV_PASSWORD = "EPHYRA_ETCD_PASSWORD"
SCHEMES = {"etcd3+http": "http", "etcd3+https": "https"}
DEFAULT_PORT = 2379
CERT_OPTIONS = ("ca_cert", "cert_cert", "cert_key")
#: The options every etcd URL takes; a user adds its own (the board's ``ttl``...).
OPTIONS = (*CERT_OPTIONS, "password_file")
SHAPE = "etcd3+https://[USER@]HOST:PORT[/PATH]?ca_cert=FILE&cert_cert=FILE&cert_key=FILE"
INLINE_WARNING = "a password in the URL is visible in process lists; use " + ENV_PASSWORD
#: The gateway's login, relative to the base URL (etcd 3.4 and later).
AUTHENTICATE = "/v3/auth/authenticate"

_warned: set[str] = set()
_warned_lock = threading.Lock()


class LoginRefused(EtcdAuthError, Etcd3Exception):
    """:class:`EtcdAuthError` as etcd3gw's own error too: its callers (tooz, the jobboard,
    the store) take it for the etcd failure it is."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class EtcdURL:
    """An etcd URL, read and checked; :meth:`client` connects to it."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_cert: str | None = None
    cert_cert: str | None = None
    cert_key: str | None = None
    #: The options the caller takes besides the common ones (``parse(own=...)``).
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def protocol(self) -> str:
        return SCHEMES[self.scheme]

    @property
    def shown(self) -> str:
        """The URL as messages and logs show it."""
        return redact(self.url)

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def base(self) -> str:
        return f"{self.protocol}://{self.hostport}"

    @classmethod
    def parse(
        cls,
        url: str,
        *,
        own: Collection[str] = (),
        what: str = "etcd",
        environ: Mapping[str, str] | None = None,
    ) -> EtcdURL:
        """Read ``url``; UsageError naming ``what`` and what is wrong. ``own`` are the
        options the caller reads itself, left in :attr:`options`."""
        return _Parser(url, what, os.environ if environ is None else environ).parse(own)

    def session(self, timeout: float) -> GatewaySession:
        """A session for etcd's gateway (:mod:`ephyra.gateway`): its certificates, and its
        user's login."""
        session = GatewaySession() if self.user is None else LoginSession(self, timeout)
        # no proxy, netrc or CA bundle from the environment (REQUESTS_CA_BUNDLE would take
        # the place of ca_cert): etcd is reached directly, with the URL's certificates
        session.trust_env = False
        if self.ca_cert is not None:
            session.verify = self.ca_cert
        if self.cert_cert is not None and self.cert_key is not None:
            session.cert = (self.cert_cert, self.cert_key)
        return session

    def client_options(self, timeout: float) -> dict[str, Any]:
        """etcd3gw.Etcd3Client's arguments, but its session."""
        return {"host": self.host, "port": self.port, "protocol": self.protocol, "timeout": timeout}

    def client(self, timeout: float) -> etcd3gw.Etcd3Client:
        """An etcd3gw client for this URL (it connects at its first call)."""
        return etcd3gw.Etcd3Client(**self.client_options(timeout), session=self.session(timeout))


class _Parser:
    """One URL being read: each check a method, each refusal a UsageError."""

    def __init__(self, url: str, what: str, environ: Mapping[str, str]) -> None:
        self.url = url
        self.what = what
        self.environ = environ

    def refuse(self, why: str) -> UsageError:
        return UsageError(f"{self.what} {redact(self.url)}: {why}")

    def parse(self, own: Collection[str]) -> EtcdURL:
        try:
            parts = urlsplit(self.url)
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise self.refuse(f"not a URL ({exc}); expected {SHAPE}") from None
        if parts.scheme not in SCHEMES:
            raise self.refuse(f"expected etcd3+http://HOST:PORT (plain) or {SHAPE}")
        if not parts.hostname:
            raise self.refuse("no host")
        host = check_name(parts.hostname, "etcd host")
        options = self.options(parts.query, own)
        certs = {name: self.file(name, options.get(name)) for name in CERT_OPTIONS}
        if (certs["cert_cert"] is None) != (certs["cert_key"] is None):
            raise self.refuse("cert_cert and cert_key go together (the client certificate)")
        user = unquote(parts.username) if parts.username else None
        if SCHEMES[parts.scheme] == "http":
            self.check_plain(host, [name for name, file in certs.items() if file], user)
        return EtcdURL(
            self.url,
            parts.scheme,
            host,
            port,
            parts.path,
            user,
            self.password(user, parts.password, options.get("password_file")),
            options={k: v for k, v in options.items() if k in own},
            **certs,
        )

    def options(self, query: str, own: Collection[str]) -> dict[str, str]:
        pairs = parse_qsl(query, keep_blank_values=True)
        known = {*OPTIONS, *own}
        unknown = sorted({k for k, _ in pairs} - known)
        if unknown:
            raise self.refuse(
                f"unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        options: dict[str, str] = {}
        for key, value in pairs:
            if key in options:
                raise self.refuse(f"option {key} given twice")
            options[key] = value
        return options

    def file(self, option: str, value: str | None) -> str | None:
        if value is None:
            return None
        if not value or not Path(value).is_file():
            raise self.refuse(f"{option}: no such file {value!r}")
        return value

    def password(self, user: str | None, inline: str | None, path: str | None) -> str | None:
        if user is None:
            if inline is not None or path is not None:
                raise self.refuse("a password without a user (USER@HOST)")
            return None
        if inline is not None and path is not None:
            raise self.refuse("two passwords: in the URL and password_file")
        if inline is not None:
            _warn_once(self.url, f"{self.what} {redact(self.url)}: {INLINE_WARNING}")
            return unquote(inline)
        if path is not None:
            return self.read_password(path)
        from_env = self.environ.get(ENV_PASSWORD)
        if not from_env:
            raise self.refuse(
                f"etcd user {user!r} needs a password: set {ENV_PASSWORD} "
                "or add ?password_file=FILE"
            )
        return from_env

    def read_password(self, path: str) -> str:
        file = Path(self.file("password_file", path) or path)
        try:
            text = file.read_text().strip()
            mode = file.stat().st_mode
        except (OSError, UnicodeDecodeError) as exc:
            raise self.refuse(f"password_file {path!r} unreadable: {type(exc).__name__}") from None
        if not text:
            raise self.refuse(f"password_file {path!r} is empty")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            _warn_once(
                path, f"{self.what}: password_file {path!r} is readable by others (chmod 600)"
            )
        return text

    def check_plain(self, host: str, certs: list[str], user: str | None) -> None:
        """On plain HTTP: no TLS option, and no user off loopback."""
        if certs:
            raise self.refuse(
                f"{', '.join(certs)} with etcd3+http: plain HTTP uses no certificate "
                "(etcd3+https:// for TLS)"
            )
        if user is not None and not is_loopback(host):
            raise self.refuse(
                "a user over plain HTTP would send its password in clear: use etcd3+https://"
            )


def _warn_once(key: str, message: str) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    LOG.warning("%s", message)


class LoginSession(GatewaySession):
    """A session logged in to etcd as the URL's user: every request carries its token.

    A reply 401 (the token expired, or etcd restarted and forgot it) is answered by one
    new login and the request made again. A watch (a streamed request) always starts with
    a new login: etcd answers a watch with a stale token by a 200 whose stream says
    ``canceled``, which no client would see as a refusal.
    """

    def __init__(self, url: EtcdURL, timeout: float) -> None:
        super().__init__()
        self._url = url
        self._timeout = timeout
        self._token: str | None = None
        self._lock = threading.Lock()
        #: How many logins this session made (the first, and one per token renewed).
        self.logins = 0

    @property
    def token(self) -> str | None:
        return self._token

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        token = self._login(None if kwargs.get("stream") else self._token)
        reply = self._send(token, method, url, args, kwargs)
        if reply.status_code != requests.codes["unauthorized"]:
            return reply
        reply.close()
        LOG.debug("etcd %s: token refused, logging in again", self._url.shown)
        return self._send(self._login(token, renew=True), method, url, args, kwargs)

    def _send(
        self,
        token: str,
        method: str | bytes,
        url: str | bytes,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> requests.Response:
        headers = dict(kwargs.get("headers") or {})
        headers["Authorization"] = token
        return super().request(method, url, *args, **{**kwargs, "headers": headers})

    def _login(self, token: str | None, renew: bool = False) -> str:
        """``token`` if there is one (and it is not to be renewed), else a new one; a
        token renewed by another thread meanwhile is taken as it is."""
        with self._lock:
            if token is not None and not renew:
                return token
            if renew and self._token is not None and self._token != token:
                return self._token
            self._token = self._authenticate()
            self.logins += 1
            return self._token

    def _authenticate(self) -> str:
        assert self._url.user is not None and self._url.password is not None
        body = {"name": self._url.user, "password": self._url.password}
        reply = super().request(
            "POST", self._url.base + AUTHENTICATE, json=body, timeout=self._timeout
        )
        token = _token(reply)
        if token is None:
            raise LoginRefused(
                f"login as {self._url.user!r} refused (HTTP {reply.status_code}: {_reason(reply)})"
            )
        return token


def _token(reply: requests.Response) -> str | None:
    if reply.status_code != requests.codes["ok"]:
        return None
    try:
        token = reply.json().get("token")
    except ValueError:
        return None
    return token if isinstance(token, str) and token else None


def describe(exc: BaseException) -> str:
    """What went wrong in an etcd call, in one short line: etcd3gw keeps the reason of
    its errors in ``detail_text`` (a network error's text, or etcd's JSON answer); a
    connection that failed says why in a few words ("connection refused")."""
    reason = why(exc)
    if reason:
        return reason
    detail = getattr(exc, "detail_text", None) or str(exc) or type(exc).__name__
    text = str(detail)
    try:
        body = json.loads(text)
        text = str(body.get("error") or body.get("message") or text)
    except (ValueError, AttributeError):
        pass
    return redact_text(" ".join(text.split()))[:500]


def _reason(reply: requests.Response) -> str:
    """etcd's reason for a refusal (``etcdserver: authentication failed...``), short."""
    try:
        body = reply.json()
        text = str(body.get("error") or body.get("message") or "")
    except (ValueError, AttributeError):
        text = reply.text
    return " ".join(text.split())[:200] or str(reply.reason)
