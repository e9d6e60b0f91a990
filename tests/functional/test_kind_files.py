"""A fourth run kind, used only here (``tests.kinds.files``: N steps, each creating a file),
registered by a real entry point the tests write, gets the whole life cycle from the engine
with no change to the package: start, status, list, pause, resume, abort, rollback, the API
(``ephyra serve``, ``ephyra --url``), the dashboard, ``--board`` with ``ephyra conductor``,
and the crash matrix (kill -9 at every step boundary and mid-step, then an abort and a
rollback in new processes; the kills going forward and rolling back, each resumed, are in
``test_crash_files``).

What an operator checks: exit codes, ``status -f json``, the files on disk, and the
directory's ledger (one line each time a file was really created or removed: nothing done
twice)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from ephyra.engine.journal import Journal
from testbed.etcd import Etcd
from tests.functional.ephyra_cli import EPHYRA, Background, Ephyra, Result
from tests.functional.test_api import ADMIN, MEMBER, READER, Server
from tests.functional.test_conductor import Conductor
from tests.functional.test_dashboard import CHROMIUM, FLAGS, log_in
from tests.kinds.files import FilesKind

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
STEPS = 3


@pytest.fixture(scope="module")
def kinds_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the installed metadata of a distribution ``ephyra-testkinds``
    whose entry point registers the files kind (group ``ephyra.runs``)."""
    where = tmp_path_factory.mktemp("testkinds")
    dist = where / "ephyra_testkinds-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ephyra-testkinds\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[ephyra.runs]\nfiles = tests.kinds.files:FilesKind\n")
    return where


@pytest.fixture
def ephyra(tmp_path: Path, kinds_path: Path) -> Ephyra:
    """``ephyra`` with the files kind installed (and its own journal and locks)."""
    found = Ephyra(tmp_path / "no-clouds.yaml", tmp_path / "state")
    paths = [str(kinds_path), str(ROOT), found.env.get("PYTHONPATH", "")]
    found.env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return found


@pytest.fixture
def files(tmp_path: Path) -> Path:
    made = tmp_path / "files"
    made.mkdir()
    return made


# -- what an operator reads -------------------------------------------------------------
def ok(result: Result, code: int = 0) -> Result:
    assert result.code == code, f"exit {result.code}\n{result.out}\n{result.err}"
    return result


def status(ephyra: Ephyra, run: str = "") -> dict[str, Any]:
    """``ephyra files status [RUN] -f json`` (the format after the command)."""
    shown = ok(ephyra("files", "status", *([run] if run else []), "-f", "json"))
    found: dict[str, Any] = json.loads(shown.out)
    return found


def journal_status(ephyra: Ephyra, run: str = "") -> dict[str, Any]:
    """What ``files status [RUN] -f json`` shows, read from the journal by this process
    (no process to start: the checks right after a kill)."""
    journal = Journal(f"sqlite:///{ephyra.journal_file}")
    try:
        found = journal.run(run) if run else journal.runs("files")[-1]
        return FilesKind().status(journal, found).to_dict()
    finally:
        journal.close()


def steps_in(shown: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["forward"], s["rollback"]) for s in shown["steps"]]


def run_id(result: Result, state: str) -> str:
    words = result.out.split()
    assert words[0] == "run" and words[2] == state, result.out
    return words[1]


def open_gates(files: Path, *names: str) -> None:
    for name in names:
        (files / name).touch()


def forward_gates(upto: int = STEPS) -> list[str]:
    """The gates of the forward steps before ``upto``."""
    return [g for i in range(upto) for g in (f"begin-{i}", f"end-{i}")]


def undo_gates(downto: int = 0, steps: int = STEPS) -> list[str]:
    """The gates of the rollback steps from the newest down to ``downto``, not included."""
    return [g for i in range(downto, steps) for g in (f"undo-begin-{i}", f"undo-end-{i}")]


def ledger(files: Path) -> list[str]:
    path = files / "ledger"
    return path.read_text().splitlines() if path.exists() else []


def made(files: Path) -> list[str]:
    """The step files, the half-made and half-removed ones too."""
    return sorted(p.name for p in files.glob("step-*"))


