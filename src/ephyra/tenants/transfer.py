"""Bringing a tenant's resources from cloud A to cloud B, one kind at a time, and taking
them back off B: what the steps of a tenant migration call.

Each ``bring`` function looks at the :class:`~ephyra.tenants.mapping.Mapping` first: a
thing on B already (created or reused) is skipped; one the run meant to create (``intent``)
is looked for on B by its mark (server metadata, image property, Neutron tag) or by its
name in the project before it is created again. A thing B has already, equal, is reused
and never deleted.

A's connection and B's admin connection are the cloud admin's; the things that belong to
the project on B (servers, server groups) are made through a connection scoped to the
project, by the run's user given a role on it for the time of the move.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from ephyra.clouds import translated
from ephyra.errors import StepFailed
from ephyra.tenants import resources
from ephyra.tenants.mapping import (
    CREATED,
    INTENT,
    MARK_FROM,
    MARK_RUN,
    MARK_TRANSFER,
    REUSED,
    Mapping,
    tag,
)
from ephyra.tenants.migrate_body import CHUNK as CHUNK  # the unit of a budget

#: The first wait between two looks at a thing under way, and the longest: each look at
#: a server costs its cloud a token check or more, so the waits grow while it takes long.
POLL = 0.2
POLL_MOST = 2.0
#: How long a server, an image or a deletion may take on the testbed or a real cloud.
TIMEOUT = 600.0


class Budget:
    """Bytes in flight across the copies that share it (a slot's: one at a time): a chunk
    read from A holds its size until it has been sent to B."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, CHUNK)
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    @classmethod
    def share(cls, total: int, slots: int) -> Budget:
        """One slot's budget when ``slots`` slots share ``total`` bytes in flight."""
        return cls(total // max(slots, 1))

    def take(self, size: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self.used + size <= self.limit)
            self.used += size
            self.peak = max(self.peak, self.used)

    def give(self, size: int) -> None:
        with self._cond:
            self.used -= size
            self._cond.notify_all()


@dataclass
class Move:
    """One migration's view of both clouds."""

    run_id: str
    project: str  # id on A
    source: str
    target: str
    a: Any  # admin connection to A
    b: Any  # admin connection to B
    mapping: Mapping
    users: dict[str, str]  # id -> name: the users whose key pairs belong to the tenant
    scoped: Callable[[], Any]  # a connection to B scoped to the project
    budget: Budget = field(default_factory=lambda: Budget(64 * 1024**2))
    message: Callable[[str], None] = field(default=lambda text: None)
    #: The project's id on B: A's when both clouds share one Keystone.
    b_project: str = ""
    _raw: dict[str, list[Any]] | None = None
    _scoped: Any = None

    def __post_init__(self) -> None:
        self.b_project = self.b_project or self.project

    def raw(self, refresh: bool = False) -> dict[str, list[Any]]:
        """What the tenant has on A (read once per flow)."""
        if self._raw is None or refresh:
            with translated(self.source, "read the tenant"):
                self._raw = resources.collect(self.a, self.project, self.users)
        return self._raw

    def on_b(self) -> Any:
        if self._scoped is None:
            self._scoped = self.scoped()
        return self._scoped

    def b_user(self, a_user: str) -> str:
        """A user's id on B (the same id when both clouds share one Keystone)."""
        return self.mapping.b_of("user", a_user) or a_user

    def within(self, budget: Budget) -> Move:
        """This move with ``budget`` for the image bytes it has in flight (a slot's);
        its tenant read on A and its connection to B shared with this one."""
        self.raw()
        return replace(self, budget=budget, scoped=self.on_b)

    def marks(self, a_id: str) -> dict[str, str]:
        return {MARK_RUN: self.run_id, MARK_FROM: a_id}


def wait_for(what: str, check: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline, pause = time.monotonic() + timeout, POLL
    while not check():
        if time.monotonic() > deadline:
            raise StepFailed(f"{what}: still not done after {timeout:.0f} s")
        time.sleep(pause)
        pause = min(pause * 1.5, POLL_MOST)


# -- quotas -------------------------------------------------------------------------------
def bring_quota(move: Move, item: dict[str, Any]) -> None:
    """Set on B the quotas A gives the project; B's values before are kept, to give back."""
    name = item["name"]
    if move.mapping.state("quota", name) == CREATED:
        return
    wanted = {k: v for k, v in item.items() if k != "name"}
    with translated(move.target, f"set {name} quotas"):
        if name == "compute":
            before = resources._quota(move.b.compute.get_quota_set(move.b_project))
        else:
            before = resources._quota(move.b.network.get_quota(move.b_project))
        changes = {k: v for k, v in wanted.items() if k in before and before[k] != v}
        if move.mapping.state("quota", name) != INTENT:
            move.mapping.intend("quota", name, name, before=before)
        if changes and name == "compute":
            move.b.compute.update_quota_set(move.b_project, **changes)
        elif changes:
            move.b.network.update_quota(move.b_project, **changes)
    move.mapping.created("quota", name, name)


# -- flavors ------------------------------------------------------------------------------
def _flavor_spec(conn: Any, flavor: Any) -> dict[str, Any]:
    data = flavor.to_dict()
    data["extra_specs"] = dict(conn.compute.fetch_flavor_extra_specs(flavor.id).extra_specs or {})
    spec, _ = resources._flavor(data, resources._Names({}), {})
    return spec


def bring_flavor(move: Move, item: dict[str, Any]) -> None:
    a_id, name = str(item["id"]), str(item["name"])
    if move.mapping.b_of("flavor", a_id):
        return
    wanted, _ = resources._flavor(item, resources._Names({}), {})
    with translated(move.target, f"bring flavor {name}"):
        found = move.b.compute.find_flavor(name, ignore_missing=True)
        if found is not None:
            if _flavor_spec(move.b, found) != wanted:
                if move.mapping.state("flavor", a_id) != INTENT:
                    raise StepFailed(
                        f"{move.target} has a flavor {name} unlike {move.source}'s: "
                        "rename one of them first"
                    )
                move.b.compute.update_flavor_extra_specs(found.id, wanted["extra_specs"])
                move.mapping.created("flavor", a_id, found.id)
            elif move.mapping.state("flavor", a_id) == INTENT:
                move.mapping.created("flavor", a_id, found.id)
            else:
                move.mapping.reused("flavor", a_id, name, found.id)
            return
        move.mapping.intend("flavor", a_id, name)
        made = move.b.compute.create_flavor(
            name=name,
            vcpus=item["vcpus"],
            ram=item["ram"],
            disk=item["disk"],
            swap=item.get("swap") or 0,
            ephemeral=item.get("ephemeral") or 0,
            is_public=item.get("is_public", True),
        )
        if wanted["extra_specs"]:
            move.b.compute.create_flavor_extra_specs(made.id, wanted["extra_specs"])
        if not item.get("is_public", True):
            move.b.compute.flavor_add_tenant_access(made.id, move.b_project)
    move.mapping.created("flavor", a_id, made.id)


# -- key pairs ----------------------------------------------------------------------------
def bring_keypair(move: Move, item: dict[str, Any]) -> None:
    user = move.b_user(next((u for u, n in move.users.items() if n == item.get("user")), ""))
    a_id, name = f"{item.get('user')}/{item['name']}", str(item["name"])
    if move.mapping.b_of("keypair", a_id):
        return
    with translated(move.target, f"bring key pair {name} of {item.get('user')}"):
        found = move.b.compute.find_keypair(name, user_id=user, ignore_missing=True)
        if found is not None:
            if (found.public_key or "").strip() != (item.get("public_key") or "").strip():
                raise StepFailed(f"{move.target}: {item.get('user')} has another key pair {name}")
            if move.mapping.state("keypair", a_id) == INTENT:
                move.mapping.created("keypair", a_id, a_id)
            else:
                move.mapping.reused("keypair", a_id, name, a_id)
            return
        move.mapping.intend("keypair", a_id, name, user=user)
        move.b.compute.create_keypair(
            name=name, public_key=item["public_key"], type=item.get("type") or "ssh", user_id=user
        )
    move.mapping.created("keypair", a_id, a_id)


# -- server groups ------------------------------------------------------------------------
def bring_server_group(move: Move, item: dict[str, Any]) -> None:
    a_id, name = str(item["id"]), str(item["name"])
    if move.mapping.b_of("server_group", a_id):
        return
    wanted, _ = resources._server_group(item, resources._Names({}), {})
    with translated(move.target, f"bring server group {name}"):
        mine = {e["b"] for e in move.mapping.entries("server_group", CREATED, REUSED) if e.get("b")}
        same = [
            g
            for g in move.b.compute.server_groups(all_projects=True)
            if g.project_id == move.b_project and g.name == name and g.id not in mine
        ]
        if same:
            if move.mapping.state("server_group", a_id) == INTENT:
                move.mapping.created("server_group", a_id, same[0].id)
            else:
                move.mapping.reused("server_group", a_id, name, same[0].id)
            return
        move.mapping.intend("server_group", a_id, name)
        rules = {"rules": wanted["rules"]} if wanted["rules"] else {}
        made = move.on_b().compute.create_server_group(name=name, policy=wanted["policy"], **rules)
    move.mapping.created("server_group", a_id, made.id)


# -- Neutron ------------------------------------------------------------------------------
def _tagged(move: Move, listing: Callable[..., Iterator[Any]], a_id: str) -> Any:
    """The thing the run made on B from ``a_id`` (by its tags), if any."""
    tags = tag(move.run_id, a_id)
    return next(iter(listing(project_id=move.b_project, tags=",".join(tags))), None)


def _neutron(
    move: Move,
    kind: str,
    item: dict[str, Any],
    listing: Callable[..., Iterator[Any]],
    create: Callable[[], Any],
    reuse: Callable[[Any], bool] = lambda found: True,
) -> Any:
    """Bring one Neutron thing: reuse one of the same name in the project on B (when
    ``reuse`` says it fits), else create it and tag it."""
    a_id, name = str(item["id"]), str(item.get("name") or "")
    done = move.mapping.b_of(kind, a_id)
    if done:
        return done
    with translated(move.target, f"bring {kind} {name or a_id}", "network (Neutron)"):
        if move.mapping.state(kind, a_id) == INTENT:
            found = _tagged(move, listing, a_id) or next(
                iter(listing(project_id=move.b_project, name=name)), None
            )
            if found is not None:
                move.b.network.set_tags(found, tag(move.run_id, a_id))
                move.mapping.created(kind, a_id, found.id)
                return found.id
        else:
            found = (
                next(iter(listing(project_id=move.b_project, name=name)), None) if name else None
            )
            if found is not None and reuse(found):
                move.mapping.reused(kind, a_id, name, found.id)
                return found.id
        move.mapping.intend(kind, a_id, name)
        made = create()
        move.b.network.set_tags(made, tag(move.run_id, a_id))
    move.mapping.created(kind, a_id, made.id)
    return made.id


def _rule_spec(rule: Any, names: dict[str, str]) -> tuple[Any, ...]:
    get = rule.get if isinstance(rule, dict) else lambda k, d=None: getattr(rule, k, d)
    return (
        get("direction"),
        get("ether_type") or get("ethertype"),
        get("protocol"),
        get("port_range_min"),
        get("port_range_max"),
        get("remote_ip_prefix"),
        names.get(str(get("remote_group_id") or ""), ""),
    )


def bring_security_group(move: Move, item: dict[str, Any]) -> None:
    """The group (reused by name: "default" is always there), then each of its rules B's
    group lacks (a remote group: B's group of the same name)."""
    network = move.b.network

    def create() -> Any:
        return network.create_security_group(
            name=item["name"], description=item.get("description") or "", project_id=move.b_project
        )

    b_id = _neutron(move, "security_group", item, network.security_groups, create)
    a_names = {str(g["id"]): str(g["name"]) for g in move.raw().get("security_group", [])}
    with translated(move.target, f"bring the rules of security group {item['name']}"):
        b_names = {g.id: g.name for g in network.security_groups(project_id=move.b_project)}
        have = {
            _rule_spec(r, b_names) for r in network.security_group_rules(security_group_id=b_id)
        }
        by_name = {n: i for i, n in b_names.items()}
        for rule in item.get("security_group_rules") or []:
            spec = _rule_spec(rule, a_names)
            if spec in have:
                continue
            remote = spec[6]
            if remote and remote not in by_name:
                raise StepFailed(f"security group {remote}: not on {move.target} yet")
            made = network.create_security_group_rule(
                security_group_id=b_id,
                direction=spec[0],
                ether_type=spec[1],
                protocol=spec[2],
                port_range_min=spec[3],
                port_range_max=spec[4],
                remote_ip_prefix=spec[5],
                remote_group_id=by_name.get(remote) if remote else None,
                project_id=move.b_project,
            )
            move.mapping.created("security_group_rule", str(rule["id"]), made.id)
            have.add(spec)


def bring_network(move: Move, item: dict[str, Any]) -> None:
    network = move.b.network
    _neutron(
        move,
        "network",
        item,
        network.networks,
        lambda: network.create_network(
            name=item["name"],
            project_id=move.b_project,
            is_admin_state_up=item.get("is_admin_state_up", True),
            is_shared=bool(item.get("is_shared")),
        ),
    )


def bring_subnet(move: Move, item: dict[str, Any]) -> None:
    network = move.b.network
    net = move.mapping.b_of("network", str(item["network_id"]))
    if not net:
        raise StepFailed(f"subnet {item['name']}: its network is not on {move.target}")
    _neutron(
        move,
        "subnet",
        item,
        network.subnets,
        lambda: network.create_subnet(
            name=item["name"],
            network_id=net,
            project_id=move.b_project,
            cidr=item["cidr"],
            ip_version=item["ip_version"],
            gateway_ip=item.get("gateway_ip"),
            is_dhcp_enabled=item.get("is_dhcp_enabled", True),
            allocation_pools=item.get("allocation_pools") or None,
            dns_nameservers=item.get("dns_nameservers") or [],
            host_routes=item.get("host_routes") or [],
        ),
    )


def bring_router(move: Move, item: dict[str, Any]) -> None:
    """The router (without an external gateway: B has its own external networks), then
    an interface on each subnet it has on A."""
    network = move.b.network
    b_id = _neutron(
        move,
        "router",
        item,
        network.routers,
        lambda: network.create_router(
            name=item["name"],
            project_id=move.b_project,
            is_admin_state_up=item.get("is_admin_state_up", True),
        ),
    )
    ports = [
        p
        for p in move.raw().get("port", [])
        if p.get("device_id") == item["id"] and p.get("device_owner") == "network:router_interface"
    ]
    with translated(move.target, f"plug router {item['name']}", "network (Neutron)"):
        plugged = {
            ip["subnet_id"]
            for p in network.ports(device_id=b_id)
            for ip in p.fixed_ips or []
            if p.device_owner == "network:router_interface"
        }
        for port in ports:
            for ip in port.get("fixed_ips") or []:
                subnet = move.mapping.b_of("subnet", str(ip["subnet_id"]))
                if subnet and subnet not in plugged:
                    network.add_interface_to_router(b_id, subnet_id=subnet)
                    plugged.add(subnet)


# -- images ---------------------------------------------------------------------------------
def copy_image(move: Move, a_image: Any, fields: dict[str, Any], size: int) -> str:
    """Stream the ``size`` bytes of ``a_image`` (an id on A) into a new image of B made
    with ``fields``; its id on B, once active with the same bytes (size and hash). At most
    the move's budget of bytes is in flight (its slot's share of ``--bytes-in-flight``)."""
    with translated(move.target, f"make image {fields.get('name')}", "image (Glance)"):
        made_id = str(glance(move.b, "post", "/images", json=fields)["id"])
    response = None
    try:
        with translated(move.source, f"read image {a_image}", "image (Glance)"):
            response = move.a.image.download_image(a_image, stream=True, chunk_size=CHUNK)
        with translated(move.target, f"upload image {fields.get('name')}", "image (Glance)"):
            body = Stream(move.budget, response.iter_content(CHUNK), size)
            try:
                glance(
                    move.b,
                    "put",
                    f"/images/{made_id}/file",
                    data=body,
                    headers={"Content-Type": "application/octet-stream"},
                )
            finally:
                body.close()
    finally:
        if response is not None:
            response.close()
    with translated(move.target, f"check image {fields.get('name')}", "image (Glance)"):
        wait_for(
            f"image {fields.get('name')} on {move.target}",
            lambda: move.b.image.get_image(made_id).status == "active",
        )
        source = move.a.image.get_image(a_image)
        copy = move.b.image.get_image(made_id)
    if (copy.size, copy.hash_value) != (source.size, source.hash_value):
        raise StepFailed(
            f"image {fields.get('name')}: its copy on {move.target} is not the same bytes "
            f"({copy.size} bytes, hash {copy.hash_value}; {source.size} on {move.source})"
        )
    return made_id


def glance(conn: Any, verb: str, path: str, **kwargs: Any) -> Any:
    """One call to an image API, raising on an error answer; its JSON ({}: none)."""
    from openstack import exceptions as sdk_exc

    response = getattr(conn.image, verb)(path, raise_exc=False, **kwargs)
    sdk_exc.raise_from_response(response)
    try:
        return response.json() if response.content else {}
    except ValueError:
        return {}


def images_by(conn: Any, **query: str) -> list[dict[str, Any]]:
    """The images an image API lists for ``query`` (properties too: ``ephyra_from=...``)."""
    return list(glance(conn, "get", f"/images?{urlencode(query)}").get("images") or [])


class Stream:
    """The bytes of an image read from A as a body sent to B: a file of a known length
    (sent with a Content-Length: an image API need not take a chunked body), or chunks.
    A chunk read holds its size of the move's budget until the next is asked for (the
    previous one has been sent by then)."""

    def __init__(self, budget: Budget, chunks: Iterator[bytes], size: int) -> None:
        self.budget = budget
        self._chunks = chunks
        self.size = size
        self._held = 0
        self._left = b""

    def __len__(self) -> int:
        return self.size

    def _release(self) -> None:
        if self._held:
            self.budget.give(self._held)
            self._held = 0

    def _next(self) -> bytes:
        self._release()
        chunk = next(self._chunks, b"")
        if chunk:
            self.budget.take(len(chunk))
            self._held = len(chunk)
        return chunk

    def read(self, size: int = -1) -> bytes:
        if not self._left:
            self._left = self._next()
        if size < 0:
            size = len(self._left)
        out, self._left = self._left[:size], self._left[size:]
        return out

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk

    def close(self) -> None:
        self._release()


def _image_fields(item: dict[str, Any]) -> dict[str, Any]:
    keep = {
        k: v for k, v in (item.get("properties") or {}).items() if k not in resources.GLANCE_OWN
    }
    return {
        "name": item.get("name"),
        "disk_format": item.get("disk_format"),
        "container_format": item.get("container_format"),
        "visibility": item.get("visibility") or "private",
        "min_disk": item.get("min_disk") or 0,
        "min_ram": item.get("min_ram") or 0,
        **{k: str(v) for k, v in keep.items()},
    }


def _marked_image(move: Move, **marks: str) -> dict[str, Any] | None:
    return next(iter(images_by(move.b, owner=move.b_project, **marks)), None)


def bring_image(move: Move, item: dict[str, Any]) -> None:
    a_id, name = str(item["id"]), str(item.get("name") or "")
    if move.mapping.b_of("image", a_id):
        return
    with translated(move.target, f"bring image {name}", "image (Glance)"):
        if move.mapping.state("image", a_id) == INTENT:
            found = _marked_image(move, **move.marks(a_id))
            if found is not None:
                if found["status"] != "active":
                    move.b.image.delete_image(found["id"])
                else:
                    move.mapping.created("image", a_id, found["id"])
                    return
        else:
            same = [
                i
                for i in images_by(move.b, owner=move.b_project, name=name)
                if i.get("os_hash_value") == item.get("os_hash_value") and i["status"] == "active"
            ]
            if same:
                move.mapping.reused("image", a_id, name, same[0]["id"])
                return
    move.mapping.intend("image", a_id, name)
    fields = {**_image_fields(item), "owner": move.b_project, **move.marks(a_id)}
    move.mapping.created("image", a_id, copy_image(move, a_id, fields, int(item["size"])))


# -- servers ---------------------------------------------------------------------------------
def snapshot(move: Move, server: dict[str, Any]) -> str:
    """The server's transfer image on A (made once): active."""
    a_id = str(server["id"])
    made = move.mapping.b_of("snapshot", a_id)
    with translated(move.source, f"snapshot server {server['name']}", "compute (Nova)"):
        if not made:
            marks = {MARK_TRANSFER: move.run_id, MARK_FROM: a_id}
            found = next(iter(images_by(move.a, **marks)), None)
            if found is None:
                move.mapping.intend("snapshot", a_id, str(server["name"]))
                made = move.a.compute.get_server(a_id).create_image(
                    move.a.compute,
                    f"ephyra-{move.run_id[:8]}-{server['name']}",
                    marks,
                )
            else:
                made = found["id"]
            move.mapping.created("snapshot", a_id, str(made))

        def active() -> bool:
            status = move.a.image.get_image(made).status
            if status in ("killed", "deleted"):
                raise StepFailed(f"snapshot of server {server['name']}: {status}")
            return bool(status == "active")

        wait_for(f"snapshot of server {server['name']} on {move.source}", active)
    return str(made)


def transfer_image(move: Move, server: dict[str, Any], snap: str) -> str:
    """The server's transfer image copied to B (made once)."""
    a_id = str(server["id"])
    done = move.mapping.b_of("transfer", a_id)
    if done:
        return done
    marks = {MARK_TRANSFER: move.run_id, MARK_FROM: a_id}
    with translated(move.target, f"find the image of server {server['name']}", "image (Glance)"):
        if move.mapping.state("transfer", a_id) == INTENT:
            found = _marked_image(move, **marks)
            if found is not None and found["status"] == "active":
                move.mapping.created("transfer", a_id, found["id"])
                return str(found["id"])
            if found is not None:
                move.b.image.delete_image(found["id"])
        a_snap = move.a.image.get_image(snap)
    move.mapping.intend("transfer", a_id, str(server["name"]))
    fields = {
        "name": f"ephyra-{move.run_id[:8]}-{server['name']}",
        "disk_format": a_snap.disk_format or "raw",
        "container_format": a_snap.container_format or "bare",
        "visibility": "private",
        "owner": move.b_project,
        **marks,
    }
    b_id = copy_image(move, snap, fields, int(a_snap.size or 0))
    move.mapping.created("transfer", a_id, b_id)
    return b_id


def transfer_keypair(move: Move, server: dict[str, Any]) -> None:
    """The server's key pair, held by the run's user on B for the boot (a server gets
    the key pair of the user who boots it)."""
    name = server.get("key_name")
    if not name or move.mapping.b_of("transfer_keypair", name):
        return
    key = next(
        (
            k
            for k in move.raw().get("keypair", [])
            if k["name"] == name and k.get("user_id") == server.get("user_id")
        ),
        None,
    ) or next((k for k in move.raw().get("keypair", []) if k["name"] == name), None)
    if key is None:
        raise StepFailed(f"server {server['name']}: its key pair {name} is not the tenant's")
    conn = move.on_b()
    with translated(move.target, f"hold key pair {name} for the boot", "compute (Nova)"):
        found = conn.compute.find_keypair(name, ignore_missing=True)
        if found is not None:
            if (found.public_key or "").strip() != key["public_key"].strip():
                raise StepFailed(f"{move.target}: the run's user has another key pair {name}")
            if move.mapping.state("transfer_keypair", name) != INTENT:
                move.mapping.reused("transfer_keypair", name, name, name)
                return
        else:
            move.mapping.intend("transfer_keypair", name, name)
            conn.compute.create_keypair(
                name=name, public_key=key["public_key"], type=key.get("type") or "ssh"
            )
    move.mapping.created("transfer_keypair", name, name)


def _boot_fields(move: Move, server: dict[str, Any], image: str) -> dict[str, Any]:
    flavor = server.get("flavor") or {}
    flavor_name = flavor.get("original_name") or flavor.get("name")
    a_flavor = next(f for f in move.raw()["flavor"] if f["name"] == flavor_name)
    ports = [p for p in move.raw().get("port", []) if p.get("device_id") == server["id"]]
    networks = [
        {"uuid": move.mapping.b_of("network", str(n))}
        for n in dict.fromkeys(p["network_id"] for p in ports)
    ]
    groups = [
        move.mapping.b_of("server_group", str(g["id"]))
        for g in move.raw().get("server_group", [])
        if server["id"] in g.get("member_ids", [])
    ]
    fields: dict[str, Any] = {
        "name": server["name"],
        "flavor_id": move.mapping.b_of("flavor", str(a_flavor["id"])),
        "image_id": image,
        "metadata": {**(server.get("metadata") or {}), **move.marks(str(server["id"]))},
        "networks": networks or "none",
        "security_groups": [
            {"name": n} for n in sorted({g["name"] for g in server.get("security_groups") or []})
        ],
    }
    if server.get("key_name"):
        fields["key_name"] = server["key_name"]
    if groups:
        fields["scheduler_hints"] = {"group": groups[0]}
    return fields


def was_off(move: Move, server: dict[str, Any]) -> bool:
    """Whether the original was SHUTOFF before the run: a resumed run reads A after its
    own stops, and a server it stopped itself (``stopped``) was running."""
    if move.mapping.state("stopped", str(server["id"])) in (INTENT, CREATED):
        return False
    return bool(server["status"] == "SHUTOFF")


def boot(move: Move, server: dict[str, Any], image: str) -> str:
    """The server's copy on B (booted once), ACTIVE (SHUTOFF if the original was)."""
    a_id = str(server["id"])
    conn = move.on_b()
    b_id = move.mapping.b_of("server", a_id)
    with translated(move.target, f"boot server {server['name']}", "compute (Nova)"):
        if not b_id and move.mapping.state("server", a_id) == INTENT:
            found = [
                s
                for s in move.b.compute.servers(all_projects=True, project_id=move.b_project)
                if (s.metadata or {}).get(MARK_FROM) == a_id
                and (s.metadata or {}).get(MARK_RUN) == move.run_id
            ]
            b_id = found[0].id if found else ""
            if b_id:
                move.mapping.created("server", a_id, b_id)
        if not b_id:
            move.mapping.intend("server", a_id, str(server["name"]))
            b_id = conn.compute.create_server(**_boot_fields(move, server, image)).id
            move.mapping.created("server", a_id, b_id)

        def up() -> bool:
            found = move.b.compute.get_server(b_id)
            if found.status == "ERROR":
                fault = (found.fault or {}).get("message") or "no fault given"
                raise StepFailed(f"server {server['name']} on {move.target}: ERROR: {fault}")
            return bool(found.status in ("ACTIVE", "SHUTOFF"))

        wait_for(f"server {server['name']} on {move.target}", up)
        copy = move.b.compute.get_server(b_id)
        if was_off(move, server) and copy.status == "ACTIVE":
            move.b.compute.stop_server(b_id)
            wait_for(
                f"server {server['name']} stopped on {move.target}",
                lambda: move.b.compute.get_server(b_id).status == "SHUTOFF",
            )
    check(move, server, b_id)
    return b_id


def check(move: Move, server: dict[str, Any], b_id: str) -> None:
    """The copy on B is the server it copies (name, flavor, key pair, metadata)."""
    with translated(move.target, f"check server {server['name']}", "compute (Nova)"):
        copy = move.b.compute.get_server(b_id).to_dict()
    raw_a = {**move.raw(), "server": [server]}
    raw_b = {**move.raw(), "server": [copy], "port": []}
    want, _ = resources._server(server, resources._Names(raw_a), raw_a)
    got, _ = resources._server(copy, resources._Names(raw_b), raw_b)
    keys = ("name", "flavor", "key_name", "metadata")
    differs = [k for k in keys if want[k] != got[k]]
    if differs:
        raise StepFailed(
            f"server {server['name']}: its copy on {move.target} differs in {', '.join(differs)}"
        )


def stop_original(move: Move, server: dict[str, Any]) -> None:
    """Stop the original on A (never delete it), once its copy runs on B."""
    a_id = str(server["id"])
    if move.mapping.state("stopped", a_id) == CREATED:
        return
    with translated(move.source, f"stop server {server['name']}", "compute (Nova)"):
        found = move.a.compute.get_server(a_id)
        if found.status == "SHUTOFF" and move.mapping.state("stopped", a_id) != INTENT:
            return  # stopped before the run: not the run's to start again
        move.mapping.intend("stopped", a_id, str(server["name"]))
        if found.status != "SHUTOFF":
            move.a.compute.stop_server(a_id)
        wait_for(
            f"server {server['name']} stopped on {move.source}",
            lambda: move.a.compute.get_server(a_id).status == "SHUTOFF",
        )
    move.mapping.created("stopped", a_id, a_id)


def bring_server(move: Move, server: dict[str, Any]) -> None:
    snap = snapshot(move, server)
    image = transfer_image(move, server, snap)
    transfer_keypair(move, server)
    boot(move, server, image)
    stop_original(move, server)


BRING: dict[str, Callable[[Move, dict[str, Any]], None]] = {
    "quota": bring_quota,
    "flavor": bring_flavor,
    "keypair": bring_keypair,
    "server_group": bring_server_group,
    "security_group": bring_security_group,
    "network": bring_network,
    "subnet": bring_subnet,
    "router": bring_router,
    "image": bring_image,
    "server": bring_server,
}
