"""One suite for both implementations of :class:`ephyra.operations.protocol.Operations`:
each test runs once with the in-process :class:`Local` and once with :class:`Remote` (a real
``ephyra serve`` sharing the same journal, locks and versions store). The implementation
under test makes the change (a run started, a version triggered, an environment imported),
then both answer every read, and their answers must be the same: the same data, or the same
error class with the same message.

The run is a cheap real one: an upgrade of a static inventory with the ``noop`` strategy.
Runs, statuses and lists served by ``ephyra serve`` may be up to a moment old
(:mod:`ephyra.api.fresh`): a read is compared once both answers have caught up with the
change, within a deadline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from ephyra.engine.journal import RunInfo
from ephyra.engine.kinds import get
from ephyra.engine.states import RunState
from ephyra.errors import EnvironmentNotFound, RunNotFound, UsageError
from ephyra.netscheme.model import Environment
from ephyra.operations.bodies import EnvUpgradeBody, TriggerBody, VerifyBody
from ephyra.operations.local import Local
from ephyra.operations.protocol import Operations
from ephyra.operations.remote import Remote
from ephyra.progress import QuietObserver
from tests.functional.ephyra_cli import Ephyra
from tests.functional.test_api import ADMIN, Server
from tests.unit.netscheme import sample

pytestmark = pytest.mark.functional

CLOUDS = {
    "clouds": {
        name: {"auth_type": "none", "compute_endpoint_override": "http://127.0.0.1:9/"}
        for name in ("beta", "alpha")
    }
}
SPEC = {
    "release": "2.0",
    "strategy": "noop",
    "strategies": {"noop": {"type": "noop", "start": "1.0"}},
    "roles": {"compute": {"max_at_once": 2, "drain": False}},
    "gates": {"services_up": False},
}
HOSTS = ["cmp-1", "cmp-2", "cmp-3"]
INVENTORY = {
    "hosts": {
        h: {"roles": ["compute"], "services": [{"name": "nova-compute", "version": "1.0"}]}
        for h in HOSTS
    }
}
#: How long a read served by ``ephyra serve`` may take to catch up with a change.
CATCH_UP = 10.0
MISSING = "0badc0de"  # no run's id starts so


@dataclass
class World:
    local: Local
    remote: Remote


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """``ephyra serve`` and this process on the same state, with clouds.yaml naming two
    clouds that are never called."""
    tmp = tmp_path_factory.mktemp("operations")
    clouds_yaml = tmp / "clouds.yaml"
    clouds_yaml.write_text(yaml.safe_dump(CLOUDS))
    state = tmp / "state"
    ephyra = Ephyra(clouds_yaml, state)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds_yaml))
        server = Server(ephyra, tmp)
        try:
            here = state / "ephyra"
            local = Local(f"sqlite:///{here / 'journal.db'}", f"file://{here / 'locks'}")
            yield World(local, Remote(server.url, ADMIN))
        finally:
            code = server.stop()
    log = (tmp / "serve.log").read_text()
    assert code in (0, -15) and "Traceback" not in log, log


@pytest.fixture(params=["local", "remote"])
def pair(request: pytest.FixtureRequest, world: World) -> tuple[Operations, Operations]:
    """The implementation under test, and the other one."""
    if request.param == "local":
        return world.local, world.remote
    return world.remote, world.local


def wire(value: Any) -> Any:
    """An answer as data (what JSON carries: lists, not tuples)."""
    return json.loads(json.dumps(value, default=str))


def outcome(read: Callable[[], Any]) -> tuple[str, Any]:
    """What an operation answered: its data, or the class and message of its error."""
    try:
        return "answer", wire(read())
    except Exception as exc:
        return type(exc).__name__, str(exc)


def agreed(pair: tuple[Operations, Operations], read: Callable[[Operations], Any]) -> Any:
    """The answer of ``read``, once both implementations give the same one."""
    deadline = time.monotonic() + CATCH_UP
    while True:
        first, second = (outcome(lambda ops=ops: read(ops)) for ops in pair)
        if first == second or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # the server's answer is at most a moment old: ask again
    assert first == second
    kind, value = first
    assert kind == "answer", value
    return value


def same_error(pair: tuple[Operations, Operations], call: Callable[[Operations], Any]) -> str:
    """The class and message of the error both implementations raise (the same)."""
    first, second = (outcome(lambda ops=ops: call(ops)) for ops in pair)
    assert first == second
    assert first[0] != "answer", first
    return f"{first[0]}: {first[1]}"


def upgrade_body(**changes: Any) -> Any:
    return get("upgrade").body_type().build(spec={**SPEC, **changes}, inventory=INVENTORY)


def test_a_run_reads_the_same_both_ways(pair: tuple[Operations, Operations]) -> None:
    tested, _ = pair
    body = upgrade_body()
    plan = agreed(pair, lambda o: o.plan("upgrade", body))
    assert plan["text"].startswith("upgrade to 2.0: 1 stage(s), 3 unit(s)")
    run = tested.start("upgrade", body, QuietObserver())
    assert run.state is RunState.SUCCEEDED

    listed = agreed(pair, lambda o: o.runs())
    mine = [r for r in listed if r["id"] == run.id]
    assert len(mine) == 1
    assert {k: mine[0][k] for k in ("kind", "state", "title", "total", "done", "failed")} == {
        "kind": "upgrade",
        "state": "succeeded",
        "title": "to 2.0",
        "total": 3,
        "done": 3,
        "failed": 0,
    }
    assert agreed(pair, lambda o: o.runs("upgrade")) == listed  # only upgrades run here
    assert agreed(pair, lambda o: o.runs("forklift")) == []

    detail = agreed(pair, lambda o: o.run(run.id))
    assert detail["run"] == mine[0]
    assert [(i["name"], i["state"]) for i in detail["items"]] == [
        (f"data@{h}", "upgraded") for h in HOSTS
    ]
    assert agreed(pair, lambda o: o.run(run.id[:8])) == detail  # a unique prefix names it

    status = agreed(pair, lambda o: o.status("upgrade", run.id))
    assert status == detail["detail"]
    assert (status["state"], status["counts"]) == ("succeeded", {"upgraded": 3})
    assert [u["versions"] for u in status["units"]] == ["1.0->2.0"] * 3
    assert agreed(pair, lambda o: o.status("upgrade", None)) == status  # the latest
    assert agreed(pair, lambda o: o.status("upgrade", "latest")) == status

    kind_runs = agreed(pair, lambda o: o.kind_runs("upgrade"))
    assert [(r["id"], r["state"], r["units"]) for r in kind_runs if r["id"] == run.id] == [
        (run.id, "succeeded", 3)
    ]
    found = agreed(pair, lambda o: o.events(run.id))
    assert found[-1]["type"] == "run.finished" and found[-1]["state"] == "succeeded"
    assert agreed(pair, lambda o: o.events(run.id, found[-2]["seq"])) == found[-1:]
    assert agreed(pair, lambda o: o.events(run.id, 0, 2)) == found[:2]
    assert agreed(pair, lambda o: o.run("latest")) == detail  # the latest run of any kind
    assert agreed(pair, lambda o: o.events("latest")) == found

    # a finished run is neither paused nor aborted, the same way through both
    short = run.id[:8]
    assert same_error(pair, lambda o: o.pause("upgrade", run.id)) == (
        f"IllegalTransition: run {short} is succeeded, not running"
    )
    assert same_error(pair, lambda o: o.abort("upgrade", run.id, QuietObserver())) == (
        "IllegalTransition: a succeeded run cannot become aborted (allowed: rolling-back)"
    )
    assert agreed(pair, lambda o: o.status("upgrade", run.id)) == status


def test_a_missing_run_is_the_same_error(pair: tuple[Operations, Operations]) -> None:
    calls: list[Callable[[Operations], Any]] = [
        lambda o: o.run(MISSING),
        lambda o: o.events(MISSING),
        lambda o: o.status("upgrade", MISSING),
        lambda o: o.pause("upgrade", MISSING),
        lambda o: o.abort("upgrade", MISSING, QuietObserver()),
        lambda o: o.resume("upgrade", MISSING, QuietObserver()),
        lambda o: o.rollback("upgrade", MISSING, QuietObserver()),
    ]
    for call in calls:
        error = same_error(pair, call)
        assert error.startswith(f"{RunNotFound.__name__}: "), error
        assert MISSING in error


def test_plan_errors_are_the_same(pair: tuple[Operations, Operations]) -> None:
    refused = [
        upgrade_body(strategies={"noop": {"type": "nosuch"}}),
        upgrade_body(release=""),
        upgrade_body(roles={"compute": {"max_at_once": -1}}),
    ]
    errors = [same_error(pair, lambda o, b=b: o.plan("upgrade", b)) for b in refused]
    assert all(e.startswith(f"{UsageError.__name__}: ") for e in errors), errors
    assert "no ephyra.strategies plugin named 'nosuch'" in errors[0]
    assert "spec.release" in errors[1]
    assert "max_at_once" in errors[2]
    # starting what cannot be planned is refused before any run exists
    before = agreed(pair, lambda o: o.runs())
    error = same_error(pair, lambda o: o.start("upgrade", refused[0], QuietObserver()))
    assert error == errors[0]
    assert agreed(pair, lambda o: o.runs()) == before


def test_clouds_and_inventory_errors_are_the_same(pair: tuple[Operations, Operations]) -> None:
    assert agreed(pair, lambda o: o.clouds()) == ["alpha", "beta"]
    error = same_error(pair, lambda o: o.inventory([], None, None))
    assert error.startswith(f"{UsageError.__name__}: name at least one inventory source")


def test_versions_read_the_same(pair: tuple[Operations, Operations]) -> None:
    tested, _ = pair
    before = agreed(pair, lambda o: o.version_history())
    version = f"3.{len(before)}"
    made = tested.trigger(TriggerBody.build(version=version, max_at_once=["compute=2"]))
    previous = before[-1]["version"] if before else ""
    assert (made["version"], made["previous"]) == (version, previous)

    history = agreed(pair, lambda o: o.version_history())
    assert history[:-1] == before
    last = history[-1]
    assert (last["version"], last["previous"], last["by"], last["forced"]) == (
        version,
        previous,
        made["by"],
        False,
    )
    assert last["rules"]["max_at_once"] == {"compute": 2}
    status = agreed(pair, lambda o: o.version_status())
    assert (status["current_version"], status["hosts"], status["converged"]) == (version, [], 0)
    verdict = agreed(pair, lambda o: o.verify(VerifyBody.build(version=version, hosts=HOSTS)))
    assert verdict == {"version": version, "ok": False, "hosts": 3, "missing": HOSTS}
    assert agreed(pair, lambda o: o.roles(None, None)) == {"version": version, "roles": {}}
    assert agreed(pair, lambda o: o.roles("compute", "1.0")) == {
        "version": "1.0",
        "roles": {"compute": {}},
    }

    bad_rule = TriggerBody.build(version="4.0", max_at_once=["compute=several"])
    error = same_error(pair, lambda o: o.trigger(bad_rule))
    assert error.startswith(f"{UsageError.__name__}: "), error
    assert agreed(pair, lambda o: o.version_history()) == history  # nothing triggered


def test_environments_read_the_same(pair: tuple[Operations, Operations]) -> None:
    tested, _ = pair
    number = 11 if isinstance(tested, Local) else 12
    name = f"env{number}"
    doc = {**sample.doc(), "id": number, "name": name}
    made = tested.env_import(doc)
    assert made["created"] is True
    assert (made["id"], made["name"], made["status"], made["release_id"]) == (
        number,
        name,
        "operational",
        1,
    )
    summary = {k: v for k, v in made.items() if k != "created"}
    listed = agreed(pair, lambda o: o.env_list())
    assert [e for e in listed if e["name"] == name] == [summary]
    whole = agreed(pair, lambda o: o.env_show(name))
    assert whole == wire(Environment.parse(doc).model_dump(mode="json"))
    assert agreed(pair, lambda o: o.env_show(str(number))) == whole

    again = same_error(pair, lambda o: o.env_import(doc))
    assert again == (
        f"UsageError: environment {number} ({name}) clashes with {name}: --replace to overwrite it"
    )
    replaced = tested.env_import(doc, replace=True)
    assert replaced == {**summary, "created": False}
    missing = same_error(pair, lambda o: o.env_show("nosuch-env"))
    assert missing.startswith(f"{EnvironmentNotFound.__name__}: "), missing

    upgraded = tested.env_upgrade(name, EnvUpgradeBody.build(release_id=2))
    assert upgraded["status"] == "upgrade" and upgraded["release_id"] == 2
    pending = {n["name"]: n["pending_release_id"] for n in upgraded["nodes"]}
    assert pending == {"ctl-1": 2, "ctl-2": None, "ctl-3": None, "cmp-1": None}
    assert [e for e in agreed(pair, lambda o: o.env_list()) if e["name"] == name] == [upgraded]
    info = agreed(pair, lambda o: o.deployment_info(name, ["ctl-1", "cmp-1"]))
    assert len(info) == 2
    installed = tested.env_installed(name, "ctl-1")
    assert {n["name"]: n["release_id"] for n in installed["nodes"]}["ctl-1"] == 2
    assert agreed(pair, lambda o: o.env_show(name))["nodes"][0]["pending_release_id"] is None
    refused = same_error(pair, lambda o: o.env_installed(name, "ctl-2"))
    assert refused == "IllegalTransition: ctl-2 has no pending release to be installed with"


def upgrade_run(local: Local, state: RunState, *, kept: bool) -> RunInfo:
    """An upgrade run that no process drives, written as the journal keeps one today
    (``kept``: its lock names with it) or as it kept one before (none)."""
    new = get("upgrade").new_run(local.planned("upgrade", upgrade_body()))
    meta = {"state": state.value, "phase": "forward", "created": time.time(), **new.meta}
    meta.update({"pid": 1, "host": "gone"}, **({"locks": new.locks} if kept else {}))
    return local.journal.create_run("upgrade", meta, new.records)


def alike(old: RunInfo, new: RunInfo, read: Callable[[RunInfo], Any]) -> Any:
    """What ``read`` gives for an old run and for a new one alike (their ids aside)."""
    old_answer, new_answer = (
        json.loads(json.dumps(read(r)).replace(r.id, "RUN").replace(r.short, "RUN"))
        for r in (old, new)
    )
    assert old_answer == new_answer
    return old_answer


def test_a_run_made_before_locks_were_kept_goes_as_a_new_one(
    pair: tuple[Operations, Operations], world: World
) -> None:
    """Pause, abort and resume of an old run answer and do what they do for a new one."""
    tested, _ = pair
    journal = world.local.journal
    old_a, old_b = (upgrade_run(world.local, RunState.RUNNING, kept=False) for _ in range(2))
    new_a, new_b = (upgrade_run(world.local, RunState.RUNNING, kept=True) for _ in range(2))
    assert "locks" not in old_a.meta and new_a.meta["locks"] == ["upgrade -"]
    runs = [old_a, old_b, new_a, new_b]
    for old, new in ((old_a, new_a), (old_b, new_b)):  # their process is gone
        paused = alike(old, new, lambda r: tested.pause("upgrade", r.id))
        assert paused == "run RUN had no live process; marked paused"
    assert {journal.run(r.id).state for r in runs} == {RunState.PAUSED}

    aborted = alike(old_a, new_a, lambda r: tested.abort("upgrade", r.id, QuietObserver()))
    assert aborted == (
        "run RUN aborted; `ephyra upgrade rollback RUN` takes it back"
        " (refused once it began a point of no return)"
    )
    assert {journal.run(r.id).state for r in (old_a, new_a)} == {RunState.ABORTED}

    resumed = alike(old_b, new_b, lambda r: tested.resume("upgrade", r.id, QuietObserver()).state)
    assert resumed == RunState.SUCCEEDED.value
    status = alike(old_b, new_b, lambda r: agreed(pair, lambda o: o.status("upgrade", r.id)))
    assert (status["state"], status["counts"]) == ("succeeded", {"upgraded": 3})
    # once driven, the old run keeps its lock names with it, as a new one does from its start
    assert journal.run(old_b.id).meta["locks"] == ["upgrade -"]