def assert_agrees(files: Path, shown: dict[str, Any]) -> None:
    """Each step's file exists exactly when the journal says the step is done (and not
    taken back); no step is half done; the ledger says each file was created, and
    removed, at most once, and what it says is what is on disk."""
    for i, row in enumerate(shown["steps"]):
        done = row["forward"] == "done" and row["rollback"] != "done"
        assert (files / f"step-{i}").exists() is done, (i, row, made(files))
    assert not [n for n in made(files) if n.endswith((".partial", ".undo"))], made(files)
    lines = ledger(files)
    assert len(set(lines)) == len(lines), lines
    there = {s["step"] for s in shown["steps"] if (files / s["step"]).exists()}
    created = {line.split()[1] for line in lines if line.startswith("create ")}
    removed = {line.split()[1] for line in lines if line.startswith("remove ")}
    assert removed <= created and created - removed == there, lines


def forward_ledger(count: int = STEPS) -> list[str]:
    return [f"create step-{i}" for i in range(count)]


def rollback_ledger(count: int = STEPS) -> list[str]:
    return forward_ledger(count) + [f"remove step-{i}" for i in reversed(range(count))]


def start_held(ephyra: Ephyra, files: Path, steps: int = STEPS) -> Background:
    return ephyra.background(
        "files", "start", "--yes", "--dir", str(files), "--steps", str(steps), "--hold"
    )


def waiting(proc: Background, gate: str) -> str:
    return proc.wait_for(lambda line: line.endswith(f": waiting for {gate}"))


# -- the life cycle ---------------------------------------------------------------------
def test_a_run_starts_to_success_and_reads_back(ephyra: Ephyra, files: Path) -> None:
    started = ok(ephyra("files", "start", "--yes", "--dir", str(files), "--steps", str(STEPS)))
    run = run_id(started, "succeeded")
    assert "[3/3] step-2 done: created" in started.err  # the progress it showed
    assert made(files) == ["step-0", "step-1", "step-2"]
    assert ledger(files) == forward_ledger()
    shown = status(ephyra)
    assert (shown["id"], shown["state"], shown["phase"]) == (run, "succeeded", "forward")
    assert shown["counts"] == {"done": STEPS}
    assert steps_in(shown) == [("done", "")] * STEPS
    assert status(ephyra, run[:8]) == shown
    table = ok(ephyra("files", "status", run)).out
    assert f"run {run}: succeeded (forward) in {files}: 3 done" in table
    listed = json.loads(ok(ephyra("files", "list", "-f", "json")).out)
    assert [(r["id"], r["state"]) for r in listed] == [(run, "succeeded")]
    everything = json.loads(ok(ephyra("run", "list", "-f", "json")).out)
    assert [(r["id"], r["kind"], r["total"]) for r in everything] == [(run, "files", STEPS)]
    assert_agrees(files, shown)


def test_a_second_run_on_a_held_directory_is_refused(ephyra: Ephyra, files: Path) -> None:
    first = start_held(ephyra, files)
    waiting(first, "begin-0")
    refused = ephyra("files", "start", "--yes", "--dir", str(files), "--steps", "1")
    assert refused.code == 3 and "is locked: files run" in refused.err, refused.err
    open_gates(files, *forward_gates())
    assert first.finish().code == 0
    assert status(ephyra)["state"] == "succeeded"


def test_pause_at_a_held_step_then_resume(ephyra: Ephyra, files: Path) -> None:
    proc = start_held(ephyra, files)
    open_gates(files, "begin-0", "end-0")
    waiting(proc, "begin-1")
    paused = ok(ephyra("files", "pause"))
    assert "pause of run" in paused.out and "requested" in paused.out
    finished = proc.finish()
    assert finished.code == 130, finished.err  # stopped on request: resumable
    shown = status(ephyra)
    assert (shown["state"], shown["reason"]) == ("paused", "")
    assert steps_in(shown) == [("done", ""), ("pending", ""), ("pending", "")]
    assert made(files) == ["step-0"]
    assert_agrees(files, shown)
    open_gates(files, *forward_gates())
    resumed = ok(ephyra("files", "resume"))
    assert run_id(resumed, "succeeded") == shown["id"]
    assert ledger(files) == forward_ledger()
    assert_agrees(files, status(ephyra))
    again = ephyra("files", "resume", shown["id"])
    assert again.code == 2 and "succeeded" in again.err


