"""Taking a tenant migration back: what the run made on B deleted (by its mapping and
its marks, nothing else), B's quotas given back, the servers it stopped on A started
again and its snapshots on A deleted. And finishing one: A's stopped originals and the
transfer images of both sides deleted."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from openstack import exceptions as sdk_exc

from ephyra.clouds import translated
from ephyra.tenants.mapping import CREATED, DELETED, INTENT, MARK_FROM, MARK_RUN, tag
from ephyra.tenants.transfer import Move, glance, images_by, wait_for


def _each(move: Move, kind: str, delete: Callable[[dict[str, Any]], None]) -> None:
    """Delete on B each ``kind`` the run made (or meant to: it may be there)."""
    for entry in move.mapping.entries(kind, CREATED, INTENT):
        with translated(move.target, f"delete {kind} {entry.get('name') or entry['a']}"):
            delete(entry)
        move.mapping.deleted(kind, entry["a"])


def _missing_ok(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    with contextlib.suppress(sdk_exc.NotFoundException):
        call(*args, **kwargs)


def _gone(get: Callable[[str], Any], ident: str) -> Callable[[], bool]:
    """Whether ``get(ident)`` finds nothing any more, as a check to wait for."""

    def check() -> bool:
        try:
            get(ident)
        except sdk_exc.NotFoundException:
            return True
        return False

    return check


def _servers(move: Move) -> None:
    compute = move.b.compute
    for entry in move.mapping.entries("server", CREATED, INTENT):
        ids = [entry["b"]] if entry.get("b") else []
        if not ids:  # meant to boot: look for it by its mark
            ids = [
                s.id
                for s in compute.servers(all_projects=True, project_id=move.b_project)
                if (s.metadata or {}).get(MARK_FROM) == entry["a"]
                and (s.metadata or {}).get(MARK_RUN) == move.run_id
            ]
        with translated(move.target, f"delete server {entry.get('name')}", "compute (Nova)"):
            for ident in ids:
                _missing_ok(compute.delete_server, ident)
            for ident in ids:
                wait_for(
                    f"server {entry.get('name')} deleted on {move.target}",
                    _gone(compute.get_server, ident),
                )
        move.mapping.deleted("server", entry["a"])


def _images(move: Move, kind: str, conn: Any, where: str) -> None:
    for entry in move.mapping.entries(kind, CREATED, INTENT):
        marks = {MARK_FROM: entry["a"]}
        if kind != "image":
            marks["ephyra_transfer"] = move.run_id
        else:
            marks[MARK_RUN] = move.run_id
        with translated(where, f"delete image {entry.get('name')}", "image (Glance)"):
            ids = {str(i["id"]) for i in images_by(conn, **marks)}
            if entry.get("b") and entry["state"] == CREATED:
                ids.add(str(entry["b"]))
            for ident in ids:
                _missing_ok(glance, conn, "delete", f"/images/{ident}")
        move.mapping.deleted(kind, entry["a"])


def _neutron(move: Move, kind: str, listing: Any, delete: Any) -> None:
    def one(entry: dict[str, Any]) -> None:
        ids = {entry["b"]} if entry.get("b") else set()
        ids |= {t.id for t in listing(tags=",".join(tag(move.run_id, entry["a"])))}
        for ident in ids:
            if kind == "router":
                _unplug(move, ident)
            _missing_ok(delete, ident)

    _each(move, kind, one)


def _unplug(move: Move, router: str) -> None:
    network = move.b.network
    for port in network.ports(device_id=router, device_owner="network:router_interface"):
        for ip in port.fixed_ips or []:
            _missing_ok(
                lambda s=ip["subnet_id"]: network.remove_interface_from_router(router, subnet_id=s)
            )


def _quotas(move: Move) -> None:
    for entry in move.mapping.entries("quota", CREATED, INTENT):
        before = entry.get("before") or {}
        with translated(move.target, f"give back the {entry['a']} quotas"):
            if before and entry["a"] == "compute":
                move.b.compute.update_quota_set(move.b_project, **before)
            elif before:
                move.b.network.update_quota(move.b_project, **before)
        move.mapping.deleted("quota", entry["a"])


def clear_b(move: Move) -> None:
    """Delete on B everything the run made there, what refers to a thing first."""
    network = move.b.network
    _servers(move)
    _images(move, "transfer", move.b, move.target)
    _images(move, "image", move.b, move.target)
    _neutron(move, "router", network.routers, network.delete_router)
    _neutron(move, "subnet", network.subnets, network.delete_subnet)
    _neutron(move, "network", network.networks, network.delete_network)
    _each(
        move,
        "security_group_rule",
        lambda e: _missing_ok(network.delete_security_group_rule, e["b"]),
    )
    _neutron(move, "security_group", network.security_groups, network.delete_security_group)
    _each(move, "server_group", lambda e: _missing_ok(lambda: _server_group(move, e)))
    drop_transfer_keypairs(move)
    _each(move, "keypair", lambda e: _missing_ok(lambda: _keypair(move, e)))
    _each(move, "flavor", lambda e: _missing_ok(lambda: _flavor(move, e)))
    _quotas(move)


def drop_transfer_keypairs(move: Move) -> None:
    """Delete on B the key pairs the run's user held for the boots (made by the run)."""
    compute = move.b.compute
    _each(move, "transfer_keypair", lambda e: _missing_ok(compute.delete_keypair, e["a"]))


