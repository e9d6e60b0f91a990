"""Emptying one compute host: every server live-migrated (or evacuated) within the budget.

One loop per host, polling Nova: list the host's servers, watch the migrations under
way, start new ones as the budget allows, sleep. Each wait is bounded: a live migration
that outlives the timeout is force-completed or aborted, then the fallback policy
applies (cold migration, stop, or skip), and a server still stuck after that is left
where it is and reported. A drain never hangs.

Each server's fate (:mod:`ephyra.compute.fate`) is decided on a fresh read before it is
acted on, as the plan showed it: live or cold migration, stopped in place (started again
after the host's maintenance, never migrated), or left running in place and reported.

Nothing here needs the process that started a migration: a drain that starts again
(after a crash or a pause) adopts the migrations under way on its host, counts them
against the budget before it starts any other, and carries on.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ephyra.compute import fate as fates
from ephyra.compute.budget import Budget, Fallback, OnTimeout, Settings
from ephyra.compute.nova import MIGRATION_FINAL, TO_CONFIRM, ComputeCloud, Server, Service
from ephyra.engine.control import Control
from ephyra.errors import CloudError, ControlPlaneUnreachable

#: The outcome of a server left running on its host as its owner asked (fate notify).
LEFT = "left"
#: Outcomes of servers left on the host because the fallback policy or their fate said so.
LEFT_BY_POLICY = frozenset({"skipped", "stopped", LEFT})


class How:
    LIVE = "live"
    COLD = "cold"
    EVACUATE = "evacuate"
    STOP = "stop"


#: task_state of a server whose move is under way, and the kind of move it is.
ADOPTABLE = {
    "migrating": How.LIVE,
    "resize_prep": How.COLD,
    "resize_migrating": How.COLD,
    "resize_migrated": How.COLD,
    "resize_finish": How.COLD,
    "rebuilding": How.EVACUATE,
    "rebuild_block_device_mapping": How.EVACUATE,
    "rebuild_spawning": How.EVACUATE,
    "powering-off": How.STOP,
}


@dataclass
class Flight:
    """A server's move under way."""

    server: Server
    how: str
    started: float
    escalated: list[str] = field(default_factory=list)
    begun: bool = False  # Nova accepted it (an API refusal is not a move that failed)
    timeout: float = 0.0  # its own (ephyra:migration_timeout), else the settings'
    why: str = ""  # why it is this kind of move (a fate other than the one asked)


class HostRecord:
    """What the journal keeps of one host: its service before, and every server's fate."""

    def __init__(self, load: Callable[[], dict[str, Any]], save: Callable[[dict[str, Any]], None]):
        self.data = load()
        self._save = save

    def save(self, **changes: Any) -> None:
        self.data.update(changes)
        self._save(self.data)

    @property
    def servers(self) -> dict[str, dict[str, Any]]:
        servers: dict[str, dict[str, Any]] = self.data.setdefault("servers", {})
        return servers

    def server(self, server: Server, **changes: Any) -> None:
        self.servers.setdefault(server.id, {"name": server.name, "project": server.project})
        self.update(server.id, **changes)

    def update(self, server_id: str, **changes: Any) -> None:
        self.servers.setdefault(server_id, {}).update(changes)
        self.save()


class Events:
    """Where a drain reports: the run's observer and metrics (see the runner)."""

    def started(self, host: str, server: Server, how: str) -> None: ...
    def finished(self, host: str, server: Server, how: str, outcome: str, detail: str) -> None: ...
    def message(self, text: str) -> None: ...


@dataclass
class DrainResult:
    host: str
    moved: int
    left: dict[str, str]  # server label -> why it is still on the host
    stuck: bool  # something could not be moved though policy asked it to be
    seconds: float


def most_constrained_first(servers: list[Server]) -> list[Server]:
    """Servers whose budgets will make them wait longest go first: those sharing a server
    group with the most others still to move, then a project with the most others. The
    longest chain of one-after-another moves starts at once, so it ends soonest."""
    groups: Counter[str] = Counter(g for s in servers for g in s.groups)
    projects: Counter[str] = Counter(s.project for s in servers)

    def key(server: Server) -> tuple[int, int, str]:
        chain = max((groups[g] for g in server.groups), default=0)
        return (-chain, -projects[server.project], server.name)

    return sorted(servers, key=key)


