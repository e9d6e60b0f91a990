"""Why a connection failed, in a few words, from the chain of exceptions a library raised.

HTTP libraries wrap the system's error several times (``requests`` in ``urllib3`` in the
socket's ``ConnectionRefusedError``), each wrapper's text longer than the last. An operator
needs the innermost reason: "connection refused", "name not resolved", "timed out".
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

#: Why a connection failed, by errno (else the system's own words, lowercased).
ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
    errno.EACCES: "permission denied",
}


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it was raised from (or while handling), and so on."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def in_chain(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of ``kinds`` in the chain of ``exc`` (None if none)."""
    return next((e for e in chain(exc) if isinstance(e, kinds)), None)


def timed_out(exc: BaseException) -> bool:
    """Whether a timeout is in the chain (the builtin's, or a library's ``...Timeout...``)."""
    return any(
        isinstance(e, (TimeoutError, socket.timeout)) or "Timeout" in type(e).__name__
        for e in chain(exc)
    )


def why(exc: BaseException) -> str | None:
    """The reason a connection failed, in a few words; None when no system error says."""
    for current in chain(exc):
        if isinstance(current, socket.gaierror):
            return "name not resolved"
        if isinstance(current, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {current.verify_message}"
        if isinstance(current, ssl.SSLError):
            return f"TLS failed: {current.reason or current.strerror or 'handshake'}"
        if isinstance(current, OSError) and current.errno is not None:
            return ERRNO_REASONS.get(current.errno) or (current.strerror or str(current)).lower()
    return "timed out" if timed_out(exc) else None