def test_abort_mid_step_undoes_the_step_then_rollback(ephyra: Ephyra, files: Path) -> None:
    proc = start_held(ephyra, files)
    open_gates(files, "begin-0", "end-0", "begin-1", "abort-1")
    waiting(proc, "end-1")
    assert made(files) == ["step-0", "step-1.partial"]  # held in the middle of step 1
    asked = ok(ephyra("files", "abort"))
    assert "abort of run" in asked.out and "requested" in asked.out
    finished = proc.finish()
    assert finished.code == 130, finished.err
    shown = status(ephyra)
    assert shown["state"] == "aborted"
    assert steps_in(shown) == [("done", ""), ("pending", ""), ("pending", "")]
    assert made(files) == ["step-0"]  # the half-made file removed, the finished step kept
    assert_agrees(files, shown)
    assert ephyra("files", "resume").code == 2  # aborted is for good: only rollback
    open_gates(files, *undo_gates())
    rolled = ok(ephyra("files", "rollback"))
    assert run_id(rolled, "rolled-back") == shown["id"]
    assert made(files) == []
    assert ledger(files) == rollback_ledger(1)
    shown = status(ephyra)
    assert shown["phase"] == "rollback" and steps_in(shown)[0] == ("done", "done")
    assert_agrees(files, shown)


def test_rollback_of_a_finished_run(ephyra: Ephyra, files: Path) -> None:
    run = run_id(
        ok(ephyra("files", "start", "--yes", "--dir", str(files), "--steps", "3")), "succeeded"
    )
    rolled = ok(ephyra("files", "rollback", run))
    assert run_id(rolled, "rolled-back") == run
    assert made(files) == [] and ledger(files) == rollback_ledger()
    shown = status(ephyra, run)
    assert (shown["state"], shown["phase"]) == ("rolled-back", "rollback")
    assert steps_in(shown) == [("done", "done")] * STEPS
    again = ephyra("files", "rollback", run)
    assert again.code == 2 and "rolled-back" in again.err, again.err
    assert ledger(files) == rollback_ledger()


# -- the crash matrix: killed, then aborted ---------------------------------------------
#: Steps of the runs killed: a kill at each boundary and in the middle of each step.
MATRIX = 2
POINTS = [(where, i) for i in range(MATRIX) for where in ("boundary", "mid-step")]


def killed_forward(ephyra: Ephyra, files: Path, where: str, step: int) -> dict[str, Any]:
    """A held run killed -9 at ``step``'s boundary or in its middle; its status then."""
    proc = start_held(ephyra, files, MATRIX)
    open_gates(files, *forward_gates(step))
    if where != "boundary":
        open_gates(files, f"begin-{step}")
    waiting(proc, f"begin-{step}" if where == "boundary" else f"end-{step}")
    if where == "mid-abort":  # the abort reached the run, which holds while undoing
        assert "abort of run" in ok(ephyra("files", "abort")).out
        waiting(proc, f"abort-{step}")
    proc.kill()
    before = [f"step-{i}" for i in range(step)]
    half = [] if where == "boundary" else [f"step-{step}.partial"]
    assert made(files) == before + half  # the kill landed where the run was held
    shown = journal_status(ephyra)
    assert (shown["state"], shown["phase"]) == ("running", "forward")  # nobody drives it
    assert steps_in(shown) == [("done", "")] * step + [("pending", "")] * (MATRIX - step)
    return shown


