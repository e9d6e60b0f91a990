"""The tenant migration's crash matrix against two real clouds (``two_clouds``; harness:
``tests.functional.crash``).

The kill points come from the kind's step lists (``ephyra.tenants.migrate_steps.FORWARD``
and ``ROLLBACK``, ``titles()``): a boundary after every step, and mid-step kills where a
step makes several changes (:data:`MID`): in ``bring-image``, inside an image's copy (made
on B, its bytes not sent) and between two images; in ``bring-server``, inside one server's
move after its snapshot and copy (before the boot), after the boot (before the original is
stopped), and between two servers; in ``clear-b``, between two servers' deletions and once
B's servers and images are gone (before its networks); in ``restart-a``, between two
servers started again.

- Forward: ONE migration (2 servers, ``--concurrency 1`` so that its servers move one
  after the other and "between two servers" is a point) is killed -9 at every point in
  turn, each kill resumed by a new ``ephyra tenant resume`` held at the next point.
- Rollback: its ``ephyra tenant rollback`` is killed at every rollback point in turn, each
  recovered by a new ``ephyra tenant rollback`` (a killed rollback is still rolling back:
  rollback, or resume, goes on with it).
- Finish: a moved tenant's ``finish`` is killed once its original is deleted on A and
  before its transfer images are; a new ``finish`` ends it, a third says it is done.

Each process is held at its point by ``tests.functional.holds.held_ephyra`` (stopped
before the Nth call of a function until killed), so each kill lands there whatever the
machine's speed. A boundary is held where the next step begins: the step's "started"
notice (``TenantDriver._on_step``, called twice per step: started and done; a resumed
process begins with the step it was killed in, so the count is taken from there), and
after the last step, before the project's outcome is written (``OUTCOMES.save``, its
second call in the process). The progress lines of the held process show that it is there:
the step before done, a mid-step point's step started and not done.

After every kill: the run unfinished in the journal; no assignment on the project lost but
the writers the freeze removes, none added but its grants and the run's own ``enter``
role; on B nothing twice (servers, images, transfer images by the server they copy,
networks, subnets, routers, security groups and server groups: by name, and by the mark of
the A original); going forward, no server of A deleted, and none stopped (or stopping)
whose copy is not ACTIVE on B and equal to it. (Nova refuses a second flavor or key pair
of one name, and Neutron a second equal rule: those cannot be made twice.)
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ephyra.operations.local import Local
from ephyra.tenants.keystone import Grant, Identity
from ephyra.tenants.mapping import MARK_FROM, MARK_RUN, MARK_TRANSFER, MARKS
from ephyra.tenants.migrate_steps import FORWARD, ROLLBACK, titles
from ephyra.tenants.resources import collect
from ephyra.tenants.transfer import images_by
from testbed.tenantclouds import TwoClouds
from tests.functional.crash import Chain, KillPoint, Stop, done_line, kill_points, ok, said
from tests.functional.ephyra_cli import EPHYRA, Background, Ephyra
from tests.functional.holds import HELD, Gate, held_ephyra
from tests.functional.tenants import export, make_workload, statuses

pytestmark = pytest.mark.functional
KIND = "tenant-migration"
NAME, SERVERS = "crashmove", 2
STEP = "ephyra.tenants.runner:TenantDriver._on_step"
OUTCOME = ("ephyra.tenants.migrate_records:OUTCOMES.save", 2)
FORWARD_STEPS, ROLLBACK_STEPS = titles(FORWARD), titles(ROLLBACK)
TRANSFER = "ephyra.tenants.transfer"
PROXY = "openstack.compute.v2._proxy:Proxy"
#: Mid-step points, in the order the step reaches them: step -> (where, function, call).
#: The call is counted from the start of the process held there, which begins with the
#: step (the kill before it landed in it, or at the boundary before it).
MID: dict[str, dict[str, list[tuple[str, str, int]]]] = {
    "forward": {
        "bring-image": [
            ("inside-copy", f"{TRANSFER}:Stream", 1),  # img1 made on B, no bytes sent
            ("between-images", f"{TRANSFER}:copy_image", 2),  # img1 copied, img2 meant
        ],
        "bring-server": [
            ("after-copy", f"{TRANSFER}:boot", 1),  # vm0: snapshot on A, copied to B
            ("after-boot", f"{TRANSFER}:stop_original", 1),  # vm0 ACTIVE on B, and on A
            ("between-servers", f"{TRANSFER}:snapshot", 2),  # vm0 moved, vm1 not begun
        ],
    },
    "rollback": {
        "clear-b": [
            ("between-servers", f"{PROXY}.delete_server", 2),  # vm0 deleted on B, vm1 not
            ("servers-gone", "ephyra.tenants.takeback:_neutron", 1),  # servers, images gone
        ],
        "restart-a": [("between-servers", f"{PROXY}.start_server", 2)],  # vm0 started
    },
}


def points(phase: str, steps: list[str]) -> list[KillPoint]:
    """Every kill point of ``phase``, in the order a run reaches them."""
    mids = MID[phase]
    out: list[KillPoint] = []
    for boundary in kill_points(steps, mid=[], phases=[phase]):
        out += [
            KillPoint(phase, boundary.step, f"mid-step:{w}")
            for w, _, _ in mids.get(boundary.step, [])
        ]
        out.append(boundary)
    return out


def holds(phase: str, steps: list[str], stops: Sequence[KillPoint]) -> dict[str, tuple[str, int]]:
    """Where each point's process is held (function, call), counted from the step the
    process begins with: the first step, else the step of the previous kill (a kill at a
    boundary lands before the next step: that one)."""
    mids = {(s, w): (f, c) for s, found in MID[phase].items() for w, f, c in found}
    found: dict[str, tuple[str, int]] = {}
    first = 0
    for point in stops:
        index = steps.index(point.step)
        if not point.boundary:
            found[str(point)] = mids[(point.step, point.where.split(":", 1)[1])]
            first = index
            continue
        following = index + 1
        found[str(point)] = (
            (STEP, 2 * (following - first) + 1) if following < len(steps) else OUTCOME
        )
        first = following
    return found


@functools.cache
def _local(journal: Path) -> Local:
    return Local(journal_url=f"sqlite:///{journal}")


class Moving:
    """The tenant moved by the chains: its clouds, its state before, the run's journal."""

    def __init__(self, two: TwoClouds, tmp: Path, name: str, servers: int) -> None:
        two.add_project(name)
        self.name = name
        self.a, self.b = two.connect("a"), two.connect("b")
        member = two.connect(two.entry_name("a", name, "member"))
        self.project, self.users = make_workload(self.a, member, name, servers)
        self.servers = {
            s.id: s.name for s in self.a.compute.servers(all_projects=True, project_id=self.project)
        }
        self.identity = Identity("a", self.a)
        self.before = export(self.a, self.project, self.users)
        self.assigned = self.assignments()
        self.ephyra = Ephyra(two.clouds_yaml, tmp / "state")
        self.gate = Gate(tmp / "never-opened")

    def assignments(self) -> set[Grant]:
        return set(self.identity.on("project", self.project))

    def status(self) -> dict[str, Any]:
        return _local(self.ephyra.journal_file).status(KIND, None)

    def record(self) -> dict[str, Any]:
        data = _local(self.ephyra.journal_file).journal
        return dict(data.record(self.status()["id"], f"migration:{self.project}"))

    def process(self, hold: tuple[str, int] | None, *args: str) -> Background:
        prefix = held_ephyra(hold[0], hold[1], self.gate) if hold else EPHYRA
        return Background([*prefix, "-v", "tenant", *args], self.ephyra.env)

    # -- what must be true after every kill ---------------------------------------------
    def nothing_lost(self) -> None:
        """No assignment lost but the writers the freeze removes, none added but its
        grants and the run's own ``enter`` role."""
        record = self.record()
        freeze = record["freeze"]
        revokes = {Grant.from_dict(g) for g in freeze.get("revokes") or []}
        grants = {Grant.from_dict(g) for g in freeze.get("grants") or []}
        entered = {Grant.from_dict(record["entered"])} if record.get("entered") else set()
        now = self.assignments()
        assert self.assigned - revokes <= now, self.assigned - now
        assert now <= self.assigned | grants | entered, now - self.assigned

    def once_on_b(self) -> list[Any]:
        """Nothing twice on B; B's servers."""
        raw = collect(self.b, self.project, self.users)
        for kind in (
            "server",
            "server_group",
            "image",
            "network",
            "subnet",
            "router",
            "security_group",
        ):
            twice = {
                n: c for n, c in Counter(i["name"] for i in raw.get(kind, [])).items() if c > 1
            }
            assert not twice, (kind, twice)
        run = self.status()["id"]
        for server in raw["server"]:
            assert (server["metadata"] or {}).get(MARK_FROM) in self.servers, server["name"]
            assert (server["metadata"] or {}).get(MARK_RUN) == run, server["name"]
        transfer = Counter(
            i[MARK_FROM] for i in images_by(self.b, owner=self.project, **{MARK_TRANSFER: run})
        )
        assert set(transfer) <= set(self.servers) and max(transfer.values(), default=0) <= 1, (
            transfer
        )
        return list(raw["server"])

    def a_safe(self, forward: bool, on_b: list[Any]) -> list[Any]:
        """No server of A deleted; going forward, none stopped (or stopping) whose copy is
        not ACTIVE on B and equal to it. A's servers."""
        listed = self.a.compute.servers(all_projects=True, project_id=self.project)
        found = [s.to_dict() for s in listed]
        assert {s["id"] for s in found} == set(self.servers), "a server of A deleted"
        copies = {(s["metadata"] or {}).get(MARK_FROM): s for s in on_b}
        for server in found:
            stopped = server["status"] != "ACTIVE" or server["task_state"] == "powering-off"
            if forward and stopped:
                copy = copies.get(server["id"])
                assert copy is not None, f"{server['name']} stopped, no copy on B"
                assert copy["status"] == "ACTIVE", f"{server['name']} stopped: {copy}"
                assert same(copy) == same(server), (copy, server)
        return found

    def landed(self, point: KillPoint) -> Callable[[], None]:
        def check() -> None:
            shown = self.status()
            assert shown["state"] in ("running", "rolling-back"), shown
            assert shown["phase"] == point.phase, shown
            self.nothing_lost()
            on_b = self.once_on_b()
            on_a = self.a_safe(point.phase == "forward", on_b)
            expect = LANDED.get(str(point))
            if expect is not None:
                expect(self, on_a, on_b)

        return check


