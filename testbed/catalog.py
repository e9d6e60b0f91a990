"""The service catalog of a testbed Keystone: a service and its endpoints in a region.

:func:`register` makes, if missing, the region, the service (found by type and name) and
its ``public`` endpoint in that region, pointing at ``url``; an endpoint already there with
another URL is moved to ``url``. Calling it again changes nothing, so a cloud of the
testbed registers its services at every start. Clients then find a service from
``auth_url`` and ``region_name`` alone, as they do in a real deployment.

:func:`service_credential` is the application credential every testbed service (Nova,
Placement, Glance, Neutron) logs in to Keystone with, :func:`service_user` the lines of a
configuration section that use it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testbed.keystone import Keystone

INTERFACE = "public"

_SERVICE_CREDENTIALS: dict[str, tuple[str, str]] = {}
_SERVICE_CREDENTIALS_LOCK = threading.Lock()


def admin(keystone: Keystone) -> Any:
    """An openstacksdk connection of the bootstrap admin to ``keystone``'s identity API."""
    import openstack

    entry = keystone.clouds_entry("admin", keystone.admin_password, "admin")
    return openstack.connect(
        load_yaml_config=False,
        load_envvars=False,
        auth_type="password",
        auth=entry["auth"],
        identity_endpoint_override=f"{keystone.url}/",
    )


def service_credential(keystone: Keystone) -> tuple[str, str]:
    """(id, secret) of an application credential of ``keystone``'s admin on project admin,
    made once per process and Keystone: the testbed's services log in with it. A login with
    a password writes the user's ``last_active_at`` into Keystone's SQLite database, and two
    at once (two clouds' services starting, each validating every request's token) can fail
    with "database is locked" (a 500); a login with an application credential only reads.
    The admin gets the ``service`` role on project admin first: Nova sends its token along
    with a user's (``X-Service-Token``), which keystonemiddleware accepts only with that
    role (``service_token_roles_required``)."""
    with _SERVICE_CREDENTIALS_LOCK:
        found = _SERVICE_CREDENTIALS.get(keystone.url)
        if found is None:
            conn = admin(keystone)
            identity = conn.identity
            role = identity.find_role("service") or identity.create_role(name="service")
            identity.assign_project_role_to_user(
                conn.current_project_id, conn.current_user_id, role
            )
            credential = identity.create_application_credential(
                user=conn.current_user_id, name=f"testbed-services-{uuid.uuid4().hex[:12]}"
            )
            found = _SERVICE_CREDENTIALS[keystone.url] = (str(credential.id), credential.secret)
        return found


def service_user(keystone: Keystone) -> str:
    """The ``auth_type`` and application credential lines of a configuration section
    (``[keystone_authtoken]``, ``[service_user]``...) that logs in as the services."""
    credential, secret = service_credential(keystone)
    return (
        "auth_type = v3applicationcredential\n"
        f"application_credential_id = {credential}\n"
        f"application_credential_secret = {secret}"
    )


def register(
    keystone: Keystone,
    service_type: str,
    name: str,
    url: str,
    region: str,
    *,
    conn: Any = None,
) -> str:
    """Make the region, the service ``name`` of ``service_type`` and its public endpoint
    ``url`` in ``region`` exist (each only if missing); the endpoint's id. ``conn``: an
    admin connection to reuse (:func:`admin`)."""
    ids = register_region(keystone, region, {service_type: (name, url)}, conn=conn)
    return ids[service_type]


def register_region(
    keystone: Keystone,
    region: str,
    services: Mapping[str, tuple[str, str]],
    *,
    conn: Any = None,
) -> dict[str, str]:
    """:func:`register` for several services of one region, ``(name, url)`` by service
    type, reading the catalog once; the endpoints' ids by service type."""
    identity = (conn or admin(keystone)).identity
    if identity.find_region(region) is None:
        identity.create_region(id=region)
    known = {(s.type, s.name): s for s in identity.services()}
    present = {
        e.service_id: e for e in identity.endpoints(interface=INTERFACE) if e.region_id == region
    }
    ids = {}
    for service_type, (name, url) in services.items():
        service = known.get((service_type, name))
        if service is None:
            service = identity.create_service(type=service_type, name=name, is_enabled=True)
        endpoint = present.get(service.id)
        if endpoint is None:
            endpoint = identity.create_endpoint(
                service_id=service.id, interface=INTERFACE, url=url, region_id=region
            )
        elif endpoint.url != url:
            identity.update_endpoint(endpoint, url=url)
        ids[service_type] = str(endpoint.id)
    return ids


def endpoints(keystone: Keystone, region: str, *, conn: Any = None) -> dict[str, str]:
    """The public endpoints of ``region``: URL by service type."""
    identity = (conn or admin(keystone)).identity
    types = {s.id: s.type for s in identity.services()}
    return {
        types[e.service_id]: e.url
        for e in identity.endpoints(interface=INTERFACE)
        if e.region_id == region and e.service_id in types
    }