@pytest.mark.parametrize(("where", "step"), [*POINTS, *(("mid-abort", i) for i in range(MATRIX))])
def test_killed_then_aborted_in_a_new_process_then_rolled_back(
    ephyra: Ephyra, files: Path, where: str, step: int
) -> None:
    run = killed_forward(ephyra, files, where, step)["id"]
    open_gates(files, *[f"abort-{i}" for i in range(MATRIX)])
    aborted = ok(ephyra("files", "abort"))
    assert f"run {run[:8]} aborted; files of finished steps stay until rollback" in aborted.out
    shown = status(ephyra, run)
    assert shown["state"] == "aborted"
    assert steps_in(shown) == [("done", "")] * step + [("pending", "")] * (MATRIX - step)
    assert made(files) == [f"step-{i}" for i in range(step)]  # the half-made file gone
    assert_agrees(files, shown)
    open_gates(files, *undo_gates(0, MATRIX))
    assert run_id(ok(ephyra("files", "rollback")), "rolled-back") == run
    shown = status(ephyra, run)
    assert made(files) == []
    assert ledger(files) == rollback_ledger(step)
    assert_agrees(files, shown)


# -- through ephyra serve ---------------------------------------------------------------
Event = dict[str, Any]


def events_until(server: Server, run: str, last: Callable[[Event], bool], after: int = 0) -> Event:
    """Read the run's event stream (after ``after``) up to the first event ``last`` takes."""
    with requests.get(
        f"{server.url}/v1/runs/{run}/events/stream",
        params={"after": after},
        headers={"X-Auth-Token": READER},
        stream=True,
        timeout=(5, 300),
    ) as answer:
        assert answer.status_code == 200, answer.text
        for line in answer.iter_lines(decode_unicode=True):
            if line.startswith("data:") and last(event := json.loads(line[5:])):
                return event
    raise AssertionError("the stream ended first")


def finished(event: Event) -> bool:
    return event["type"] == "run.finished"


def test_start_pause_resume_and_rollback_through_ephyra_serve(
    ephyra: Ephyra, files: Path, tmp_path: Path
) -> None:
    server = Server(ephyra, tmp_path, config={})
    try:
        body = {"dir": str(files), "steps": STEPS, "hold": True}
        assert server.call("POST", "/v1/files/runs", token=MEMBER, json=body).status_code == 403
        for bad in ({**body, "steps": 0}, {**body, "dir": "relative"}, {**body, "what": 1}):
            refused = server.call("POST", "/v1/files/runs", json=bad)
            assert (refused.status_code, refused.json()["error"]["code"]) == (
                422,
                "invalid_request",
            )
        plan = server.call("POST", "/v1/files/plan", token=MEMBER, json=body)
        assert plan.status_code == 200 and plan.json()["plan"]["files"][0] == f"{files}/step-0"
        started = server.call("POST", "/v1/files/runs", json=body)
        assert started.status_code == 202, started.text
        run = started.json()["id"]
        assert started.headers["location"] == f"/v1/runs/{run}"
        open_gates(files, "begin-0", "end-0")
        held = events_until(server, run, lambda e: e.get("text") == "step-1: waiting for begin-1")
        paused = server.call("POST", "/v1/files/runs/latest/pause", token=MEMBER)
        assert paused.status_code == 200 and "pause of run" in paused.json()["message"]
        assert events_until(server, run, finished, held["seq"])["state"] == "paused"
        shown = server.call("GET", f"/v1/files/runs/{run}", token=READER)
        assert shown.status_code == 200 and shown.json()["state"] == "paused"
        assert steps_in(shown.json()) == [("done", ""), ("pending", ""), ("pending", "")]
        assert made(files) == ["step-0"]
        # resumed through the server by the command line, which waits for the end
        open_gates(files, *forward_gates())
        as_member = {"EPHYRA_TOKEN": MEMBER}
        resumed = ok(ephyra("--url", server.url, "files", "resume", run, env=as_member))
        assert run_id(resumed, "succeeded") == run
        assert ledger(files) == forward_ledger()
        # the same answers through the server as in-process
        for args in (["files", "status", run, "-f", "json"], ["files", "list"], ["run", "list"]):
            here = ok(ephyra(*args))
            there = ok(ephyra("--url", server.url, *args, env={"EPHYRA_TOKEN": READER}))
            assert here.out == there.out
        # what the dashboard reads: the run in a few words, and its items
        summary = server.call("GET", f"/v1/runs/{run}", token=READER).json()
        assert summary["run"]["title"] == f"{STEPS} files in {files}"
        assert (summary["run"]["kind"], summary["run"]["total"]) == ("files", STEPS)
        assert (summary["run"]["done"], summary["run"]["failed"]) == (STEPS, 0)
        assert [(i["name"], i["state"]) for i in summary["items"]] == [
            (f"step-{i}", "done") for i in range(STEPS)
        ]
        listed = server.call("GET", "/v1/runs", params={"kind": "files"}, token=READER).json()
        assert [r["id"] for r in listed["runs"]] == [run]
        # rolled back by the server
        open_gates(files, *undo_gates())
        back = f"/v1/files/runs/{run}/rollback"
        assert server.call("POST", back, token=MEMBER).status_code == 403
        rolling = server.call("POST", back, token=ADMIN)
        assert rolling.status_code == 202, rolling.text
        ended = events_until(server, run, finished, rolling.json()["seq"])
        assert ended["state"] == "rolled-back"
        shown = server.call("GET", f"/v1/files/runs/{run}", token=READER).json()
        assert (shown["state"], steps_in(shown)) == ("rolled-back", [("done", "done")] * STEPS)
        assert made(files) == [] and ledger(files) == rollback_ledger()
        again = server.call("POST", back)  # nothing left to take back
        assert (again.status_code, again.json()["error"]["code"]) == (409, "illegal_transition")
    finally:
        code = server.stop()
    log = (tmp_path / "serve.log").read_text()
    assert code in (0, -15) and "Traceback" not in log, log


