"""The pieces of the Nova testbed on real releases (docs/testbed.md): what a host's venv
shares, and which supervised service runs a Nova service of a host. The testbed itself,
started and upgraded, is tests/functional/test_upgrade_release.py's."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed import novavenv
from testbed.releases import BadRelease, service_name

pytestmark = pytest.mark.functional


def test_a_host_venv_shares_all_but_nova_placement_pip_and_ephyra(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()
    names = [
        "nova",
        "nova-34.0.0.dist-info",
        "novaclient",
        "placement",
        "openstack_placement-16.0.0.dist-info",
        "pip",
        "pip-26.3.dist-info",
        "setuptools",
        "pkg_resources",
        "_distutils_hack",
        "distutils-precedence.pth",
        "__pycache__",
        "ephyra",
        "ephyra-0.1.0.dist-info",
        "__editable__.ephyra-0.1.0.pth",
        "Paste-3.10.1-py3.12-nspkg.pth",
        "oslo_utils",
        "oslo.utils-9.0.0.dist-info",
    ]
    for name in names:
        (site / name).mkdir()
    deps = novavenv.shared_deps(tmp_path / "deps", site)
    assert sorted(p.name for p in deps.iterdir()) == [
        "Paste-3.10.1-py3.12-nspkg.pth",
        "novaclient",
        "oslo.utils-9.0.0.dist-info",
        "oslo_utils",
    ]
    assert (deps / "oslo_utils").resolve() == site / "oslo_utils"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "openstack_placement-15.0.0-py3-none-any.whl").touch()
    assert novavenv.wheel_for("openstack-placement==15.0.0", wheels) is not None
    assert novavenv.wheel_for("openstack-placement==16.0.0", wheels) is None
    with pytest.raises(ValueError, match="exact pin"):
        novavenv.wheel_for("nova>=34", wheels)


def test_a_nova_service_and_its_host_name_one_supervised_service() -> None:
    assert service_name("nova-compute", "compute-12") == "compute-12"
    assert service_name("placement-api", "controller") == "placement"
    assert service_name("nova-conductor", "controller") == "nova-conductor"
    for service, host in (("nova-compute", "controller"), ("nova-api", "compute-1")):
        with pytest.raises(BadRelease):
            service_name(service, host)
    with pytest.raises(BadRelease, match="unknown service"):
        service_name("placement", "controller")
