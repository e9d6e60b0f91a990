"""The desired version (``/current_version``), its history, and its rolling rules.

``trigger`` sets the version every agent moves to. It is a compare-and-swap on
``/current_version``: two operators triggering at once cannot both believe they won, and
each trigger adds exactly one history entry in the same transaction.

**A version triggered while hosts have not converged** (seed 003's open question) is
refused unless ``force`` is given, naming the hosts not yet running the current version
and those failed on it. Forced, the newest version wins everywhere: agents never run the
versions in between. A host in the middle of its update finishes that update (a package
manager is not cut in half), reports its result for the old version, then moves to the new
one; a host still waiting for its turn stops waiting and queues for the new version under
the new version's rules, and gives back its place in the old version's queue.
"""

from __future__ import annotations

import getpass
import json
import random
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ephyra.errors import StoreError, UsageError
from ephyra.names import check_version, is_version
from ephyra.versions.keys import Keys, check_name
from ephyra.versions.lifecycle import failed_at, running_versions, states
from ephyra.versions.store import Compare, Put, Store

ALL = "*"  # the rule for every role no rule names
ATTEMPTS = 20
MAX_RETRIES = 100
#: The retries of a trigger that names none (rules stored without any: none).
DEFAULT_RETRIES = 2
#: The first retry's pause, and the longest (seconds); each retry doubles it, jittered.
BACKOFF_S = 2.0
BACKOFF_MAX_S = 300.0


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before the attempt after ``attempt`` (1 = the first one failed):
    exponential, and jittered (between half and all of it) so that hosts failing together
    do not retry together."""
    full = min(BACKOFF_MAX_S, BACKOFF_S * 2.0 ** max(0, attempt - 1))
    return full * (rng or random.Random()).uniform(0.5, 1.0)


@dataclass(frozen=True)
class Rules:
    """How a version rolls out: at most ``max_at_once[role]`` hosts of a role update at
    once (``*`` for roles not named; absent: one at a time; 0 freezes the role), a
    role starts only when every live host of each role in ``after[role]`` runs it, and a
    host that fails tries again ``retries`` times, after a backoff (:func:`backoff`)."""

    max_at_once: Mapping[str, int] = field(default_factory=dict)
    after: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    retries: int = 0  # attempts a failed host makes again, after a backoff

    def __post_init__(self) -> None:
        if not 0 <= self.retries <= MAX_RETRIES:
            raise UsageError(f"--retries {self.retries}: not a number from 0 to {MAX_RETRIES}")

    def limit(self, role: str) -> int | None:
        """Hosts of ``role`` that may update at once; None: no limit."""
        limit = self.max_at_once.get(role, self.max_at_once.get(ALL, 1))
        return None if limit < 0 else limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_at_once": dict(self.max_at_once),
            "after": {k: list(v) for k, v in self.after.items()},
            "retries": self.retries,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rules:
        return cls(
            {str(k): int(v) for k, v in (data.get("max_at_once") or {}).items()},
            {str(k): tuple(v) for k, v in (data.get("after") or {}).items()},
            int(data.get("retries") or 0),
        )

    @classmethod
    def parse(cls, max_at_once: Sequence[str], after: Sequence[str], retries: int = 0) -> Rules:
        """Rules from ``ROLE=N`` (``N`` a number, or ``all``) and ``ROLE=DEP[,DEP...]``."""
        limits: dict[str, int] = {}
        for item in max_at_once:
            role, _, n = item.partition("=")
            role = role.strip() or ALL
            if role != ALL:
                check_name("role", role)
            if n.strip() == "all":
                limits[role] = -1
                continue
            try:
                limits[role] = int(n)
            except ValueError:
                raise UsageError(f"--max-at-once {item!r}: not ROLE=N or ROLE=all") from None
            if limits[role] < 0:
                raise UsageError(f"--max-at-once {item!r}: N cannot be negative")
        deps: dict[str, tuple[str, ...]] = {}
        for item in after:
            role, _, rest = item.partition("=")
            names = tuple(check_name("role", d.strip()) for d in rest.split(",") if d.strip())
            if not names:
                raise UsageError(f"--after {item!r}: not ROLE=DEP[,DEP...]")
            deps[check_name("role", role.strip())] = names
        rules = cls(limits, deps, retries)
        rules.check()
        return rules

    def check(self) -> None:
        """Refuse dependencies that go round in a circle (no role could ever start)."""
        seen: dict[str, int] = {}

        def visit(role: str, path: tuple[str, ...]) -> None:
            if seen.get(role) == 2:
                return
            if seen.get(role) == 1:
                raise UsageError(f"--after goes round in a circle: {' -> '.join((*path, role))}")
            seen[role] = 1
            for dep in self.after.get(role, ()):
                visit(dep, (*path, role))
            seen[role] = 2

        for role in self.after:
            visit(role, ())


@dataclass(frozen=True)
class Trigger:
    version: str
    previous: str | None
    at: float
    by: str
    rules: Rules
    forced: bool = False

    def to_json(self) -> str:
        data = {
            "version": self.version,
            "previous": self.previous,
            "at": self.at,
            "by": self.by,
            "rules": self.rules.to_dict(),
            "forced": self.forced,
        }
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Trigger:
        data = json.loads(raw)
        return cls(
            data["version"],
            data.get("previous"),
            float(data.get("at", 0)),
            data.get("by", ""),
            Rules.from_dict(data.get("rules") or {}),
            bool(data.get("forced")),
        )


def read(store: Store, keys: Keys) -> str | None:
    """``/current_version`` as the store holds it, unchecked (see :func:`current`)."""
    return store.get(keys.current_version)


def current(store: Store, keys: Keys) -> str | None:
    """The desired version (None when none was triggered); a UsageError when what the
    store holds is not a valid version (written there by hand or by something else)."""
    found = read(store, keys)
    return (
        None if found is None else check_version(found, f"desired version {keys.current_version}")
    )


def rules_of(store: Store, keys: Keys, version: str) -> Rules:
    raw = store.get(keys.rollout(version))
    return Rules.from_dict(json.loads(raw)) if raw else Rules()


def unconverged(store: Store, keys: Keys, version: str) -> dict[str, list[str]]:
    """Hosts holding back ``version``: live hosts not running it, and hosts failed on it."""
    running = running_versions(store, keys)
    live: set[str] = set().union(*running.values())
    behind = sorted(live - running.get(version, set()))
    failed = sorted(
        host for host, state in states(store, keys).items() if failed_at(state, version)
    )
    return {k: v for k, v in (("behind", behind), ("failed", failed)) if v}


def trigger(
    store: Store, keys: Keys, version: str, rules: Rules | None = None, *, force: bool = False
) -> Trigger:
    """Make ``version`` the desired version of every host (see the module's text for a
    trigger while hosts have not converged)."""
    check_name("version", version)
    rules = rules or Rules()
    rules.check()
    by = f"{getpass.getuser()}@{socket.gethostname()}"
    for _ in range(ATTEMPTS):
        previous = read(store, keys)  # a malformed one is replaced, never waited for
        if previous and is_version(previous) and previous != version and not force:
            holding = unconverged(store, keys, previous)
            if holding:
                said = "; ".join(
                    f"{what}: {', '.join(hosts[:10])}{' ...' if len(hosts) > 10 else ''}"
                    for what, hosts in holding.items()
                )
                raise UsageError(
                    f"hosts have not converged on {previous} ({said}); "
                    f"--force makes {version} win over it"
                )
        now = time.time()
        made = Trigger(version, previous, now, by, rules, forced=force)
        ok = store.txn(
            [Compare(keys.current_version, previous)],
            [
                Put(keys.current_version, version),
                Put(keys.rollout(version), json.dumps(rules.to_dict(), sort_keys=True)),
                Put(keys.history(time.time_ns()), made.to_json()),
            ],
        )
        if ok:
            return made
    raise StoreError(f"{ATTEMPTS} other triggers won the race for {keys.current_version}")


def history(store: Store, keys: Keys) -> list[Trigger]:
    """Every trigger, oldest first."""
    found = store.range(keys.history())
    return [Trigger.from_json(found[key]) for key in sorted(found)]
