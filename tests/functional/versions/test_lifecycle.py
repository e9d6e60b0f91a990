"""Host lifecycle: the moves allowed, and exactly one service state per host however many
writers race, on a real etcd and on SQLite."""

from __future__ import annotations

import contextlib
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ephyra.errors import IllegalTransition
from ephyra.versions import lifecycle
from ephyra.versions.keys import SERVICE_STATES, Keys
from ephyra.versions.store import Store, open_store


def service_keys(store: Store, keys: Keys) -> dict[str, list[str]]:
    """host -> its service-state status keys, from one range read of /status/."""
    root = keys.status()
    found: dict[str, list[str]] = {}
    for key in store.range(root):
        stage, result, version, host = keys.relative(key, root)
        if stage != "provisioned":
            found.setdefault(host, []).append(f"{stage}/{result}/{version}")
    return found


def test_a_host_moves_through_configured_and_validated_and_leaves_no_old_key(
    store: Store, keys: Keys
) -> None:
    with pytest.raises(IllegalTransition, match="h1 is in no state: it cannot become validated"):
        lifecycle.set_state(store, keys, "h1", "validated/success", "1.0")
    lifecycle.set_state(store, keys, "h1", "configured/failure", "1.0", lifecycle.record("apt"))
    with pytest.raises(IllegalTransition, match=r"configured/failure for 1\.0: it cannot become"):
        lifecycle.set_state(store, keys, "h1", "validated/success", "1.0")
    lifecycle.set_state(store, keys, "h1", "configured/success", "1.0")
    lifecycle.set_state(store, keys, "h1", "validated/failure", "1.0")
    lifecycle.set_state(store, keys, "h1", "validated/success", "1.0")
    lifecycle.set_state(store, keys, "h1", "configured/success", "2.0")
    assert service_keys(store, keys) == {"h1": ["configured/success/2.0"]}
    state = lifecycle.state_of(store, keys, "h1")
    assert (state.service, state.version) == ("configured/success", "2.0")


def test_provisioning_is_kept_beside_the_service_state(store: Store, keys: Keys) -> None:
    lifecycle.set_provisioned(store, keys, "h1", "failure", "1.0", lifecycle.record("no IP"))
    lifecycle.set_provisioned(store, keys, "h1", "success", "1.0")
    lifecycle.set_state(store, keys, "h1", "configured/success", "1.0")
    found = store.range(keys.status())
    assert sorted(k.removeprefix(keys.status()) for k in found) == [
        "configured/success/1.0/h1",
        "provisioned/success/1.0/h1",
    ]
    lifecycle.forget(store, keys, "h1")
    assert store.range(keys.status()) == {}
    assert lifecycle.state_of(store, keys, "h1") == lifecycle.HostState()


def test_a_bad_name_is_refused_before_anything_is_written(store: Store, keys: Keys) -> None:
    with pytest.raises(Exception, match="host name 'a/b' refused"):
        lifecycle.set_state(store, keys, "a/b", "configured/success", "1.0")
    with pytest.raises(IllegalTransition, match="not a service state"):
        lifecycle.set_state(store, keys, "h1", "deployed/success", "1.0")
    assert store.range(keys.prefix + "/") == {}


MOVE = st.tuples(st.integers(0, 2), st.sampled_from(SERVICE_STATES), st.sampled_from("123"))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=st.lists(st.lists(MOVE, min_size=1, max_size=12), min_size=2, max_size=6))
def test_racing_agents_never_leave_a_host_in_two_states(
    store_url: str, plans: list[list[tuple[int, str, str]]]
) -> None:
    """Each agent applies its moves to three shared hosts, all at once; a checker reads
    /status/ over and over meanwhile. Every snapshot and the end state show each host in at
    most one service state, the one its /state/ record names."""
    keys = Keys(f"/race-{uuid.uuid4().hex[:10]}")
    seen: list[dict[str, list[str]]] = []
    done = threading.Event()
    errors: list[BaseException] = []
    start = threading.Barrier(len(plans) + 1)

    def agent(moves: list[tuple[int, str, str]]) -> None:
        try:
            with open_store(store_url) as mine:
                start.wait()
                for host, state, version in moves:
                    # a move the table refuses writes nothing, as it should
                    with contextlib.suppress(IllegalTransition):
                        lifecycle.set_state(mine, keys, f"h{host}", state, f"{version}.0")
        except BaseException as exc:
            errors.append(exc)

    def checker() -> None:
        with open_store(store_url) as mine:
            start.wait()
            while not done.is_set():
                seen.append(service_keys(mine, keys))

    threads = [threading.Thread(target=agent, args=(p,)) for p in plans]
    watcher = threading.Thread(target=checker)
    for t in [*threads, watcher]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    assert not errors, errors
    with open_store(store_url) as store:
        final = service_keys(store, keys)
        seen.append(final)
        for snapshot in seen:
            for host, states in snapshot.items():
                assert len(states) == 1, f"{host} in {states}"
        for host, (state,) in final.items():
            record = lifecycle.state_of(store, keys, host)
            assert state == f"{record.service}/{record.version}"
