"""One cloud's settings, read as the document's objects and changed one object at a time,
through plain REST calls of openstacksdk's proxies (errors translated at the edge like
every cloud call in Ephyra).

:meth:`SettingsCloud.read` gives every object of a kind as the document names it (ids
turned into names); :meth:`SettingsCloud.converge` makes one object what a change wants
(None: absent) from what the cloud has now, so that calling it again once done does
nothing. Ids are looked up by name at each call: nothing read before is trusted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from ephyra.clouds import answer, connect, keystone_pages, translated
from ephyra.errors import StepFailed
from ephyra.settings.document import ORDER, QUOTAS, SECTION_OF, Objects, key_of

#: The services, as the catalog types them, and their section of the document.
SERVICES = {
    "identity": "identity",
    "compute": "compute",
    "placement": "placement",
    "network": "network",
}
COMPUTE_VERSION = "2.64"  # server groups' policy and rules
PLACEMENT_VERSION = "1.7"  # resource classes made by PUT
#: Network types whose segmentation id is the cloud's own allocation (not exported).
TUNNELS = frozenset({"vxlan", "gre", "geneve"})


def _quote(value: str) -> str:
    return quote(value, safe="")


class SettingsCloud:
    """The settings of the cloud ``name`` of clouds.yaml (an admin's credentials)."""

    def __init__(self, name: str, conn: Any) -> None:
        self.name = name
        self._conn = conn

    @classmethod
    def connect(cls, name: str) -> SettingsCloud:
        return cls(name, connect(name))

    # -- calls -------------------------------------------------------------------------
    def call(
        self,
        service: str,
        verb: str,
        path: str,
        action: str,
        body: Any = None,
        *,
        missing_ok: bool = False,
    ) -> Any:
        """The answer's JSON ({}: no content; None: 404 when ``missing_ok``)."""
        proxy = getattr(self._conn, service)
        extra: dict[str, Any] = {}
        if service == "compute":
            extra["microversion"] = COMPUTE_VERSION
        elif service == "placement":
            extra["microversion"] = PLACEMENT_VERSION
        return answer(
            proxy, verb, path, self.name, action, service, body, missing_ok=missing_ok, **extra
        )

    def _pages(self, path: str, key: str, action: str) -> Iterator[dict[str, Any]]:
        """A Keystone listing, page after page."""
        return keystone_pages(lambda at: self.call("identity", "get", at, action), path, key)

    def sections(self) -> set[str]:
        """The document's sections this cloud has a service for."""
        with translated(self.name, "read the service catalog"):
            return {s for s, t in SERVICES.items() if self._conn.has_service(t)}

    # -- names and ids -----------------------------------------------------------------
    def _one(self, kind: str, query: Mapping[str, str]) -> dict[str, Any] | None:
        found = list(self._pages(f"/{kind}s?{urlencode(dict(query))}", f"{kind}s", f"find {kind}"))
        return found[0] if found else None

    def domain_id(self, name: str) -> str | None:
        found = self._one("domain", {"name": name})
        return str(found["id"]) if found else None

    def in_domain(self, kind: str, full: str) -> dict[str, Any] | None:
        """A project, user or group named ``domain/name``."""
        domain, _, name = full.partition("/")
        domain_id = self.domain_id(domain)
        if domain_id is None:
            return None
        return self._one(kind, {"name": name, "domain_id": domain_id})

    def need(self, kind: str, full: str) -> str:
        """The id of a project, user or group (``domain/name``), domain or role (name)."""
        if kind == "domain":
            found = self._one("domain", {"name": full})
        elif kind == "role":
            found = next((r for r in self._roles() if r["name"] == full), None)
        else:
            found = self.in_domain(kind, full)
        if found is None:
            raise StepFailed(f"{self.name}: no {kind} {full!r}")
        return str(found["id"])

    def _roles(self) -> list[dict[str, Any]]:
        return [r for r in self._pages("/roles", "roles", "list roles") if not r.get("domain_id")]

    def _names(self) -> tuple[dict[str, str], dict[str, str], dict[str, str], dict[str, str]]:
        """id -> name of domains; id -> domain/name of projects, users, groups."""
        domains = {d["id"]: d["name"] for d in self._pages("/domains", "domains", "list domains")}

        def full(kind: str) -> dict[str, str]:
            return {
                o["id"]: f"{domains.get(o['domain_id'], o['domain_id'])}/{o['name']}"
                for o in self._pages(f"/{kind}s", f"{kind}s", f"list {kind}s")
            }

        return domains, full("project"), full("user"), full("group")

    # -- reading -------------------------------------------------------------------------
    def read(self, sections: set[str] | None = None, kind: str | None = None) -> Objects:
        """Every object of the sections named (default: every section the cloud has); with
        ``kind``, of that kind only (the others stay empty)."""
        have = self.sections() if sections is None else sections
        found: Objects = {k: {} for k in ORDER}
        want = {kind} if kind else set(ORDER)
        names = self._names() if have & {"identity", "compute", "network"} else None
        projects = names[1] if names else {}
        if "identity" in have and names:
            self._read_identity(found, want, *names)
        if "compute" in have:
            self._read_compute(found, want, projects)
        if "placement" in have:
            self._read_placement(found, want)
        if "network" in have:
            self._read_network(found, want, projects)
        return found

    def read_one(self, kind: str, key: str) -> dict[str, Any] | None:
        """One object as the cloud has it now (None: absent)."""
        if kind == "quota":  # one project's, not every project's
            project = self.in_domain("project", key)
            if project is None:
                return None
            raw = self._compute(f"/os-quota-sets/{project['id']}", "read quotas", missing_ok=True)
            return {"project": key, **_quotas(raw["quota_set"])} if raw else None
        found = self.read({SECTION_OF[kind]}, kind)
        return (found.get(kind) or {}).get(key)

    def _read_identity(
        self,
        found: Objects,
        want: set[str],
        domains: dict[str, str],
        projects: dict[str, str],
        users: dict[str, str],
        groups: dict[str, str],
    ) -> None:
        def put(kind: str, obj: dict[str, Any]) -> None:
            found[kind][key_of(kind, obj)] = obj

        if "domain" in want:
            for d in self._pages("/domains", "domains", "list domains"):
                put(
                    "domain",
                    {
                        "name": d["name"],
                        "description": d.get("description") or "",
                        "enabled": bool(d.get("enabled", True)),
                    },
                )
        if "project" in want:
            for p in self._pages("/projects", "projects", "list projects"):
                parent = p.get("parent_id") or ""
                put(
                    "project",
                    {
                        "domain": domains.get(p["domain_id"], p["domain_id"]),
                        "name": p["name"],
                        "description": p.get("description") or "",
                        "enabled": bool(p.get("enabled", True)),
                        "parent": projects.get(parent, "").partition("/")[2],
                        "tags": sorted(p.get("tags") or ()),
                    },
                )
        if "role" in want:
            for r in self._roles():
                put("role", {"name": r["name"], "description": r.get("description") or ""})
        if "user" in want:
            for u in self._pages("/users", "users", "list users"):
                put(
                    "user",
                    {
                        "domain": domains.get(u["domain_id"], u["domain_id"]),
                        "name": u["name"],
                        "enabled": bool(u.get("enabled", True)),
                        "email": u.get("email") or "",
                        "description": u.get("description") or "",
                    },
                )
        if "group" in want:
            for g in self._pages("/groups", "groups", "list groups"):
                members = self._pages(f"/groups/{g['id']}/users", "users", "list members")
                put(
                    "group",
                    {
                        "domain": domains.get(g["domain_id"], g["domain_id"]),
                        "name": g["name"],
                        "description": g.get("description") or "",
                        "members": sorted(users.get(m["id"], m["id"]) for m in members),
                    },
                )
        if "assignment" in want:
            self._read_assignments(put, domains, projects, users, groups)

    def _read_assignments(
        self,
        put: Any,
        domains: dict[str, str],
        projects: dict[str, str],
        users: dict[str, str],
        groups: dict[str, str],
    ) -> None:
        roles = {r["id"]: r["name"] for r in self._roles()}
        listing = self._pages("/role_assignments", "role_assignments", "list role assignments")
        for raw in listing:
            actor = "user" if "user" in raw else "group" if "group" in raw else None
            scope = raw.get("scope") or {}
            target = "project" if "project" in scope else "domain" if "domain" in scope else None
            role = roles.get((raw.get("role") or {}).get("id", ""))
            if actor is None or target is None or role is None:
                continue  # a system assignment, or a domain-specific role
            who = (users if actor == "user" else groups).get(raw[actor]["id"])
            on = (projects if target == "project" else domains).get(scope[target]["id"])
            if who is None or on is None:
                continue
            inherited = scope.get("OS-INHERIT:inherited_to") == "projects"
            put(
                "assignment",
                {
                    "role": role,
                    "actor": actor,
                    "name": who,
                    "target": target,
                    "on": on,
                    "inherited": inherited,
                },
            )

    def _compute(self, path: str, action: str, *, missing_ok: bool = False) -> Any:
        return self.call("compute", "get", path, action, missing_ok=missing_ok)

    def _read_compute(self, found: Objects, want: set[str], projects: dict[str, str]) -> None:
        if want & {"flavor", "flavor_access"}:
            self._read_flavors(found, projects)
        if "default_quota" in want:
            raw = self._compute("/os-quota-class-sets/default", "read default quotas")
            found["default_quota"]["default"] = {
                "name": "default",
                **_quotas(raw["quota_class_set"]),
            }
        if "quota" in want:
            for pid, project in projects.items():
                raw = self._compute(f"/os-quota-sets/{pid}", "read quotas", missing_ok=True)
                if raw:
                    found["quota"][project] = {"project": project, **_quotas(raw["quota_set"])}
        if "aggregate" in want:
            listed = self._compute("/os-aggregates", "list aggregates")
            for a in listed.get("aggregates") or ():
                metadata = dict(a.get("metadata") or {})
                metadata.pop("availability_zone", None)
                found["aggregate"][a["name"]] = {
                    "name": a["name"],
                    "availability_zone": a.get("availability_zone") or "",
                    "metadata": metadata,
                }
        if "server_group" in want:
            listed = self._compute("/os-server-groups?all_projects=True", "list server groups")
            for s in listed.get("server_groups") or ():
                owner = projects.get(s.get("project_id") or "")
                if owner:
                    obj = {
                        "project": owner,
                        "name": s["name"],
                        "policy": s.get("policy") or "",
                        "rules": dict(s.get("rules") or {}),
                    }
                    found["server_group"][key_of("server_group", obj)] = obj

    def _read_flavors(self, found: Objects, projects: dict[str, str]) -> None:
        flavors = self._compute("/flavors/detail?is_public=None", "list flavors")
        for f in flavors.get("flavors") or ():
            name = f["name"]
            specs = self._compute(f"/flavors/{f['id']}/os-extra_specs", "read extra specs")
            is_public = bool(f.get("os-flavor-access:is_public", True))
            found["flavor"][name] = {
                "name": name,
                "vcpus": int(f["vcpus"]),
                "ram": int(f["ram"]),
                "disk": int(f["disk"]),
                "ephemeral": int(f.get("OS-FLV-EXT-DATA:ephemeral") or 0),
                "swap": int(f.get("swap") or 0),
                "is_public": is_public,
                "extra_specs": dict(specs.get("extra_specs") or {}),
            }
            if is_public:
                continue
            access = self._compute(f"/flavors/{f['id']}/os-flavor-access", "read flavor access")
            for a in access.get("flavor_access") or ():
                project = projects.get(a["tenant_id"])
                if project:
                    obj = {"flavor": name, "project": project}
                    found["flavor_access"][key_of("flavor_access", obj)] = obj

    def _read_placement(self, found: Objects, want: set[str]) -> None:
        if "resource_class" in want:
            listed = self.call("placement", "get", "/resource_classes", "list resource classes")
            for c in listed.get("resource_classes") or ():
                if c["name"].startswith("CUSTOM_"):
                    found["resource_class"][c["name"]] = {"name": c["name"]}
        if "trait" in want:
            path = "/traits?name=startswith:CUSTOM_"
            for t in self.call("placement", "get", path, "list traits").get("traits") or ():
                found["trait"][t] = {"name": t}

    def _networks(self) -> list[dict[str, Any]]:
        nets = self.call("network", "get", "/networks", "list networks")
        return list(nets.get("networks") or ())

    def network_types(self) -> set[str]:
        """The provider network types of this cloud's networks (those the caller reads)."""
        return {
            n["provider:network_type"] for n in self._networks() if n.get("provider:network_type")
        }

    def has_provider(self) -> bool:
        """Whether Neutron offers the provider networks extension."""
        raw = self.call("network", "get", "/extensions", "list network extensions")
        return any(e.get("alias") == "provider" for e in raw.get("extensions") or ())

    def _read_network(self, found: Objects, want: set[str], projects: dict[str, str]) -> None:
        for n in self._networks():
            if not (n.get("shared") or n.get("router:external")):
                continue
            if "network" in want:
                kind = n.get("provider:network_type") or ""
                found["network"][n["name"]] = {
                    "name": n["name"],
                    "project": projects.get(n.get("project_id") or n.get("tenant_id") or "", ""),
                    "shared": bool(n.get("shared")),
                    "external": bool(n.get("router:external")),
                    "mtu": n.get("mtu"),
                    "network_type": kind,
                    "physical_network": n.get("provider:physical_network") or "",
                    "segmentation_id": (
                        None if kind in TUNNELS else n.get("provider:segmentation_id")
                    ),
                }
            if "subnet" in want:
                path = f"/subnets?network_id={n['id']}"
                for s in self.call("network", "get", path, "list subnets").get("subnets") or ():
                    pools = s.get("allocation_pools") or ()
                    obj = {
                        "network": n["name"],
                        "cidr": s["cidr"],
                        "name": s.get("name") or "",
                        "ip_version": int(s.get("ip_version") or 4),
                        "gateway": s.get("gateway_ip") or "",
                        "dhcp": bool(s.get("enable_dhcp")),
                        "pools": sorted(f"{p['start']}-{p['end']}" for p in pools),
                    }
                    found["subnet"][key_of("subnet", obj)] = obj

    # -- changing ------------------------------------------------------------------------
    def converge(self, kind: str, have: dict[str, Any] | None, want: dict[str, Any] | None) -> None:
        """Make one object ``want`` (None: absent) from ``have`` (None: absent)."""
        if have == want:
            return
        if want is None:
            assert have is not None
            getattr(self, f"_delete_{kind}")(have)
        elif have is None:
            getattr(self, f"_create_{kind}")(want)
        else:
            getattr(self, f"_update_{kind}")(have, want)

    # identity
    def _create_domain(self, want: dict[str, Any]) -> None:
        body = {"domain": {k: want[k] for k in ("name", "description", "enabled")}}
        self.call("identity", "post", "/domains", f"create domain {want['name']}", body)

    def _update_domain(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        body = {"domain": {k: want[k] for k in ("description", "enabled")}}
        self.call(
            "identity",
            "patch",
            f"/domains/{self.need('domain', want['name'])}",
            f"update domain {want['name']}",
            body,
        )

    def _delete_domain(self, have: dict[str, Any]) -> None:
        ident = self.need("domain", have["name"])
        self.call(
            "identity",
            "patch",
            f"/domains/{ident}",
            "disable a domain",
            {"domain": {"enabled": False}},
        )
        self.call(
            "identity",
            "delete",
            f"/domains/{ident}",
            f"delete domain {have['name']}",
            missing_ok=True,
        )

    def _create_project(self, want: dict[str, Any]) -> None:
        domain_id = self.need("domain", want["domain"])
        body: dict[str, Any] = {
            "name": want["name"],
            "domain_id": domain_id,
            "description": want["description"],
            "enabled": want["enabled"],
            "tags": list(want["tags"]),
        }
        if want["parent"]:
            body["parent_id"] = self.need("project", f"{want['domain']}/{want['parent']}")
        self.call(
            "identity", "post", "/projects", f"create project {want['name']}", {"project": body}
        )

    def _update_project(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        if have["parent"] != want["parent"]:
            raise StepFailed(
                f"{self.name}: project {key_of('project', want)}: its parent cannot change"
            )
        ident = self.need("project", f"{want['domain']}/{want['name']}")
        body = {"project": {k: want[k] for k in ("description", "enabled", "tags")}}
        self.call("identity", "patch", f"/projects/{ident}", "update a project", body)

    def _delete_project(self, have: dict[str, Any]) -> None:
        ident = self.need("project", f"{have['domain']}/{have['name']}")
        self.call(
            "identity",
            "patch",
            f"/projects/{ident}",
            "disable a project",
            {"project": {"enabled": False}},
        )
        self.call("identity", "delete", f"/projects/{ident}", "delete a project", missing_ok=True)

    def _create_role(self, want: dict[str, Any]) -> None:
        body = {"role": {"name": want["name"], "description": want["description"]}}
        self.call("identity", "post", "/roles", f"create role {want['name']}", body)

    def _update_role(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        body = {"role": {"description": want["description"]}}
        self.call(
            "identity", "patch", f"/roles/{self.need('role', want['name'])}", "update a role", body
        )

    def _delete_role(self, have: dict[str, Any]) -> None:
        self.call(
            "identity",
            "delete",
            f"/roles/{self.need('role', have['name'])}",
            "delete a role",
            missing_ok=True,
        )

    def _user_body(self, want: dict[str, Any]) -> dict[str, Any]:
        body = {k: want[k] for k in ("enabled", "description")}
        body["email"] = want["email"] or None
        return body

    def _create_user(self, want: dict[str, Any]) -> None:
        body = {
            "name": want["name"],
            "domain_id": self.need("domain", want["domain"]),
            **self._user_body(want),
        }
        self.call("identity", "post", "/users", f"create user {want['name']}", {"user": body})

    def _update_user(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        ident = self.need("user", f"{want['domain']}/{want['name']}")
        self.call(
            "identity", "patch", f"/users/{ident}", "update a user", {"user": self._user_body(want)}
        )

    def _delete_user(self, have: dict[str, Any]) -> None:
        ident = self.need("user", f"{have['domain']}/{have['name']}")
        self.call("identity", "delete", f"/users/{ident}", "delete a user", missing_ok=True)

    def _create_group(self, want: dict[str, Any]) -> None:
        body = {
            "name": want["name"],
            "domain_id": self.need("domain", want["domain"]),
            "description": want["description"],
        }
        self.call("identity", "post", "/groups", f"create group {want['name']}", {"group": body})
        self._update_group({**want, "description": want["description"], "members": []}, want)

    def _update_group(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        ident = self.need("group", f"{want['domain']}/{want['name']}")
        if have["description"] != want["description"]:
            body = {"group": {"description": want["description"]}}
            self.call("identity", "patch", f"/groups/{ident}", "update a group", body)
        for user in sorted(set(want["members"]) - set(have["members"])):
            self.call(
                "identity",
                "put",
                f"/groups/{ident}/users/{self.need('user', user)}",
                f"add {user} to a group",
            )
        for user in sorted(set(have["members"]) - set(want["members"])):
            self.call(
                "identity",
                "delete",
                f"/groups/{ident}/users/{self.need('user', user)}",
                f"remove {user} from a group",
                missing_ok=True,
            )

    def _delete_group(self, have: dict[str, Any]) -> None:
        ident = self.need("group", f"{have['domain']}/{have['name']}")
        self.call("identity", "delete", f"/groups/{ident}", "delete a group", missing_ok=True)

    def _grant_path(self, a: dict[str, Any]) -> str:
        target = self.need(a["target"], a["on"])
        actor = self.need(a["actor"], a["name"])
        base = (
            f"/{a['target']}s/{target}/{a['actor']}s/{actor}/roles/{self.need('role', a['role'])}"
        )
        return f"/OS-INHERIT{base}/inherited_to_projects" if a["inherited"] else base

    def _create_assignment(self, want: dict[str, Any]) -> None:
        self.call("identity", "put", self._grant_path(want), "grant a role")

    def _update_assignment(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        """An assignment has no fields besides its key."""

    def _delete_assignment(self, have: dict[str, Any]) -> None:
        self.call("identity", "delete", self._grant_path(have), "revoke a role", missing_ok=True)

    # compute
    def _flavor_id(self, name: str) -> str:
        flavors = self.call("compute", "get", "/flavors?is_public=None", "list flavors")
        for f in flavors.get("flavors") or ():
            if f["name"] == name:
                return str(f["id"])
        raise StepFailed(f"{self.name}: no flavor {name!r}")

    def _create_flavor(self, want: dict[str, Any]) -> None:
        body = {
            "flavor": {
                "name": want["name"],
                "vcpus": want["vcpus"],
                "ram": want["ram"],
                "disk": want["disk"],
                "OS-FLV-EXT-DATA:ephemeral": want["ephemeral"],
                "swap": want["swap"],
                "os-flavor-access:is_public": want["is_public"],
            }
        }
        made = self.call("compute", "post", "/flavors", f"create flavor {want['name']}", body)
        if want["extra_specs"]:
            specs = {"extra_specs": dict(want["extra_specs"])}
            self.call(
                "compute",
                "post",
                f"/flavors/{made['flavor']['id']}/os-extra_specs",
                "set extra specs",
                specs,
            )

    def _update_flavor(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        core = [
            f
            for f in ("vcpus", "ram", "disk", "ephemeral", "swap", "is_public")
            if have[f] != want[f]
        ]
        if core:  # a flavor's sizes cannot change: it is made again under its name
            self._delete_flavor(have)
            self._create_flavor(want)
            return
        ident = self._flavor_id(want["name"])
        old, new = have["extra_specs"], want["extra_specs"]
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        if changed:
            self.call(
                "compute",
                "post",
                f"/flavors/{ident}/os-extra_specs",
                "set extra specs",
                {"extra_specs": changed},
            )
        for key in sorted(set(old) - set(new)):
            self.call(
                "compute",
                "delete",
                f"/flavors/{ident}/os-extra_specs/{_quote(key)}",
                "unset an extra spec",
                missing_ok=True,
            )

    def _delete_flavor(self, have: dict[str, Any]) -> None:
        self.call(
            "compute",
            "delete",
            f"/flavors/{self._flavor_id(have['name'])}",
            "delete a flavor",
            missing_ok=True,
        )

    def _access(self, obj: dict[str, Any], action: str) -> None:
        ident = self._flavor_id(obj["flavor"])
        body = {action: {"tenant": self.need("project", obj["project"])}}
        self.call("compute", "post", f"/flavors/{ident}/action", f"{action} {obj['flavor']}", body)

    def _create_flavor_access(self, want: dict[str, Any]) -> None:
        self._access(want, "addTenantAccess")

    def _update_flavor_access(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        """Access has no fields besides its key."""

    def _delete_flavor_access(self, have: dict[str, Any]) -> None:
        self._access(have, "removeTenantAccess")

    def _create_default_quota(self, want: dict[str, Any]) -> None:
        body = {"quota_class_set": {k: want[k] for k in QUOTAS if k in want}}
        self.call("compute", "put", "/os-quota-class-sets/default", "set default quotas", body)

    def _update_default_quota(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        self._create_default_quota(want)

    def _delete_default_quota(self, have: dict[str, Any]) -> None:
        """Default quotas are never deleted."""

    def _create_quota(self, want: dict[str, Any]) -> None:
        ident = self.need("project", want["project"])
        body = {"quota_set": {k: want[k] for k in QUOTAS if k in want}}
        self.call(
            "compute", "put", f"/os-quota-sets/{ident}", f"set quotas of {want['project']}", body
        )

    def _update_quota(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        self._create_quota(want)

    def _delete_quota(self, have: dict[str, Any]) -> None:
        """A project's quotas go with it."""

    def _aggregate_id(self, name: str) -> str:
        for a in (
            self.call("compute", "get", "/os-aggregates", "list aggregates").get("aggregates") or ()
        ):
            if a["name"] == name:
                return str(a["id"])
        raise StepFailed(f"{self.name}: no aggregate {name!r}")

    def _create_aggregate(self, want: dict[str, Any]) -> None:
        body: dict[str, Any] = {"name": want["name"]}
        if want["availability_zone"]:
            body["availability_zone"] = want["availability_zone"]
        self.call(
            "compute",
            "post",
            "/os-aggregates",
            f"create aggregate {want['name']}",
            {"aggregate": body},
        )
        self._update_aggregate({**want, "metadata": {}}, want)

    def _update_aggregate(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        ident = self._aggregate_id(want["name"])
        if have["availability_zone"] != want["availability_zone"]:
            body = {"aggregate": {"availability_zone": want["availability_zone"] or None}}
            self.call("compute", "put", f"/os-aggregates/{ident}", "set an availability zone", body)
        old, new = have["metadata"], want["metadata"]
        metadata: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
        metadata.update({k: None for k in old if k not in new})
        if metadata:
            body = {"set_metadata": {"metadata": metadata}}
            self.call(
                "compute", "post", f"/os-aggregates/{ident}/action", "set aggregate metadata", body
            )

    def _delete_aggregate(self, have: dict[str, Any]) -> None:
        self.call(
            "compute",
            "delete",
            f"/os-aggregates/{self._aggregate_id(have['name'])}",
            "delete an aggregate",
            missing_ok=True,
        )

    # placement
    def _create_resource_class(self, want: dict[str, Any]) -> None:
        self.call(
            "placement",
            "put",
            f"/resource_classes/{_quote(want['name'])}",
            "create a resource class",
        )

    def _delete_resource_class(self, have: dict[str, Any]) -> None:
        self.call(
            "placement",
            "delete",
            f"/resource_classes/{_quote(have['name'])}",
            "delete a resource class",
            missing_ok=True,
        )

    def _create_trait(self, want: dict[str, Any]) -> None:
        self.call("placement", "put", f"/traits/{_quote(want['name'])}", "create a trait")

    def _delete_trait(self, have: dict[str, Any]) -> None:
        self.call(
            "placement",
            "delete",
            f"/traits/{_quote(have['name'])}",
            "delete a trait",
            missing_ok=True,
        )

    # network
    def _network_id(self, name: str) -> str:
        for n in self._networks():
            if n["name"] == name:
                return str(n["id"])
        raise StepFailed(f"{self.name}: no network {name!r}")

    def _create_network(self, want: dict[str, Any]) -> None:
        body: dict[str, Any] = {
            "name": want["name"],
            "shared": want["shared"],
            "router:external": want["external"],
        }
        if want["project"]:
            body["project_id"] = self.need("project", want["project"])
        if want["mtu"]:
            body["mtu"] = want["mtu"]
        if want["network_type"]:
            body["provider:network_type"] = want["network_type"]
            if want["physical_network"]:
                body["provider:physical_network"] = want["physical_network"]
            if want["segmentation_id"] is not None:
                body["provider:segmentation_id"] = want["segmentation_id"]
        self.call(
            "network", "post", "/networks", f"create network {want['name']}", {"network": body}
        )

    def _update_network(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        fixed = [
            f
            for f in ("project", "network_type", "physical_network", "segmentation_id")
            if have[f] != want[f]
        ]
        if fixed:
            raise StepFailed(
                f"{self.name}: network {want['name']}: {', '.join(fixed)} cannot change"
            )
        body = {"shared": want["shared"], "router:external": want["external"]}
        if want["mtu"]:
            body["mtu"] = want["mtu"]
        self.call(
            "network",
            "put",
            f"/networks/{self._network_id(want['name'])}",
            "update a network",
            {"network": body},
        )

    def _delete_network(self, have: dict[str, Any]) -> None:
        self.call(
            "network",
            "delete",
            f"/networks/{self._network_id(have['name'])}",
            "delete a network",
            missing_ok=True,
        )

    def _subnet_id(self, obj: dict[str, Any]) -> str:
        network = self._network_id(obj["network"])
        raw = self.call("network", "get", f"/subnets?network_id={network}", "list subnets")
        for s in raw.get("subnets") or ():
            if s["cidr"] == obj["cidr"]:
                return str(s["id"])
        raise StepFailed(f"{self.name}: no subnet {obj['cidr']} on {obj['network']}")

    @staticmethod
    def _subnet_fields(want: dict[str, Any]) -> dict[str, Any]:
        pools = [dict(zip(("start", "end"), p.split("-", 1), strict=True)) for p in want["pools"]]
        return {
            "name": want["name"],
            "gateway_ip": want["gateway"] or None,
            "enable_dhcp": want["dhcp"],
            "allocation_pools": pools,
        }

    def _create_subnet(self, want: dict[str, Any]) -> None:
        body = {
            "network_id": self._network_id(want["network"]),
            "cidr": want["cidr"],
            "ip_version": want["ip_version"],
            **self._subnet_fields(want),
        }
        self.call("network", "post", "/subnets", f"create subnet {want['cidr']}", {"subnet": body})

    def _update_subnet(self, have: dict[str, Any], want: dict[str, Any]) -> None:
        body = {"subnet": self._subnet_fields(want)}
        self.call("network", "put", f"/subnets/{self._subnet_id(want)}", "update a subnet", body)

    def _delete_subnet(self, have: dict[str, Any]) -> None:
        self.call(
            "network",
            "delete",
            f"/subnets/{self._subnet_id(have)}",
            "delete a subnet",
            missing_ok=True,
        )


def _quotas(raw: Mapping[str, Any]) -> dict[str, int]:
    return {k: int(raw[k]) for k in QUOTAS if k in raw}
