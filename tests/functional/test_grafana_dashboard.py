"""The Grafana dashboard in docs/ is built on metrics a real server exports: every metric
its panels ask for is in ``/metrics`` once the journal holds a run's events."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.functional.ephyra_cli import Ephyra
from tests.functional.test_api import READER, Server

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from api import fill  # noqa: E402  (bench/api.py: a journal written as runs write it)

pytestmark = pytest.mark.functional
DASHBOARD = ROOT / "docs" / "grafana" / "ephyra-dashboard.json"


def test_every_panel_asks_for_exported_metrics(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10 and dashboard["__inputs"][0]["pluginId"] == "prometheus"
    wanted = {m for e in exprs for m in re.findall(r"\bephyra_[a-z_]+", e)}
    ephyra = Ephyra(tmp_path / "no-clouds.yaml", tmp_path / "state")
    ephyra.journal_file.parent.mkdir(parents=True)
    fill(f"sqlite:///{ephyra.journal_file}", runs=2, nodes=3)
    server = Server(ephyra, tmp_path)
    try:
        assert server.call("GET", "/v1/runs", token=READER).status_code == 200
        assert server.call("GET", "/v1/runs", token=None).status_code == 401
        exported = server.call("GET", "/metrics", token=READER).text
    finally:
        server.stop()
    samples = {
        line.split("{")[0].split(" ")[0] for line in exported.splitlines() if line[:1] != "#"
    }
    assert wanted <= samples, f"not exported: {sorted(wanted - samples)}"
    assert 'ephyra_run_items{kind="forklift"' in exported
    assert re.search(r'ephyra_runs\{kind="forklift",state="succeeded"\} 2\.0', exported)
    assert re.search(
        r'ephyra_api_request_duration_seconds_count\{method="GET",route="/v1/runs",'
        r'status="401"\} 1\.0',
        exported,
    )
