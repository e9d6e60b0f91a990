"""A tenant's workload on cloud ``a`` of :class:`testbed.tenantclouds.TwoClouds`, to move
to ``b``: what the tenant migration's tests and ``bench/tenant.py`` make.

:func:`make_tenant` gives a project (made by :meth:`TwoClouds.add_project`) servers, two
of them in a server group, two key pairs, a flavor with extra specs, two images, a
security group with a rule, and a network, subnet and router.
"""

from __future__ import annotations

from typing import Any

from testbed.nova_watch import wait_until

#: Servers of a tenant unless told otherwise.
SERVERS = 6
#: How long one server of the testbed may take to become ACTIVE, seconds.
BOOT_TIMEOUT = 300


def public_key() -> str:
    """A new Ed25519 public key, in OpenSSH's form."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode()


def statuses(conn: Any, project: str) -> dict[str, str]:
    """Server name -> status of every server of ``project`` (``conn``: an admin's)."""
    return {s.name: s.status for s in conn.compute.servers(all_projects=True, project_id=project)}


def active(conn: Any, server: str) -> bool:
    """Whether ``server`` is ACTIVE; an AssertionError with Nova's fault if in ERROR."""
    found = conn.compute.get_server(server)
    assert found.status != "ERROR", (found.fault or {}).get("message")
    return bool(found.status == "ACTIVE")


def make_tenant(
    admin: Any, member: Any, name: str, servers: int = SERVERS
) -> tuple[str, dict[str, str]]:
    """The tenant ``name`` on a (``admin``'s cloud; ``member`` its member): ``servers``
    servers (2 in a server group), 2 key pairs, a flavor with extra specs, 2 images, a
    security group with rules, a network, subnet and router. Returns the project's id and
    its users (id -> name: the member and the reader)."""
    project = admin.identity.find_project(name).id
    user = admin.identity.find_user(f"{name}-member")
    reader = admin.identity.find_user(f"{name}-reader")
    flavor = admin.compute.create_flavor(name=f"{name}.tiny", vcpus=1, ram=64, disk=1)
    admin.compute.create_flavor_extra_specs(flavor, {"hw:cpu_policy": "shared", "x:y": "z"})
    for n in (1, 2):
        member.compute.create_keypair(name=f"key{n}", public_key=public_key())
    images = [
        member.image.create_image(
            name=f"img{n}",
            disk_format="raw",
            container_format="bare",
            data=bytes([n]) * 4096,
            properties={"os_distro": f"distro{n}"},
            wait=True,
        )
        for n in (1, 2)
    ]
    group = member.compute.create_server_group(name="pair", policy="affinity")
    sg = member.network.create_security_group(name="web", description="web servers")
    member.network.create_security_group_rule(
        security_group_id=sg.id, direction="ingress", protocol="tcp",
        port_range_min=80, port_range_max=80, remote_ip_prefix="10.0.0.0/8",
    )  # fmt: skip
    net = member.network.create_network(name="net")
    subnet = member.network.create_subnet(
        name="sub", network_id=net.id, cidr="192.168.10.0/24", ip_version=4
    )
    router = member.network.create_router(name="rtr")
    member.network.add_interface_to_router(router, subnet_id=subnet.id)
    made = []
    for n in range(servers):
        hints = {"group": group.id} if n < 2 else {}
        made.append(
            member.compute.create_server(
                name=f"vm{n}",
                flavor_id=flavor.id,
                image_id=images[n % 2].id,
                key_name=f"key{1 + n % 2}",
                metadata={"role": f"r{n}"},
                networks=[{"uuid": net.id}],
                security_groups=[{"name": "web"}],
                scheduler_hints=hints,
            )
        )
    for server in made:
        wait_until(
            lambda s=server: active(member, s.id), BOOT_TIMEOUT, f"{server.name} ACTIVE on a"
        )
    return project, {user.id: user.name, reader.id: reader.name}
