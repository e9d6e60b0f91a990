"""Fixtures for functional tests: real Ironic control planes (cp1, cp2), a real Nova (API,
conductor, scheduler, three computes, Placement), etcd, Keystone and PostgreSQL on loopback.

Each service starts once per test run, when the first test asks for it; a test that kills or
reconfigures a service starts its own. Every test under tests/functional is marked
``functional``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the testbed package lives at the repository root
    sys.path.insert(0, str(ROOT))

from testbed.alertmanager import Alertmanager  # noqa: E402
from testbed.etcd import Etcd  # noqa: E402
from testbed.ironic import Testbed  # noqa: E402
from testbed.keystone import Keystone, start_keystone  # noqa: E402
from testbed.masakari import Masakari  # noqa: E402
from testbed.nova import NovaTestbed  # noqa: E402
from testbed.seed import clear  # noqa: E402
from testbed.tenantclouds import Cloud, TwoClouds, write_ahead_log  # noqa: E402

if TYPE_CHECKING:
    from openstack.connection import Connection

HERE = Path(__file__).resolve().parent
#: A session fixture -> the group of every test that uses it (one worker starts it).
GROUPS = {"two_clouds": "two-clouds", "heal_cloud": "selfheal", "alertmanager": "selfheal"}
#: The region of the cloud of the self-healing services' tests.
HEAL_REGION = "SELFHEAL"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the functional tests, and group them for ``pytest -n N --dist loadgroup``
    (scripts/test.sh): a module's tests run in one worker, after one another, so a module's
    fixtures start once; every test of the session's two clouds (3 minutes and 2.2 GiB to
    start), and every test of Masakari and Alertmanager, runs in one worker (:data:`GROUPS`)."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.functional)
            fixtures = getattr(item, "fixturenames", ())
            group = next(
                (g for f, g in GROUPS.items() if f in fixtures), item.nodeid.partition("::")[0]
            )
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """cp1 and cp2, started once per session; OS_CLIENT_CONFIG_FILE points at them."""
    bed = Testbed(tmp_path_factory.mktemp("testbed"), names=("cp1", "cp2"))
    with bed, pytest.MonkeyPatch.context() as patch:
        for key, value in bed.env().items():
            patch.setenv(key, value)
        yield bed


@pytest.fixture
def clean_testbed(testbed: Testbed) -> Testbed:
    """The session testbed with no node on any control plane (all restarted if needed)."""
    for service in testbed.services.values():
        if not service.is_running:
            service.start()
    for name in testbed.names:
        clear(testbed.connect(name))
    return testbed


@pytest.fixture(scope="session")
def slow_testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """cp1 and cp2 where each fake deploy-interface call sleeps 1 s (a deploy or an
    undeploy lasts about 2 s, long enough to be caught inside), and whose API shows BMC
    passwords (the ``source`` credential source, and a direct check that they arrived)."""
    bed = Testbed(tmp_path_factory.mktemp("slow"), fake_delay=1, show_secrets=True)
    with bed:
        yield bed


@pytest.fixture
def clean_slow_testbed(slow_testbed: Testbed) -> Testbed:
    for name in slow_testbed.names:
        clear(slow_testbed.connect(name))
    return slow_testbed


@pytest.fixture
def cp1(testbed: Testbed) -> Connection:
    return testbed.connect("cp1")


@pytest.fixture
def cp2(testbed: Testbed) -> Connection:
    return testbed.connect("cp2")


@pytest.fixture(scope="session")
def nova(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NovaTestbed]:
    """A real Nova with computes compute-1..3, each with two PCI devices a flavor may ask
    for (testbed.pci), started once per session (about 20 s)."""
    with NovaTestbed(tmp_path_factory.mktemp("nova"), pci_devices=2) as bed:
        yield bed


@pytest.fixture
def clean_nova(nova: NovaTestbed) -> NovaTestbed:
    """The session's Nova with no server and no server group, every compute running,
    enabled, not forced down and up."""
    nova.clean()
    return nova


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    """A real etcd (Debian's etcd-server), started once per session (under a second)."""
    root = tmp_path_factory.mktemp("etcd")
    with Etcd(root / "data", root / "etcd.log") as server:
        yield server


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """A real Keystone (admin, member and reader roles), once per session."""
    with start_keystone(tmp_path_factory.mktemp("keystone")) as started:
        yield started


@pytest.fixture(scope="session")
def second_keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """Another real Keystone, on ports and a database of its own (ids unlike the first
    one's): the identity of a cloud B that does not share A's Keystone. Once per session."""
    with start_keystone(tmp_path_factory.mktemp("keystone-b")) as started:
        yield started


#: Session testbeds stopped after the last test that needs them, not at the end of the
#: session (their services' pollers would take CPU from every test after them): fixture
#: name -> those started.
EARLY: dict[str, list[TwoClouds | Cloud]] = {"two_clouds": [], "heal_cloud": []}
LAST = pytest.StashKey[dict[str, pytest.Item]]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Note the last test (of those that run) that needs each of :data:`EARLY`."""
    last = {}
    for item in session.items:
        for name in EARLY:
            if name in getattr(item, "fixturenames", ()):
                last[name] = item
    session.config.stash[LAST] = last


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield
    for name, last in item.config.stash.get(LAST, {}).items():
        if last is item:
            while EARLY[name]:
                EARLY[name].pop().stop()


@pytest.fixture(scope="session")
def two_clouds(tmp_path_factory: pytest.TempPathFactory, keystone: Keystone) -> Iterator[TwoClouds]:
    """Clouds ``a`` and ``b`` (regions A and B) on the session's Keystone, each with its
    own Nova (a: compute-1 and compute-2, b: compute-3 and compute-4), Placement, Glance,
    Neutron and Ironic (its nodes Nova's through ``ironic-a``, ``ironic-b``), all in the
    catalog;
    ``clouds.yaml`` has the admin's entries ``a`` and ``b``, and :meth:`TwoClouds.add_project`
    adds a project's member and reader. Started once per session, both clouds at once
    (80 s on a quiet machine, up to 3 minutes on a busy one; 2.2 GiB)."""
    with TwoClouds(tmp_path_factory.mktemp("two-clouds"), keystone, baremetal=True) as clouds:
        EARLY["two_clouds"].append(clouds)
        yield clouds


@pytest.fixture
def bare_two_clouds(two_clouds: TwoClouds) -> Iterator[TwoClouds]:
    """The session's two clouds with no server, node or project another test left, and
    none of this test's left after it: Nova looks at each node it owns every 2 s, for the
    rest of the session."""
    two_clouds.clean()
    yield two_clouds
    two_clouds.clean()


@pytest.fixture(scope="session")
def secure_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    """A real etcd as production runs it: TLS only, client certificates required and
    authentication on (user ``ephyra``, its password in ``password_file``); its ``url``
    names the user and the certificates, and EPHYRA_ETCD_PASSWORD is set for the session.
    Tokens last 3 s idle (``--auth-token-ttl``), so their renewal is seen."""
    root = tmp_path_factory.mktemp("secure-etcd")
    server = Etcd(root / "data", root / "etcd.log", secure=True, token_ttl=3)
    with server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("EPHYRA_ETCD_PASSWORD", server.password)
        yield server


@pytest.fixture(scope="session")
def heal_cloud(tmp_path_factory: pytest.TempPathFactory, keystone: Keystone) -> Iterator[Cloud]:
    """A Nova with compute-1 and compute-2 in region SELFHEAL of the session's Keystone:
    the Nova that Masakari checks each host it adds against. Once per session."""
    write_ahead_log(keystone)  # Masakari logs in with a password: Keystone writes then
    bed = Cloud(
        "selfheal",
        tmp_path_factory.mktemp("selfheal-cloud"),
        keystone,
        HEAL_REGION,
        computes=2,
        image=False,
        network=False,
    )
    bed.start()
    EARLY["heal_cloud"].append(bed)
    try:
        bed.register()
        yield bed
    finally:
        bed.stop()


@pytest.fixture(scope="session")
def masakari(
    tmp_path_factory: pytest.TempPathFactory, keystone: Keystone, heal_cloud: Cloud
) -> Iterator[Masakari]:
    """A real Masakari API behind the session's Keystone, in region SELFHEAL's catalog."""
    with Masakari(tmp_path_factory.mktemp("masakari"), keystone, region=HEAL_REGION) as service:
        service.register()
        yield service


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    """A real Alertmanager, once per session."""
    with Alertmanager(tmp_path_factory.mktemp("alertmanager")) as server:
        yield server
