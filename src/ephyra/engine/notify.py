"""Delivering a run's notifications: from the journal's events, in order, to each notifier
the run names, at least once.

Each notifier has its own thread and its own position in the run's events (the table
``ephyra_notified``), written after each notification it took: a process killed between a
send and that write sends the notification again (with the same id) from the next process
that delivers the run's events (its resume). A notifier that is down never stops or slows
the run's steps: its thread waits and tries again; at the run's end, delivery goes on for
``flush_seconds`` at most, and what is left waits in the journal.

Which events become notifications (:func:`notification`):

=================  ==========================================  ========================
event              notification                                payload
=================  ==========================================  ========================
run.started        ``ephyra.run.start``                        title, total, done
run.state          ``ephyra.run.state``                        state
run.finished       ``ephyra.run.end``                          state
step (failed)      ``ephyra.step.error`` (ERROR)               node, step, seconds
notice             its own event type (a kind's, a host's)     what the notice carries
=================  ==========================================  ========================
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ephyra.engine import events
from ephyra.errors import EphyraError, NotifyFailed, NotifyRefused
from ephyra.notifiers.base import ERROR, INFO, Backoff, Notification
from ephyra.urls import redact_text

if TYPE_CHECKING:
    from ephyra.notifiers.base import Notifier
    from ephyra.notifiers.config import NotifyConfig

LOG = logging.getLogger(__name__)
#: How often a notifier's thread looks for new events when not woken.
POLL = 0.5
#: Events read at once.
BATCH = 200
#: The states that make a notification an error.
ERROR_STATES = frozenset({"failed"})
#: The waits of a notifier's thread between two failed deliveries.
AGAIN = Backoff(attempts=1_000_000, first=0.5, most=30.0)
#: The key of a run's record that names its notifiers.
META = "notify"


def _clean(value: Any) -> Any:
    """A payload's value without credentials in its texts."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def notification(event: Mapping[str, Any]) -> Notification | None:
    """The notification of one event of the journal (:func:`events.read`), if any."""
    base = {"seq", "run", "kind", "time", "type"}
    body = {k: v for k, v in event.items() if k not in base}
    type_ = event["type"]
    priority = INFO
    if type_ == "run.started":
        name = "ephyra.run.start"
    elif type_ == "run.finished":
        name = "ephyra.run.end"
    elif type_ == "run.state":
        name = "ephyra.run.state"
    elif type_ == "step" and body.get("status") == "failed":
        name, priority = "ephyra.step.error", ERROR
        body.pop("status")
    elif type_ == events.NOTICE:
        name = str(body.pop("event"))
        priority = ERROR if str(body.pop("priority", INFO)).upper() == ERROR else INFO
    else:
        return None
    if body.get("state") in ERROR_STATES:
        priority = ERROR
    return Notification(
        id=f"{event['run']}.{event['seq']}",
        event_type=name,
        run=str(event["run"]),
        kind=str(event["kind"]),
        time=float(event["time"]),
        seq=int(event["seq"]),
        payload=_clean(body),
        priority=priority,
    )


# -- positions -------------------------------------------------------------------------
def position(engine: sa.Engine, run_id: str, notifier: str) -> int:
    """The seq of the last event of the run delivered to ``notifier`` (0: none yet)."""
    table = events.NOTIFIED
    query = sa.select(table.c.seq).where(table.c.run_id == run_id, table.c.notifier == notifier)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def advance(engine: sa.Engine, run_id: str, notifier: str, seq: int) -> None:
    table = events.NOTIFIED
    where = (table.c.run_id == run_id) & (table.c.notifier == notifier)
    with engine.begin() as conn:
        if conn.execute(table.update().where(where).values(seq=seq)).rowcount == 0:
            conn.execute(table.insert().values(run_id=run_id, notifier=notifier, seq=seq))


# -- choosing --------------------------------------------------------------------------
def config() -> NotifyConfig:
    from ephyra.notifiers.config import load

    return load()


def chosen(names: Sequence[str] | None) -> list[str]:
    """The notifiers a new run tells: ``names`` (each configured), or the configured
    default; an unknown name is a UsageError."""
    return config().chosen(names)


def of_run(meta: Mapping[str, Any]) -> list[str]:
    """The notifiers a run tells: those kept with it, else (a run made before they were
    kept) the configured default."""
    kept = meta.get(META)
    if isinstance(kept, list):
        return [str(n) for n in kept]
    try:
        return config().default
    except EphyraError as exc:
        LOG.error("no notification delivered: %s", exc)
        return []