class Drain:
    def __init__(
        self,
        cloud: ComputeCloud,
        service: Service,
        settings: Settings,
        budget: Budget,
        control: Control,
        record: HostRecord,
        events: Events,
        groups: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.cloud = cloud
        self.host = service.host
        self.evacuating = service.forced_down and not service.up
        self.settings = settings
        self.budget = budget
        self.control = control
        self.record = record
        self.events = events
        self.groups = groups
        self.flights: dict[str, Flight] = {}
        self.left: dict[str, tuple[str, str]] = {}  # server id -> (outcome, why it stays)

    # -- the loop -----------------------------------------------------------------
    def adopt(self) -> None:
        """Count the moves already under way on this host (a resumed run's, or anyone's)."""
        for server in self.cloud.servers_on(self.host, self.groups):
            how = ADOPTABLE.get(server.task_state or "")
            if server.status == "VERIFY_RESIZE":
                how = How.COLD
            if how is not None and server.id not in self.flights:
                self._adopt(server, how)
        for sid, entry in self.record.servers.items():  # left the host while we were away
            if entry.get("outcome") == "moving" and sid not in self.flights:
                found = self.cloud.server(sid)
                if found is not None and found.host != self.host and not found.busy:
                    self.record.server(found, outcome="moved", to=found.host)

    def _adopt(self, server: Server, how: str) -> None:
        self.budget.take(self.host, server, force=True)
        timeout = self.decide(server).timeout or self.settings.migration_timeout
        self.flights[server.id] = Flight(
            server, how, time.monotonic(), ["adopted"], begun=True, timeout=timeout
        )
        self.events.started(self.host, server, how)

    def run(self) -> DrainResult:
        started = time.monotonic()
        moved_before = self._moved()
        self.adopt()
        while True:
            self.control.checkpoint()
            on_host = {s.id: s for s in self.cloud.servers_on(self.host, self.groups)}
            for sid in list(self.flights):
                self._watch_one(self.flights[sid], on_host.get(sid))
            waiting = [s for s in on_host.values() if s.id not in self.flights]
            waiting = [s for s in waiting if s.id not in self.left]
            for server in most_constrained_first(waiting):
                self._begin(server)
            live = [f for f in self.flights.values() if "halted" not in f.escalated]
            if not live and all(
                s.id in self.left or s.id in self.flights for s in on_host.values()
            ):
                break
            if (  # only stuck moves hold the slots: nothing here can ever start
                not live
                and self.budget.active() == 0
                and not any(self.budget.blocker(self.host, s) is None for s in waiting)
            ):
                for server in waiting:
                    if server.id not in self.left and server.id not in self.flights:
                        self._leave(
                            server, "blocked", "not moved: the budget is held by stuck moves"
                        )
                break
            self.control.sleep(self.settings.poll)
        for flight in self.flights.values():  # halted ones: still under way in Nova
            why = "stuck: " + ", ".join(flight.escalated)
            self._leave(flight.server, "stuck", why, how=flight.how, keep_slot=True)
        return DrainResult(
            host=self.host,
            moved=self._moved() - moved_before,
            left={self._label(sid): why for sid, (_, why) in self.left.items()},
            stuck=any(outcome not in LEFT_BY_POLICY for outcome, _ in self.left.values()),
            seconds=time.monotonic() - started,
        )

    def _moved(self) -> int:
        return sum(1 for e in self.record.servers.values() if e.get("outcome") == "moved")

    def _label(self, sid: str) -> str:
        entry = self.record.servers.get(sid, {})
        return f"{entry.get('name', sid)} ({sid[:8]})"

    # -- starting moves -------------------------------------------------------------
    def _begin(self, listed: Server) -> None:
        if not listed.busy and self.budget.blocker(self.host, listed) is not None:
            return  # its turn has not come
        # The host-filtered list can still show a server that has just left: decide on a
        # fresh read, so that nothing is ever moved twice.
        fresh = self.cloud.server(listed.id)
        if fresh is None or fresh.host != self.host:
            return
        server = replace(fresh, groups=listed.groups)
        if server.busy:  # someone else's task: wait for it, counting it as a move
            how = ADOPTABLE.get(server.task_state or "")
            if how is not None:
                self._adopt(server, how)
            return
        decision = self.decide(server)
        self.record.server(server, fate=decision.fate, asked=decision.asked.value)
        how = {
            fates.EVACUATE: How.EVACUATE,
            fates.Fate.LIVE: How.LIVE,
            fates.Fate.COLD: How.COLD,
            fates.Fate.STOP: How.STOP,
        }.get(decision.fate)
        if how == How.STOP and server.status == "SHUTOFF":
            self._leave(server, "stopped", decision.why or "stopped already")
            return
        if how is None:
            outcome = {fates.Fate.NOTIFY: LEFT, fates.SKIP: "skipped"}.get(decision.fate)
            why = decision.why or f"left running on {self.host} (asked {decision.asked})"
            self._leave(server, outcome or "error", why)
            return
        if not self.budget.take(self.host, server):
            return
        timeout = decision.timeout or self.settings.migration_timeout
        self._start(Flight(server, how, time.monotonic(), timeout=timeout, why=decision.why))

    def decide(self, server: Server) -> fates.Decision:
        """The server's fate, as planned: its image's properties read once per image (one
        that cannot be read is taken as having none)."""
        try:
            image = self.cloud.image_properties(server.image)
        except ControlPlaneUnreachable:
            raise
        except CloudError as exc:
            self.events.message(f"{server.label}: its image's properties unread: {exc}")
            image = {}
        return fates.decide(server, image, self.settings, self.evacuating)

    def _start(self, flight: Flight) -> None:
        server, target = flight.server, self.settings.target
        calls = {
            How.LIVE: lambda: self.cloud.live_migrate(server.id, target),
            How.COLD: lambda: self.cloud.cold_migrate(server.id, target),
            How.EVACUATE: lambda: self.cloud.evacuate(server.id, target),
            How.STOP: lambda: self.cloud.stop(server.id),
        }
        try:
            calls[flight.how]()
        except ControlPlaneUnreachable:
            self.budget.give_back(server.id)
            raise
        except CloudError as exc:
            self.budget.give_back(server.id)
            self._failed(flight, str(exc))
            return
        flight.started = time.monotonic()
        flight.begun = True
        self.flights[server.id] = flight
        self.record.server(server, outcome="moving", how=flight.how, source=self.host)
        self.events.started(self.host, server, flight.how)

    # -- watching moves ---------------------------------------------------------------
    def _watch_one(self, flight: Flight, on_host: Server | None) -> None:
        """Watch one move; an API error about this server fails this server only."""
        try:
            self._watch(flight, on_host)
        except ControlPlaneUnreachable:
            raise
        except CloudError as exc:
            self.flights.pop(flight.server.id, None)
            self.budget.stuck(flight.server.id)  # Nova may still hold it: keep its slot
            shown = flight.how if flight.begun else "-"
            why = f"{flight.how}: {exc}"
            self._leave(flight.server, "failed", why, how=shown, keep_slot=True)

    def _watch(self, flight: Flight, on_host: Server | None) -> None:
        if "halted" in flight.escalated:
            return
        server = on_host
        # Nova marks the migration record over only after the server is in place: wait
        # for that, then read the server afresh (an idle server on the source seen before
        # may just be between two of Nova's writes).
        if (server is None or not server.busy) and self._settled(flight.server.id):
            server = self.cloud.server(flight.server.id)
            if server is None:  # deleted by its owner meanwhile: nothing to move
                self._done(flight, "gone", "deleted while moving")
                return
            if self._ended(flight, server):
                return
        if time.monotonic() - flight.started > flight.timeout:
            self._escalate(flight, server or flight.server)

    def _ended(self, flight: Flight, server: Server) -> bool:
        """Act on a server whose move Nova has finished with; False if it is not over."""
        if server.status == "VERIFY_RESIZE" and server.task_state is None:
            # Nova marks the record confirmed a moment before the server leaves
            # VERIFY_RESIZE: confirm once, then wait.
            if "confirmed" not in flight.escalated:
                self.cloud.confirm_resize(server.id)
                flight.escalated.append("confirmed")
            return True
        if server.status == "ERROR":
            self._done(flight, "failed", "server went to ERROR")
        elif server.busy:
            return False
        elif flight.how == How.STOP:
            if server.status != "SHUTOFF":
                return False
            self.record.server(server, stopped_by_run=True)
            why = flight.why or f"asked {How.STOP}"
            self._done(flight, "stopped", f"stopped in place, to be started again ({why})")
        elif server.host != self.host:
            self._done(flight, "moved", f"to {server.host}", to=server.host or "")
        else:  # the move ended where it began
            self._failed(flight, self._why_not_moved(server))
        return True

    def _settled(self, server_id: str) -> bool:
        """The server's latest migration record, if any, is over: until then Nova still
        holds the source host (and a watcher of the migrations API sees a move under way)."""
        latest = self.cloud.migrations(server_id)[:1]
        return not latest or latest[0].get("status") in (*MIGRATION_FINAL, TO_CONFIRM)

    def _why_not_moved(self, server: Server) -> str:
        for migration in self.cloud.migrations(server.id)[:1]:
            return f"migration {migration.get('id')} ended {migration.get('status')}"
        return f"still on {self.host} ({server.status})"

    def _escalate(self, flight: Flight, server: Server) -> None:
        """The move outlived the timeout: force-complete, then abort, then halt."""
        flight.started = time.monotonic()
        timeout = f"{flight.timeout:.0f}s"
        if flight.how == How.LIVE and "aborted" not in flight.escalated:
            migration = self.cloud.live_migration(server.id)
            if migration is not None:
                mid = int(migration["id"])
                force = self.settings.on_timeout is OnTimeout.FORCE_COMPLETE
                if force and "force-completed" not in flight.escalated:
                    self.cloud.force_complete(server.id, mid)
                    flight.escalated.append("force-completed")
                    self.events.message(f"{server.label}: live migration over {timeout}: forced")
                    return
                self.cloud.abort_live_migration(server.id, mid)
                flight.escalated.append("aborted")
                self.events.message(f"{server.label}: live migration over {timeout}: aborted")
                return
        flight.escalated.append("halted")
        self.budget.stuck(server.id)
        self.events.message(
            f"{server.label}: {flight.how} move still under way after "
            f"{' then '.join(flight.escalated[:-1]) or timeout}: halted, reported"
        )

    # -- endings -------------------------------------------------------------------
    def _failed(self, flight: Flight, why: str) -> None:
        """A move that did not happen: the fallback, unless it was the fallback already."""
        server = flight.server
        self.flights.pop(server.id, None)
        shown = flight.how if flight.begun else "-"
        if flight.how != How.LIVE:
            self._leave(server, "failed", f"{flight.how} failed: {why}", how=shown)
            return
        self.events.finished(self.host, server, shown, "failed", why)
        how = {Fallback.COLD: How.COLD, Fallback.STOP: How.STOP}.get(self.settings.fallback)
        if how is None:
            self._leave(server, "skipped", f"live migration failed ({why}); fallback skip")
            return
        self.events.message(f"{server.label}: {why}; fallback {how}")
        self.budget.take(self.host, server, force=True)  # it keeps its slot
        after = f"live migration failed; fallback {how}"
        self._start(
            Flight(
                server,
                how,
                time.monotonic(),
                [*flight.escalated, why],
                timeout=flight.timeout,
                why=after,
            )
        )

    def _done(self, flight: Flight, outcome: str, detail: str, *, to: str = "") -> None:
        server = flight.server
        self.flights.pop(server.id, None)
        self.budget.give_back(server.id)
        self.record.server(server, outcome=outcome, detail=detail, **({"to": to} if to else {}))
        if outcome not in ("moved", "gone"):
            self.left[server.id] = (outcome, detail)
        self.events.finished(self.host, server, flight.how, outcome, detail)

    def _leave(
        self, server: Server, outcome: str, why: str, *, how: str = "-", keep_slot: bool = False
    ) -> None:
        self.left[server.id] = (outcome, why)
        if not keep_slot:
            self.budget.give_back(server.id)
        self.record.server(server, outcome=outcome, detail=why)
        self.events.finished(self.host, server, how, outcome, why)
