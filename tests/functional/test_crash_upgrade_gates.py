"""An upgrade killed -9 where it waits on an operator's rule, not on a step: held outside
its maintenance windows, and in the stage an approval let go with a step asked to stop
after it. The process started again holds to the same rules: no stage before the window,
no approval asked twice, the step still stops after its stage, every host's command run
once to its end.

The hosts come from a static inventory and the upgrade is a command that writes to a
ledger when it begins and ends (no cloud: what is checked here is the run's own rules,
kept in its journal)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from ephyra.upgrade.windows import shown
from tests.functional.crash import ok, shown_status, wait_file
from tests.functional.ephyra_cli import Ephyra

pytestmark = pytest.mark.functional

HOSTS = {
    "hosts": {
        "ctl-1": {"roles": ["controller"], "services": ["nova-conductor"]},
        "sto-1": {"roles": ["storage"], "services": ["cinder-volume"]},
        "cmp-1": {"roles": ["compute"], "services": ["nova-compute"]},
        "cmp-2": {"roles": ["compute"], "services": ["nova-compute"]},
    }
}
#: The upgrade command: a line in the ledger when it begins and when it ends; while
#: ``hold-HOST`` exists and ``open-HOST`` does not, it says so (``held-HOST``, its pid)
#: and waits.
UPGRADE = """\
import os, sys, time

host, ledger, gates = sys.argv[1:4]
with open(ledger, "a") as out:
    out.write(f"{host} begins {time.time()}\\n")
hold, opened = os.path.join(gates, "hold-" + host), os.path.join(gates, "open-" + host)
if os.path.exists(hold) and not os.path.exists(opened):
    with open(os.path.join(gates, "held-" + host), "w") as held:
        held.write(str(os.getpid()))
    while not os.path.exists(opened):
        time.sleep(0.05)
with open(ledger, "a") as out:
    out.write(f"{host} ends {time.time()}\\n")
"""


class Upgrade:
    """The four hosts' upgrade to 2.0 under ``tmp``: its spec (with ``rules`` added), its
    ledger and its gates."""

    def __init__(self, tmp: Path, rules: dict[str, Any]) -> None:
        self.ledger, self.gates = tmp / "ledger", tmp / "gates"
        self.gates.mkdir()
        script, inventory, spec = tmp / "upgrade.py", tmp / "hosts.yaml", tmp / "upgrade.yaml"
        script.write_text(textwrap.dedent(UPGRADE))
        inventory.write_text(yaml.safe_dump(HOSTS))
        command = f"{sys.executable} {script} {{host}} {self.ledger} {self.gates}"
        spec.write_text(
            yaml.safe_dump(
                {
                    "release": "2.0",
                    "strategies": {"ledger": {"type": "command", "upgrade": command}},
                    "strategy": "ledger",
                    "roles": {
                        "compute": {"drain": False, "max_at_once": 1},
                        "storage": {"drain": False},
                    },
                    "gates": {"services_up": False},
                    "availability": {"interval": 0},
                    **rules,
                }
            )
        )
        clouds = tmp / "clouds.yaml"
        clouds.write_text("clouds: {}\n")
        self.ephyra = Ephyra(clouds, tmp / "state")
        self.args = ["--spec", str(spec), "--source", f"static:{inventory}"]

    def hold(self, host: str) -> None:
        (self.gates / f"hold-{host}").touch()

    def held(self, host: str) -> None:
        wait_file(self.gates / f"held-{host}")

    def release(self, host: str) -> None:
        """End the command a killed process left waiting (it never ends by itself), and
        let the next one pass."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(int((self.gates / f"held-{host}").read_text()), signal.SIGKILL)
        (self.gates / f"open-{host}").touch()

    def lines(self, what: str) -> list[tuple[str, float]]:
        """(host, when) of each command that began (or ended), in order."""
        text = self.ledger.read_text() if self.ledger.exists() else ""
        split = [line.split() for line in text.splitlines()]
        return [(host, float(at)) for host, said, at in split if said == what]

    def count(self, what: str) -> Counter[str]:
        """How many commands of each host began (or ended)."""
        return Counter(host for host, _ in self.lines(what))


def test_a_run_killed_while_a_window_holds_it_holds_again_and_goes_on_in_the_window(
    tmp_path: Path,
) -> None:
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    up = Upgrade(tmp_path, {"windows": [{"start": opens.isoformat(), "duration": "1h"}]})
    waiting = f"outside maintenance windows: waiting until {shown(opens, UTC)}"

    run = up.ephyra.background("upgrade", "start", "--yes", *up.args)
    run.wait_for(lambda line: waiting in line)
    run.kill()
    assert datetime.now(UTC) < opens and not up.ledger.exists()  # nothing begun
    status = shown_status(up.ephyra, "upgrade")
    assert (status["state"], status["reason"]) == ("running", waiting)  # the process is gone

    again = up.ephyra.background("upgrade", "resume")
    said = again.wait_for(lambda line: waiting in line)
    assert said.endswith(f"{waiting} to begin control plane: nova-conductor")
    assert datetime.now(UTC) < opens and not up.ledger.exists()
    ok(again.finish())

    assert up.count("begins") == up.count("ends") == Counter(list(HOSTS["hosts"]))  # each once
    assert min(at for _, at in up.lines("begins")) >= opens.timestamp()
    status = shown_status(up.ephyra, "upgrade")
    assert (status["state"], status["reason"]) == ("succeeded", "")


def test_a_run_killed_in_an_approved_stepped_stage_asks_no_approval_again_and_stops_after_it(
    tmp_path: Path,
) -> None:
    up = Upgrade(tmp_path, {"approvals": ["data plane: storage"]})
    waits = "stage data plane: storage waits for approval"

    started = up.ephyra("upgrade", "start", "--yes", *up.args)
    assert started.code == 1 and waits in started.err, started.err
    stepped = up.ephyra("upgrade", "step")  # the next stage, then a pause: still unapproved
    assert stepped.code == 1 and waits in stepped.err, stepped.err
    assert up.count("ends") == Counter(["ctl-1"])

    up.hold("sto-1")
    approved = up.ephyra.background("upgrade", "approve")
    up.held("sto-1")
    approved.kill()
    up.release("sto-1")
    status = shown_status(up.ephyra, "upgrade")
    assert status["state"] == "running"
    [approval] = status["approvals"]
    assert approval["stage"] == "data plane: storage" and approval["by"]

    resumed = ok(up.ephyra("upgrade", "resume"), 1)  # paused again, after the step's stage
    assert "waits for approval" not in resumed.err
    status = shown_status(up.ephyra, "upgrade")
    assert status["state"] == "paused" and status["reason"].startswith(
        "stepped: stage data plane: storage done"
    )
    assert up.count("begins") == Counter(["ctl-1", "sto-1", "sto-1"])  # killed, then again
    assert up.count("ends") == Counter(["ctl-1", "sto-1"])  # no compute's begun

    ok(up.ephyra("upgrade", "resume"))
    assert up.count("ends") == Counter(list(HOSTS["hosts"]))  # every host's, once
    status = shown_status(up.ephyra, "upgrade")
    assert status["state"] == "succeeded"
    assert [a["by"] for a in status["approvals"]] == [approval["by"]]  # the same, kept
