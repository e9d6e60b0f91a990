"""A host's lifecycle in the store, changed only by compare-and-swap transactions.

A host is in exactly one *service state* (seed 003): ``configured/success``,
``configured/failure``, ``validated/success`` or ``validated/failure``, for one version.
``/state/<host>`` says which; a change compares it, deletes the old status key and
writes the new one and ``/state/<host>`` in one transaction, so two writers racing on a
host never leave it in two states: the loser reads again and tries again.

Provisioning is a state of its own beside it (``provisioned/success|failure``), kept in
the same ``/state/<host>`` record and written the same way.

The moves allowed between service states are a table (:data:`MOVES`); a host with no
state may only be configured first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ephyra.errors import IllegalTransition, StoreError
from ephyra.versions.keys import RESULTS, SERVICE_STATES, Keys, check_name
from ephyra.versions.store import Compare, Delete, Lease, Op, Put, Store

ATTEMPTS = 100  # CAS rounds before giving up: only a storm of writers on one host needs more

CONFIGURED = ("configured/success", "configured/failure")
VALIDATED = ("validated/success", "validated/failure")

#: (from, to) service-state moves, and why each exists. ``None``: the host has no state.
MOVES: dict[tuple[str | None, str], str] = {
    **{(None, new): "first configuration of a host" for new in CONFIGURED},
    **{
        (old, new): "configured again (a new version, or a retry)"
        for old in SERVICE_STATES
        for new in CONFIGURED
    },
    **{("configured/success", new): "validation after a configuration" for new in VALIDATED},
    **{(old, new): "validated again" for old in VALIDATED for new in VALIDATED},
}


@dataclass(frozen=True)
class HostState:
    """What ``/state/<host>`` holds: the service state and the provisioning, each with its
    version."""

    service: str | None = None
    version: str | None = None
    provisioned: str | None = None  # "success" or "failure"
    provisioned_version: str | None = None

    @classmethod
    def parse(cls, raw: str | None) -> HostState:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(
            data.get("service"),
            data.get("version"),
            data.get("provisioned"),
            data.get("provisioned_version"),
        )

    def dump(self) -> str:
        return json.dumps({k: v for k, v in self.__dict__.items() if v is not None}, sort_keys=True)


def failed_at(state: HostState | None, version: str | None) -> bool:
    """True when the host's service state is a failure at ``version``."""
    return bool(state and state.version == version and (state.service or "").endswith("/failure"))


def record(message: str = "", log: str = "", **extra: Any) -> str:
    """The value of a status key: when, what happened, and where the full log is."""
    data = {"at": round(time.time(), 3), "message": message, "log": log, **extra}
    return json.dumps({k: v for k, v in data.items() if v not in ("", None)}, sort_keys=True)


Change = Callable[[HostState], tuple[HostState, list[Op]]]


def _swap(
    store: Store,
    keys: Keys,
    host: str,
    change: Change,
    known: HostState | None = None,
    also: Sequence[Op] = (),
) -> HostState:
    """Apply ``change(old) -> (new, ops)`` to ``host`` with compare-and-swap, retrying.
    ``known``: the state the caller last wrote, tried first without reading it (a writer
    that is the only one changing its host saves a read); ``also``: more operations for
    the same transaction."""
    check_name("host", host)
    for _ in range(ATTEMPTS):
        if known is not None:
            old, known = known, None
            raw: str | None = old.dump() if old != HostState() else None
        else:
            raw = store.get(keys.state(host))
            old = HostState.parse(raw)
        new, ops = change(old)
        ops = [*ops, Put(keys.state(host), new.dump()), *also]
        if store.txn([Compare(keys.state(host), raw)], ops):
            return new
    raise StoreError(f"{host}: {ATTEMPTS} writers in a row changed its state first; try again")


