"""Board URLs, the job a run is posted as (its flow rebuilt by TaskFlow's factory
convention from the journal), and which runs a conductor resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from taskflow import engines

from ephyra.engine import jobflow
from ephyra.engine.board import DEFAULT_PATH, DEFAULT_TTL, Board, BoardURL
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.states import RunState
from ephyra.errors import EphyraError, UsageError


def test_a_board_url_names_etcd_a_path_and_the_claims_ttl() -> None:
    url = BoardURL.parse("etcd3+http://10.0.0.5:2379/prod/upgrades?ttl=30")
    assert (url.protocol, url.host, url.port, url.path, url.ttl) == (
        "http",
        "10.0.0.5",
        2379,
        "prod/upgrades",
        30,
    )
    conf = url.conf()
    assert conf["ttl"] == 30 and conf["path"] == "prod/upgrades" and conf["host"] == "10.0.0.5"


def test_a_bare_board_url_takes_the_defaults() -> None:
    url = BoardURL.parse("etcd3+https://etcd.example")
    assert (url.protocol, url.port, url.path, url.ttl) == ("https", 2379, DEFAULT_PATH, DEFAULT_TTL)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:2379", "expected etcd3+http://"),
        ("sqlite:///x.db", "expected etcd3+http://"),
        ("etcd3+http://127.0.0.1:2379?ttl=soon", "ttl must be whole seconds"),
        ("etcd3+http://127.0.0.1:2379?ttl=1", "at least 2 seconds"),
        ("etcd3+http://127.0.0.1:2379?lock_timeout=5", "unknown option(s) lock_timeout"),
        ("etcd3+http://127.0.0.1:99999", "Port out of range"),
        ("etcd3+http:///path", "no host"),
    ],
)
def test_a_wrong_board_url_is_refused_saying_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        BoardURL.parse(url)
    assert says in str(caught.value)


def _run(state: RunState, **meta: Any) -> RunInfo:
    return RunInfo("0f" * 16, "upgrade", state, {"state": state.value, **meta})


@pytest.mark.parametrize("state", [RunState.RUNNING, RunState.ROLLING_BACK])
def test_a_running_run_is_resumed(state: RunState) -> None:
    """Just queued, or its conductor died: the journal says it runs, nobody drives it."""
    assert jobflow.leave_alone(_run(state), None) == ""


@pytest.mark.parametrize("state", [RunState.PAUSED, RunState.FAILED])
def test_a_paused_or_failed_run_is_resumed_only_when_handed_over(state: RunState) -> None:
    assert jobflow.leave_alone(_run(state), "conductor c1 stopped") == ""
    why = jobflow.leave_alone(_run(state, reason="canary h1 failed"), None)
    assert "not resumed" in why and "resume --board" in why


def test_an_operators_pause_is_said_as_such() -> None:
    why = jobflow.leave_alone(_run(RunState.PAUSED), None)
    assert why.startswith("run paused (by request): not resumed")


@pytest.mark.parametrize("state", [RunState.SUCCEEDED, RunState.ABORTED, RunState.ROLLED_BACK])
def test_an_ended_run_is_left_alone_even_if_handed_over(state: RunState) -> None:
    assert jobflow.leave_alone(_run(state), "resume queued") == (
        f"run {state.value}: nothing to resume"
    )


@pytest.mark.parametrize("state", [RunState.SUCCEEDED, RunState.ABORTED])
def test_an_ended_run_handed_over_to_roll_back_is_rolled_back(state: RunState) -> None:
    """``rollback --board`` of a run that ended: its phase says rollback."""
    assert jobflow.leave_alone(_run(state, phase="rollback"), "rollback queued") == ""
    assert jobflow.leave_alone(_run(state, phase="rollback"), None) == (
        f"run {state.value}: nothing to resume"
    )


def test_a_posted_runs_flow_is_rebuilt_from_its_journal_by_the_factory_it_names(
    tmp_path: Path,
) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'journal.db'}")
    run = journal.create_run("upgrade", {"state": "running", "created": 1.0}, {"unit:a": {}})
    board = Board("etcd3+http://127.0.0.1:2379/unit?ttl=5", journal)  # never connected
    flow_uuid = board.add_job_detail(run)

    assert journal.run(run.id).meta == run.meta  # the run's record is left as it was
    assert journal.record(run.id, "unit:a") == {}
    detail = journal.backend.get_connection().get_logbook(run.id).find(flow_uuid)
    assert detail.meta["factory"]["name"] == "ephyra.engine.jobflow.run_flow"
    flow = engines.flow_from_detail(detail)
    (task,) = list(flow)
    assert isinstance(task, jobflow.DriveRun)
    assert (task.kind, task.run_id) == ("upgrade", run.id)
    # a second posting gets a flow detail of its own: a job's flow starts afresh
    assert board.add_job_detail(run) != flow_uuid


def test_a_jobs_task_outside_a_conductor_says_where_it_runs() -> None:
    task = jobflow.DriveRun("upgrade", "abc")
    with pytest.raises(EphyraError, match="runs only in `ephyra conductor`"):
        task.execute()


def test_a_jobs_task_hands_its_run_to_the_conductor_of_this_process() -> None:
    seen: list[tuple[str, str]] = []

    class Worker:
        def drive(self, kind: str, run_id: str) -> dict[str, Any]:
            seen.append((kind, run_id))
            return {"state": "succeeded"}

    with jobflow.serving(Worker()):
        assert jobflow.DriveRun("upgrade", "abc").execute() == {"state": "succeeded"}
    assert seen == [("upgrade", "abc")]


def test_handing_back_is_a_failure_the_conductor_does_not_consume() -> None:
    from ephyra.engine.conductor import RunConductor

    assert issubclass(jobflow.HandBack, RunConductor.NO_CONSUME_EXCEPTIONS)
    assert issubclass(jobflow.HandBack, EphyraError)
