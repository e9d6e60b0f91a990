"""URLs as messages and logs may show them: without their credentials.

A journal URL holds a PostgreSQL password in production, a store or lock URL an etcd user
and password; :func:`redact` keeps what tells an operator which service is meant (scheme,
host, port, path) and replaces every credential with ``***``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HIDDEN = "***"
#: Query options that carry a credential (``?password=``, ``?token=``, ``?cert_key=``...).
SECRET_OPTION = re.compile(r"pass|secret|token|key|auth|credential", re.IGNORECASE)
#: ``scheme://user:password@`` anywhere in a text (a URL inside a message).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:\s]*):[^/@\s]*@")


def is_http(url: str) -> bool:
    """Whether ``url`` is an http(s) URL naming a host, with no white space in it."""
    if any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:  # a bad port or an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def redact(url: str) -> str:
    """``url`` with its password and secret query options replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" not in netloc and not SECRET_OPTION.search(parts.query):
        return url  # nothing to hide (and sqlite:////abs keeps its slashes)
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{HIDDEN}@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, HIDDEN if SECRET_OPTION.search(k) else v) for k, v in pairs], safe="*/"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it hidden."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{HIDDEN}@", text)
