"""The lease of one agent, kept alive on its own thread (and, on etcd, its own connection).

- **Renewal** every third of the TTL, counted from the last renewal that etcd answered,
  give or take an eighth of that drawn at random (:data:`SPREAD`): agents started together
  do not renew together, in bursts that etcd would answer late. A renewal that fails
  (etcd slow or away) is tried again at once, then every :data:`RETRY_S`, until the lease
  would have expired: two more chances before the TTL ends.
- **TTL from measured latency**: the TTL asked for is the larger of the one configured and
  :data:`LATENCY_FACTOR` times the slowest round trip seen (grant or renewal), so that a
  renewal period (TTL/3) always holds several round trips however slow etcd answers.
- **A lost lease** (etcd says it expired, or no renewal landed within the TTL: then it
  is revoked, so that no write still on its way lands under it) is granted
  again with jittered exponential backoff (:func:`backoff`: 0.5 s doubling to 30 s, each
  wait drawn between half and all of it), so a fleet that lost etcd does not come back
  all at once; then ``announce`` writes again what the lease carried, nothing else.
- **One re-announcement per loss**: the keeper's thread and any writer that finds the
  lease expired call :meth:`LeaseKeeper.replace` with the lease they saw; only the first
  replaces it.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
import time
from collections.abc import Callable

from ephyra.errors import LeaseExpired, StoreError
from ephyra.versions.store import Lease

#: The TTL is at least this many times the slowest round trip measured.
LATENCY_FACTOR = 10
#: The part of the renewal period drawn at random (half of it more, half of it less).
SPREAD = 0.25
#: The pause between two renewals that failed (after the first retry, made at once).
RETRY_S = 0.5
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0

Grant = Callable[[int], Lease]  # a new lease of TTL seconds
Announce = Callable[[Lease], None]  # write what lives under the lease, in one transaction
Say = Callable[[str], None]


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """The wait before attempt ``attempt`` + 1 (``attempt`` from 0): exponential,
    capped, and drawn between half and all of it."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** min(attempt, 16))
    return ceiling * (0.5 + rand() / 2)


def sized_ttl(configured: int, latency: float) -> int:
    """The TTL to ask for: ``configured``, or more if etcd answers slowly."""
    return max(configured, math.ceil(LATENCY_FACTOR * latency))


class LeaseKeeper:
    def __init__(
        self,
        grant: Grant,
        announce: Announce,
        ttl: int,
        stop: threading.Event,
        say: Say,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._grant = grant
        self._announce = announce
        self.ttl = ttl  # as configured; the lease's own TTL may be longer
        self._stop = stop
        self._say = say
        self._clock = clock
        self._wait = wait or stop.wait
        self._rand = rand
        self._lock = threading.RLock()
        self.lease: Lease | None = None
        self.latency = 0.0  # the slowest round trip seen
        self.renewed_at = 0.0  # when the last renewal (or the grant) was asked
        self.losses = 0  # leases lost (expired, or not renewed within their TTL)
        self.announcements = 0  # announcements after the first

    # -- the lease, and what lives under it -------------------------------------------
    @property
    def steady(self) -> threading.RLock:
        """Held, the lease is not replaced by another thread: a write under it and what
        the agent learns from that write go together. (The holder's own write that finds
        the lease expired still replaces it.)"""
        return self._lock

    def acquire(self) -> Lease:
        """The first lease, and the first announcement under it."""
        with self._lock:
            return self._new()

    def replace(self, old: Lease | None, *, expired: bool = True) -> Lease:
        """A new lease in place of ``old``, announced again; if another thread did it
        already, the lease it took. ``old`` not known ``expired`` (no renewal landed
        within its TTL, but etcd may hold it still) is revoked first: a write under it
        still on its way then fails and is made again under the new one, instead of
        landing under a lease nobody renews."""
        with self._lock:
            if self.lease is not None and self.lease is not old:
                return self.lease
            self.losses += 1
            self.announcements += 1
            self._say("the lease expired; announcing again")
            if old is not None and not expired:
                with contextlib.suppress(StoreError):  # then it expires by itself
                    old.revoke()
            return self._new()

    def _new(self) -> Lease:
        attempt = 0
        while True:
            try:
                lease = self._timed(lambda: self._grant(sized_ttl(self.ttl, self.latency)))
                self.lease = lease
                self.renewed_at = self._clock()
                self._announce(lease)
                return lease
            except StoreError as exc:  # LeaseExpired too: the lease went before it was used
                if self._stop.is_set():
                    raise
                if attempt == 0:
                    self._say(f"lease: {exc}; trying again")
                self._wait(backoff(attempt, self._rand))
                attempt += 1

    def _timed(self, fn: Callable[[], Lease]) -> Lease:
        started = self._clock()
        lease = fn()
        self.latency = max(self.latency, self._clock() - started)
        return lease

    # -- the renewals -----------------------------------------------------------------
    def run(self) -> None:
        """Renew until stopped (the keeper's thread)."""
        while not self._stop.is_set():
            lease = self.lease
            if lease is None:
                return
            if self._wait(max(0.0, self.renewed_at + self.period(lease) - self._clock())):
                return
            self.renew(lease)

    def period(self, lease: Lease) -> float:
        """Seconds from one renewal to the next: a third of the TTL, give or take a
        random part."""
        return lease.ttl / 3 * (1 + SPREAD * (self._rand() - 0.5))

    def renew(self, lease: Lease) -> None:
        """One renewal, retried until it lands or the lease is gone (then replaced)."""
        tries = 0
        expired = True
        while not self._stop.is_set():
            try:
                started = self._clock()
                lease.refresh()
                self.latency = max(self.latency, self._clock() - started)
                self.renewed_at = started
                return
            except LeaseExpired:
                break
            except StoreError:
                if self._clock() >= self.renewed_at + lease.ttl:
                    expired = False  # no renewal landed within the TTL: it is lost to us
                    break
                tries += 1
                if tries > 1 and self._wait(RETRY_S):
                    return
        if not self._stop.is_set():
            self.replace(lease, expired=expired)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="lease", daemon=True)
        thread.start()
        return thread
