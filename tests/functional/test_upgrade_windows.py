"""Maintenance windows with a real run of ``ephyra upgrade start``: a window that closes
while a stage is in flight lets that stage finish, holds the run (saying so in its
output and its status) and the run goes on by itself when the next window opens.

Two stages (the controller's, then the compute's), two explicit windows: the first open
now for a few seconds, the second opening a few seconds after it closes. The controller's
upgrade command holds until the test lets it go, which it does only once it has seen the
first window close; the compute's must not begin before the second window opens."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from ephyra.operations.local import Local
from ephyra.upgrade.windows import shown
from tests.functional.ephyra_cli import Ephyra

pytestmark = pytest.mark.functional

#: Seconds the first window stays open (a start of ``ephyra`` must begin the first stage
#: by then, on a busy machine too), and between the two windows.
OPEN, GAP = 30.0, 10.0

#: The upgrade command: records when it begins and ends; the controller's waits for the
#: test to write to the FIFO first.
UPGRADE = """\
import sys, time

host, log, fifo = sys.argv[1:4]
with open(log, "a") as out:
    out.write(f"{host} begins {time.time()}\\n")
if host == "ctl-1":
    print("holding until let go", flush=True)
    with open(fifo) as held:
        held.read()
with open(log, "a") as out:
    out.write(f"{host} ends {time.time()}\\n")
"""


def test_a_window_closing_mid_run_holds_the_next_stage_until_the_next_window(
    tmp_path: Path,
) -> None:
    script, log, fifo = tmp_path / "upgrade.py", tmp_path / "upgrade.log", tmp_path / "let-go"
    script.write_text(textwrap.dedent(UPGRADE))
    os.mkfifo(fifo)
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "hosts": {
                    "ctl-1": {"roles": ["controller"], "services": ["nova-conductor"]},
                    "cmp-1": {"roles": ["compute"], "services": ["nova-compute"]},
                }
            }
        )
    )
    now = datetime.now(UTC).replace(microsecond=0)
    closes = now + timedelta(seconds=OPEN)
    opens = closes + timedelta(seconds=GAP)
    spec = tmp_path / "upgrade.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "release": "2.0",
                "strategies": {
                    "held": {
                        "type": "command",
                        "upgrade": f"{sys.executable} {script} {{host}} {log} {fifo}",
                    }
                },
                "strategy": "held",
                "roles": {"compute": {"drain": False}},
                "gates": {"services_up": False},
                "availability": {"interval": 0},
                "windows": [
                    {"start": (now - timedelta(minutes=1)).isoformat(), "end": closes.isoformat()},
                    {"start": opens.isoformat(), "duration": "1h"},
                ],
            }
        )
    )
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")  # no cloud: a static inventory, nothing drained
    ephyra = Ephyra(clouds, tmp_path / "state")
    args = ["--spec", str(spec), "--source", f"static:{inventory}"]

    run = ephyra.background("upgrade", "start", *args)
    run.wait_for(lambda line: "ctl-1:" in line and "holding until let go" in line)
    assert datetime.now(UTC) < closes, "the first stage did not begin inside the first window"
    time.sleep(max(0.0, (closes - datetime.now(UTC)).total_seconds()))  # the window closes
    with open(fifo, "w") as let_go:  # the stage in flight goes on past its window's end
        let_go.write("go\n")
    said = run.wait_for(lambda line: "outside maintenance windows: waiting until" in line)
    assert said.endswith(f"waiting until {shown(opens, UTC)} to begin data plane: compute")

    # the status says why it waits (`ephyra upgrade status`, in this process: no start-up)
    status = Local(journal_url=f"sqlite:///{ephyra.journal_file}").status("upgrade", None)
    assert datetime.now(UTC) < opens
    assert status["state"] == "running"
    assert status["reason"] == f"outside maintenance windows: waiting until {shown(opens, UTC)}"

    done = run.finish()
    assert done.code == 0, done.err
    assert "maintenance window open: beginning data plane: compute" in done.err
    times = {
        tuple(line.split()[:2]): float(line.split()[2]) for line in log.read_text().splitlines()
    }
    assert times[("ctl-1", "begins")] < closes.timestamp() <= times[("ctl-1", "ends")]
    assert times[("cmp-1", "begins")] >= opens.timestamp()  # not before the next window
    status = json.loads(ephyra("upgrade", "status", "--format", "json").out)
    assert status["state"] == "succeeded" and status["reason"] == ""
    # planned now, inside the second window, both stages are estimated in it
    plan = json.loads(ephyra("upgrade", "plan", *args, "--format", "json").out)
    assert [s["window"].split(",")[0] for s in plan["stages"]] == [shown(opens, UTC)] * 2