def _server_group(move: Move, entry: dict[str, Any]) -> None:
    ident = entry.get("b") or next(
        (
            g.id
            for g in move.b.compute.server_groups(all_projects=True)
            if g.project_id == move.b_project and g.name == entry.get("name")
        ),
        None,
    )
    if ident:
        move.b.compute.delete_server_group(ident)


def _keypair(move: Move, entry: dict[str, Any]) -> None:
    move.b.compute.delete_keypair(entry["name"], user_id=entry["user"])


def _flavor(move: Move, entry: dict[str, Any]) -> None:
    ident = entry.get("b") or getattr(
        move.b.compute.find_flavor(entry.get("name"), ignore_missing=True), "id", None
    )
    if ident:
        move.b.compute.delete_flavor(ident)


def _status(compute: Any, ident: str, status: str) -> Callable[[], bool]:
    return lambda: bool(compute.get_server(ident).status == status)


def restart_a(move: Move) -> None:
    """Start again on A each server the run stopped (only those)."""
    compute = move.a.compute
    for entry in move.mapping.entries("stopped", CREATED, INTENT):
        ident = entry["a"]
        with translated(move.source, f"start server {entry.get('name')}", "compute (Nova)"):
            if compute.get_server(ident).status == "SHUTOFF":
                compute.start_server(ident)
            wait_for(
                f"server {entry.get('name')} started on {move.source}",
                _status(compute, ident, "ACTIVE"),
            )
        move.mapping.deleted("stopped", ident)


def drop_snapshots(move: Move) -> None:
    """Delete the run's snapshots on A."""
    _images(move, "snapshot", move.a, move.source)


def delete_originals(move: Move) -> None:
    """Finish: delete on A each server whose copy runs on B (the run stopped it or found
    it stopped), the transfer images of both sides and the key pairs the run's user held
    on B for the boots (left, a next move's user would find a key pair of that name)."""
    compute = move.a.compute
    for entry in move.mapping.entries("server", CREATED):
        if move.mapping.state("original", entry["a"]) == DELETED:
            continue
        with translated(move.source, f"delete server {entry.get('name')}", "compute (Nova)"):
            _missing_ok(compute.delete_server, entry["a"])
            wait_for(
                f"server {entry.get('name')} deleted on {move.source}",
                _gone(compute.get_server, entry["a"]),
            )
        move.mapping.note("original", entry["a"], state=DELETED)
    drop_snapshots(move)
    _images(move, "transfer", move.b, move.target)
    drop_transfer_keypairs(move)
