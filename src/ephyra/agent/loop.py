"""``ephyra agent``: the part of Ephyra that runs on each host (seed 003).

On its first start it records the host as ``provisioned/success`` (no lease: the host
stays known until it is removed). It keeps, under one lease of its own (refreshed every
third of its TTL): ``/members/<role>/<host>`` for each role,
``/running_version/<version>/<host>`` for what the host runs, and its ``/active_roles``;
if the agent or its host dies, all of it drops out when the lease expires.

It watches ``/current_version``. When that is not what the host runs, it waits for its
turn (:mod:`ephyra.agent.turn`), marks itself updating, runs its strategy (its output to
a log file whose link goes into the status keys), records ``configured/success|failure``,
runs the validation command, records ``validated/success|failure``, and on success
reports the new running version, publishes its roles at it, and gives its turn back (in
the same transaction). A failed host keeps its slot: at most ``max_at_once`` hosts of a
role can fail before the role stops; it tries again after a backoff, up to the
``retries`` of the version's rules, and when a newer version is triggered, or when the
agent restarts.

If the store goes away (etcd restarted), every write is tried again until it lands;
nothing the agent learnt is lost, and a lease that expired meanwhile is replaced and
everything under it written again.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TextIO, TypeVar

from ephyra.agent.lease import LeaseKeeper
from ephyra.agent.turn import Turn
from ephyra.errors import LeaseExpired, StepFailed, StoreError, UsageError
from ephyra.names import check_version, is_version, shown
from ephyra.paths import in_state_dir, private_dir, private_file
from ephyra.strategies import shell
from ephyra.strategies.base import CHECK_TIMEOUT, Strategy, Target
from ephyra.versions import desired, lifecycle, roles
from ephyra.versions.keys import Keys, check_name
from ephyra.versions.lifecycle import HostState
from ephyra.versions.store import Delete, Lease, Op, Put, Store, Watched

T = TypeVar("T")
Say = Callable[[str], None]
#: The version under which a refused desired version is recorded
#: (``/status/configured/failure/malformed-desired-version/<host>``): the malformed
#: value itself is never part of a key, a path or a command.
REFUSED = "malformed-desired-version"


@dataclass(frozen=True)
class AgentConfig:
    host: str
    roles: Mapping[str, str]  # role -> the host's address in it
    strategy: Strategy
    interfaces: Mapping[str, str] = field(default_factory=dict)
    validate: str | None = None  # a shell command; exit 0 = the host works at the version
    validate_timeout: float = CHECK_TIMEOUT  # seconds the validate command may run
    log_dir: Path = Path(".")
    log_url: str | None = None  # template of the link to a log: {host} {version} {path}
    ttl: int = 10
    poll: float = 10.0  # the longest wait between two looks at the store (a watch wakes it)
    retry: float = 1.0  # pause between attempts while the store is away

    def __post_init__(self) -> None:
        check_name("host", self.host)
        for role in self.roles:
            check_name("role", role)
        if self.ttl < 2:
            raise UsageError("the lease TTL must be at least 2 seconds")
        if not self.validate_timeout > 0:
            raise UsageError("the validation timeout must be a positive number of seconds")


class Agent:
    def __init__(self, store: Store, keys: Keys, config: AgentConfig, say: Say = print) -> None:
        self.store = store
        self.keys = keys
        self.config = config
        self.say = say
        self.stop = threading.Event()
        self.running: str | None = None  # the version the host is known to run
        self.failed: str | None = None  # the version the host failed to reach
        self.refused: str | None = None  # the malformed desired version last refused
        self.turn: Turn | None = None
        self.lease: Lease | None = None
        self.state: HostState | None = None  # the host's state as this agent last wrote it
        self.keeper = LeaseKeeper(
            lambda ttl: store.lease(ttl),
            self._announce,
            config.ttl,
            self.stop,
            lambda text: self.say(f"{config.host}: {text}"),
        )
        self.attempts: dict[str, int] = {}  # version -> updates tried since the agent began
        self.retry_at: float | None = None  # when the failed version is tried again

    # -- the store, tried until it answers -------------------------------------------
    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        warned = False
        while True:
            lease = self.lease  # the one ``fn`` uses, or an older one (a no-op to replace)
            try:
                return fn()
            except LeaseExpired:  # writing again under the old lease can never work
                if self.stop.is_set():
                    raise
                self.keeper.replace(lease)
            except StoreError as exc:
                if self.stop.is_set():
                    raise
                if not warned:
                    self.say(f"{self.config.host}: {what}: {exc}; trying again")
                    warned = True
                self.stop.wait(self.config.retry)

    def _announce(self, lease: Lease) -> None:
        """Write, in one transaction, everything that lives under ``lease``: the host's
        membership of its roles, and what it runs (with its roles at that version). (A
        turn's places in its queues went with the old lease, not the slots of an update
        that started: a host caught mid-update finishes it.)"""
        self.lease = lease
        if self.turn is not None:
            self.turn.lease, self.turn.held = lease, []
        value = json.dumps({"roles": dict(self.config.roles), "since": round(time.time(), 3)})
        ops: list[Op] = [
            Put(self.keys.member(r, self.config.host), value, lease) for r in self.config.roles
        ]
        if self.running:
            ops += self._live_ops(self.running, previous=())
        self.store.txn([], ops)

    def _live_ops(self, version: str, previous: tuple[str, ...]) -> list[Op]:
        """The running version and the roles, under the current lease (read when called:
        a retry after the lease expired uses the new one)."""
        host = self.config.host
        return [
            *lifecycle.running_ops(self.keys, host, version, self.lease, previous=previous),
            *roles.publish_ops(
                self.keys, version, host, self.config.roles, self.config.interfaces, self.lease
            ),
        ]

    # -- the loop ---------------------------------------------------------------------
    def start(self) -> None:
        target = Target(self.config.host, "", kind="host")
        try:
            self.running = self.config.strategy.version(target) or None
        except StepFailed as exc:
            self.say(f"{self.config.host}: cannot tell the version it runs: {exc}")
        if self.running and not is_version(self.running):
            self.say(f"{self.config.host}: its version command printed {shown(self.running)}")
            self.running = None
        host = self.config.host
        state = self._retry("read state", lambda: lifecycle.state_of(self.store, self.keys, host))
        if self.running and lifecycle.failed_at(state, self.running):
            self.running = None  # it failed there: try again
        if state.provisioned is None:  # an agent that runs is a host that was provisioned
            state = self._retry(
                "record provisioned/success",
                lambda: lifecycle.set_provisioned(
                    self.store, self.keys, host, "success", self.running or "unknown"
                ),
            )
        self.state = state
        self.keeper.acquire()
        self.keeper.start()
        self.say(f"{self.config.host}: agent up, running {self.running or 'an unknown version'}")

    def run(self, once: bool = False) -> bool:
        """Follow ``/current_version`` until stopped (``once``: until the host runs it or
        failed at it). True if the host runs the desired version at the end."""
        self.start()
        watch = self._retry("watch", lambda: self.store.watch(self.keys.current_version))
        want: str | None = None
        try:
            while not self.stop.is_set():
                found = self._retry("read", lambda: desired.read(self.store, self.keys))
                want = self._checked(found)
                if once and found and not want:
                    return False  # refused
                retry = self.retry_at is not None and time.monotonic() >= self.retry_at
                if want and (want not in (self.running, self.failed) or retry):
                    self.retry_at = None
                    # a trigger during the update has woken the watch: no read needed
                    # to learn that nothing changed meanwhile
                    self.update(want)
                if once and want and want in (self.running, self.failed) and not self.retry_at:
                    return want == self.running
                left = self.retry_at - time.monotonic() if self.retry_at else self.config.poll
                watch.wait(max(0.0, min(self.config.poll, left)))
            return bool(want and want == self.running)
        finally:
            watch.cancel()

    def close(self) -> None:
        """Stop, and end the lease: this host's live keys go at once."""
        self.stop.set()
        if self.lease is not None:
            with contextlib.suppress(StoreError):  # else it expires by itself
                self.lease.revoke()

    def _checked(self, found: str | None) -> str | None:
        """``found`` (the desired version read) if it is a valid version; else None, and
        the refusal said and recorded once for that value."""
        if found is None or is_version(found):
            self.refused = None
            return found
        if found != self.refused:
            self.refused = found
            self._refuse(found)
        return None

    def _refuse(self, found: str) -> None:
        """Say and record (``configured/failure`` under :data:`REFUSED`) that the desired
        version is malformed; nothing runs for it."""
        try:
            check_version(found, f"desired version in {self.keys.current_version}")
        except UsageError as exc:
            reason = str(exc)
        self.say(f"{self.config.host}: {reason}; nothing done")
        self._state("configured/failure", REFUSED, reason, "")

    def update(self, version: str) -> None:
        """Wait for the turn to update to ``version``, then update (:meth:`_apply`); a
        turn for a version superseded meanwhile is given back unused."""
        host = self.config.host
        if self.turn is not None and self.turn.version != version:
            self._retry("give back the old turn", self.turn.give_back)
            self.turn = None
        assert self.lease is not None
        rules = self._retry("rules", lambda: desired.rules_of(self.store, self.keys, version))
        turn = self.turn = Turn(
            self.store, self.keys, host, list(self.config.roles), version, rules, self.lease
        )
        current = self.keys.current_version
        watched: tuple[Watched, ...] = (current,)
        watch = self._retry("watch", lambda: self.store.watch(*watched))
        try:
            said = ""
            first = True
            while not self.stop.is_set():
                why = self._retry("take a turn", partial(turn.take, watch.seen()))
                if why is None and (turn.started or (first and turn.free)):
                    # started by a transaction that found the version still desired; or
                    # nothing taken, nothing waited for, and the version was just read
                    break
                first = False
                superseded = turn.superseded  # a look in a queue reads the desired version
                if superseded is None:
                    now = self._retry("read", lambda: desired.read(self.store, self.keys))
                    superseded = now != version
                if superseded:
                    self.say(f"{host}: {version}: superseded before its turn")
                    self._retry("give back the turn", turn.give_back)
                    return
                if why is None:
                    break
                if (current, *turn.watched()) != watched:
                    # watch what moves it forward now (and a new trigger), from the revision
                    # of its look: a change in between wakes it at once
                    watch.cancel()
                    watched = (current, *turn.watched())
                    watch = self._retry(
                        "watch", partial(self.store.watch, *watched, after=turn.after)
                    )
                if why != said:
                    self.say(f"{host}: {version}: waiting: {why}")
                    said = why
                due = turn.due()
                watch.wait(self.config.poll if due is None else min(due, self.config.poll))
            else:
                return
        finally:
            watch.cancel()
        self._apply(version, turn)

    def _apply(self, version: str, turn: Turn) -> None:
        host = self.config.host
        log = self.config.log_dir / f"{host}-{version}.log"
        link = self._link(version, log)
        private_dir(log.parent, tighten=in_state_dir(log.parent))
        private_file(log)  # the output of commands may hold what others must not read
        self.attempts[version] = attempt = self.attempts.get(version, 0) + 1
        self.say(f"{host}: {version}: updating (attempt {attempt})")
        marker = self.keys.updating(version, host)
        self._retry("say it updates", lambda: self.store.put(marker, link, self.lease))
        with open(log, "a", encoding="utf-8") as out:
            done = self._steps(version, link, out, marker)
        if not done:
            self._retry("say it is done", lambda: self.store.delete(marker))
            return
        self._retry("give back the turn", turn.give_back)
        self.turn = None
        self.say(f"{host}: {version}: running")

    def _steps(self, version: str, link: str, out: TextIO, marker: str) -> bool:
        """Run the strategy, then the validation, recording each result; True if both
        succeeded. The validated success is written in one transaction with the running
        version, the roles and the end of the ``marker``."""

        def output(line: str) -> None:
            out.write(line + "\n")
            out.flush()

        target = Target(self.config.host, version, kind="host")
        try:
            change = self.config.strategy.upgrade(target, output)
        except StepFailed as exc:
            self._fail("configured/failure", version, str(exc), link)
            return False
        done = f"{change.before or '?'} -> {change.after}"
        self._state("configured/success", version, done, link)
        if self.config.validate:
            try:
                shell.run(
                    self.config.validate,
                    target,
                    output,
                    what="validation",
                    timeout=self.config.validate_timeout,
                )
            except StepFailed as exc:
                self._fail("validated/failure", version, str(exc), link)
                return False
        previous = (self.running,) if self.running else ()
        # the lease is not replaced between this write and what the agent then knows it
        # runs: a re-announcement writes either the old version under a lease that then
        # goes (and this write is made again under the new one), or the new version
        with self.keeper.steady:
            self._state(
                "validated/success",
                version,
                "",
                link,
                also=lambda: [
                    *self._live_ops(version, previous),
                    Delete(marker),
                    *(self.turn.release_ops() if self.turn else ()),
                ],
            )
            self.running, self.failed = version, None
        return True

    def _link(self, version: str, log: Path) -> str:
        if not self.config.log_url:
            return log.resolve().as_uri()
        return self.config.log_url.format(host=self.config.host, version=version, path=log)

    def _state(
        self,
        state: str,
        version: str,
        message: str,
        link: str,
        also: Callable[[], list[Op]] = list,
    ) -> None:
        value = lifecycle.record(message, link, attempt=self.attempts.get(version))
        self.state = self._retry(
            f"record {state}",
            lambda: lifecycle.set_state(
                self.store,
                self.keys,
                self.config.host,
                state,
                version,
                value,
                known=self.state,
                also=also(),
            ),
        )

    def _fail(self, state: str, version: str, message: str, link: str) -> None:
        self._state(state, version, message, link)
        self.failed = version
        self.say(f"{self.config.host}: {version}: {state}: {message.splitlines()[0]}")
        attempt = self.attempts.get(version, 1)
        rules = self.turn.rules if self.turn else desired.Rules()
        if attempt <= rules.retries:  # the slot stays held meanwhile
            pause = desired.backoff(attempt)
            self.retry_at = time.monotonic() + pause
            self.say(f"{self.config.host}: {version}: trying again in {pause:.1f} s")
