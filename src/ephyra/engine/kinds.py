"""Run kinds: what one kind of run (a forklift, an evacuation, an upgrade...) says of itself.

A kind is one class in one module, registered under the entry-point group ``ephyra.runs``
(the name of the entry point is the kind's name). It says what a start request carries, how
it is planned, what a new run records and locks, which driver moves it, and how its status
reads; :class:`ephyra.engine.service.RunService` does the rest of the life cycle (start,
queue on a board, resume, rollback, pause, abort, status, list) for every kind alike, the
command line builds ``ephyra COMMAND status|pause|resume|abort|rollback|list`` from it, and
the API its ``/v1/KIND/...`` routes.

A kind's module is imported to build the command line: at module level it imports only
this module and the standard library; what planning and driving need is imported inside
the methods that need it.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from ephyra.engine.states import Phase, RunState
from ephyra.errors import UsageError
from ephyra.names import check_name
from ephyra.plugins import entry_points

if TYPE_CHECKING:
    from ephyra.engine.driver import RunDriver
    from ephyra.engine.journal import Journal, RunInfo
    from ephyra.engine.metrics import RunMetrics
    from ephyra.progress import Observer

#: The entry-point group of run kinds.
GROUP = "ephyra.runs"

P = TypeVar("P")


class Resolver(Protocol):
    """What the inventory and credential sources a caller names stand for (everything
    local in-process; in ``ephyra serve``, only what its operator configured)."""

    def inventory(self, name: str) -> str: ...

    def credentials(self, name: str | None) -> str | None: ...

    def alertmanager(self, name: str) -> str:
        """The URL of the Alertmanager a specification names (its alarm gates, its
        silences): as given in-process, a configured name's in the server."""
        ...

    def probe(self, name: str) -> str:
        """The address or URL of a target a specification probes: as given in-process, a
        configured name's in the server."""
        ...


@dataclass(frozen=True)
class NewRun:
    """What a new run records: its kind's metadata, its items' first records, and the
    names of the locks held while a process drives it (kept with the run)."""

    meta: dict[str, Any]
    records: dict[str, dict[str, Any]]
    locks: list[str]


@dataclass(frozen=True)
class Shown:
    """A plan, as data and as the text ``plan`` prints."""

    data: dict[str, Any]
    text: str


class Detail(Protocol):
    """A kind's own part of a run's status (a dataclass of the kind's)."""

    def where(self) -> dict[str, Any]:
        """What the run works on, as the status's JSON gives it between phase and reason."""
        ...

    def lists(self) -> dict[str, Any]:
        """Its counts and the lists of its items, as the JSON gives them after reason."""
        ...


D = TypeVar("D", bound=Detail)


@dataclass(frozen=True)
class RunStatus(Generic[D]):
    """A run's status: what every kind says of a run, and the kind's own ``detail``.
    :meth:`to_dict` is the one place it becomes the JSON of ``status -f json`` and of the
    API's ``/v1/KIND/runs/RUN``."""

    id: str
    state: RunState
    phase: Phase | None
    reason: str
    detail: D

    @classmethod
    def of(cls, run: RunInfo, detail: D) -> RunStatus[D]:
        phase = run.phase
        return cls(run.id, run.state, Phase(phase) if phase else None, run.reason, detail)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "phase": None if self.phase is None else self.phase.value,
            **self.detail.where(),
            "reason": self.reason,
            **self.detail.lists(),
        }


@dataclass(frozen=True)
class View:
    """A status as ``status -f table`` prints it: lines, then tables of the status's lists
    (the key of each list and its columns)."""

    lines: list[str]
    tables: list[tuple[str, list[str]]]


@dataclass(frozen=True)
class Verbs:
    """The help of a kind's commands, in its own words."""

    plan: str = "print what a start would do (a dry run)"
    start: str = "plan and start a run, showing progress"
    resume: str = "continue a paused, failed or crashed run"
    rollback: str = "take back what the run did"
    pause: str = "ask a running run to stop at its next step boundary"
    abort: str = "stop a run for good"
    status: str = "where a run and each of its items are"
    list: str = "every run of this kind in the journal"