def set_state(
    store: Store,
    keys: Keys,
    host: str,
    state: str,
    version: str,
    value: str = "",
    *,
    known: HostState | None = None,
    also: Sequence[Op] = (),
) -> HostState:
    """Put ``host`` in service ``state`` (``stage/result``) for ``version``, in one
    transaction with the operations ``also`` (see :func:`_swap` for ``known``)."""
    if state not in SERVICE_STATES:
        raise IllegalTransition(f"{state!r} is not a service state ({', '.join(SERVICE_STATES)})")
    check_name("version", version)

    def change(old: HostState) -> tuple[HostState, list[Op]]:
        if (old.service, state) not in MOVES:
            raise IllegalTransition(
                f"{host} is {old.service or 'in no state'}"
                f"{f' for {old.version}' if old.version else ''}: it cannot become {state}"
            )
        ops: list[Op] = []
        new_key = keys.status(state, version, host)
        if old.service and old.version:
            old_key = keys.status(old.service, old.version, host)
            if old_key != new_key:
                ops.append(Delete(old_key))
        ops.append(Put(new_key, value or record()))
        return HostState(state, version, old.provisioned, old.provisioned_version), ops

    return _swap(store, keys, host, change, known, also)


def set_provisioned(
    store: Store, keys: Keys, host: str, result: str, version: str, value: str = ""
) -> HostState:
    """Record how the host's provisioning went (``success`` or ``failure``); no lease:
    these keys stay until the host is removed (:func:`forget`)."""
    if result not in RESULTS:
        raise IllegalTransition(f"provisioning ends in success or failure, not {result!r}")
    check_name("version", version)

    def change(old: HostState) -> tuple[HostState, list[Op]]:
        ops: list[Op] = []
        new_key = keys.status(f"provisioned/{result}", version, host)
        if old.provisioned and old.provisioned_version:
            old_key = keys.status(f"provisioned/{old.provisioned}", old.provisioned_version, host)
            if old_key != new_key:
                ops.append(Delete(old_key))
        ops.append(Put(new_key, value or record()))
        return HostState(old.service, old.version, result, version), ops

    return _swap(store, keys, host, change)


def state_of(store: Store, keys: Keys, host: str) -> HostState:
    return HostState.parse(store.get(keys.state(host)))


def running_ops(
    keys: Keys,
    host: str,
    version: str,
    lease: Lease | None,
    value: str = "",
    previous: tuple[str, ...] = (),
) -> list[Op]:
    """What says ``host`` runs ``version`` now (under the host's lease) and no longer
    the ``previous`` versions it was reported running."""
    check_name("version", version)
    ops: list[Op] = [Delete(keys.running(v, host)) for v in previous if v != version]
    ops.append(Put(keys.running(version, host), value or record(), lease))
    return ops


def report_running(
    store: Store,
    keys: Keys,
    host: str,
    version: str,
    lease: Lease | None,
    value: str = "",
    previous: tuple[str, ...] = (),
) -> None:
    """:func:`running_ops` in one transaction."""
    store.txn([], running_ops(keys, host, version, lease, value, previous))


def running_versions(store: Store, keys: Keys) -> dict[str, set[str]]:
    """version -> hosts reported running it."""
    root = keys.running()
    found: dict[str, set[str]] = {}
    for key in store.range(root):
        version, name = keys.relative(key, root)[:2]
        found.setdefault(version, set()).add(name)
    return found


def forget(store: Store, keys: Keys, host: str) -> None:
    """Remove every status of a host that was taken out of service."""
    for _ in range(ATTEMPTS):
        raw = store.get(keys.state(host))
        old = HostState.parse(raw)
        ops: list[Op] = [Delete(keys.state(host))]
        if old.service and old.version:
            ops.append(Delete(keys.status(old.service, old.version, host)))
        if old.provisioned and old.provisioned_version:
            ops.append(
                Delete(keys.status(f"provisioned/{old.provisioned}", old.provisioned_version, host))
            )
        if store.txn([Compare(keys.state(host), raw)], ops):
            return
    raise StoreError(f"{host}: its state kept changing; try again")


def states(store: Store, keys: Keys) -> Mapping[str, HostState]:
    """Every host's state record, in one range read."""
    root = keys.state()
    return {key[len(root) :]: HostState.parse(raw) for key, raw in store.range(root).items()}
