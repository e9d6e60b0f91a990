"""What an API request names in the audit trail."""

from __future__ import annotations

import pytest

from ephyra.api.audit import target


@pytest.mark.parametrize(
    ("path", "params", "location", "expected"),
    [
        ("/v1/forklift/runs/abc/pause", {"kind": "forklift", "run": "abc"}, "", "forklift/abc"),
        ("/v1/forklift/runs", {}, "/v1/runs/0f1e", "forklift/0f1e"),
        ("/v1/upgrade/runs", {}, "", "upgrade"),
        ("/v1/hosts/c-1/maintenance", {"host": "c-1"}, "", "c-1"),
        ("/v1/clusters/e1/nodes/n2/installed", {"cluster": "e1", "node": "n2"}, "", "e1/n2"),
        ("/v1/versions/trigger", {}, "", "versions"),
    ],
)
def test_an_api_request_names_its_target_by_its_path(
    path: str, params: dict[str, str], location: str, expected: str
) -> None:
    assert target({"path": path, "path_params": params}, location) == expected
