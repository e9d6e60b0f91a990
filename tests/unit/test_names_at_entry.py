"""Host names and versions are checked wherever they enter: inventories, the upgrade
specification, the versions store, the command line and the agent's configuration."""

from __future__ import annotations

import contextlib
import io
import textwrap
from pathlib import Path

import pytest

from ephyra.agent.loop import AgentConfig
from ephyra.cli.main import main
from ephyra.errors import UsageError
from ephyra.inventory.model import Host, inventory, make_host
from ephyra.inventory.source import discover
from ephyra.strategies import base
from ephyra.strategies.base import build
from ephyra.upgrade import runner, spec
from ephyra.versions import desired, lifecycle, report
from ephyra.versions.keys import Keys
from ephyra.versions.store import open_store
from tests.unit.upgrade import upgrade_fakes
from tests.unit.upgrade.test_runner import Env
from tests.unit.upgrade.test_runner import _spec as _upgrade_spec
from tests.unit.upgrade.upgrade_fakes import WORLD

BAD_HOSTS = ["cmp-1;touch PWNED", "$(reboot)", "../etc", "-oProxyCommand=x", "a b", "", "x" * 300]
BAD_VERSIONS = ["2025.2;touch PWNED;echo", "../../x", "1.0/2", "`id`", "a b", "x" * 200]


@pytest.mark.parametrize("name", BAD_HOSTS)
def test_an_inventory_with_a_bad_host_name_is_refused_naming_its_source(name: str) -> None:
    hosts: list[Host] = [make_host("cmp-1", sources=["static:inv.yaml"])]
    hosts.append(make_host(name, sources=["static:inv.yaml"]))
    with pytest.raises(UsageError, match=r"host name from static:inv.yaml .* refused"):
        inventory(hosts)


def test_a_static_inventory_file_with_a_hostile_host_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text('hosts:\n  cmp-1: {}\n  "cmp-2;touch PWNED": {roles: [compute]}\n')
    with pytest.raises(UsageError, match=r"host name from static:.*inv.yaml 'cmp-2;touch PWNED'"):
        discover([f"static:{path}"])


def test_an_ansible_inventory_with_a_hostile_host_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            all:
              children:
                compute:
                  hosts:
                    cmp-1: {}
                    "cmp-2$(touch PWNED)": {}
            """
        )
    )
    with pytest.raises(UsageError, match=r"host name from ansible:.*'cmp-2\$\(touch PWNED\)'"):
        discover([f"ansible:{path}"])
    assert not Path("PWNED").exists() and not (tmp_path / "PWNED").exists()


def _spec(release: object) -> dict[str, object]:
    return {"release": release, "strategies": {"default": {"type": "noop"}}}


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_the_upgrade_specification_refuses_a_bad_release(version: str) -> None:
    with pytest.raises(UsageError, match=r"^spec.release .* refused"):
        spec.parse(_spec(version))
    assert spec.parse(_spec("2026.2")).release == "2026.2"


def test_the_spec_timeouts_of_reboot_and_checks() -> None:
    data = {
        **_spec("2026.2"),
        "host_upgrade": {"strategy": "default", "reboot": "true"},
        "gates": {"checks": [{"command": "true"}, {"command": "true", "timeout": 5}]},
    }
    parsed = spec.parse(data)
    assert parsed.host_upgrade is not None and parsed.host_upgrade.reboot_timeout == 600
    assert [c.timeout for c in parsed.gates.checks] == [60, 5]
    data["host_upgrade"] = {"strategy": "default", "reboot_timeout": 0}
    with pytest.raises(UsageError, match="reboot_timeout: must be a positive number"):
        spec.parse(data)


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_the_store_takes_and_gives_only_valid_versions(version: str, tmp_path: Path) -> None:
    keys = Keys("/t")
    with open_store(f"sqlite:///{tmp_path / 'v.db'}") as store:
        with pytest.raises(UsageError, match="refused"):
            desired.trigger(store, keys, version)
        assert desired.read(store, keys) is None
        store.put(keys.current_version, version)  # written by something else
        with pytest.raises(UsageError, match=r"desired version /t/current_version .* refused"):
            desired.current(store, keys)
        assert "(refused: malformed)" in report.status(store, keys)["current_version"]
        made = desired.trigger(store, keys, "2.0")  # a malformed one is replaced at once
        assert (made.previous, desired.current(store, keys)) == (version, "2.0")
        with pytest.raises(UsageError, match="refused"):
            lifecycle.set_state(store, keys, "cmp-1", "configured/success", version)
        with pytest.raises(UsageError, match="refused"):
            report.verify(store, keys, "2.0", ["cmp-1", "cmp-2;x"])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["version", "trigger", "2025.2;touch PWNED;echo"], "VERSION '2025.2;touch PWNED;echo'"),
        (["version", "verify", "../../x", "cmp-1"], "VERSION '../../x' refused"),
        (["version", "verify", "2.0", "cmp-1", "$(id)"], "HOST '$(id)' refused"),
        (["roles", "hosts-of", "compute", "--version", "1/2"], "--version '1/2' refused"),
        (["host", "maintenance", "on", "cmp-1;x", "--os-cloud", "c"], "HOST 'cmp-1;x' refused"),
        (["agent", "--host", "a;b", "--role", "compute", "--upgrade", "true"], "--host 'a;b'"),
    ],
)
def test_the_command_line_refuses_bad_hosts_and_versions(
    args: list[str], says: str, tmp_path: Path
) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--store", f"sqlite:///{tmp_path / 'v.db'}", *args])
    assert code == 2
    assert says in err.getvalue()


@pytest.mark.parametrize("name", BAD_HOSTS)
def test_an_agent_refuses_a_bad_host_name(name: str) -> None:
    strategy = build({"type": "command", "upgrade": "true"})
    with pytest.raises(UsageError, match="refused"):
        AgentConfig(name, {"compute": "10.0.0.1"}, strategy)


def test_a_rollback_never_downgrades_to_a_malformed_version_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version a strategy reported before the upgrade comes from the host: one that is
    not a valid version is kept as it is, and the action is left at the release."""
    monkeypatch.setattr(runner, "build", upgrade_fakes.build)
    monkeypatch.setattr(base, "build", upgrade_fakes.build)
    WORLD.__init__()  # type: ignore[misc]
    WORLD.versions[("cmp-1", "nova-compute")] = "1.0;touch PWNED"
    env = Env(tmp_path)
    env.start(_upgrade_spec(), computes=1)
    WORLD.calls.clear()
    run = env.rollback()
    status = env.service.status(run.id)
    kept = {u.host: u.kept for u in status.detail.units if u.kept}
    assert kept == {
        "cmp-1": "left at 2.0: the version before, '1.0;touch PWNED', is not a valid version"
    }
    assert ("downgrade", "cmp-1") not in {(what, host) for what, host, *_ in WORLD.calls}
    assert WORLD.versions[("cmp-1", "nova-compute")] == "2.0"
