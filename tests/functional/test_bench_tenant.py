"""``bench/tenant.py`` with tenants of two servers, on the session's two clouds: both the
openstack CLI script and ``ephyra tenant migrate`` move every server (ACTIVE on b under its
name, the original SHUTOFF on a), and the line printed has the benchmarks' form. No time is
asserted: that is the benchmark's to report."""

from __future__ import annotations

import json
import re
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
