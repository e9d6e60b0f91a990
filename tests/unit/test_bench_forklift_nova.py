"""The openstack CLI script of ``bench/forklift.py --nova``: every value read from the
clouds (node and server names, metadata) reaches ``openstack`` as the one argument it is;
the shell runs none of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import forklift_nova as bench  # noqa: E402  (bench/forklift_nova.py)

FAKE_OPENSTACK = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
if "provision_state" in sys.argv:
    print("available")
elif "reserved" in sys.argv:
    print("0")
"""


def test_the_script_passes_every_value_as_one_argument(tmp_path: Path) -> None:
    bad = "bm'; touch pwned #\n$(touch pwned2) `touch pwned3`"
    node = bench.Node(
        uuid="0f7a2b7e-0000-4000-8000-000000000001",
        fields={
            "name": bad,
            "driver": "fake-hardware",
            "resource_class": "baremetal-small",
            "properties": {"rack": "$(touch pwned4)"},
            "extra": {},
            "owner": None,
            "lessee": None,
        },
        ports=[{"address": "52:54:00:00:00:01", "uuid": "p-1", "pxe_enabled": True}],
        server="s-1",
        server_name="web;touch pwned5",
        metadata={"role": "$(touch pwned6)"},
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "openstack").write_text(FAKE_OPENSTACK)
    (bin_dir / "openstack").chmod(0o755)
    path = tmp_path / "move.sh"
    path.write_text(bench.script([node], "a", "b"))
    calls = tmp_path / "calls"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls)}
    done = subprocess.run(["bash", str(path)], cwd=tmp_path, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob("pwned*"))
    made = [json.loads(line) for line in calls.read_text().splitlines()]
    create = next(c for c in made if c[2:5] == ["baremetal", "node", "create"])
    assert create[create.index("--name") + 1] == bad
    assert create[create.index("--property") + 1] == "rack=$(touch pwned4)"
    boot = next(c for c in made if "server" in c and "create" in c)
    assert boot[-1] == "web;touch pwned5"
    assert boot[boot.index("--property") + 1] == "role=$(touch pwned6)"
    assert boot[boot.index("--hypervisor-hostname") + 1] == node.uuid
    assert made[-1] == boot  # the server booted last, once the node is offered