def test_a_finish_through_the_server_makes_the_run_final(
    ephyra: Ephyra, files: Path, tmp_path: Path
) -> None:
    """``finish``: admins only; once (a second is a no-op); its rollback refused from then
    on, through the server and here."""
    started = ok(ephyra("files", "start", "--yes", "--dir", str(files), "--steps", "2"))
    run = run_id(started, "succeeded")
    path = f"/v1/files/runs/{run}/finish"
    server = Server(ephyra, tmp_path, config={})
    try:
        for token in (READER, MEMBER):
            refused = server.call("POST", path, token=token)
            assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
        done = ephyra("--url", server.url, "files", "finish", env={"EPHYRA_TOKEN": ADMIN})
        assert ok(done).out == f"run {run[:8]} finished\n"
        assert "run finished" in done.err  # its drive shown as it went
        assert ledger(files) == [*forward_ledger(2), "finish"]
        again = server.call("POST", path)
        assert again.status_code == 202
        assert again.json()["message"] == f"run {run[:8]} finished already"
        back = server.call("POST", f"/v1/files/runs/{run}/rollback")
        assert (back.status_code, back.json()["error"]["code"]) == (409, "illegal_transition")
        assert "it cannot be rolled back" in back.json()["error"]["message"]
    finally:
        code = server.stop()
    refused_here = ephyra("files", "rollback", run)
    assert refused_here.code == 2 and "it cannot be rolled back" in refused_here.err
    assert made(files) == ["step-0", "step-1"] and ledger(files)[-1] == "finish"
    log = (tmp_path / "serve.log").read_text()
    assert code in (0, -15) and "Traceback" not in log, log


# -- on a board, driven by ephyra conductor ---------------------------------------------
def wait_text(path: Path, text: str, timeout: float = 120) -> None:
    """Until ``text`` is in the file ``path`` (a conductor's progress lines)."""
    deadline = time.monotonic() + timeout
    while text not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, f"{path} never said {text!r}"
        time.sleep(0.05)


