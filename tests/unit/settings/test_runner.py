"""The apply's steps against a cloud kept in memory and a real journal: each change is
recorded with what the cloud had before it is made; a process that dies after a change
is made, or before it, is resumed without making anything twice; rollback takes back
exactly what the run did, and nothing someone else changed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ephyra.engine.journal import Journal
from ephyra.engine.metrics import RunMetrics
from ephyra.engine.states import Phase, RunState
from ephyra.progress import PlainObserver
from ephyra.settings.diff import diff
from ephyra.settings.document import ORDER, SECTION_OF, Objects
from ephyra.settings.kind import SettingsKind
from ephyra.settings.plan import SettingsPlan
from ephyra.settings.records import record_name
from ephyra.settings.runner import SettingsDriver

KINDS = {"flavor", "trait", "resource_class"}


class Died(Exception):
    """The process died here."""


class Cloud:
    """Objects by kind and key; each converge is counted, and may die before or after."""

    name = "b"

    def __init__(self, objects: Objects) -> None:
        self.objects = copy.deepcopy(objects)
        self.made: list[tuple[str, str, str]] = []
        self.die: tuple[int, str] | None = None  # (call, "before" | "after")
        self.calls = 0

    def read_one(self, kind: str, key: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects[kind].get(key))

    def converge(self, kind: str, have: Any, want: Any) -> None:
        self.calls += 1
        if have == want:
            return
        if self.die == (self.calls, "before"):
            raise Died
        key = next(iter(k for k, v in self.objects[kind].items() if v == have), None)
        if want is None:
            assert key is not None
            del self.objects[kind][key]
            self.made.append(("delete", kind, key))
        else:
            from ephyra.settings.document import key_of

            self.objects[kind][key_of(kind, want)] = copy.deepcopy(want)
            self.made.append(("create" if have is None else "update", kind, key_of(kind, want)))
        if self.die == (self.calls, "after"):
            raise Died


def objects(**kinds: dict[str, dict[str, Any]]) -> Objects:
    return {kind: dict(kinds.get(kind, {})) for kind in ORDER}


FLAVOR = {
    "name": "f1",
    "vcpus": 1,
    "ram": 512,
    "disk": 1,
    "ephemeral": 0,
    "swap": 0,
    "is_public": True,
    "extra_specs": {"a": "1"},
}
HAVE = objects(
    flavor={"f1": {**FLAVOR, "extra_specs": {}}, "old": {**FLAVOR, "name": "old"}},
    trait={"CUSTOM_KEEP": {"name": "CUSTOM_KEEP"}},
)
WANT = objects(
    flavor={"f1": FLAVOR},
    trait={"CUSTOM_KEEP": {"name": "CUSTOM_KEEP"}, "CUSTOM_NEW": {"name": "CUSTOM_NEW"}},
    resource_class={"CUSTOM_GPU": {"name": "CUSTOM_GPU"}},
)


def start(tmp_path: Path, cloud: Cloud) -> tuple[Journal, Any]:
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    changes = diff(WANT, cloud.objects, KINDS, prune=True)
    plan = SettingsPlan("b", "a", True, tuple(changes))
    made = SettingsKind().new_run(plan)
    run = journal.create_run("settings", {**made.meta, "state": "running"}, made.records)
    return journal, run


def drive(journal: Journal, run: Any, cloud: Cloud, phase: Phase) -> RunState:
    driver = SettingsDriver(
        journal,
        run,
        PlainObserver(),
        RunMetrics("settings", run.id),
        target=cloud,  # type: ignore[arg-type]
    )
    return driver.run_phase(phase)


def test_an_apply_makes_the_document_true_and_its_rollback_takes_it_back(tmp_path: Path) -> None:
    cloud = Cloud(HAVE)
    journal, run = start(tmp_path, cloud)
    assert drive(journal, run, cloud, Phase.FORWARD) is RunState.SUCCEEDED
    assert cloud.objects == WANT
    assert sorted(cloud.made) == [
        ("create", "resource_class", "CUSTOM_GPU"),
        ("create", "trait", "CUSTOM_NEW"),
        ("delete", "flavor", "old"),
        ("update", "flavor", "f1"),
    ]
    record = journal.record(run.id, record_name(0))
    assert record["before"] == HAVE["flavor"]["f1"] and record["forward"] == "done"
    assert drive(journal, run, cloud, Phase.FORWARD) is RunState.SUCCEEDED  # nothing left
    assert len(cloud.made) == 4
    assert drive(journal, run, cloud, Phase.ROLLBACK) is RunState.ROLLED_BACK
    assert cloud.objects == HAVE


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("call", [1, 2, 3, 4])
def test_a_process_dying_at_any_change_is_resumed_without_doing_anything_twice(
    tmp_path: Path, call: int, when: str
) -> None:
    cloud = Cloud(HAVE)
    journal, run = start(tmp_path, cloud)
    cloud.die = (call, when)
    with pytest.raises(Died):
        drive(journal, run, cloud, Phase.FORWARD)
    cloud.die = None
    assert drive(journal, run, cloud, Phase.FORWARD) is RunState.SUCCEEDED
    assert cloud.objects == WANT
    assert len(cloud.made) == len(set(cloud.made)) == 4
    cloud.die, cloud.calls = (call, when), 0
    with pytest.raises(Died):
        drive(journal, run, cloud, Phase.ROLLBACK)
    cloud.die = None
    assert drive(journal, run, cloud, Phase.ROLLBACK) is RunState.ROLLED_BACK
    assert cloud.objects == HAVE
    assert len(cloud.made) == 8


def test_rollback_leaves_what_the_run_did_not_do(tmp_path: Path) -> None:
    cloud = Cloud(HAVE)
    journal, run = start(tmp_path, cloud)
    cloud.die = (2, "before")  # the first change made, the second begun: nothing made
    with pytest.raises(Died):
        drive(journal, run, cloud, Phase.FORWARD)
    cloud.die = None
    cloud.objects["flavor"]["f1"]["ram"] = 2048  # someone else's change, after the run's
    cloud.objects["trait"]["CUSTOM_THEIRS"] = {"name": "CUSTOM_THEIRS"}
    assert drive(journal, run, cloud, Phase.ROLLBACK) is RunState.ROLLED_BACK
    assert cloud.objects["flavor"]["f1"] == {**FLAVOR, "extra_specs": {}, "ram": 2048}
    assert "CUSTOM_THEIRS" in cloud.objects["trait"]
    assert "CUSTOM_GPU" not in cloud.objects["resource_class"]
    assert [SECTION_OF[k] for _, k, _ in cloud.made] == ["compute", "compute"]