def same(server: dict[str, Any]) -> tuple[Any, ...]:
    """What a server's copy must have as it has (what the move checks before the stop)."""
    meta = {k: v for k, v in (server["metadata"] or {}).items() if k not in MARKS}
    flavor = server["flavor"] or {}
    return server["name"], server["key_name"], meta, flavor.get("original_name")


def _marked(moving: Moving) -> list[dict[str, Any]]:
    """The tenant's images the run made on B (not its transfer images)."""
    return images_by(moving.b, owner=moving.project, **{MARK_RUN: moving.status()["id"]})


def _statuses(servers: list[Any]) -> list[str]:
    return sorted(s["status"] for s in servers)


# A listing's order is the cloud's: which image or server goes first is not known here.
def _inside_copy(m: Moving, a: list[Any], b: list[Any]) -> None:
    assert [i["status"] for i in _marked(m)] == ["queued"], _marked(m)  # made, no bytes


def _between_images(m: Moving, a: list[Any], b: list[Any]) -> None:
    assert [i["status"] for i in _marked(m)] == ["active"], _marked(m)  # the other: not yet


def _after_copy(m: Moving, a: list[Any], b: list[Any]) -> None:
    assert b == [] and _statuses(a) == ["ACTIVE", "ACTIVE"], (a, b)
    run = m.status()["id"]
    assert len(images_by(m.b, owner=m.project, **{MARK_TRANSFER: run})) == 1


