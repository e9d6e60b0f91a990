"""``bench/tenant.py`` with tenants of two servers, on the session's two clouds: both the
openstack CLI script and ``ephyra tenant migrate`` move every server (ACTIVE on b under its
name, the original SHUTOFF on a), and the line printed has the benchmarks' form. No time is
asserted: that is the benchmark's to report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.tenantclouds import TwoClouds
from testbed.tenantload import statuses

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import tenant as bench  # noqa: E402  (bench/tenant.py)

pytestmark = pytest.mark.functional
SERVERS = 2
LINE = re.compile(
    rf"bench/tenant\.py \({SERVERS} servers\): openstack CLI script (\d+\.\d) s, "
    r"ephyra (\d+\.\d) s, ratio (\d+\.\d)x"
)


def test_the_tenant_benchmark_moves_every_server_both_ways(
    two_clouds: TwoClouds, tmp_path: Path, capsys: pytest.CaptureFixture[str], report: list[str]
) -> None:
    results = tmp_path / "tenant.json"
    code = bench.main(["--servers", str(SERVERS), "--json", str(results)], clouds=two_clouds)
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    found = LINE.fullmatch(lines[0])
    assert found, out
    cli, ours, ratio = (float(v) for v in found.groups())
    assert cli > 0 and ours > 0
    assert ratio == pytest.approx(cli / ours, abs=0.1, rel=0.02)
    assert lines[1].startswith("ephyra beyond the script: froze the tenant on a"), out
    for brought in ("flavor 1", "keypair 2", "server_group 1", "network 1", "image 2"):
        assert brought in lines[1], out
    assert len(lines) == 2, out  # no FAILED line
    rows = {r["name"]: r for r in json.loads(results.read_text())}
    assert set(rows) == {"openstack-cli", "ephyra"}
    a, b = two_clouds.connect("a"), two_clouds.connect("b")
    names = {f"vm{n}" for n in range(SERVERS)}
    for row in rows.values():  # checked here too, from the side
        assert row["problems"] == [] and row["servers"] == SERVERS, row
        project = a.identity.find_project(row["project"]).id
        assert statuses(b, project) == dict.fromkeys(names, "ACTIVE"), row
        assert statuses(a, project) == dict.fromkeys(names, "SHUTOFF"), row
    report.append(lines[0])


FAKE_OPENSTACK = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
if "--wait" in sys.argv:  # as the real one does
    print("\\rProgress: 10\\rProgress: 100")
if "-c" in sys.argv:
    print("id-" + str(sum(1 for _ in open(os.environ["CALLS"]))))
"""


def test_the_script_passes_every_value_as_one_argument(tmp_path: Path) -> None:
    """Names and metadata with quotes, ``$( )``, ``;`` and a newline reach ``openstack``
    as the very arguments they are; the shell runs none of them."""
    bad = "vm'; touch pwned #\n$(touch pwned2) `touch pwned3`"
    server = bench.Server(
        id="id'x",
        name=bad,
        flavor="f $(touch pwned4)",
        key="k;touch pwned5",
        networks=["net\nx"],
        security_groups=["web"],
        metadata={"role": "$(touch pwned6)", "x'": "a b"},
        group='g"h',
        disk_format="raw",
        container_format="bare",
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "openstack").write_text(FAKE_OPENSTACK)
    (bin_dir / "openstack").chmod(0o755)
    calls = tmp_path / "calls"
    path = tmp_path / "move.sh"
    path.write_text(bench.script([server], "a-p-member", "b-p-member", tmp_path))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls)}
    done = subprocess.run(
        ["bash", str(path)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob("pwned*"))
    image = str(tmp_path / f"{bad}.img")
    made = [json.loads(line) for line in calls.read_text().splitlines()]
    assert made == [
        ["--os-cloud", "a-p-member", "server", "image", "create", "--wait", "-f", "value",
         "-c", "id", "--name", f"move-{bad}", "id'x"],
        ["--os-cloud", "a-p-member", "image", "save", "--file", image, "id-1"],
        ["--os-cloud", "b-p-member", "image", "create", "-f", "value", "-c", "id",
         "--disk-format", "raw", "--container-format", "bare", "--file", image, f"move-{bad}"],
        ["--os-cloud", "b-p-member", "server", "create", "--wait", "-f", "value", "-c", "id",
         "--flavor", "f $(touch pwned4)", "--key-name", "k;touch pwned5", "--network", "net\nx",
         "--security-group", "web", "--property", "role=$(touch pwned6)", "--property", "x'=a b",
         "--hint", 'group=g"h', "--image", "id-3", bad],
        ["--os-cloud", "a-p-member", "server", "stop", "id'x"],
    ]  # fmt: skip