class RunKind(Generic[P]):
    """One kind of run. ``P`` is its plan; a subclass fills in the class attributes and
    the methods that raise NotImplementedError, and overrides the hooks it needs."""

    #: The kind's name: in the journal, in ``/v1/KIND/...``, and its entry point's name.
    name: ClassVar[str]
    #: The command it lives under (``ephyra COMMAND ...``) and the verb that starts a run.
    command: ClassVar[str]
    start_verb: ClassVar[str] = "start"
    #: For a kind in a nested group (``COMMAND = "host reallocation"``): its start also
    #: as this verb of the outer group (``ephyra host reallocate``); '' for none.
    start_alias: ClassVar[str] = ""
    #: One line for ``ephyra --help``, and the command's description.
    summary: ClassVar[str] = ""
    description: ClassVar[str] = ""
    verbs: ClassVar[Verbs] = Verbs()
    #: The policy action a start needs (``ephyra serve``).
    start_action: ClassVar[str] = "run:start"
    #: What its runs handle (nodes, hosts, units), and the status field that lists them.
    items: ClassVar[str] = "items"
    item_name: ClassVar[str] = "name"
    #: The columns of ``list``, and the run kinds it lists besides its own.
    list_columns: ClassVar[tuple[str, ...]] = ("id", "state", "created")
    also_lists: ClassVar[tuple[str, ...]] = ()
    #: Where the kind comes among the others (commands, API paths, listings); then by name.
    rank: ClassVar[int] = 100
    #: Said after an abort that no process had to be asked for: what stays as it is.
    after_abort: ClassVar[str] = ""
    #: An abort undoes what is half done (on_abort): then an abort that no process had to
    #: be asked for builds the run's driver here to do it.
    abort_undoes: ClassVar[bool] = False
    #: The settings a resume may change (``resume --concurrency N``: a whole number), with
    #: their help; :meth:`resumed` keeps them in the run's record, for later resumes too.
    resume_settings: ClassVar[Mapping[str, str]] = {}
    #: What ``finish`` does to a run that succeeded, making it final (its rollback is
    #: refused from then on: what it needs is gone); empty: the kind has no ``finish``.
    #: Its driver's :meth:`RunDriver.finish` does it.
    finish_help: ClassVar[str] = ""
    #: What ``preflight`` checks before a start (empty: the kind has no preflight); see
    #: :meth:`preflight`.
    preflight_help: ClassVar[str] = ""

    # -- a start request ---------------------------------------------------------------
    def body_type(self) -> type[Any]:
        """The pydantic model of a start (and plan) request."""
        raise NotImplementedError

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The command-line options of ``plan`` and ``start``."""

    def body_of(self, args: argparse.Namespace) -> Any:
        """A start request from the command line's options."""
        raise NotImplementedError

    def question(self, plan: Mapping[str, Any]) -> str:
        """What ``start`` asks on a terminal before it begins."""
        return "Start? [y/N] "

    # -- planning ----------------------------------------------------------------------
    def claims(self, body: Any) -> list[str]:
        """Locks known before planning: a start refuses at once if one is held."""
        return []

    def plan(self, body: Any, resolver: Resolver) -> P:
        raise NotImplementedError

    def shown(self, plan: P, body: Any) -> Shown:
        raise NotImplementedError

    def new_run(self, plan: P) -> NewRun:
        raise NotImplementedError

    # -- driving -----------------------------------------------------------------------
    def driver(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        plan: P | None = None,
    ) -> RunDriver:
        """The driver of ``run`` (``plan``: the one it was created from, when at hand)."""
        raise NotImplementedError

    def resumed(self, run: RunInfo, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The changes to the run's record that ``settings`` (of :attr:`resume_settings`,
        given to a resume) make, checked as a start checks them."""
        return {}

    def on_resume(self, driver: RunDriver) -> None:
        """Before a resume goes forward again (an upgrade retries its failed units)."""

    def on_abort(self, driver: RunDriver) -> None:
        """An abort, by the process that holds the run: undo what is half done (a forklift
        returns its nodes caught mid-move)."""

    def preflight(self, plan: P) -> list[dict[str, Any]]:
        """What a start of ``plan`` would meet, checked now: rows with a ``level`` (ok,
        warn, block); a row that blocks makes ``preflight`` exit 1."""
        raise NotImplementedError

    def no_rollback(self, journal: Journal, run: RunInfo) -> str:
        """Why ``run`` cannot be rolled back any more (it passed a point of no return),
        or '' when it can."""
        return ""

    # -- locks ---------------------------------------------------------------------------
    def locks_of(self, run: RunInfo) -> list[str]:
        """The names of the locks of ``run``, from its records: for a run made before they
        were kept with it. By default one lock of the run's own, which at least keeps two
        processes from driving it at once; a kind whose runs lock what they act on says
        which locks from its records."""
        return [f"run {self.name} {run.id}"]

    # -- reading -----------------------------------------------------------------------
    def status(self, journal: Journal, run: RunInfo) -> RunStatus[Any]:
        raise NotImplementedError

    def view(self, status: Mapping[str, Any]) -> View:
        """``status`` as ``status -f table`` prints it."""
        raise NotImplementedError

    def row(self, run: RunInfo) -> dict[str, Any]:
        """The run's row in ``list``."""
        return {"id": run.id, "state": run.state.value, "created": created(run)}

    def title(self, run: RunInfo) -> str:
        """The run in a few words (``ephyra run list``, the dashboard)."""
        return run.kind

    def total(self, run: RunInfo) -> int:
        """How many items the run handles."""
        return 0

    def tally(self, run: RunInfo, outcomes: Mapping[str, str]) -> tuple[int, int]:
        """How many of the run's items are done and how many failed, from the last outcome
        of each name its events gave (by default every name is an item of :meth:`total`)."""
        from ephyra.progress import DONE

        done = sum(1 for o in outcomes.values() if o.startswith(DONE))
        return done, sum(1 for o in outcomes.values() if o == "failed")