def _after_boot(m: Moving, a: list[Any], b: list[Any]) -> None:
    assert _statuses(b) == ["ACTIVE"] and _statuses(a) == ["ACTIVE", "ACTIVE"], (a, b)


def _between_servers(m: Moving, a: list[Any], b: list[Any]) -> None:
    assert _statuses(a) == ["ACTIVE", "SHUTOFF"] and _statuses(b) == ["ACTIVE"], (a, b)


def _one_cleared(m: Moving, a: list[Any], b: list[Any]) -> None:
    assert len(b) == 1, b


def _servers_gone(m: Moving, a: list[Any], b: list[Any]) -> None:
    assert b == [] and _marked(m) == [], b
    assert m.b.network.find_network("net", project_id=m.project) is not None


def _one_restarted(m: Moving, a: list[Any], b: list[Any]) -> None:
    assert sorted(s["status"] for s in a) == ["ACTIVE", "SHUTOFF"], a


#: What a mid-step kill leaves, checked by (moving, A's servers, B's servers).
LANDED: dict[str, Callable[[Moving, list[Any], list[Any]], None]] = {
    "forward:bring-image:mid-step:inside-copy": _inside_copy,
    "forward:bring-image:mid-step:between-images": _between_images,
    "forward:bring-server:mid-step:after-copy": _after_copy,
    "forward:bring-server:mid-step:after-boot": _after_boot,
    "forward:bring-server:mid-step:between-servers": _between_servers,
    "rollback:clear-b:mid-step:between-servers": _one_cleared,
    "rollback:clear-b:mid-step:servers-gone": _servers_gone,
    "rollback:restart-a:mid-step:between-servers": _one_restarted,
}