# -- delivering ------------------------------------------------------------------------
class Courier:
    """One notifier's deliveries of one run's events, on a thread of its own."""

    def __init__(self, engine: sa.Engine, run_id: str, notifier: Notifier) -> None:
        self.engine = engine
        self.run_id = run_id
        self.notifier = notifier
        self.woken = threading.Event()
        self.stopping = threading.Event()
        self.deadline = float("inf")
        self.all_sent = False  # every event of the run up to its end delivered
        self.thread = threading.Thread(
            target=self._loop, name=f"ephyra-notify-{notifier.name}", daemon=True
        )

    def _loop(self) -> None:
        failures = 0
        try:
            seq = position(self.engine, self.run_id, self.notifier.name)
            while time.monotonic() < self.deadline:
                found = events.read(self.engine, self.run_id, seq, BATCH)
                if not found:
                    if self.stopping.is_set():
                        self.all_sent = True
                        return
                    self.woken.wait(POLL)
                    self.woken.clear()
                    continue
                for event in found:
                    if not self._deliver(event, failures):
                        failures += 1
                        time.sleep(min(AGAIN.delay(failures), self._left()))
                        break
                    failures = 0
                    seq = int(event["seq"])
                    advance(self.engine, self.run_id, self.notifier.name, seq)
        except (EphyraError, sa.exc.SQLAlchemyError) as exc:
            LOG.error("notifier %s of run %s stopped: %s", self.notifier.name, self.run_id, exc)
        finally:
            self.notifier.close()

    def _left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def _deliver(self, event: Mapping[str, Any], failures: int) -> bool:
        """Whether the event is done with (sent, refused for good, or not a notification);
        a failure is logged once until a delivery succeeds again."""
        note = notification(event)
        if note is None:
            return True
        try:
            self.notifier.send(note)
        except NotifyRefused as exc:
            LOG.warning("%s: %s not sent again", exc, note.id)
        except NotifyFailed as exc:
            level = logging.DEBUG if failures else logging.WARNING
            LOG.log(level, "%s (%s %s: sent again later)", exc, note.event_type, note.id)
            return False
        return True


class Delivery:
    """The deliveries of one run's notifications to its notifiers, while a process drives
    it: started, woken after each event, and at the end flushed for a bounded time."""

    def __init__(
        self, engine: sa.Engine, run_id: str, notifiers: Sequence[Notifier], flush: float
    ) -> None:
        self.flush_seconds = flush
        self.couriers = [Courier(engine, run_id, n) for n in notifiers]

    def start(self) -> None:
        for courier in self.couriers:
            courier.thread.start()

    def wake(self) -> None:
        for courier in self.couriers:
            courier.woken.set()

    def close(self) -> bool:
        """Deliver what is left for ``flush_seconds`` at most; whether all of it went."""
        deadline = time.monotonic() + self.flush_seconds
        for courier in self.couriers:
            courier.deadline = deadline
            courier.stopping.set()
            courier.woken.set()
        for courier in self.couriers:
            courier.thread.join(max(0.0, deadline - time.monotonic()))
        late = [c.notifier.name for c in self.couriers if not c.all_sent]
        if late:
            LOG.warning(
                "notifications not all delivered to %s within %.0fs: they wait in the "
                "journal for the next process to deliver this run's events",
                ", ".join(late),
                self.flush_seconds,
            )
        return not late


def delivery(engine: sa.Engine, run_id: str, names: Sequence[str]) -> Delivery | None:
    """The delivery of a run's events to the notifiers ``names``; None if there are none or
    they cannot be made (said on the log: the run goes on, its events wait in the journal)."""
    if not names:
        return None
    try:
        found = config()
    except EphyraError as exc:
        LOG.error("run %s: no notification delivered: %s", run_id, exc)
        return None
    notifiers = []
    for name in dict.fromkeys(names):
        try:
            notifiers.append(found.build(found.chosen([name])[0]))
        except EphyraError as exc:  # no longer configured, or unfit: the others go on
            LOG.error("run %s: nothing delivered to %s: %s", run_id, name, exc)
    if not notifiers:
        return None
    return Delivery(engine, run_id, notifiers, found.flush_seconds)


@contextlib.contextmanager
def delivering(
    recorder: events.Recorder, engine: sa.Engine, run_id: str, names: Sequence[str]
) -> Iterator[None]:
    """Deliver the run's notifications while the block runs (woken by each event the
    ``recorder`` writes), and flush at its end."""
    found = delivery(engine, run_id, names)
    if found is None:
        yield
        return
    found.start()
    recorder.recorded = found.wake
    try:
        yield
    finally:
        recorder.recorded = lambda: None
        found.close()


def announce(
    engine: sa.Engine,
    run_id: str,
    kind: str,
    event_type: str,
    names: Sequence[str],
    **payload: Any,
) -> None:
    """A notice of something done outside a run's driver (``ephyra host maintenance``):
    recorded with the events of ``run_id`` and delivered now (flushed for a bounded time)."""
    events.add(engine, run_id, kind, events.NOTICE, event=event_type, **payload)
    found = delivery(engine, run_id, names)
    if found is not None:
        found.start()
        found.close()
