"""Two tenants migrated into cloud b at once share b's slots: with ``--concurrency 1``,
while the first run is held inside its server move (before its boot on b), the second
says it waits for a slot and has made nothing on b; once the first goes on, both finish
and both tenants are on b. Numbers that cannot bound anything are refused (exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ephyra.tenants.transfer import images_by
from testbed.tenantclouds import TwoClouds
from tests.functional.crash import ok, said
from tests.functional.ephyra_cli import Background, Ephyra
from tests.functional.holds import HELD, Gate, held_ephyra
from tests.functional.tenants import active, export, public_key, statuses, wait_for

pytestmark = pytest.mark.functional
HOLD = "ephyra.tenants.transfer:boot"
WAITING = "waiting for a slot of tenant-migration into b: 1 of 1 held by other runs"


def small_tenant(admin: Any, member: Any, name: str) -> tuple[str, dict[str, str]]:
    """The tenant ``name`` on a: one server (from an image of its own, with a key pair
    named after the tenant: the run's user holds a copy of it on b for the boot), a
    flavor, a security group, a network and subnet."""
    project = admin.identity.find_project(name).id
    user = admin.identity.find_user(f"{name}-member")
    flavor = admin.compute.create_flavor(name=f"{name}.tiny", vcpus=1, ram=64, disk=1)
    member.compute.create_keypair(name=f"{name}-key", public_key=public_key())
    image = member.image.create_image(
        name=f"{name}-img", disk_format="raw", container_format="bare",
        data=b"s" * 4096, wait=True,
    )  # fmt: skip
    member.network.create_security_group(name="web", description="web servers")
    net = member.network.create_network(name="net")
    member.network.create_subnet(
        name="sub", network_id=net.id, cidr="192.168.20.0/24", ip_version=4
    )
    server = member.compute.create_server(
        name="vm0", flavor_id=flavor.id, image_id=image.id, key_name=f"{name}-key",
        networks=[{"uuid": net.id}], security_groups=[{"name": "web"}],
    )  # fmt: skip
    wait_for(lambda: active(member, server.id), f"{name} vm0 ACTIVE on a", timeout=300)
    return project, {user.id: user.name}


def migrate(project: str) -> list[str]:
    return ["-v", "tenant", "migrate", project, "--from", "a", "--to", "b", "--yes"]


def test_two_tenants_into_b_with_one_slot_move_one_at_a_time(
    two_clouds: TwoClouds, tmp_path: Path
) -> None:
    two = two_clouds
    a, b = two.connect("a"), two.connect("b")
    tenants = {}
    for name in ("slot-one", "slot-two"):
        two.add_project(name)
        member = two.connect(two.entry_name("a", name, "member"))
        project, users = small_tenant(a, member, name)
        tenants[name] = (project, users, export(a, project, users))
    ephyra = Ephyra(two.clouds_yaml, tmp_path / "state")  # one lock backend for both
    gate = Gate(tmp_path / "boot")

    first = Background(
        [*held_ephyra(HOLD, 1, gate), *migrate("slot-one"), "--concurrency", "1"], ephyra.env
    )
    try:
        first.wait_for(said(f"{HELD} {HOLD} call 1"), timeout=600)  # holds b's only slot
        second = ephyra.background(*migrate("slot-two")[1:], "--concurrency", "1")
        try:
            second.wait_for(said(WAITING), timeout=300)
            project, _, _ = tenants["slot-two"]
            assert statuses(b, project) == {}  # no server of its own on b meanwhile
            assert images_by(b, owner=project) == []  # nor an image copied
        finally:
            gate.open()
            done = second.finish(timeout=900)
        assert done.code == 0, done.err
    finally:
        gate.open()
        moved = first.finish(timeout=900)
    assert moved.code == 0, moved.err

    for name, (project, users, before) in tenants.items():
        after = export(b, project, users)
        for kind in before:
            assert after[kind] == before[kind], (name, kind)
        assert statuses(b, project) == {"vm0": "ACTIVE"}
        assert statuses(a, project) == {"vm0": "SHUTOFF"}


@pytest.mark.parametrize(
    ("numbers", "problem"),
    [
        (("--concurrency", "0"), "concurrency"),
        (("--concurrency", "65"), "concurrency"),
        (("--concurrency", "4", "--bytes-in-flight", "131072"), "at least one chunk"),
    ],
)
def test_numbers_that_bound_nothing_are_refused(
    tmp_path: Path, numbers: tuple[str, ...], problem: str
) -> None:
    ephyra = Ephyra(tmp_path / "clouds.yaml", tmp_path / "state")  # refused before any cloud
    refused = ok(ephyra("tenant", "migrate", "p", "--from", "a", "--to", "b", *numbers), 2)
    assert problem in refused.err, refused.err