def held_at(
    point: KillPoint, hold: tuple[str, int], steps: list[str]
) -> Callable[[Background], object]:
    """Until the process is held at ``point``, and its progress lines show it is there."""
    target, call = hold

    def wait(proc: Background) -> None:
        proc.wait_for(said(f"{HELD} {target} call {call}"), timeout=600)
        lines = list(proc.lines)
        if point.boundary:
            assert any(done_line(NAME, point.step)(line) for line in lines), (point, lines[-5:])
            return
        assert any(said(f"{NAME}: {point.step} started")(line) for line in lines), (
            point,
            lines[-5:],
        )
        assert not any(done_line(NAME, point.step)(line) for line in lines), (point, lines[-5:])

    return wait


def chain(
    moving: Moving,
    phase: str,
    steps: list[str],
    first: Sequence[str],
    then: Sequence[str],
    report: list[str],
) -> list[KillPoint]:
    """Kill ``first`` (the command) at the first point of ``phase``, each ``then`` at the
    next, the last ``then`` runs to its end."""
    stops = points(phase, steps)
    where = holds(phase, steps, stops)
    rest: Iterator[KillPoint | None] = iter([*stops[1:], None])

    def following() -> Background:
        point = next(rest)
        return moving.process(where[str(point)] if point else None, *then)

    Chain(
        start=lambda: moving.process(where[str(stops[0])], *first),
        resume=following,
        check=lambda: None,
    ).run(
        [Stop(p, held_at(p, where[str(p)], steps), moving.landed(p)) for p in stops], report, KIND
    )
    return stops


