"""Which Keystone tokens carry Ephyra roles: the scope decision on canned token bodies
(as ``GET /v3/auth/tokens`` answers them)."""

from __future__ import annotations

from typing import Any

import pytest

from ephyra.api.auth import KeystoneScope, default_roles, identity_of, parse_roles
from ephyra.cli.main import main
from ephyra.errors import UsageError

EXPIRES = "2099-01-01T00:00:00.000000Z"
DEFAULT = {"id": "default", "name": "Default"}
CORP = {"id": "c0ffee", "name": "corp"}


def token(scope: dict[str, Any], *roles: str, user: str = "alice") -> dict[str, Any]:
    return {
        "user": {"id": "u1", "name": user, "domain": DEFAULT},
        "roles": [{"id": f"id-{r}", "name": r} for r in roles],
        "expires_at": EXPIRES,
        **scope,
    }


def project(name: str, ident: str, domain: dict[str, str] = DEFAULT) -> dict[str, Any]:
    return {"project": {"id": ident, "name": name, "domain": domain}}


OPS = project("ops", "p-ops")
OTHER = project("other", "p-other")
CORP_OPS = project("ops", "p-corp-ops", CORP)
DOMAIN = {"domain": CORP}
SYSTEM = {"system": {"all": True}}
UNSCOPED: dict[str, Any] = {}


def roles_of(scope: KeystoneScope, body: dict[str, Any]) -> tuple[str, ...]:
    return identity_of(body, scope)[0].roles


def test_no_scope_named_is_refused() -> None:
    with pytest.raises(UsageError, match="name the project"):
        KeystoneScope()


@pytest.mark.parametrize("bad", ["", " ", "/ops", "corp/"])
def test_an_empty_name_is_refused(bad: str) -> None:
    with pytest.raises(UsageError):
        KeystoneScope(projects=(bad,))


def test_members_of_the_named_project_get_their_roles_others_none() -> None:
    scope = KeystoneScope(projects=("ops",))
    assert roles_of(scope, token(OPS, "admin", "member", "reader")) == (
        "admin",
        "member",
        "reader",
    )
    assert roles_of(scope, token(OPS, "reader")) == ("reader",)
    assert roles_of(scope, token(OTHER, "admin", "member", "reader")) == ()
    assert roles_of(scope, token(DOMAIN, "admin")) == ()
    assert roles_of(scope, token(SYSTEM, "admin")) == ()
    assert roles_of(scope, token(UNSCOPED, "admin")) == ()


def test_a_bare_name_is_a_project_of_the_default_domain_only() -> None:
    scope = KeystoneScope(projects=("ops",))
    assert roles_of(scope, token(CORP_OPS, "admin")) == ()
    by_domain = KeystoneScope(projects=("corp/ops",))
    assert roles_of(by_domain, token(CORP_OPS, "admin")) == ("admin",)
    assert roles_of(by_domain, token(OPS, "admin")) == ()
    by_domain_id = KeystoneScope(projects=("c0ffee/ops",))
    assert roles_of(by_domain_id, token(CORP_OPS, "member")) == ("member",)
    default_by_name = KeystoneScope(projects=("Default/ops",))
    assert roles_of(default_by_name, token(OPS, "member")) == ("member",)


def test_a_project_by_id_whatever_its_domain() -> None:
    scope = KeystoneScope(projects=("p-corp-ops",))
    assert roles_of(scope, token(CORP_OPS, "reader")) == ("reader",)
    assert roles_of(scope, token(OPS, "reader")) == ()


def test_domain_and_system_scopes_only_when_named() -> None:
    domain = KeystoneScope(domains=("corp",))
    assert roles_of(domain, token(DOMAIN, "admin")) == ("admin",)
    assert roles_of(domain, token({"domain": DEFAULT}, "admin")) == ()
    assert roles_of(domain, token(CORP_OPS, "admin")) == ()  # a project of it: not the domain
    assert roles_of(KeystoneScope(domains=("c0ffee",)), token(DOMAIN, "reader")) == ("reader",)
    system = KeystoneScope(system=True)
    assert roles_of(system, token(SYSTEM, "admin")) == ("admin",)
    assert roles_of(system, token({"system": {"all": False}}, "admin")) == ()
    assert roles_of(system, token({"system": {}}, "admin")) == ()
    assert roles_of(system, token(OPS, "admin")) == ()


def test_identity_carries_project_id_and_domain() -> None:
    who, expires = identity_of(token(CORP_OPS, "admin", user="bob"), KeystoneScope(("corp/ops",)))
    assert (who.user, who.project, who.project_id, who.domain) == (
        "bob",
        "ops",
        "p-corp-ops",
        "corp",
    )
    assert expires == 4070908800.0
    who, _ = identity_of(token(DOMAIN, "admin"), KeystoneScope(domains=("corp",)))
    assert (who.project, who.domain, who.roles) == ("", "corp", ("admin",))


def test_role_mapping() -> None:
    roles = parse_roles("admin=ephyra-operator,reader=auditor,reader=observer")
    assert roles == {
        "admin": ("ephyra-operator",),
        "member": ("member",),
        "reader": ("auditor", "observer"),
    }
    scope = KeystoneScope(projects=("ops",), roles=roles)
    assert roles_of(scope, token(OPS, "ephyra-operator")) == ("admin",)
    assert roles_of(scope, token(OPS, "admin")) == ()  # Keystone's admin no longer is
    assert roles_of(scope, token(OPS, "observer", "member")) == ("member", "reader")
    assert default_roles() == {"admin": ("admin",), "member": ("member",), "reader": ("reader",)}


@pytest.mark.parametrize("bad", ["admin", "root=admin", "admin=", "=admin", "admin=x,,"])
def test_a_bad_role_mapping_is_refused(bad: str) -> None:
    with pytest.raises(UsageError, match="--keystone-roles"):
        parse_roles(bad)


def test_keystone_options_go_with_keystone_auth(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--keystone-project", "ops", "--openapi"]) == 2
    assert "--keystone-* options go with --auth keystone" in capsys.readouterr().err
    assert main(["serve", "--keystone-roles", "admin=op", "--openapi"]) == 2