def cloud_option(
    parser: argparse.ArgumentParser, text: str = "cloud from clouds.yaml (default: OS_CLOUD)"
) -> None:
    """``--os-cloud NAME``, OS_CLOUD by default."""
    parser.add_argument("--os-cloud", default=os.environ.get("OS_CLOUD"), metavar="NAME", help=text)


def cloud_of(args: argparse.Namespace) -> str:
    """The cloud ``--os-cloud`` (or OS_CLOUD) names, checked."""
    if not args.os_cloud:
        raise UsageError("name the cloud: --os-cloud NAME or OS_CLOUD")
    return check_name(args.os_cloud, "--os-cloud")


def from_to_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--from CLOUD`` (OS_CLOUD by default) and ``--to CLOUD``: the two clouds of a move."""
    parser.add_argument(
        "--from",
        dest="source",
        default=os.environ.get("OS_CLOUD"),
        metavar="CLOUD",
        help=f"cloud A in clouds.yaml, the one {what} leave (default: OS_CLOUD)",
    )
    parser.add_argument(
        "--to", dest="target", required=True, metavar="CLOUD", help="cloud B in clouds.yaml"
    )


def from_to_of(args: argparse.Namespace) -> tuple[str, str]:
    """The clouds ``--from`` and ``--to`` name, checked."""
    if not args.source:
        raise UsageError("name cloud A: --from CLOUD or OS_CLOUD")
    return check_name(args.source, "--from"), check_name(args.target, "--to")


def host_lock(cloud: str, host: str) -> str:
    """The lock of one compute host of ``cloud``: every run that drains or changes it holds it."""
    return f"compute {cloud}/{host}"


def counts(rows: list[dict[str, Any]], key: str = "forward") -> dict[str, int]:
    """How many rows are in each state."""
    found: dict[str, int] = {}
    for row in rows:
        found[row[key]] = found.get(row[key], 0) + 1
    return found


def headline(status: Mapping[str, Any], where: str, tally: str | None = None) -> list[str]:
    """The first lines of a status: the run, its state and phase (a rolled-back run:
    "rolled back"), ``where`` (what it works on, from its leading space or comma), and
    ``tally``, where its items are in the kind's words (default: its counts)."""
    if tally is None:
        tally = ", ".join(f"{v} {k}" for k, v in sorted(status["counts"].items()))
    said = f"{status['state']} ({status['phase']})"
    if status["state"] == RunState.ROLLED_BACK.value:
        said = "rolled back"
    lines = [f"run {status['id']}: {said}{where}: {tally}"]
    if status.get("reason"):
        lines.append(f"reason: {status['reason']}")
    return lines


def some(count: int, noun: str) -> str:
    """``3 nodes``, ``1 node``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def going_back(
    rows: list[dict[str, Any]], back: Mapping[str, str], forward: Mapping[str, str], noun: str
) -> str:
    """Where the items of a run in its rollback phase are, in words, the most first: each
    row by its rollback outcome (``back``), else, not taken back, by its forward one
    (``forward``); e.g. "20 nodes still in cp2, 4 nodes back in cp1"."""
    places = Counter(
        back.get(row["rollback"], f"{row['rollback']} going back")
        if row["rollback"]
        else forward.get(row["forward"], row["forward"])
        for row in rows
    )
    return ", ".join(f"{some(n, noun)} {place}" for place, n in places.most_common())


def created(run: RunInfo) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.created))


@dataclass
class _Registry:
    kinds: dict[str, RunKind[Any]] = field(default_factory=dict)
    loaded: bool = False


_registry = _Registry()


def _load() -> dict[str, RunKind[Any]]:
    if not _registry.loaded:
        for ep in entry_points(GROUP):
            try:
                kind = ep.load()
            except Exception as exc:
                raise UsageError(f"run kind {ep.name!r} failed to load: {exc}") from exc
            if not (isinstance(kind, type) and issubclass(kind, RunKind)):
                raise UsageError(f"run kind {ep.name!r} is not a RunKind: {ep.value}")
            if kind.name != ep.name:
                raise UsageError(f"run kind {ep.value} calls itself {kind.name!r}, not {ep.name!r}")
            _registry.kinds.setdefault(ep.name, kind())
        ranked = sorted(_registry.kinds.values(), key=lambda k: (k.rank, k.name))
        _registry.kinds = {k.name: k for k in ranked}
        _registry.loaded = True
    return _registry.kinds


def registered() -> list[RunKind[Any]]:
    """Every run kind installed, by rank, then by name."""
    return list(_load().values())


def names() -> list[str]:
    return list(_load())


def get(name: str) -> RunKind[Any]:
    """The run kind called ``name``."""
    found = _load().get(name)
    if found is None:
        known = ", ".join(sorted(names())) or "none"
        raise UsageError(f"no kind of run {name!r} (known: {known})")
    return found