def test_a_move_killed_at_every_point_forward_and_back_makes_nothing_twice(
    two_clouds: TwoClouds, tmp_path: Path, report: list[str]
) -> None:
    moving = Moving(two_clouds, tmp_path, NAME, SERVERS)
    a, b, project, users = moving.a, moving.b, moving.project, moving.users

    migrate = ("migrate", NAME, "--from", "a", "--to", "b", "--concurrency", "1", "--yes")
    stops = chain(moving, "forward", FORWARD_STEPS, migrate, ("resume",), report)
    assert {p.step for p in stops if p.boundary} == set(FORWARD_STEPS)
    assert moving.status()["state"] == "succeeded"
    after = export(b, project, users)
    for kind in moving.before:
        assert after[kind] == moving.before[kind], kind
    assert set(statuses(a, project).values()) == {"SHUTOFF"}  # stopped, not deleted
    assert set(statuses(b, project).values()) == {"ACTIVE"}
    run = moving.status()["id"]
    assert len(images_by(b, owner=project, **{MARK_TRANSFER: run})) == SERVERS
    assert moving.assignments() == moving.assigned  # unfrozen, the run's role taken back

    stops = chain(moving, "rollback", ROLLBACK_STEPS, ("rollback",), ("rollback",), report)
    assert {p.step for p in stops if p.boundary} == set(ROLLBACK_STEPS)
    assert moving.status()["state"] == "rolled-back"
    assert export(a, project, users) == moving.before
    assert set(statuses(a, project).values()) == {"ACTIVE"}
    left = export(b, project, users)
    assert left["server"] == left["image"] == left["network"] == left["subnet"] == []
    assert left["router"] == left["server_group"] == left["keypair"] == []
    assert [g["name"] for g in left["security_group"]] in ([], ["default"])
    assert b.compute.find_flavor(f"{NAME}.tiny", ignore_missing=True) is None
    assert images_by(a, **{MARK_TRANSFER: run}) == images_by(b, owner=project) == []
    assert moving.assignments() == moving.assigned


def test_a_finish_killed_half_way_finishes_once(
    two_clouds: TwoClouds, tmp_path: Path, report: list[str]
) -> None:
    """finish deletes A's originals, the transfer images and the key pairs the run's user
    held for the boots; killed between the two, a new finish ends it; a third says so."""
    moving = Moving(two_clouds, tmp_path, "finisher", 1)
    a, b, project, users = moving.a, moving.b, moving.project, moving.users
    migrate = ("migrate", "finisher", "--from", "a", "--to", "b", "--yes")
    ok(moving.process(None, *migrate).finish(timeout=900))
    after = export(b, project, users)
    run = moving.status()["id"]
    assert len(images_by(a, **{MARK_TRANSFER: run})) == 1  # vm0's snapshot

    point = KillPoint("finish", "delete-originals", "mid-step")
    hold = ("ephyra.tenants.takeback:drop_snapshots", 1)

    def landed() -> None:
        assert moving.status()["state"] == "succeeded" and not moving.record().get("finished")
        assert statuses(a, project) == {}  # the original deleted: its copy ran on B
        assert len(images_by(a, **{MARK_TRANSFER: run})) == 1  # not yet its snapshot

    Chain(
        start=lambda: moving.process(hold, "finish"),
        resume=lambda: moving.process(None, "finish"),
        check=lambda: None,
    ).run(
        [Stop(point, lambda p: p.wait_for(said(f"{HELD} {hold[0]} call 1")), landed)], report, KIND
    )
    assert statuses(a, project) == {}
    assert images_by(a, **{MARK_TRANSFER: run}) == images_by(b, **{MARK_TRANSFER: run}) == []
    assert export(b, project, users) == after  # B's copies run on
    assert set(statuses(b, project).values()) == {"ACTIVE"}
    assert not {"key1", "key2"} & {k.name for k in b.compute.keypairs()}  # the run's user's
    assert "finished already" in ok(moving.ephyra("tenant", "finish")).out