def test_start_resume_and_rollback_on_a_board(
    ephyra: Ephyra, files: Path, tmp_path: Path, etcd: Etcd
) -> None:
    board = f"{etcd.url}/files-{uuid.uuid4().hex[:10]}?ttl=5"
    argv = [*EPHYRA, "-v", "conductor", "--board", board, "--name", "c1", "--retry-delay", "1"]
    progress = tmp_path / "c1.err"
    conductor = Conductor("c1", argv, ephyra.env, progress)
    try:
        conductor.wait_for("waiting for jobs", timeout=120)
        posted = ok(
            ephyra(
                "files", "start", "--yes", "--dir", str(files), "--steps", str(STEPS), "--hold",
                "--board", board,
            )
        )  # fmt: skip
        assert posted.out.strip().endswith(f"queued on {board}"), posted.out
        run = posted.out.split()[1]
        open_gates(files, "begin-0", "end-0")
        conductor.wait_for(f"resuming files run {run}", timeout=120)
        wait_text(progress, "step-1: waiting for begin-1")
        assert "pause of run" in ok(ephyra("files", "pause", run)).out
        conductor.wait_for(f"finished files run {run}: run paused; job consumed", timeout=120)
        shown = status(ephyra, run)
        assert shown["state"] == "paused" and made(files) == ["step-0"]
        assert steps_in(shown) == [("done", ""), ("pending", ""), ("pending", "")]
        # resume --board: the conductor takes it up again
        open_gates(files, *forward_gates())
        ok(ephyra("files", "resume", run, "--board", board))
        conductor.wait_for(f"finished files run {run}: run succeeded; job consumed", timeout=120)
        assert made(files) == [f"step-{i}" for i in range(STEPS)]
        assert ledger(files) == forward_ledger()
        assert_agrees(files, status(ephyra, run))
        # rollback --board
        open_gates(files, *undo_gates())
        ok(ephyra("files", "rollback", run, "--board", board))
        conductor.wait_for(f"finished files run {run}: run rolled-back; job consumed", timeout=120)
        shown = status(ephyra, run)
        assert (shown["state"], shown["phase"]) == ("rolled-back", "rollback")
        assert made(files) == [] and ledger(files) == rollback_ledger()
        assert_agrees(files, shown)
        jobs = ok(ephyra("-f", "json", "conductor", "--board", board, "--list"))
        assert json.loads(jobs.out) == []
        record = json.loads(ok(ephyra("run", "list", "-f", "json")).out)
        assert [(r["id"], r["state"]) for r in record] == [(run, "rolled-back")]
    finally:
        conductor.stop()


# -- in the dashboard -------------------------------------------------------------------
def test_the_dashboard_shows_and_acts_on_a_files_run(
    ephyra: Ephyra, files: Path, tmp_path: Path
) -> None:
    server = Server(ephyra, tmp_path, config={})
    try:
        body = {"dir": str(files), "steps": STEPS, "hold": True}
        run = server.call("POST", "/v1/files/runs", json=body).json()["id"]
        open_gates(files, "begin-0", "end-0")
        events_until(server, run, lambda e: e.get("text") == "step-1: waiting for begin-1")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            log_in(page, server, ADMIN)
            row = page.locator(f'tr.run[data-run-id="{run}"]')
            expect(row).to_contain_text("files", timeout=20_000)
            row.click()
            expect(page.locator("#run-title")).to_contain_text(f"files {STEPS} files in {files}")
            state = page.locator("#run-state")
            expect(state).to_have_attribute("data-state", "running", timeout=20_000)
            expect(page.locator("#run-progress")).to_have_attribute("aria-valuemax", str(STEPS))
            page.click('#actions button[data-action="pause"]')
            expect(page.locator("#message")).to_contain_text("pause of run")
            expect(state).to_have_attribute("data-state", "paused", timeout=60_000)
            items = page.locator("#items tbody tr")
            expect(items).to_have_count(STEPS)
            expect(items.first).to_have_attribute("data-state", "done")
            expect(items.nth(1)).to_have_attribute("data-state", "pending")
            expect(page.locator("#run-progress")).to_have_attribute("aria-valuenow", "1")
            open_gates(files, *forward_gates())
            page.click('#actions button[data-action="resume"]')
            expect(state).to_have_attribute("data-state", "succeeded", timeout=60_000)
            expect(page.locator("#run-progress")).to_have_attribute("aria-valuenow", str(STEPS))
            open_gates(files, *undo_gates())
            page.click('#actions button[data-action="rollback"]')
            expect(state).to_have_attribute("data-state", "rolled-back", timeout=60_000)
            expect(items.first).to_contain_text("done")
            browser.close()
        assert made(files) == [] and ledger(files) == rollback_ledger()
        assert_agrees(files, status(ephyra, run))
    finally:
        code = server.stop()
    assert code in (0, -15), (tmp_path / "serve.log").read_text()
