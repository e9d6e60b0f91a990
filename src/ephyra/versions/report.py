"""What operators ask of the store: do these hosts run a version (``verify``), and where
does every host stand (``status``).

Each answer is a handful of range reads, whatever the number of hosts: ``verify`` over
ten thousand hosts reads ``/running_version/<version>/`` once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ephyra.names import is_version, shown
from ephyra.versions.desired import history, read
from ephyra.versions.keys import SERVICE_STATES, Keys, check_name
from ephyra.versions.lifecycle import failed_at, running_versions, states
from ephyra.versions.store import Store


@dataclass(frozen=True)
class Verdict:
    version: str
    running: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing


def verify(store: Store, keys: Keys, version: str, hosts: Iterable[str]) -> Verdict:
    """Seed 003's ``verify_hosts``: true when ``/running_version/<version>/<host>`` exists
    for every host given."""
    check_name("version", version)
    root = keys.running(version)
    there = {key[len(root) :] for key in store.range(root)}
    wanted = [check_name("host", host) for host in dict.fromkeys(hosts)]
    return Verdict(
        version,
        tuple(h for h in wanted if h in there),
        tuple(h for h in wanted if h not in there),
    )


def status(store: Store, keys: Keys) -> dict[str, Any]:
    """The desired version, and each host: the versions it runs, its service state with its
    version, its provisioning, and for a failure the message and the link to its log."""
    found = read(store, keys)
    desired = found if is_version(found) else None  # a malformed one: every agent refuses it
    shown_desired = desired if found is None or desired else f"{shown(found)} (refused: malformed)"
    running = running_versions(store, keys)
    records = states(store, keys)
    failures: dict[str, dict[str, Any]] = {}
    attempts: dict[str, int] = {}
    for state in SERVICE_STATES:
        root = keys.status(state)
        for key, raw in store.range(root).items():
            version, host = keys.relative(key, root)[:2]
            detail = json.loads(raw) if raw.startswith("{") else {"message": raw}
            if version == desired:
                attempts[host] = int(detail.get("attempt") or 0)
            if state.endswith("/failure"):
                failures[host] = {"version": version, **detail}
    hosts = sorted(set(records).union(*running.values()))
    root = keys.updating(desired) if desired else ""
    updating = {key[len(root) :] for key in store.range(root)} if desired else set()
    rows = []
    for host in hosts:
        rec = records.get(host)
        versions = sorted(v for v, names in running.items() if host in names)
        failure = failures.get(host, {})
        rows.append(
            {
                "host": host,
                "running": ", ".join(versions) or "-",
                "state": rec.service if rec and rec.service else "-",
                "state_version": rec.version if rec and rec.version else "",
                "provisioned": rec.provisioned if rec and rec.provisioned else "",
                "converged": desired in versions and not failed_at(rec, desired),
                "updating": host in updating,
                "attempts": attempts.get(host, 0),
                "message": failure.get("message", ""),
                "log": failure.get("log", ""),
            }
        )
    by_version = {v: len(names) for v, names in sorted(running.items())}
    by_state: dict[str, int] = {}
    for row in rows:
        key = f"{row['state']} {row['state_version']}".strip()
        by_state[key] = by_state.get(key, 0) + 1
    triggers = history(store, keys)
    return {
        "current_version": shown_desired,
        "triggered_at": triggers[-1].at if triggers else None,
        "running": by_version,
        "states": dict(sorted(by_state.items())),
        "converged": sum(1 for r in rows if r["converged"]),
        "hosts": rows,
    }
